import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbSandbox } from '../../adapters/mysql/mariadb-sandbox.js';
import { cli, tempStateDir, type CliRun } from '../helpers/cli.js';
import { connect, exec, mariadbMissing } from '../helpers/mariadb.js';

const SRC_PASSWORD = 'Src-Admin:Secret/81';
const DST_PASSWORD = 'Dst-Admin:Secret/82';
const DB = 'creds';

/** Every file the replica keeps its connection settings in (MariaDB: master-<connection>.info in the datadir). */
async function replicaInfoFiles(sb: MariadbSandbox): Promise<string> {
  const parts: string[] = [];
  for (const f of await readdir(sb.dataDir)) if (/\.info$/.test(f)) parts.push(await readFile(join(sb.dataDir, f), 'utf8'));
  return parts.join('\n');
}

async function rows(sb: MariadbSandbox, password: string, sql: string): Promise<mysql.RowDataPacket[]> {
  const c = await connect(sb, { password });
  try {
    const [r] = await c.query<mysql.RowDataPacket[]>(sql);
    return r;
  } finally {
    await c.end();
  }
}

describe.skipIf(mariadbMissing)('MariaDB: the replica logs in with a short-lived replication account, never the admin account', () => {
  let src: MariadbSandbox;
  let dst: MariadbSandbox;
  const env = { SRC_PW: SRC_PASSWORD, DST_PW: DST_PASSWORD };
  // Both servers log every statement: a password sent in a statement would show there.
  const generalLog = { 'general-log': 1, 'general-log-file': 'general.log' };

  beforeAll(async () => {
    [src, dst] = await Promise.all([
      MariadbSandbox.start({ password: SRC_PASSWORD, serverId: 1, settings: generalLog }),
      MariadbSandbox.start({ password: DST_PASSWORD, serverId: 2, settings: generalLog }),
    ]);
    await exec(src, `CREATE DATABASE ${DB}`, `USE ${DB}`, 'CREATE TABLE items (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(64) NOT NULL)', `INSERT INTO items (name) SELECT CONCAT('item ', seq) FROM seq_1_to_500`);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  it('after sync, rollback, rollback --cleanup, sync and run: the admin password is in no replica metadata or target log; the random one in no log or journal', async () => {
    const stateDir = await tempStateDir(src.dir);
    const plan = join(stateDir, 'plan.yaml');
    await writeFile(
      plan,
      [
        'engine: mariadb',
        `source: { url: "mariadb://root@127.0.0.1:${src.port}/${DB}", passwordEnv: SRC_PW }`,
        `target: { url: "mariadb://root@127.0.0.1:${dst.port}/${DB}", passwordEnv: DST_PW }`,
        `scope: { databases: ["${DB}"] }`,
        'limits: { maxWriteBlocked: 10s }',
        'router: { kind: none }',
        `state: "${stateDir}"`,
      ].join('\n'),
    );
    const runs: CliRun[] = [];
    const step = async (argv: string[]) => {
      const r = await cli(argv, env);
      runs.push(r);
      expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(0);
      return r;
    };
    const targetLogs = async () => [await dst.log(), await readFile(join(dst.dataDir, 'general.log'), 'utf8'), await replicaInfoFiles(dst)];
    const adminAbsentOnTarget = async () => {
      const status = await rows(dst, DST_PASSWORD, 'SHOW ALL SLAVES STATUS');
      expect(JSON.stringify(status)).not.toContain(SRC_PASSWORD);
      for (const text of await targetLogs()) expect(text).not.toContain(SRC_PASSWORD);
    };
    const accounts = async () => (await rows(src, SRC_PASSWORD, `SELECT User AS u FROM mysql.user WHERE User LIKE 'cutover\\_repl\\_%'`)).map((r) => String(r.u));
    const randomPassword = async () => {
      const info = await replicaInfoFiles(dst);
      const user = /^(cutover_repl_[0-9a-f]{12})$/m.exec(info)?.[1];
      expect(user).toBeDefined();
      // master.info: host, user, password on consecutive lines.
      const lines = info.split('\n');
      return lines[lines.indexOf(user!) + 1]!;
    };

    await step(['sync', plan]);
    const [replica] = (await rows(dst, DST_PASSWORD, 'SHOW ALL SLAVES STATUS')).filter((r) => String(r.Connection_name).startsWith('cutover_'));
    expect(replica).toMatchObject({ Slave_IO_Running: 'Yes', Master_User: expect.stringMatching(/^cutover_repl_[0-9a-f]{12}$/) });
    const first = await randomPassword();
    expect(first.length).toBeGreaterThanOrEqual(32);
    await adminAbsentOnTarget();
    const status = (await step(['status', plan, '--json'])).json();
    expect(status.leftovers.map((l: { kind: string }) => l.kind)).toEqual(['replica connection', 'replication account']);

    await step(['rollback', plan]);
    await adminAbsentOnTarget();
    await step(['rollback', plan, '--cleanup']);
    expect(await accounts()).toEqual([]);

    await exec(dst, `DROP DATABASE ${DB}`);
    await step(['sync', plan]);
    const second = await randomPassword();
    expect(second).not.toBe(first);
    await step(['run', plan, '--yes', '--json']);
    await adminAbsentOnTarget();
    expect(await accounts()).toEqual([]);
    expect((await step(['status', plan, '--json'])).json().leftovers).toEqual([]);
    expect(Number((await rows(dst, DST_PASSWORD, `SELECT COUNT(*) AS n FROM ${DB}.items`))[0]!.n)).toBe(500);

    // The generated passwords: not in the source's general or binary log (the account went in as a hash, outside the
    // binary log), not in the target's general log (CHANGE MASTER ran with sql_log_off), not in the tool's output.
    const srcGeneral = await readFile(join(src.dataDir, 'general.log'), 'utf8');
    expect(srcGeneral).toMatch(/CREATE OR REPLACE USER 'cutover_repl_[0-9a-f]{12}'@'%' IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}'/);
    const binlogs = await rows(src, SRC_PASSWORD, "SHOW BINLOG EVENTS");
    expect(JSON.stringify(binlogs)).not.toMatch(/cutover_repl_/);
    const journal: string[] = runs.flatMap((r) => [r.out, r.err]);
    for (const f of await readdir(stateDir)) journal.push(await readFile(join(stateDir, f), 'utf8').catch(() => ''));
    const everywhere = [srcGeneral, await src.log(), await dst.log(), await readFile(join(dst.dataDir, 'general.log'), 'utf8'), ...journal];
    for (const text of everywhere) for (const pw of [first, second]) expect(text).not.toContain(pw);
  }, 240_000);
});
