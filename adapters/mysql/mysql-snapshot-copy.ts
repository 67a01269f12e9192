import { PassThrough } from 'node:stream';
import type { RowDataPacket } from 'mysql2/promise';
import { OperationError } from '../../src/errors.js';
import type { SyncProgress } from '../../src/engine/cutover-adapter.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { copyParts } from '../../src/util/copy-split.js';
import { CopyTally, cappedInFlight, countsLine, watchInFlight } from '../../src/util/copy-tally.js';
import { formatCount } from '../../src/util/units.js';
import { connectMysql, mapMysqlError, mappedQuery, type MysqlConnection } from './mysql-connection.js';
import { markDoneSql, recordUnits } from './mysql-copy-record.js';
import type { MysqlFlavor } from './mysql-flavor.js';
import { binlogCoordinates } from './mysql-position.js';
import type { CopyStart } from './mysql-replica-procedures.js';
import type { Query } from './mysql-sessions.js';
import { quoteIdent } from './mysql-sql.js';

/**
 * The initial copy of MariaDB's `method: replication`, in parallel at one GTID position: one source session takes
 * `LOCK TABLES ... READ` on the moved database's tables (not FLUSH TABLES WITH READ LOCK: other databases keep
 * writing), N worker sessions each `START TRANSACTION WITH CONSISTENT SNAPSHOT`, the lock session reads
 * the GTID position (`@@gtid_binlog_pos`, MySQL `@@gtid_executed`) and, when asked, the binary log coordinates
 * (`SHOW MASTER STATUS`), and unlocks. No transaction on those tables can be in flight while the lock is held (the
 * binary log write and the InnoDB commit both precede the release of its metadata lock), so every worker's
 * snapshot holds exactly the moved database's transactions up to that position; the replica starts from it.
 *
 * The workers stream their units (a table, or a primary-key range of a big one; biggest first) from the source's
 * text protocol, bytes as the server sends them (character_set_results = binary), into `LOAD DATA LOCAL INFILE
 * ... CHARACTER SET binary` on the target: no conversion either way, no SQL to parse.
 */

/** Bytes buffered towards the target before the source stream pauses. */
const HIGH_WATER = 4 * 1024 * 1024;
/** Rows are sent to the target in chunks of about this size (one protocol packet each). */
const CHUNK = 256 * 1024;

export interface CopyColumn {
  name: string;
  /** BIT values are sent as numbers (LOAD DATA cannot take their raw bytes). */
  bit: boolean;
  /**
   * A MySQL JSON column: MySQL refuses a JSON value from a CHARACTER SET binary string, so the load converts it to
   * utf8mb4 (the bytes the source sent). MariaDB's JSON is a LONGTEXT and never sets this.
   */
  json?: boolean;
}

export interface CopyTable {
  name: string;
  /** Stored columns in table order (generated columns are computed by the target). */
  columns: CopyColumn[];
  bytes: number;
  /** A single integer primary-key column: the table can be split into ranges of it. */
  intKey?: string;
}

/** One stream: a whole table, or keys in [from, to) (no from: from the start; no to: to the end). */
export interface CopyUnit {
  table: CopyTable;
  bytes: number;
  range?: { from?: bigint; to?: bigint };
  /** Its row in the copy record (mysql-copy-record.ts), when the copy keeps one. */
  id?: number;
}

/**
 * Cuts [min, max] into `parts` ranges by key value; the first and last are open, so a key outside the bounds
 * read before the snapshot (rows added or removed since) is still read exactly once.
 */
export function keyRanges(min: bigint, max: bigint, parts: number): Array<{ from?: bigint; to?: bigint }> {
  const span = max - min + 1n;
  const n = BigInt(Math.max(1, Math.min(parts, Number(span > 1_000_000n ? 1_000_000n : span))));
  if (n <= 1n) return [{}];
  const step = span / n;
  const out: Array<{ from?: bigint; to?: bigint }> = [];
  for (let i = 0n; i < n; i++) {
    const from = i === 0n ? undefined : min + i * step;
    const to = i === n - 1n ? undefined : min + (i + 1n) * step;
    out.push({ ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) });
  }
  return out;
}

/** How many ranges a table is copied as: above the split size, or above one worker's share of the whole copy. */
export function partsFor(table: Pick<CopyTable, 'bytes' | 'intKey'>, totalBytes: number, splitBytes: number, jobs: number): number {
  return table.intKey ? copyParts(table.bytes, totalBytes, splitBytes, jobs) : 1;
}

/** The source's SELECT for one unit (keys as literals: bigint range bounds, never user input). */
export function selectSql(database: string, unit: CopyUnit): string {
  const cols = unit.table.columns.map((c) => (c.bit ? `${quoteIdent(c.name)} + 0` : quoteIdent(c.name))).join(', ');
  const from = `${quoteIdent(database)}.${quoteIdent(unit.table.name)}`;
  const r = unit.range;
  if (!r || (r.from === undefined && r.to === undefined)) return `SELECT ${cols} FROM ${from}`;
  const k = quoteIdent(unit.table.intKey!);
  const where = [...(r.from !== undefined ? [`${k} >= ${r.from}`] : []), ...(r.to !== undefined ? [`${k} < ${r.to}`] : [])].join(' AND ');
  return `SELECT ${cols} FROM ${from} WHERE ${where}`;
}

/**
 * The target's LOAD DATA for one table: tab-separated, backslash escapes, \N for NULL, bytes as sent. A table with
 * a BIT (or MySQL JSON) column goes through user variables, every column of it: MariaDB 10.11 with a SET clause for some columns
 * only gives a 0 in an AUTO_INCREMENT column a new value despite NO_AUTO_VALUE_ON_ZERO (measured).
 */
export function loadSql(database: string, table: CopyTable): string {
  const viaVars = table.columns.some((c) => c.bit || c.json);
  const targets = table.columns.map((c, i) => (viaVars ? `@c${i}` : quoteIdent(c.name)));
  const value = (c: CopyColumn, i: number) => (c.bit ? `CAST(@c${i} AS UNSIGNED)` : c.json ? `CONVERT(@c${i} USING utf8mb4)` : `@c${i}`);
  const sets = viaVars ? table.columns.map((c, i) => `${quoteIdent(c.name)} = ${value(c, i)}`) : [];
  return (
    `LOAD DATA LOCAL INFILE 'cutover-copy' INTO TABLE ${quoteIdent(database)}.${quoteIdent(table.name)} CHARACTER SET binary ` +
    `FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${targets.join(', ')})${sets.length ? ` SET ${sets.join(', ')}` : ''}`
  );
}

const BACKSLASH = 0x5c;
const SPECIAL = new Map([
  [0x5c, 0x5c],
  [0x09, 0x74],
  [0x0a, 0x6e],
  [0x0d, 0x72],
  [0x00, 0x30],
]);
const NULL_FIELD = Buffer.from('\\N');
const TAB = Buffer.from('\t');
const NEWLINE = Buffer.from('\n');

function needsEscape(b: Buffer): boolean {
  for (const c of SPECIAL.keys()) if (b.indexOf(c) >= 0) return true;
  return false;
}

/** One field as LOAD DATA reads it back byte for byte. */
export function escapeField(b: Buffer | null): Buffer {
  if (b === null) return NULL_FIELD;
  if (!needsEscape(b)) return b;
  const out = Buffer.allocUnsafe(b.length * 2);
  let n = 0;
  for (const c of b) {
    const e = SPECIAL.get(c);
    if (e === undefined) out[n++] = c;
    else {
      out[n++] = BACKSLASH;
      out[n++] = e;
    }
  }
  return out.subarray(0, n);
}

/** One row as a line of the LOAD DATA stream. */
export function rowLine(row: ReadonlyArray<Buffer | null>): Buffer[] {
  const parts: Buffer[] = [];
  row.forEach((f, i) => {
    if (i > 0) parts.push(TAB);
    parts.push(escapeField(f));
  });
  parts.push(NEWLINE);
  return parts;
}

/**
 * A generated column (information_schema.COLUMNS.EXTRA `VIRTUAL GENERATED` / `STORED GENERATED` on both engines):
 * the target computes it. MySQL 8 also writes `DEFAULT_GENERATED` for a column whose default is an expression
 * (`DEFAULT CURRENT_TIMESTAMP`): that one holds data and is copied.
 */
export function isGeneratedColumn(extra: string): boolean {
  return /\b(VIRTUAL|STORED) GENERATED\b/i.test(extra);
}

/** The moved database's tables as the copy sees them, or why this copy cannot move them (then the dump does). */
export async function readCopyTables(q: Query, database: string): Promise<{ tables: CopyTable[] } | { unsupported: string }> {
  const tables = await q<RowDataPacket & { t: string; type: string; engine: string | null; b: string | null }>(
    `SELECT TABLE_NAME AS t, TABLE_TYPE AS type, ENGINE AS engine, CAST(COALESCE(DATA_LENGTH, 0) AS CHAR) AS b FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE <> 'VIEW' ORDER BY TABLE_NAME`,
    [database],
    'listing the tables to copy',
  );
  for (const t of tables) {
    if (t.type !== 'BASE TABLE') return { unsupported: `${t.t} is a ${t.type.toLowerCase()}` };
    if ((t.engine ?? '').toLowerCase() !== 'innodb') return { unsupported: `${t.t} uses ${t.engine ?? 'no'} engine (a consistent snapshot covers InnoDB only)` };
  }
  const cols = await q<RowDataPacket & { t: string; c: string; dt: string; extra: string; key: string }>(
    `SELECT TABLE_NAME AS t, COLUMN_NAME AS c, DATA_TYPE AS dt, EXTRA AS extra, COLUMN_KEY AS \`key\` FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    [database],
    'reading the columns to copy',
  );
  const pk = await q<RowDataPacket & { t: string; n: string }>(
    `SELECT TABLE_NAME AS t, CAST(COUNT(*) AS CHAR) AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND INDEX_NAME = 'PRIMARY' GROUP BY TABLE_NAME`,
    [database],
    'reading primary keys',
  );
  const singleKey = new Set(pk.filter((r) => Number(r.n) === 1).map((r) => r.t));
  const out: CopyTable[] = [];
  for (const t of tables) {
    const mine = cols.filter((c) => c.t === t.t);
    const geometry = mine.find((c) => /geometry|point|linestring|polygon|collection/i.test(c.dt));
    if (geometry) return { unsupported: `${t.t}.${geometry.c} is a ${geometry.dt} column` };
    const stored = mine.filter((c) => !isGeneratedColumn(c.extra));
    const key = mine.find((c) => c.key === 'PRI' && singleKey.has(t.t) && /int$/i.test(c.dt));
    out.push({
      name: t.t,
      columns: stored.map((c) => ({ name: c.c, bit: c.dt.toLowerCase() === 'bit', ...(c.dt.toLowerCase() === 'json' ? { json: true } : {}) })),
      bytes: Number(t.b ?? 0),
      ...(key ? { intKey: key.c } : {}),
    });
  }
  return { tables: out };
}

/** The units, biggest first (the longest stream starts at once); split tables get their key bounds read now. */
export async function copyUnits(q: Query, database: string, tables: readonly CopyTable[], splitBytes: number, jobs: number): Promise<CopyUnit[]> {
  const total = tables.reduce((a, t) => a + t.bytes, 0);
  const units: CopyUnit[] = [];
  for (const t of tables) {
    const parts = partsFor(t, total, splitBytes, jobs);
    if (parts <= 1) {
      units.push({ table: t, bytes: t.bytes });
      continue;
    }
    const k = quoteIdent(t.intKey!);
    const [b] = await q<RowDataPacket & { lo: string | null; hi: string | null }>(
      `SELECT CAST(MIN(${k}) AS CHAR) AS lo, CAST(MAX(${k}) AS CHAR) AS hi FROM ${quoteIdent(database)}.${quoteIdent(t.name)}`,
      [],
      `reading the key bounds of ${t.name}`,
    );
    const ranges = b?.lo != null && b.hi != null ? keyRanges(BigInt(b.lo), BigInt(b.hi), parts) : [{}];
    for (const range of ranges) units.push({ table: t, bytes: Math.round(t.bytes / ranges.length), ...(ranges.length > 1 ? { range } : {}) });
  }
  return units.sort((a, b) => b.bytes - a.bytes);
}

/**
 * The plain secondary indexes (KEY, not PRIMARY/UNIQUE/FULLTEXT/SPATIAL) of a table as SHOW CREATE TABLE spells
 * them, for ALTER TABLE ... ADD after the rows: InnoDB builds an index from sorted rows faster than it maintains
 * it row by row. None when the table has a foreign key (its index must stay) or MariaDB's IGNORED/comments make
 * the line more than a plain key.
 */
export function deferrableIndexes(createTable: string): Array<{ name: string; definition: string }> {
  if (/\bFOREIGN KEY\b/i.test(createTable)) return [];
  const out: Array<{ name: string; definition: string }> = [];
  for (const line of createTable.split('\n')) {
    const m = /^\s+(KEY `((?:[^`]|``)+)` \((?:[^()]|\([0-9]+\))+\)(?: USING BTREE)?),?$/.exec(line);
    if (m) out.push({ name: m[2]!.replace(/``/g, '`'), definition: m[1]! });
  }
  return out;
}

export interface SnapshotCopyOptions {
  source: DbEndpoint;
  target: DbEndpoint;
  database: string;
  jobs: number;
  lockTimeoutMs: number;
  secrets: readonly string[];
  /** The source's flavor: where its GTID position is read. */
  flavor: MysqlFlavor;
  /** Also read the binary log file and offset at the snapshots (a link that starts from them). */
  coordinates?: boolean;
  /** How often the parts still loading report the rows and bytes they have streamed (default LOAD_PROGRESS_MS). */
  progressEveryMs?: number;
}

/** What one loading part has streamed so far. */
interface Streamed {
  rows: number;
  bytes: number;
}

interface Worker {
  src: MysqlConnection;
  dst: MysqlConnection;
}

/**
 * Opens `jobs` worker session pairs whose source snapshots all sit at one GTID position, and returns it. The
 * source's writes to the moved tables wait for the lock for as long as the snapshots take to start (ms).
 */
async function openSnapshots(opts: SnapshotCopyOptions, tables: readonly CopyTable[]): Promise<{ workers: Worker[]; position: CopyStart }> {
  const workers: Worker[] = [];
  const lock = await connectMysql(opts.source, { lockTimeoutMs: opts.lockTimeoutMs });
  try {
    for (let i = 0; i < opts.jobs; i++) {
      const src = (await connectMysql(opts.source, { lockTimeoutMs: opts.lockTimeoutMs })).conn;
      let dst: MysqlConnection;
      try {
        dst = (await connectMysql(opts.target, { lockTimeoutMs: opts.lockTimeoutMs })).conn;
      } catch (e) {
        src.destroy();
        throw e;
      }
      workers.push({ src, dst });
      const s = mappedQuery(src, opts.source, opts.secrets, 'copying');
      await s(`SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ`, [], 'preparing a copy session');
      await s(`SET SESSION character_set_results = binary, SESSION time_zone = '+00:00', SESSION net_write_timeout = 3600`, [], 'preparing a copy session');
      const d = mappedQuery(dst, opts.target, opts.secrets, 'copying');
      await d(`SET SESSION foreign_key_checks = 0, SESSION unique_checks = 0, SESSION time_zone = '+00:00', SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO', SESSION net_read_timeout = 3600`, [], 'preparing a load session');
    }
    const l = mappedQuery(lock.conn, opts.source, opts.secrets, 'copying');
    const names = tables.map((t) => `${quoteIdent(opts.database)}.${quoteIdent(t.name)} READ`);
    if (names.length > 0) await l(`LOCK TABLES ${names.join(', ')}`, [], `locking the tables of ${opts.database} for a moment to start the copy's snapshots`);
    let position: CopyStart;
    try {
      for (const w of workers) await mappedQuery(w.src, opts.source, opts.secrets, 'copying')(`START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`, [], 'starting a copy snapshot');
      const [g] = await l<RowDataPacket & { g: string | null }>(`SELECT @@GLOBAL.${opts.flavor.gtidVariable} AS g`, [], 'reading the GTID position of the snapshots');
      position = { gtid: String(g?.g ?? '') };
      if (opts.coordinates) {
        const b = await binlogCoordinates(l, opts.flavor, 'reading the binary log position of the snapshots');
        if (!b)
          throw new OperationError(`the source has no binary log to replicate from (${opts.flavor.binlogStatusSql} is empty)`, 'enable the binary log on the source (log_bin; a managed service: automated backups on)');
        position = { ...position, ...b };
      }
    } finally {
      if (names.length > 0) await l(`UNLOCK TABLES`, [], 'unlocking the tables').catch(() => lock.conn.destroy());
    }
    return { workers, position };
  } catch (e) {
    for (const w of workers) for (const c of [w.src, w.dst]) c.destroy();
    throw e;
  } finally {
    await lock.conn.end().catch(() => lock.conn.destroy());
  }
}

/** The callback connection under mysql2's promise wrapper, as far as the copy uses it (streaming, LOAD DATA LOCAL). */
interface CoreConnection {
  stream: { writableLength: number; once(event: 'drain', f: () => void): void };
  pause(): void;
  resume(): void;
  query(opts: { sql: string; typeCast: false; rowsAsArray: true }): { on(event: string, f: (arg: unknown) => void): void };
  query(opts: { sql: string; infileStreamFactory: () => NodeJS.ReadableStream }, cb: (err: unknown, res: unknown) => void): void;
}

function core(c: MysqlConnection): CoreConnection {
  return (c as unknown as { connection: CoreConnection }).connection;
}

/**
 * Streams one unit from the worker's source snapshot into the target; pauses the source while the target is behind.
 * With `mark`, the load and the unit's done mark commit in one target transaction (warnings roll both back).
 */
async function copyUnit(w: Worker, opts: SnapshotCopyOptions, unit: CopyUnit, streamed: Streamed, mark?: { sql: string; params: unknown[] }): Promise<number> {
  const d = mappedQuery(w.dst, opts.target, opts.secrets, 'copying');
  if (mark) await d('START TRANSACTION', [], `starting the load of ${unit.table.name}`);
  const rows = await loadUnit(w, opts, unit, streamed);
  if (mark) {
    await d(mark.sql, mark.params, `marking ${unit.table.name} copied`);
    await d('COMMIT', [], `committing the load of ${unit.table.name}`);
  }
  return rows;
}

function loadUnit(w: Worker, opts: SnapshotCopyOptions, unit: CopyUnit, streamed: Streamed): Promise<number> {
  const src = core(w.src);
  const dst = core(w.dst);
  const socket = dst.stream;
  const body = new PassThrough();
  let rows = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let paused = false;
  const flush = (): void => {
    if (pendingBytes === 0) return;
    body.write(Buffer.concat(pending, pendingBytes));
    streamed.rows = rows;
    streamed.bytes += pendingBytes;
    pending = [];
    pendingBytes = 0;
    if (!paused && socket.writableLength > HIGH_WATER) {
      paused = true;
      src.pause();
      socket.once('drain', () => {
        paused = false;
        src.resume();
      });
    }
  };
  const read = new Promise<void>((resolve, reject) => {
    const q = src.query({ sql: selectSql(opts.database, unit), typeCast: false, rowsAsArray: true });
    q.on('result', (row: unknown) => {
      rows++;
      for (const p of rowLine(row as Array<Buffer | null>)) {
        pending.push(p);
        pendingBytes += p.length;
      }
      if (pendingBytes >= CHUNK) flush();
    });
    q.on('error', (e: unknown) => reject(mapMysqlError(e, opts.source, `reading ${unit.table.name}`, opts.secrets)));
    q.on('end', () => {
      flush();
      resolve();
    });
  });
  // The source's failure ends the load stream with an error: the LOAD then fails instead of committing a part.
  read.catch((e: unknown) => body.destroy(e as Error));
  const load = new Promise<number>((resolve, reject) => {
    dst.query({ sql: loadSql(opts.database, unit.table), infileStreamFactory: () => body }, (err: unknown, res: unknown) => {
      if (err) return reject(mapMysqlError(err, opts.target, `loading ${unit.table.name}`, opts.secrets));
      resolve(Number((res as { warningStatus?: number }).warningStatus ?? 0));
    });
  });
  read.then(
    () => body.end(),
    () => {},
  );
  return Promise.all([read, load]).then(async ([, warnings]) => {
    if (warnings > 0) {
      const [w1] = await mappedQuery(w.dst, opts.target, opts.secrets, 'copying')<RowDataPacket & { Message: string }>(`SHOW WARNINGS LIMIT 1`, [], 'reading load warnings');
      throw new OperationError(
        `loading ${unit.table.name} into the target changed values (${warnings} warning(s), first: ${w1?.Message ?? 'unknown'})`,
        `compare the column definitions of ${opts.database}.${unit.table.name} on source and target (character sets, sql_mode, versions); \`cutover rollback --cleanup\` removes the copy`,
      );
    }
    return rows;
  });
}

export interface SnapshotCopyResult {
  /** The source's GTID position at the snapshots (and its binary log coordinates when the options asked for them): the replica starts after it. */
  position: CopyStart;
  rows: number;
  units: number;
  /** Tables copied as several key ranges (their plain secondary indexes wait for restoreDeferredIndexes). */
  split: string[];
}

type IndexDef = { name: string; definition: string };

/**
 * The plain secondary indexes of `tables` as the SOURCE defines them (the target's may be dropped already), split by
 * whether the target has them now.
 */
async function deferredIndexes(database: string, tables: Iterable<string>, src: Query, dst: Query): Promise<Array<{ table: string; present: IndexDef[]; missing: IndexDef[] }>> {
  const out: Array<{ table: string; present: IndexDef[]; missing: IndexDef[] }> = [];
  for (const table of tables) {
    const [row] = await src<RowDataPacket & { 'Create Table': string }>(`SHOW CREATE TABLE ${quoteIdent(database)}.${quoteIdent(table)}`, [], `reading the definition of ${table}`);
    const indexes = deferrableIndexes(String(row?.['Create Table'] ?? ''));
    if (indexes.length === 0) continue;
    const rows = await dst<RowDataPacket & { n: string }>(
      `SELECT DISTINCT INDEX_NAME AS n FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
      [database, table],
      `reading the indexes of ${table} on the target`,
    );
    const onTarget = new Set(rows.map((r) => r.n));
    out.push({ table, present: indexes.filter((i) => onTarget.has(i.name)), missing: indexes.filter((i) => !onTarget.has(i.name)) });
  }
  return out;
}

/** Tables copied as several ranges (the big ones) lose their plain secondary indexes until their rows are in. */
async function dropIndexesOfSplitTables(database: string, units: readonly CopyUnit[], src: Query, dst: Query): Promise<void> {
  for (const { table, present } of await deferredIndexes(database, new Set(units.filter((u) => u.range).map((u) => u.table.name)), src, dst)) {
    if (present.length === 0) continue;
    await dst(
      `ALTER TABLE ${quoteIdent(database)}.${quoteIdent(table)} ${present.map((i) => `DROP INDEX ${quoteIdent(i.name)}`).join(', ')}`,
      [],
      `dropping the secondary indexes of ${table} on the target until its rows are in`,
    );
  }
}

/**
 * Builds the plain secondary indexes the copy of `tables` left out (the ones the target lacks), after their rows;
 * also after a resumed copy whose earlier run was killed before building them.
 */
export async function restoreDeferredIndexes(database: string, tables: readonly string[], src: Query, dst: Query, progress: SyncProgress): Promise<void> {
  for (const { table, missing } of await deferredIndexes(database, tables, src, dst)) {
    if (missing.length === 0) continue;
    progress({ phase: 'copy', message: `building ${missing.length} secondary index(es) of ${table} after its rows`, table });
    await dst(`ALTER TABLE ${quoteIdent(database)}.${quoteIdent(table)} ${missing.map((i) => `ADD ${i.definition}`).join(', ')}`, [], `building the secondary indexes of ${table} on the target`);
  }
}

/** Records `units` on the target (mysql-copy-record.ts) before any is loaded: they get their ids. */
export async function recordCopyUnits(dst: Query, plan: string, units: CopyUnit[], firstId: number): Promise<void> {
  const ids = await recordUnits(
    dst,
    plan,
    units.map((u) => ({ table: u.table.name, ...u.range })),
    firstId,
  );
  units.forEach((u, i) => (u.id = ids[i]));
}

/**
 * Copies `units` (copyUnits) at one GTID position with `opts.jobs` workers. The first failure stops the others from
 * starting new units; every session is closed at the end. With `record` (units recorded by recordCopyUnits), each
 * load commits with its done mark, which names this copy (`attempt`) and its position.
 */
export async function copyAtOnePosition(
  opts: SnapshotCopyOptions,
  units: readonly CopyUnit[],
  srcQuery: Query,
  dstQuery: Query,
  progress: SyncProgress,
  record?: { plan: string; attempt: number },
): Promise<SnapshotCopyResult> {
  const tables = [...new Map(units.map((u) => [u.table.name, u.table])).values()];
  const jobs = Math.max(1, Math.min(opts.jobs, units.length));
  await dropIndexesOfSplitTables(opts.database, units, srcQuery, dstQuery);
  const { workers, position } = await openSnapshots({ ...opts, jobs }, tables);
  const gtid = position.gtid;
  const tally = new CopyTally(units.map((u) => ({ table: u.table.name, bytes: u.bytes })));
  const totalBytes = units.reduce((a, u) => a + u.bytes, 0);
  let next = 0;
  let failed: unknown;
  progress({
    phase: 'copy',
    message: `copying ${tables.length} table(s) as ${units.length} stream(s) with ${jobs} worker(s) at GTID ${gtid || '(empty)'}`,
    tablesDone: 0,
    tablesTotal: tables.length,
    bytesDone: 0,
    bytesTotal: totalBytes,
  });
  const loading = new Map<CopyUnit, Streamed>();
  const work = async (w: Worker): Promise<void> => {
    while (failed === undefined && next < units.length) {
      const unit = units[next++]!;
      let n: number;
      const streamed: Streamed = { rows: 0, bytes: 0 };
      loading.set(unit, streamed);
      try {
        n = await copyUnit(w, opts, unit, streamed, record && unit.id !== undefined ? markDoneSql(record.plan, unit.id, record.attempt, gtid) : undefined);
      } catch (e) {
        failed ??= e;
        return;
      } finally {
        loading.delete(unit);
      }
      const { tableDone, ...count } = tally.partDone(unit.table.name, unit.bytes, n);
      progress({
        phase: 'copy',
        message: `copied ${unit.table.name}${unit.range ? ' (a key range)' : ''}${tableDone ? ` (${formatCount(count.tableRows ?? 0)} rows)` : ''}: ${countsLine(count)}`,
        ...count,
      });
    }
  };
  // A table copied as one long part reports as it streams, not only at its end.
  const watch = watchInFlight(
    async () =>
      cappedInFlight(
        [...loading].map(([u, r]) => ({ table: u.table.name, ...r })),
        [...loading.keys()].map((u) => ({ table: u.table.name, bytes: u.bytes })),
      ),
    tally,
    progress,
    opts.progressEveryMs,
  );
  try {
    await Promise.all(workers.map(work));
  } finally {
    await watch.stop();
    await Promise.all(workers.flatMap((w) => [w.src, w.dst]).map((c) => (failed === undefined ? c.end().catch(() => c.destroy()) : Promise.resolve(c.destroy()))));
  }
  if (failed !== undefined) throw failed;
  return { position, rows: tally.rows, units: units.length, split: [...new Set(units.filter((u) => u.range).map((u) => u.table.name))] };
}
