import type { Engine } from '../util/db-url.js';
import type { Plan } from '../plan/index.js';
import type { WorkloadOp, WorkloadResult } from '../sandbox/workload.js';
import type { RehearsalPrivileges } from './types.js';

/** The database the sandbox source holds the sample data in. */
export const SAMPLE_DATABASE = 'shop';

/** Where a client connects; the password travels beside the URL, never in it. */
export interface KitEndpoint {
  host: string;
  port: number;
  user: string;
  password?: string;
  database?: string;
}

export interface KitWorkloadOptions {
  writers: number;
  readers: number;
  table: string;
  thinkMs: number;
}

/** Called as each sandbox server comes up: what it is and the directory it lives in. */
export type OnSandboxStarted = (label: string, dir: string) => void;

/**
 * What the rehearsal needs from an engine, besides the cutover adapter: throw-away servers, a synthetic
 * application, and the few statements that set up and check its table. One implementation per engine.
 */
export interface RehearsalKit {
  readonly engine: Engine;
  /** Product name for headlines. */
  readonly product: string;
  startWorkload(to: KitEndpoint & { database: string }, opts: KitWorkloadOptions): { stop(): Promise<WorkloadResult> };
  serverVersion(ep: KitEndpoint): Promise<string>;
  /** Drops a leftover of an earlier rehearsal and creates the workload table afresh. */
  recreateTable(ep: KitEndpoint & { database: string }, table: string): Promise<void>;
  dropTable(ep: KitEndpoint & { database: string }, table: string): Promise<void>;
  /** `client:seq` of every row in the workload table. */
  keys(ep: KitEndpoint & { database: string }, table: string): Promise<string[]>;
  /**
   * Source, target and a router in front of the source; if one fails to start, the others are stopped. With
   * `managed`, the servers get the engine's managed test profile and the plan connects as its admin.
   */
  readonly startSandboxes: (onStarted: OnSandboxStarted, privileges: RehearsalPrivileges) => Promise<SandboxSet>;
  /** `n` tenant databases behind one router, for a rehearsed wave; absent where the engine rehearses none. */
  readonly startTenantSandboxes?: (n: number, onStarted: OnSandboxStarted, privileges: RehearsalPrivileges) => Promise<TenantSandboxSet>;
}

/** Throw-away servers for one engine: source, target and a router in front of the source. */
export interface SandboxSet {
  loadSample(rows: number, table: string): Promise<void>;
  /** The plan the rehearsal runs, and the private env map holding the passwords it names. */
  plan(maxWriteBlocked: string): Promise<SandboxPlan>;
  /** Where the workload connects (through the router) and how to describe it. */
  readonly via: { endpoint: KitEndpoint & { database: string }; router: string };
  /** For --keep: URLs, shell commands to connect (passwords in a 0600 file) and to stop each server. */
  kept(): Promise<KeptServers>;
  stop(): Promise<void>;
}

/** Throw-away servers for a wave: a source with one database per tenant, a target, and a router entry per tenant. */
export interface TenantSandboxSet {
  tenants: string[];
  source: KitEndpoint;
  target: KitEndpoint;
  routerLabel: string;
  loadSample(rowsPerTenant: number, table: string): Promise<void>;
  /** The waves plan of the rehearsal, and the private env map holding the passwords it names. */
  plan(maxWriteBlockedPerTenant: string): Promise<SandboxPlan>;
  /** Clients on random tenants through the router; `tenantOf` says which tenant an operation went to. */
  startWorkload(opts: KitWorkloadOptions): { tenantOf(op: Pick<WorkloadOp, 'kind' | 'client' | 'seq'>): string | undefined; stop(): Promise<WorkloadResult> };
  stop(): Promise<void>;
}

/** A sandbox plan names its passwords' variables; their values live only in `env`, private to the rehearsal. */
export interface SandboxPlan {
  plan: Plan;
  env: Record<string, string>;
}

export interface KeptServers {
  source: string;
  target: string;
  router: string;
  passfile: string;
  connect: { source: string; target: string; router: string };
  stopCommands: string[];
}

/** A shell command that stops a daemon by its pid file, waits for it to exit, then removes its dir. */
export function stopByPidCommand(pidFile: string, dir: string): string {
  return `pid=$(cat ${pidFile}) && kill $pid && while kill -0 $pid 2>/dev/null; do sleep 0.2; done; rm -rf ${dir}`;
}
