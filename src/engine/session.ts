import { PostgresCutover } from '../../adapters/postgres/postgres-cutover.js';
import { UsageError } from '../errors.js';
import { loadPlan, planId, resolvePlanSecrets, type Plan, type PlanSecrets } from '../plan/index.js';
import { parseDbUrl, type DbEndpoint } from '../util/db-url.js';
import type { CutoverAdapter } from './cutover-adapter.js';
import { replicationName } from '../../adapters/postgres/postgres-replication.js';
import type { Endpoint, Router } from './router.js';
import { createRouter } from '../../adapters/routers/create-router.js';

/** Everything one command needs for a plan: endpoints with their passwords, the adapter and the router. */
export interface PlanSession {
  plan: Plan;
  planId: string;
  secrets: PlanSecrets;
  database: string;
  source: DbEndpoint;
  target: DbEndpoint;
  adapter: CutoverAdapter;
  router: Router | undefined;
  close(): Promise<void>;
}

export interface SessionOptions {
  env: Record<string, string | undefined>;
}

export async function loadPlanFile(file: string, env: Record<string, string | undefined>): Promise<{ plan: Plan; planId: string; secrets: PlanSecrets }> {
  const plan = await loadPlan(file);
  return { plan, planId: planId(plan), secrets: resolvePlanSecrets(plan, env as NodeJS.ProcessEnv) };
}

/** The one database a plan moves (the per-tenant waves move many, one session each). */
export function planDatabase(plan: Plan): string {
  if (plan.scope.kind !== 'databases' || plan.scope.names.length !== 1) {
    throw new UsageError(`scope: run moves exactly one database (got ${plan.scope.kind}: ${plan.scope.names.join(', ')})`, 'use scope: { databases: [name] }; several tenants move with `cutover waves`');
  }
  return plan.scope.names[0]!;
}

export async function openSession(file: string, opts: SessionOptions): Promise<PlanSession> {
  const { plan, planId: id, secrets } = await loadPlanFile(file, opts.env);
  return openSessionFor(plan, id, secrets);
}

export async function openSessionFor(plan: Plan, id: string, secrets: PlanSecrets): Promise<PlanSession> {
  const database = planDatabase(plan);
  const source = { ...parseDbUrl(plan.source.url, secrets.source !== undefined ? { password: secrets.source } : {}), database };
  const target = { ...parseDbUrl(plan.target.url, secrets.target !== undefined ? { password: secrets.target } : {}), database };
  let adapter: CutoverAdapter;
  if (plan.engine === 'postgres') {
    adapter = await PostgresCutover.connect({
      source,
      target: { ...target, database: 'postgres' },
      database,
      method: plan.method,
      name: replicationName(id),
      sequenceGap: plan.sequences.gap,
      verify: plan.verify,
      lockTimeoutMs: plan.readOnly.lockTimeoutMs,
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
      verify: plan.verify,
      lockTimeoutMs: plan.readOnly.lockTimeoutMs,
    });
  }
  // kind none: the run fences and lifts only; no hold, no repoint.
  const router = plan.router.kind === 'none' ? undefined : createRouter(plan, secrets);
  return {
    plan,
    planId: id,
    secrets,
    database,
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

export function endpointOf(ep: DbEndpoint): Endpoint {
  return { host: ep.host, port: ep.port, ...(ep.database ? { database: ep.database } : {}) };
}
