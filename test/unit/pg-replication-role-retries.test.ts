import { describe, expect, it } from 'vitest';
import { dropReplicationRole } from '../../adapters/postgres/postgres-replication-role.js';

/** A source whose first `failures` DROP OWNED statements fail as PostgreSQL does when a catalog row changed under them. */
function source(failures: number, message = 'tuple concurrently deleted') {
  const seen: string[] = [];
  let left = failures;
  const client = {
    query: async (sql: string) => {
      seen.push(sql.split(' ').slice(0, 2).join(' '));
      if (sql.startsWith('SELECT 1 FROM pg_roles')) return { rows: [{}] };
      if (sql.startsWith('DROP OWNED') && left-- > 0) throw Object.assign(new Error(message), { code: 'XX000' });
      return { rows: [] };
    },
  };
  return { client: client as never, seen };
}

describe('dropping the replication role while other plans change the same catalogs', () => {
  it('retries the whole transaction after "tuple concurrently deleted"', async () => {
    const { client, seen } = source(2);
    expect(await dropReplicationRole(client, 'cutover_repl_x')).toBe(true);
    expect(seen.filter((s) => s === 'ROLLBACK')).toHaveLength(2);
    expect(seen.slice(-4)).toEqual(['SELECT pg_advisory_xact_lock($1)', 'DROP OWNED', 'DROP ROLE', 'COMMIT']);
  });

  it('retries after "cache lookup failed for namespace": an object the role had a privilege on was dropped meanwhile', async () => {
    const { client, seen } = source(1, 'cache lookup failed for namespace 17647');
    expect(await dropReplicationRole(client, 'cutover_repl_x')).toBe(true);
    expect(seen.filter((s) => s === 'ROLLBACK')).toHaveLength(1);
    expect(seen.slice(-2)).toEqual(['DROP ROLE', 'COMMIT']);
  });

  it('gives up after five attempts, and never retries another error', async () => {
    await expect(dropReplicationRole(source(9).client, 'r')).rejects.toThrow(/tuple concurrently deleted/);
    const other = source(1, 'role "r" cannot be dropped because some objects depend on it');
    await expect(dropReplicationRole(other.client, 'r')).rejects.toThrow(/cannot be dropped/);
    expect(other.seen.filter((s) => s === 'BEGIN')).toHaveLength(1);
  });
});
