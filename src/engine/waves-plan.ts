import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { dialectFor } from '../../adapters/registry.js';
import { UsageError } from '../errors.js';
import { planId, type Plan, type PlanSecrets, type PlanWaves, type RouterConfig } from '../plan/index.js';
import { parseDbUrl } from '../util/db-url.js';
import type { TenantKind, TenantQueryResult } from './dialect.js';

const QUERY_TIMEOUT_MS = 30_000;

/** The waves settings of a plan; a plan without `scope.tenants` is not a waves plan. */
export function wavesOf(plan: Plan): PlanWaves {
  if (plan.scope.kind !== 'tenants' || !plan.waves) {
    throw new UsageError(
      `scope: waves move tenants (got ${plan.scope.kind}: ${plan.scope.names.join(', ')})`,
      'use scope: { tenants: [a, b] } (or { tenants: { query: "SELECT ..." } }); one database moves with `cutover run`',
    );
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
 * and rollback treat it exactly like a plan written by hand. A schema tenant (PostgreSQL) fences its schema
 * only; its router entry is a PgBouncer alias named after it that points at the shared database.
 */
export function tenantPlan(plan: Plan, tenant: string): Plan {
  const waves = wavesOf(plan);
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
    router: tenantRouter(plan.router, tenant),
    stateDir: join(plan.stateDir, 'tenants', tenantDirName(tenant)),
    wave: { planId: planId(plan) },
  };
}

/**
 * The router config of one tenant. Each kind needs a per-tenant handle: PgBouncer an entry named like the
 * tenant database, the file router the tenant's entry in one JSON map, the exec command CUTOVER_TENANT.
 * HAProxy routes by server, not by database, so it cannot move one tenant alone.
 */
export function tenantRouter(router: RouterConfig, tenant: string): RouterConfig {
  switch (router.kind) {
    case 'none':
      return router;
    case 'pgbouncer':
      return { ...router, database: tenant };
    case 'file':
      if (router.format !== 'json')
        throw new UsageError(`router.format ${router.format}: waves keep every tenant's endpoint in one file, as a JSON map of tenant → endpoint`, 'use router: { kind: file, path: ..., format: json }');
      return { ...router, tenant };
    case 'exec':
      return { ...router, tenant };
    case 'haproxy':
      throw new UsageError(
        'router.kind haproxy: HAProxy routes a whole server, not one tenant database',
        'use router.kind file (a JSON map tenant → endpoint), exec (gets CUTOVER_TENANT), pgbouncer (PostgreSQL) or none',
      );
  }
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
  const source = parseDbUrl(plan.source.url, secrets.source !== undefined ? { password: secrets.source } : {});
  const database = tenantsDatabase(plan);
  const dialect = await dialectFor(plan.engine);
  const column = await dialect.queryTenants({ source, query, ...(database !== undefined ? { database } : {}), timeoutMs: QUERY_TIMEOUT_MS });
  return tenantNames(column, database !== undefined ? 'schema' : 'database');
}

/** The values a tenant query returned, as tenant names: distinct, non-NULL, non-empty text. */
function tenantNames({ values, notTextHint }: TenantQueryResult, what: TenantKind): string[] {
  const names: string[] = [];
  const seen = new Set<string>();
  values.forEach((v, i) => {
    if (v !== null && typeof v !== 'string') throw new UsageError(`scope.tenants.query: row ${i + 1} is not text`, notTextHint);
    if (typeof v !== 'string' || v === '' || v.includes('\0'))
      throw new UsageError(`scope.tenants.query: row ${i + 1} is ${v === null ? 'NULL' : 'empty'}, not a ${what} name`, 'filter NULLs and empty names out in the query');
    if (seen.has(v)) throw new UsageError(`scope.tenants.query: "${v}" is returned twice`, 'use SELECT DISTINCT');
    names.push(v);
    seen.add(v);
  });
  if (names.length === 0) throw new UsageError('scope.tenants.query returned no tenants', 'check the query on the source');
  return names;
}
