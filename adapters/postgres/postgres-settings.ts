import type { Finding } from '../../src/engine/cutover-adapter.js';
import type { PgClient } from './postgres-connection.js';
import { REPLICATION_ACCOUNT_PREFIX } from '../../src/util/replication-account.js';
import { READ_ONLY_GUC, quoteIdent, quoteLiteral } from './postgres-sql.js';

/**
 * One `ALTER DATABASE|ROLE ... SET` of the source: for the database (`role` absent), for a role everywhere
 * (`database` false) or for a role in the database.
 */
export interface StoredSetting {
  role?: string;
  database: boolean;
  name: string;
  value: string;
}

/** Settings whose value is a list: each element is quoted on its own (as pg_dumpall does), not the whole. */
const LIST_SETTINGS = new Set(['search_path', 'temp_tablespaces', 'session_preload_libraries', 'local_preload_libraries', 'shared_preload_libraries']);

function key(s: StoredSetting): string {
  return `${s.role ?? ''}\u0000${s.database}\u0000${s.name}`;
}

function where(s: StoredSetting, db: string): string {
  if (!s.role) return `database ${db}`;
  return s.database ? `role ${s.role} in database ${db}` : `role ${s.role}`;
}

/**
 * Settings stored for the database, for its roles in it, and for roles everywhere. The read-only default is the
 * tool's own fence and target hold: never carried.
 */
export async function storedSettings(c: PgClient, database: string): Promise<StoredSetting[]> {
  const { rows } = await c.query<{ role: string | null; indb: boolean; cfg: string }>(
    `SELECT r.rolname AS role, s.setdatabase <> 0 AS indb, unnest(s.setconfig) AS cfg
       FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole
      WHERE (s.setdatabase = (SELECT oid FROM pg_database WHERE datname = $1) OR (s.setdatabase = 0 AND r.rolname !~ '^pg_'))
      ORDER BY 1 NULLS FIRST, 2, 3`,
    [database],
  );
  return rows
    .map((r) => {
      const i = r.cfg.indexOf('=');
      return { ...(r.role ? { role: r.role } : {}), database: r.indb, name: r.cfg.slice(0, i), value: r.cfg.slice(i + 1) };
    })
    .filter((s) => s.name !== READ_ONLY_GUC);
}

/** Splits a stored list value (`"$user", public`) into its elements. */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '"') {
      if (quoted && value[i + 1] === '"') {
        cur += '"';
        i++;
      } else quoted = !quoted;
    } else if (ch === ',' && !quoted) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out.filter((e) => e !== '');
}

export function settingSql(s: StoredSetting, database: string): string {
  const target = s.role ? `ROLE ${quoteIdent(s.role)}${s.database ? ` IN DATABASE ${quoteIdent(database)}` : ''}` : `DATABASE ${quoteIdent(database)}`;
  const value = LIST_SETTINGS.has(s.name) ? splitList(s.value).map(quoteLiteral).join(', ') : quoteLiteral(s.value);
  return `ALTER ${target} SET ${quoteIdent(s.name)} = ${value}`;
}

/** aclitem text `grantee=privs/grantor` of a database; an empty grantee is PUBLIC. */
export interface DatabaseGrant {
  grantee: string;
  privileges: string[];
  grantable: string[];
}

const DB_PRIVILEGES: Record<string, string> = { C: 'CREATE', T: 'TEMPORARY', c: 'CONNECT' };

export function parseAclItem(item: string): DatabaseGrant {
  const eq = item.lastIndexOf('=', item.lastIndexOf('/'));
  let grantee = item.slice(0, eq);
  if (grantee.startsWith('"')) grantee = grantee.slice(1, -1).replace(/""/g, '"');
  const letters = item.slice(eq + 1, item.lastIndexOf('/'));
  const privileges: string[] = [];
  const grantable: string[] = [];
  for (let i = 0; i < letters.length; i++) {
    const p = DB_PRIVILEGES[letters[i]!];
    if (!p) continue;
    if (letters[i + 1] === '*') grantable.push(p);
    else privileges.push(p);
  }
  return { grantee, privileges, grantable };
}

/**
 * The database's explicit privileges (null: the defaults) and owner, without the CONNECT the tool grants its own
 * replication role on the source (that role stays on the source).
 */
export async function databaseAcl(c: PgClient, database: string): Promise<{ owner: string; grants: DatabaseGrant[] | null }> {
  const { rows } = await c.query<{ owner: string; acl: string[] | null }>(`SELECT pg_get_userbyid(datdba) AS owner, datacl::text[] AS acl FROM pg_database WHERE datname = $1`, [database]);
  const r = rows[0];
  if (!r) return { owner: '', grants: null };
  return { owner: r.owner, grants: r.acl ? r.acl.map(parseAclItem).filter((g) => !g.grantee.startsWith(REPLICATION_ACCOUNT_PREFIX)) : null };
}

function grantSql(g: DatabaseGrant, database: string): string[] {
  const who = g.grantee === '' ? 'PUBLIC' : quoteIdent(g.grantee);
  const db = quoteIdent(database);
  return [
    ...(g.privileges.length ? [`GRANT ${g.privileges.join(', ')} ON DATABASE ${db} TO ${who}`] : []),
    ...(g.grantable.length ? [`GRANT ${g.grantable.join(', ')} ON DATABASE ${db} TO ${who} WITH GRANT OPTION`] : []),
  ];
}

function grantKey(g: DatabaseGrant): string {
  return `${g.grantee}=${[...g.privileges].sort().join(',')}/${[...g.grantable].sort().join(',')}`;
}

/**
 * Carries the database's settings, its roles' settings (those the target does not set differently: a target
 * role's own choice is kept and shown by `check`) and the database's privileges and owner. pg_dump --schema-only
 * carries none of them (default privileges it does carry).
 */
export async function copySettingsAndGrants(src: PgClient, dst: PgClient, database: string): Promise<{ settings: number; grants: number }> {
  const have = new Map((await storedSettings(dst, database)).map((s) => [key(s), s]));
  let settings = 0;
  for (const s of await storedSettings(src, database)) {
    if (have.has(key(s))) continue;
    await dst.query(settingSql(s, database));
    settings++;
  }
  const [from, to] = [await databaseAcl(src, database), await databaseAcl(dst, database)];
  if (from.owner && from.owner !== to.owner) await dst.query(`ALTER DATABASE ${quoteIdent(database)} OWNER TO ${quoteIdent(from.owner)}`);
  let grants = 0;
  if (from.grants) {
    const same = to.grants && from.grants.map(grantKey).sort().join(' ') === to.grants.map(grantKey).sort().join(' ');
    if (!same) {
      // Start from nothing, as pg_dump does for a database with explicit privileges, then grant exactly the source's.
      await dst.query(`REVOKE ALL ON DATABASE ${quoteIdent(database)} FROM PUBLIC`);
      for (const g of to.grants ?? []) if (g.grantee !== '') await dst.query(`REVOKE ALL ON DATABASE ${quoteIdent(database)} FROM ${quoteIdent(g.grantee)}`);
      await dst.query(`REVOKE ALL ON DATABASE ${quoteIdent(database)} FROM ${quoteIdent(from.owner)}`);
      for (const sql of from.grants.flatMap((g) => grantSql(g, database))) {
        await dst.query(sql);
        grants++;
      }
    }
  }
  return { settings, grants };
}

/** `check` findings: settings, privileges and owner that differ between source and target. */
export async function settingsFindings(src: PgClient, dst: PgClient | undefined, database: string): Promise<Finding[]> {
  const source = await storedSettings(src, database);
  if (!dst) {
    return source.length
      ? [{ severity: 'info', check: 'settings', message: `sync carries ${source.length} database/role setting(s) and the database's privileges and owner`, why: 'pg_dump --schema-only does not', fix: '—' }]
      : [];
  }
  const f: Finding[] = [];
  const target = new Map((await storedSettings(dst, database)).map((s) => [key(s), s]));
  for (const s of source) {
    const t = target.get(key(s));
    if (t?.value === s.value) continue;
    f.push({
      severity: 'warning',
      check: 'settings',
      object: `${where(s, database)}: ${s.name}`,
      message: t ? `${s.name} is ${s.value} for ${where(s, database)} on the source, ${t.value} on the target` : `${s.name} = ${s.value} is set for ${where(s, database)} on the source, not on the target`,
      why: 'sessions behave differently after the switch',
      fix: `${settingSql(s, database)}; on the target`,
    });
  }
  const [a, b] = [await databaseAcl(src, database), await databaseAcl(dst, database)];
  if (a.owner !== b.owner)
    f.push({
      severity: 'warning',
      check: 'privileges',
      object: database,
      message: `database ${database} is owned by ${a.owner} on the source, ${b.owner} on the target`,
      why: 'the owner may create schemas and change the database',
      fix: `ALTER DATABASE ${quoteIdent(database)} OWNER TO ${quoteIdent(a.owner)}; on the target`,
    });
  const show = (g: DatabaseGrant[] | null) => (g ? g.map(grantKey).sort().join(' ') : 'default');
  if (show(a.grants) !== show(b.grants)) {
    f.push({
      severity: 'warning',
      check: 'privileges',
      object: database,
      message: `database ${database} privileges differ: source ${show(a.grants)}, target ${show(b.grants)}`,
      why: 'a role may be refused CONNECT (or gain it) after the switch',
      fix: 'GRANT/REVOKE ... ON DATABASE on the target as on the source',
    });
  }
  return f;
}
