import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, spawnCli } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { killAtStep } from '../helpers/kill-at-step.js';
import { mariadbMissing } from '../helpers/mariadb.js';
import { startWavesEnv, type MariadbEnv } from '../helpers/cutover-env.js';
import { appCanWriteTenant, appPrivileges, missingMysqlTenantWrites, MysqlTenantWorkload, routerEntries, seedMysqlTenants, writeMysqlWavesPlan } from '../helpers/waves-env.js';

const TENANTS = ['k1', 'k2', 'k3', 'k4', 'k5'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(mariadbMissing)('MariaDB waves SIGKILLed mid-wave (one tenant fenced, its copy loaded), then run again', () => {
  let e: MariadbEnv;
  let stateDir: string;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startWavesEnv('mariadb');
    stateDir = await tempStateDir(e.src.dir);
    await seedMysqlTenants(e, TENANTS);
  });
  afterAll(async () => e?.stop());

  it('the killed tenant stays fenced; status tells done / in-flight / pending; the rerun skips, resumes and moves; nothing lost', async () => {
    const routerFile = join(stateDir, 'tenants.json');
    const plan = await writeMysqlWavesPlan(e, { name: 'kill', tenants: TENANTS, stateDir, routerFile });
    const grants = await appPrivileges(e.src, 'k4');
    const workload = new MysqlTenantWorkload(e, routerFile, TENANTS, 3).start();
    let again;
    try {
      // k3 parks at verify (fenced, copied to the target), k1 and k2 done, k4 and k5 not started: the process dies.
      await killAtStep(['waves', plan, '--yes'], { ...e.env, CUTOVER_TEST_PAUSE_TENANT: 'k3' }, join(stateDir, 'tenants', 'k3'), 'verify');
      await rm(join(stateDir, 'tenants', 'k3', 'paused-at-verify'));

      // Safe while nobody runs: k3 is fenced on its source and still routed there; k4 untouched.
      expect(await appCanWriteTenant(e.src, 'k3')).toBe(false);
      expect((await routerEntries(routerFile)).k3).toBeUndefined();
      expect(await appPrivileges(e.src, 'k4')).toEqual(grants);

      const status = await cli(['status', plan, '--json'], e.env);
      expect(status.code, status.err).toBe(0);
      const states = Object.fromEntries(status.json().tenants.map((t: { tenant: string; state: string }) => [t.tenant, t.state]));
      expect(states).toEqual({ k1: 'done', k2: 'done', k3: 'in-flight', k4: 'pending', k5: 'pending' });

      again = await spawnCli(['waves', plan, '--yes', '--json'], e.env);
      await sleep(300);
    } finally {
      var writes = await workload.stop();
    }
    expect(again.exitCode, again.stderr).toBe(0);
    const result = JSON.parse(again.stdout);
    const actions = Object.fromEntries(result.tenants.map((t: { tenant: string; action: string }) => [t.tenant, t.action]));
    expect(actions).toEqual({ k1: 'skipped', k2: 'skipped', k3: 'resumed', k4: 'moved', k5: 'moved' });
    expect(result.counts.done).toBe(5);
    expect(writes.filter((w) => !w.ok).length).toBeLessThanOrEqual(3);
    expect(await missingMysqlTenantWrites(e.dst, writes, TENANTS)).toEqual([]);
    const entries = await routerEntries(routerFile);
    for (const t of TENANTS) {
      expect(entries[t]).toMatchObject({ port: e.dst.port, database: t });
      expect(await appCanWriteTenant(e.dst, t)).toBe(true);
    }
  });
});
