import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findHaproxy } from '../../src/sandbox/haproxy-sandbox.js';
import { HaproxyRuntime, setAddrCmd } from '../../adapters/routers/haproxy-runtime.js';
import { missing } from '../helpers/availability.js';
import { ensureBuilt } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { killAtStep } from '../helpers/kill-at-step.js';
import { exec, mariadbMissing } from '../helpers/mariadb.js';
import { appCanWrite, haproxyPort, mysqlMissingOn, seedMysqlDatabase, sleep, startMysqlCutoverEnv, workloadThroughHaproxy, writeMysqlPlan, type MysqlCutoverEnv } from '../helpers/mysql-cutover-env.js';

const haproxyMissing = await missing('HAProxy (haproxy)', () => findHaproxy());
const PAST_PNR = new Set(['repoint', 'lift']);

/**
 * A MariaDB cutover through HAProxy under writers is SIGKILLed at a step; `status` must tell the truth, then
 * `resume` (or `rollback`) must end consistent with no acknowledged write lost. One database per case; the
 * servers and HAProxy are shared, so each case starts with HAProxy on the source and the source writable.
 */
describe.skipIf(mariadbMissing ?? haproxyMissing)('MariaDB cutover killed with SIGKILL mid-run', () => {
  let e: MysqlCutoverEnv;
  let stateRoot: string;
  const cases = [
    { step: 'fence', then: 'rollback' },
    { step: 'catch-up', then: 'resume' },
    { step: 'repoint', then: 'resume' },
  ] as const;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startMysqlCutoverEnv();
    stateRoot = await tempStateDir(e.src.dir);
    for (const c of cases) await seedMysqlDatabase(e, `k_${c.step.replace(/-/g, '_')}`, 500);
  });
  afterAll(async () => e?.stop());

  it.each(cases.map((c) => ({ ...c, db: `k_${c.step.replace(/-/g, '_')}` })))('killed at $step, then $then', async ({ step, then, db }) => {
    await exec(e.src, 'SET GLOBAL read_only = OFF');
    await new HaproxyRuntime(e.haproxy.socket).command(setAddrCmd(e.haproxy.backend, e.haproxy.serverName, '127.0.0.1', e.src.port));
    const stateDir = join(stateRoot, db);
    await mkdir(stateDir);
    const plan = await writeMysqlPlan(e, { db, stateDir, maxWriteBlocked: '10s' });
    const workload = workloadThroughHaproxy(e, db, 2);
    let after;
    try {
      const sync = await cli(['sync', plan], e.env);
      expect(sync.code, sync.err).toBe(0);
      await killAtStep(['run', plan, '--yes'], e.env, stateDir, step);
      await rm(join(stateDir, `paused-at-${step}`));

      const status = await cli(['status', plan, '--json'], e.env);
      expect(status.code, status.err).toBe(0);
      const st = status.json();
      expect(st.phase).toBe(PAST_PNR.has(step) ? 'past-pnr' : 'in-flight');
      expect(st.unfinished).toEqual([step]);

      // rollback --cleanup also removes the replica connection: the next case's dump needs a target with none.
      after = await cli([then, plan, ...(then === 'resume' ? ['--yes'] : ['--cleanup'])], e.env);
      await sleep(500);
    } finally {
      var w = await workload.stop();
    }
    expect(after.code, after.err).toBe(0);
    expect(w.acknowledged.length).toBeGreaterThan(0);
    if (then === 'resume') {
      expect(await mysqlMissingOn(e.dst, db, w)).toEqual([]);
      expect(await appCanWrite(e.src, db)).toBe(false);
      expect(await appCanWrite(e.dst, db)).toBe(true);
      expect(await haproxyPort(e)).toBe(e.dst.port);
      expect((await cli(['status', plan, '--json'], e.env)).json()).toMatchObject({ phase: 'done', leftovers: [] });
    } else {
      expect(await mysqlMissingOn(e.src, db, w)).toEqual([]);
      expect(await appCanWrite(e.src, db)).toBe(true);
      expect(await haproxyPort(e)).toBe(e.src.port);
      expect((await cli(['status', plan, '--json'], e.env)).json().phase).toBe('synced');
    }
  });
});
