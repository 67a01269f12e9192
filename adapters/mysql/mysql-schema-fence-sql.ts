import { UsageError } from '../../src/errors.js';
import { quoteAccount, quoteIdent, quoteString, type Account } from './mysql-sql.js';

/**
 * Schema scope where the server has no `ALTER SCHEMA ... READ ONLY` (MariaDB, MySQL < 8.0.22): the named
 * accounts lose their write privileges on the schema, and get back exactly those on `off`.
 */

/**
 * Privileges that let an account change a schema's data or definition, as information_schema spells them.
 * EXECUTE is here because a SQL SECURITY DEFINER routine writes with its definer's rights; LOCK TABLES because
 * a WRITE lock stalls everyone else. Read-only ones (SELECT, SHOW VIEW) and CREATE TEMPORARY TABLES (session
 * tables, never in the binary log under ROW format) stay, so the app can keep reading.
 */
export const SCHEMA_WRITE_PRIVILEGES = [
  'INSERT',
  'UPDATE',
  'DELETE',
  'CREATE',
  'DROP',
  'REFERENCES',
  'INDEX',
  'ALTER',
  'LOCK TABLES',
  'CREATE VIEW',
  'CREATE ROUTINE',
  'ALTER ROUTINE',
  'EXECUTE',
  'EVENT',
  'TRIGGER',
  'DELETE HISTORY',
] as const;

/** Table-level grants allow a subset (no routines, events or locks). */
export const TABLE_WRITE_PRIVILEGES = ['INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'REFERENCES', 'INDEX', 'ALTER', 'CREATE VIEW', 'TRIGGER', 'DELETE HISTORY'] as const;

/** Column-level grants: the only write privileges a column can carry. */
export const COLUMN_WRITE_PRIVILEGES = ['INSERT', 'UPDATE', 'REFERENCES'] as const;

/** information_schema says `DELETE VERSIONING ROWS` where GRANT says `DELETE HISTORY` (MariaDB). */
export function grantName(privilegeType: string): string {
  const p = privilegeType.trim().toUpperCase();
  return p === 'DELETE VERSIONING ROWS' ? 'DELETE HISTORY' : p;
}

/** An account (`'user'@'host'`) or a MariaDB role (a bare name: roles have no host part). */
export type Grantee = ({ kind: 'account' } & Account) | { kind: 'role'; name: string };

export function quoteGrantee(g: Grantee): string {
  return g.kind === 'role' ? quoteString(g.name) : quoteAccount(g);
}

/**
 * The grantee as information_schema's GRANTEE column prints it: quotes inside names are not doubled, so the
 * column is compared with this exact string rather than parsed.
 */
export function informationSchemaGrantee(g: Grantee): string {
  return g.kind === 'role' ? `'${g.name}'@''` : `'${g.user}'@'${g.host}'`;
}

export function granteeLabel(g: Grantee): string {
  return g.kind === 'role' ? `role ${g.name}` : `${g.user}@${g.host}`;
}

/**
 * One write grant an account held on the schema before the fence. `pattern` is the schema name exactly as
 * mysql.db stores it (`my\_db` if it was granted with the wildcard escaped): revoking needs the same spelling.
 */
export type HeldGrant =
  /** `ON *.*`: only the managed fence (mysql-managed-fence.ts) revokes at this level. */
  | { level: 'global'; privileges: string[] }
  | { level: 'schema'; pattern: string; privileges: string[] }
  | { level: 'table'; schema: string; table: string; privileges: string[] }
  | { level: 'column'; schema: string; table: string; privilege: string; columns: string[] };

function privilegeList(privileges: readonly string[]): string {
  if (privileges.length === 0) throw new UsageError('no privileges to grant or revoke', 'this is a bug: report it');
  const known = new Set<string>(SCHEMA_WRITE_PRIVILEGES);
  for (const p of privileges) if (!known.has(p)) throw new UsageError(`not a write privilege: ${p}`, 'this is a bug: report it');
  return privileges.join(', ');
}

function onClause(g: HeldGrant): { privileges: string; on: string } {
  if (g.level === 'global') return { privileges: privilegeList(g.privileges), on: '*.*' };
  if (g.level === 'schema') return { privileges: privilegeList(g.privileges), on: `${quoteIdent(g.pattern)}.*` };
  if (g.level === 'table') return { privileges: privilegeList(g.privileges), on: `${quoteIdent(g.schema)}.${quoteIdent(g.table)}` };
  return { privileges: `${privilegeList([g.privilege])} (${g.columns.map(quoteIdent).join(', ')})`, on: `${quoteIdent(g.schema)}.${quoteIdent(g.table)}` };
}

/** Privilege names come from the fixed list above, identifiers through quoteIdent, the grantee through quoteString. */
export function revokeGrantSql(who: Grantee, g: HeldGrant): string {
  const { privileges, on } = onClause(g);
  return `REVOKE ${privileges} ON ${on} FROM ${quoteGrantee(who)}`;
}

export function restoreGrantSql(who: Grantee, g: HeldGrant): string {
  const { privileges, on } = onClause(g);
  return `GRANT ${privileges} ON ${on} TO ${quoteGrantee(who)}`;
}

/**
 * Whether a mysql.db pattern names exactly this schema (as `GRANT ... ON shop.*` or `ON my\_db.*` store it),
 * rather than a wildcard that also covers other schemas: only exact grants can be revoked without taking
 * writes away from other schemas too.
 */
export function namesSchemaExactly(pattern: string, schema: string): boolean {
  if (pattern === schema) return true;
  return !/(^|[^\\])[%]/.test(pattern) && pattern.replace(/\\([_%\\])/g, '$1') === schema;
}

/**
 * Whether a binary log event (SHOW BINLOG EVENTS) wrote to the schema: a row event's Table_map names
 * `schema.table`; a statement (DDL, or statement-format DML) run with the schema as current database says
 * ``use `schema` ``. Statements issued from another database with qualified names are left to the table
 * fingerprint.
 */
export function binlogEventTouchesSchema(eventType: string, info: string, schema: string): boolean {
  if (/^Table_map$/i.test(eventType)) return /\((.*)\)\s*$/.exec(info)?.[1]?.startsWith(`${schema}.`) ?? false;
  if (/^Query$/i.test(eventType)) return info.startsWith(`use ${quoteIdent(schema)};`);
  return false;
}
