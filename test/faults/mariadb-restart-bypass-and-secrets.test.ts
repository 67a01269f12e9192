import { mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HaproxyRuntime, setAddrCmd } from '../../adapters/routers/haproxy-runtime.js';
import { findHaproxy } from '../../adapters/routers/haproxy-sandbox.js';
import { WORKLOAD_TABLE } from '../../src/sandbox/workload.js';
import { missing } from '../helpers/availability.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { faultResult, onJournal, recordFault, watchArgv } from '../helpers/faults.js';
import { connect, exec, mariadbMissing, readOnly } from '../helpers/mariadb.js';
import { APP_PASSWORD, appCanWrite, haproxyPort, mysqlKeysOn, mysqlMissingOn, seedMysqlDatabase, sleep, startCutoverEnv, workloadThroughHaproxy, writeMysqlPlan, type MariadbEnv } from '../helpers/cutover-env.js';

const haproxyMissing = await missing('HAProxy (haproxy)', () => findHaproxy());
const ROOT_PASSWORD = 'Sh@red:pw/1%';
const OPS_USER = 'ops';
const OPS_PASSWORD = 'Ops@:/%pw';
const OPS_CLIENT = 900;

/** An account with READ ONLY ADMIN writing straight to the source in autocommit, reconnecting when killed. */
function opsWriter(e: MariadbEnv, db: string): { acked(): number; stop(): Promise<string[]> } {
  let stopping = false;
  const acked: string[] = [];
  const loop = (async () => {
    let seq = 0;
    while (!stopping) {
      let c: mysql.Connection | undefined;
      try {
        c = await connect(e.src, { user: OPS_USER, password: OPS_PASSWORD });
        while (!stopping) {
          const s = ++seq;
          await c.query(`INSERT INTO \`${db}\`.${WORKLOAD_TABLE} (client, seq) VALUES (?, ?)`, [OPS_CLIENT, s]);
          acked.push(`${OPS_CLIENT}:${s}`);
          await sleep(10);
        }
      } catch {
        await sleep(10);
      } finally {
        c?.destroy();
      }
    }
  })();
  return {
    acked: () => acked.length,
    async stop() {
      stopping = true;
      await loop;
      return acked;
    },
  };
}

describe.skipIf(mariadbMissing ?? haproxyMissing)('MariaDB cutover: source restart while fenced, a READ ONLY ADMIN writer, HAProxy socket gone, secrets', () => {
  let e: MariadbEnv;
  let stateRoot: string;

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
    stateRoot = await tempStateDir(e.src.dir);
    for (const db of ['m_restart', 'm_bypass', 'm_socket', 'm_secrets']) await seedMysqlDatabase(e, db, 1000);
    await exec(e.src, `CREATE USER '${OPS_USER}'@'%' IDENTIFIED BY '${OPS_PASSWORD}'`, `GRANT READ ONLY ADMIN ON *.* TO '${OPS_USER}'@'%'`, `GRANT ALL ON m_bypass.* TO '${OPS_USER}'@'%'`);
  });
  afterAll(async () => e?.stop());

  async function planFor(db: string, extra: Partial<Parameters<typeof writeMysqlPlan>[1]> = {}): Promise<{ plan: string; stateDir: string }> {
    const stateDir = join(stateRoot, db);
    await mkdir(stateDir, { recursive: true });
    return { plan: await writeMysqlPlan(e, { db, stateDir, ...extra }), stateDir };
  }

  it('source restarts while the target waits for it: read_only is gone after the restart, the run stops before the point of no return and leaves the source writable', async () => {
    const db = 'm_restart';
    // The verify before the hold would stop at the stopped replica with nothing fenced: this test needs the fence.
    const { plan, stateDir } = await planFor(db, { maxWriteBlocked: '8s', maxLagBeforeFence: '1GB', extra: 'verify: { before: none }' });
    const workload = workloadThroughHaproxy(e, db, 2);
    let run, rollback, readOnlyAfterRestart: number | undefined;
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      const replica = (await cli(['status', plan, '--json'], e.env)).json().leftovers[0].name as string;
      // The replica is stopped so the catch-up waits: the restart lands while the source is fenced (the fence's ok
      // is journaled durably; the catch-up's begin is written with the next durable record).
      await exec(e.dst, `STOP SLAVE '${replica}'`);
      const strike = onJournal(stateDir, 'fence', 'ok', async () => {
        await e.src.restart();
        readOnlyAfterRestart = await readOnly(e.src);
        await exec(e.dst, `START SLAVE '${replica}'`);
      });
      run = await cli(['run', plan, '--yes'], e.env);
      expect(await strike.stop()).toBe(true);
      if (run.code === 5) rollback = await cli(['rollback', plan], e.env);
      await sleep(500);
    } finally {
      var w = await workload.stop();
    }
    expect(readOnlyAfterRestart).toBe(0);
    expect([1, 4, 5], run.err).toContain(run.code);
    if (rollback) expect(rollback.code, rollback.err).toBe(0);
    const status = (await cli(['status', plan, '--json'], e.env)).json();
    expect(status.journal.some((r: { step: string }) => r.step === 'point-of-no-return')).toBe(false);
    expect(status).toMatchObject({ phase: 'synced', source: { readOnly: false } });
    expect(await appCanWrite(e.src, db)).toBe(true);
    expect(await haproxyPort(e)).toBe(e.src.port);
    const lost = await mysqlMissingOn(e.src, db, w);
    expect(lost).toEqual([]);
    expect(w.acknowledged.length).toBeGreaterThan(0);
    expect((await cli(['rollback', plan, '--cleanup'], e.env)).code).toBe(0);
    await recordFault(faultResult('3. source restart while fenced (MariaDB)', w, lost, run.code, `read_only lost on restart; run exit ${run.code} before PNR, source writable`));
  });

  it('a READ ONLY ADMIN account keeps writing through read_only: the fence leak check fails the run, names the account, restores the source', async () => {
    const db = 'm_bypass';
    // As in the restart case: no verify before the hold (the replica is stopped), room in the budget for the wait.
    const { plan, stateDir } = await planFor(db, { maxWriteBlocked: '8s', maxLagBeforeFence: '1GB', extra: 'verify: { before: none }' });
    const workload = workloadThroughHaproxy(e, db, 2);
    let ops: ReturnType<typeof opsWriter> | undefined;
    let run,
      opsAcked: string[] = [];
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      const replica = (await cli(['status', plan, '--json'], e.env)).json().leftovers[0].name as string;
      ops = opsWriter(e, db);
      await sleep(300);
      // The fence ends the ops sessions; how soon it reconnects depends on the machine's load. The stopped replica
      // holds the run between the fence and the point of no return until the ops writer has written again.
      await exec(e.dst, `STOP SLAVE '${replica}'`);
      const writer = ops;
      const hold = onJournal(stateDir, 'fence', 'ok', async () => {
        const before = writer.acked();
        for (const until = Date.now() + 10_000; writer.acked() === before && Date.now() < until;) await sleep(20);
        await exec(e.dst, `START SLAVE '${replica}'`);
      });
      run = await cli(['run', plan, '--yes'], e.env);
      expect(await hold.stop()).toBe(true);
      await sleep(500);
    } finally {
      opsAcked = (await ops?.stop()) ?? [];
      var w = await workload.stop();
    }
    expect(run.code).not.toBe(0);
    expect(run.err).toMatch(/leak check failed/);
    // The position moved: the run fails whether or not a session sample caught the writer. It names the account
    // when a sample did (every run alone; under CI load two runs said only that the position moved).
    expect(run.err, run.err).toMatch(new RegExp(`user ${OPS_USER}|write position moved`));
    const status = (await cli(['status', plan, '--json'], e.env)).json();
    // The leak watch runs from the fence to the point of no return (beside catch-up and verify): it never got there.
    expect(status.journal.some((r: { step: string }) => r.step === 'point-of-no-return')).toBe(false);
    expect(status).toMatchObject({ phase: 'synced', source: { readOnly: false } });
    expect(await appCanWrite(e.src, db)).toBe(true);
    expect(await haproxyPort(e)).toBe(e.src.port);
    const lost = await mysqlMissingOn(e.src, db, w);
    expect(lost).toEqual([]);
    const onSource = await mysqlKeysOn(e.src, db);
    expect(opsAcked.length).toBeGreaterThan(0);
    expect(opsAcked.filter((k) => !onSource.has(k))).toEqual([]);
    expect((await cli(['rollback', plan, '--cleanup'], e.env)).code).toBe(0);
    await recordFault(faultResult('6. READ ONLY ADMIN writes through the fence during run (MariaDB)', w, lost, run.code, `leak named user ${OPS_USER}; source restored`));
  });

  it('HAProxy admin socket gone after the fence: the switch fails with a clear error (exit 5, past the point of no return); with the socket back, resume switches', async () => {
    const db = 'm_socket';
    const { plan, stateDir } = await planFor(db);
    const workload = workloadThroughHaproxy(e, db, 2);
    const parked = `${e.haproxy!.socket}.gone`;
    let run, status, resume;
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      await sleep(300);
      // The run waits at the catch-up's begin, so the socket is gone before the switch.
      const cut = onJournal(stateDir, 'fence', 'ok', () => rename(e.haproxy!.socket, parked));
      run = await cli(['run', plan, '--yes'], e.env, { testPause: { step: 'catch-up', delayMs: 400 } });
      expect(await cut.stop()).toBe(true);
      status = (await cli(['status', plan, '--json'], e.env)).json();
      await rename(parked, e.haproxy!.socket);
      resume = await cli(['resume', plan, '--yes'], e.env);
      await sleep(500);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code).toBe(5);
    expect(run.err).toMatch(/after its point of no return/);
    expect(run.err).toContain(e.haproxy!.socket);
    expect(status.phase).toBe('past-pnr');
    expect(resume.code, resume.err).toBe(0);
    expect(await haproxyPort(e)).toBe(e.dst.port);
    const lost = await mysqlMissingOn(e.dst, db, w);
    expect(lost).toEqual([]);
    expect(await appCanWrite(e.dst, db)).toBe(true);
    // The next case starts from the source again.
    await exec(e.src, 'SET GLOBAL read_only = OFF');
    await new HaproxyRuntime(e.haproxy!.socket).command(setAddrCmd(e.haproxy!.backend, e.haproxy!.serverName, '127.0.0.1', e.src.port));
    await recordFault(faultResult('7. HAProxy admin socket gone mid-run (MariaDB)', w, lost, run.code, 'exit 5 past PNR naming the socket; resume switched once it was back'));
  });

  it('a full run moves every acknowledged write and no password reaches argv, stdout/stderr, --json or the state dir', async () => {
    const db = 'm_secrets';
    const { plan, stateDir } = await planFor(db);
    const secrets = [ROOT_PASSWORD, APP_PASSWORD, OPS_PASSWORD];
    const workload = workloadThroughHaproxy(e, db, 2);
    const argv = watchArgv(secrets);
    let sync, run, status;
    try {
      sync = await cli(['sync', plan, '--json'], e.env);
      await sleep(300);
      run = await cli(['run', plan, '--yes', '--json'], e.env);
      status = await cli(['status', plan, '--json'], e.env);
      await sleep(500);
    } finally {
      var seenInArgv = await argv.stop();
      var w = await workload.stop();
    }
    expect(sync.code, sync.err).toBe(0);
    expect(run.code, run.err).toBe(0);
    expect(seenInArgv).toEqual([]);
    const lost = await mysqlMissingOn(e.dst, db, w);
    expect(lost).toEqual([]);
    const texts = [sync.out, sync.err, run.out, run.err, status.out, status.err];
    for (const f of await readdir(stateDir)) texts.push(await readFile(join(stateDir, f), 'utf8').catch(() => ''));
    expect(texts.length).toBeGreaterThan(6);
    for (const text of texts) for (const s of secrets) for (const form of [s, encodeURIComponent(s)]) expect(text).not.toContain(form);
    await recordFault(faultResult('9. secrets during a full run (MariaDB)', w, lost, run.code, 'done on the target; no password in argv, output, --json, state dir'));
  });
});
