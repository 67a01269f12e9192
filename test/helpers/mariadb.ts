import mysql from 'mysql2/promise';
import { runCli } from '../../src/cli/program.js';
import { findMariadbBinaries } from '../../adapters/mysql/mariadb-binaries.js';
import { MariadbSandbox } from '../../adapters/mysql/mariadb-sandbox.js';
import { missing } from './availability.js';

export const mariadbMissing = await missing('MariaDB server binaries (mariadb-server)', () => findMariadbBinaries());

/** A connection to a sandbox; errors after a KILL are expected in tests, so the 'error' event is swallowed. */
export async function connect(sb: { host: string; port: number; password: string }, opts: { user?: string; password?: string } = {}): Promise<mysql.Connection> {
  const c = await mysql.createConnection({ host: sb.host, port: sb.port, user: opts.user ?? 'root', password: opts.password ?? sb.password });
  c.on('error', () => {});
  return c;
}

/** Runs each statement on a short-lived root connection. */
export async function exec(sb: MariadbSandbox, ...sql: string[]): Promise<void> {
  const c = await connect(sb);
  try {
    for (const s of sql) await c.query(s);
  } finally {
    await c.end();
  }
}

/** An app account with all privileges on one database. */
export async function createAppUser(sb: MariadbSandbox, user: string, password: string, database: string, extra = ''): Promise<void> {
  await exec(sb, `CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`, `GRANT ALL ON \`${database}\`.* TO '${user}'@'%'`, ...(extra ? [extra] : []));
}

export interface CliRun {
  code: number;
  out: string;
  err: string;
  /** stdout parsed, for --json runs. */
  json: () => Record<string, unknown>;
}

/** Runs the CLI in-process with MYSQL_PWD set, collecting stdout and stderr. */
export async function cli(args: string[], env: Record<string, string | undefined>): Promise<CliRun> {
  let out = '';
  let err = '';
  const code = await runCli(args, { out: (t) => void (out += t), err: (t) => void (err += t), env, isTTY: false });
  return { code, out, err, json: () => JSON.parse(out) as Record<string, unknown> };
}

/** errno of a failed query, or 'ok' when it succeeded (a connection closed by KILL has no errno). */
export async function outcome(p: Promise<unknown>): Promise<number | string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    const err = e as { errno?: number; code?: string; message?: string };
    return err.errno ?? err.code ?? err.message ?? 'error';
  }
}

export async function readOnly(sb: MariadbSandbox): Promise<number> {
  const c = await connect(sb);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.read_only AS ro');
    return Number(rows[0]!.ro);
  } finally {
    await c.end();
  }
}

/** Row count and CHECKSUM TABLE of each table of `db`: equal on both sides means equal contents. */
export async function digests(sb: MariadbSandbox, db: string, tables: readonly string[]): Promise<Record<string, string>> {
  const c = await connect(sb);
  try {
    const out: Record<string, string> = {};
    for (const t of tables) {
      const [[s]] = await c.query<mysql.RowDataPacket[]>(`CHECKSUM TABLE \`${db}\`.\`${t}\` EXTENDED`);
      const [[n]] = await c.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${db}\`.\`${t}\``);
      out[t] = `${n!.n}:${s!.Checksum}`;
    }
    return out;
  } finally {
    await c.end();
  }
}

/** Waits (at most 30 s) until the target applied everything the source logged; MASTER_GTID_WAIT's result (0: reached). */
export async function targetCaughtUp(src: MariadbSandbox, dst: MariadbSandbox): Promise<number> {
  const [s, d] = await Promise.all([connect(src), connect(dst)]);
  try {
    const [[g]] = await s.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.gtid_binlog_pos AS g');
    const [[r]] = await d.query<mysql.RowDataPacket[]>('SELECT MASTER_GTID_WAIT(?, 30) AS r', [g!.g]);
    return Number(r!.r);
  } finally {
    await Promise.all([s.end(), d.end()]);
  }
}

/** The trigger names of `db` and the index names of `db`.`table` on one server, sorted. */
export async function triggersAndIndexes(sb: MariadbSandbox, db: string, table: string): Promise<{ triggers: string[]; indexes: string[] }> {
  const c = await connect(sb);
  try {
    const [t] = await c.query<mysql.RowDataPacket[]>('SELECT TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1', [db]);
    const [i] = await c.query<mysql.RowDataPacket[]>('SELECT DISTINCT INDEX_NAME AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY 1', [db, table]);
    return { triggers: t.map((r) => String(r.n)), indexes: i.map((r) => String(r.n)) };
  } finally {
    await c.end();
  }
}

export { MariadbSandbox };
