import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { appCanWrite, haproxyPort, mysqlKeysOn, mysqlMissingOn, seedMysqlDatabase, sleep, startCutoverEnv, workloadThroughHaproxy, writeMysqlPlan, type MariadbEnv } from '../helpers/cutover-env.js';
import { haproxyMissing } from '../helpers/haproxy.js';
import { connect, exec, mariadbMissing } from '../helpers/mariadb.js';

const unavailable = mariadbMissing ?? haproxyMissing;
if (unavailable && process.env.CI === 'true') throw new Error(`mysql-revert needs ${unavailable}`);
if (unavailable) console.log(`skipped: ${unavailable}`);

const DBS = ['shop', 'broken', 'noreverse'];

/** Replica connections of a server (name, or '' for the default one). */
async function connections(sb: MariadbEnv['src']): Promise<string[]> {
  const c = await connect(sb);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>('SHOW ALL SLAVES STATUS');
    return rows.map((r) => String(r['Connection_name']));
  } finally {
    await c.end();
  }
}

/** The tool's per-plan replication accounts on a server. */
async function replicationAccounts(sb: MariadbEnv['src']): Promise<string[]> {
  const c = await connect(sb);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT User AS u FROM mysql.user WHERE User LIKE 'cutover\\_repl\\_%'`);
    return rows.map((r) => String(r['u']));
  } finally {
    await c.end();
  }
}

describe.skipIf(unavailable)('MariaDB 10.11 cutover, then revert over the reverse path (HAProxy, writers throughout)', () => {
  let e: MariadbEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
    stateDir = await tempStateDir(e.src.dir);
    for (const db of DBS) await seedMysqlDatabase(e, db, 2000);
  });
  afterAll(async () => e?.stop());

  /** sync + run of one database through HAProxy; returns the plan file. */
  async function cutOver(db: string, extra?: string): Promise<{ plan: string; report: Record<string, unknown>; output: string }> {
    const plan = await writeMysqlPlan(e, { db, stateDir, ...(extra ? { extra } : {}) });
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    const run = await cli(['run', plan, '--yes', '--json'], e.env);
    expect(run.code, run.err).toBe(0);
    const report = run.json();
    const repoint = (report.steps as { step: string; startMs: number; endMs: number }[]).find((st) => st.step === 'repoint')!;
    console.log(`MariaDB cutover ${db}${extra ? ` (${extra})` : ''}: write-blocked window ${report.writeBlockedMs} ms, repoint step ${repoint.endMs - repoint.startMs} ms`);
    return { plan, report, output: [sync.out, sync.err, run.out, run.err].join('\n') };
  }

  it('forward under writers, writes on the new primary, revert: every acknowledged write of both phases is on the old source, no client refused', async () => {
    const workload = workloadThroughHaproxy(e, 'shop');
    let plan: string;
    let revert;
    try {
      await sleep(300);
      const fwd = await cutOver('shop');
      plan = fwd.plan;
      expect(fwd.report.reverse).toEqual({ state: 'following' });
      expect(await haproxyPort(e)).toBe(e.dst.port);
      const atSwitch = (await mysqlKeysOn(e.dst, 'shop')).size;
      // The old source is read-only to applications and receives the new primary's writes.
      await sleep(1000);
      // The writers wrote on the new primary meanwhile (those writes are checked on the old source below).
      expect((await mysqlKeysOn(e.dst, 'shop')).size).toBeGreaterThan(atSwitch);
      expect(await appCanWrite(e.src, 'shop')).toBe(false);
      const status = (await cli(['status', plan, '--json'], e.env)).json();
      expect(status.reverse).toMatchObject({ state: 'following' });
      expect(typeof (status.reverse as { lagBytes: unknown }).lagBytes).toBe('number');
      expect(status.next).toMatch(/cutover revert/);
      expect(await replicationAccounts(e.dst)).toHaveLength(1);
      revert = await cli(['revert', plan, '--yes', '--json'], e.env);
      await sleep(700);
    } finally {
      var w = await workload.stop();
    }
    expect(revert.code, revert.err).toBe(0);
    const r = revert.json();
    console.log(`MariaDB revert through HAProxy: write-blocked window ${r.writeBlockedMs} ms, ${w.acknowledged.length} acknowledged writes, max gap ${w.maxWriteGapMs} ms, ${w.writeErrors} refused or in doubt`);
    expect(r.catchUp).toMatchObject({ method: 'gtid' });
    // No client was refused (1290) or locked out: the only failures are the fences ending each writer's session
    // (forward and back), whose write in flight is in doubt and was never acknowledged.
    const failed = w.ops.filter((o) => o.outcome !== 'ok');
    expect(failed.filter((o) => o.outcome === 'fail')).toEqual([]);
    for (const op of failed) expect(op.error).toMatch(/PROTOCOL_CONNECTION_LOST|ECONNRESET|closed/i);
    // Both phases: before the cutover (on the source all along) and between cutover and revert (on the new primary).
    expect(await mysqlMissingOn(e.src, 'shop', w)).toEqual([]);
    const onTarget = await mysqlKeysOn(e.dst, 'shop');
    expect(w.acknowledged.filter((k) => !onTarget.has(k)).length).toBeGreaterThan(0);
    expect(await haproxyPort(e)).toBe(e.src.port);
    expect(await appCanWrite(e.src, 'shop')).toBe(true);
    expect(await appCanWrite(e.dst, 'shop')).toBe(false);
    // The revert's detach and cleanup took the reverse path down: no connection, no account on either side.
    expect(await connections(e.src)).toEqual([]);
    expect(await connections(e.dst)).toEqual([]);
    expect(await replicationAccounts(e.dst)).toEqual([]);
    expect(await replicationAccounts(e.src)).toEqual([]);
    expect((await cli(['status', plan!, '--json'], e.env)).json().next).toMatch(/reverted/);
  });

  it('the reverse password stays in the old source replica settings; revert refused (exit 3, the reason and the fix) once the reverse connection stopped; finalize leaves no connection or account', async () => {
    // The first test left the old source primary and the target fenced; this cutover goes forward again.
    await exec(e.dst, 'SET GLOBAL read_only = OFF');
    const generalLog = (sb: MariadbEnv['src']) => join(sb.dir, 'general.log');
    for (const sb of [e.src, e.dst]) await exec(sb, `SET GLOBAL general_log_file = '${generalLog(sb)}'`, 'SET GLOBAL general_log = ON');
    const { plan, output } = await cutOver('broken');
    for (const sb of [e.src, e.dst]) await exec(sb, 'SET GLOBAL general_log = OFF');
    // The reverse account's random password: in the old source's replica settings (master-<connection>.info:
    // host, user, password on consecutive lines) and nowhere else: not in either server's general or binary log
    // (the account went in as a hash outside the target's binary log, CHANGE MASTER ran with sql_log_off), not in
    // the tool's output or state dir.
    let info = '';
    for (const f of await readdir(e.src.dataDir)) if (/\.info$/.test(f)) info += await readFile(join(e.src.dataDir, f), 'utf8');
    const lines = info.split('\n');
    const user = lines.findIndex((l) => /^cutover_repl_\w+_revert$/.test(l));
    expect(user).toBeGreaterThan(0);
    const password = lines[user + 1]!;
    expect(password.length).toBeGreaterThanOrEqual(32);
    const binlogs = async (sb: MariadbEnv['src']) => {
      const c = await connect(sb);
      const [rows] = await c.query('SHOW BINLOG EVENTS');
      await c.end();
      return JSON.stringify(rows);
    };
    const state = await Promise.all((await readdir(stateDir)).map((f) => readFile(join(stateDir, f), 'utf8').catch(() => '')));
    const everywhere = [await readFile(generalLog(e.src), 'utf8'), await readFile(generalLog(e.dst), 'utf8'), await binlogs(e.src), await binlogs(e.dst), output, ...state];
    for (const text of everywhere) expect(text).not.toContain(password);
    expect(await readFile(generalLog(e.dst), 'utf8')).toMatch(/CREATE OR REPLACE USER 'cutover_repl_\w+_revert'@'%' IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}'/);
    expect(await binlogs(e.dst)).not.toMatch(/cutover_repl_/);

    // A write on the new primary reaches the old source while the path is intact.
    await exec(e.dst, `INSERT INTO broken.items (name) VALUES ('after the switch')`);
    const seen = async () => {
      const c = await connect(e.src);
      const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT 1 FROM broken.items WHERE name = 'after the switch'`);
      await c.end();
      return rows.length;
    };
    for (const deadline = Date.now() + 20_000; (await seen()) === 0 && Date.now() < deadline;) await sleep(100);
    expect(await seen()).toBe(1);
    const [name] = await connections(e.src);
    expect(name).toMatch(/^cutover_broken_.*_revert$/);
    await exec(e.src, `STOP SLAVE '${name}'`);

    const status = (await cli(['status', plan, '--json'], e.env)).json();
    expect(status.reverse).toMatchObject({ state: 'broken' });
    const refused = await cli(['revert', plan, '--yes'], e.env);
    expect(refused.code).toBe(3);
    expect(refused.err).toMatch(/refused: the old source no longer follows the new primary \(the replica connection .* on the old source is stopped/);
    expect(refused.err).toMatch(new RegExp(`START SLAVE '${name}'`));
    expect(refused.err).not.toMatch(/\n\s+at /);
    // Nothing was changed: the new primary takes writes, the old source does not.
    expect(await appCanWrite(e.dst, 'broken')).toBe(true);
    expect(await appCanWrite(e.src, 'broken')).toBe(false);

    const fin = await cli(['finalize', plan, '--yes', '--json'], e.env);
    expect(fin.code, fin.err).toBe(0);
    expect((fin.json().dropped as string[]).join(', ')).toMatch(/replica connection .*old source.*replication account .*target/);
    expect(await connections(e.src)).toEqual([]);
    expect(await replicationAccounts(e.dst)).toEqual([]);
    expect((await cli(['status', plan, '--json'], e.env)).json().reverse).toMatchObject({ state: 'absent' });
    const late = await cli(['revert', plan, '--yes'], e.env);
    expect(late.code).toBe(3);
    expect(late.err).toMatch(/finalize/);
  });

  it('reverse: false: no reverse connection or account, revert refused (exit 2) saying why', async () => {
    // The previous test left the target primary (its read_only OFF) and the old source fenced.
    await exec(e.src, 'SET GLOBAL read_only = OFF');
    const { plan, report } = await cutOver('noreverse', 'reverse: false');
    expect(report.reverse).toBeUndefined();
    expect(await connections(e.src)).toEqual([]);
    expect(await replicationAccounts(e.dst)).toEqual([]);
    const refused = await cli(['revert', plan, '--yes'], e.env);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/reverse: false/);
  });
});
