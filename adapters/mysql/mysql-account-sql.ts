import { quoteAccount, quoteIdent, quoteString, type Account } from './mysql-sql.js';

/**
 * Pure pieces of copying accounts: reading `SHOW CREATE USER` / `SHOW GRANTS` lines, keeping the grants that
 * concern one database, and writing the statements that recreate them. No I/O here, so each engine's SQL is
 * unit-tested (MySQL 8 cannot run on this machine).
 */

type Token = { kind: 'word' | 'ident' | 'string' | 'hex' | 'punct'; text: string };

/** Splits MySQL text into words, `quoted` identifiers, 'strings' (with \ and '' escapes), 0x literals and punctuation. */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '`' || c === "'" || c === '"') {
      let j = i + 1;
      for (; j < sql.length; j++) {
        if (c !== '`' && sql[j] === '\\') j++;
        else if (sql[j] === c) {
          if (sql[j + 1] === c) j++;
          else break;
        }
      }
      out.push({ kind: c === '`' ? 'ident' : 'string', text: sql.slice(i, j + 1) });
      i = j + 1;
    } else if (/^0x[0-9a-f]/i.test(sql.slice(i, i + 3))) {
      const m = /^0x[0-9a-f]+/i.exec(sql.slice(i))!;
      out.push({ kind: 'hex', text: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z0-9_$.*%-]/.test(c)) {
      const m = /^[A-Za-z0-9_$]+/.exec(sql.slice(i));
      const text = m ? m[0] : c;
      out.push({ kind: m ? 'word' : 'punct', text });
      i += text.length;
    } else {
      out.push({ kind: 'punct', text: c });
      i++;
    }
  }
  return out;
}

/** The text of a quoted identifier or string token (quotes removed, doubled quotes and backslash escapes undone). */
export function unquoteToken(t: Token): string {
  if (t.kind === 'ident') return t.text.slice(1, -1).replace(/``/g, '`');
  if (t.kind === 'string') {
    const q = t.text[0]!;
    return t.text
      .slice(1, -1)
      .replace(new RegExp(`${q}${q}`, 'g'), q)
      .replace(/\\(.)/g, (_m, ch: string) => ({ n: '\n', t: '\t', r: '\r', '0': '\0' })[ch] ?? ch);
  }
  return t.text;
}

const isWord = (t: Token | undefined, w: string): boolean => t?.kind === 'word' && t.text.toUpperCase() === w;
const isName = (t: Token | undefined): boolean => t?.kind === 'ident' || t?.kind === 'string' || t?.kind === 'word';

/** Reads `user@host` (each quoted or bare) at `i`; returns the account and the index after it. */
function readAccount(ts: Token[], i: number): { account: Account; next: number } | undefined {
  if (!isName(ts[i])) return undefined;
  const user = unquoteToken(ts[i]!);
  if (ts[i + 1]?.text === '@' && isName(ts[i + 2])) return { account: { user, host: unquoteToken(ts[i + 2]!) }, next: i + 3 };
  return { account: { user, host: '' }, next: i + 1 };
}

/** How an account authenticates, as the engine prints it. `methods` names the plugins (never the hashes). */
export interface AccountAuth {
  /** The whole IDENTIFIED clause as the server printed it ('' for an account without one). Holds the hash. */
  clause: string;
  methods: Array<{ plugin: string; hash: string }>;
  /** Everything after the IDENTIFIED clause (REQUIRE, WITH MAX_..., PASSWORD EXPIRE, ACCOUNT LOCK ...). */
  options: string;
}

const NATIVE = 'mysql_native_password';

/**
 * Parses `SHOW CREATE USER` output: MariaDB `IDENTIFIED BY PASSWORD '*hash'` / `IDENTIFIED VIA p [USING 'x'] [OR ...]`,
 * MySQL `IDENTIFIED WITH 'p' [AS 'x' | AS 0x...]`.
 */
export function parseCreateUser(text: string): AccountAuth & { account: Account } {
  const ts = tokenize(text);
  if (!isWord(ts[0], 'CREATE') || !isWord(ts[1], 'USER')) throw new Error('not a CREATE USER statement');
  const acc = readAccount(ts, 2);
  if (!acc) throw new Error('CREATE USER without an account');
  let i = acc.next;
  const methods: AccountAuth['methods'] = [];
  const start = i;
  if (isWord(ts[i], 'IDENTIFIED')) {
    i++;
    if (isWord(ts[i], 'BY') && isWord(ts[i + 1], 'PASSWORD') && ts[i + 2]?.kind === 'string') {
      methods.push({ plugin: NATIVE, hash: unquoteToken(ts[i + 2]!) });
      i += 3;
    } else if (isWord(ts[i], 'WITH') || isWord(ts[i], 'VIA')) {
      do {
        i++;
        const plugin = unquoteToken(ts[i]!);
        i++;
        let hash = '';
        if ((isWord(ts[i], 'AS') || isWord(ts[i], 'USING') || isWord(ts[i], 'BY')) && (ts[i + 1]?.kind === 'string' || ts[i + 1]?.kind === 'hex')) {
          hash = ts[i + 1]!.kind === 'hex' ? ts[i + 1]!.text.toLowerCase() : unquoteToken(ts[i + 1]!);
          i += 2;
        }
        methods.push({ plugin, hash });
      } while (isWord(ts[i], 'OR'));
    }
  }
  return {
    account: acc.account,
    clause: ts
      .slice(start, i)
      .map((t) => t.text)
      .join(' '),
    methods,
    options: ts
      .slice(i)
      .map((t) => t.text)
      .join(' '),
  };
}

/** MySQL: the hash as a hex literal, because caching_sha2_password hashes hold bytes a string literal mangles. */
export function mysqlAuthClause(plugin: string, hashHex: string): string {
  if (!/^[0-9a-f]*$/i.test(hashHex)) throw new Error('hash is not hex');
  return `IDENTIFIED WITH ${quoteString(plugin)}${hashHex ? ` AS 0x${hashHex.toUpperCase()}` : ''}`;
}

/** The CREATE USER that gives the target the source's authentication (plugin + hash, never a password). */
export function createUserSql(a: Account, auth: Pick<AccountAuth, 'clause' | 'options'>): string {
  return [`CREATE USER ${quoteAccount(a)}`, auth.clause, auth.options].filter(Boolean).join(' ');
}

export function createRoleSql(role: string): string {
  return `CREATE ROLE ${quoteString(role)}`;
}

/** Plugins whose stored hash is salted: the same password gives another hash on each server. */
const SALTED = new Set(['caching_sha2_password', 'sha256_password', 'parsec']);

/**
 * What differs between two authentications, in words that never hold a hash; undefined when they match.
 * `salted` is set when the difference may be a salt only (the password can still be the same).
 */
export function authDifference(source: AccountAuth, target: AccountAuth): { text: string; salted: boolean } | undefined {
  const plugins = (a: AccountAuth) => a.methods.map((m) => m.plugin).join(' or ') || 'no password';
  if (plugins(source) !== plugins(target)) return { text: `authentication differs: source ${plugins(source)}, target ${plugins(target)}`, salted: false };
  const differs = source.methods.some((m, k) => m.hash !== target.methods[k]?.hash);
  if (!differs) return undefined;
  const salted = source.methods.every((m) => SALTED.has(m.plugin));
  return { text: salted ? `password hashes differ (${plugins(source)} salts its hash, so the password may still be the same)` : `the password differs (same plugin ${plugins(source)}, other hash)`, salted };
}

/** One line of SHOW GRANTS that the copy understands. */
export type GrantLine =
  | { kind: 'privileges'; privileges: string[]; routine?: string; db: string; table: string; grantOption: boolean }
  | { kind: 'role'; role: string; admin: boolean }
  | { kind: 'default-role'; role: string }
  | { kind: 'other' };

/** Splits `SELECT, UPDATE (`a`, `b`)` at the commas outside parentheses. */
function splitPrivileges(ts: Token[]): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  let depth = 0;
  for (const t of ts) {
    if (t.text === '(') depth++;
    if (t.text === ')') depth--;
    if (t.text === ',' && depth === 0) {
      out.push(joinPrivilege(cur));
      cur = [];
    } else cur.push(t.kind === 'word' ? t.text.toUpperCase() : t.text);
  }
  if (cur.length) out.push(joinPrivilege(cur));
  return out;
}

function joinPrivilege(parts: string[]): string {
  return parts.join(' ').replace(/\( /g, '(').replace(/ \)/g, ')').replace(/ ,/g, ',');
}

export function parseGrantLine(line: string): GrantLine {
  const ts = tokenize(line);
  if (isWord(ts[0], 'SET') && isWord(ts[1], 'DEFAULT') && isWord(ts[2], 'ROLE') && isName(ts[3]) && !isWord(ts[3], 'NONE')) {
    return { kind: 'default-role', role: unquoteToken(ts[3]!) };
  }
  if (!isWord(ts[0], 'GRANT')) return { kind: 'other' };
  let depth = 0;
  let on = -1;
  let to = -1;
  for (let k = 1; k < ts.length; k++) {
    if (ts[k]!.text === '(') depth++;
    if (ts[k]!.text === ')') depth--;
    if (depth === 0 && on < 0 && isWord(ts[k], 'ON')) on = k;
    if (depth === 0 && isWord(ts[k], 'TO')) {
      to = k;
      break;
    }
  }
  if (to < 0) return { kind: 'other' };
  const tail = ts
    .slice(to + 1)
    .map((t) => t.text.toUpperCase())
    .join(' ');
  if (on < 0) {
    // GRANT `role` TO `user`@`host` [WITH ADMIN OPTION]: a role grant (MariaDB; MySQL roles carry a host).
    if (to !== 2 || !isName(ts[1]) || isWord(ts[1], 'PROXY')) return { kind: 'other' };
    return { kind: 'role', role: unquoteToken(ts[1]!), admin: /WITH ADMIN OPTION/.test(tail) };
  }
  let k = on + 1;
  let routine: string | undefined;
  if (isWord(ts[k], 'PROCEDURE') || isWord(ts[k], 'FUNCTION') || isWord(ts[k], 'PACKAGE')) {
    routine = ts[k]!.text.toUpperCase();
    if (isWord(ts[k + 1], 'BODY')) {
      routine += ' BODY';
      k++;
    }
    k++;
  }
  const obj = ts.slice(k, to);
  const name = (t: Token | undefined) => (t?.text === '*' ? '*' : t ? unquoteToken(t) : '');
  let db: string;
  let table: string;
  if (obj.length === 3 && obj[1]!.text === '.') [db, table] = [name(obj[0]), name(obj[2])];
  else if (obj.length === 1) [db, table] = ['', name(obj[0])];
  else return { kind: 'other' };
  return { kind: 'privileges', privileges: splitPrivileges(ts.slice(1, on)), ...(routine ? { routine } : {}), db, table, grantOption: /WITH GRANT OPTION/.test(tail) };
}

/**
 * Whether a database-level grant pattern covers `db`: `%` and `_` are wildcards, `\` escapes them (as in
 * mysql.db). Table and routine grants name their database literally.
 */
export function patternMatches(pattern: string, db: string): boolean {
  let re = '';
  for (let k = 0; k < pattern.length; k++) {
    const c = pattern[k]!;
    if (c === '\\' && k + 1 < pattern.length) re += escapeRe(pattern[++k]!);
    else if (c === '%') re += '[\\s\\S]*';
    else if (c === '_') re += '[\\s\\S]';
    else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`).test(db);
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** A database name as a grant pattern that matches only itself. */
export function escapeDbPattern(db: string): string {
  return db.replace(/[\\%_]/g, '\\$&');
}

/** A grant on one object of the moved database, its wildcard (if any) narrowed to that database. */
export interface ObjectGrant {
  /** As written after ON: `` `shop\-eu`.* ``, `` `shop-eu`.`t` ``, `` PROCEDURE `shop-eu`.`p` ``. */
  object: string;
  privileges: string[];
  grantOption: boolean;
}

/**
 * The grants of one account that concern `db`, merged per object. A wildcard grant that covers `db`
 * (`shop%`.*) is narrowed to `db` itself: copying the pattern would grant on other databases of the target.
 */
export function grantsOn(lines: readonly GrantLine[], db: string): ObjectGrant[] {
  const byObject = new Map<string, ObjectGrant>();
  for (const g of lines) {
    if (g.kind !== 'privileges' || g.db === '*' || g.db === '') continue;
    let object: string;
    if (g.routine) {
      if (g.db !== db) continue;
      object = `${g.routine} ${quoteIdent(db)}.${quoteIdent(g.table)}`;
    } else if (g.table === '*') {
      if (!patternMatches(g.db, db)) continue;
      object = `${quoteIdent(escapeDbPattern(db))}.*`;
    } else {
      if (g.db !== db) continue;
      object = `${quoteIdent(db)}.${quoteIdent(g.table)}`;
    }
    const cur = byObject.get(object) ?? { object, privileges: [], grantOption: false };
    cur.privileges = [...new Set([...cur.privileges, ...g.privileges.filter((p) => p !== 'USAGE')])].sort();
    cur.grantOption ||= g.grantOption;
    byObject.set(object, cur);
  }
  return [...byObject.values()].filter((g) => g.privileges.length > 0 || g.grantOption).sort((a, b) => a.object.localeCompare(b.object));
}

/** `GRANT ... TO` for one object; a grant option alone is `GRANT USAGE ... WITH GRANT OPTION`. */
export function grantSql(g: ObjectGrant, grantee: Account | string): string {
  const to = typeof grantee === 'string' ? quoteString(grantee) : quoteAccount(grantee);
  return `GRANT ${g.privileges.length ? g.privileges.join(', ') : 'USAGE'} ON ${g.object} TO ${to}${g.grantOption ? ' WITH GRANT OPTION' : ''}`;
}

/** `to` is an account, or (MariaDB) a role by name. */
export function grantRoleSql(role: string, to: Account | string): string {
  return `GRANT ${quoteString(role)} TO ${typeof to === 'string' ? quoteString(to) : quoteAccount(to)}`;
}

export function setDefaultRoleSql(role: string, to: Account): string {
  return `SET DEFAULT ROLE ${quoteString(role)} FOR ${quoteAccount(to)}`;
}

/** Grants as people read them: `ALL PRIVILEGES on `shop-eu`.*`; `none` for an empty list. */
export function describeGrants(gs: readonly ObjectGrant[]): string {
  return gs.length ? gs.map((g) => `${g.privileges.join(', ') || 'USAGE'}${g.grantOption ? ' WITH GRANT OPTION' : ''} on ${g.object}`).join('; ') : 'none';
}

export function sameGrants(a: readonly ObjectGrant[], b: readonly ObjectGrant[]): boolean {
  return describeGrants(a) === describeGrants(b);
}
