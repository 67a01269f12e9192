import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findHaproxy } from '../../adapters/routers/haproxy-sandbox.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { MysqlWorkload } from '../../adapters/mysql/mysql-workload.js';
import { missing } from '../helpers/availability.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { faultResult, onJournal, recordFault } from '../helpers/faults.js';
import { exec, mariadbMissing } from '../helpers/mariadb.js';
import { APP_PASSWORD, APP_USER, appCanWrite, haproxyPort, mysqlMissingOn, seedMysqlDatabase, sleep, startCutoverEnv, workloadThroughHaproxy, writeMysqlPlan, type MariadbEnv } from '../helpers/cutover-env.js';

const haproxyMissing = await missing('HAProxy (haproxy)', () => findHaproxy());

describe.skipIf(mariadbMissing ?? haproxyMissing)('network cuts during a MariaDB cutover (TCP fault proxy)', () => {
  let e: MariadbEnv;
  let stateRoot: string;
  let toolLink: FaultProxy;
  let replicationLink: FaultProxy;

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
    stateRoot = await tempStateDir(e.src.dir);
    await seedMysqlDatabase(e, 'mnet_tool', 1000);
    await seedMysqlDatabase(e, 'mnet_repl', 1000);
    toolLink = await FaultProxy.start({ target: { host: e.src.host, port: e.src.port } });
    replicationLink = await FaultProxy.start({ target: { host: e.src.host, port: e.src.port } });
  });
  afterAll(async () => {
    await toolLink?.stop();
    await replicationLink?.stop();
    await e?.stop();
  });

  async function planFor(db: string, o: Partial<Parameters<typeof writeMysqlPlan>[1]> = {}): Promise<{ plan: string; stateDir: string }> {
    const stateDir = join(stateRoot, db);
    await mkdir(stateDir, { recursive: true });
    return { plan: await writeMysqlPlan(e, { db, stateDir, ...o }), stateDir };
  }

  /** Moves the target's replica connection (its link to the source) to `port` on 127.0.0.1. */
  async function pointReplica(plan: string, port: number): Promise<void> {
    const name = (await cli(['status', plan, '--json'], e.env)).json().leftovers[0].name as string;
    expect(name).toBeTruthy();
    await exec(e.dst, `STOP SLAVE '${name}'`, `CHANGE MASTER '${name}' TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ${port}`, `START SLAVE '${name}'`);
  }

  it('tool ↔ source link paused then reset and refused after the fence: the run fails safe, `rollback` restores, a later run moves every acknowledged write', async () => {
    const db = 'mnet_tool';
    const { plan, stateDir } = await planFor(db, { router: false });
    const text = await readFile(plan, 'utf8');
    await writeFile(plan, text.replace(`mariadb://root@127.0.0.1:${e.src.port}/`, `mariadb://root@127.0.0.1:${toolLink.port}/`));
    // The application reaches the source directly: only the tool's network breaks.
    const workload = new MysqlWorkload({ host: e.src.host, port: e.src.port, user: APP_USER, password: APP_PASSWORD, database: db, writers: 2 }).start();
    let sync, run, status, rollback, again;
    try {
      sync = await cli(['sync', plan], e.env);
      expect(sync.code, sync.err).toBe(0);
      // The replica was set up with the plan's source address (the proxy): give it its own direct link.
      await pointReplica(plan, e.src.port);
      await sleep(300);
      // Right after the fence the link stops passing bytes (catch-up / verify queries hang), then every
      // connection is reset and new ones are refused: the source went away mid-step.
      const cut = onJournal(stateDir, 'fence', 'ok', async () => {
        toolLink.pause();
        await sleep(300);
        toolLink.drop({ refuseNew: true });
      });
      // The run waits at the catch-up's begin, so the cut lands before it however fast the steps are (a run
      // that reached its point of no return before the journal watcher saw the fence failed this test in CI).
      run = await cli(['run', plan, '--yes'], e.env, { testPause: { step: 'catch-up', delayMs: 400 } });
      expect(await cut.stop()).toBe(true);
      toolLink.resume();
      status = (await cli(['status', plan, '--json'], e.env)).json();
      if (run.code !== 1) rollback = await cli(['rollback', plan], e.env);
      await sleep(300);
      again = await cli(['run', plan, '--yes'], e.env);
      await sleep(300);
    } finally {
      toolLink.resume();
      var w = await workload.stop();
    }
    expect([1, 5], run.err).toContain(run.code);
    expect(run.err).not.toMatch(/point of no return: the target/);
    // The step the cut broke: one of those between the fence and the point of no return — or, when the leak
    // watch beside them (not a journaled step) lost the source first, the restore's unfence, which then cannot
    // reach the source either (exit 5 naming `cutover rollback`).
    const failed = (status.journal as Array<{ step: string; status: string }>).filter((r) => r.status === 'fail').map((r) => r.step);
    const failedAt = failed.find((step) => ['catch-up', 'sequences', 'verify'].includes(step)) ?? (run.code === 5 ? failed.find((step) => step === 'unfence') : undefined);
    expect(failedAt, `failed steps: ${failed.join(', ')}`).toBeDefined();
    if (run.code === 5) {
      expect(run.err).toMatch(/cutover rollback/);
      expect(status.phase).toBe('in-flight');
      expect(status.source.readOnly).toBe(true);
      expect(rollback!.code, rollback!.err).toBe(0);
    } else {
      expect(status.phase).toBe('synced');
      expect(status.source.readOnly).toBe(false);
    }
    expect(again.code, again.err).toBe(0);
    const lost = await mysqlMissingOn(e.dst, db, w);
    expect(lost).toEqual([]);
    expect(w.acknowledged.length).toBeGreaterThan(0);
    expect(await appCanWrite(e.dst, db)).toBe(true);
    await recordFault(
      faultResult(
        '2. network: tool ↔ source paused then reset after the fence (MariaDB)',
        w,
        lost,
        run.code,
        `cut broke ${failedAt}; run ${run.code === 1 ? 'restored the source' : 'exit 5 naming `cutover rollback`, which restored'}; later run moved all writes`,
      ),
    );
  });

  it('target ↔ source replication link paused: catch-up cannot finish, the budget fires (exit 4), source writable, HAProxy on the source; healed, the next run moves everything', async () => {
    const db = 'mnet_repl';
    // The first case ended its cutover on the target: the source it left fenced serves this database again.
    await exec(e.src, 'SET GLOBAL read_only = OFF');
    // The verify before the hold would stop at the paused link with nothing fenced (exit 1): this test is about the budget.
    const { plan } = await planFor(db, { maxWriteBlocked: '1500ms', maxLagBeforeFence: '1GB', extra: 'verify: { before: none }' });
    const workload = workloadThroughHaproxy(e, db, 2);
    let run, status, again;
    try {
      const sync = await cli(['sync', plan], e.env);
      expect(sync.code, sync.err).toBe(0);
      await pointReplica(plan, replicationLink.port);
      for (const deadline = Date.now() + 20_000; replicationLink.connections === 0 && Date.now() < deadline;) await sleep(50);
      expect(replicationLink.connections).toBeGreaterThan(0);
      await sleep(300);
      replicationLink.pause();
      run = await cli(['run', plan, '--yes'], e.env);
      await sleep(300);
      status = (await cli(['status', plan, '--json'], e.env)).json();
      var srcWritable = await appCanWrite(e.src, db);
      var routed = await haproxyPort(e);
      replicationLink.resume();
      again = await cli(['run', plan, '--yes', '--max-write-blocked', '10s'], e.env);
      await sleep(300);
    } finally {
      replicationLink.resume();
      var w = await workload.stop();
    }
    expect(run.code, run.err).toBe(4);
    expect(run.err).toMatch(/write-downtime budget/);
    expect(status).toMatchObject({ phase: 'synced', source: { readOnly: false } });
    expect(srcWritable).toBe(true);
    expect(routed).toBe(e.src.port);
    expect(again.code, again.err).toBe(0);
    const lost = await mysqlMissingOn(e.dst, db, w);
    expect(lost).toEqual([]);
    expect(w.acknowledged.length).toBeGreaterThan(0);
    expect(await appCanWrite(e.src, db)).toBe(false);
    expect(await appCanWrite(e.dst, db)).toBe(true);
    expect(await haproxyPort(e)).toBe(e.dst.port);
    await recordFault(faultResult('2. network: target ↔ source replication paused (MariaDB)', w, lost, run.code, 'exit 4, source writable, HAProxy on the source; healed run moved all writes'));
  });
});
