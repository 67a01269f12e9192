import type { RehearsalKit } from '../rehearse/rehearsal-kit.js';
import type { Plan } from '../plan/index.js';
import type { ReadOnlyAdapter, ReadOnlyScope } from '../readonly/types.js';
import type { DbEndpoint, Engine } from '../util/db-url.js';
import type { CutoverAdapter } from './cutover-adapter.js';

/** What a tenant of `cutover waves` is: a database of the server, or a schema of one database. */
export type TenantKind = 'database' | 'schema';

/**
 * What an engine supports, known without connecting and without loading its driver: the plan parser and
 * the orchestrator ask these instead of comparing engine names. `adapters/dialect-capabilities.ts` fills in
 * the defaults a new engine starts from.
 */
export interface EngineCapabilities {
  /** The read-only fence scopes the engine has; the first is the plan's default. */
  readOnlyScopes: readonly ReadOnlyScope[];
  /** Fence scopes whose leak check may overlap the catch-up (ReadOnlyAdapter.watchLeaks). Default: none. */
  leakWatchScopes: readonly ReadOnlyScope[];
  /** A database holds schemas of its own: scope.schemas moves one, and a schema fence covers one. Default false. */
  schemaScope: boolean;
  /** What the tenants of `cutover waves` can be. Default: databases. */
  tenantKinds: readonly TenantKind[];
  /** Waves copy each tenant inside its own fence window (`method: dump` only). Default true. */
  wavesNeedDump: boolean;
  /**
   * Waves by replication run every tenant through one replication stream into the target (the wave's replica
   * connection, which a tenant joins at its copy's position), instead of one per tenant. Default false.
   */
  waveStream: boolean;
  /** `tables: { keyless: ... }` applies (tables without a key under logical replication). Default false. */
  keylessTables: boolean;
  /** `accounts: copy | check | skip` applies (sync copies the database's accounts). Default false. */
  copiesAccounts: boolean;
  /** `copy: { jobs, splitTablesLargerThan }` applies (a parallel initial copy). Default false. */
  parallelCopy: boolean;
  /** `verify: { after: chunks }` applies (a compare of the frozen source with the target as of the switch). Default false. */
  verifyAfterSwitch: boolean;
  /** `cdc: { slots, plugin }` applies: logical slots of CDC consumers handed over to the target at the switch. Default false. */
  cdcSlots: boolean;
  /** After the point of no return the old source can follow the new primary (plan `reverse`, `cutover revert`). Default false. */
  reverseReplication: boolean;
  /** `roles: { passwordEnv }` applies: sync gives the login roles it creates their passwords from the plan. Default false. */
  rolePasswords: boolean;
  /** The URL schemes (as parsed engines) the plan's endpoints may use. */
  urlEngines: readonly Engine[];
  /** A connection URL for error hints, e.g. postgres://app@10.0.0.1:5432/shop. */
  urlExample: string;
  /** The client tools' usual password variable (PGPASSWORD), when the engine has one. */
  passwordEnv?: string;
  /** The product's name for headlines: PostgreSQL, MySQL, MariaDB. */
  product: string;
  /** The database the cutover adapter's target connection opens (the maintenance database); absent: the one that moves. */
  targetAdminDatabase?: string;
  /**
   * What `cutover rehearse` can do on this engine: `sandboxes` says which throw-away servers `--engine` starts;
   * `plans`: `--plan` rehearses on a plan's servers; `tenants`: `--tenants` rehearses a wave. Absent: no rehearsal.
   */
  rehearsal?: { sandboxes: string; plans: boolean; tenants: boolean };
}

/** What the cutover adapter of one plan connects to. */
export interface CutoverConnectRequest {
  plan: Plan;
  planId: string;
  source: DbEndpoint;
  /** The target, at `targetAdminDatabase` when the engine has one. */
  target: DbEndpoint;
  /** The database that moves, or that holds the schema that moves. */
  database: string;
  schema?: string;
  /** The plan's own replication account; absent: the adapter creates a short-lived one. */
  replicationAccount?: { user: string; password: string };
  /** Passwords of login roles sync creates (plan `roles.passwordEnv`, resolved), by role. */
  rolePasswords?: Record<string, string>;
  /** Set when the plan keeps a reverse path (plan `reverse`): the plan id `cutover revert` runs under, which names its objects. */
  reversePlanId?: string;
}

export interface TenantQueryRequest {
  source: DbEndpoint;
  query: string;
  /** The database that holds schema tenants (the query runs there); absent: tenants are databases. */
  database?: string;
  timeoutMs: number;
}

/** The one column a tenant query returned. */
export interface TenantQueryResult {
  values: unknown[];
  /** The hint for a value that is not text: an example query and how to cast in this engine's SQL. */
  notTextHint: string;
}

export interface SqlTransformRequest {
  target: DbEndpoint;
  database: string;
  /** A schema tenant: the transform's unqualified names are this schema's. */
  schema?: string;
  sql: string;
  /** What is left of the tenant's write-downtime budget. */
  timeoutMs: number;
  /** Says what ran, for the error: e.g. `transform x.sql on tenant t1`. */
  doing: string;
}

export interface TransformCommandRequest {
  target: DbEndpoint;
  database: string;
  schema?: string;
  /** Where a client option file may be written (the plan's state dir). */
  dir: string;
}

/** How a transform command reaches the target: env for the command, and what to remove after it ran. */
export interface TransformCommandConnection {
  env: Record<string, string | undefined>;
  dispose(): Promise<void>;
}

/**
 * One engine: its capabilities and the factories of everything engine-specific the orchestrator uses.
 * `dialectFor(engine)` in adapters/registry.ts loads it (and its driver) on first use.
 */
export interface Dialect {
  readonly engine: Engine;
  readonly capabilities: EngineCapabilities;
  connectCutover(req: CutoverConnectRequest): Promise<CutoverAdapter>;
  connectReadOnly(ep: DbEndpoint, lockTimeoutMs: number): Promise<ReadOnlyAdapter>;
  /** Runs a plan's tenant query on the source, read-only, and returns its one column. */
  queryTenants(req: TenantQueryRequest): Promise<TenantQueryResult>;
  /** Runs a transform file on the target's copy of one tenant; failures are OperationErrors saying what stays where. */
  runSqlTransform(req: SqlTransformRequest): Promise<void>;
  /** The target's connection settings for a transform command, never in argv. */
  transformCommandConnection(req: TransformCommandRequest): Promise<TransformCommandConnection>;
  /** The rehearsal's synthetic application and sandboxes (engines whose capabilities name a rehearsal). */
  rehearsalKit?(): Promise<RehearsalKit>;
}
