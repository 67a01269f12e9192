import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, missingOn, seedDatabase, sleep, startCutoverEnv, workloadThroughBouncer, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { faultResult, onJournal, recordFault } from '../helpers/faults.js';
import { killAtStep } from '../helpers/kill-at-step.js';
import { pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

describe.skipIf(pg15Missing ?? pg17Missing ?? pgbouncerMissing)('PostgreSQL source restarts while fenced', () => {
  let e: PostgresEnv;
  let stateRoot: string;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startCutoverEnv('postgres', { bouncerDatabases: ['rs_parked', 'rs_live'] });
    stateRoot = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'rs_parked', 1000);
    await seedDatabase(e.src, 'rs_live', 1000);
  });
  afterAll(async () => e?.stop());

  it('run dies at catch-up, the source restarts: the ALTER DATABASE fence is still there, status says so, resume proves catch-up and finishes', async () => {
    const db = 'rs_parked';
    const stateDir = join(stateRoot, db);
    const plan = await writePlan(e, { db, stateDir, router: true });
    const workload = workloadThroughBouncer(e, db, 2);
    let status, resume, fencedAfterRestart;
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      await sleep(300);
      await killAtStep(['run', plan, '--yes'], e.env, stateDir, 'catch-up');
      await rm(join(stateDir, 'paused-at-catch-up'));
      await e.src.restart();
      fencedAfterRestart = !(await canWrite(e.src, db));
      status = (await cli(['status', plan, '--json'], e.env)).json();
      resume = await cli(['resume', plan, '--yes', '--json'], e.env);
      await sleep(300);
    } finally {
      var w = await workload.stop();
    }
    expect(fencedAfterRestart).toBe(true);
    expect(status).toMatchObject({ phase: 'in-flight', source: { readOnly: true } });
    expect(resume.code, resume.err).toBe(0);
    expect(resume.json().catchUp.method).toBe('sentinel');
    const missing = await missingOn(e.dst, db, w);
    expect(missing).toEqual([]);
    expect(await canWrite(e.src, db)).toBe(false);
    expect(await canWrite(e.dst, db)).toBe(true);
    await recordFault(faultResult('3. source restart while fenced, run killed (PG)', w, missing, resume.code, 'fence survived restart; resume finished on the target'));
  });

  it('source restarts during a live run right after the fence: the run finishes with every write on the target, or fails safe with the source writable', async () => {
    const db = 'rs_live';
    const stateDir = join(stateRoot, db);
    const plan = await writePlan(e, { db, stateDir, router: true });
    const workload = workloadThroughBouncer(e, db, 2);
    let run, rollback, fencedAfterRestart: boolean | undefined;
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      await sleep(300);
      const strike = onJournal(stateDir, 'fence', 'ok', async () => {
        await e.src.restart();
        fencedAfterRestart = !(await canWrite(e.src, db));
      });
      run = await cli(['run', plan, '--yes'], e.env);
      expect(await strike.stop()).toBe(true);
      // Restoring can hit the restart window (connection refused): the run then says to roll back.
      // The restart can also land after the switch (under the final catch-up or the cleanup): the run says so (exit 5)
      // and resume finishes it.
      if (run.code === 5 && (await cli(['status', plan, '--json'], e.env)).json().phase === 'past-pnr') {
        expect(run.err).toMatch(/the cutover is done .* dropping the replication objects failed|the cutover stopped after its point of no return.*\n.*cutover resume/);
        const resumed = await cli(['resume', plan, '--yes'], e.env);
        expect(resumed.code, resumed.err).toBe(0);
        run = { ...run, code: 0 };
      } else if (run.code === 5) rollback = await cli(['rollback', plan], e.env);
      await sleep(300);
    } finally {
      var w = await workload.stop();
    }
    // The restart may land after the run restored the source; then the database is writable again.
    if (fencedAfterRestart !== undefined && run.code === 0) expect(fencedAfterRestart).toBe(true);
    let missing: string[];
    if (run.code === 0) {
      missing = await missingOn(e.dst, db, w);
      expect(await canWrite(e.src, db)).toBe(false);
    } else {
      expect([1, 4, 5], run.err).toContain(run.code);
      if (rollback) expect(rollback.code, rollback.err).toBe(0);
      missing = await missingOn(e.src, db, w);
      expect(await canWrite(e.src, db)).toBe(true);
      expect((await cli(['status', plan, '--json'], e.env)).json()).toMatchObject({ phase: 'synced', source: { readOnly: false } });
    }
    expect(missing).toEqual([]);
    expect(w.acknowledged.length).toBeGreaterThan(0);
    await recordFault(faultResult('3. source restart during a live run (PG)', w, missing, run.code, run.code === 0 ? 'finished on the target' : `exit ${run.code}, source writable${rollback ? ' after rollback' : ''}`));
  });
});
