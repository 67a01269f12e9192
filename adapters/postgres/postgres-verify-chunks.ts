import { OperationError } from '../../src/errors.js';
import type { ChunkCheck, ChunkCursor, ChunkRange, OnlineVerifyHooks } from '../../src/engine/cutover-adapter.js';
import type { PgClient } from './postgres-connection.js';
import { quoteIdent } from './postgres-sql.js';

/** A primary-key column: its quoted name and its type as SQL (format_type), for casting text bounds back. */
export interface KeyColumn {
  name: string;
  type: string;
}

/**
 * `(k1, k2) > ($1::t1, $2::t2) AND (k1, k2) <= (...)`: the chunk's rows, by the primary key's btree order,
 * so each bound is one index probe. Parameters start at `$first`.
 */
export function rangePredicate(cols: readonly KeyColumn[], range: ChunkRange, first = 1): { sql: string; params: string[] } {
  const row = `(${cols.map((c) => c.name).join(', ')})`;
  const params: string[] = [];
  const bound = (values: string[]) => `(${cols.map((c, i) => (params.push(values[i]!), `$${first + params.length - 1}::${c.type}`)).join(', ')})`;
  const parts: string[] = [];
  if (range.lo) parts.push(`${row} > ${bound(range.lo)}`);
  if (range.hi) parts.push(`${row} <= ${bound(range.hi)}`);
  return { sql: parts.length ? parts.join(' AND ') : 'true', params };
}

/** The key of the `chunkRows`-th row after `lo`: the chunk's upper bound (no row: the chunk runs to the end). */
export function nextBoundSql(table: string, cols: readonly KeyColumn[], lo: string[] | null, chunkRows: number): { sql: string; params: string[] } {
  const where = rangePredicate(cols, { lo, hi: null });
  const keys = cols.map((c, i) => `${c.name}::text AS k${i}`).join(', ');
  const order = cols.map((c) => c.name).join(', ');
  return { sql: `SELECT ${keys} FROM ${table} WHERE ${where.sql} ORDER BY ${order} OFFSET ${Math.max(0, Math.floor(chunkRows) - 1)} LIMIT 1`, params: where.params };
}

/**
 * Row count and an order-independent hash of the chunk: the sum of the first 64 bits of each row's md5 (text
 * form of the whole row). One aggregate per chunk, so memory stays constant whatever the table's size; md5 of
 * the text form is the same function on every PostgreSQL version.
 */
export function chunkHashSql(table: string, cols: readonly KeyColumn[], range: ChunkRange): { sql: string; params: string[] } {
  const where = cols.length ? rangePredicate(cols, range) : { sql: 'true', params: [] };
  return {
    sql: `SELECT count(*)::text AS n, coalesce(sum(('x' || left(md5((r.*)::text), 16))::bit(64)::bigint::numeric), 0)::text AS h FROM ${table} AS r WHERE ${where.sql}`,
    params: where.params,
  };
}

export async function keyColumns(c: PgClient, table: string): Promise<KeyColumn[]> {
  const { rows } = await c.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE i.indrelid = $1::regclass AND i.indisprimary
      ORDER BY array_position(i.indkey::int2[], a.attnum)`,
    [table],
  );
  return rows.map((r) => ({ name: quoteIdent(r.name), type: r.type }));
}

export interface ChunkVerifyContext {
  /** The tool's main sessions: the sentinel is committed on `src` and awaited on `dst`. */
  src: PgClient;
  dst: PgClient;
  /** Two more sessions that hold the two snapshots (source, target). */
  srcSnap: PgClient;
  dstSnap: PgClient;
  tables: string[];
  /** Commits a sentinel on the source and returns once the target shows it (every earlier commit applied). */
  sentinel(): Promise<void>;
  /** Bound on waiting for the table lock (writers of that table wait behind it meanwhile). */
  lockTimeoutMs: number;
  /** A snapshot pair is renewed after this long, so neither server keeps old row versions for hours. */
  snapshotMaxMs: number;
  /**
   * The two sessions already hold their snapshots (taken at the switch: the compare after it), kept for the
   * whole pass: no consistent point per table, no renewal, no sentinel.
   */
  fixedSnapshots?: boolean;
}

const LOCK_ATTEMPTS = 5;

/**
 * Both sessions see the table as of the same point of the stream. On the source: a REPEATABLE READ
 * transaction takes `LOCK TABLE ... IN SHARE MODE` inside a savepoint (it waits for the table's running
 * writers and holds new ones), then its snapshot; a sentinel committed after that and seen on the target proves
 * the target applied every commit to the table, and none can follow while the lock is held, so the target's
 * snapshot taken now shows the same rows. Rolling back to the savepoint releases the lock; both snapshots
 * stay. Writers of that one table wait for one sentinel round trip.
 */
async function consistentPoint(ctx: ChunkVerifyContext, table: string): Promise<{ position: string; lockedMs: number }> {
  for (let attempt = 1; ; attempt++) {
    await ctx.srcSnap.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    try {
      await ctx.srcSnap.query('SAVEPOINT cutover_verify');
      // SET and LOCK take no snapshot (a SELECT would, before the lock, and miss the commits it waits for).
      await ctx.srcSnap.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(ctx.lockTimeoutMs))}`);
      await ctx.srcSnap.query(`LOCK TABLE ${table} IN SHARE MODE`);
      const locked = Date.now();
      // The first statement that reads takes the transaction's snapshot: after the lock, so it holds every commit.
      const position = (await ctx.srcSnap.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l;
      await ctx.sentinel();
      await ctx.dstSnap.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await ctx.dstSnap.query('SELECT 1');
      await ctx.srcSnap.query('ROLLBACK TO SAVEPOINT cutover_verify');
      return { position, lockedMs: Date.now() - locked };
    } catch (e) {
      await ctx.srcSnap.query('ROLLBACK').catch(() => {});
      await ctx.dstSnap.query('ROLLBACK').catch(() => {});
      if ((e as { code?: string }).code !== '55P03' || attempt >= LOCK_ATTEMPTS) {
        if ((e as { code?: string }).code === '55P03')
          throw new OperationError(
            `verify could not lock ${table} for a consistent point (${LOCK_ATTEMPTS} tries of ${ctx.lockTimeoutMs}ms: a writer keeps a transaction open on it)`,
            'end the long transaction, or raise readOnly.lockTimeout, and run verify again (it continues where it stopped)',
          );
        throw e;
      }
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}

async function endSnapshots(ctx: ChunkVerifyContext): Promise<void> {
  await Promise.all([ctx.srcSnap.query('COMMIT'), ctx.dstSnap.query('COMMIT')]);
}

async function hashChunk(c: PgClient, table: string, cols: KeyColumn[], range: ChunkRange): Promise<string> {
  const q = chunkHashSql(table, cols, range);
  const r = (await c.query<{ n: string; h: string }>(q.sql, q.params)).rows[0]!;
  return `${r.n}:${r.h}`;
}

/** One table, chunk after chunk from its cursor, renewing the consistent point when it gets old. */
async function verifyTable(ctx: ChunkVerifyContext, hooks: OnlineVerifyHooks, table: string, from: ChunkCursor | undefined): Promise<void> {
  if (from?.done) return;
  const cols = await keyColumns(ctx.src, table);
  let lo = from?.lastKey ?? null;
  while (true) {
    if (!ctx.fixedSnapshots) {
      const point = await consistentPoint(ctx, table);
      hooks.snapshot?.(table, point.position, point.lockedMs);
    }
    const started = Date.now();
    try {
      while (ctx.fixedSnapshots || Date.now() - started < ctx.snapshotMaxMs) {
        let hi: string[] | null = null;
        // Without a primary key the table is one chunk: still one aggregate, constant memory, but not resumable inside.
        if (cols.length) {
          const b = nextBoundSql(table, cols, lo, hooks.chunkRows);
          const row = (await ctx.srcSnap.query<Record<string, string>>(b.sql, b.params)).rows[0];
          hi = row ? cols.map((_, i) => row[`k${i}`]!) : null;
        }
        const range = { lo, hi };
        const [source, target] = await Promise.all([hashChunk(ctx.srcSnap, table, cols, range), hashChunk(ctx.dstSnap, table, cols, range)]);
        const check: ChunkCheck = { table, ...range, rows: Number(source.split(':')[0]), source, target, match: source === target };
        const cursor = { lastKey: hi, done: hi === null };
        await hooks.chunk(check, cursor);
        if (cursor.done) return;
        lo = hi;
      }
    } finally {
      if (!ctx.fixedSnapshots) await endSnapshots(ctx).catch(() => {});
    }
  }
}

/** Every table of `ctx.tables`, in order, from where `hooks.cursor` says an earlier run stopped. */
export async function verifyChunks(ctx: ChunkVerifyContext, hooks: OnlineVerifyHooks): Promise<void> {
  const { rows } = await ctx.src.query<{ t: string; n: string }>(`SELECT t, greatest(c.reltuples, 0)::bigint::text AS n FROM unnest($1::text[]) AS t JOIN pg_class c ON c.oid = t::regclass`, [ctx.tables]);
  await hooks.tables(rows.map((r) => ({ table: r.t, estimatedRows: Number(r.n) })));
  for (const table of ctx.tables) await verifyTable(ctx, hooks, table, hooks.cursor(table));
}
