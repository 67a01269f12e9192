import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { appCanWrite, envMissing, haproxyPort, mysqlMissingOn, seedMysqlDatabase, sleep, startCutoverEnv, workloadThroughHaproxy, writeMysqlPlan, type MariadbEnv } from '../helpers/cutover-env.js';
import { exec } from '../helpers/mariadb.js';

const VERIFY_AFTER = 'verify: { before: none, after: chunks, chunkRows: 700 }';

/**
 * `verify.after: chunks` on MariaDB: a consistent-snapshot transaction on each side at the point of no return,
 * compared after the release. The writers go on through HAProxy, to the target after the switch: the compare sees
 * the target as of the switch, so their writes cause no difference.
 */
describe.skipIf(envMissing('mariadb', { router: true }))('MariaDB compare after the switch (verify.after: chunks)', () => {
  let e: MariadbEnv;

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
    await seedMysqlDatabase(e, 'after_ok', 3000);
  });
  afterAll(async () => e?.stop());

  it('compares every table at the switch while clients write to the target through HAProxy, reports it in --json, exit 0', async () => {
    const stateDir = await tempStateDir(e.src.dir);
    const plan = await writeMysqlPlan(e, { db: 'after_ok', stateDir, extra: VERIFY_AFTER });
    const workload = workloadThroughHaproxy(e, 'after_ok');
    let run;
    try {
      const sync = await cli(['sync', plan], e.env);
      expect(sync.code, sync.err).toBe(0);
      await sleep(300);
      run = await cli(['run', plan, '--yes', '--json'], e.env);
      await sleep(500);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code, run.err).toBe(0);
    const r = run.json();
    expect(r.verifyAfter).toMatchObject({ outcome: 'verified', mismatchCount: 0, tables: 2 });
    // items alone is 3000 rows in chunks of 700: 5 chunks, and the workload table at least one.
    expect(r.verifyAfter.chunks).toBeGreaterThanOrEqual(6);
    expect(r.verifyAfter.rows).toBeGreaterThanOrEqual(3000);
    // After the lift: the write-blocked window does not include it.
    const step = (n: string) => r.steps.find((s: { step: string }) => s.step === n);
    expect(step('verify-after').startMs).toBeGreaterThanOrEqual(step('lift').endMs);
    expect(r.warnings.filter((m: string) => /verify after/.test(m))).toEqual([]);
    expect(await mysqlMissingOn(e.dst, 'after_ok', w)).toEqual([]);
    expect(await haproxyPort(e)).toBe(e.dst.port);
  });

  it('a row that differs on the target as of the switch: the cutover is done, exit 5 names the table and key range', async () => {
    // The first test left the source server fenced and HAProxy on the target: open the source and route back.
    await exec(e.src, 'SET GLOBAL read_only = OFF');
    const { HaproxyRuntime, setAddrCmd } = await import('../../adapters/routers/haproxy-runtime.js');
    await new HaproxyRuntime(e.haproxy!.socket).command(setAddrCmd(e.haproxy!.backend, e.haproxy!.serverName, '127.0.0.1', e.src.port));
    await seedMysqlDatabase(e, 'after_bad', 3000);
    const stateDir = await tempStateDir(e.src.dir);
    const plan = await writeMysqlPlan(e, { db: 'after_bad', stateDir, extra: VERIFY_AFTER });
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    // A change on the target behind replication's back: outside the binary log, so replication does not trip on it.
    await exec(e.dst, 'SET SESSION sql_log_bin = 0', `UPDATE after_bad.items SET name = 'planted' WHERE id = 1234`);
    const run = await cli(['run', plan, '--yes', '--json'], e.env);
    expect(run.code, run.err).toBe(5);
    const r = run.json().result;
    expect(r.outcome).toBe('done');
    expect(r.verifyAfter).toMatchObject({ outcome: 'verified', mismatchCount: 1, mismatches: [expect.objectContaining({ table: 'items', lo: ['700'], hi: ['1400'], match: false })] });
    expect(run.err).toMatch(/compare after the switch found 1 chunk\(s\).*items keys \(700, 1400\]/);
    // The switch happened all the same: the application writes to the target.
    expect(await appCanWrite(e.dst, 'after_bad')).toBe(true);
  });
});
