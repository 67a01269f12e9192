import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../helpers/fault-proxy.js';
import type { LateLeakCheck } from '../../src/index.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { Workload } from '../../adapters/postgres/postgres-workload.js';
import { missingOn, seedDatabase, sleep, startCutoverEnv, type PostgresEnv, writePlan } from '../helpers/cutover-env.js';
import { faultResult, recordFault } from '../helpers/faults.js';
import { client, exec, pg15Missing, pg17Missing } from '../helpers/pg.js';

/**
 * Past the point of no return a write through the fence cannot be rolled back, only reported. The run waits after
 * the point of no return (a test hook at its repoint step) until a superuser session writing in a tight loop has
 * rows on the target, then goes on over a slowed link: that session commits both before replication into the
 * target stops and after, until the lift.
 */
describe.skipIf(pg15Missing ?? pg17Missing)('writes to the old source after the point of no return are reported, split where replication stopped', () => {
  let e: PostgresEnv;
  let stateDir: string;
  let targetLink: FaultProxy;
  const db = 'late';

  beforeAll(async () => {
    e = await startCutoverEnv('postgres');
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, db, 100);
    await exec(e.src, db, 'CREATE TABLE audit_log (seq int PRIMARY KEY)');
    targetLink = await FaultProxy.start({ target: { host: e.dst.host, port: e.dst.port } });
  });
  afterAll(async () => {
    await targetLink?.stop();
    await e?.stop();
  });

  it('the run finishes, exits 5, and says which writes replication carried and which stayed on the old source', async () => {
    // The run reads the slot a last time after its afterSwitch hook: the hook asks the late writer to stop and waits
    // until it has, so every write it got acknowledged was committed before that read (a journal watcher raced it:
    // the lift's records are written with the next durable one, after that read).
    const stopRequested = join(stateDir, 'late-writer-stop');
    const writerStopped = join(stateDir, 'late-writer-stopped');
    const hook = `hooks: { afterSwitch: [sh, -c, ${JSON.stringify(`: > '${stopRequested}'; i=0; while [ ! -e '${writerStopped}' ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done`)}] }`;
    const plan = await writePlan(e, { db, stateDir, extra: hook });
    await writeFile(plan, (await readFile(plan, 'utf8')).replace(`127.0.0.1:${e.dst.port}/`, `127.0.0.1:${targetLink.port}/`));
    expect((await cli(['sync', plan], e.env)).code).toBe(0);

    let stopping = false;
    let writing: Promise<void> | undefined;
    let firstRowsMs: number | undefined;
    const acked: number[] = [];
    // The run waits at its repoint step (after the point of no return, before it stops replication into the target)
    // until the late writer's first rows are on the target, then goes on over a slowed link, so the writer commits
    // both before replication into the target stops and after. A journal watcher pausing the link instead raced the
    // run: the detach reached ALTER SUBSCRIPTION ... DISABLE ~5 ms after the point of no return's record, and a poll
    // that saw the record later paused a link whose subscription was already disabled (nothing more was applied).
    const hold = async (): Promise<void> => {
      let written!: () => void;
      const firstRow = new Promise<void>((r) => (written = r));
      writing = (async () => {
        let c: Awaited<ReturnType<typeof client>> | undefined;
        try {
          c = await client(e.src, { database: db, application: 'late-writer' });
          await c.query('SET default_transaction_read_only = off');
          for (let s = 1; !stopping; s++) {
            await c.query('INSERT INTO audit_log (seq) VALUES ($1)', [s]);
            acked.push(s);
            if (s === 3) written();
            await sleep(2);
          }
        } finally {
          // Also when its login failed: the run waiting at its repoint step goes on, and the test fails on the writes.
          written();
          await c?.end();
        }
      })();
      await firstRow;
      const d = await client(e.dst, { database: db });
      const waitFrom = Date.now();
      for (let i = 0; i < 1500; i++) {
        if (Number((await d.query<{ n: string }>('SELECT count(*) AS n FROM audit_log')).rows[0]!.n) >= 3) {
          firstRowsMs = Date.now() - waitFrom;
          break;
        }
        await sleep(10);
      }
      await d.end();
      console.log(`late writer: its first rows were on the target after ${firstRowsMs ?? `more than ${Date.now() - waitFrom}`} ms`);
      targetLink.latency(40);
    };
    // Stopped once the afterSwitch hook asks, before the run's last read of the slot (see the hook).
    let runEnded = false;
    const stop = (async () => {
      while (
        !(await access(stopRequested).then(
          () => true,
          () => false,
        ))
      ) {
        if (runEnded) return false;
        await sleep(5);
      }
      stopping = true;
      await writing;
      await writeFile(writerStopped, '');
      return true;
    })();
    // The application writes straight to the source: refused once it is fenced, never lost.
    const workload = new Workload({ host: e.src.host, port: e.src.port, user: 'postgres', password: e.password, database: db, writers: 2 }).start();
    await sleep(300);
    const run = await cli(['run', plan, '--yes', '--json'], e.env, { testPause: { step: 'repoint', hold } });
    runEnded = true;
    const w = await workload.stop();
    expect(await stop).toBe(true);
    targetLink.latency(0);

    expect(run.code, run.err).toBe(5);
    expect(run.err).toMatch(/the cutover is done \(the target is the primary\), but the old source took writes after the leak check/);
    // Replication into the target runs until the tool stops it: the writer's first rows arrived while the run waited.
    expect(firstRowsMs, "the late writer's first rows on the target before the detach").toBeDefined();
    expect(run.err).toMatch(/transaction\(s\) committed before replication into the target stopped, so on the target too: xid \d+ \(public\.audit_log 1/);
    expect(run.err).toMatch(/transaction\(s\) committed after replication stopped, so only on the old source: xid \d+ \(public\.audit_log 1/);
    const doc = run.json();
    expect(doc.error.code).toBe('leak');
    const late = doc.result.leakCheck.late as LateLeakCheck;
    expect(late).toMatchObject({ checked: true, splitBy: 'applied' });
    expect((await cli(['status', plan, '--json'], e.env)).json()).toMatchObject({ phase: 'done' });

    // Every acknowledged write is reported, each in the right group: replicated ones are on the target.
    const src = await client(e.src, { database: db });
    const bySeq = new Map((await src.query<{ seq: number; x: string }>('SELECT seq, xmin::text AS x FROM audit_log')).rows.map((r) => [r.seq, r.x]));
    await src.end();
    const dst = await client(e.dst, { database: db });
    const onTarget = new Set((await dst.query<{ seq: number }>('SELECT seq FROM audit_log')).rows.map((r) => r.seq));
    await dst.end();
    const before = new Set(late.replicated.map((t) => t.xid));
    const after = new Set(late.sourceOnly.map((t) => t.xid));
    expect(acked.length).toBeGreaterThan(0);
    for (const s of acked) {
      const xid = bySeq.get(s)!;
      expect(before.has(xid) || after.has(xid), `seq ${s} (xid ${xid}) reported`).toBe(true);
      expect(onTarget.has(s), `seq ${s}: on the target iff reported as replicated`).toBe(before.has(xid));
    }
    expect(late.sourceOnly.length).toBeGreaterThan(0);
    expect(late.replicated.length).toBeGreaterThan(0);
    const missing = await missingOn(e.dst, db, w);
    expect(missing).toEqual([]);
    await recordFault(
      faultResult(
        '6. superuser writes to the old source after the point of no return (PG)',
        w,
        missing,
        run.code,
        `done on the target; exit 5 naming all ${acked.length} rogue writes by xid: ${late.replicated.length} replicated, ${late.sourceOnly.length} only on the old source (each checked against the target)`,
      ),
    );
  });
});
