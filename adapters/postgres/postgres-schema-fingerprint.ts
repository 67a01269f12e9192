import type { Finding } from '../../src/engine/cutover-adapter.js';
import type { PgClient } from './postgres-connection.js';
import { USER_NAMESPACE } from './postgres-namespace.js';

export type SchemaObjectKind = 'table' | 'column' | 'constraint' | 'index' | 'sequence';

/** Every kind; method dump builds constraints and indexes inside the window, so it compares the others only. */
export const ALL_KINDS: readonly SchemaObjectKind[] = ['table', 'column', 'constraint', 'index', 'sequence'];

/** `kind name` → definition, as the server prints it (comparable across majors: NOT NULL is read from the column). */
export type SchemaFingerprint = Map<string, { kind: SchemaObjectKind; name: string; definition: string }>;

/** Other sessions' temporary tables are not part of the schema either. */
const IN_SCOPE = `${USER_NAMESPACE} AND n.nspname !~ '^pg_temp'`;
/** Objects an extension created belong to the extension, which the extensions check covers. */
const NOT_EXTENSION_MEMBER = `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;

const QUERIES: Record<SchemaObjectKind, string> = {
  table: `SELECT format('%I.%I', n.nspname, c.relname) AS name, CASE c.relkind WHEN 'p' THEN 'partitioned table' ELSE 'table' END
                 || CASE c.relpersistence WHEN 'u' THEN ', unlogged' ELSE '' END AS def
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND ${IN_SCOPE} AND ${NOT_EXTENSION_MEMBER}`,
  column: `SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname) AS name, format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END AS def
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND ${IN_SCOPE} AND ${NOT_EXTENSION_MEMBER}`,
  // NOT NULL constraints (catalogued from PostgreSQL 18 on) are compared through the columns instead.
  constraint: `SELECT format('%I.%I.%I', n.nspname, c.relname, k.conname) AS name, pg_get_constraintdef(k.oid) AS def
                 FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE k.contype IN ('p', 'u', 'f', 'c', 'x') AND ${IN_SCOPE} AND ${NOT_EXTENSION_MEMBER}`,
  index: `SELECT format('%I.%I', n.nspname, c.relname) AS name, pg_get_indexdef(c.oid) AS def
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('i', 'I') AND ${IN_SCOPE} AND ${NOT_EXTENSION_MEMBER}`,
  sequence: `SELECT format('%I.%I', n.nspname, c.relname) AS name,
                    format('%s increment %s min %s max %s%s', format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin, s.seqmax, CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END) AS def
               FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${IN_SCOPE} AND ${NOT_EXTENSION_MEMBER}`,
};

/** Tables, columns (type, NOT NULL), constraints, indexes and sequences of the database or one schema. */
export async function schemaFingerprint(c: PgClient, schema: string | undefined, kinds: readonly SchemaObjectKind[] = ALL_KINDS): Promise<SchemaFingerprint> {
  const out: SchemaFingerprint = new Map();
  for (const kind of kinds) {
    const { rows } = await c.query<{ name: string; def: string }>(QUERIES[kind], [schema ?? null]);
    for (const r of rows) out.set(`${kind} ${r.name}`, { kind, name: r.name, definition: r.def });
  }
  return out;
}

export interface SchemaDifference {
  kind: SchemaObjectKind;
  name: string;
  /** Definition on each side; absent where the object does not exist. */
  source?: string;
  target?: string;
}

export function schemaDifferences(source: SchemaFingerprint, target: SchemaFingerprint): SchemaDifference[] {
  const out: SchemaDifference[] = [];
  for (const key of [...new Set([...source.keys(), ...target.keys()])].sort()) {
    const s = source.get(key);
    const t = target.get(key);
    if (s?.definition === t?.definition) continue;
    const o = (s ?? t)!;
    out.push({ kind: o.kind, name: o.name, ...(s ? { source: s.definition } : {}), ...(t ? { target: t.definition } : {}) });
  }
  return out;
}

function describe(d: SchemaDifference): string {
  if (d.target === undefined) return `${d.kind} ${d.name} (${d.source}) exists on the source but not on the target`;
  if (d.source === undefined) return `${d.kind} ${d.name} (${d.target}) exists on the target but not on the source`;
  return `${d.kind} ${d.name} differs: source ${d.source}, target ${d.target}`;
}

/** A blocker per difference, or one info line saying how much was compared. */
export function driftFindings(diffs: readonly SchemaDifference[], compared: number): Finding[] {
  if (diffs.length === 0)
    return [{ severity: 'info', check: 'schema drift', message: `source and target schemas match (${compared} objects: tables, columns, constraints, indexes, sequences)`, why: 'DDL is not replicated', fix: '—' }];
  return diffs.map((d) => ({
    severity: 'blocker',
    check: 'schema drift',
    object: d.name,
    message: describe(d),
    why: 'DDL is not replicated: changes to it would stop applying (or be left out) on the target, inside the window',
    fix: d.target === undefined ? `run the same DDL on the target (its sessions need SET default_transaction_read_only = off), then run again` : `make the ${d.kind} the same on both servers, then run again`,
  }));
}
