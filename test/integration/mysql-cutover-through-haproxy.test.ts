import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missing } from '../helpers/availability.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { findHaproxy } from '../../adapters/routers/haproxy-sandbox.js';
import { exec, mariadbMissing, readOnly } from '../helpers/mariadb.js';
import { appCanWrite, haproxyPort, mysqlKeysOn, mysqlMissingOn, seedMysqlDatabase, sleep, startCutoverEnv, workloadThroughHaproxy, writeMysqlPlan, type MariadbEnv } from '../helpers/cutover-env.js';

const haproxyMissing = await missing('HAProxy (haproxy)', () => findHaproxy());
const unavailable = mariadbMissing ?? haproxyMissing;

describe.skipIf(unavailable)('MariaDB 10.11 cutover through HAProxy 2.6 under 4 writers', () => {
  let e: MariadbEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
    stateDir = await tempStateDir(e.src.dir);
    await seedMysqlDatabase(e, 'shop', 20_000);
  });
  afterAll(async () => e?.stop());

  it('moves every acknowledged write, later writes land on the target, the source stays read-only', async () => {
    // No reverse path: the old source must not get the later writes back, which proves they went to the target only.
    const plan = await writeMysqlPlan(e, { db: 'shop', stateDir, extra: 'reverse: false' });
    const check = await cli(['check', plan, '--json'], e.env);
    expect(check.code, check.err).toBe(0);
    const workload = workloadThroughHaproxy(e, 'shop');
    let sync, run;
    try {
      await sleep(300);
      sync = await cli(['sync', plan, '--json'], e.env);
      expect(sync.code, sync.err).toBe(0);
      // Held read-only for applications while the replica applies.
      expect(await readOnly(e.dst)).toBe(1);
      await sleep(300);
      run = await cli(['run', plan, '--yes', '--json'], e.env);
      await sleep(800);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code, run.err).toBe(0);
    const report = run.json();
    console.log(
      `MariaDB cutover through HAProxy: write-blocked window ${report.writeBlockedMs} ms, max gap between acknowledged writes ${w.maxWriteGapMs} ms, ${w.acknowledged.length} acknowledged, ${w.writeErrors} refused or in doubt`,
    );
    expect(report.catchUp.method).toBe('gtid');
    expect(report.verify.mismatches).toEqual([]);
    expect(await mysqlMissingOn(e.dst, 'shop', w)).toEqual([]);
    // Writes after the switch went to the target only.
    const onSource = await mysqlKeysOn(e.src, 'shop');
    expect(w.acknowledged.filter((k) => !onSource.has(k)).length).toBeGreaterThan(0);
    // Failed writes are refusals (1290) or dropped connections, never acknowledged-then-lost.
    for (const op of w.ops.filter((o) => o.outcome === 'fail')) expect(op.error).toMatch(/1290|read-only|ECONNRESET|PROTOCOL_CONNECTION_LOST|closed|ETIMEDOUT/i);
    expect(await appCanWrite(e.src, 'shop')).toBe(false);
    expect(await appCanWrite(e.dst, 'shop')).toBe(true);
    expect(await haproxyPort(e)).toBe(e.dst.port);
    const status = await cli(['status', plan, '--json'], e.env);
    expect(status.json()).toMatchObject({ phase: 'done', leftovers: [] });
    const again = await cli(['run', plan, '--yes'], e.env);
    expect(again.code).toBe(5);
  });

  it('budget exceeded (replica stopped): exit 4, source writable, HAProxy on the source, nothing lost', async () => {
    // The first test moved HAProxy to the previous target: point it back and open the source again.
    await exec(e.src, 'SET GLOBAL read_only = OFF', 'CREATE DATABASE slow', 'USE slow', 'CREATE TABLE t (id int PRIMARY KEY)');
    const { HaproxyRuntime, setAddrCmd } = await import('../../adapters/routers/haproxy-runtime.js');
    await new HaproxyRuntime(e.haproxy!.socket).command(setAddrCmd(e.haproxy!.backend, e.haproxy!.serverName, '127.0.0.1', e.src.port));
    await exec(e.src, 'USE slow', (await import('../../adapters/mysql/mysql-workload.js')).mysqlWorkloadTableSql(), "GRANT ALL ON slow.* TO 'app'@'%'");
    await exec(e.dst, 'DROP DATABASE IF EXISTS slow', "GRANT ALL ON slow.* TO 'app'@'%'");
    const dir = await tempStateDir(e.src.dir);
    // The verify before the hold would stop at the stalled replica with nothing fenced (exit 1): this test is about the budget.
    const plan = await writeMysqlPlan(e, { db: 'slow', stateDir: dir, maxWriteBlocked: '1500ms', maxLagBeforeFence: '1GB', extra: 'verify: { before: none }' });
    const workload = workloadThroughHaproxy(e, 'slow', 2);
    let run;
    try {
      const sync = await cli(['sync', plan], e.env);
      expect(sync.code, sync.err).toBe(0);
      const st = (await cli(['status', plan, '--json'], e.env)).json();
      await exec(e.dst, `STOP SLAVE '${st.leftovers[0].name}'`);
      run = await cli(['run', plan, '--yes'], e.env);
      await sleep(500);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code, run.err).toBe(4);
    expect(run.err).toMatch(/write-downtime budget/);
    expect(await appCanWrite(e.src, 'slow')).toBe(true);
    expect(await haproxyPort(e)).toBe(e.src.port);
    expect(await mysqlMissingOn(e.src, 'slow', w)).toEqual([]);
    const status = (await cli(['status', plan, '--json'], e.env)).json();
    expect(status.phase).toBe('synced');
    expect(status.source.readOnly).toBe(false);
    // The per-plan replication account stays with the replica connection until cleanup.
    expect(status.leftovers.map((l: { kind: string }) => l.kind)).toEqual(['replica connection', 'replication account']);
  });

  it('bad plans exit 2 and name the key', async () => {
    const dir = await tempStateDir(e.src.dir);
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, `engine: mariadb\nsource: { url: "postgres://root@127.0.0.1:${e.src.port}/shop" }\ntarget: { url: "mariadb://root@127.0.0.1:${e.dst.port}/shop" }\nscope: { databases: [shop] }\n`);
    const r = await cli(['check', bad], e.env);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/source.url/);
    await writeFile(
      bad,
      `engine: mariadb\nsource: { url: "mariadb://root@127.0.0.1:${e.src.port}/shop" }\ntarget: { url: "mariadb://root@127.0.0.1:${e.dst.port}/shop" }\nscope: { databases: [shop] }\nrouter: { kind: haproxy, socket: /x.sock }\n`,
    );
    const r2 = await cli(['run', bad, '--yes'], e.env);
    expect(r2.code).toBe(2);
    expect(r2.err).toMatch(/backend/);
  });
});
