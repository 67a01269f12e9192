import { UsageError } from '../../src/errors.js';
import type { Endpoint } from '../../src/engine/router.js';

/** One `key=value` of a PgBouncer connection string, with where its value sits in the string. */
interface ConnPair {
  key: string;
  value: string;
  valueStart: number;
  valueEnd: number;
}

/** A `[databases]` line: `name = connstr`. */
interface DatabaseEntry {
  line: number;
  /** Offset of the connection string in the line. */
  valueStart: number;
  connstr: string;
}

/**
 * Splits a connection string the way PgBouncer's loader does: pairs separated by spaces, a value either
 * bare (up to the next space) or single-quoted with '' for a quote.
 */
export function parseConnstr(connstr: string): ConnPair[] {
  const pairs: ConnPair[] = [];
  let p = 0;
  const skipWs = () => {
    while (p < connstr.length && /\s/.test(connstr[p]!)) p++;
  };
  for (;;) {
    skipWs();
    if (p >= connstr.length) return pairs;
    const keyStart = p;
    while (p < connstr.length && connstr[p] !== '=' && !/\s/.test(connstr[p]!)) p++;
    const key = connstr.slice(keyStart, p);
    skipWs();
    if (connstr[p] !== '=' || key === '') throw new UsageError(`bad PgBouncer connection string near "${connstr.slice(keyStart, keyStart + 20)}"`, 'write it as key=value pairs separated by spaces');
    p++;
    skipWs();
    const valueStart = p;
    let value = '';
    if (connstr[p] === "'") {
      p++;
      for (;;) {
        if (p >= connstr.length) throw new UsageError(`unterminated quote in PgBouncer connection string for "${key}"`, "close the value with '");
        if (connstr[p] === "'") {
          if (connstr[p + 1] !== "'") break;
          p++;
        }
        value += connstr[p++];
      }
      p++;
    } else {
      while (p < connstr.length && !/\s/.test(connstr[p]!)) value += connstr[p++];
    }
    pairs.push({ key, value, valueStart, valueEnd: p });
  }
}

/** Quotes a connection-string value only when PgBouncer needs it to (spaces, quotes, empty). */
export function quoteConnValue(value: string): string {
  if (/[\0\r\n]/.test(value)) throw new UsageError('a PgBouncer connection value cannot contain control characters', 'check the host and database names');
  return value !== '' && /^[^\s']+$/.test(value) ? value : `'${value.replace(/'/g, "''")}'`;
}

/** PgBouncer ini keys are bare words or "double-quoted" names with "" for a quote. */
function parseKey(line: string): { name: string; end: number } | undefined {
  const m = /^\s*(?:"((?:[^"]|"")*)"|([^\s=]+))\s*=/.exec(line);
  if (!m) return undefined;
  return { name: m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]!, end: m[0].length };
}

function findEntry(lines: string[], database: string, file: string): DatabaseEntry {
  let section = '';
  let found: DatabaseEntry | undefined;
  let wildcard = false;
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    const header = /^\s*\[([^\]]*)\]\s*$/.exec(line);
    if (header) {
      section = header[1]!.trim().toLowerCase();
      return;
    }
    if (section !== 'databases' || /^\s*([;#]|$)/.test(line)) return;
    const key = parseKey(line);
    if (!key) return;
    if (key.name === '*') wildcard = true;
    if (key.name !== database) return;
    if (found) throw new UsageError(`${file}: [databases] defines "${database}" twice (lines ${found.line + 1} and ${i + 1})`, 'keep one entry');
    const valueStart = key.end + (/^\s*/.exec(line.slice(key.end))?.[0].length ?? 0);
    found = { line: i, valueStart, connstr: line.slice(valueStart).trimEnd() };
  });
  if (!found) {
    throw new UsageError(
      `${file}: no [databases] entry "${database}"`,
      wildcard ? 'the applications reach it through the "*" fallback; add an explicit entry so cutover can move just this database' : 'add it, e.g. shop = host=10.0.0.1 port=5432 dbname=shop',
    );
  }
  return found;
}

/** The key=value pairs of the `[databases]` entry for `database`. */
function entryPairs(text: string, database: string, file: string): Map<string, string> {
  return new Map(parseConnstr(findEntry(text.split('\n'), database, file).connstr).map((p) => [p.key, p.value]));
}

/** The entry's own login (`user=`, `password=`): PgBouncer logs in to the server with it instead of the auth_file's. */
export function readEntryLogin(text: string, database: string, file = 'pgbouncer.ini'): { user?: string; password?: string } {
  const pairs = entryPairs(text, database, file);
  const user = pairs.get('user');
  const password = pairs.get('password');
  return { ...(user !== undefined ? { user } : {}), ...(password !== undefined ? { password } : {}) };
}

/** Where the `[databases]` entry for `database` points. */
export function readDatabaseEntry(text: string, database: string, file = 'pgbouncer.ini'): Endpoint {
  const pairs = entryPairs(text, database, file);
  return { host: pairs.get('host') ?? '', port: Number(pairs.get('port') ?? 5432), database: pairs.get('dbname') ?? database };
}

/**
 * Points the entry for `database` at `endpoint`: only its host, port and dbname values change; every other
 * byte of the file (comments, other entries, the entry's other keys and its quoting) stays as it was.
 */
export function rewriteDatabaseEntry(text: string, database: string, endpoint: Endpoint, file = 'pgbouncer.ini'): string {
  const lines = text.split('\n');
  const entry = findEntry(lines, database, file);
  const wanted = new Map<string, string>([['host', endpoint.host], ['port', String(endpoint.port)], ...(endpoint.database !== undefined ? [['dbname', endpoint.database] as [string, string]] : [])]);
  let connstr = entry.connstr;
  // Right to left, so earlier offsets stay valid while later values change length.
  for (const pair of parseConnstr(connstr).reverse()) {
    const value = wanted.get(pair.key);
    if (value === undefined) continue;
    wanted.delete(pair.key);
    connstr = connstr.slice(0, pair.valueStart) + quoteConnValue(value) + connstr.slice(pair.valueEnd);
  }
  const added = [...wanted].map(([k, v]) => `${k}=${quoteConnValue(v)}`);
  if (added.length) connstr = [connstr, ...added].filter(Boolean).join(' ');
  const raw = lines[entry.line]!;
  const trailing = raw.slice(entry.valueStart + entry.connstr.length);
  lines[entry.line] = raw.slice(0, entry.valueStart) + connstr + trailing;
  return lines.join('\n');
}
