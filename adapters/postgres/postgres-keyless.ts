import type { Finding } from '../../src/engine/cutover-adapter.js';
import type { CopyMethod, KeylessChoice, PlanTables } from '../../src/plan/types.js';
import { formatBytes } from '../../src/util/units.js';
import type { PgClient } from './postgres-connection.js';
import { USER_NAMESPACE } from './postgres-namespace.js';
import type { PgMoveScope } from './postgres-replication.js';
import { quoteIdent } from './postgres-sql.js';

export type KeylessPolicy = PlanTables['keyless'];

export interface KeylessTable {
  /** As format('%I.%I') prints it: the name the plan uses. */
  table: string;
  bytes: number;
  rows: number;
  /** UPDATEs + DELETEs since the statistics were reset: what REPLICA IDENTITY FULL makes expensive to apply. */
  changes: number;
  /** 'd' (default, no key) or 'n' (nothing): what cleanup puts back. */
  identity: 'd' | 'n';
  /** A partition: the publication names its partitioned root, which carries every partition, so it cannot be left out. */
  partition: boolean;
}

/** A keyless table at most this big is proposed for a copy inside the window when it also takes UPDATEs/DELETEs. */
const DUMP_PROPOSAL_MAX_BYTES = 16 * 1024 ** 2;

/** Rows of the plan's sentinel table on the source that record a replica identity sync changed. */
const IDENTITY_RECORD_FROM_ID = 1000;

/** Plain tables without a primary key or replica identity: UPDATE/DELETE on them fail once published. */
export async function keylessTables(src: PgClient, schema?: string): Promise<KeylessTable[]> {
  const { rows } = await src.query<{ t: string; b: string; r: string; ch: string; ident: 'd' | 'n'; part: boolean }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS t, pg_total_relation_size(c.oid)::text AS b,
            coalesce(s.n_live_tup, 0)::text AS r, coalesce(s.n_tup_upd + s.n_tup_del, 0)::text AS ch, c.relreplident::text AS ident,
            c.relispartition AS part
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
      WHERE c.relkind = 'r' AND ${USER_NAMESPACE}
        AND ((c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)) OR c.relreplident = 'n')
      ORDER BY 1`,
    [schema ?? null],
  );
  return rows.map((r) => ({ table: r.t, bytes: Number(r.b), rows: Number(r.r), changes: Number(r.ch), identity: r.ident, partition: r.part }));
}

export function choiceFor(table: string, policy: KeylessPolicy | undefined): KeylessChoice {
  return policy?.tables[table] ?? policy?.default ?? 'block';
}

function applyCost(t: KeylessTable): string {
  return `each UPDATE or DELETE on it is applied on the target by matching whole rows: a scan of its ~${t.rows} rows per changed row (PostgreSQL 16+ targets use a B-tree index of the table if it has one); ${t.changes} update(s)/delete(s) since the source's statistics were reset`;
}

function proposal(t: KeylessTable): { choice: KeylessChoice; why: string } {
  if (t.partition) return { choice: 'full', why: `a partition cannot be left out of replication (the publication names its partitioned root); ${applyCost(t)}` };
  if (t.changes === 0)
    return {
      choice: 'full',
      why: `full is cheaper: the table only takes INSERTs (0 updates/deletes since the statistics were reset), which apply at no extra cost, while dump would copy ${formatBytes(t.bytes)} inside the write-blocked window`,
    };
  if (t.bytes <= DUMP_PROPOSAL_MAX_BYTES)
    return {
      choice: 'dump',
      why: `dump is cheaper: ${formatBytes(t.bytes)} (~${t.rows} rows) copied inside the write-blocked window, against ${t.changes} update(s)/delete(s) each applied by a scan of the table with full`,
    };
  return { choice: 'full', why: `full is cheaper: ${formatBytes(t.bytes)} is too big to copy inside the window; ${applyCost(t)}` };
}

/** `check` findings for tables without a key, under the plan's choice. */
export function keylessFindings(tables: readonly KeylessTable[], policy: KeylessPolicy | undefined, method: CopyMethod): Finding[] {
  const f: Finding[] = [];
  for (const t of tables) {
    const choice = choiceFor(t.table, policy);
    if (method === 'dump') {
      f.push({
        severity: 'warning',
        check: 'primary keys',
        object: t.table,
        message: `table ${t.table} has no primary key or replica identity`,
        why: 'method dump copies it whole; only a later move by replication would need a key',
        fix: `ALTER TABLE ${t.table} ADD PRIMARY KEY (...)`,
      });
      continue;
    }
    if (choice === 'dump' && t.partition) {
      f.push({
        severity: 'blocker',
        check: 'primary keys',
        object: t.table,
        message: `table ${t.table} is a partition and tables.keyless chooses dump for it: it cannot be left out of replication`,
        why: 'the publication names the partitioned root, which publishes every partition: its UPDATEs and DELETEs would fail on the source',
        fix: `choose full for it: tables: { keyless: { ${JSON.stringify(t.table)}: full } } — or ALTER TABLE ${t.table} ADD PRIMARY KEY (...)`,
      });
    } else if (choice === 'block') {
      const p = proposal(t);
      f.push({
        severity: 'blocker',
        check: 'primary keys',
        object: t.table,
        message: `table ${t.table} has no primary key or replica identity (${formatBytes(t.bytes)}, ~${t.rows} rows); proposed: ${p.choice} (${p.why})`,
        why: 'once published, UPDATE and DELETE on it fail on the source, and the target cannot apply them',
        fix: `choose in the plan: tables: { keyless: { ${JSON.stringify(t.table)}: ${p.choice} } } — full: sync sets REPLICA IDENTITY FULL and cleanup restores it; dump: copied inside the window — or ALTER TABLE ${t.table} ADD PRIMARY KEY (...)`,
      });
    } else if (choice === 'full') {
      f.push({
        severity: 'info',
        check: 'primary keys',
        object: t.table,
        message: `table ${t.table}: sync sets REPLICA IDENTITY FULL on the source (cleanup and rollback --cleanup restore it); ${applyCost(t)}`,
        why: 'tables.keyless chose full',
        fix: '—',
      });
    } else {
      f.push({
        severity: 'info',
        check: 'primary keys',
        object: t.table,
        message: `table ${t.table} (${formatBytes(t.bytes)}, ~${t.rows} rows) is left out of replication and copied inside the write-blocked window`,
        why: 'tables.keyless chose dump; its copy counts against limits.maxWriteBlocked',
        fix: '—',
      });
    }
  }
  if (policy) {
    const known = new Set(tables.map((t) => t.table));
    for (const name of Object.keys(policy.tables).filter((n) => !known.has(n))) {
      f.push({
        severity: 'warning',
        check: 'primary keys',
        object: name,
        message: `tables.keyless names ${name}, which is not a table without a key here`,
        why: 'the choice has no effect',
        fix: `check the name (schema.table as PostgreSQL quotes it, e.g. public."audit log") or remove it`,
      });
    }
  }
  return f;
}

/**
 * REPLICA IDENTITY FULL on the chosen tables, each recorded in the plan's sentinel table on the source so cleanup
 * puts back exactly what it found (and nothing the operator set).
 */
export async function setReplicaIdentityFull(src: PgClient, scope: PgMoveScope, tables: readonly KeylessTable[]): Promise<void> {
  let id = IDENTITY_RECORD_FROM_ID;
  for (const t of tables) {
    await src.query(`INSERT INTO ${scope.sentinel} (id, token) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token`, [id++, JSON.stringify({ table: t.table, identity: t.identity })]);
    // Names come from the catalog already quoted by format('%I.%I').
    await src.query(`ALTER TABLE ${t.table} REPLICA IDENTITY FULL`);
  }
}

/** to_regclass raises (rather than returning null) for text that is not a name at all on PostgreSQL < 16. */
const INVALID_NAME = '42602';

/** Puts back the replica identities sync changed; returns the tables restored. Safe to repeat. */
export async function restoreReplicaIdentity(src: PgClient, scope: PgMoveScope): Promise<string[]> {
  const { rows } = await src.query<{ id: number; token: string }>(`SELECT id, token FROM ${scope.sentinel} WHERE id >= $1 ORDER BY id`, [IDENTITY_RECORD_FROM_ID]);
  const restored: string[] = [];
  for (const r of rows) {
    const { table, identity } = JSON.parse(r.token) as { table: string; identity: 'd' | 'n' };
    // The name is read back from a row anyone who may write the sentinel table could have changed: it only
    // selects a table through the catalog, and the statement names that table as the catalog spells it.
    const now = await src
      .query<{ s: string; t: string; i: string }>(`SELECT n.nspname AS s, c.relname AS t, c.relreplident::text AS i FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`, [
        String(table),
      ])
      .catch((e: { code?: string }) => {
        if (e.code !== INVALID_NAME) throw e;
        return { rows: [] };
      });
    const rel = now.rows[0];
    if (rel?.i === 'f') {
      const name = `${quoteIdent(rel.s)}.${quoteIdent(rel.t)}`;
      await src.query(`ALTER TABLE ${name} REPLICA IDENTITY ${identity === 'n' ? 'NOTHING' : 'DEFAULT'}`);
      restored.push(name);
    }
    await src.query(`DELETE FROM ${scope.sentinel} WHERE id = $1`, [r.id]);
  }
  return restored;
}
