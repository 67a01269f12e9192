import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OperationError } from '../../src/errors.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { connectMysql, mapMysqlError } from './mysql-connection.js';
import { quoteIdent } from './mysql-sql.js';

/**
 * Runs a transform file on the target's copy of one database inside one transaction. DDL commits implicitly
 * on MySQL/MariaDB, so only a file of DML statements is all or nothing; a failed statement ends the session,
 * which rolls back what the transaction held. Bounded client-side by `timeoutMs` (the connection is dropped).
 */
export async function runMysqlSqlTransform(target: DbEndpoint, database: string, sql: string, timeoutMs: number, doing: string): Promise<void> {
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
 * A `[client]` option file (mode 0600) for a transform command: `mariadb --defaults-extra-file=$F` then
 * connects to the target with no password in argv or in the command's environment. Removed by `remove()`.
 */
export async function clientOptionFile(dir: string, target: DbEndpoint, database: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = join(dir, `transform-${process.pid}-${Date.now()}.cnf`);
  const socket = target.host.startsWith('/') ? target.host : target.params.socket;
  const lines = ['[client]', ...(socket ? [`socket=${optionValue(socket)}`, 'protocol=SOCKET'] : [`host=${optionValue(target.host)}`, `port=${target.port}`, 'protocol=TCP']), `user=${optionValue(target.user)}`, `password=${optionValue(target.password ?? '')}`, '', '# the mariadb/mysql client only: other client tools do not know this option', '[mysql]', `database=${optionValue(database)}`];
  await writeFile(path, lines.join('\n') + '\n', { mode: 0o600 });
  // writeFile's mode is masked by the umask only when creating; make sure of 0600 whatever the umask.
  await chmod(path, 0o600);
  return { path, remove: () => rm(path, { force: true }) };
}
