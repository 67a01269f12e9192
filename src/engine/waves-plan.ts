import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { connectPg, mapPgError } from '../../adapters/postgres/postgres-connection.js';
import { UsageError } from '../errors.js';
import { planId, type Plan, type PlanSecrets, type PlanWaves } from '../plan/index.js';
import { parseDbUrl } from '../util/db-url.js';

/** PostgreSQL types whose values are names as text (text, name, varchar, bpchar). */
const TEXT_TYPE_OIDS = new Set([25, 19, 1043, 1042]);
const QUERY_TIMEOUT_MS = 30_000;

/** The waves settings of a plan; a plan without `scope.tenants` is not a waves plan. */
export function wavesOf(plan: Plan): PlanWaves {
  if (plan.scope.kind !== 'tenants' || !plan.waves) {
    throw new UsageError(`scope: waves move tenants (got ${plan.scope.kind}: ${plan.scope.names.join(', ')})`, 'use scope: { tenants: [a, b] } (or { tenants: { query: "SELECT ..." } }); one database moves with `cutover run`');
  }
  return plan.waves;
}

/** A directory name for a tenant: the name itself when it is plain, else a readable label plus a hash (no clashes, no `..`). */
export function tenantDirName(tenant: string): string {
  if (/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/.test(tenant)) return tenant;
  const label = tenant.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 40);
  return `${label}~${createHash('sha256').update(tenant).digest('hex').slice(0, 10)}`;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** The database that holds the plan's schema tenants; undefined when each tenant is a database. */
export function tenantsDatabase(plan: Plan): string | undefined {
  return plan.scope.kind === 'tenants' ? plan.scope.database : undefined;
}

/**
 * The single-database (or single-schema) plan of one tenant: the same servers with the tenant's database, the
 * router entry of the tenant, its own state dir (own journal and lock) and the per-tenant budget. Run, resume
 * and rollback treat it exactly like a plan written by hand. A schema tenant fences its schema only; its
 * router entry is a PgBouncer alias named after it that points at the shared database.
 */
export function tenantPlan(plan: Plan, tenant: string): Plan {
  const waves = wavesOf(plan);
  const router = plan.router;
  if (router.kind !== 'pgbouncer' && router.kind !== 'none') {
    throw new UsageError(`router.kind ${router.kind}: waves route each tenant through its own PgBouncer [databases] entry`, 'use router.kind pgbouncer (one entry per tenant) or none');
  }
  const { waves: _waves, ...rest } = plan;
  const { name: _name, ...readOnly } = plan.readOnly;
  const database = tenantsDatabase(plan) ?? tenant;
  const schemaTenant = tenantsDatabase(plan) !== undefined;
  return {
    ...rest,
    source: { ...plan.source, url: withDatabase(plan.source.url, database), database },
    target: { ...plan.target, url: withDatabase(plan.target.url, database), database },
    scope: schemaTenant ? { kind: 'schemas', names: [tenant] } : { kind: 'databases', names: [tenant] },
    // The fence names the tenant's database or schema (derived from the scope); other scopes would fence every tenant.
    readOnly: { ...readOnly, scope: schemaTenant ? 'schema' : 'database' },
    limits: { ...plan.limits, maxWriteBlockedMs: waves.maxWriteBlockedPerTenantMs },
    router: router.kind === 'pgbouncer' ? { ...router, database: tenant } : router,
    stateDir: join(plan.stateDir, 'tenants', tenantDirName(tenant)),
  };
}

export function tenantPlanId(plan: Plan, tenant: string): string {
  return planId(tenantPlan(plan, tenant));
}

/** The tenants in wave order: as listed (or as the query returned them), or sorted by name. */
export function orderTenants(names: readonly string[], order: PlanWaves['order']): string[] {
  return order === 'name' ? [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) : [...names];
}

/** The plan's tenants in wave order; a `query` runs on the source, read-only, and must return one text column of distinct names. */
export async function resolveTenants(plan: Plan, secrets: PlanSecrets): Promise<string[]> {
  const waves = wavesOf(plan);
  const names = plan.scope.kind === 'tenants' && plan.scope.query ? await queryTenants(plan, plan.scope.query, secrets) : plan.scope.names;
  return orderTenants(names, waves.order);
}

async function queryTenants(plan: Plan, query: string, secrets: PlanSecrets): Promise<string[]> {
  if (plan.engine !== 'postgres') throw new UsageError(`scope.tenants.query: a tenant query runs on PostgreSQL only in this version (engine ${plan.engine})`, 'list the tenants: scope: { tenants: [a, b] }');
  const ep = parseDbUrl(plan.source.url, secrets.source !== undefined ? { password: secrets.source } : {});
  const database = tenantsDatabase(plan);
  const what = database !== undefined ? 'schema' : 'database';
  // Schema tenants are listed in their database (pg_namespace is per database).
  const c = await connectPg(ep, { applicationName: 'cutover', ...(database !== undefined ? { database } : {}) });
  let result;
  try {
    // A read-only transaction: the query lists tenants and must not change anything, whatever it says.
    await c.query('BEGIN TRANSACTION READ ONLY');
    await c.query(`SET LOCAL statement_timeout = ${QUERY_TIMEOUT_MS}`);
    result = await c.query<unknown[]>({ text: query, rowMode: 'array' });
    await c.query('COMMIT');
  } catch (e) {
    throw mapPgError(e, ep, 'scope.tenants.query');
  } finally {
    await c.end().catch(() => {});
  }
  const fix = database !== undefined ? "e.g. SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant_%'" : "e.g. SELECT datname FROM pg_database WHERE datname LIKE 'tenant_%'";
  if (result.fields.length !== 1) throw new UsageError(`scope.tenants.query returned ${result.fields.length} columns; it must return one text column of ${what} names`, fix);
  const field = result.fields[0]!;
  if (!TEXT_TYPE_OIDS.has(field.dataTypeID)) throw new UsageError(`scope.tenants.query: column "${field.name}" is not text (type oid ${field.dataTypeID}); it must return ${what} names`, `${fix}, or cast: SELECT x::text`);
  const names: string[] = [];
  result.rows.forEach((row, i) => {
    const v = row[0];
    if (typeof v !== 'string' || v === '' || v.includes('\0')) throw new UsageError(`scope.tenants.query: row ${i + 1} is ${v === null ? 'NULL' : 'empty'}, not a ${what} name`, 'filter NULLs and empty names out in the query');
    if (names.includes(v)) throw new UsageError(`scope.tenants.query: "${v}" is returned twice`, 'use SELECT DISTINCT');
    names.push(v);
  });
  if (names.length === 0) throw new UsageError('scope.tenants.query returned no tenants', 'check the query on the source');
  return names;
}
