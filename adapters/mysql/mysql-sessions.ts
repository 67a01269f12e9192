import type { RowDataPacket } from 'mysql2/promise';
import type { SessionInfo } from '../../src/readonly/types.js';
import { sleep } from '../../src/util/sleep.js';
import { KILL_CONNECTION, type SessionKiller } from './mysql-session-killer.js';
import { mysqlErrno } from './mysql-connection.js';

/** Runs one query; the adapter passes its error-mapping wrapper. */
export type Query = <R extends RowDataPacket>(sql: string, params?: unknown[], doing?: string) => Promise<R[]>;

/**
 * information_schema.INNODB_TRX is served from a cache that InnoDB refreshes only when nobody read it in the
 * last 100 ms (measured on MariaDB 10.11: polling every 25 ms kept showing a transaction long gone). Every
 * poll of open transactions waits longer than that, and the first read waits that long after the fence.
 */
export const INNODB_TRX_CACHE_MS = 110;

export interface MysqlSession extends SessionInfo {
  threadId: string;
  command: string;
  /** Rows the open InnoDB transaction changed; 0 without one. */
  rowsModified: number;
  /** The session has an open InnoDB transaction. */
  inTransaction: boolean;
  /** MariaDB's QUERY_ID and, between statements, how long the session has been idle (asked for by `activity`). */
  activity?: { queryId: string; idleMs: number | null };
}

export interface SessionFilter {
  /** Only sessions whose transaction changed rows (innodb_trx.trx_rows_modified > 0). */
  writingOnly?: boolean;
  /** Only sessions of these user names. */
  users?: readonly string[];
  /** Thread ids to leave out (the cutover's own sessions). */
  exempt?: readonly string[];
  /**
   * Read each session's QUERY_ID and idle time (MariaDB's process list: QUERY_ID, TIME_MS). MySQL's has neither
   * column: the query fails with ER_BAD_FIELD_ERROR.
   */
  activity?: boolean;
}

/**
 * Replication threads (a replica's Binlog Dump on this server, this server's own replica threads), the event
 * scheduler and other server threads: never reported, never killed. Not `Connect`: an authenticated login shows it
 * until its first command, and it already holds its database's privileges from before a revoke (MySQL's replica
 * threads show it too, as `system user`).
 */
const SERVER_COMMANDS = ['Daemon', 'Binlog Dump', 'Binlog Dump GTID', 'Killed', 'Slave_IO', 'Slave_SQL', 'Slave_worker'];
const SERVER_USERS = ['system user', 'event_scheduler', 'DELAYED', 'unauthenticated user'];

interface Row extends RowDataPacket {
  id: string;
  user: string | null;
  host: string | null;
  db: string | null;
  command: string | null;
  state: string | null;
  rows_modified: string | null;
  trx_age_ms: string | null;
  query_id?: string | number | null;
  idle_ms?: string | number | null;
}

/** Client sessions except the tool's own, with their InnoDB transaction if any. */
export async function clientSessions(q: Query, filter: SessionFilter = {}): Promise<MysqlSession[]> {
  const params: unknown[] = [SERVER_COMMANDS, SERVER_USERS];
  const cond = ['p.ID <> CONNECTION_ID()', 'p.COMMAND NOT IN (?)', "COALESCE(p.USER, '') NOT IN (?)"];
  if (filter.writingOnly) cond.push('t.trx_rows_modified > 0');
  if (filter.users) {
    if (filter.users.length === 0) return [];
    params.push(filter.users);
    cond.push('p.USER IN (?)');
  }
  if (filter.exempt?.length) {
    params.push(filter.exempt);
    cond.push('p.ID NOT IN (?)');
  }
  const activity = filter.activity ? `, p.QUERY_ID AS query_id, IF(p.COMMAND = 'Sleep', p.TIME_MS, NULL) AS idle_ms` : '';
  const rows = await q<Row>(
    `SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.DB AS db, p.COMMAND AS command, p.STATE AS state,
            t.trx_rows_modified AS rows_modified,
            TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) DIV 1000 AS trx_age_ms${activity}
       FROM information_schema.PROCESSLIST p
       LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
      WHERE ${cond.join(' AND ')}
      ORDER BY p.ID`,
    params,
    'listing sessions',
  );
  return rows.map(toSession);
}

function toSession(r: Row): MysqlSession {
  return {
    id: String(r.id),
    threadId: String(r.id),
    user: r.user ?? '',
    ...(r.db ? { database: r.db } : {}),
    ...(r.host ? { client: r.host } : {}),
    ...(r.command ? { state: r.state ? `${r.command}: ${r.state}` : r.command } : {}),
    ...(r.trx_age_ms !== null ? { transactionAgeMs: Number(r.trx_age_ms) } : {}),
    command: r.command ?? '',
    rowsModified: Number(r.rows_modified ?? 0),
    inTransaction: r.rows_modified !== null,
    ...(r.query_id !== undefined && r.query_id !== null ? { activity: { queryId: String(r.query_id), idleMs: r.idle_ms === null || r.idle_ms === undefined ? null : Number(r.idle_ms) } } : {}),
  };
}

/** The public shape (drops internal fields so reports stay stable). */
export function publicSession(s: MysqlSession, reason?: string): SessionInfo {
  const { threadId: _t, command: _c, rowsModified: _r, inTransaction: _i, activity: _a, ...rest } = s;
  return reason ? { ...rest, reason } : rest;
}

const ER_NO_SUCH_THREAD = 1094;
const ER_BAD_FIELD_ERROR = 1054;

/**
 * Kills sessions and waits until they are gone (or rolling back: see KILLED_SETTLE_MS), so that a transaction that
 * was open cannot commit after this returns. Returns the thread ids that were actually ended.
 */
export async function killSessions(q: Query, threadIds: string[], waitMs = 5000, killer: SessionKiller = KILL_CONNECTION): Promise<Set<string>> {
  const ended: string[] = [];
  for (const id of threadIds) if (await killOne(q, id, killer)) ended.push(id);
  return waitGone(q, ended, waitMs);
}

/** A session ended by endSessionsAtBoundaries, and whether it was between statements when killed. */
export interface EndedSession {
  session: MysqlSession;
  idle: boolean;
}

/** How often the boundary loop looks at the process list (live, unlike INNODB_TRX). */
const BOUNDARY_POLL_MS = 5;

/**
 * How long a session that logged in but has sent no statement yet is left to send its first one. A client
 * that connects for each operation (PHP, the rehearsal's writers) sends it right after its login: killed in
 * between, that statement meets a dead connection and the client cannot tell whether it ran (seen in CI as
 * three writes in doubt). Left alone, the statement runs (the server is not read-only yet) and the session is
 * ended at its next boundary, or closes. A pool's idle login that sends nothing is ended once this has passed.
 */
export const FRESH_LOGIN_GRACE_MS = 50;

/**
 * Ends every client session (never the tool's own, replication or server threads, nor `exempt`) at a
 * statement boundary: a session is killed when the process list shows it idle between statements (`Sleep`),
 * so its client sees a lost connection on an idle connection, never an error inside a statement. A session
 * still running a statement after `timeoutMs` is killed anyway (that statement rolls back; its client is told).
 * An open transaction of a killed session rolls back: its COMMIT can never succeed afterwards. Returns once
 * every ended session is gone (or rolling back: KILLED_SETTLE_MS), so nothing it did can still commit. On MariaDB a login that
 * has not sent its first statement gets FRESH_LOGIN_GRACE_MS to send it (MySQL's process list cannot tell).
 */
export async function endSessionsAtBoundaries(
  q: Query,
  opts: { exempt: readonly string[]; timeoutMs: number; users?: readonly string[]; killer?: SessionKiller; freshLoginGraceMs?: number },
): Promise<{ ended: EndedSession[]; failed: MysqlSession[] }> {
  const deadline = Date.now() + opts.timeoutMs;
  const ended = new Map<string, EndedSession>();
  const filter: SessionFilter = { exempt: opts.exempt, ...(opts.users ? { users: opts.users } : {}) };
  const graceMs = opts.freshLoginGraceMs ?? FRESH_LOGIN_GRACE_MS;
  let activity = true;
  const list = async (): Promise<MysqlSession[]> => {
    if (activity) {
      try {
        return await clientSessions(q, { ...filter, activity });
      } catch (e) {
        if (mysqlErrno(e) !== ER_BAD_FIELD_ERROR) throw e;
        activity = false;
      }
    }
    return clientSessions(q, filter);
  };
  const logins = new FreshLogins(graceMs);
  for (;;) {
    const left = (await list()).filter((s) => !ended.has(s.threadId) && s.command !== 'Killed');
    if (left.length === 0) break;
    const late = Date.now() >= deadline;
    logins.observe(left);
    const now = left.filter((s) => late || (s.command === 'Sleep' && !logins.spare(s)));
    for (const s of now) {
      if (await killOne(q, s.threadId, opts.killer)) ended.set(s.threadId, { session: s, idle: s.command === 'Sleep' });
    }
    if (late) break;
    await sleep(BOUNDARY_POLL_MS);
  }
  const gone = await waitGone(q, [...ended.keys()], 5000);
  const failed: MysqlSession[] = [];
  for (const [id, e] of ended) {
    if (!gone.has(id)) {
      ended.delete(id);
      failed.push(e.session);
    }
  }
  return { ended: [...ended.values()], failed };
}

/**
 * Which idle sessions may be logins that have not sent their first statement yet. MariaDB's process list has no
 * login time, and QUERY_ID 0 is no sign: a connection served by a cached thread shows the query id of that
 * thread's previous connection (THD::reset_for_reuse keeps it; measured: every login after a closed one). What
 * tells is the first sighting: a session first seen idle for less than the grace, whose QUERY_ID has not moved
 * since, has sent nothing the fence has seen; it is spared until its idle time passes the grace. A session seen
 * running a statement, or whose QUERY_ID moved, is ended at its next boundary. A busy session first met in a
 * short pause is spared until that pause passes the grace or it sends its next statement (then it is ended at the
 * pause after it). A session with an open InnoDB transaction has sent statements: never spared.
 */
class FreshLogins {
  private readonly firstSeen = new Map<string, string | null>();
  constructor(private readonly graceMs: number) {}

  /** Records the sessions seen for the first time: the QUERY_ID of those idle for less than the grace. */
  observe(sessions: readonly MysqlSession[]): void {
    for (const s of sessions) {
      // A login still in its connect phase has not reached its first command: it is first seen when it has.
      if (this.firstSeen.has(s.threadId) || s.command === 'Connect') continue;
      const a = s.activity;
      this.firstSeen.set(s.threadId, a && a.idleMs !== null && a.idleMs < this.graceMs ? a.queryId : null);
    }
  }

  spare(s: MysqlSession): boolean {
    const a = s.activity;
    return !s.inTransaction && a !== undefined && a.idleMs !== null && a.idleMs < this.graceMs && this.firstSeen.get(s.threadId) === a.queryId;
  }
}

/** KILL CONNECTION (or the provider's procedure); a session that ended on its own meanwhile counts as ended. */
async function killOne(q: Query, id: string, killer: SessionKiller = KILL_CONNECTION): Promise<boolean> {
  try {
    await q(killer.sql(id), [], `killing session ${id}`);
    return true;
  } catch (e) {
    if (mysqlErrno(e) === ER_NO_SUCH_THREAD) return true;
    throw e;
  }
}

/**
 * How long a killed session may stay in the process list as `Killed` before it counts as ended. KILL marks the
 * session at once, but a statement already committing goes on to write its commit (a fence read its position
 * while one did, and the leak check then found the write after it); such a commit ends within milliseconds,
 * while a session still `Killed` after this is rolling back work that can no longer commit.
 */
const KILLED_SETTLE_MS = 500;

/**
 * The ids that are gone within `waitMs`: out of the process list, or marked Killed for KILLED_SETTLE_MS (rolling
 * back). A session not even marked Killed by then is left out.
 */
async function waitGone(q: Query, ids: string[], waitMs: number): Promise<Set<string>> {
  const out = new Set(ids);
  if (ids.length === 0) return out;
  const started = Date.now();
  const deadline = started + waitMs;
  for (;;) {
    const listed = await q<RowDataPacket & { id: string; killed: number }>(`SELECT ID AS id, COMMAND = 'Killed' AS killed FROM information_schema.PROCESSLIST WHERE ID IN (?)`, [ids], 'waiting for killed sessions');
    const alive = listed.filter((r) => Number(r.killed) !== 1);
    // Only Killed ones left (or none): done once they are gone or have had the settle time.
    if (alive.length === 0 && (listed.length === 0 || Date.now() - started >= KILLED_SETTLE_MS)) return out;
    if (Date.now() > deadline) {
      for (const r of alive) out.delete(String(r.id));
      return out;
    }
    await sleep(BOUNDARY_POLL_MS);
  }
}

/** A statement running in a session: its thread and, on MariaDB, its query id (MySQL's process list has none). */
export interface RunningStatement {
  threadId: string;
  queryId?: string;
}

const STATEMENT_POLL_MS = 5;

/** The process list, live (not INNODB_TRX's cache), with MariaDB's QUERY_ID where the server has it. */
async function statementRows(q: Query, where: string, params: unknown[]): Promise<Array<{ id: string; qid?: string; command: string }>> {
  const read = (qid: string) =>
    q<RowDataPacket & { id: number; qid: number | null; command: string }>(`SELECT ID AS id, ${qid} AS qid, COMMAND AS command FROM information_schema.PROCESSLIST WHERE ${where}`, params, 'listing running statements');
  const rows = await read('QUERY_ID').catch((e: unknown) => {
    if (mysqlErrno(e) === ER_BAD_FIELD_ERROR) return read('NULL');
    throw e;
  });
  return rows.map((r) => ({ id: String(r.id), ...(r.qid !== null ? { qid: String(r.qid) } : {}), command: r.command }));
}

/**
 * Statements running now in the sessions of `users` (not `exempt`). Taken right after a revoke: each passed its
 * privilege check before it, so it can still write and commit after the fence is "in place".
 */
export async function runningStatements(q: Query, users: readonly string[], exempt: readonly string[]): Promise<RunningStatement[]> {
  if (users.length === 0) return [];
  const rows = await statementRows(q, `ID <> CONNECTION_ID() AND COMMAND = 'Query' AND USER IN (?)${exempt.length ? ' AND ID NOT IN (?)' : ''}`, exempt.length ? [users, exempt] : [users]);
  return rows.map((r) => ({ threadId: r.id, ...(r.qid ? { queryId: r.qid } : {}) }));
}

/**
 * Waits until each statement has ended: its session runs another query id, is between statements, or is gone.
 * Returns the threads still in their statement at `deadline`.
 */
export async function waitStatementsEnd(q: Query, running: readonly RunningStatement[], deadline: number): Promise<string[]> {
  let left = [...running];
  while (left.length > 0) {
    const now = new Map((await statementRows(q, 'ID IN (?)', [left.map((s) => s.threadId)])).map((r) => [r.id, r]));
    left = left.filter((s) => {
      const r = now.get(s.threadId);
      return r !== undefined && r.command === 'Query' && (s.queryId === undefined || r.qid === s.queryId);
    });
    if (left.length === 0 || Date.now() >= deadline) break;
    await sleep(STATEMENT_POLL_MS);
  }
  return left.map((s) => s.threadId);
}
