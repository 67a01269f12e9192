import { randomBytes } from 'node:crypto';

/**
 * The account a plan's replication link logs in with on the source: named after the plan id's hash, the same on
 * every run of it, and short enough for MySQL (32 characters) as for PostgreSQL.
 */
export function replicationAccountName(replicationName: string): string {
  return `cutover_repl_${replicationName.slice(-12)}`;
}

/** A random password for that account: it lives in the target's replication configuration until cleanup. */
export function randomReplicationPassword(): string {
  return randomBytes(24).toString('base64url');
}
