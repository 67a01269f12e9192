import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManagedAdmin } from '../../adapters/mysql/mariadb-managed-profile.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { writeManagedAdminPlan } from '../helpers/managed-plan.js';
import { APP_PASSWORD, APP_USER, envMissing, haproxyPort, mysqlMissingOn, seedMysqlDatabase, sleep, startCutoverEnv, workloadThroughHaproxy, type MariadbEnv } from '../helpers/cutover-env.js';
import { missing } from '../helpers/availability.js';
import { readOnly } from '../helpers/mariadb.js';
import { findSysbench, sysbenchPrepare, sysbenchRun } from '../helpers/sysbench.js';

const unavailable = envMissing('mariadb', { router: true }) ?? (await missing('sysbench', () => findSysbench()));
const ADMIN_PW = 'Mgd:adm/7%';

/**
 * The managed profile under a real client: sysbench oltp_write_only, 8 threads through HAProxy, beside the
 * project's writers, while `cutover run` connected as an admin without SUPER / READ_ONLY ADMIN locks the app
 * account, revokes its writes and ends its sessions between statements during the router hold. No client may
 * meet a locked account (4151), a missing privilege (1142), an access error (1045) or read_only (1290).
 */
describe.skipIf(unavailable)('MariaDB managed-profile cutover through HAProxy under sysbench oltp_write_only and 4 writers', () => {
  let e: MariadbEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
    for (const sb of [e.src, e.dst]) await createManagedAdmin(sb, ADMIN_PW);
    stateDir = await tempStateDir(e.src.dir);
    await seedMysqlDatabase(e, 'shop', 2000);
    await sysbenchPrepare({ host: e.src.host, port: e.src.port, user: APP_USER, password: APP_PASSWORD, database: 'shop' });
  }, 180_000);
  afterAll(async () => e?.stop());

  it('every acknowledged write of the writers is on the target; no client sees 4151, 1142, 1045 or 1290', async () => {
    const plan = await writeManagedAdminPlan(e, 'shop', stateDir, { extra: 'privileges: managed' });
    const env = { ...e.env, ADMIN_PW };
    const sync = await cli(['sync', plan], env);
    expect(sync.code, sync.err).toBe(0);
    const writers = workloadThroughHaproxy(e, 'shop');
    const bench = sysbenchRun({ host: e.haproxy!.host, port: e.haproxy!.port, user: APP_USER, password: APP_PASSWORD, database: 'shop' }, { threads: 8, seconds: 8 });
    let run;
    try {
      await sleep(1500);
      run = await cli(['run', plan, '--yes', '--json'], env);
      await sleep(800);
    } finally {
      var w = await writers.stop();
      var sb = await bench.stop(12_000);
    }
    expect(run.code, run.err).toBe(0);
    const report = run.json();
    console.log(
      `managed profile, sysbench 8 threads + 4 writers through HAProxy: window ${report.writeBlockedMs} ms; fence ended ${report.fence.terminated} session(s); ` +
        `sysbench ${sb.hung ? 'hung' : sb.signal ? `died by ${sb.signal}` : `exited ${sb.exitCode}`} after ${sb.busySeconds} busy second(s), ${sb.transactions ?? '?'} transactions, ${sb.reconnects ?? '?'} reconnects, errors ${JSON.stringify(sb.errors)}; ` +
        `writers ${w.acknowledged.length} acknowledged, ${w.writeErrors} refused or in doubt (${[...new Set(w.ops.filter((o) => o.outcome !== 'ok').map((o) => o.error))].join('; ')})`,
    );
    expect(sb.busySeconds).toBeGreaterThan(0);
    expect(report.fence.terminated).toBeGreaterThan(0);
    expect(await haproxyPort(e)).toBe(e.dst.port);
    expect(sb.errors.filter((c) => [4151, 1142, 1045, 1290].includes(c))).toEqual([]);
    expect(sb.output).not.toMatch(/locked|denied|read-only/i);
    for (const op of w.ops.filter((o) => o.outcome !== 'ok')) expect(op.error).not.toMatch(/4151|1142|1045|1290|locked|denied|read-only/i);
    expect(await mysqlMissingOn(e.dst, 'shop', w)).toEqual([]);
    expect(await readOnly(e.src)).toBe(0);
  }, 300_000);
});
