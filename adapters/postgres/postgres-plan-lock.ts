import type { SourceLockHolder, SourceLockResult } from '../../src/engine/cutover-adapter.js';
import type { PgClient } from './postgres-connection.js';

/** The advisory lock's 64-bit key, derived on the server from the key text so every client agrees on it. */
const KEY_SQL = `('x' || substr(md5($1), 1, 16))::bit(64)::bigint`;

/** application_name is cut at 63 bytes; the pid and host come first so they survive. */
const appName = (owner: string) => `cutover pid ${owner}`.slice(0, 63);

/**
 * pg_try_advisory_lock on `c` (session-level: it outlives transactions, ends with the session). On refusal,
 * the holder from pg_locks: an advisory lock on a bigint key shows as classid = high 32 bits, objid = low.
 */
export async function tryPlanLock(c: PgClient, key: string, owner: string): Promise<SourceLockResult> {
  const got = await c.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${KEY_SQL}) AS ok`, [key]);
  if (got.rows[0]?.ok) {
    await c.query(`SELECT set_config('application_name', $1, false)`, [appName(owner)]);
    return { acquired: true };
  }
  const h = await c.query<{ pid: number; app: string | null; client: string | null; usename: string | null }>(
    `WITH k AS (SELECT ${KEY_SQL} AS k)
     SELECT a.pid, a.application_name AS app, host(a.client_addr) AS client, a.usename
       FROM k, pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = ((k.k >> 32) & 4294967295)::oid AND l.objid = (k.k & 4294967295)::oid
      LIMIT 1`,
    [key],
  );
  const r = h.rows[0];
  if (!r) return { acquired: false };
  const holder: SourceLockHolder = { session: String(r.pid), ...(r.app ? { application: r.app } : {}), ...(r.client ? { client: r.client } : {}), ...(r.usename ? { user: r.usename } : {}) };
  return { acquired: false, holder };
}

export async function releasePlanLock(c: PgClient, key: string): Promise<void> {
  await c.query(`SELECT pg_advisory_unlock(${KEY_SQL})`, [key]);
  await c.query(`SELECT set_config('application_name', 'cutover', false)`);
}

/** Whether `c`'s own backend still holds the plan's advisory lock (a new session after a reconnect would not). */
export async function holdsPlanLock(c: PgClient, key: string): Promise<boolean> {
  const r = await c.query<{ held: boolean }>(
    `WITH k AS (SELECT ${KEY_SQL} AS k)
     SELECT EXISTS (SELECT 1 FROM k, pg_locks l
                     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid = pg_backend_pid()
                       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND l.classid = ((k.k >> 32) & 4294967295)::oid AND l.objid = (k.k & 4294967295)::oid) AS held`,
    [key],
  );
  return r.rows[0]?.held === true;
}
