import type { RowDataPacket } from 'mysql2/promise';
import type { Query } from './mysql-sessions.js';

/**
 * What a MariaDB parallel copy keeps on the target so a `sync` killed mid-copy goes on table by table instead of
 * starting again. MariaDB cannot hand a snapshot to a later process (PostgreSQL's exported snapshot), so a resumed
 * copy takes a new one at a later GTID position; the copy then holds tables as of several positions P1 < P2 < ...
 * The replica starts from P1 and runs in stages: up to P2 (START SLAVE UNTIL master_gtid_pos) with the tables
 * copied at P2 and later ignored (replicate_ignore_table), since their copy already holds those changes; up to P3
 * with the tables of P3 and later ignored; and so on; from the last position on it applies everything. Every
 * change is thus applied once to every table: from the position its copy was taken at, never before.
 *
 * - Units (a table, or a key range of a big one) are recorded before the first one is loaded; each unit's LOAD
 *   DATA commits in one target transaction with its done mark and the position its snapshot was taken at. A unit is
 *   on the target whole and marked, or absent and unmarked.
 * - All ranges of a table come from one position: a resumed copy empties every table that is not complete
 *   (TRUNCATE) and copies it whole again at the new position.
 * - The record lives in the target's `_cutover` database (one row per unit, keyed by plan), outside the moved
 *   database and the replica's filter, and is removed once the replica follows the source.
 */

export const RECORD_DATABASE = '_cutover';
const TABLE = '`_cutover`.`copy_unit`';

export interface RecordedUnit {
  id: number;
  table: string;
  /** Key range bounds as decimal strings (a split table); absent: the whole table. */
  from?: string;
  to?: string;
  /** The copy (1, 2, ...) that loaded it; absent: not loaded yet. */
  attempt?: number;
  /** The GTID position of that copy's snapshots. */
  gtid?: string;
}

/** Creates the record if needed and clears the plan's rows in it (a fresh copy). */
export async function startRecord(dst: Query, plan: string): Promise<void> {
  await createRecord(dst);
  await dst(`DELETE FROM ${TABLE} WHERE plan = ?`, [plan], 'clearing an earlier copy record');
}

async function createRecord(dst: Query): Promise<void> {
  await dst(`CREATE DATABASE IF NOT EXISTS \`${RECORD_DATABASE}\``, [], 'creating the copy record database on the target');
  await dst(
    `CREATE TABLE IF NOT EXISTS ${TABLE} (plan varchar(64) NOT NULL, id int NOT NULL, tbl varchar(64) NOT NULL, key_from varchar(40) NULL, key_to varchar(40) NULL, attempt int NULL, gtid text NULL, PRIMARY KEY (plan, id)) ENGINE=InnoDB`,
    [],
    'creating the copy record on the target',
  );
}

/** The plan's recorded units (none: no copy of this plan was cut short). */
export async function readRecord(dst: Query, plan: string): Promise<RecordedUnit[]> {
  const [exists] = await dst<RowDataPacket & { n: number }>(
    `SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'copy_unit'`,
    [RECORD_DATABASE],
    'looking for a copy record on the target',
  );
  if (Number(exists?.n ?? 0) === 0) return [];
  const rows = await dst<RowDataPacket & { id: number; tbl: string; key_from: string | null; key_to: string | null; attempt: number | null; gtid: string | null }>(
    `SELECT id, tbl, key_from, key_to, attempt, gtid FROM ${TABLE} WHERE plan = ? ORDER BY id`,
    [plan],
    'reading the copy record on the target',
  );
  return rows.map((r) => ({
    id: Number(r.id),
    table: r.tbl,
    ...(r.key_from !== null ? { from: r.key_from } : {}),
    ...(r.key_to !== null ? { to: r.key_to } : {}),
    ...(r.attempt !== null ? { attempt: Number(r.attempt), gtid: r.gtid ?? '' } : {}),
  }));
}

/** Records units not loaded yet, numbered from `firstId`. */
export async function recordUnits(dst: Query, plan: string, units: ReadonlyArray<{ table: string; from?: bigint; to?: bigint }>, firstId: number): Promise<number[]> {
  const ids = units.map((_, i) => firstId + i);
  if (units.length === 0) return ids;
  await dst(
    `INSERT INTO ${TABLE} (plan, id, tbl, key_from, key_to) VALUES ${units.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
    units.flatMap((u, i) => [plan, ids[i], u.table, u.from?.toString() ?? null, u.to?.toString() ?? null]),
    'recording the copy on the target',
  );
  return ids;
}

/** The done mark a unit's load commits with. */
export function markDoneSql(plan: string, id: number, attempt: number, gtid: string): { sql: string; params: unknown[] } {
  return { sql: `UPDATE ${TABLE} SET attempt = ?, gtid = ? WHERE plan = ? AND id = ?`, params: [attempt, gtid, plan, id] };
}

/** Forgets the units of `tables` (they are copied again, cut anew). */
export async function forgetTables(dst: Query, plan: string, tables: readonly string[]): Promise<void> {
  if (tables.length === 0) return;
  await dst(`DELETE FROM ${TABLE} WHERE plan = ? AND tbl IN (${tables.map(() => '?').join(', ')})`, [plan, ...tables], 'clearing the record of tables copied again');
}

/** Removes the plan's record; the table and database go with the last plan's. Returns whether there was one. */
export async function dropRecord(dst: Query, plan: string): Promise<boolean> {
  if ((await readRecord(dst, plan)).length === 0) return false;
  await dst(`DELETE FROM ${TABLE} WHERE plan = ?`, [plan], 'removing the copy record');
  const [left] = await dst<RowDataPacket & { n: number }>(`SELECT COUNT(*) AS n FROM ${TABLE}`, [], 'reading the copy record');
  if (Number(left?.n ?? 0) === 0) await dst(`DROP DATABASE IF EXISTS \`${RECORD_DATABASE}\``, [], 'removing the copy record database');
  return true;
}

/** Where a resumed copy stands: tables complete at one copy's position, and the rest (copied again). */
export interface ResumeState {
  complete: Map<string, { attempt: number; gtid: string }>;
  incomplete: string[];
  nextAttempt: number;
}

export function resumeState(units: readonly RecordedUnit[]): ResumeState {
  const byTable = new Map<string, RecordedUnit[]>();
  for (const u of units) byTable.set(u.table, [...(byTable.get(u.table) ?? []), u]);
  const complete = new Map<string, { attempt: number; gtid: string }>();
  const incomplete: string[] = [];
  for (const [table, us] of byTable) {
    const first = us[0]!;
    // One position per table: every range loaded, all by the same copy.
    if (first.attempt !== undefined && us.every((u) => u.attempt === first.attempt)) complete.set(table, { attempt: first.attempt, gtid: first.gtid ?? '' });
    else incomplete.push(table);
  }
  const nextAttempt = 1 + Math.max(0, ...units.map((u) => u.attempt ?? 0));
  return { complete, incomplete, nextAttempt };
}

/** Per domain, the sequence number a MariaDB GTID position (`domain-server-seq,...`) holds. */
function sequences(position: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const g of position
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [domain, , seq] = g.split('-');
    if (domain !== undefined && seq !== undefined) out.set(domain, BigInt(seq));
  }
  return out;
}

/** Whether a replica at `current` has applied everything up to `target`, in every domain of `target`. */
export function gtidReached(current: string, target: string): boolean {
  const have = sequences(current);
  for (const [domain, seq] of sequences(target)) if ((have.get(domain) ?? -1n) < seq) return false;
  return true;
}

/**
 * The replica's next stage from `current`: run until the earliest copy position not reached yet, ignoring every
 * table copied at a position not reached yet. Undefined: every position is reached, the replica runs unfiltered.
 * `positions` are in the order the copies took them (positions only grow).
 */
export function nextStage(positions: ReadonlyArray<{ gtid: string; tables: readonly string[] }>, current: string): { until: string; ignore: string[] } | undefined {
  const ahead = positions.filter((p) => !gtidReached(current, p.gtid));
  if (ahead.length === 0) return undefined;
  return { until: ahead[0]!.gtid, ignore: ahead.flatMap((p) => p.tables) };
}
