import type { RowDataPacket } from 'mysql2/promise';
import { OperationError } from '../../src/errors.js';
import type { ChunkCheck, ChunkCursor, ChunkRange, OnlineVerifyHooks } from '../../src/engine/cutover-adapter.js';
import { baseTables } from './mysql-verify.js';
import type { Query } from './mysql-sessions.js';
import { quoteIdent } from './mysql-sql.js';

/**
 * Keys after `lo` and up to `hi` in the primary key's order, spelled out lexicographically
 * (`a > ? OR (a = ? AND b > ?)`) so the optimizer uses the index for composite keys too.
 */
export function mysqlRangePredicate(cols: readonly string[], range: ChunkRange): { sql: string; params: string[] } {
  const params: string[] = [];
  const beyond = (values: string[], last: '>' | '<=') =>
    `(${cols
      .map((_, i) => {
        const eq = cols.slice(0, i).map((c, j) => (params.push(values[j]!), `${c} = ?`));
        const op = i === cols.length - 1 ? last : last === '>' ? '>' : '<';
        params.push(values[i]!);
        return `(${[...eq, `${cols[i]} ${op} ?`].join(' AND ')})`;
      })
      .join(' OR ')})`;
  const parts: string[] = [];
  if (range.lo) parts.push(beyond(range.lo, '>'));
  if (range.hi) parts.push(beyond(range.hi, '<='));
  return { sql: parts.length ? parts.join(' AND ') : 'TRUE', params };
}

export function mysqlNextBoundSql(table: string, cols: readonly string[], lo: string[] | null, chunkRows: number): { sql: string; params: string[] } {
  const where = mysqlRangePredicate(cols, { lo, hi: null });
  const keys = cols.map((c, i) => `CAST(${c} AS CHAR) AS k${i}`).join(', ');
  return { sql: `SELECT ${keys} FROM ${table} WHERE ${where.sql} ORDER BY ${cols.join(', ')} LIMIT 1 OFFSET ${Math.max(0, Math.floor(chunkRows) - 1)}`, params: where.params };
}

/**
 * Count and the sum of the first 60 bits of each row's MD5 (every column QUOTE()d, so NULL and '' differ):
 * one aggregate per chunk, constant memory, independent of row order.
 */
export function mysqlChunkHashSql(table: string, columns: readonly string[], keys: readonly string[], range: ChunkRange): { sql: string; params: string[] } {
  const where = keys.length ? mysqlRangePredicate(keys, range) : { sql: 'TRUE', params: [] };
  const row = `CONCAT_WS(',', ${columns.map((c) => `QUOTE(${c})`).join(', ')})`;
  return {
    sql: `SELECT CAST(COUNT(*) AS CHAR) AS n, CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5(${row}), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) AS h FROM ${table} WHERE ${where.sql}`,
    params: where.params,
  };
}

/** The sessions of a verify set to REPEATABLE READ: a consistent snapshot means one only there, whatever the server's default. */
export const REPEATABLE_READ_SQL = 'SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ';

/**
 * The compare after the switch takes its two snapshots with this (MariaDB and MySQL 8 alike): InnoDB makes the
 * read view at once, not at the first read, and a READ ONLY transaction gets no transaction id. One round trip.
 */
export const SWITCH_SNAPSHOT_SQL = 'START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT';

export interface MysqlChunkVerifyContext {
  database: string;
  /** The tool's main source session (reads the catalog and the GTID position). */
  src: Query;
  /** The two snapshot sessions. */
  srcSnap: Query;
  dstSnap: Query;
  /**
   * How the online verify takes a consistent point per table and renews it. Absent: the two sessions already
   * hold their snapshots (taken at the switch: the compare after it), kept for the whole pass.
   */
  renew?: MysqlConsistentPoints;
}

export interface MysqlConsistentPoints {
  /** The tool's main target session: waits there for the position. */
  dst: Query;
  /** Holds `LOCK TABLES ... READ` on the source for the moment the snapshots are taken. */
  srcLock: Query;
  /** The source's position as the target's wait takes it (its GTID set, or binary log `file:offset`). */
  readPosition(): Promise<string>;
  /** Waits on the target until it applied `position`; false on timeout. */
  waitFor(position: string): Promise<boolean>;
  snapshotMaxMs: number;
}

async function columnsOf(q: Query, database: string, table: string): Promise<{ all: string[]; keys: string[] }> {
  const all = await q<RowDataPacket & { c: string }>(`SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, [database, table], 'listing columns');
  const keys = await q<RowDataPacket & { c: string }>(
    `SELECT COLUMN_NAME AS c FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`,
    [database, table],
    'reading the primary key',
  );
  return { all: all.map((r) => quoteIdent(r.c)), keys: keys.map((r) => quoteIdent(r.c)) };
}

/**
 * Both snapshot sessions see the table at the same point of the binlog stream (as Vitess VDiff does): `LOCK
 * TABLES t READ` waits for the table's open write transactions and holds new ones; a consistent snapshot
 * taken then holds every commit to it, and so does the target once it applied the source's GTID position read
 * after the snapshot; no commit to the table can follow until UNLOCK TABLES, so the target's snapshot taken now
 * shows the same rows. Writers of that table wait for one GTID wait.
 */
async function consistentPoint(ctx: MysqlChunkVerifyContext, points: MysqlConsistentPoints, table: string, name: string): Promise<{ position: string; lockedMs: number }> {
  await points.srcLock(`LOCK TABLES ${table} READ`, [], `locking ${name} for a consistent point`);
  const locked = Date.now();
  try {
    await ctx.srcSnap('START TRANSACTION WITH CONSISTENT SNAPSHOT', [], 'taking the source snapshot');
    const position = await points.readPosition();
    if (!(await points.waitFor(position)))
      throw new OperationError(`verify: the target did not reach the source's position ${position} in time (replication stalled or far behind)`, 'check `cutover status` for the lag and run verify again');
    await ctx.dstSnap('START TRANSACTION WITH CONSISTENT SNAPSHOT', [], 'taking the target snapshot');
    return { position, lockedMs: Date.now() - locked };
  } finally {
    await points.srcLock('UNLOCK TABLES', [], 'unlocking').catch(() => {});
  }
}

async function hashChunk(q: Query, table: string, cols: { all: string[]; keys: string[] }, range: ChunkRange): Promise<string> {
  const s = mysqlChunkHashSql(table, cols.all, cols.keys, range);
  const r = (await q<RowDataPacket & { n: string; h: string }>(s.sql, s.params, 'hashing a chunk'))[0]!;
  return `${r.n}:${r.h}`;
}

async function verifyTable(ctx: MysqlChunkVerifyContext, hooks: OnlineVerifyHooks, name: string, from: ChunkCursor | undefined): Promise<void> {
  if (from?.done) return;
  const table = `${quoteIdent(ctx.database)}.${quoteIdent(name)}`;
  const cols = await columnsOf(ctx.src, ctx.database, name);
  let lo = from?.lastKey ?? null;
  const renew = ctx.renew;
  while (true) {
    if (renew) {
      const point = await consistentPoint(ctx, renew, table, name);
      hooks.snapshot?.(name, point.position, point.lockedMs);
    }
    const started = Date.now();
    try {
      while (!renew || Date.now() - started < renew.snapshotMaxMs) {
        let hi: string[] | null = null;
        if (cols.keys.length) {
          const b = mysqlNextBoundSql(table, cols.keys, lo, hooks.chunkRows);
          const row = (await ctx.srcSnap<RowDataPacket & Record<string, string>>(b.sql, b.params, 'finding the next chunk'))[0];
          hi = row ? cols.keys.map((_, i) => String(row[`k${i}`])) : null;
        }
        const range = { lo, hi };
        const [source, target] = await Promise.all([hashChunk(ctx.srcSnap, table, cols, range), hashChunk(ctx.dstSnap, table, cols, range)]);
        const check: ChunkCheck = { table: name, ...range, rows: Number(source.split(':')[0]), source, target, match: source === target };
        const cursor = { lastKey: hi, done: hi === null };
        await hooks.chunk(check, cursor);
        if (cursor.done) return;
        lo = hi;
      }
    } finally {
      if (renew) await Promise.all([ctx.srcSnap('COMMIT'), ctx.dstSnap('COMMIT')]).catch(() => {});
    }
  }
}

/**
 * Every base table of the database, in primary-key chunks, from where `hooks.cursor` says an earlier run stopped;
 * with `ctx.renew` absent, every chunk read from the two snapshots the sessions already hold.
 */
export async function mysqlVerifyChunks(ctx: MysqlChunkVerifyContext, hooks: OnlineVerifyHooks): Promise<void> {
  const tables = await baseTables(ctx.src, ctx.database);
  const rows = await ctx.src<RowDataPacket & { t: string; n: string | null }>(
    `SELECT TABLE_NAME AS t, CAST(TABLE_ROWS AS CHAR) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'`,
    [ctx.database],
    'estimating rows',
  );
  const est = new Map(rows.map((r) => [r.t, Number(r.n ?? 0)]));
  await hooks.tables(tables.map((t) => ({ table: t, estimatedRows: est.get(t) ?? 0 })));
  for (const t of tables) await verifyTable(ctx, hooks, t, hooks.cursor(t));
}
