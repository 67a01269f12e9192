import type { RowDataPacket } from 'mysql2/promise';
import { BudgetExceededError } from '../../src/errors.js';
import type { TableCheck, VerifyReport } from '../../src/engine/cutover-adapter.js';
import type { Query } from './mysql-sessions.js';
import { quoteIdent } from './mysql-sql.js';

export async function baseTables(q: Query, database: string): Promise<string[]> {
  const rows = await q<RowDataPacket & { t: string }>(`SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`, [database], 'listing tables');
  return rows.map((r) => r.t);
}

/** Next AUTO_INCREMENT value per table (tables without one are left out). */
export async function autoIncrements(q: Query, database: string): Promise<Map<string, bigint>> {
  const rows = await q<RowDataPacket & { t: string; ai: string | null }>(
    `SELECT TABLE_NAME AS t, AUTO_INCREMENT AS ai FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' AND AUTO_INCREMENT IS NOT NULL`,
    [database],
    'reading AUTO_INCREMENT values',
  );
  return new Map(rows.map((r) => [r.t, BigInt(r.ai!)]));
}

/**
 * The tables whose target counter is behind the source's, with the value to set. Row events carry explicit ids,
 * so the target's counter follows max(id); the source's can be ahead (deleted rows, rolled-back inserts), and
 * reusing those ids would hand out an id a client already saw.
 */
export function autoIncrementFixes(source: Map<string, bigint>, target: Map<string, bigint>): Array<{ table: string; value: bigint }> {
  const out: Array<{ table: string; value: bigint }> = [];
  for (const [table, value] of source) {
    const t = target.get(table);
    if (t !== undefined && t < value) out.push({ table, value });
  }
  return out;
}

export function setAutoIncrementSql(database: string, table: string, value: bigint): string {
  return `ALTER TABLE ${quoteIdent(database)}.${quoteIdent(table)} AUTO_INCREMENT = ${value.toString()}`;
}

export function rowCountSql(database: string, table: string): string {
  return `SELECT COUNT(*) AS n FROM ${quoteIdent(database)}.${quoteIdent(table)}`;
}

/** CHECKSUM TABLE takes a list; results come back per table as `db.table`. */
export function checksumSql(database: string, tables: readonly string[]): string {
  return `CHECKSUM TABLE ${tables.map((t) => `${quoteIdent(database)}.${quoteIdent(t)}`).join(', ')} EXTENDED`;
}

async function measure(q: Query, database: string, tables: string[], mode: 'rowcounts' | 'checksums'): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (mode === 'checksums') {
    if (tables.length === 0) return out;
    const rows = await q<RowDataPacket & { Table: string; Checksum: string | null }>(checksumSql(database, tables), [], 'checksumming tables');
    for (const r of rows) out.set(r.Table.slice(database.length + 1), String(r.Checksum));
    return out;
  }
  for (const t of tables) {
    const rows = await q<RowDataPacket & { n: string }>(rowCountSql(database, t), [], `counting rows of ${t}`);
    out.set(t, String(rows[0]?.n ?? '0'));
  }
  return out;
}

/** Row counts or CHECKSUM TABLE on both sides, at the same time, within the write-downtime budget. */
export async function verifyTables(src: Query, dst: Query, database: string, mode: VerifyReport['mode'], deadline: number): Promise<VerifyReport> {
  const started = Date.now();
  if (mode === 'none') return { mode, tables: [], mismatches: [], durationMs: 0 };
  const [st, dt] = await Promise.all([baseTables(src, database), baseTables(dst, database)]);
  const all = [...new Set([...st, ...dt])].sort();
  const [a, b] = await Promise.all([measure(src, database, st, mode), measure(dst, database, dt, mode)]);
  if (Date.now() > deadline)
    throw new BudgetExceededError(`verify (${mode}) took ${Date.now() - started}ms and ran past the write-downtime budget`, 'use verify: rowcounts or none for big databases, or raise limits.maxWriteBlocked');
  const tables: TableCheck[] = all.map((t) => {
    const source = a.get(t) ?? 'missing';
    const target = b.get(t) ?? 'missing';
    return { table: t, source, target, match: source === target };
  });
  return { mode, tables, mismatches: tables.filter((t) => !t.match), durationMs: Date.now() - started };
}
