import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, spawnCli } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, sleep, startCutoverEnv, type PostgresEnv } from '../helpers/cutover-env.js';
import { killAtStep } from '../helpers/kill-at-step.js';
import { pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';
import { missingTenantWrites, seedSchemaTenants, seedTenants, tenantDb, tenantTable, TenantWorkload, writeWavesPlan, type TenantLayout } from '../helpers/waves-env.js';

const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing;
const TENANTS = ['k1', 'k2', 'k3', 'k4', 'k5'];

describe.skipIf(unavailable).each([
  { kind: 'databases', layout: {} as TenantLayout },
  { kind: 'schemas of one database', layout: { database: 'shared' } as TenantLayout },
])('cutover waves of tenant $kind SIGKILLed mid-wave (one tenant fenced), then run again', ({ layout }) => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    await ensureBuilt();
    e = layout.database
      ? await startCutoverEnv('postgres', { bouncerAliases: Object.fromEntries(TENANTS.map((t) => [t, layout.database!])) })
      : await startCutoverEnv('postgres', { bouncerDatabases: TENANTS });
    stateDir = await tempStateDir(e.src.dir);
    if (layout.database) await seedSchemaTenants(e, layout.database, TENANTS);
    else await seedTenants(e, TENANTS);
  });
  afterAll(async () => e?.stop());

  it('status tells done / in-flight / pending; the second run skips done tenants, resumes the fenced one, moves the rest; nothing lost', async () => {
    const plan = await writeWavesPlan(e, { name: 'kill', tenants: TENANTS, stateDir, ...layout });
    const workload = new TenantWorkload(e, TENANTS, 3, layout).start();
    let again;
    try {
      // k3 parks after its fence, with k1 and k2 done and k4, k5 not started: then the process dies.
      await killAtStep(['waves', plan, '--yes'], { ...e.env, CUTOVER_TEST_PAUSE_TENANT: 'k3' }, join(stateDir, 'tenants', 'k3'), 'verify');
      await rm(join(stateDir, 'tenants', 'k3', 'paused-at-verify'));

      const status = await cli(['status', plan, '--json'], e.env);
      expect(status.code, status.err).toBe(0);
      const states = Object.fromEntries(status.json().tenants.map((t: { tenant: string; state: string }) => [t.tenant, t.state]));
      expect(states).toEqual({ k1: 'done', k2: 'done', k3: 'in-flight', k4: 'pending', k5: 'pending' });

      again = await spawnCli(['waves', plan, '--yes', '--json'], e.env);
      await sleep(200);
    } finally {
      var writes = await workload.stop();
    }
    expect(again.exitCode, again.stderr).toBe(0);
    const result = JSON.parse(again.stdout);
    const actions = Object.fromEntries(result.tenants.map((t: { tenant: string; action: string }) => [t.tenant, t.action]));
    expect(actions).toEqual({ k1: 'skipped', k2: 'skipped', k3: 'resumed', k4: 'moved', k5: 'moved' });
    expect(result.counts.done).toBe(5);
    expect(writes.filter((w) => !w.ok)).toEqual([]);
    expect(await missingTenantWrites(e, 'dst', writes, TENANTS, layout)).toEqual([]);
    for (const t of TENANTS) {
      expect(await canWrite(e.dst, tenantDb(layout, t), tenantTable(layout, t))).toBe(true);
      expect(await canWrite(e.src, tenantDb(layout, t), tenantTable(layout, t))).toBe(false);
    }
  });
});
