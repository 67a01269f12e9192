import type { TenantQueryRequest, TenantQueryResult } from '../../src/engine/dialect.js';
import { UsageError } from '../../src/errors.js';
import { connectPg, mapPgError } from './postgres-connection.js';

/** PostgreSQL types whose values are names as text (text, name, varchar, bpchar). */
const TEXT_TYPE_OIDS = new Set([25, 19, 1043, 1042]);

/**
 * Runs the plan's tenant query on the source in a read-only transaction (it lists tenants and must not change
 * anything, whatever it says) and returns its one text column. Schema tenants are listed in their database
 * (pg_namespace is per database).
 */
export async function queryPostgresTenants({ source, query, database, timeoutMs }: TenantQueryRequest): Promise<TenantQueryResult> {
  const what = database !== undefined ? 'schema' : 'database';
  const c = await connectPg(source, { applicationName: 'cutover', ...(database !== undefined ? { database } : {}) });
  let result;
  try {
    await c.query('BEGIN TRANSACTION READ ONLY');
    await c.query(`SET LOCAL statement_timeout = ${timeoutMs}`);
    // The extended protocol takes exactly one statement: nothing after a `;` runs, whatever plan validation let
    // by. (queryMode is in pg's runtime since 8.13, not in its typings.)
    const extended = { text: query, rowMode: 'array' as const, queryMode: 'extended' };
    result = await c.query<unknown[]>(extended);
    await c.query('COMMIT');
  } catch (e) {
    throw mapPgError(e, source, 'scope.tenants.query');
  } finally {
    await c.end().catch(() => {});
  }
  const example = database !== undefined ? "e.g. SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant_%'" : "e.g. SELECT datname FROM pg_database WHERE datname LIKE 'tenant_%'";
  if (result.fields.length !== 1) throw new UsageError(`scope.tenants.query returned ${result.fields.length} columns; it must return one text column of ${what} names`, example);
  const field = result.fields[0]!;
  const castHint = `${example}, or cast: SELECT x::text`;
  if (!TEXT_TYPE_OIDS.has(field.dataTypeID)) throw new UsageError(`scope.tenants.query: column "${field.name}" is not text (type oid ${field.dataTypeID}); it must return ${what} names`, castHint);
  return { values: result.rows.map((row) => row[0]), notTextHint: castHint };
}
