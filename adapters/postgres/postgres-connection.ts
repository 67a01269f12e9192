import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { OperationError, PreflightError, UsageError, isCutoverError } from '../../src/errors.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { redactText } from '../../src/util/redact.js';
import { pgPassword } from './postgres-password.js';
import { nodeTlsOptions, tlsRefusal } from '../../src/util/tls.js';

export type PgClient = pg.Client;

/** Ends sessions, ignoring a failure to say goodbye (a session already gone). */
export async function endAll(sessions: Iterable<PgClient>): Promise<void> {
  await Promise.all([...sessions].map((c) => c.end().catch(() => {})));
}

/** The server's major version (15, 17, ...). */
export async function serverMajor(c: PgClient): Promise<number> {
  return Math.floor(Number((await c.query<{ n: string }>(`SELECT current_setting('server_version_num') AS n`)).rows[0]!.n) / 10000);
}

export interface PgConnectOptions {
  /** Connect to this database instead of the URL's. */
  database?: string;
  applicationName?: string;
  lockTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export const MIN_SERVER_VERSION_NUM = 120000;

/** PreflightError (exit 3) for servers older than PostgreSQL 12, naming the version and the server. */
export function assertSupportedVersion(serverVersionNum: number, server: string): void {
  if (serverVersionNum < MIN_SERVER_VERSION_NUM) {
    throw new PreflightError('version', `PostgreSQL ${Math.floor(serverVersionNum / 10000)} at ${server} is not supported`, 'cutover needs PostgreSQL 12 or newer; upgrade the server first or move it with pg_dump');
  }
}

function where(ep: DbEndpoint): string {
  return `${ep.host}:${ep.port}`;
}

/** Translates a driver or server error into one clear line with a fix. */
export function mapPgError(e: unknown, ep: DbEndpoint, doing?: string): Error {
  if (isCutoverError(e)) return e;
  const err = e as { code?: string; message?: string };
  const msg = redactText(err.message ?? String(e), ep.password ? [ep.password] : []);
  const ctx = doing ? `${doing}: ` : '';
  const tls = tlsRefusal(e, `PostgreSQL at ${where(ep)}`, ep.tls, /server does not support SSL/i);
  if (tls) return tls;
  switch (err.code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ETIMEDOUT':
    case 'EAI_AGAIN':
    case 'ENOENT':
      return new PreflightError('unreachable', `cannot reach PostgreSQL at ${where(ep)} (${err.code})`, 'check host and port in the URL and that the server is running and accepts connections', { cause: e });
    case '28P01':
      return new PreflightError(
        'auth',
        `password authentication failed for user "${ep.user}" at ${where(ep)}`,
        'check the password: passwordEnv in the plan, --password-env NAME (or PGPASSWORD) for readonly; not in the URL',
        { cause: e },
      );
    case '28000':
      return new PreflightError('auth', `${where(ep)} refused user "${ep.user}": ${msg}`, 'check pg_hba.conf and that the role may log in', { cause: e });
    case '3D000':
      return new UsageError(`${ctx}${msg} on ${where(ep)}`, 'check the database name in the URL (or readOnly.name in the plan, --name for readonly)', { cause: e });
    case '42501':
      return new PreflightError('privilege', `${ctx}permission denied for "${ep.user}" on ${where(ep)}: ${msg}`, 'connect as a superuser (or a role with the needed privilege)', { cause: e });
    case '55P03':
      return new OperationError(`${ctx}could not get a lock in time on ${where(ep)}: ${msg}`, 'a long transaction holds a conflicting lock; retry, or raise readOnly.lockTimeout in the plan (or --lock-timeout)', {
        cause: e,
      });
    case '42704':
      return new UsageError(`${ctx}${msg} on ${where(ep)}`, 'check the name', { cause: e });
  }
  if (/timeout expired|Connection terminated due to connection timeout/i.test(msg)) {
    return new PreflightError('unreachable', `timed out connecting to PostgreSQL at ${where(ep)}`, 'check host, port and firewalls', { cause: e });
  }
  if (/SASL|password must be a string|client password/i.test(msg)) {
    return new PreflightError(
      'auth',
      `the server at ${where(ep)} asks for a password for "${ep.user}" and none was given`,
      'name its variable: passwordEnv in the plan, --password-env NAME (or PGPASSWORD) for readonly; or add a ~/.pgpass line',
      { cause: e },
    );
  }
  return new OperationError(`${ctx}${msg} (at ${where(ep)})`, undefined, { cause: e });
}

/** node-pg's `ssl` for one attempt: false for plaintext. */
export type PgSsl = false | ConnectionOptions;

/**
 * Servers (host:port) where `prefer` found no TLS or `allow` found plaintext refused, in this process. node-pg,
 * unlike libpq, cannot continue on the same connection after the server declines TLS: it needs a second
 * connection (and the server a second backend). Remembering the answer keeps later connections to one.
 */
const fallenBack = new Set<string>();

/**
 * The `ssl` settings to try, in order, with libpq's meaning: `prefer` (the default) tries TLS without checking the
 * certificate and falls back to plaintext when the server offers no TLS; `allow` tries plaintext first and TLS
 * when the server refuses it. A Unix socket never uses TLS (as in libpq). Always explicit: node-pg would
 * otherwise read PGSSLMODE from the environment.
 */
export function pgSslAttempts(ep: DbEndpoint): PgSsl[] {
  if (ep.host.startsWith('/') || ep.tls.mode === 'disable') return [false];
  const opts = nodeTlsOptions(ep.tls);
  const known = fallenBack.has(`${ep.host}:${ep.port}`);
  if (ep.tls.mode === 'prefer') return known ? [false] : [opts, false];
  if (ep.tls.mode === 'allow') return known ? [opts] : [false, opts];
  return [opts];
}

/** Whether a failed attempt may go on to the next one: only the answer that mode's fallback is for. */
export function pgSslFallsBack(e: unknown, ep: DbEndpoint): boolean {
  const err = e as { code?: string; message?: string };
  const falls = (ep.tls.mode === 'prefer' && /server does not support SSL/i.test(err.message ?? '')) || (ep.tls.mode === 'allow' && err.code === '28000');
  if (falls) fallenBack.add(`${ep.host}:${ep.port}`);
  return falls;
}

/**
 * The tool's session settings ($1: lock_timeout). The plan lock lives on an ordinary session that may sit idle
 * through a long sync: idle_session_timeout (PostgreSQL 14+; unknown to older servers) must not end it.
 */
export function pgSessionSetupSql(serverVersionNum: number): string {
  return `SELECT set_config('default_transaction_read_only', 'off', false),
              set_config('statement_timeout', '0', false),
              set_config('idle_in_transaction_session_timeout', '0', false),${
                serverVersionNum >= 140000
                  ? `
              set_config('idle_session_timeout', '0', false),`
                  : ''
              }
              set_config('lock_timeout', $1, false)`;
}

/**
 * Opens a session for the tool itself: never read-only, never killed by server-side timeouts, and every
 * lock wait bounded so the tool cannot queue behind a long transaction and block the application.
 */
export async function connectPg(ep: DbEndpoint, opts: PgConnectOptions = {}): Promise<PgClient> {
  const client = await connectAttempts(ep, opts);
  try {
    const v = await client.query<{ n: string }>(`SELECT current_setting('server_version_num') AS n`);
    const versionNum = Number(v.rows[0]?.n ?? 0);
    assertSupportedVersion(versionNum, where(ep));
    await client.query(pgSessionSetupSql(versionNum), [`${opts.lockTimeoutMs ?? 0}ms`]);
  } catch (e) {
    await client.end().catch(() => {});
    throw mapPgError(e, ep);
  }
  return client;
}

/**
 * A logical replication (walsender) session on one database: it takes replication commands such as
 * CREATE_REPLICATION_SLOT and the simple query protocol only, so none of the tool's session setup runs on it.
 */
export async function connectPgReplication(ep: DbEndpoint, database: string): Promise<PgClient> {
  return connectAttempts(ep, { database, applicationName: 'cutover copy' }, 'database');
}

async function connectAttempts(ep: DbEndpoint, opts: PgConnectOptions, replication?: 'database'): Promise<PgClient> {
  const attempts = pgSslAttempts(ep);
  const database = opts.database ?? ep.database ?? 'postgres';
  for (let i = 0; ; i++) {
    const client = new pg.Client({
      host: ep.host,
      port: ep.port,
      user: ep.user,
      password: pgPassword(ep, database),
      database,
      application_name: opts.applicationName ?? 'cutover',
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
      ssl: attempts[i]!,
      // A dead peer (runner or server host gone) is noticed instead of leaving the session, and its locks, open.
      keepAlive: true,
      ...(replication ? { replication } : {}),
    });
    // An idle client whose server goes away emits 'error'; without a listener that would crash the process.
    client.on('error', () => {});
    try {
      await client.connect();
      return client;
    } catch (e) {
      await client.end().catch(() => {});
      if (i + 1 < attempts.length && pgSslFallsBack(e, ep)) continue;
      throw mapPgError(e, ep);
    }
  }
}
