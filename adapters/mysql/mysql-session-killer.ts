import type { RowDataPacket } from 'mysql2/promise';
import { UsageError } from '../../src/errors.js';
import type { Query } from './mysql-sessions.js';
import { killSql } from './mysql-sql.js';

/**
 * How this server's admin ends another session: `KILL CONNECTION` (needs CONNECTION ADMIN on MariaDB 10.5.2+,
 * CONNECTION_ADMIN or SUPER on MySQL, for sessions of other accounts), or the provider's procedure where the
 * admin has no such privilege (Amazon RDS / Aurora MySQL and RDS for MariaDB: `CALL mysql.rds_kill(id)`).
 */
export interface SessionKiller {
  /** For messages: `KILL CONNECTION` or `CALL mysql.rds_kill`. */
  readonly how: string;
  sql(threadId: string | number): string;
}

export const KILL_CONNECTION: SessionKiller = { how: 'KILL CONNECTION', sql: killSql };

export const RDS_KILL: SessionKiller = {
  how: 'CALL mysql.rds_kill',
  // CALL takes no placeholders through every driver path: the id is checked to be a plain integer first.
  sql: (threadId) => {
    const id = String(threadId);
    if (!/^\d+$/.test(id)) throw new UsageError(`not a thread id: ${id}`, 'pass a numeric connection id');
    return `CALL mysql.rds_kill(${id})`;
  },
};

/** Whether the server has the provider's kill procedure (a stored procedure in the mysql schema). */
export async function hasRdsKill(q: Query): Promise<boolean> {
  const rows = await q<RowDataPacket>(`SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME = 'rds_kill' AND ROUTINE_TYPE = 'PROCEDURE'`, [], 'looking for mysql.rds_kill');
  return rows.length > 0;
}

/** The provider's procedure where it exists (its admin may not KILL other accounts' sessions), else KILL. */
export async function sessionKiller(q: Query): Promise<SessionKiller> {
  return (await hasRdsKill(q)) ? RDS_KILL : KILL_CONNECTION;
}
