import { PreflightError } from '../../src/errors.js';
import type { FenceOptions } from '../../src/readonly/types.js';
import type { PgClient } from './postgres-connection.js';

/**
 * The privilege profile of a PostgreSQL account. `superuser` does each step the direct way; `managed` is the
 * admin of a managed service (RDS/Aurora `rds_superuser`, Cloud SQL `cloudsqlsuperuser`, Azure `azure_pg_admin`,
 * Supabase, Neon): no superuser, no ALTER SYSTEM, no pg_authid, provider superuser sessions it cannot end. The
 * profile changes how a step is done, never whether it is safe: a step the account cannot do is refused before
 * anything changes, naming the privilege and how the provider grants it.
 */
export type PgProfile = 'superuser' | 'managed';

/** What the plan (or `readonly --privileges`) asks for. */
export type PrivilegeProfile = NonNullable<FenceOptions['privileges']>;

/** What the connected account holds, read from pg_roles (readable by every role). */
export interface PgPrivileges {
  user: string;
  major: number;
  superuser: boolean;
  createRole: boolean;
  createDb: boolean;
  replication: boolean;
  /** Member of pg_signal_backend: may end other non-superuser sessions. */
  signalBackend: boolean;
  /** Member of pg_monitor (or pg_read_all_stats): sees every session's state and transaction id. */
  monitor: boolean;
  /** PostgreSQL 16+: member of pg_create_subscription. */
  createSubscription: boolean;
}

export async function readPrivileges(c: PgClient): Promise<PgPrivileges> {
  const { rows } = await c.query<Omit<PgPrivileges, 'major'> & { n: number }>(
    `SELECT current_user AS "user", current_setting('server_version_num')::int AS n, r.rolsuper AS superuser,
            r.rolcreaterole AS "createRole", r.rolcreatedb AS "createDb", r.rolreplication AS replication,
            pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS "signalBackend",
            pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS monitor,
            EXISTS (SELECT 1 FROM pg_roles s WHERE s.rolname = 'pg_create_subscription' AND pg_has_role(current_user, s.oid, 'USAGE')) AS "createSubscription"
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const r = rows[0]!;
  return { ...r, major: Math.floor(r.n / 10000) };
}

/**
 * The profile a run uses: `auto` takes superuser when the account is one and managed otherwise; `managed` is
 * honoured on a superuser too (a rehearsal of a managed run); `superuser` on an account that is not one is refused.
 */
export function resolveProfile(requested: PrivilegeProfile | undefined, p: PgPrivileges, where: string, doing: string): PgProfile {
  if (requested === 'managed') return 'managed';
  if (p.superuser) return 'superuser';
  if (requested === 'superuser')
    throw new PreflightError(
      'privilege',
      `role "${p.user}" is not a superuser on ${where}: ${doing} was asked to run with privileges: superuser`,
      'connect as a superuser, or set privileges: managed (or auto) to run as a managed service admin',
    );
  return 'managed';
}

/**
 * How managed services grant what a step needs; each line is the provider's own documented way. Error
 * fixes quote the lines that apply, so an operator on any of them knows where to look.
 */
export const PROVIDER_WAYS = {
  logicalDecoding:
    'self-hosted: wal_level = logical (restart); RDS/Aurora: rds.logical_replication = 1 in the parameter group (reboot); Cloud SQL: flag cloudsql.logical_decoding = on; Azure Flexible Server: server parameter wal_level = logical (restart); Neon: enable logical replication in the project settings',
  replication: 'ALTER ROLE <admin> WITH REPLICATION (self-hosted, Cloud SQL, Azure Flexible Server); RDS/Aurora: GRANT rds_replication TO <admin>',
  signalBackend: 'GRANT pg_signal_backend TO <admin> (RDS rds_superuser, Cloud SQL cloudsqlsuperuser and Azure azure_pg_admin admins can grant it)',
  createRole:
    'the provider admin has CREATEROLE (RDS rds_superuser, Cloud SQL cloudsqlsuperuser, Azure azure_pg_admin); on PostgreSQL 16+ it must also hold ADMIN OPTION on the role, which it has for the roles it created',
  databaseOwner: 'ALTER DATABASE <db> OWNER TO <admin> (run by the current owner or the provider admin)',
  createSubscription: 'PostgreSQL 16+: GRANT pg_create_subscription TO <admin>, plus CREATE on the target database; before 16 CREATE SUBSCRIPTION needs a superuser',
  monitor: "GRANT pg_monitor TO <admin>: without it other roles' sessions show no state or transaction id",
  extensions: 'Azure Flexible Server: allow-list the extension in the server parameter azure.extensions first; RDS, Cloud SQL, Supabase and Neon offer their supported extensions to the admin directly',
} as const;

/** A privilege the managed profile lacks for a step: the error names the privilege and the provider's way to get it. */
export function missingPrivilege(p: PgPrivileges, where: string, what: string, needed: string, way: string): PreflightError {
  return new PreflightError('privilege', `role "${p.user}" on ${where} lacks ${needed}: ${what} needs it (privileges: managed)`, way);
}
