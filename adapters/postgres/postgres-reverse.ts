import type { ReverseState } from '../../src/engine/cutover-adapter.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { sleep } from '../../src/util/sleep.js';
import { publishableTables } from './postgres-checks.js';
import type { PgClient } from './postgres-connection.js';
import { keylessTables } from './postgres-keyless.js';
import { ensurePublication, ensureSubscription, slotLagBytes, type PgMoveScope } from './postgres-replication.js';
import { quoteIdent } from './postgres-sql.js';

/**
 * Reverse replication: after the switch the old source follows the new primary, so `cutover revert` can go back
 * without losing a write. The publication and the slot are made on the target between the detach and the open:
 * nothing can write the target then (clients are held, the forward subscription is stopped), so the slot's
 * consistent point is exactly the switch position: everything committed on the target after it streams back,
 * nothing before it does. The subscription on the old source (create_slot = false, copy_data = false) streams
 * from that slot; its apply worker writes through the old source's read-only fence (a database or role
 * `default_transaction_read_only` does not stop it, and it runs as replica so the schema fence's triggers do not
 * fire), while applications stay refused.
 */

/** Bound on making the slot inside the window: it waits for transactions that hold an xid on the target. */
const SLOT_TIMEOUT_MS = 3_000;
/** Bound on making the early slot before the hold (outside the window; a timeout leaves the in-window way). */
const EARLY_SLOT_TIMEOUT_MS = 15_000;

/** How long the settle waits for the target to flush the switch position by itself before it commits to force it. */
const FLUSH_WAIT_MS = 1_000;

/**
 * The reverse slot's early twin: a temporary slot made before the hold on a session of its own, so the wait for the
 * target's running transactions (the forward apply worker's, anyone's long one) is not inside the window. Inside
 * the window only the switch position is read (the WAL insert position: every commit before it, the forward stream's
 * last asynchronous ones included, is before it; every later one after). After the release, `settle` advances the
 * slot to exactly that position and copies it into the persistent slot, which therefore exists only once
 * positioned at the switch (a resumed run relies on that; a copy is on disk at once, an advance only at the next
 * checkpoint). Temporary: a crash, an error on its session (PostgreSQL drops a session's temporary slots on error)
 * or the session's end drops it; nothing to clean up.
 */
export class EarlyReverseSlot {
  private constructor(
    private readonly c: PgClient,
    readonly slot: string,
  ) {}

  static async make(c: PgClient, name: string): Promise<EarlyReverseSlot> {
    const slot = `${name.slice(0, 57)}_early`;
    await createSlot(c, slot, true, EARLY_SLOT_TIMEOUT_MS);
    return new EarlyReverseSlot(c, slot);
  }

  /** Inside the window, nothing writing the target: the switch position. */
  async switchPosition(): Promise<string> {
    return (await this.c.query<{ l: string }>(`SELECT pg_current_wal_insert_lsn()::text AS l`)).rows[0]!.l;
  }

  /**
   * Out of the window: the slot advanced to `at` and copied to `name` (persistent). An advance stops at the flushed
   * position, so `at` must be flushed first: the WAL writer does within its delay, or a synchronous commit that
   * writes WAL (a temporary table's catalog rows; a bare xid is not flushed) forces it.
   */
  async settle(name: string, at: string): Promise<{ slotLsn: string }> {
    const flushed = async () => (await this.c.query<{ ok: boolean }>(`SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS ok`, [at])).rows[0]!.ok;
    const deadline = Date.now() + FLUSH_WAIT_MS;
    while (!(await flushed()) && Date.now() < deadline) await sleep(5);
    if (!(await flushed())) await this.c.query(`BEGIN READ WRITE; SET LOCAL synchronous_commit = on; CREATE TEMP TABLE cutover_wal_flush ON COMMIT DROP AS SELECT 1 AS x; COMMIT`);
    const moved = await this.c.query<{ l: string; exact: boolean }>(`SELECT end_lsn::text AS l, end_lsn = $2::pg_lsn AS exact FROM pg_replication_slot_advance($1, $2::pg_lsn)`, [this.slot, at]);
    if (!moved.rows[0]!.exact) throw new Error(`the reverse slot could not be moved to the switch position ${at} (it reached ${moved.rows[0]!.l})`);
    const { rows } = await this.c.query<{ l: string }>(`SELECT lsn::text AS l FROM pg_copy_logical_replication_slot($1, $2, false)`, [this.slot, name]);
    return { slotLsn: rows[0]!.l };
  }

  /** Ends its session, which drops the temporary slot. */
  async close(): Promise<void> {
    await this.c.end().catch(() => {});
  }
}

/**
 * Publication of the moved tables (and the sentinel) and the slot at the current position, on the target's
 * database. Refused while a table has no replica identity: publishing it would make every UPDATE or DELETE on it
 * fail on the new primary. Repeatable: an existing slot is kept (it was made at the switch). With an early slot the
 * position is only read here and `settle` (after the release) makes the slot.
 */
export async function openReversePublisher(
  dst: PgClient,
  name: string,
  scope: PgMoveScope,
  identityFull: (table: string) => boolean,
  early?: EarlyReverseSlot,
): Promise<{ slotLsn: string; settle?: () => Promise<{ slotLsn: string }> }> {
  const existing = await dst.query<{ l: string }>(`SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1`, [name]);
  if (existing.rows.length) return { slotLsn: existing.rows[0]!.l };
  await prepareReversePublication(dst, name, scope, identityFull);
  if (early) {
    // A failure here (its session gone, say) leaves the slot to be made below, as without the early one.
    const at = await early.switchPosition().catch(() => undefined);
    if (at) return { slotLsn: at, settle: () => early.settle(name, at) };
  }
  return { slotLsn: await createSlot(dst, name, false, SLOT_TIMEOUT_MS) };
}

/** A pgoutput slot, its creation (which waits for the transactions running on the server) bounded by `timeoutMs`. */
async function createSlot(c: PgClient, slot: string, temporary: boolean, timeoutMs: number): Promise<string> {
  await c.query(`SELECT set_config('statement_timeout', $1, false)`, [String(timeoutMs)]);
  try {
    const { rows } = await c.query<{ l: string }>(`SELECT lsn::text AS l FROM pg_create_logical_replication_slot($1, 'pgoutput', $2)`, [slot, temporary]);
    return rows[0]!.l;
  } finally {
    await c.query('RESET statement_timeout').catch(() => {});
  }
}

/**
 * The publication of the moved tables (and the sentinel) on the target, keyless tables the plan carries back with
 * REPLICA IDENTITY FULL. Made before the hold when it can be: both take table locks that wait for a running
 * autovacuum until the deadlock check cancels it (deadlock_timeout, 1 s by default: measured inside the window as
 * 1 s repoints in 1 of 10 runs under pgbench). Repeated inside the window it only reads the catalog.
 */
export async function prepareReversePublication(dst: PgClient, name: string, scope: PgMoveScope, identityFull: (table: string) => boolean): Promise<void> {
  // Tables the plan publishes with REPLICA IDENTITY FULL on the source get it on the target too (no client
  // reaches the target yet); finalize puts the default back.
  const keylessBefore = (await keylessTables(dst, scope.schema)).map((t) => t.table);
  for (const t of keylessBefore.filter(identityFull)) await dst.query(`ALTER TABLE ${t} REPLICA IDENTITY FULL`);
  const keyless = keylessBefore.filter((t) => !identityFull(t));
  if (keyless.length)
    throw new Error(
      `table(s) without a primary key or replica identity on the target (${keyless.slice(0, 3).join(', ')}): publishing them would make their UPDATEs and DELETEs fail on the new primary (tables.keyless: full carries them back)`,
    );
  await ensurePublication(dst, name, scope, await publishableTables(dst, scope.schema));
}

/** Drops the reverse publication on the target (a run rolled back before its switch had made it early). */
export async function dropReversePublication(dst: PgClient, name: string): Promise<boolean> {
  if ((await dst.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [name])).rows.length === 0) return false;
  await dst.query(`DROP PUBLICATION ${quoteIdent(name)}`);
  return true;
}

export async function reverseSlotExists(dst: PgClient, name: string): Promise<boolean> {
  return (await dst.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [name])).rows.length > 0;
}

/**
 * The subscription on the old source's database, from the slot made at the switch: no copy, no slot of its own.
 * `disable_on_error` (15+): a conflicting change stops it visibly (status shows it, revert refuses) instead of
 * retrying forever.
 */
export async function startReverseSubscription(oldSource: PgClient, link: () => Promise<DbEndpoint>, database: string, name: string): Promise<void> {
  const v = Number((await oldSource.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v);
  await ensureSubscription(oldSource, link, database, name, true);
  if (v >= 150000) await oldSource.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} SET (disable_on_error = true)`);
}

/**
 * Whether `subscriber` still follows `publisher` through the subscription and slot `name`: the subscription exists
 * and is enabled, the slot exists and has not lost WAL. Lag is the publisher's WAL the subscriber has not confirmed.
 */
export async function streamState(publisher: PgClient, subscriber: PgClient, name: string): Promise<ReverseState> {
  const sub = await subscriber.query<{ enabled: boolean; pid: number | null }>(
    `SELECT s.subenabled AS enabled, (SELECT st.pid FROM pg_stat_subscription st WHERE st.subid = s.oid AND st.relid IS NULL LIMIT 1) AS pid
       FROM pg_subscription s WHERE s.subname = $1`,
    [name],
  );
  const slot = await publisher.query<{ wal: string | null }>(`SELECT wal_status AS wal FROM pg_replication_slots WHERE slot_name = $1`, [name]);
  const lagBytes = slot.rows.length ? await slotLagBytes(publisher, name) : null;
  const base = { name, lagBytes };
  if (!slot.rows.length && !sub.rows.length) return { ...base, state: 'absent', why: `neither the slot nor the subscription ${name} exists` };
  if (!slot.rows.length) return { ...base, state: 'broken', why: `the replication slot ${name} on the new primary is gone` };
  if (slot.rows[0]!.wal === 'lost') return { ...base, state: 'broken', why: `the replication slot ${name} on the new primary lost WAL it still needed (max_slot_wal_keep_size)` };
  if (!sub.rows.length) return { ...base, state: 'broken', why: `the subscription ${name} on the old source is gone` };
  if (!sub.rows[0]!.enabled)
    return {
      ...base,
      state: 'broken',
      why: `the subscription ${name} on the old source is disabled (an apply error disables it: see the old source's log)`,
      fix: `once the cause in the old source's log is fixed, ALTER SUBSCRIPTION ${name} ENABLE on the old source and retry when \`cutover status\` shows the reverse lag falling`,
    };
  return { ...base, state: 'following', ...(sub.rows[0]!.pid == null ? { why: 'its apply worker is not running right now (restarting)' } : {}) };
}

/** Finalize: the tables the reverse path gave REPLICA IDENTITY FULL (keyless, chosen full) get their default back. */
export async function restoreTargetIdentities(dst: PgClient, scope: PgMoveScope, identityFull: (table: string) => boolean): Promise<string[]> {
  const { rows } = await dst.query<{ t: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND c.relreplident = 'f' AND ($1::text IS NULL OR n.nspname = $1)
        AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)`,
    [scope.schema ?? null],
  );
  const restored = rows.map((r) => r.t).filter(identityFull);
  for (const t of restored) await dst.query(`ALTER TABLE ${t} REPLICA IDENTITY DEFAULT`);
  return restored;
}
