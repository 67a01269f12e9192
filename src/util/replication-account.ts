import { randomBytes } from 'node:crypto';

/** Every per-plan replication account starts with it: the tool's own, never carried to the target. */
export const REPLICATION_ACCOUNT_PREFIX = 'cutover_repl_';

/**
 * The account a plan's replication link logs in with on the source: named after the plan id's hash, the same on
 * every run of it, and short enough for MySQL (32 characters) as for PostgreSQL.
 */
export function replicationAccountName(replicationName: string): string {
  return `${REPLICATION_ACCOUNT_PREFIX}${replicationName.slice(-12)}`;
}

/** A random password for that account: it lives in the target's replication configuration until cleanup. */
export function randomReplicationPassword(): string {
  return randomBytes(24).toString('base64url');
}
