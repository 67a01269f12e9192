import { UsageError } from '../errors.js';
import { redactUrl } from './redact.js';
import { mysqlTls, pgTls, type TlsSettings } from './tls.js';

export type Engine = 'postgres' | 'mysql' | 'mariadb';

/** A parsed connection URL. `password` is kept out of `display`, which is safe to print. */
export interface DbEndpoint {
  engine: Engine;
  host: string;
  port: number;
  user: string;
  password?: string;
  database?: string;
  /** Extra query parameters (e.g. `sslmode`, `host=/socket/dir`). */
  params: Record<string, string>;
  /** The URL with its password redacted. */
  display: string;
  /** TLS mode and files from the URL's parameters (libpq's or MySQL's names), validated. */
  tls: TlsSettings;
}

const SCHEMES: Record<string, Engine> = {
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'mysql:': 'mysql',
  'mariadb:': 'mariadb',
};
const DEFAULT_PORTS: Record<Engine, number> = { postgres: 5432, mysql: 3306, mariadb: 3306 };
const EXAMPLES: Record<Engine, string> = {
  postgres: 'postgres://user@host:5432/dbname',
  mysql: 'mysql://user@host:3306/dbname',
  mariadb: 'mariadb://user@host:3306/dbname',
};

function decode(part: string, what: string, display: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new UsageError(`bad ${what} encoding in URL ${display}`, 'percent-encode special characters (e.g. @ as %40, : as %3A, / as %2F, % as %25)');
  }
}

/**
 * Parses `postgres://`, `postgresql://`, `mysql://` and `mariadb://` URLs. `password` overrides one in the URL
 * (the CLI passes it from an environment variable so it never sits in argv).
 */
export function parseDbUrl(url: string, opts: { password?: string } = {}): DbEndpoint {
  const display = redactUrl(url);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`not a database URL: ${display}`, `use e.g. ${EXAMPLES.postgres} or ${EXAMPLES.mysql}`);
  }
  // A # starts a fragment, which a database URL never has: it is an unencoded # in the password (or name).
  if (u.hash) throw new UsageError(`unexpected # in URL ${display}`, 'percent-encode special characters in the password (# as %23, @ as %40), or better, pass it through passwordEnv / --password-env');
  const engine = SCHEMES[u.protocol];
  if (!engine) {
    throw new UsageError(`unsupported URL scheme "${u.protocol.replace(/:$/, '')}" in ${display}`, 'use postgres://, postgresql://, mysql:// or mariadb://');
  }
  const params: Record<string, string> = {};
  for (const [k, v] of u.searchParams) params[k] = v;
  // libpq style: ?host=/var/run/postgresql for a socket directory.
  const urlHost = u.hostname ? decode(u.hostname, 'host', display).replace(/^\[(.*)\]$/, '$1') : 'localhost';
  const host = params.host?.startsWith('/') ? params.host : urlHost;
  if (!host) throw new UsageError(`no host in URL ${display}`, `use e.g. ${EXAMPLES[engine]}`);
  let port = DEFAULT_PORTS[engine];
  if (u.port) {
    port = Number(u.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`bad port in URL ${display}`, 'use a port between 1 and 65535');
  } else if (params.port) {
    port = Number(params.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`bad port in URL ${display}`, 'use a port between 1 and 65535');
  }
  const user = u.username ? decode(u.username, 'user', display) : '';
  if (!user) throw new UsageError(`no user in URL ${display}`, `name the user, e.g. ${EXAMPLES[engine]}`);
  const urlPassword = u.password ? decode(u.password, 'password', display) : undefined;
  const path = u.pathname.replace(/^\//, '');
  const database = path ? decode(path, 'database', display) : undefined;
  if (database !== undefined && database.includes('/')) {
    throw new UsageError(`bad database name in URL ${display}`, 'the path is one database name; percent-encode a / in it as %2F');
  }
  delete params.host;
  delete params.port;
  delete params.password;
  const tls = tlsOf(engine, params, display);
  const password = opts.password ?? urlPassword;
  return { engine, host, port, user, ...(password !== undefined ? { password } : {}), ...(database !== undefined ? { database } : {}), params, display, tls };
}

/** The other engine's spelling would be ignored silently: a URL asking for TLS must get it or fail. */
function tlsOf(engine: Engine, params: Record<string, string>, display: string): TlsSettings {
  if (engine === 'postgres') {
    if (params['ssl-mode'] !== undefined) throw new UsageError(`ssl-mode is MySQL's parameter; ${display} is a PostgreSQL URL`, 'use sslmode= (disable, allow, prefer, require, verify-ca, verify-full)');
    return pgTls(params, display);
  }
  if (params.sslmode !== undefined) throw new UsageError(`sslmode is libpq's parameter; ${display} is a MySQL/MariaDB URL`, 'use ssl-mode= (DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY)');
  return mysqlTls(params, display);
}

/** A postgres:// or postgresql:// URL: the protocol PgBouncer's admin console speaks, whatever the plan's engine. */
export function isPostgresUrl(ep: DbEndpoint): boolean {
  return ep.engine === 'postgres';
}

/** True when the URL itself carries a password (it then sits in argv/shell history: worth a warning). */
export function urlHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}
