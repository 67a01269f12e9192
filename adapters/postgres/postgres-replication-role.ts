import type { Leftover } from '../../src/engine/cutover-adapter.js';
import type { PgClient } from './postgres-connection.js';
import { scramVerifier } from './postgres-scram.js';
import { quoteIdent, quoteLiteral } from './postgres-sql.js';

/**
 * Plans running at once on one server (waves of schema tenants) grant on the same database and tool schema:
 * concurrent GRANTs on one object fail with "tuple concurrently updated". One transaction-scoped advisory lock
 * per server serialises the tool's grants and revokes (a few milliseconds each).
 */
const GRANTS_LOCK = 0x6375_7476;

/**
 * PostgreSQL's internal errors when a catalog row it updates was changed by a transaction that committed meanwhile,
 * or when an object a role holds privileges on was dropped meanwhile (DROP OWNED read the role's privilege on the
 * tool schema, another tenant's cleanup dropped that schema, then the revoke looked it up: "cache lookup failed for
 * namespace N", once in a CI run of 20 schema tenants at concurrency 4).
 */
const CONCURRENT_CATALOG_CHANGE = /tuple concurrently (updated|deleted)|cache lookup failed for (namespace|relation) \d+/;
const CATALOG_RETRIES = 5;

/**
 * The tool's grants, revokes and role drops under the lock, each transaction retried when a catalog row it touches
 * was changed by another session that does not take the lock (seen once in 20 schema tenants at concurrency 4: a
 * DROP OWNED failed with "tuple concurrently deleted" while other tenants cleaned up). The statements are
 * idempotent within the retried transaction, which rolled back whole.
 */
async function underGrantsLock(src: PgClient, fn: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await src.query('BEGIN');
    try {
      await src.query('SELECT pg_advisory_xact_lock($1)', [GRANTS_LOCK]);
      await fn();
      await src.query('COMMIT');
      return;
    } catch (e) {
      await src.query('ROLLBACK').catch(() => {});
      if (attempt >= CATALOG_RETRIES || !CONCURRENT_CATALOG_CHANGE.test(String((e as Error).message))) throw e;
      await new Promise((r) => setTimeout(r, 20 * attempt));
    }
  }
}

/**
 * Creates (or gives a new password to) the plan's replication role: LOGIN REPLICATION, CONNECT on the database,
 * USAGE on the published tables' schemas and SELECT on those tables — what the subscription's initial copy and
 * its walsender need, nothing else.
 */
export async function ensureReplicationRole(src: PgClient, role: string, password: string, database: string, publication: string): Promise<void> {
  await underGrantsLock(src, () => createAndGrant(src, role, password, database, publication));
}

async function createAndGrant(src: PgClient, role: string, password: string, database: string, publication: string): Promise<void> {
  const exists = (await src.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [role])).rows.length > 0;
  const verifier = quoteLiteral(scramVerifier(password));
  await src.query(exists ? `ALTER ROLE ${quoteIdent(role)} LOGIN REPLICATION PASSWORD ${verifier}` : `CREATE ROLE ${quoteIdent(role)} LOGIN REPLICATION PASSWORD ${verifier}`);
  await src.query(`GRANT CONNECT ON DATABASE ${quoteIdent(database)} TO ${quoteIdent(role)}`);
  const { rows } = await src.query<{ s: string; t: string }>(`SELECT quote_ident(schemaname) AS s, format('%I.%I', schemaname, tablename) AS t FROM pg_publication_tables WHERE pubname = $1`, [publication]);
  for (const schema of new Set(rows.map((r) => r.s))) await src.query(`GRANT USAGE ON SCHEMA ${schema} TO ${quoteIdent(role)}`);
  if (rows.length > 0) await src.query(`GRANT SELECT ON ${rows.map((r) => r.t).join(', ')} TO ${quoteIdent(role)}`);
}

/** Drops the role and its grants (in the connected database, and on the database itself). False when absent. */
export async function dropReplicationRole(src: PgClient, role: string): Promise<boolean> {
  if ((await src.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [role])).rows.length === 0) return false;
  await underGrantsLock(src, async () => {
    await src.query(`DROP OWNED BY ${quoteIdent(role)}`);
    await src.query(`DROP ROLE ${quoteIdent(role)}`);
  });
  return true;
}

export async function replicationRoleLeftover(src: PgClient, role: string): Promise<Leftover[]> {
  if ((await src.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [role])).rows.length === 0) return [];
  return [{ where: 'source', kind: 'replication role', name: role, drop: `DROP OWNED BY ${quoteIdent(role)}; DROP ROLE ${quoteIdent(role)};`, retainsWal: false }];
}
