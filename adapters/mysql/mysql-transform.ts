import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SqlTransformRequest, TransformCommandConnection, TransformCommandRequest } from '../../src/engine/dialect.js';
import { OperationError } from '../../src/errors.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { connectMysql, mapMysqlError } from './mysql-connection.js';
import { quoteIdent } from './mysql-sql.js';

/**
 * Runs a transform file on the target's copy of one database inside one transaction. DDL commits implicitly
 * on MySQL/MariaDB, so only a file of DML statements is all or nothing; a failed statement ends the session,
 * which rolls back what the transaction held. Bounded client-side by `timeoutMs` (the connection is dropped).
 */
export async function runMysqlSqlTransform({ target, database, sql, timeoutMs, doing }: SqlTransformRequest): Promise<void> {
  try {
    await runInOneTransaction(target, database, sql, timeoutMs, doing);
  } catch (e) {
    throw new OperationError(e instanceof Error ? e.message : String(e), 'the tenant stays on its source (statements before a DDL one may have committed on its copy); fix the transform and run `cutover waves` again', {
      cause: e,
    });
  }
}

async function runInOneTransaction(target: DbEndpoint, database: string, sql: string, timeoutMs: number, doing: string): Promise<void> {
  const { conn } = await connectMysql(target, { multipleStatements: true });
  try {
    await conn.query(`USE ${quoteIdent(database)}`);
    await conn.query('START TRANSACTION');
    await conn.query({ sql, timeout: Math.max(1, Math.floor(timeoutMs)) });
    await conn.query('COMMIT');
  } catch (e) {
    throw mapMysqlError(e, target, doing);
  } finally {
    // destroy, not end: a failed or timed-out transaction must not be committed by anything that follows.
    conn.destroy();
  }
}

function optionValue(v: string): string {
  if (/[\n\r\0]/.test(v)) throw new OperationError('the target password contains a line break, which a client option file cannot hold', 'use a command transform that reads CUTOVER_TARGET_* itself');
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * A `[client]` option file (mode 0600) for a transform command, named by CUTOVER_MYSQL_DEFAULTS_FILE:
 * `mariadb --defaults-extra-file=$F` then connects to the target with no password in argv or in the command's
 * environment. Removed by `dispose()`.
 */
export async function mysqlTransformConnection({ target, database, dir }: TransformCommandRequest): Promise<TransformCommandConnection> {
  const path = join(dir, `transform-${process.pid}-${Date.now()}.cnf`);
  const socket = target.host.startsWith('/') ? target.host : target.params.socket;
  const lines = [
    '[client]',
    ...(socket ? [`socket=${optionValue(socket)}`, 'protocol=SOCKET'] : [`host=${optionValue(target.host)}`, `port=${target.port}`, 'protocol=TCP']),
    `user=${optionValue(target.user)}`,
    `password=${optionValue(target.password ?? '')}`,
    '',
    '# the mariadb/mysql client only: other client tools do not know this option',
    '[mysql]',
    `database=${optionValue(database)}`,
  ];
  await writeFile(path, lines.join('\n') + '\n', { mode: 0o600 });
  // writeFile's mode is masked by the umask only when creating; make sure of 0600 whatever the umask.
  await chmod(path, 0o600);
  return { env: { CUTOVER_MYSQL_DEFAULTS_FILE: path }, dispose: () => rm(path, { force: true }) };
}
