import { availableParallelism } from 'node:os';
import type { SyncProgress } from '../../src/engine/cutover-adapter.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { formatBytes } from '../../src/util/units.js';
import { findClientBinary } from './postgres-binaries.js';
import { pipeline } from '../../src/util/subprocess.js';
import { connectPgReplication, type PgClient } from './postgres-connection.js';
import { quoteIdent, quoteLiteral } from './postgres-sql.js';
import { libpqEnv } from './postgres-tools.js';

/**
 * The initial copy the way pgcopydb does it: a replication slot created first exports the snapshot of its
 * consistent point; every table (big ones split into page ranges) is copied with COPY under that one snapshot by
 * parallel workers, into tables that have no index or constraint yet; the subscription then starts from the
 * slot, so each change is either in the copy or streamed after it, never both and never neither.
 */

/** Tables above this size are copied as several page ranges side by side. */
export const SPLIT_BYTES = 256 * 1024 * 1024;
/** At most this many ranges per table: more only adds per-range overhead. */
const MAX_PARTS = 16;

/** Copy workers: the copy is as much I/O and protocol as CPU, so one more than the cores pays on small machines. */
export function copyJobs(): number {
  return Math.max(2, Math.min(8, availableParallelism() + 1));
}

export interface CopyTable {
  /** Quoted, schema-qualified. */
  table: string;
  /** Columns COPY moves, quoted (generated columns are computed by the target). */
  columns: string[];
  bytes: number;
  pages: number;
}

/** One COPY: a whole table, or the pages [fromPage, toPage) of it (no toPage: to its end). */
export interface CopyUnit {
  table: CopyTable;
  bytes: number;
  range?: { fromPage: number; toPage?: number };
}

/**
 * What the workers copy, biggest first (the longest copy starts at once). A table above `splitBytes` is cut into
 * page ranges read with a TID range scan; the last range is open-ended, so rows on pages added under the snapshot's
 * feet (none are visible to it) or missed by a stale page count are still read.
 */
export function copyUnits(tables: readonly CopyTable[], splitBytes = SPLIT_BYTES): CopyUnit[] {
  const units: CopyUnit[] = [];
  for (const t of tables) {
    const parts = Math.min(MAX_PARTS, Math.ceil(t.bytes / splitBytes), Math.max(1, t.pages));
    if (parts <= 1) {
      units.push({ table: t, bytes: t.bytes });
      continue;
    }
    const step = Math.ceil(t.pages / parts);
    for (let i = 0; i < parts; i++) {
      const fromPage = i * step;
      units.push({ table: t, bytes: Math.round(t.bytes / parts), range: i === parts - 1 ? { fromPage } : { fromPage, toPage: fromPage + step } });
    }
  }
  return units.sort((a, b) => b.bytes - a.bytes);
}

/** The COPY ... TO STDOUT one unit runs on the source. */
export function copyOutSql(unit: CopyUnit): string {
  const cols = unit.table.columns.join(', ');
  if (!unit.range) return `COPY ${unit.table.table} (${cols}) TO STDOUT`;
  const { fromPage, toPage } = unit.range;
  const where = `ctid >= '(${fromPage},0)'::tid${toPage !== undefined ? ` AND ctid < '(${toPage},0)'::tid` : ''}`;
  return `COPY (SELECT ${cols} FROM ONLY ${unit.table.table} WHERE ${where}) TO STDOUT`;
}

/** The tables `names` (quoted, qualified; leaf tables, which hold the rows) with the columns COPY moves and their size. */
export async function copyTables(c: PgClient, names: readonly string[]): Promise<CopyTable[]> {
  const { rows } = await c.query<{ t: string; cols: string[]; b: string; p: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t,
            array(SELECT quote_ident(a.attname) FROM pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                   ORDER BY a.attnum) AS cols,
            pg_relation_size(c.oid)::text AS b, greatest(c.relpages, 0)::text AS p
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = ANY($1::regclass[]) AND c.relkind = 'r'
      ORDER BY 1`,
    [names],
  );
  // pg_relation_size is current while relpages is as of the last VACUUM/ANALYZE: pages follow from the size.
  return rows.map((r) => ({ table: r.t, columns: r.cols, bytes: Number(r.b), pages: Math.max(Number(r.p), Math.ceil(Number(r.b) / 8192)) }));
}

export interface ExportedSlot {
  /** The slot's consistent point: the snapshot holds exactly what committed before it. */
  consistentPoint: string;
  snapshot: string;
  /** Ends the replication session, and with it the snapshot (the slot stays). */
  close(): Promise<void>;
}

/** Creates the logical slot `name` (pgoutput) and keeps its exported snapshot alive until `close`. */
export async function createSlotWithSnapshot(source: DbEndpoint, database: string, name: string): Promise<ExportedSlot> {
  const c = await connectPgReplication(source, database);
  try {
    // The pre-15 spelling, which every supported major still takes.
    const r = await c.query<{ consistent_point: string; snapshot_name: string }>(`CREATE_REPLICATION_SLOT ${quoteIdent(name)} LOGICAL pgoutput EXPORT_SNAPSHOT`);
    const row = r.rows[0]!;
    return { consistentPoint: row.consistent_point, snapshot: row.snapshot_name, close: () => c.end().catch(() => {}) };
  } catch (e) {
    await c.end().catch(() => {});
    throw e;
  }
}

export interface SnapshotCopyOptions {
  source: DbEndpoint;
  target: DbEndpoint;
  database: string;
  snapshot: string;
  /** PGOPTIONS for the target's sessions. */
  targetOptions: string;
  /** Both sides speak the source database's encoding; the target converts if its own differs. */
  encoding: string;
  jobs: number;
}

/** Copies every unit with `jobs` workers; the first failure stops the others from starting new units. */
export async function copyUnderSnapshot(units: readonly CopyUnit[], opts: SnapshotCopyOptions, progress: SyncProgress): Promise<{ tables: number; bytes: number }> {
  const psql = await findClientBinary('psql');
  const secrets = [opts.source.password, opts.target.password].filter((s): s is string => !!s);
  const totalBytes = units.reduce((a, u) => a + u.bytes, 0);
  const tables = new Set(units.map((u) => u.table.table));
  const partsLeft = new Map<string, number>();
  for (const u of units) partsLeft.set(u.table.table, (partsLeft.get(u.table.table) ?? 0) + 1);
  const started = Date.now();
  let next = 0;
  let bytesDone = 0;
  let tablesDone = 0;
  let failed: unknown;
  const producerEnv = libpqEnv(opts.source, opts.database, { PGCLIENTENCODING: opts.encoding, PGAPPNAME: 'cutover copy' });
  const consumerEnv = libpqEnv(opts.target, opts.database, { PGCLIENTENCODING: opts.encoding, PGAPPNAME: 'cutover copy', PGOPTIONS: opts.targetOptions });
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < units.length) {
      const unit = units[next++]!;
      try {
        await pipeline(
          {
            cmd: psql,
            args: ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', '-c', `SET TRANSACTION SNAPSHOT ${quoteLiteral(opts.snapshot)}`, '-c', copyOutSql(unit)],
            env: producerEnv,
          },
          { cmd: psql, args: ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `COPY ${unit.table.table} (${unit.table.columns.join(', ')}) FROM STDIN`], env: consumerEnv },
          { secrets },
        );
      } catch (e) {
        failed ??= e;
        return;
      }
      bytesDone += unit.bytes;
      const left = partsLeft.get(unit.table.table)! - 1;
      partsLeft.set(unit.table.table, left);
      if (left === 0) tablesDone++;
      const elapsed = Date.now() - started;
      const etaMs = bytesDone > 0 && bytesDone < totalBytes ? Math.round((elapsed / bytesDone) * (totalBytes - bytesDone)) : undefined;
      progress({
        phase: 'copy',
        message: `copy ${tablesDone}/${tables.size} tables, ${formatBytes(bytesDone)} of ${formatBytes(totalBytes)}${left === 0 ? ` (${unit.table.table} done)` : ''}`,
        table: unit.table.table,
        tablesDone,
        tablesTotal: tables.size,
        bytesDone,
        bytesTotal: totalBytes,
        ...(etaMs !== undefined ? { etaMs } : {}),
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs, units.length)) }, worker));
  if (failed !== undefined) throw failed;
  return { tables: tables.size, bytes: totalBytes };
}
