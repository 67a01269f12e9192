import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { Workload } from '../../adapters/postgres/postgres-workload.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, missingOn, seedDatabase, sleep, startCutoverEnv, workloadThroughBouncer, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { faultResult, onJournal, recordFault } from '../helpers/faults.js';
import { client, pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

/** The plan's source URL goes through `port` instead of straight to the server. */
async function sourceThrough(plan: string, srcPort: number, port: number): Promise<void> {
  const text = await readFile(plan, 'utf8');
  await writeFile(plan, text.replace(`source: { url: "postgres://postgres@127.0.0.1:${srcPort}/`, `source: { url: "postgres://postgres@127.0.0.1:${port}/`));
}

describe.skipIf(pg15Missing ?? pg17Missing ?? pgbouncerMissing)('network cuts during a PostgreSQL cutover (TCP fault proxy)', () => {
  let e: PostgresEnv;
  let stateRoot: string;
  let toolLink: FaultProxy;
  let replicationLink: FaultProxy;
  let slowLink: FaultProxy;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { bouncerDatabases: ['net_tool', 'net_slow', 'net_repl'] });
    stateRoot = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'net_tool', 1000);
    await seedDatabase(e.src, 'net_slow', 1000);
    await seedDatabase(e.src, 'net_repl', 1000);
    toolLink = await FaultProxy.start({ target: { host: e.src.host, port: e.src.port } });
    replicationLink = await FaultProxy.start({ target: { host: e.src.host, port: e.src.port } });
    slowLink = await FaultProxy.start({ target: { host: e.src.host, port: e.src.port } });
  });
  /** Points the target's subscription (its connection to the source) from port `from` to port `to`. */
  async function routeSubscription(db: string, from: number, to: number): Promise<void> {
    const t = await client(e.dst, { database: db });
    try {
      const sub = await t.query<{ subname: string; subconninfo: string }>('SELECT subname, subconninfo FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())');
      const { subname, subconninfo } = sub.rows[0]!;
      const port = new RegExp(`port=${from}\\b`);
      expect(subconninfo).toMatch(port);
      // The target is held read-only for applications: the test's own session overrides that.
      await t.query('SET default_transaction_read_only = off');
      await t.query(`ALTER SUBSCRIPTION "${subname}" CONNECTION '${subconninfo.replace(port, `port=${to}`).replace(/'/g, "''")}'`);
    } finally {
      await t.end();
    }
  }

  afterAll(async () => {
    await toolLink?.stop();
    await replicationLink?.stop();
    await slowLink?.stop();
    await e?.stop();
  });

  it('tool ↔ source link reset and refused after the fence: the run fails safe, the source ends writable, a later run moves every acknowledged write', async () => {
    const db = 'net_tool';
    const stateDir = join(stateRoot, db);
    const plan = await writePlan(e, { db, stateDir });
    await sourceThrough(plan, e.src.port, toolLink.port);
    // The application reaches the source directly: only the tool's network breaks.
    const workload = new Workload({ host: e.src.host, port: e.src.port, user: 'postgres', password: e.password, database: db, writers: 2 }).start();
    let run, status, rollback, again;
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      await sleep(300);
      // The run waits at the catch-up's begin: the cut lands between the fence and the point of no return.
      const cut = onJournal(stateDir, 'fence', 'ok', () => toolLink.drop({ refuseNew: true }));
      run = await cli(['run', plan, '--yes'], e.env, { testPause: { step: 'catch-up', delayMs: 400 } });
      expect(await cut.stop()).toBe(true);
      // The network comes back; whatever the run could not restore, status shows and rollback restores.
      toolLink.resume();
      status = (await cli(['status', plan, '--json'], e.env)).json();
      if (run.code !== 1) rollback = await cli(['rollback', plan], e.env);
      await sleep(300);
      again = await cli(['run', plan, '--yes'], e.env);
      await sleep(300);
    } finally {
      var w = await workload.stop();
    }
    // Either the run restored the source itself (exit 1) or it said it could not and what to run (exit 5).
    expect([1, 5], run.err).toContain(run.code);
    if (run.code === 5) {
      expect(run.err).toMatch(/cutover rollback/);
      expect(status.phase).toBe('in-flight');
      expect(status.source.readOnly).toBe(true);
      expect(rollback!.code, rollback!.err).toBe(0);
    } else {
      expect(status.phase).toBe('synced');
      expect(status.source.readOnly).toBe(false);
    }
    expect(run.err).not.toMatch(/point of no return: the target/);
    expect(again.code, again.err).toBe(0);
    const missing = await missingOn(e.dst, db, w);
    expect(missing).toEqual([]);
    expect(w.acknowledged.length).toBeGreaterThan(0);
    expect(await canWrite(e.dst, db)).toBe(true);
    await recordFault(faultResult('2. network: tool ↔ source reset mid-catch-up (PG)', w, missing, run.code, `run ${run.code === 1 ? 'restored the source' : 'exit 5, `rollback` restored'}; later run moved all writes`));
  });

  it('tool ↔ source link with 15 ms added per chunk: the run still proves catch-up within its budget and moves every acknowledged write', async () => {
    const db = 'net_slow';
    const stateDir = join(stateRoot, db);
    const plan = await writePlan(e, { db, stateDir, router: true });
    await sourceThrough(plan, e.src.port, slowLink.port);
    const workload = workloadThroughBouncer(e, db, 2);
    let sync, run;
    try {
      sync = await cli(['sync', plan], e.env);
      // Only the tool's own link is slow: at 15 ms per chunk the subscription could not keep up with the
      // writers, and the lag gate would (rightly) refuse to fence.
      await routeSubscription(db, slowLink.port, e.src.port);
      slowLink.latency(15);
      await sleep(300);
      run = await cli(['run', plan, '--yes', '--json'], e.env);
      await sleep(300);
    } finally {
      slowLink.latency(0);
      var w = await workload.stop();
    }
    expect(sync.code, sync.err).toBe(0);
    expect(run.code, run.err).toBe(0);
    expect(run.json().catchUp.method).toBe('sentinel');
    expect(w.writeErrors).toBe(0);
    const missing = await missingOn(e.dst, db, w);
    expect(missing).toEqual([]);
    expect(await canWrite(e.src, db)).toBe(false);
    await recordFault(faultResult('2. network: tool ↔ source +15 ms per chunk (PG)', w, missing, run.code, 'done on the target'));
  });

  it('target ↔ source replication link paused: lag grows, the budget fires (exit 4), the source stays writable; healed, the next run moves everything', async () => {
    const db = 'net_repl';
    const stateDir = join(stateRoot, db);
    // The verify before the hold would stop at the paused link with nothing fenced (exit 1): this test is about the budget.
    const plan = await writePlan(e, { db, stateDir, router: true, maxWriteBlocked: '1500ms', maxLagBeforeFence: '1GB', extra: 'verify: { before: none }' });
    const workload = workloadThroughBouncer(e, db, 2);
    let run, again;
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      // Route the subscription (the target's connection to the source) through the proxy.
      await routeSubscription(db, e.src.port, replicationLink.port);
      for (const deadline = Date.now() + 20_000; replicationLink.connections === 0 && Date.now() < deadline;) await sleep(50);
      expect(replicationLink.connections).toBeGreaterThan(0);
      await sleep(300);
      replicationLink.pause();
      run = await cli(['run', plan, '--yes'], e.env);
      await sleep(300);
      replicationLink.resume();
      again = await cli(['run', plan, '--yes', '--max-write-blocked', '10s'], e.env);
      await sleep(300);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code, run.err).toBe(4);
    expect(run.err).toMatch(/write-downtime budget/);
    expect(again.code, again.err).toBe(0);
    expect(w.writeErrors, JSON.stringify(w.ops.filter((o) => o.outcome !== 'ok').slice(0, 3))).toBe(0);
    const missing = await missingOn(e.dst, db, w);
    expect(missing).toEqual([]);
    expect(await canWrite(e.src, db)).toBe(false);
    expect(await canWrite(e.dst, db)).toBe(true);
    await recordFault(faultResult('2. network: target ↔ source replication paused (PG)', w, missing, run.code, 'exit 4, source writable, routing on source; healed run moved all writes'));
  });
});
