import type { Engine } from '../util/db-url.js';
import type { CatchUpProof } from '../engine/cutover-adapter.js';
import type { TenantState } from '../engine/waves.js';
import type { WindowStats } from '../engine/waves-stats.js';
import type { CopyMethod } from '../plan/types.js';
import type { KeptServers } from './rehearsal-kit.js';

/** The stages of a rehearsal, in order; a task list shows one line per stage. */
export const REHEARSE_PHASES = ['servers', 'data', 'workload', 'sync', 'cutover', 'drain', 'revert', 'verify', 'teardown'] as const;
export type RehearsePhase = (typeof REHEARSE_PHASES)[number];

/** The privilege profile a sandbox rehearsal runs the cutover with. */
export type RehearsalPrivileges = 'superuser' | 'managed';

export interface RehearseEvent {
  phase: RehearsePhase;
  /** `skip`: the stage does not apply to this rehearsal (e.g. no sandboxes with --plan). */
  status: 'begin' | 'ok' | 'fail' | 'info' | 'skip';
  message: string;
}

export interface RehearseOptions {
  /** Sandbox engine: PostgreSQL 15 → 18 behind PgBouncer, or MariaDB → MariaDB behind HAProxy. */
  engine?: Engine;
  /**
   * Rehearse a wave instead of one cutover: this many tenant databases on the sandbox source, one PgBouncer
   * `[databases]` entry each, moved by `cutover waves` code while the clients write to random tenants.
   */
  tenants?: number;
  /**
   * After the cutover and some writes on the new primary, `cutover revert` back to the old source (plan
   * `reverse`); every acknowledged write of both phases is then looked up on the old source. Sandboxes only, on
   * an engine with reverse replication.
   */
  revert?: boolean;
  /** Rows of sample data in the sandbox source (ignored with `plan`; with `tenants`, spread over them). */
  rows?: number;
  /** Concurrent writers; half as many readers (at least one) run beside them. */
  clients?: number;
  /**
   * The privilege profile of the sandbox rehearsal: `managed` builds the servers with the managed test profile
   * (an admin without superuser, the provider's superuser on the side) and runs the cutover as that admin.
   * Default `superuser`. With `plan`, the plan's own `privileges` key decides.
   */
  privileges?: RehearsalPrivileges;
  /** Leave the sandbox servers running; the report says how to reach them. */
  keep?: boolean;
  /**
   * A plan file: rehearse against those servers instead of sandboxes. This is a real cutover of that
   * database; the workload writes into a table it creates on the source and drops on the target at the end.
   */
  plan?: string;
  /** Where plan passwords are read from (`passwordEnv` names). */
  env?: Record<string, string | undefined>;
  /** Overrides limits.maxWriteBlocked of the plan. */
  maxWriteBlockedMs?: number;
  /** Workload time before the sync starts and after the lift, so the charts show steady state on both sides. */
  settleMs?: number;
  onEvent?: (e: RehearseEvent) => void;
  /** Rejects when the operator interrupts: the cutover then restores the source before it returns. */
  abort?: Promise<never>;
}

export interface ReportStep {
  name: string;
  phase: RehearsePhase;
  /** ms since the rehearsal started. */
  startMs: number;
  endMs: number;
  durationMs: number;
}

/** A moment of the cutover drawn on the latency timeline. */
export interface ReportMark {
  name: 'hold' | 'fence' | 'point-of-no-return' | 'lift';
  atMs: number;
}

/** Per-client worst latency per time bucket: enough to draw the timeline without keeping every operation. */
export interface LatencySeries {
  client: number;
  kind: 'write' | 'read';
  /** Worst latency (ms) of operations that started in each bucket; null where the client started none. */
  maxLatencyMs: Array<number | null>;
  /** Indexes of buckets with a failed or in-doubt operation. */
  errorBuckets: number[];
}

export interface RehearseReport {
  ok: boolean;
  mode: 'sandbox' | 'plan';
  engine: Engine;
  planId: string;
  /**
   * The privilege profile the cutover ran with: the sandbox's (`superuser`, or `managed`: as an admin without
   * superuser), or with a plan the plan's `privileges` key (`auto` lets each server's account decide).
   */
  privileges: RehearsalPrivileges | 'auto';
  startedAt: string;
  durationMs: number;
  source: { server: string; version: string };
  target: { server: string; version: string };
  router: string;
  clients: { writers: number; readers: number };
  /** Longest span without an acknowledged write, as the clients saw it. */
  writeBlockedMs: number;
  /** Longest span without a successful read, as the clients saw it. */
  readBlockedMs: number;
  /** The cutover's own measure: fence to lift. */
  fenceToLiftMs: number;
  budgetMs: number;
  copy: {
    method: CopyMethod;
    tables: number;
    bytes: number;
    /** Rows in the moved tables at verify time (row counts); null when the plan verifies without counting. */
    rows: number | null;
    durationMs: number;
    bytesPerSecond: number;
    rowsPerSecond: number | null;
    /** Sample rows loaded into the sandbox source; null with --plan. */
    sampleRows: number | null;
  };
  steps: ReportStep[];
  marks: ReportMark[];
  fence: { terminated: number; drained: number; leakClean: boolean };
  catchUp: Pick<CatchUpProof, 'method' | 'waitedMs'>;
  verify: { mode: 'none' | 'rowcounts' | 'checksums'; tables: number; mismatches: number };
  workload: {
    startMs: number;
    endMs: number;
    writes: { ok: number; failed: number; inDoubt: number };
    reads: { ok: number; failed: number };
    bucketMs: number;
    latency: LatencySeries[];
  };
  /** Failed or in-doubt client operations (expected 0); `errors` lists the first few. */
  clientErrors: number;
  errors: string[];
  acknowledgedWrites: number;
  verifiedWrites: number;
  missingWrites: string[];
  warnings: string[];
  /** With `revert`: the window of the way back (the top-level window figures are the forward cutover's). */
  revert?: RevertReport;
  /** With `tenants`: the wave and each tenant's write-blocked window. */
  tenants?: TenantsReport;
  /** With `keep`: URLs and commands to reach the servers (passwords only in the 0600 passfile) and to stop them. */
  kept?: KeptServers;
}

/** `rehearse --revert`: the revert's own window, measured like the forward one. */
export interface RevertReport {
  /** Longest span without an acknowledged write during the revert, as the clients saw it. */
  writeBlockedMs: number;
  /** Longest span without a successful read during the revert. */
  readBlockedMs: number;
  /** The revert's own measure: fence (of the new primary) to lift (of the old source). */
  fenceToLiftMs: number;
  budgetMs: number;
  catchUp: Pick<CatchUpProof, 'method' | 'waitedMs'>;
  /** The revert's hold and lift on the rehearsal clock; null when not reached. */
  holdAtMs: number | null;
  liftAtMs: number | null;
  /** Acknowledged writes made while the new primary was the primary (after the forward lift, before the revert's hold). */
  writesOnNewPrimary: number;
}

export interface TenantWindow {
  tenant: string;
  state: TenantState;
  /** Hold to release as the wave measured it; null when the tenant did not finish. */
  writeBlockedMs: number | null;
  /** The tenant's hold and lift on the rehearsal clock (ms since it started); null when not reached. */
  holdAtMs: number | null;
  liftAtMs: number | null;
  /** Longest span without an acknowledged write to this tenant, as its clients saw it. */
  clientWriteGapMs: number;
  acknowledgedWrites: number;
}

export interface TenantsReport {
  count: number;
  concurrency: number;
  done: number;
  budgetMs: number;
  /** Per-tenant write-blocked windows (hold to release) of the tenants moved. */
  windows: WindowStats;
  list: TenantWindow[];
}
