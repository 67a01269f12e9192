import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, spawnCli } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, ENGINES, envMissing, sleep, startWavesEnv, type CutoverEnv, type Engine } from '../helpers/cutover-env.js';
import { killAtStep } from '../helpers/kill-at-step.js';
import {
  appCanWriteTenant,
  appPrivileges,
  missingMysqlTenantWrites,
  missingTenantWrites,
  MysqlTenantWorkload,
  routerEntries,
  seedMysqlTenants,
  seedSchemaTenants,
  seedTenants,
  tenantDb,
  tenantTable,
  TenantWorkload,
  writeMysqlWavesPlan,
  writeWavesPlan,
  type TenantLayout,
} from '../helpers/waves-env.js';

const TENANTS = ['k1', 'k2', 'k3', 'k4', 'k5'];

/**
 * PostgreSQL moves tenant databases and schemas of one database through PgBouncer; MariaDB moves tenant
 * databases through a file router, its router-aware writers retrying on the endpoint the file names.
 */
const LAYOUTS: Record<Engine, Array<{ kind: string; layout: TenantLayout; method?: 'dump' | 'replication' }>> = {
  postgres: [
    { kind: 'databases', layout: {} },
    { kind: 'schemas of one database', layout: { database: 'shared' } },
  ],
  mariadb: [
    { kind: 'databases', layout: {} },
    { kind: 'databases through one replication stream', layout: {}, method: 'replication' },
  ],
};

describe.each(ENGINES)('%s', (engine) => {
  describe.skipIf(envMissing(engine, { router: engine === 'postgres' })).each(LAYOUTS[engine])('cutover waves of tenant $kind SIGKILLed mid-wave (one tenant fenced), then run again', ({ layout, method }) => {
    let e: CutoverEnv;
    let stateDir: string;
    const routerFile = () => join(stateDir, 'tenants.json');

    beforeAll(async () => {
      await ensureBuilt();
      e = await startWavesEnv(engine, layout.database ? { bouncerAliases: Object.fromEntries(TENANTS.map((t) => [t, layout.database!])) } : { bouncerDatabases: TENANTS });
      stateDir = await tempStateDir(e.src.dir);
      if (e.engine === 'mariadb') await seedMysqlTenants(e, TENANTS);
      else if (layout.database) await seedSchemaTenants(e, layout.database, TENANTS);
      else await seedTenants(e, TENANTS);
    });
    afterAll(async () => e?.stop());

    it('status tells done / in-flight / pending; the second run skips done tenants, resumes the fenced one, moves the rest; nothing lost', async () => {
      const plan =
        e.engine === 'postgres'
          ? await writeWavesPlan(e, { name: 'kill', tenants: TENANTS, stateDir, ...layout })
          : await writeMysqlWavesPlan(e, { name: 'kill', tenants: TENANTS, stateDir, routerFile: routerFile(), ...(method ? { method } : {}) });
      const grants = e.engine === 'mariadb' ? await appPrivileges(e.src, 'k4') : [];
      const workload = e.engine === 'postgres' ? new TenantWorkload(e, TENANTS, 3, layout).start() : new MysqlTenantWorkload(e, routerFile(), TENANTS, 3).start();
      let again;
      try {
        // k3 parks after its fence (MariaDB: its copy loaded), with k1 and k2 done and k4, k5 not started: then the process dies.
        await killAtStep(['waves', plan, '--yes'], { ...e.env, CUTOVER_TEST_PAUSE_TENANT: 'k3' }, join(stateDir, 'tenants', 'k3'), 'verify');
        await rm(join(stateDir, 'tenants', 'k3', 'paused-at-verify'));

        if (e.engine === 'mariadb') {
          // Safe while nobody runs: k3 is fenced on its source and still routed there; k4 untouched.
          expect(await appCanWriteTenant(e.src, 'k3')).toBe(false);
          expect((await routerEntries(routerFile())).k3).toBeUndefined();
          expect(await appPrivileges(e.src, 'k4')).toEqual(grants);
        }

        const status = await cli(['status', plan, '--json'], e.env);
        expect(status.code, status.err).toBe(0);
        const states = Object.fromEntries(status.json().tenants.map((t: { tenant: string; state: string }) => [t.tenant, t.state]));
        expect(states).toEqual({ k1: 'done', k2: 'done', k3: 'in-flight', k4: 'pending', k5: 'pending' });

        again = await spawnCli(['waves', plan, '--yes', '--json'], e.env);
        await sleep(e.engine === 'postgres' ? 200 : 300);
      } finally {
        var writes = await workload.stop();
      }
      expect(again.exitCode, again.stderr).toBe(0);
      const result = JSON.parse(again.stdout);
      const actions = Object.fromEntries(result.tenants.map((t: { tenant: string; action: string }) => [t.tenant, t.action]));
      expect(actions).toEqual({ k1: 'skipped', k2: 'skipped', k3: 'resumed', k4: 'moved', k5: 'moved' });
      expect(result.counts.done).toBe(5);
      if (e.engine === 'postgres') {
        expect(writes.filter((w) => !w.ok)).toEqual([]);
        expect(await missingTenantWrites(e, 'dst', writes, TENANTS, layout)).toEqual([]);
        for (const t of TENANTS) {
          expect(await canWrite(e.dst, tenantDb(layout, t), tenantTable(layout, t))).toBe(true);
          expect(await canWrite(e.src, tenantDb(layout, t), tenantTable(layout, t))).toBe(false);
        }
      } else {
        // A writer stopped while retrying a write ends with it unacknowledged.
        expect(writes.filter((w) => !w.ok).length).toBeLessThanOrEqual(3);
        expect(await missingMysqlTenantWrites(e.dst, writes, TENANTS)).toEqual([]);
        const entries = await routerEntries(routerFile());
        for (const t of TENANTS) {
          expect(entries[t]).toMatchObject({ port: e.dst.port, database: t });
          expect(await appCanWriteTenant(e.dst, t)).toBe(true);
        }
      }
    });
  });
});
