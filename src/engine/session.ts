import { PostgresCutover } from '../../adapters/postgres/postgres-cutover.js';
import { UsageError } from '../errors.js';
import { loadPlan, planId, resolvePlanSecrets, type Plan, type PlanSecrets } from '../plan/index.js';
import { parseDbUrl, type DbEndpoint } from '../util/db-url.js';
import type { CutoverAdapter } from './cutover-adapter.js';
import { replicationName } from '../../adapters/postgres/postgres-replication.js';
import { leakSlotName } from '../../adapters/postgres/postgres-leak-decoding.js';
import type { Endpoint, Router } from './router.js';
import { createRouter } from '../../adapters/routers/create-router.js';

/** Everything one command needs for a plan: endpoints with their passwords, the adapter and the router. */
export interface PlanSession {
  plan: Plan;
  planId: string;
  secrets: PlanSecrets;
  /** The database that moves, or that holds the schema that moves. */
  database: string;
  /** Set when one schema of `database` moves (schema tenants of `cutover waves`, or scope.schemas). */
  schema?: string;
  source: DbEndpoint;
  target: DbEndpoint;
  adapter: CutoverAdapter;
  router: Router | undefined;
  close(): Promise<void>;
}

export interface SessionOptions {
  env: Record<string, string | undefined>;
}

/** A plan as the library takes it: a parsed `Plan` (see `parsePlan`) or the path of a plan file. */
export type PlanInput = Plan | string;

export async function loadPlanFile(input: PlanInput, env: Record<string, string | undefined>): Promise<{ plan: Plan; planId: string; secrets: PlanSecrets }> {
  const plan = typeof input === 'string' ? await loadPlan(input) : input;
  return { plan, planId: planId(plan), secrets: resolvePlanSecrets(plan, env as NodeJS.ProcessEnv) };
}

/**
 * The one database a plan moves, or the one schema of a PostgreSQL database (named by source.url). The
 * per-tenant waves move many, one session each.
 */
export function planScope(plan: Plan): { database: string; schema?: string } {
  const { kind, names } = plan.scope;
  if (kind === 'databases' && names.length === 1) return { database: names[0]! };
  if (kind === 'schemas' && names.length === 1 && plan.engine === 'postgres') {
    if (!plan.source.database) throw new UsageError('scope.schemas: source.url must name the database that holds the schema', 'e.g. source: { url: postgres://user@host/app }');
    return { database: plan.source.database, schema: names[0]! };
  }
  throw new UsageError(
    `scope: run moves exactly one database${plan.engine === 'postgres' ? ' or one schema' : ''} (got ${kind}: ${names.join(', ')})`,
    `use scope: { databases: [name] }${plan.engine === 'postgres' ? ' or { schemas: [name] }' : ''}; several tenants move with \`cutover waves\``,
  );
}

/** The plan's own replication account, when it names one (else the adapter creates a short-lived one). */
function replicationAccount(plan: Plan, secrets: PlanSecrets): { replicationAccount?: { user: string; password: string } } {
  const r = plan.source.replication;
  return r && secrets.replication !== undefined ? { replicationAccount: { user: r.user, password: secrets.replication } } : {};
}

export async function openSession(input: PlanInput, opts: SessionOptions): Promise<PlanSession> {
  const { plan, planId: id, secrets } = await loadPlanFile(input, opts.env);
  return openSessionFor(plan, id, secrets);
}

export async function openSessionFor(plan: Plan, id: string, secrets: PlanSecrets): Promise<PlanSession> {
  const { database, schema } = planScope(plan);
  const source = { ...parseDbUrl(plan.source.url, secrets.source !== undefined ? { password: secrets.source } : {}), database };
  const target = { ...parseDbUrl(plan.target.url, secrets.target !== undefined ? { password: secrets.target } : {}), database };
  let adapter: CutoverAdapter;
  if (plan.engine === 'postgres') {
    adapter = await PostgresCutover.connect({
      source,
      target: { ...target, database: 'postgres' },
      database,
      ...(schema !== undefined ? { schema } : {}),
      method: plan.method,
      name: replicationName(id),
      ...replicationAccount(plan, secrets),
      sequenceGap: plan.sequences.gap,
      verify: plan.verify,
      lockTimeoutMs: plan.readOnly.lockTimeoutMs,
      ...(plan.tables ? { keyless: plan.tables.keyless } : {}),
      ...(plan.copy?.jobs !== undefined ? { copyJobs: plan.copy.jobs } : {}),
      ...(plan.copy ? { copySplitBytes: plan.copy.splitAboveBytes } : {}),
      // Decoding reads one database: only a database-scope fence uses the slot.
      ...(plan.readOnly.scope === 'database' ? { leakSlot: leakSlotName(replicationName(id)) } : {}),
    });
  } else {
    // Loaded on demand so PostgreSQL-only use never loads the MySQL driver.
    const { MysqlCutover } = await import('../../adapters/mysql/mysql-cutover.js');
    const { replicaConnectionName } = await import('../../adapters/mysql/mysql-replication.js');
    adapter = await MysqlCutover.connect({
      source,
      target,
      database,
      method: plan.method,
      name: replicaConnectionName(id),
      ...replicationAccount(plan, secrets),
      verify: plan.verify,
      lockTimeoutMs: plan.readOnly.lockTimeoutMs,
      accounts: plan.accounts,
      namedAccounts: plan.readOnly.roles,
      fence: { scope: plan.readOnly.scope, mode: plan.readOnly.mode, roles: plan.readOnly.roles },
    });
  }
  // kind none: the run fences and lifts only; no hold, no repoint.
  const router = plan.router.kind === 'none' ? undefined : createRouter(plan, secrets);
  return {
    plan,
    planId: id,
    secrets,
    database,
    ...(schema !== undefined ? { schema } : {}),
    source,
    target,
    adapter,
    router,
    async close() {
      await adapter.close();
      await router?.close().catch(() => {});
    },
  };
}

/** The name of what the source fence covers: the plan's readOnly.name, or the database or schema that moves. */
export function sourceFenceName(s: Pick<PlanSession, 'plan' | 'database' | 'schema'>): { name?: string } {
  const ro = s.plan.readOnly;
  if (ro.name !== undefined) return { name: ro.name };
  if (ro.scope === 'database') return { name: s.database };
  if (ro.scope === 'schema' && s.schema !== undefined) return { name: s.schema };
  return {};
}

export function endpointOf(ep: DbEndpoint): Endpoint {
  return { host: ep.host, port: ep.port, ...(ep.database ? { database: ep.database } : {}) };
}
