import { createRequire } from 'node:module';
import type { DbEndpoint } from '../../src/util/db-url.js';

type PgPassLookup = (conn: { host: string; port: number; database: string; user: string }, cb: (password?: string) => void) => void;

const requireFromPg = createRequire(createRequire(import.meta.url).resolve('pg'));
const pgpass = requireFromPg('pgpass') as PgPassLookup;

/**
 * The password the driver sends to one endpoint: its own, else the line of the password file (PGPASSFILE or
 * ~/.pgpass) for exactly this host, port, database and user, else none (trust, peer, cert). Handing the driver
 * `undefined` instead would make it read PGPASSWORD, which the operator may have set for another server.
 */
export function pgPassword(ep: DbEndpoint, database: string): string | (() => Promise<string>) {
  if (ep.password !== undefined) return ep.password;
  // pg's typings say string, but it documents and handles undefined from this function as "no password".
  return () => new Promise((resolve) => pgpass({ host: ep.host, port: ep.port, database, user: ep.user }, (p) => resolve(p as string)));
}
