import type { PgClient } from './postgres-connection.js';
import { USER_NAMESPACE } from './postgres-namespace.js';

/**
 * Sessions that ANALYZE side by side (as `vacuumdb -j`): one table per session at a time, so a big table does not
 * hold up the small ones.
 */
export const ANALYZE_JOBS = 4;

/** Schemas of the user's own objects, of one schema when $1 is not null. */

/**
 * Materialized views the source has populated, quoted, each after every materialized view it reads (directly or
 * through plain views): REFRESH of a view over an unpopulated one fails.
 */
export async function populatedMatviews(src: PgClient, schema?: string): Promise<string[]> {
  const views = await src.query<{ oid: number; t: string }>(
    `SELECT c.oid::int AS oid, format('%I.%I', n.nspname, c.relname) AS t
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'm' AND c.relispopulated AND ${USER_NAMESPACE} ORDER BY 2`,
    [schema ?? null],
  );
  if (views.rows.length === 0) return [];
  // Which relations each view's or materialized view's rewrite rule reads.
  const edges = await src.query<{ v: number; r: number; k: string }>(
    `SELECT DISTINCT rw.ev_class::int AS v, d.refobjid::int AS r, ref.relkind::text AS k
       FROM pg_rewrite rw JOIN pg_class c ON c.oid = rw.ev_class AND c.relkind IN ('m', 'v')
       JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
       JOIN pg_class ref ON ref.oid = d.refobjid AND ref.relkind IN ('m', 'v')
      WHERE d.refobjid <> rw.ev_class`,
  );
  const reads = new Map<number, { r: number; k: string }[]>();
  for (const e of edges.rows) reads.set(e.v, [...(reads.get(e.v) ?? []), { r: e.r, k: e.k }]);
  const name = new Map(views.rows.map((v) => [v.oid, v.t]));
  const ordered: string[] = [];
  const placed = new Set<number>();
  const visit = (oid: number, seen: Set<number>): void => {
    if (seen.has(oid)) return;
    seen.add(oid);
    for (const { r, k } of reads.get(oid) ?? []) {
      if (k === 'v') visit(r, seen);
      else if (name.has(r) && !placed.has(r)) visit(r, seen);
    }
    if (name.has(oid) && !placed.has(oid)) {
      placed.add(oid);
      ordered.push(name.get(oid)!);
    }
  };
  for (const v of views.rows) visit(v.oid, new Set());
  return ordered;
}

/** REFRESH each materialized view in the given order (the schema copy created them WITH NO DATA). */
export async function refreshMatviews(dst: PgClient, views: readonly string[]): Promise<void> {
  for (const v of views) await dst.query(`REFRESH MATERIALIZED VIEW ${v}`);
}

/** Quoted tables and materialized views to ANALYZE. */
export async function analyzableRelations(c: PgClient, schema?: string): Promise<string[]> {
  const { rows } = await c.query<{ t: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'm') AND ${USER_NAMESPACE} ORDER BY pg_relation_size(c.oid) DESC, 1`,
    [schema ?? null],
  );
  return rows.map((r) => r.t);
}

/** ANALYZE every relation over up to `sessions.length` sessions at once, biggest first. */
export async function analyzeInParallel(sessions: readonly PgClient[], relations: readonly string[]): Promise<void> {
  const queue = [...relations];
  await Promise.all(
    sessions.map(async (c) => {
      for (let t = queue.shift(); t !== undefined; t = queue.shift()) await c.query(`ANALYZE ${t}`);
    }),
  );
}

/** Tables of the database (or schema) that have never been analyzed, by hand or by autovacuum. */
export async function neverAnalyzed(c: PgClient, schema?: string): Promise<string[]> {
  const { rows } = await c.query<{ t: string }>(
    `SELECT format('%I.%I', s.schemaname, s.relname) AS t FROM pg_stat_user_tables s JOIN pg_namespace n ON n.nspname = s.schemaname
      WHERE s.last_analyze IS NULL AND s.last_autoanalyze IS NULL AND ${USER_NAMESPACE} ORDER BY 1`,
    [schema ?? null],
  );
  return rows.map((r) => r.t);
}

/**
 * Tables whose rows changed enough since their last ANALYZE for autovacuum to analyze them again with its default
 * settings (50 rows + 10% of the table), quoted, biggest first.
 */
export async function changedSinceAnalyze(c: PgClient, schema?: string): Promise<string[]> {
  const { rows } = await c.query<{ t: string }>(
    `SELECT format('%I.%I', s.schemaname, s.relname) AS t FROM pg_stat_user_tables s JOIN pg_namespace n ON n.nspname = s.schemaname
      WHERE s.n_mod_since_analyze > 50 + 0.1 * greatest(s.n_live_tup, 0) AND ${USER_NAMESPACE} ORDER BY pg_relation_size(s.relid) DESC, 1`,
    [schema ?? null],
  );
  return rows.map((r) => r.t);
}
