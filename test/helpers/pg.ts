import pg from 'pg';
import { PostgresSandbox } from '../../adapters/postgres/postgres-sandbox.js';
import { findPostgresBinaries } from '../../adapters/postgres/postgres-binaries.js';
import { missing } from './availability.js';

export const pg15Missing = await missing('PostgreSQL 15 server binaries', () => findPostgresBinaries(15));
export const pg17Missing = await missing('PostgreSQL 17 server binaries', () => findPostgresBinaries(17));
export const pg18Missing = await missing('PostgreSQL 18 server binaries', () => findPostgresBinaries(18));

/** A connected client to a sandbox; errors after termination are expected in tests, so they are swallowed. */
export async function client(sb: PostgresSandbox, opts: { database?: string; user?: string; password?: string; application?: string } = {}): Promise<pg.Client> {
  const c = new pg.Client({
    host: sb.host,
    port: sb.port,
    user: opts.user ?? 'postgres',
    password: opts.password ?? sb.password,
    database: opts.database ?? 'postgres',
    application_name: opts.application ?? 'test-client',
  });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Runs each statement on a short-lived superuser connection. */
export async function exec(sb: PostgresSandbox, database: string, ...sql: string[]): Promise<void> {
  const c = await client(sb, { database });
  try {
    for (const s of sql) await c.query(s);
  } finally {
    await c.end();
  }
}

export { PostgresSandbox };

/** A role's stored password verifier (pg_authid.rolpassword), for tests that copy it or hand it to a pooler. */
export async function storedVerifier(sb: PostgresSandbox, role: string): Promise<string> {
  const c = await client(sb);
  try {
    return (await c.query<{ h: string }>(`SELECT rolpassword AS h FROM pg_authid WHERE rolname = $1`, [role])).rows[0]!.h;
  } finally {
    await c.end();
  }
}
