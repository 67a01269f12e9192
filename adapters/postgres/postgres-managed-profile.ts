import pg from 'pg';
import { serverMajor } from './postgres-connection.js';
import type { PostgresSandbox } from './postgres-sandbox.js';
import { quoteIdent, quoteLiteral } from './postgres-sql.js';

/**
 * The managed test profile on a sandbox: the admin account a managed service hands its customer (RDS
 * `rds_superuser`, Cloud SQL `cloudsqlsuperuser`, Azure `azure_pg_admin`), rebuilt from plain PostgreSQL
 * privileges, and the provider's own superuser sessions it cannot end. `ALTER SYSTEM` and `pg_authid` are refused
 * to it by PostgreSQL itself, as on those services.
 */
export const MANAGED_ADMIN = 'cutover_admin';

/** The application role the managed sandboxes' clients write as (the provider's superuser sessions cannot be ended). */
export const MANAGED_APP_ROLE = 'cutover_app';
/** The provider-made replication role a PostgreSQL 15 source needs (only a superuser creates one before 16). */
export const MANAGED_REPLICATION_ROLE = 'cutover_repl';

export interface ManagedAdmin {
  user: string;
  password: string;
}

/** A superuser connection of the sandbox (the provider's side of the server). */
async function providerClient(sb: PostgresSandbox, database = 'postgres', application = 'provider'): Promise<pg.Client> {
  const c = new pg.Client({ host: sb.host, port: sb.port, user: sb.user, password: sb.password, database, application_name: application });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/**
 * Creates the admin: not a superuser; CREATEDB, CREATEROLE, REPLICATION; member of pg_signal_backend and
 * pg_monitor, pg_read_all_data (14+) and pg_create_subscription (16+). Idempotent on its name.
 */
export async function createManagedAdmin(sb: PostgresSandbox, password: string, user = MANAGED_ADMIN): Promise<ManagedAdmin> {
  const c = await providerClient(sb);
  try {
    const major = await serverMajor(c);
    const exists = (await c.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [user])).rows.length > 0;
    const attrs = `LOGIN NOSUPERUSER CREATEDB CREATEROLE REPLICATION PASSWORD ${quoteLiteral(password)}`;
    await c.query(`${exists ? 'ALTER' : 'CREATE'} ROLE ${quoteIdent(user)} WITH ${attrs}`);
    const roles = ['pg_signal_backend', 'pg_monitor', ...(major >= 14 ? ['pg_read_all_data'] : []), ...(major >= 16 ? ['pg_create_subscription'] : [])];
    await c.query(`GRANT ${roles.join(', ')} TO ${quoteIdent(user)}`);
    return { user, password };
  } finally {
    await c.end();
  }
}

/** A database owned by the admin, as a managed service's customer creates it. */
export async function createManagedDatabase(sb: PostgresSandbox, database: string, admin: ManagedAdmin): Promise<void> {
  const c = await adminClient(sb, admin, 'postgres');
  try {
    await c.query(`CREATE DATABASE ${quoteIdent(database)}`);
  } finally {
    await c.end();
  }
}

/** A connection as the admin. */
export async function adminClient(sb: PostgresSandbox, admin: ManagedAdmin, database: string, application = 'managed admin'): Promise<pg.Client> {
  const c = new pg.Client({ host: sb.host, port: sb.port, user: admin.user, password: admin.password, database, application_name: application });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** A session of the provider's own superuser on `database` (a monitoring agent, say), which the admin cannot end. */
export function providerSession(sb: PostgresSandbox, database: string): Promise<pg.Client> {
  return providerClient(sb, database, 'provider agent');
}

/**
 * The managed test profile on both sandboxes: the admin (no superuser) on each, the application role with its
 * password on each (the admin cannot read password hashes to copy it), and on the 15 source the provider-made
 * replication role (password: the sandbox superuser's, known only to the rehearsal).
 */
export async function managedSetup(src: PostgresSandbox, dst: PostgresSandbox, adminPassword: string, appPassword: string): Promise<ManagedAdmin> {
  let admin: ManagedAdmin | undefined;
  for (const sb of [src, dst]) {
    admin = await createManagedAdmin(sb, adminPassword);
    const c = await adminClient(sb, admin, 'postgres', 'cutover-rehearse');
    try {
      await c.query(`CREATE ROLE ${quoteIdent(MANAGED_APP_ROLE)} LOGIN PASSWORD ${quoteLiteral(appPassword)}`);
    } finally {
      await c.end();
    }
  }
  const c = await providerClient(src);
  try {
    await c.query(`CREATE ROLE ${quoteIdent(MANAGED_REPLICATION_ROLE)} LOGIN REPLICATION PASSWORD ${quoteLiteral(src.password)}`);
    await c.query(`GRANT pg_read_all_data TO ${quoteIdent(MANAGED_REPLICATION_ROLE)}`);
  } finally {
    await c.end();
  }
  return admin!;
}
