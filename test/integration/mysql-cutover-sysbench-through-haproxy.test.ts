import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findHaproxy } from '../../adapters/routers/haproxy-sandbox.js';
import { missing } from '../helpers/availability.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { mariadbMissing } from '../helpers/mariadb.js';
import { APP_PASSWORD, APP_USER, appCanWrite, haproxyPort, mysqlMissingOn, seedMysqlDatabase, sleep, startCutoverEnv, workloadThroughHaproxy, writeMysqlPlan, type MariadbEnv } from '../helpers/cutover-env.js';
import { findSysbench, sysbenchPrepare, sysbenchRun } from '../helpers/sysbench.js';

const unavailable = mariadbMissing ?? (await missing('HAProxy (haproxy)', () => findHaproxy())) ?? (await missing('sysbench', () => findSysbench()));

/**
 * A real client nobody here wrote: sysbench oltp_write_only, 8 threads on persistent connections through
 * HAProxy, beside the project's own writers, while `cutover run` fences and switches. The fence ends every
 * established session at a statement boundary while HAProxy holds new connections, so no client meets the
 * read-only source (1290) or a locked account (1045): at most a lost connection, after which a reconnecting
 * client waits in the queue and lands on the target.
 */
describe.skipIf(unavailable)('MariaDB cutover through HAProxy under sysbench oltp_write_only and 4 writers', () => {
  let e: MariadbEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
    stateDir = await tempStateDir(e.src.dir);
    await seedMysqlDatabase(e, 'shop', 2000);
    await sysbenchPrepare({ host: e.src.host, port: e.src.port, user: APP_USER, password: APP_PASSWORD, database: 'shop' });
  });
  afterAll(async () => e?.stop());

  it('the fence wins under load, no client sees 1290 or 1045, every acknowledged write of the writers is on the target', async () => {
    const plan = await writeMysqlPlan(e, { db: 'shop', stateDir });
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    const writers = workloadThroughHaproxy(e, 'shop');
    const bench = sysbenchRun({ host: e.haproxy!.host, port: e.haproxy!.port, user: APP_USER, password: APP_PASSWORD, database: 'shop' }, { threads: 8, seconds: 8 });
    let run;
    try {
      await sleep(1500);
      run = await cli(['run', plan, '--yes', '--json'], e.env);
      await sleep(800);
    } finally {
      var w = await writers.stop();
      var sb = await bench.stop(12_000);
    }
    expect(run.code, run.err).toBe(0);
    const report = run.json();
    const step = (name: string) => report.steps.find((s: { step: string }) => s.step === name);
    const ms = (name: string) => (step(name) ? step(name).endMs - step(name).startMs : '-');
    console.log(
      `sysbench 8 threads + 4 writers through HAProxy: window ${report.writeBlockedMs} ms (hold ${ms('hold')}, fence ${ms('fence')}, catch-up ${ms('catch-up')}, verify ${ms('verify')}, repoint ${ms('repoint')}, lift ${ms('lift')}); ` +
        `fence ended ${report.fence.terminated} session(s); sysbench ${sb.hung ? 'hung (killed after its run time)' : sb.signal ? `died by ${sb.signal}` : `exited ${sb.exitCode}`} after ${sb.busySeconds} busy second(s), ${sb.transactions ?? '?'} transactions, ${sb.reconnects ?? '?'} reconnects, errors ${JSON.stringify(sb.errors)}; ` +
        `writers ${w.acknowledged.length} acknowledged, ${w.writeErrors} refused or in doubt`,
    );
    // sysbench was really writing through HAProxy, and the fence had its sessions to end.
    expect(sb.busySeconds).toBeGreaterThan(0);
    expect(report.fence.terminated).toBeGreaterThan(0);
    expect(await haproxyPort(e)).toBe(e.dst.port);
    // Neither client met the read-only source or an access error.
    expect(sb.errors.filter((c) => c === 1290 || c === 1045)).toEqual([]);
    expect(sb.output).not.toMatch(/read-only|Access denied/i);
    for (const op of w.ops.filter((o) => o.outcome !== 'ok')) expect(op.error).not.toMatch(/1290|read-only|Access denied|1045/i);
    expect(await mysqlMissingOn(e.dst, 'shop', w)).toEqual([]);
    expect(await appCanWrite(e.dst, 'shop')).toBe(true);
    expect(await appCanWrite(e.src, 'shop')).toBe(false);
  });
});
