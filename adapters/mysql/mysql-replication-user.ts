import { createHash } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import type { Leftover } from '../../src/engine/cutover-adapter.js';
import { PreflightError } from '../../src/errors.js';
import type { MysqlFlavor } from './mysql-flavor.js';
import type { Query } from './mysql-sessions.js';
import { quoteString } from './mysql-sql.js';

/** mysql_native_password's stored form: `*` + SHA1(SHA1(password)) in upper-case hex. */
export function nativePasswordHash(password: string): string {
  const inner = createHash('sha1').update(password, 'utf8').digest();
  return `*${createHash('sha1').update(inner).digest('hex').toUpperCase()}`;
}

/**
 * Statements that create (or re-create with a new password) the replication account with REPLICATION SLAVE only.
 * MariaDB gets the password's hash (IDENTIFIED BY PASSWORD), so no statement or binary log carries the password
 * itself; MySQL rewrites IDENTIFIED BY in its logs on its own.
 */
export function createReplicationUserSql(f: MysqlFlavor, user: string, password: string): { sql: string; params: unknown[] }[] {
  const account = `${quoteString(user)}@'%'`;
  if (f.kind === 'mariadb') {
    return [
      { sql: `CREATE OR REPLACE USER ${account} IDENTIFIED BY PASSWORD ?`, params: [nativePasswordHash(password)] },
      { sql: `GRANT REPLICATION SLAVE ON *.* TO ${account}`, params: [] },
    ];
  }
  return [
    { sql: `CREATE USER IF NOT EXISTS ${account} IDENTIFIED BY ?`, params: [password] },
    { sql: `ALTER USER ${account} IDENTIFIED BY ?`, params: [password] },
    { sql: `GRANT REPLICATION SLAVE ON *.* TO ${account}`, params: [] },
  ];
}

export function dropReplicationUserSql(user: string): string {
  return `DROP USER IF EXISTS ${quoteString(user)}@'%'`;
}

export async function replicationUserExists(q: Query, user: string): Promise<boolean> {
  return (await q<RowDataPacket>(`SELECT 1 FROM mysql.user WHERE User = ? AND Host = '%'`, [user], 'looking for the replication account')).length > 0;
}

export async function replicationUserLeftover(q: Query, user: string): Promise<Leftover[]> {
  if (!(await replicationUserExists(q, user))) return [];
  return [{ where: 'source', kind: 'replication account', name: user, drop: `${dropReplicationUserSql(user)};`, retainsWal: false }];
}

/**
 * Runs `fn` with a session logging switch set, and puts it back after. sql_log_bin = 0 keeps the account
 * statements out of the source's binary log (the account exists for this job only and must not replicate to the
 * source's other replicas). Without the privilege to switch, the server's setting stays: the account statements
 * carry no password (see createReplicationUserSql).
 */
export async function withSessionLog(q: Query, variable: 'sql_log_bin', value: 0 | 1, fn: () => Promise<void>): Promise<void> {
  const set = await q(`SET SESSION ${variable} = ${value}`, [], `setting ${variable}`).then(
    () => true,
    () => false,
  );
  try {
    await fn();
  } finally {
    if (set) await q(`SET SESSION ${variable} = ${1 - value}`, [], `resetting ${variable}`).catch(() => {});
  }
}

/** long_query_time's maximum on MySQL and MariaDB: a statement of this session is never slow enough to be logged. */
const NEVER_SLOW = 31_536_000;

/**
 * Runs `fn` (a statement carrying the replication password) outside the target's statement logs: sql_log_off = 1
 * for the session (general log), and a session long_query_time no statement reaches (slow log: with
 * long_query_time = 0 it prints every statement, and MariaDB does not rewrite the password out of CHANGE MASTER
 * or a CALL; any account may set its own long_query_time). Without the privilege to switch sql_log_off, refuses
 * when the general log is on.
 */
export async function withoutStatementLog(q: Query, fn: () => Promise<void>): Promise<void> {
  const set = await q('SET SESSION sql_log_off = 1', [], 'setting sql_log_off').then(
    () => true,
    () => false,
  );
  if (!set) {
    const rows = await q<RowDataPacket>('SELECT @@GLOBAL.general_log AS g', [], 'reading general_log');
    if (Number(rows[0]?.['g']) === 1) {
      throw new PreflightError(
        'privilege',
        `the target has general_log = ON and this account cannot set sql_log_off for its session: CHANGE MASTER would write the replication password to the target's general log`,
        'grant this account SUPER (MariaDB) or SYSTEM_VARIABLES_ADMIN (MySQL), or turn the general log off on the target for the sync',
      );
    }
  }
  const [lq] = await q<RowDataPacket & { t: number }>('SELECT @@SESSION.long_query_time AS t', [], 'reading long_query_time');
  await q(`SET SESSION long_query_time = ${NEVER_SLOW}`, [], 'keeping the statement out of the slow query log');
  try {
    await fn();
  } finally {
    await q(`SET SESSION long_query_time = ${Number(lq?.t ?? 10)}`, [], 'resetting long_query_time').catch(() => {});
    if (set) await q('SET SESSION sql_log_off = 0', [], 'resetting sql_log_off').catch(() => {});
  }
}
