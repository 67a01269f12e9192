import type { SyncProgress } from '../../src/engine/cutover-adapter.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { formatCount } from '../../src/util/units.js';
import { findClientBinary } from './postgres-binaries.js';
import { spawnDetached, startGatedPipeline, type GatedPipeline } from '../../src/util/subprocess.js';
import { connectPgReplication, type PgClient } from './postgres-connection.js';
import { TOOL_SCHEMA } from './postgres-replication.js';
import { quoteIdent, quoteLiteral } from './postgres-sql.js';
import { libpqEnv } from './postgres-tools.js';
import { COPY_SPLIT_BYTES, copyParts } from '../../src/util/copy-split.js';
import { CopyTally, cappedInFlight, countsLine, watchInFlight } from '../../src/util/copy-tally.js';

/**
 * The initial copy the way pgcopydb does it: a replication slot created first exports the snapshot of its
 * consistent point; every table (big ones split into page ranges) is copied with COPY under that one snapshot by
 * parallel workers, into tables that have no index or constraint yet; the subscription then starts from the
 * slot, so each change is either in the copy or streamed after it, never both and never neither.
 *
 * Resume. A copy cut short (the process running sync killed, the network gone) goes on unit by unit, under the
 * SAME snapshot, or starts again; it never mixes two snapshots. Why one snapshot: rows copied under one view and
 * the rest under a later one would need each table's stream to start at a different point, and a ctid range
 * cannot be resumed at all under a later view (an update in between moves a row from a copied page range to an
 * uncopied one: copied twice). So:
 * - The snapshot is held by a keeper: a psql session in its own process group that imports the slot's snapshot,
 *   exports it again under its own name and sleeps inside that transaction. It outlives the process running sync
 *   (not a restart of the source); workers import the keeper's name. It is ended when the copy is done, by
 *   `rollback`/cleanup, or at the latest after the copy bound.
 * - The units (table or page range, with their columns) and the keeper are written to `_cutover.copy_unit` and
 *   `_cutover.copy_snapshot` on the target before the first COPY, so a resume copies exactly the same units.
 * - Each unit loads in ONE target transaction that also marks it done, and that transaction commits only once
 *   the producer's COPY has ended well (startGatedPipeline: COMMIT is written to the consumer's script FIFO after the
 *   producer exits 0). A unit is thus on the target whole and marked done, or absent and not marked: nothing to clean up.
 * - On resume, if the slot is still there at the recorded consistent point and the keeper's snapshot can still be
 *   imported, only the units not marked done are copied, under that snapshot; the subscription then starts from
 *   the slot as for an uninterrupted copy. If every unit is done, the snapshot is not needed any more. Otherwise
 *   (keeper or slot gone) the copied tables are emptied and everything is copied again under a new slot.
 */

export interface CopyTable {
  /** Quoted, schema-qualified. */
  table: string;
  /** Columns COPY moves, quoted (generated columns are computed by the target). */
  columns: string[];
  bytes: number;
  pages: number;
  /**
   * Rows move in COPY's binary format: every column's type is a built-in (pg_catalog) base, range or multirange
   * type with binary send/receive, and the target's major is not older. That spares both servers the text
   * output/parsing of every value (most of a COPY's CPU); a user type (its binary form may embed OIDs that differ
   * between servers) or a table read back from a resumed copy's record goes as text.
   */
  binary?: boolean;
}

/** One COPY: a whole table, or the pages [fromPage, toPage) of it (no toPage: to its end). */
export interface CopyUnit {
  table: CopyTable;
  bytes: number;
  range?: { fromPage: number; toPage?: number };
  /** Its row in `_cutover.copy_unit` (a copy that can resume). */
  id?: number;
  /** Copied and committed by an earlier run under the same snapshot. */
  done?: boolean;
}

/**
 * What the workers copy, biggest first (the longest copy starts at once). A table above `splitBytes` is cut into
 * page ranges read with a TID range scan; the last range is open-ended, so rows on pages added under the snapshot's
 * feet (none are visible to it) or missed by a stale page count are still read.
 */
export function copyUnits(tables: readonly CopyTable[], splitBytes = COPY_SPLIT_BYTES, jobs = 1, maxParts?: number): CopyUnit[] {
  const units: CopyUnit[] = [];
  // pgbench_accounts: 2 ranges of 256MB with 3 workers -> 3 of 128MB (copyParts: above one worker's share too).
  const total = tables.reduce((a, t) => a + t.bytes, 0);
  for (const t of tables) {
    const parts = Math.min(copyParts(t.bytes, total, splitBytes, jobs, maxParts), Math.max(1, t.pages));
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

/** The source side of one unit: its COPY ... TO STDOUT inside a transaction that imports the copy's snapshot. */
export function copyOutScript(unit: CopyUnit, snapshot: string): string {
  return `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSET TRANSACTION SNAPSHOT ${quoteLiteral(snapshot)};\n${copyOutSql(unit)};\n\\q\n`;
}

/** The COPY ... TO STDOUT one unit runs on the source. */
export function copyOutSql(unit: CopyUnit): string {
  const cols = unit.table.columns.join(', ');
  const format = unit.table.binary ? ' (FORMAT binary)' : '';
  if (!unit.range) return `COPY ${unit.table.table} (${cols}) TO STDOUT${format}`;
  const { fromPage, toPage } = unit.range;
  const where = `ctid >= '(${fromPage},0)'::tid${toPage !== undefined ? ` AND ctid < '(${toPage},0)'::tid` : ''}`;
  return `COPY (SELECT ${cols} FROM ONLY ${unit.table.table} WHERE ${where}) TO STDOUT${format}`;
}

/**
 * The tables `names` (quoted, qualified; leaf tables, which hold the rows) with the columns COPY moves, their size
 * and whether they can move in binary (`binaryAllowed`: the target's major is not older than the source's).
 */
export async function copyTables(c: PgClient, names: readonly string[], binaryAllowed = false): Promise<CopyTable[]> {
  const { rows } = await c.query<{ t: string; cols: string[]; b: string; p: string; builtin: boolean }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t,
            array(SELECT quote_ident(a.attname) FROM pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                   ORDER BY a.attnum) AS cols,
            pg_relation_size(c.oid)::text AS b, greatest(c.relpages, 0)::text AS p,
            NOT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
                         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                           AND NOT (ty.typnamespace = 'pg_catalog'::regnamespace AND ty.typtype IN ('b', 'r', 'm')
                                    AND ty.typsend <> 0 AND ty.typreceive <> 0
                                    AND (ty.typelem = 0 OR EXISTS (SELECT 1 FROM pg_type el WHERE el.oid = ty.typelem
                                                                     AND el.typnamespace = 'pg_catalog'::regnamespace AND el.typtype IN ('b', 'r', 'm'))))) AS builtin
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = ANY($1::regclass[]) AND c.relkind = 'r'
      ORDER BY 1`,
    [names],
  );
  // pg_relation_size is current while relpages is as of the last VACUUM/ANALYZE: pages follow from the size.
  return rows.map((r) => ({
    table: r.t,
    columns: r.cols,
    bytes: Number(r.b),
    pages: Math.max(Number(r.p), Math.ceil(Number(r.b) / 8192)),
    ...(binaryAllowed && r.builtin ? { binary: true } : {}),
  }));
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

const COPY_APP = 'cutover copy';
/**
 * The copy's and the keeper's sessions: a database's or role's own statement_timeout (sync carries the source's to the
 * target) must not cancel a long COPY, nor an idle-in-transaction cutoff end a session waiting on its other side.
 */
const NO_SESSION_TIMEOUTS = '-c statement_timeout=0 -c idle_in_transaction_session_timeout=0';
/**
 * Both ends of a pair write and read text COPY in one style whatever either server's database or role settings say
 * (as pg_dump does): a source's DateStyle 'SQL, DMY' printed 01/03/2024 that a target role's 'ISO, MDY' read as 3
 * January; IntervalStyle alike; extra_float_digits 3 keeps every bit of a float on a server older than 12.
 */
const COPY_SESSION_OPTIONS = `${NO_SESSION_TIMEOUTS} -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3`;

/**
 * The timeouts a server of `major` also has (an unknown name in PGOPTIONS fails the login): idle_session_timeout
 * (14+) would end a pair waiting for its unit, transaction_timeout (17+) a long COPY or the snapshot keeper.
 */
export function newerTimeoutsOff(major: number): string {
  return [...(major >= 14 ? ['-c idle_session_timeout=0'] : []), ...(major >= 17 ? ['-c transaction_timeout=0'] : [])].join(' ');
}
/** A unit this big gets stdbuf's 1 MB stdio buffers. */
const BIG_BUFFER_BYTES = 8 * 1024 * 1024;
/** A pair started ahead and not taken within this long is not used (see CopyPairs). */
const PAIR_FRESH_MS = 5_000;

/** Ends pairs that will not be used (their start may have failed: nothing to end then). */
async function end(pairs: readonly Promise<GatedPipeline>[]): Promise<void> {
  await Promise.all(pairs.map((p) => p.then((pair) => pair.discard()).catch(() => {})));
}

/** Where the copy's psql pairs connect, and with which psql. */
export interface CopyEndpoints {
  /** Any psql relays COPY: the one of the tools that dump the schema (a native one where the host has it). */
  psql: string;
  source: DbEndpoint;
  target: DbEndpoint;
  database: string;
  /** PGOPTIONS for the target's sessions. */
  targetOptions: string;
  /** The servers' majors (which timeouts their sessions switch off, newerTimeoutsOff). */
  majors: { source: number; target: number };
  /** Both sides speak the source database's encoding; the target converts if its own differs. */
  encoding: string;
}

/**
 * The copy's psql pairs (COPY TO on the source | \copy on the target), the first ones started ahead: started while
 * the slot and the copy record are still being made, they have logged in (~100 ms a pair here: two processes, two
 * scram logins) by the time the first units can go. A pair started ahead is taken within a second as a rule; one
 * left waiting longer (the slot waited for long transactions on the source) is ended and a fresh one started, so an
 * idle cutoff on the way (idle_session_timeout, a pooler's or a load balancer's) cannot have dropped its sessions.
 * Later pairs start when their unit does.
 */
export class CopyPairs {
  private readonly ready: Array<{ pair: Promise<GatedPipeline>; since: number }> = [];
  private readonly secrets: string[];

  constructor(
    private readonly at: CopyEndpoints,
    ahead = 0,
    private readonly freshMs = PAIR_FRESH_MS,
  ) {
    this.secrets = [at.source.password, at.target.password].filter((s): s is string => !!s);
    for (let i = 0; i < ahead; i++) {
      const pair = this.start();
      // Taken and awaited later, or discarded: a failed start surfaces then, not as an unhandled rejection.
      pair.catch(() => {});
      this.ready.push({ pair, since: Date.now() });
    }
  }

  /** A pair started ahead if one is left (and fresh), else a new one (with big stdio buffers only for a unit that needs them). */
  take(bytes: number): Promise<GatedPipeline> {
    const ahead = this.ready.shift();
    if (ahead && Date.now() - ahead.since <= this.freshMs) return ahead.pair;
    if (ahead) void end([ahead.pair, ...this.ready.splice(0).map((r) => r.pair)]);
    return this.start(bytes >= BIG_BUFFER_BYTES);
  }

  /** Ends the pairs started ahead and never taken. */
  async discard(): Promise<void> {
    await end(this.ready.splice(0).map((r) => r.pair));
  }

  private start(bigBuffers = true): Promise<GatedPipeline> {
    const { psql } = this.at;
    const script = (path: string) => ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', path];
    return startGatedPipeline(
      {
        cmd: psql,
        args: script,
        env: libpqEnv(this.at.source, this.at.database, { PGCLIENTENCODING: this.at.encoding, PGAPPNAME: COPY_APP, PGOPTIONS: `${COPY_SESSION_OPTIONS} ${newerTimeoutsOff(this.at.majors.source)}` }),
      },
      {
        cmd: psql,
        args: script,
        env: libpqEnv(this.at.target, this.at.database, {
          PGCLIENTENCODING: this.at.encoding,
          PGAPPNAME: COPY_APP,
          PGOPTIONS: `${COPY_SESSION_OPTIONS} ${newerTimeoutsOff(this.at.majors.target)} ${this.at.targetOptions}`,
        }),
      },
      // psql moves COPY data through stdio: 1 MB buffers halve the relay's system time of a big unit (stdbuf is one
      // more exec, which a small one does not pay back).
      { secrets: this.secrets, bigBuffers },
    );
  }
}

export interface SnapshotCopyOptions {
  snapshot: string;
  jobs: number;
  /** The psql pairs that move the rows (some perhaps started ahead). */
  pairs: CopyPairs;
  /**
   * Tables copied whole are emptied in their load's transaction and loaded with COPY FREEZE (copyInScript); needs
   * the target session to be allowed to TRUNCATE them (their owner or a superuser).
   */
  freeze?: boolean;
  /**
   * A target session that reads how far the loading parts are (pg_stat_progress_copy, PostgreSQL 14+) every
   * LOAD_PROGRESS_MS: without it a part reports only once it is in, and a table copied whole reports once, at its end.
   */
  watch?: PgClient;
}
/** Copies every unit with `jobs` workers; the first failure stops the others from starting new units. */
export async function copyUnderSnapshot(units: readonly CopyUnit[], opts: SnapshotCopyOptions, progress: SyncProgress): Promise<void> {
  // Bytes count what earlier runs copied too; rows and the ETA are this run's (a resumed copy does not know the earlier run's rows).
  const tally = new CopyTally(units.map((u) => ({ table: u.table.table, bytes: u.bytes, ...(u.done ? { done: true } : {}) })));
  const todo = units.filter((u) => !u.done);
  let next = 0;
  let failed: unknown;
  const loading = new Set<CopyUnit>();
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < todo.length) {
      const unit = todo[next++]!;
      let unitRows: number;
      loading.add(unit);
      try {
        const pair = await opts.pairs.take(unit.bytes);
        unitRows = copiedRows(await pair.run({ producer: copyOutScript(unit, opts.snapshot), ...copyInScript(unit, opts.freeze) }));
      } catch (e) {
        failed ??= e;
        return;
      } finally {
        loading.delete(unit);
      }
      const { tableDone, ...count } = tally.partDone(unit.table.table, unit.bytes, unitRows);
      progress({
        phase: 'copy',
        message: `copy ${countsLine(count)}${tableDone ? ` (${unit.table.table} done: ${formatCount(count.tableRows ?? 0)} rows)` : ''}`,
        ...count,
      });
    }
  };
  const watching = opts.watch ? watchInFlight(() => readLoading(opts.watch!, loading), tally, progress) : undefined;
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs, todo.length)) }, worker));
  } finally {
    await watching?.stop();
  }
  if (failed !== undefined) throw failed;
}

/**
 * What the parts still loading have moved, from the target's pg_stat_progress_copy of the copy's sessions (14+; an
 * older target fails the read, which ends the watch), by table, cappedInFlight.
 */
async function readLoading(watch: PgClient, loading: ReadonlySet<CopyUnit>): Promise<Map<string, { bytes: number; rows: number }>> {
  if (loading.size === 0) return new Map();
  const { rows } = await watch.query<{ t: string; b: string; r: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t, sum(p.bytes_processed)::text AS b, sum(p.tuples_processed)::text AS r
       FROM pg_stat_progress_copy p JOIN pg_stat_activity a ON a.pid = p.pid
       JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE a.application_name = $1 AND p.datname = current_database() AND p.command = 'COPY FROM'
      GROUP BY 1`,
    [COPY_APP],
  );
  return cappedInFlight(
    rows.map((r) => ({ table: r.t, bytes: Number(r.b), rows: Number(r.r) })),
    [...loading].map((u) => ({ table: u.table.table, bytes: u.bytes })),
  );
}

/** Whole tables from this size up are loaded with COPY FREEZE (see copyInScript). */
export const FREEZE_MIN_BYTES = 8 * 1024 * 1024;
const UNITS = `${quoteIdent(TOOL_SCHEMA)}.copy_unit`;
const ROWS_LINE = 'cutover-rows';

/** The row count a unit's script printed (0 if none). */
export function copiedRows(consumerOutput: string): number {
  const m = new RegExp(`^${ROWS_LINE} (\\d+)$`, 'm').exec(consumerOutput);
  return m ? Number(m[1]) : 0;
}
const SNAPSHOT = `${quoteIdent(TOOL_SCHEMA)}.copy_snapshot`;

/**
 * The target side of one unit, read by psql from its script FIFO: the load and its done mark in one transaction, whose
 * COMMIT is only written once the producer has ended well.
 */
export function copyInScript(unit: CopyUnit, freeze = false): { prelude: string; commit: string } {
  const mark = unit.id !== undefined ? `UPDATE ${UNITS} SET done = true WHERE id = ${unit.id};\n` : '';
  // A whole table is emptied in the load's own transaction, which lets COPY write its rows frozen: 10% faster
  // on a 1.3 GB table here, and the index builds and the first reads after it have no hint bits to set. Not a small
  // one: its TRUNCATE makes new files (table, TOAST and its index, 10-15 ms here) and its commit must then flush WAL,
  // which cost more than freezing a few pages saves.
  const whole = freeze && !unit.range && unit.bytes >= FREEZE_MIN_BYTES;
  const options = [...(unit.table.binary ? ['format binary'] : []), ...(whole ? ['freeze'] : [])];
  return {
    prelude: `BEGIN;\n${whole ? `TRUNCATE ONLY ${unit.table.table};\n` : ''}\\copy ${unit.table.table} (${unit.table.columns.join(', ')}) from pstdin${options.length ? ` (${options.join(', ')})` : ''}\n`,
    // The rows the \copy loaded, for progress (psql sets ROW_COUNT after it).
    commit: `\\echo ${ROWS_LINE} :ROW_COUNT\n${mark}COMMIT;\n\\q\n`,
  };
}

/** What a resumable copy keeps on the target: the slot it belongs to, the keeper, and every unit. */
export interface CopyRecord {
  slot: string;
  consistentPoint: string;
  snapshot: string;
  keeperPid: number;
  units: CopyUnit[];
}

/** Writes the copy's record (replacing any earlier one) in one transaction, before the first unit is copied. */
export async function saveCopyRecord(dst: PgClient, r: CopyRecord): Promise<CopyUnit[]> {
  const units = r.units.map((u, i) => ({ ...u, id: i + 1, done: false }));
  await dst.query('BEGIN');
  try {
    await dst.query(`DROP TABLE IF EXISTS ${UNITS}, ${SNAPSHOT}`);
    await dst.query(`CREATE TABLE ${SNAPSHOT} (slot text PRIMARY KEY, consistent_point pg_lsn NOT NULL, snapshot text NOT NULL, keeper_pid int NOT NULL)`);
    await dst.query(
      `CREATE TABLE ${UNITS} (id int PRIMARY KEY, tbl text NOT NULL, columns text[] NOT NULL, bytes bigint NOT NULL, pages bigint NOT NULL, from_page bigint, to_page bigint, done boolean NOT NULL DEFAULT false)`,
    );
    await dst.query(`INSERT INTO ${SNAPSHOT} VALUES ($1, $2, $3, $4)`, [r.slot, r.consistentPoint, r.snapshot, r.keeperPid]);
    await dst.query(
      `INSERT INTO ${UNITS} (id, tbl, columns, bytes, pages, from_page, to_page)
       SELECT i, t, c::text[], b, p, f, l FROM unnest($1::int[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS x(i, t, c, b, p, f, l)`,
      [
        units.map((u) => u.id),
        units.map((u) => u.table.table),
        // One array literal per unit: unnest flattens a text[][] completely.
        units.map((u) => `{${u.table.columns.map((c) => `"${c.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`),
        units.map((u) => u.table.bytes),
        units.map((u) => u.table.pages),
        units.map((u) => u.range?.fromPage ?? null),
        units.map((u) => u.range?.toPage ?? null),
      ],
    );
    await dst.query('COMMIT');
  } catch (e) {
    await dst.query('ROLLBACK').catch(() => {});
    throw e;
  }
  return units;
}

/** The record of an earlier copy of this plan, if one was cut short (undefined: none). */
export async function readCopyRecord(dst: PgClient): Promise<CopyRecord | undefined> {
  const exists = await dst.query(`SELECT to_regclass($1) AS u, to_regclass($2) AS s`, [UNITS, SNAPSHOT]);
  if (!exists.rows[0]?.u || !exists.rows[0]?.s) return undefined;
  const s = await dst.query<{ slot: string; lsn: string; snapshot: string; pid: number }>(`SELECT slot, consistent_point::text AS lsn, snapshot, keeper_pid AS pid FROM ${SNAPSHOT}`);
  if (s.rows.length !== 1) return undefined;
  const u = await dst.query<{ id: number; tbl: string; columns: string[]; bytes: string; pages: string; from_page: string | null; to_page: string | null; done: boolean }>(
    `SELECT id, tbl, columns, bytes::text, pages::text, from_page::text, to_page::text, done FROM ${UNITS} ORDER BY id`,
  );
  const tables = new Map<string, CopyTable>();
  const units = u.rows.map((r): CopyUnit => {
    const table = tables.get(r.tbl) ?? { table: r.tbl, columns: r.columns, bytes: Number(r.bytes), pages: Number(r.pages) };
    tables.set(r.tbl, table);
    const parts = u.rows.filter((x) => x.tbl === r.tbl).length;
    return {
      table,
      bytes: Math.round(table.bytes / parts),
      id: r.id,
      done: r.done,
      ...(r.from_page !== null ? { range: { fromPage: Number(r.from_page), ...(r.to_page !== null ? { toPage: Number(r.to_page) } : {}) } } : {}),
    };
  });
  const row = s.rows[0]!;
  return { slot: row.slot, consistentPoint: row.lsn, snapshot: row.snapshot, keeperPid: row.pid, units };
}

export async function dropCopyRecord(dst: PgClient): Promise<void> {
  await dst.query(`DROP TABLE IF EXISTS ${UNITS}, ${SNAPSHOT}`);
}

/** application_name of the keeper of plan `name`'s snapshot (as the server stores it: at most 63 bytes). */
export function keeperAppName(name: string): string {
  return `cutover snapshot ${name}`.slice(0, 63);
}

/**
 * Starts the keeper of `snapshot` (see the comment at the top) for at most `holdMs`, and returns the name it
 * exports the same snapshot under and its backend pid on the source.
 */
export async function holdSnapshot(source: DbEndpoint, database: string, snapshot: string, name: string, holdMs: number, sourceMajor: number): Promise<{ snapshot: string; pid: number }> {
  const env = libpqEnv(source, database, { PGAPPNAME: keeperAppName(name), PGOPTIONS: `${NO_SESSION_TIMEOUTS} ${newerTimeoutsOff(sourceMajor)}` });
  const { firstLine } = await spawnDetached(
    {
      cmd: await findClientBinary('psql'),
      args: [
        '-X',
        '-q',
        '-At',
        '-v',
        'ON_ERROR_STOP=1',
        '-c',
        'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
        '-c',
        `SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshot)}`,
        '-c',
        `SELECT pg_export_snapshot() || ' ' || pg_backend_pid()`,
        '-c',
        `SELECT pg_sleep(${Math.ceil(holdMs / 1000)})`,
      ],
      env,
    },
    { secrets: [source.password].filter((s): s is string => !!s) },
  );
  const [name2, pid] = firstLine.trim().split(' ');
  return { snapshot: name2!, pid: Number(pid) };
}

/** Whether `snapshot` can still be imported on the source (its keeper's transaction is open). */
export async function snapshotAlive(src: PgClient, snapshot: string): Promise<boolean> {
  await src.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await src.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshot)}`);
    return true;
  } catch {
    return false;
  } finally {
    await src.query('ROLLBACK');
  }
}

/** Ends plan `name`'s snapshot keeper, if one runs (by pid when known; else every keeper of this plan). */
export async function releaseSnapshot(src: PgClient, name: string, pid?: number): Promise<void> {
  await src.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() AND ($2::int IS NULL OR pid = $2)`, [keeperAppName(name), pid ?? null]);
}

/**
 * Ends the target sessions of copies still running from a sync that was killed (they can never commit: their
 * script ends without COMMIT), so their locks and work go with them.
 */
export async function endOrphanCopies(dst: PgClient): Promise<number> {
  const deadline = Date.now() + 10_000;
  let ended = 0;
  for (;;) {
    const { rows } = await dst.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = '${COPY_APP}' AND datname = current_database() AND pid <> pg_backend_pid()`,
    );
    if (rows[0]!.n === 0 || Date.now() > deadline) return ended;
    ended = Math.max(ended, rows[0]!.n);
    await new Promise((r) => setTimeout(r, 100));
  }
}
