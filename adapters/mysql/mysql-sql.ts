import { UsageError } from '../../src/errors.js';
import type { MysqlFlavor } from './mysql-flavor.js';

/** Quotes an identifier (schema, table) for MySQL/MariaDB. Every name the tool puts into SQL goes through here. */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new UsageError('empty SQL identifier', 'give a non-empty name');
  if (name.includes('\0')) throw new UsageError('SQL identifier contains a NUL byte', 'remove the NUL byte from the name');
  return `\`${name.replace(/`/g, '``')}\``;
}

/**
 * Quotes a string literal for statements that take no parameters (ALTER USER, SHOW CREATE USER).
 * Backslashes are doubled: the tool's own session runs with an empty sql_mode, so NO_BACKSLASH_ESCAPES is off.
 */
export function quoteString(value: string): string {
  if (value.includes('\0')) throw new UsageError('SQL literal contains a NUL byte', 'remove the NUL byte from the value');
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

export interface Account {
  user: string;
  host: string;
}

/** `'user'@'host'`: how an account is named in ALTER USER and friends. */
export function quoteAccount(a: Account): string {
  return `${quoteString(a.user)}@${quoteString(a.host)}`;
}

/** The account as people write it (`app@%`), for keys in the fence record and messages. */
export function accountLabel(a: Account): string {
  return `${a.user}@${a.host}`;
}

function unquote(part: string): string {
  const m = /^(['"`])(.*)\1$/s.exec(part);
  return m ? m[2]!.replace(new RegExp(`${m[1]}${m[1]}`, 'g'), m[1]!) : part;
}

/**
 * Parses `--role` for MySQL: `app` (every host of user app), `app@%`, `'app'@'10.0.0.%'`. The host is after
 * the last `@`, since host names cannot contain one.
 */
export function parseAccountSpec(spec: string): { user: string; host?: string } {
  const s = spec.trim();
  const at = s.lastIndexOf('@');
  const user = unquote(at >= 0 ? s.slice(0, at) : s);
  if (!user) throw new UsageError(`role "${spec}": no user name`, "name a user account, e.g. app or 'app@%' (in readOnly.roles of the plan, or --role)");
  if (at < 0) return { user };
  return { user, host: unquote(s.slice(at + 1)) };
}

/** information_schema spells grantees `'user'@'host'`. */
export function parseGrantee(grantee: string): Account | undefined {
  const m = /^'((?:[^']|'')*)'@'((?:[^']|'')*)'$/.exec(grantee);
  return m ? { user: m[1]!.replace(/''/g, "'"), host: m[2]!.replace(/''/g, "'") } : undefined;
}

export function accountLockSql(a: Account, locked: boolean): string {
  return `ALTER USER ${quoteAccount(a)} ACCOUNT ${locked ? 'LOCK' : 'UNLOCK'}`;
}

/** KILL takes no parameters: the id is checked to be a plain integer first. */
export function killSql(threadId: string | number): string {
  const id = String(threadId);
  if (!/^\d+$/.test(id)) throw new UsageError(`not a thread id: ${id}`, 'pass a numeric connection id');
  return `KILL CONNECTION ${id}`;
}

const onOff = (v: boolean): string => (v ? 'ON' : 'OFF');

/** What `on` finds at server scope and `off` puts back. */
export interface ServerReadOnlyState {
  readOnly: boolean;
  /** null where the server has no super_read_only (MariaDB, MySQL < 5.7.8). */
  superReadOnly: boolean | null;
  /** MySQL 8 persisted values (mysqld-auto.cnf) before the fence; null = not persisted. Absent without PERSIST. */
  persisted?: { read_only: boolean | null; super_read_only: boolean | null };
}

/**
 * The statements that fence a server. read_only goes first: it is the one that waits for running commits
 * and table locks (bounded by the session lock_wait_timeout); super_read_only then also stops SUPER accounts.
 */
export function fenceServerSql(f: MysqlFlavor): string[] {
  const set = f.persist ? 'SET PERSIST' : 'SET GLOBAL';
  const out = [`${set} read_only = ON`];
  if (f.superReadOnly) out.push(`${set} super_read_only = ON`);
  return out;
}

/**
 * The statements that put a server back exactly as `prior` was. super_read_only goes first: turning it off
 * keeps read_only, while turning read_only off would also turn super_read_only off.
 * Persisted values are restored with PERSIST_ONLY (or removed with RESET PERSIST) after the runtime values.
 */
export function restoreServerSql(f: MysqlFlavor, prior: ServerReadOnlyState): string[] {
  const out: string[] = [];
  if (f.superReadOnly) out.push(`SET GLOBAL super_read_only = ${onOff(prior.superReadOnly ?? false)}`);
  out.push(`SET GLOBAL read_only = ${onOff(prior.readOnly)}`);
  if (f.persist) {
    const persisted = prior.persisted ?? { read_only: null, super_read_only: null };
    const vars = f.superReadOnly ? (['super_read_only', 'read_only'] as const) : (['read_only'] as const);
    for (const name of vars) {
      const v = persisted[name];
      out.push(v === null ? `RESET PERSIST IF EXISTS ${name}` : `SET PERSIST_ONLY ${name} = ${onOff(v)}`);
    }
  }
  return out;
}

/** `off` without a record: lift the fence and drop any persisted value. */
export function liftServerSql(f: MysqlFlavor): string[] {
  return restoreServerSql(f, { readOnly: false, superReadOnly: false, ...(f.persist ? { persisted: { read_only: null, super_read_only: null } } : {}) });
}

/** MySQL 8.0.22+ only; the caller checks `schemaReadOnly` and refuses elsewhere. */
export function schemaReadOnlySql(schema: string, readOnly: boolean): string {
  return `ALTER SCHEMA ${quoteIdent(schema)} READ ONLY = ${readOnly ? 1 : 0}`;
}

/** The largest wait_timeout MySQL and MariaDB accept (one year). */
const MAX_IDLE_SECONDS = 31536000;

/**
 * Settings for the tool's own session: every lock wait bounded (lock_wait_timeout is whole seconds, so the
 * timeout is rounded up), no server-side statement timeout, and an empty sql_mode so quoting is predictable.
 */
export function sessionSetupSql(f: MysqlFlavor, lockTimeoutMs: number): string {
  const seconds = Math.max(1, Math.ceil(lockTimeoutMs / 1000));
  // The source session holds the plan lock and sits idle through a long dump: the server must not close it.
  return `SET SESSION lock_wait_timeout = ${seconds}, SESSION ${f.statementTimeoutVariable} = 0, SESSION sql_mode = '', SESSION wait_timeout = ${MAX_IDLE_SECONDS}, SESSION interactive_timeout = ${MAX_IDLE_SECONDS}`;
}

/** `ON`/`1`/`true` as MySQL reports booleans, in any of its spellings. */
export function isOn(v: unknown): boolean {
  if (typeof v === 'number' || typeof v === 'bigint') return Number(v) !== 0;
  return typeof v === 'string' && /^(on|1|true|yes)$/i.test(v.trim());
}
