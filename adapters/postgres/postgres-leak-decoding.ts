import type { LeakedTransaction } from '../../src/readonly/types.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { connectPg, type PgClient } from './postgres-connection.js';
import { TOOL_SCHEMA } from './postgres-replication.js';

/** One row of pg_logical_slot_get_changes with the test_decoding plugin. */
export interface DecodedRow {
  lsn: string;
  xid: string;
  data: string;
}

/** A committed transaction as test_decoding printed it. */
export interface DecodedTransaction {
  xid: string;
  /** End of the commit record (what test_decoding reports as the COMMIT row's lsn). */
  commitLsn: string;
  committedAt?: string;
  /** Qualified name as the server quoted it → its schema (unquoted) and rows changed (a TRUNCATE counts once). */
  tables: Map<string, { schema: string; changes: number }>;
}

export interface TableName {
  schema: string;
  name: string;
  /** As printed: `schema.name` with the server's quoting. */
  qualified: string;
}

/** Parses one identifier as quote_identifier prints it; returns it and where it ends. */
function parseIdent(s: string, at: number): { value: string; end: number } | undefined {
  if (s[at] === '"') {
    let value = '';
    let i = at + 1;
    for (;;) {
      const q = s.indexOf('"', i);
      if (q < 0) return undefined;
      value += s.slice(i, q);
      if (s[q + 1] === '"') {
        value += '"';
        i = q + 2;
        continue;
      }
      return { value, end: q + 1 };
    }
  }
  const m = /^[^".:, ]+/.exec(s.slice(at));
  return m ? { value: m[0], end: at + m[0].length } : undefined;
}

/**
 * The tables of a change row: `table <schema>.<name>: INSERT: ...`, or for TRUNCATE a comma-separated list.
 * Identifiers may be quoted and then hold any character, so they are parsed, not split.
 */
export function parseChangeTables(data: string): { tables: TableName[]; op: string } | undefined {
  if (!data.startsWith('table ')) return undefined;
  const tables: TableName[] = [];
  let i = 'table '.length;
  for (;;) {
    const start = i;
    const schema = parseIdent(data, i);
    if (!schema || data[schema.end] !== '.') return undefined;
    const name = parseIdent(data, schema.end + 1);
    if (!name) return undefined;
    tables.push({ schema: schema.value, name: name.value, qualified: data.slice(start, name.end) });
    i = name.end;
    if (data.startsWith(', ', i)) {
      i += 2;
      continue;
    }
    if (data[i] !== ':') return undefined;
    const op = /^: ([A-Z]+):/.exec(data.slice(i));
    return op ? { tables, op: op[1]! } : undefined;
  }
}

const COMMIT = /^COMMIT (\d+)(?: \(at (.+)\))?$/;

/**
 * Groups test_decoding output (options include-xids, include-timestamp, skip-empty-xacts) into committed
 * transactions with the tables they changed. Logical messages and rows it does not know carry no table change
 * and are skipped.
 */
export function parseDecodedChanges(rows: readonly DecodedRow[]): DecodedTransaction[] {
  const open = new Map<string, DecodedTransaction>();
  const done: DecodedTransaction[] = [];
  const txn = (xid: string, lsn: string): DecodedTransaction => {
    let t = open.get(xid);
    if (!t) {
      t = { xid, commitLsn: lsn, tables: new Map() };
      open.set(xid, t);
    }
    return t;
  };
  for (const row of rows) {
    const commit = COMMIT.exec(row.data);
    if (commit) {
      const t = txn(commit[1]!, row.lsn);
      t.commitLsn = row.lsn;
      if (commit[2]) t.committedAt = commit[2];
      open.delete(t.xid);
      if (t.tables.size > 0) done.push(t);
      continue;
    }
    const change = parseChangeTables(row.data);
    if (!change) continue;
    const t = txn(row.xid, row.lsn);
    for (const table of change.tables) {
      const seen = t.tables.get(table.qualified);
      if (seen) seen.changes++;
      else t.tables.set(table.qualified, { schema: table.schema, changes: 1 });
    }
  }
  // get_changes only returns whole transactions; a batch cut without its COMMIT still changed those tables.
  for (const t of open.values()) if (t.tables.size > 0) done.push(t);
  return done;
}

/** Compares two pg_lsn texts (`16/B374D848`). */
export function compareLsn(a: string, b: string): number {
  const v = (l: string): bigint => {
    const [hi, lo] = l.split('/');
    return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
  };
  const d = v(a) - v(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** What one drain found after a position. */
export interface DrainResult {
  /** Transactions committed after the position that changed tables outside the tool's schema. */
  leaks: LeakedTransaction[];
  /** Commit position of the last transaction that wrote the tool's sentinel, if one was decoded. */
  lastSentinelLsn?: string;
}

/** Splits decoded transactions into user-table leaks and the tool's own sentinel commits. */
export function leaksAfter(txns: readonly DecodedTransaction[], after: string): DrainResult {
  const result: DrainResult = { leaks: [] };
  for (const t of txns) {
    if (compareLsn(t.commitLsn, after) <= 0) continue;
    const tables = [...t.tables].filter(([, v]) => v.schema !== TOOL_SCHEMA);
    // The tool's own commits on the fenced source only ever touch its schema (the catch-up sentinel).
    if (tables.length < t.tables.size && (!result.lastSentinelLsn || compareLsn(t.commitLsn, result.lastSentinelLsn) > 0)) result.lastSentinelLsn = t.commitLsn;
    if (tables.length === 0) continue;
    result.leaks.push({
      xid: t.xid,
      tables: tables.map(([table, v]) => ({ table, changes: v.changes })),
      changes: tables.reduce((n, [, v]) => n + v.changes, 0),
      commitPosition: t.commitLsn,
      ...(t.committedAt ? { committedAt: t.committedAt } : {}),
    });
  }
  return result;
}

/** Bounds the wait for running transactions that creating a logical slot needs: outside the fence, but not forever. */
const SLOT_CREATE_TIMEOUT_MS = 2_500;
/**
 * The same bound for the plan's persistent slot, made by `sync` or at the start of `run` long before the hold:
 * one long write transaction may hold it up that long without the leak check falling back to sampling.
 */
export const PLAN_SLOT_CREATE_TIMEOUT_MS = 60_000;

/** The plan's persistent decoding slot: the replication objects' name and a suffix (slot names: [a-z0-9_], ≤ 63). */
export function leakSlotName(replicationName: string): string {
  return `${replicationName.slice(0, 63 - '_leaks'.length)}_leaks`;
}

/**
 * Makes the plan's persistent test_decoding slot in the session's database unless it is there. Waits for
 * the transactions running on the server (bounded); the reason in words when it cannot.
 */
export async function ensureLeakSlot(c: PgClient, slot: string, timeoutMs = PLAN_SLOT_CREATE_TIMEOUT_MS): Promise<{ created: boolean } | { fallback: string }> {
  const { rows } = await c.query<{ db: string | null; plugin: string | null }>(`SELECT database AS db, plugin FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
  if (rows.length) {
    const here = (await c.query<{ d: string }>('SELECT current_database() AS d')).rows[0]!.d;
    if (rows[0]!.db === here && rows[0]!.plugin === 'test_decoding') return { created: false };
    return { fallback: `a replication slot named ${slot} exists but is not this plan's decoding slot (database ${rows[0]!.db ?? 'none'}, plugin ${rows[0]!.plugin ?? 'none'})` };
  }
  try {
    await c.query(`SELECT set_config('statement_timeout', $1, false)`, [`${timeoutMs}ms`]);
    await c.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding', false)`, [slot]);
    return { created: true };
  } catch (e) {
    return { fallback: fallbackReason(e, timeoutMs) };
  } finally {
    await c.query(`SELECT set_config('statement_timeout', '0', false)`).catch(() => {});
  }
}

/** Drops the plan's decoding slot, ending a session still reading it after a while; whether there was one. */
export async function dropLeakSlot(c: PgClient, slot: string): Promise<boolean> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const { rows } = await c.query<{ active: boolean; pid: number | null }>(`SELECT active, active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
    if (rows.length === 0) return false;
    if (!rows[0]!.active) {
      await c.query(`SELECT pg_drop_replication_slot($1)`, [slot]);
      return true;
    }
    if (Date.now() > deadline && rows[0]!.pid) await c.query(`SELECT pg_terminate_backend($1)`, [rows[0]!.pid]);
    await new Promise((r) => setTimeout(r, 50));
  }
}
/** Changes fetched per call, so a large leak is read in pieces rather than as one result set. */
const DRAIN_CHUNK = 5_000;
/**
 * Only the table name is needed, and row values can hold secrets: the server cuts each row to this many
 * characters (a qualified name is at most ~260). TRUNCATE rows list several tables and are kept whole.
 */
const ROW_PREFIX_CHARS = 400;

/** Why decoding cannot be used, in words, from the server's error. */
function fallbackReason(e: unknown, timeoutMs = SLOT_CREATE_TIMEOUT_MS): string {
  const err = e as { code?: string; message?: string };
  const msg = err.message ?? String(e);
  switch (err.code) {
    case '57014':
      return `creating the decoding slot waited more than ${timeoutMs}ms for running transactions to finish`;
    case '55000':
      return `logical decoding is not available (${msg}); set wal_level = logical`;
    case '53400':
      return `no free replication slot (${msg}); raise max_replication_slots`;
    case '58P01':
      return `the test_decoding plugin is not installed (${msg}); install the PostgreSQL contrib package`;
    case '42501':
      return `no privilege to create a replication slot (${msg}); connect as a superuser or a role with REPLICATION`;
    default:
      return `could not create the decoding slot: ${msg}`;
  }
}

/** How long logging a restart point may wait for the server's running transactions (before the hold). */
const RESTART_MARK_TIMEOUT_MS = 250;

/**
 * Moves the slot up to now, and its restart point with it. Every read of a slot decodes from its restart point
 * (restart_lsn), which only moves to a record of the server's running transactions (the background writer logs one
 * every 15 s), and then only to the one before, while a transaction that began after it is still running: under
 * steady writes 15–30 s of WAL that the window's last read would decode again. Two such records logged now, each
 * consumed by an advance, bring it to about now, so that read decodes little more than the window's own WAL.
 * Creating a logical slot logs one at once, before it waits for the running transactions: a temporary one, dropped
 * at once (or cancelled by the timeout: the record is written all the same), needs only the privilege this slot
 * already needs, on every version. Best effort: what the reads see does not change, only where they begin.
 */
async function freshRestartPoint(c: PgClient, slot: string, mark: string): Promise<void> {
  for (let i = 0; i < 2; i++) {
    try {
      await c.query(`SELECT set_config('statement_timeout', $1, false)`, [`${RESTART_MARK_TIMEOUT_MS}ms`]);
      await c.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding', true)`, [mark]);
      await c.query(`SELECT pg_drop_replication_slot($1)`, [mark]);
    } catch {
      // Cancelled while it waited for a running transaction (its record is logged), or no free slot: the
      // restart point stays further back and the window's read decodes more.
    } finally {
      await c.query(`SELECT set_config('statement_timeout', '0', false)`);
    }
    await c.query(
      `SELECT pg_replication_slot_advance(slot_name, pg_current_wal_insert_lsn()) FROM pg_replication_slots
        WHERE slot_name = $1 AND confirmed_flush_lsn < pg_current_wal_insert_lsn()`,
      [slot],
    );
  }
}

/**
 * A temporary logical decoding slot (plugin test_decoding) on its own session in the fenced database: every
 * transaction that commits after it was created is in its stream, however short, so a write that falls between
 * pg_stat_activity samples is still seen. Temporary: the server drops it when the session ends, also when the
 * tool dies.
 */
export class PgLeakDecoder {
  /** Whether the slot was moved past what committed before the fence (done by the first drain). */
  private advanced = false;

  private constructor(
    private readonly c: PgClient,
    readonly pid: number,
    readonly slot: string,
  ) {}

  /**
   * The decoder, or why it cannot be used (the caller samples instead). With `slot`, the plan's persistent slot
   * (made by `sync`; made now, with a longer bound, if missing) is moved up to now, so the first drain inside the
   * window decodes only what came after; without, a temporary slot is made now.
   */
  static async open(ep: DbEndpoint, database: string, slot?: string): Promise<PgLeakDecoder | { fallback: string }> {
    let c: PgClient;
    try {
      c = await connectPg(ep, { database, applicationName: 'cutover leak check' });
    } catch (e) {
      return { fallback: `could not open the decoding session: ${(e as Error).message}` };
    }
    try {
      const pid = (await c.query<{ p: number }>(`SELECT pg_backend_pid() AS p`)).rows[0]!.p;
      // Our own commits (the WAL flush below) must be durable before we decode up to them.
      await c.query(`SELECT set_config('synchronous_commit', 'local', false)`);
      if (slot !== undefined) {
        const made = await ensureLeakSlot(c, slot);
        if ('fallback' in made) {
          await c.end().catch(() => {});
          return made;
        }
        await freshRestartPoint(c, slot, `cutover_mark_${pid}`);
        return new PgLeakDecoder(c, pid, slot);
      }
      // Slot names allow [a-z0-9_]; a backend pid is unique among live sessions, so is the name.
      const temporary = `cutover_leaks_${pid}`;
      await c.query(`SELECT set_config('statement_timeout', $1, false)`, [`${SLOT_CREATE_TIMEOUT_MS}ms`]);
      await c.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding', true)`, [temporary]);
      await c.query(`SELECT set_config('statement_timeout', '0', false)`);
      return new PgLeakDecoder(c, pid, temporary);
    } catch (e) {
      await c.end().catch(() => {});
      return { fallback: fallbackReason(e) };
    }
  }

  /**
   * Everything committed after `after` that changed a table outside the tool's schema, since the last drain.
   * Consumes what it reads (get_changes), so repeated drains decode each change once.
   */
  async drain(after: string): Promise<DrainResult> {
    if (!this.advanced) {
      // What committed between the slot's creation and the fence is not a leak: skip it without fetching it.
      await this.c.query(
        `SELECT pg_replication_slot_advance(slot_name, $2::pg_lsn) FROM pg_replication_slots
          WHERE slot_name = $1 AND confirmed_flush_lsn < $2::pg_lsn`,
        [this.slot, after],
      );
      this.advanced = true;
    }
    // Decoding stops at the flushed WAL; an asynchronous commit may not be flushed yet. Our own synchronous
    // commit flushes all WAL before it, so every commit that happened before this point is decodable.
    await this.c.query(`SELECT pg_logical_emit_message(true, 'cutover', 'leak check')`);
    const txns: DecodedTransaction[] = [];
    for (;;) {
      const { rows: chunk } = await this.c.query<DecodedRow>(
        `SELECT lsn::text AS lsn, xid::text AS xid,
                CASE WHEN data LIKE 'table %: TRUNCATE:%' THEN data ELSE left(data, ${ROW_PREFIX_CHARS}) END AS data
           FROM pg_logical_slot_get_changes($1, NULL, $2, 'include-xids', '1', 'skip-empty-xacts', '1', 'include-timestamp', '1')`,
        [this.slot, DRAIN_CHUNK],
      );
      // A chunk ends at a transaction's end: the server checks the limit only between WAL records, and a
      // transaction's rows are all emitted when its commit record is decoded.
      txns.push(...parseDecodedChanges(chunk));
      if (chunk.length < DRAIN_CHUNK) break;
    }
    return leaksAfter(txns, after);
  }

  async close(): Promise<void> {
    await this.c.end().catch(() => {});
  }
}
