import type { FenceTarget, SessionInfo } from '../../src/readonly/types.js';
import { sleep } from '../../src/util/sleep.js';
import type { PgClient } from './postgres-connection.js';

interface ActivityRow {
  pid: number;
  usename: string | null;
  datname: string | null;
  application_name: string | null;
  client: string | null;
  state: string | null;
  xid: string | null;
  xact_age_ms: string | null;
  backend_start: Date;
}

export interface PgSession extends SessionInfo {
  pid: number;
  hasWriteXid: boolean;
  /** The open transaction's id, when it has written. */
  xid?: string;
  backendStart: Date;
}

export interface SessionFilter {
  /** Only sessions that started before this server time. */
  startedBefore?: Date;
  /** Only sessions holding a transaction id, i.e. that have written in their open transaction. */
  writingOnly?: boolean;
  /** Backend pids to leave out (the cutover's own sessions). */
  exempt?: readonly string[];
}

/**
 * Superusers' client sessions in a fence scope: the ones a managed admin may not end (pg_signal_backend never
 * reaches a superuser's backend). The managed fence leaves them running and names them; `check` lists them.
 */
export async function superuserSessions(client: PgClient, target: FenceTarget, exempt: readonly string[] = []): Promise<PgSession[]> {
  const { rows } = await client.query<{ rolname: string }>(`SELECT rolname FROM pg_roles WHERE rolsuper`);
  const supers = new Set(rows.map((r) => r.rolname));
  return (await sessionsInScope(client, target, { exempt })).filter((s) => supers.has(s.user));
}

/**
 * Client sessions in a fence scope: never the tool's own session, never walsenders or background workers
 * (backend_type 'client backend' only).
 */
export async function sessionsInScope(client: PgClient, target: FenceTarget, filter: SessionFilter = {}): Promise<PgSession[]> {
  const params: unknown[] = [];
  const cond = [`a.backend_type = 'client backend'`, `a.pid <> pg_backend_pid()`];
  if (target.scope === 'database') {
    params.push(target.name);
    cond.push(`a.datname = $${params.length}`);
  } else if (target.scope === 'role') {
    params.push(target.name);
    cond.push(`a.usename = $${params.length}`);
  }
  if (filter.startedBefore) {
    params.push(filter.startedBefore);
    cond.push(`a.backend_start < $${params.length}`);
  }
  if (filter.writingOnly) cond.push(`a.backend_xid IS NOT NULL`);
  if (filter.exempt?.length) {
    params.push(filter.exempt.map(Number));
    cond.push(`a.pid <> ALL($${params.length}::int[])`);
  }
  const { rows } = await client.query<ActivityRow>(
    `SELECT a.pid, a.usename, a.datname, a.application_name, host(a.client_addr) AS client, a.state,
            a.backend_xid::text AS xid,
            (extract(epoch FROM clock_timestamp() - a.xact_start) * 1000)::bigint::text AS xact_age_ms,
            a.backend_start
       FROM pg_stat_activity a
      WHERE ${cond.join(' AND ')}
      ORDER BY a.pid`,
    params,
  );
  return rows.map(toSession);
}

function toSession(r: ActivityRow): PgSession {
  return {
    id: String(r.pid),
    pid: r.pid,
    user: r.usename ?? '',
    ...(r.datname ? { database: r.datname } : {}),
    ...(r.application_name ? { application: r.application_name } : {}),
    ...(r.client ? { client: r.client } : {}),
    ...(r.state ? { state: r.state } : {}),
    ...(r.xact_age_ms !== null ? { transactionAgeMs: Number(r.xact_age_ms) } : {}),
    hasWriteXid: r.xid !== null,
    ...(r.xid !== null ? { xid: r.xid } : {}),
    backendStart: r.backend_start,
  };
}

/** The public shape (drops internal fields so reports stay stable). */
export function publicSession(s: PgSession, reason?: string): SessionInfo {
  const { pid: _pid, hasWriteXid: _x, xid: _xid, backendStart: _b, ...rest } = s;
  return reason ? { ...rest, reason } : rest;
}

/**
 * Terminates sessions and waits until they are gone, so that a transaction that was open cannot commit
 * after this returns. Returns the pids that were actually ended.
 */
export async function terminateSessions(client: PgClient, pids: number[], waitMs = 5000): Promise<Set<number>> {
  if (pids.length === 0) return new Set();
  const { rows } = await client.query<{ pid: number; ok: boolean }>(`SELECT pid, pg_terminate_backend(pid) AS ok FROM unnest($1::int[]) AS pid`, [pids]);
  const ended = new Set(rows.filter((r) => r.ok).map((r) => r.pid));
  const deadline = Date.now() + waitMs;
  for (;;) {
    const alive = await client.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])`, [pids]);
    if (alive.rows.length === 0) break;
    if (Date.now() > deadline) {
      for (const r of alive.rows) ended.delete(r.pid);
      break;
    }
    // A backend ends within a millisecond or two of its signal; this wait is inside the write-blocked window.
    await sleep(2);
  }
  return ended;
}
