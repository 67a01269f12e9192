import { BudgetExceededError } from '../../src/errors.js';
import type { TableCheck, VerifyReport } from '../../src/engine/cutover-adapter.js';
import type { PgClient } from './postgres-connection.js';
import { userTables } from './postgres-checks.js';
import { TOOL_SCHEMA } from './postgres-replication.js';

/** Order-independent content hash: md5 of the sorted md5s of each row's text form. */
const CHECKSUM = (table: string) => `SELECT coalesce(md5(string_agg(h, '' ORDER BY h)), 'empty') AS v FROM (SELECT md5(t::text) AS h FROM ${table} t) s`;
const COUNT = (table: string) => `SELECT count(*)::text AS v FROM ${table}`;

/** Compares every user table on both sides (row counts or checksums), source and target queried in parallel. */
export async function verifyTables(src: PgClient, dst: PgClient, mode: VerifyReport['mode'], deadline: number, schema?: string): Promise<VerifyReport> {
  const started = Date.now();
  if (mode === 'none') return { mode, tables: [], mismatches: [], durationMs: 0 };
  const tables: TableCheck[] = [];
  // Table names come from the catalog already quoted by format('%I.%I').
  for (const table of await userTables(src, schema)) {
    if (Date.now() > deadline) throw new BudgetExceededError(`verify did not finish within the write-downtime budget (${tables.length} tables checked)`, 'use verify: none or rowcounts, or raise limits.maxWriteBlocked');
    const sql = mode === 'checksums' ? CHECKSUM(table) : COUNT(table);
    const [a, b] = await Promise.all([src.query<{ v: string }>(sql), dst.query<{ v: string }>(sql).catch((e: Error) => ({ rows: [{ v: `error: ${e.message}` }] }))]);
    const check = { table, source: a.rows[0]!.v, target: b.rows[0]!.v, match: a.rows[0]!.v === b.rows[0]!.v };
    tables.push(check);
  }
  return { mode, tables, mismatches: tables.filter((t) => !t.match), durationMs: Date.now() - started };
}

/** Sets each target sequence to the source's last_value plus `gap` (never from MAX(id): deleted ids would be reused). */
export async function copySequences(src: PgClient, dst: PgClient, gap: number, schema?: string): Promise<number> {
  const { rows } = await src.query<{ s: string; n: string; last: string | null; called: boolean }>(
    `SELECT schemaname AS s, sequencename AS n, last_value::text AS last, last_value IS NOT NULL AS called FROM pg_sequences WHERE schemaname <> $1 AND ($2::text IS NULL OR schemaname = $2)`,
    [TOOL_SCHEMA, schema ?? null],
  );
  let set = 0;
  for (const r of rows) {
    if (r.last === null) continue;
    await dst.query(`SELECT setval(format('%I.%I', $1::text, $2::text)::regclass, $3::bigint + $4::bigint, true)`, [r.s, r.n, r.last, gap]);
    set++;
  }
  return set;
}
