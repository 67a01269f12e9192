import { dialectFor, engineCapabilities, openStateStore } from '../../adapters/registry.js';
import { UsageError } from '../errors.js';
import { loadPlan, planId, resolvePlanSecrets, type Plan, type PlanSecrets } from '../plan/index.js';
import { parseDbUrl, type DbEndpoint } from '../util/db-url.js';
import type { CutoverAdapter } from './cutover-adapter.js';
import type { Endpoint, Router } from './router.js';
import { createRouter } from '../../adapters/routers/create-router.js';
import type { SourceFence, TargetHold } from './fence.js';
import { planFences } from './plan-fences.js';
import { fileStateStore, type StateStore } from './state-store.js';

/** Everything one command needs for a plan: endpoints with their passwords, the adapter, the fences and the router. */
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
  /** The orchestrator fences the source and holds the target through these, never by URL. */
  sourceFence: SourceFence;
  targetHold: TargetHold;
  router: Router | undefined;
  /**
   * forward: the plan as written. revert: source and target swapped (`cutover revert`): the target already
   * follows the source through the reverse path, so the run never syncs.
   */
  direction: 'forward' | 'revert';
  /** Journal and lock: the state dir's files, or the control database (`state: postgres://...`). */
  state: StateStore;
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
 * The one database a plan moves, or the one schema of a database (named by source.url) on an engine with
 * schemas. The per-tenant waves move many, one session each.
 */
export function planScope(plan: Plan): { database: string; schema?: string } {
  const { kind, names } = plan.scope;
  const { schemaScope } = engineCapabilities(plan.engine);
  if (kind === 'databases' && names.length === 1) return { database: names[0]! };
  if (kind === 'schemas' && names.length === 1 && schemaScope) {
    if (!plan.source.database) throw new UsageError('scope.schemas: source.url must name the database that holds the schema', 'e.g. source: { url: postgres://user@host/app }');
    return { database: plan.source.database, schema: names[0]! };
  }
  throw new UsageError(
    `scope: run moves exactly one database${schemaScope ? ' or one schema' : ''} (got ${kind}: ${names.join(', ')})`,
    `use scope: { databases: [name] }${schemaScope ? ' or { schemas: [name] }' : ''}; several tenants move with \`cutover waves\``,
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

/**
 * The plan's state store: the file store for a state dir, else a connection to the control database. The caller
 * closes it (a wave opens one for all its tenants' sessions).
 */
export async function openPlanState(plan: Plan, secrets: PlanSecrets): Promise<StateStore> {
  if (!plan.stateDb) return fileStateStore;
  return openStateStore({ url: plan.stateDb.url, ...(secrets.state !== undefined ? { password: secrets.state } : {}) });
}

/** The plan id `cutover revert` runs under: its own journal, lock and replication objects. */
export function revertPlanId(planId: string): string {
  return `${planId}-revert`;
}

export async function openSessionFor(plan: Plan, id: string, secrets: PlanSecrets, opts: { state?: StateStore; direction?: PlanSession['direction'] } = {}): Promise<PlanSession> {
  const direction = opts.direction ?? 'forward';
  const { database, schema } = planScope(plan);
  const ownState = opts.state === undefined;
  const state = opts.state ?? (await openPlanState(plan, secrets));
  const source = { ...parseDbUrl(plan.source.url, secrets.source !== undefined ? { password: secrets.source } : {}), database };
  const target = { ...parseDbUrl(plan.target.url, secrets.target !== undefined ? { password: secrets.target } : {}), database };
  const dialect = await dialectFor(plan.engine);
  const { targetAdminDatabase } = dialect.capabilities;
  const adapter = await dialect
    .connectCutover({
      plan,
      planId: id,
      source,
      target: targetAdminDatabase !== undefined ? { ...target, database: targetAdminDatabase } : target,
      database,
      ...(schema !== undefined ? { schema } : {}),
      ...replicationAccount(plan, secrets),
      ...(secrets.rolePasswords ? { rolePasswords: secrets.rolePasswords } : {}),
      ...(plan.reverse && direction === 'forward' ? { reversePlanId: revertPlanId(id) } : {}),
    })
    .catch(async (e: unknown) => {
      if (ownState) await state.close().catch(() => {});
      throw e;
    });
  // kind none: the run fences and lifts only; no hold, no repoint.
  const router = plan.router.kind === 'none' ? undefined : createRouter(plan, secrets);
  const fences = planFences({ plan, secrets, database, ...(schema !== undefined ? { schema } : {}), adapter, state });
  return {
    plan,
    planId: id,
    secrets,
    database,
    ...(schema !== undefined ? { schema } : {}),
    source,
    target,
    adapter,
    ...fences,
    router,
    direction,
    state,
    async close() {
      await Promise.all([fences.sourceFence.close?.(), fences.targetHold.close?.()]).catch(() => {});
      await adapter.close();
      await router?.close().catch(() => {});
      if (ownState) await state.close().catch(() => {});
    },
  };
}

export function endpointOf(ep: DbEndpoint): Endpoint {
  return { host: ep.host, port: ep.port, ...(ep.database ? { database: ep.database } : {}) };
}
