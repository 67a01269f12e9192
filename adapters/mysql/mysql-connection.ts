import { connect as netConnect, isIP, type Socket } from 'node:net';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { OperationError, PreflightError, UsageError, isCutoverError } from '../../src/errors.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { redactText } from '../../src/util/redact.js';
import { nodeTlsOptions, tlsRefusal } from '../../src/util/tls.js';
import { assertSupported, detectFlavor, type MysqlFlavor } from './mysql-flavor.js';
import type { Query } from './mysql-sessions.js';
import { sessionSetupSql } from './mysql-sql.js';

export type MysqlConnection = mysql.Connection;

export interface MysqlConnectOptions {
  lockTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Only for a transform file sent as is; every statement of the tool itself is single. */
  multipleStatements?: boolean;
}

const PRIVILEGE_HINT =
  'connect as an account that may set global variables and kill sessions (root; or MySQL: SYSTEM_VARIABLES_ADMIN, CONNECTION_ADMIN; MariaDB: READ_ONLY ADMIN, CONNECTION ADMIN) and read the mysql schema';

function where(ep: DbEndpoint): string {
  return ep.host.startsWith('/') ? ep.host : `${ep.host}:${ep.port}`;
}

/**
 * The driver error reduced to what explains it: mysql2 keeps the statement with its parameters inlined (`sql`)
 * and the server's echo of it (`sqlMessage`), which for CHANGE MASTER or an account statement carry a password
 * or a hash; the message keeps no secret either.
 */
function scrubbedCause(e: unknown, secrets: readonly string[]): Error {
  const err = e as { code?: string; errno?: number; sqlState?: string; message?: string; fatal?: boolean };
  const out = new Error(redactText(err?.message ?? String(e), secrets));
  for (const k of ['code', 'errno', 'sqlState', 'fatal'] as const) if (err?.[k] !== undefined) Object.assign(out, { [k]: err[k] });
  return out;
}

/** The server's error number behind an error mapMysqlError made (undefined: none, or not a server error). */
export function mysqlErrno(e: unknown): number | undefined {
  return (e as { cause?: { errno?: number } }).cause?.errno;
}

/** Translates a mysql2 driver or server error into one clear line with a fix; `secrets` never appear in it or its cause. */
export function mapMysqlError(e: unknown, ep: DbEndpoint, doing?: string, secrets: readonly string[] = []): Error {
  if (isCutoverError(e)) return e;
  const hidden = [...(ep.password ? [ep.password] : []), ...secrets];
  const cause = scrubbedCause(e, hidden);
  const err = cause as { code?: string; errno?: number; message?: string; fatal?: boolean };
  const msg = err.message ?? '';
  const ctx = doing ? `${doing}: ` : '';
  const connecting = doing === undefined;
  const tls = tlsRefusal(cause, where(ep), ep.tls, /does not support secure connection/i);
  if (tls) return tls;
  switch (err.code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ETIMEDOUT':
    case 'EAI_AGAIN':
    case 'ENOENT':
      return new PreflightError('unreachable', `cannot reach the server at ${where(ep)} (${err.code})`, 'check host and port in the URL and that the server is running and accepts connections', { cause });
    case 'ECONNRESET':
    case 'PROTOCOL_CONNECTION_LOST':
      if (connecting) return new PreflightError('unreachable', `the server at ${where(ep)} closed the connection (${err.code})`, 'check that this is a MySQL/MariaDB port and the server accepts connections', { cause });
      return new OperationError(`${ctx}lost the connection to ${where(ep)} (${err.code})`, 'check the server log; run `cutover readonly status` to see what is in place', { cause });
  }
  switch (err.errno) {
    case 1045:
      return new PreflightError(
        'auth',
        `access denied for user "${ep.user}" at ${where(ep)} (wrong or missing password)`,
        'check the password: passwordEnv in the plan, --password-env NAME (or MYSQL_PWD) for readonly; not in the URL',
        { cause },
      );
    case 1130:
      return new PreflightError('auth', `${where(ep)} does not let user "${ep.user}" connect from this host`, 'connect as an account whose host part matches this machine', { cause });
    case 3118:
    case 4151:
      return new PreflightError('auth', `account "${ep.user}" is locked at ${where(ep)}`, 'unlock it (ALTER USER ... ACCOUNT UNLOCK) or connect as another account', { cause });
    case 1251:
    case 2059:
    case 1524:
      return new PreflightError('auth', `${where(ep)} asks for an authentication method the client cannot use: ${msg}`, 'give the account mysql_native_password or caching_sha2_password', { cause });
    case 1044:
    case 1142:
    case 1143:
    case 1095:
    case 1227:
    case 1370:
    case 3530:
      return new PreflightError('privilege', `${ctx}permission denied for "${ep.user}" at ${where(ep)}: ${msg}`, PRIVILEGE_HINT, { cause });
    case 1049:
      return new UsageError(`${ctx}${msg} at ${where(ep)}`, 'check the database name in the URL (or readOnly.name in the plan, --name for readonly)', { cause });
    case 1396:
      return new UsageError(`${ctx}${msg} at ${where(ep)}`, 'check the account names in readOnly.roles of the plan (or --role)', { cause });
    case 1205:
      return new OperationError(
        `${ctx}could not get the lock within --lock-timeout (readOnly.lockTimeout in a plan) at ${where(ep)}: another session holds LOCK TABLES, FLUSH TABLES WITH READ LOCK or a long commit`,
        'find it with SHOW PROCESSLIST and let it finish (or end it), then retry; or raise readOnly.lockTimeout in the plan (or --lock-timeout)',
        { cause },
      );
  }
  if (connecting && /connect ?timeout|timed out/i.test(msg)) {
    return new PreflightError('unreachable', `timed out connecting to ${where(ep)}`, 'check host, port and firewalls', { cause });
  }
  return new OperationError(`${ctx}${msg} (at ${where(ep)})`, undefined, { cause });
}

/** Servers (host:port) where PREFERRED found no TLS in this process: later connections go straight to plaintext. */
const withoutTls = new Set<string>();

type MysqlSsl = { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean; verifyIdentity: boolean } | undefined;

/**
 * mysql2's `ssl` per attempt, with MySQL's meaning: PREFERRED (the default) tries TLS without checking the
 * certificate and falls back to plaintext only when the server offers no TLS; REQUIRED never falls back;
 * VERIFY_CA checks the chain against ssl-ca; VERIFY_IDENTITY also the host name. No TLS over a Unix socket.
 */
export function mysqlSslAttempts(ep: DbEndpoint, socket: boolean): MysqlSsl[] {
  if (socket || ep.tls.mode === 'disable') return [undefined];
  const o = nodeTlsOptions(ep.tls);
  const ssl = {
    ...(typeof o.ca === 'string' ? { ca: o.ca } : {}),
    ...(typeof o.cert === 'string' ? { cert: o.cert } : {}),
    ...(typeof o.key === 'string' ? { key: o.key } : {}),
    rejectUnauthorized: ep.tls.verify !== 'none',
    verifyIdentity: ep.tls.verify === 'full',
  };
  if (ep.tls.mode !== 'prefer') return [ssl];
  return withoutTls.has(`${ep.host}:${ep.port}`) ? [undefined] : [ssl, undefined];
}

/**
 * mysql2 gives the TLS socket no host name for an IP address, and Node then checks the certificate against its
 * fallback "localhost": a certificate for localhost would pass for any IP. A socket that knows its host (as
 * Node's own DNS path leaves it) makes VERIFY_IDENTITY check the address the tool connects to.
 */
function identityStream(ep: DbEndpoint): { stream?: () => Socket } {
  if (ep.tls.verify !== 'full' || isIP(ep.host) === 0) return {};
  return {
    stream: () => {
      const s = netConnect(ep.port, ep.host);
      (s as Socket & { _host: string | null })._host = ep.host;
      return s;
    },
  };
}

function fallsBack(e: unknown, ep: DbEndpoint): boolean {
  const falls = ep.tls.mode === 'prefer' && (e as { code?: string }).code === 'HANDSHAKE_NO_SSL_SUPPORT';
  if (falls) withoutTls.add(`${ep.host}:${ep.port}`);
  return falls;
}

/**
 * A session's query function: rows back, errors mapped (mapMysqlError) saying what was being done, with `secrets`
 * (a replica statement's password, say) kept out of the error and its cause.
 */
export function mappedQuery(conn: MysqlConnection, ep: DbEndpoint, secrets: readonly string[] = [], fallbackDoing = 'running a query'): Query {
  return async <R extends RowDataPacket>(sql: string, params: unknown[] = [], doing?: string): Promise<R[]> => {
    try {
      const [rows] = await conn.query(sql, params);
      return Array.isArray(rows) ? (rows as R[]) : [];
    } catch (e) {
      throw mapMysqlError(e, ep, doing ?? fallbackDoing, secrets);
    }
  };
}

/**
 * Opens the tool's own session: flavor detected, version checked, every lock wait bounded so the tool cannot
 * queue behind a long transaction and stall the application, no server-side statement timeout.
 */
export async function connectMysql(ep: DbEndpoint, opts: MysqlConnectOptions = {}): Promise<{ conn: MysqlConnection; flavor: MysqlFlavor }> {
  const socketPath = ep.host.startsWith('/') ? ep.host : ep.params.socket;
  const attempts = mysqlSslAttempts(ep, socketPath !== undefined);
  let conn: MysqlConnection | undefined;
  for (let i = 0; !conn; i++) {
    try {
      conn = await mysql.createConnection({
        ...(socketPath ? { socketPath } : { host: ep.host, port: ep.port }),
        user: ep.user,
        ...(ep.password !== undefined ? { password: ep.password } : {}),
        connectTimeout: opts.connectTimeoutMs ?? 10_000,
        multipleStatements: opts.multipleStatements ?? false,
        dateStrings: true,
        supportBigNumbers: true,
        bigNumberStrings: true,
        charset: 'utf8mb4',
        // A dead peer is noticed instead of leaving the session, and its GET_LOCK, open.
        enableKeepAlive: true,
        ...(attempts[i] ? { ssl: attempts[i], ...identityStream(ep) } : {}),
      });
    } catch (e) {
      if (i + 1 < attempts.length && fallsBack(e, ep)) continue;
      throw mapMysqlError(e, ep);
    }
  }
  // A dropped connection emits 'error'; without a listener that would crash the process.
  conn.on('error', () => {});
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT VERSION() AS v, @@version_comment AS c`);
    const flavor = detectFlavor(String(rows[0]?.v ?? ''), String(rows[0]?.c ?? ''));
    assertSupported(flavor, where(ep));
    await conn.query(sessionSetupSql(flavor, opts.lockTimeoutMs ?? 2_000));
    return { conn, flavor };
  } catch (e) {
    conn.destroy();
    throw mapMysqlError(e, ep, isCutoverError(e) ? undefined : 'setting up the session');
  }
}
