/** The public API of cutover. The CLI uses exactly this. */
import type { Finding, SyncSummary } from './engine/cutover-adapter.js';
import { preflightFindings, resumePlan, rollbackPlan, runPlan, syncPlan, type CutoverEvent, type LockOptions, type RollbackResult, type RunOptions, type RunResult } from './engine/run.js';
import { loadPlanFile, openSessionFor, type PlanInput, type PlanSession } from './engine/session.js';
import { checkWave, rollbackTenant, runWaves, tenantOfWave, wavesStatus as wavesStatusOf, type WavesOptions, type WavesResult, type WavesStatus } from './engine/waves.js';
import type { Plan, PlanSecrets } from './plan/index.js';
import { planStatus, type PlanStatus } from './engine/status.js';
import { finalizePlan, openRevertSession, revertPlan, rollbackRevert, type FinalizeResult, type RevertOptions } from './engine/revert.js';
import { UsageError } from './errors.js';
import { verifyPlan, type OnlineVerifyOptions, type OnlineVerifyReport } from './engine/verify-online.js';
import { rehearse as rehearseOn } from './rehearse/rehearse.js';
import type { RehearseOptions, RehearseReport } from './rehearse/types.js';

export { readOnlyOn, readOnlyOff, readOnlyStatus, READ_ONLY_DEFAULTS, describeLeak, describeLeakedTransaction, type ReadOnlyOptions } from './readonly/readonly.js';
export type * from './readonly/types.js';
export * from './errors.js';
export { loadPlan, parsePlan, planId, PLAN_DEFAULTS } from './plan/index.js';
export type * from './plan/types.js';
export type * from './plan/plan-document.js';
export type { PlanInput } from './engine/session.js';
export { parseDbUrl, urlHasPassword, type DbEndpoint, type Engine } from './util/db-url.js';
export { passwordFromEnv, resolveUrlPassword, unsetPasswordEnvError, type UrlPassword } from './plan/secrets.js';
export { redactUrl, redactText, redactDeep } from './util/redact.js';
export { parseDuration, parseSize } from './util/units.js';
export { PostgresSandbox, type PostgresSandboxOptions } from '../adapters/postgres/postgres-sandbox.js';
export { stopAllSandboxes, installSandboxCleanup } from './sandbox/registry.js';
export { REHEARSAL_TABLE } from './rehearse/rehearse.js';
export { REHEARSE_PHASES, type RehearseOptions, type RehearseReport, type RehearseEvent, type RehearsePhase, type ReportStep, type ReportMark, type LatencySeries, type RehearsalPrivileges } from './rehearse/types.js';
export { renderHtmlReport } from './report/html.js';
export type { Finding, SyncSummary, CatchUpProof, VerifyReport, TableCheck, Leftover, DetachResult } from './engine/cutover-adapter.js';
export { type OnlineVerifyReport, type OnlineVerifyOptions } from './engine/verify-online.js';
export { type AfterSwitchVerifyReport } from './engine/verify-after.js';
export type { ChunkCheck, ChunkRange } from './engine/cutover-adapter.js';
export { type CutoverEvent, type LockOptions, type RunResult, type RollbackResult, type StepTiming } from './engine/run.js';
export type { PlanStatus } from './engine/status.js';
export type { FinalizeResult, RevertOptions } from './engine/revert.js';
export type { ReverseState } from './engine/cutover-adapter.js';
export type { WavesResult, WavesStatus, WavesOptions, TenantOutcome, TenantRevert, TenantState, WaveEvent } from './engine/waves.js';
export { percentile, windowStats, type WindowStats } from './engine/waves-stats.js';

/** What every plan command takes besides the plan file. */
export interface PlanCommandOptions {
  /** Where the plan's `passwordEnv` variables are looked up (default: process.env). */
  env?: Record<string, string | undefined>;
  /**
   * Called once the plan is read, before any server is contacted: its id, its warnings, and the secrets it
   * resolved, so a caller that prints can scrub them from its output.
   */
  onOpen?: (info: { planId: string; warnings: string[]; secrets: readonly string[] }) => void;
}

export interface CheckResult {
  planId: string;
  findings: Finding[];
  /** Findings that stop `run` (and make the CLI's `check` exit 3). */
  blockers: number;
}

export type CutoverRunOptions = PlanCommandOptions & RunOptions;
export type RollbackOptions = PlanCommandOptions & LockOptions & { cleanup?: boolean; onEvent?: (e: CutoverEvent) => void };

type LoadedPlan = Awaited<ReturnType<typeof loadPlanFile>>;

async function withPlan<T>(file: PlanInput, opts: PlanCommandOptions, fn: (s: PlanSession) => Promise<T>): Promise<T> {
  return withLoadedPlan(await loadPlanFile(file, opts.env ?? process.env), opts, fn);
}

async function withLoadedPlan<T>({ plan, planId, secrets }: LoadedPlan, opts: PlanCommandOptions, fn: (s: PlanSession) => Promise<T>): Promise<T> {
  const s = await openSessionFor(plan, planId, secrets);
  try {
    opts.onOpen?.({ planId: s.planId, warnings: s.plan.warnings, secrets: s.secrets.all });
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** Preflight findings for a plan; changes nothing. `schema`: also compare the source's and target's schemas. */
export async function check(plan: PlanInput, opts: PlanCommandOptions & { schema?: boolean } = {}): Promise<CheckResult> {
  const loaded = await loadPlanFile(plan, opts.env ?? process.env);
  if (loaded.plan.scope.kind === 'tenants') {
    // A waves plan: every tenant not yet moved, as its run will check it.
    return withLoadedWavesPlan(loaded, opts, async (p, secrets) => {
      const r = await checkWave(p, secrets);
      const findings: Finding[] = [
        { severity: 'info', check: 'tenants', message: `${r.tenants} tenant(s) checked${r.skipped.length ? `; not checked (done or in flight): ${r.skipped.join(', ')}` : ''}`, why: '—', fix: '—' },
        ...r.findings,
      ];
      return { planId: loaded.planId, findings, blockers: findings.filter((f) => f.severity === 'blocker').length };
    });
  }
  return withLoadedPlan(loaded, opts, async (s) => {
    const findings = await preflightFindings(s);
    if (opts.schema) findings.push(...((await s.adapter.schemaDrift?.()) ?? [{ severity: 'info', check: 'schema drift', message: `not compared for ${s.plan.engine}`, why: '—', fix: '—' }]));
    return { planId: s.planId, findings, blockers: findings.filter((f) => f.severity === 'blocker').length };
  });
}

/** Schema and data to the target, replication running; the target stays read-only to applications. */
export async function sync(plan: PlanInput, opts: PlanCommandOptions & LockOptions & Pick<RunOptions, 'onEvent' | 'abort'> = {}): Promise<SyncSummary> {
  return withPlan(plan, opts, (s) => syncPlan(s, opts));
}

/** The cutover: hold, fence, catch up, verify, switch, lift, within the write-downtime budget. */
export async function run(plan: PlanInput, opts: CutoverRunOptions = {}): Promise<RunResult> {
  return withPlan(plan, opts, (s) => runPlan(s, opts));
}

/** After a crash: forward past the point of no return, else restore the source and run again. */
export async function resume(plan: PlanInput, opts: CutoverRunOptions = {}): Promise<RunResult> {
  return withPlan(plan, opts, (s) => resumePlan(s, opts));
}

/**
 * The online verify on its own: every table in primary-key chunks, source and target at one consistent point of
 * the replication stream; resumable (the state dir records the chunks done). Between `sync` and `run`.
 */
export async function verify(plan: PlanInput, opts: PlanCommandOptions & OnlineVerifyOptions = {}): Promise<OnlineVerifyReport> {
  return withPlan(plan, opts, (s) => verifyPlan(s, opts));
}

/** A waves plan's status: every tenant's state, marked so it tells itself apart from a one-database `PlanStatus`. */
export type WavesPlanStatus = { kind: 'waves' } & WavesStatus;

/**
 * Journal, lock, fence state, lag and leftovers of a plan; for a waves plan (`scope.tenants`), every tenant's
 * state instead (`kind: 'waves'`, as `wavesStatus`).
 */
export async function status(plan: PlanInput, opts: PlanCommandOptions = {}): Promise<PlanStatus | WavesPlanStatus> {
  const loaded = await loadPlanFile(plan, opts.env ?? process.env);
  if (loaded.plan.scope.kind === 'tenants') return { kind: 'waves', ...(await withLoadedWavesPlan(loaded, opts, wavesStatusOf)) };
  return withLoadedPlan(loaded, opts, (s) => planStatus(s));
}

export type RevertCommandOptions = CutoverRunOptions &
  RevertOptions & {
    rollback?: boolean;
    /** A waves plan: the tenant to move back (its own plan, as the wave ran it); the other tenants are not touched. */
    tenant?: string;
  };

/** The one-database plan a revert or finalize acts on: the plan itself, or one tenant's plan of a waves plan. */
async function onePlanOf(loaded: LoadedPlan, tenant: string | undefined, command: 'revert' | 'finalize'): Promise<LoadedPlan> {
  if (loaded.plan.scope.kind !== 'tenants') {
    if (tenant !== undefined) throw new UsageError(`--tenant applies to a waves plan (scope.tenants); plan ${loaded.planId} moves one database`, `cutover ${command} <plan> without --tenant`);
    return loaded;
  }
  if (tenant === undefined) throw new UsageError(`${command} of a waves plan acts on one tenant: name it`, `cutover ${command} <plan> --tenant <name> --yes`);
  return { ...(await tenantOfWave(loaded.plan, loaded.secrets, tenant)), secrets: loaded.secrets };
}

/**
 * After a cutover with plan `reverse`: go back to the old source over the reverse path, by the same guarded
 * sequence (hold, fence the new primary, sentinel, sequences, repoint, lift); `resume` continues an interrupted
 * revert, `rollback` puts the new primary back before the revert's point of no return.
 */
export async function revert(plan: PlanInput, opts: RevertCommandOptions = {}): Promise<RunResult | (RollbackResult & { action: 'rollback' })> {
  const { plan: p, planId: id, secrets } = await onePlanOf(await loadPlanFile(plan, opts.env ?? process.env), opts.tenant, 'revert');
  if (!p.reverse) throw new UsageError(`plan ${id} has reverse: false, so the old source did not follow the new primary: there is nothing to revert over`, 'moving back is a new cutover with source and target swapped');
  const rs = await openRevertSession(p, id, secrets);
  try {
    opts.onOpen?.({ planId: rs.planId, warnings: rs.plan.warnings, secrets: rs.secrets.all });
    if (opts.rollback) return { action: 'rollback', ...(await rollbackRevert(rs, opts)) };
    return await revertPlan(rs, id, opts);
  } finally {
    await rs.close();
  }
}

/** Keeps the cutover for good: ends the reverse path and drops its objects (subscription, slot, publication, role). */
export async function finalize(plan: PlanInput, opts: PlanCommandOptions & LockOptions & { tenant?: string } = {}): Promise<FinalizeResult> {
  const loaded = await onePlanOf(await loadPlanFile(plan, opts.env ?? process.env), opts.tenant, 'finalize');
  return withLoadedPlan(loaded, opts, async (s) => {
    // The revert's session too: finalize takes the revert's lock on the new primary, so the two never interleave.
    const rs = await openRevertSession(loaded.plan, loaded.planId, loaded.secrets);
    try {
      return await finalizePlan(s, rs, opts);
    } finally {
      await rs.close();
    }
  });
}

/** Before the point of no return: the source writable again and routing back on it. */
export async function rollback(plan: PlanInput, opts: RollbackOptions = {}): Promise<RollbackResult> {
  return withPlan(plan, opts, (s) => rollbackPlan(s, opts));
}

async function withWavesPlan<T>(file: PlanInput, opts: PlanCommandOptions, fn: (plan: Plan, secrets: PlanSecrets) => Promise<T>): Promise<T> {
  return withLoadedWavesPlan(await loadPlanFile(file, opts.env ?? process.env), opts, fn);
}

async function withLoadedWavesPlan<T>({ plan, planId, secrets }: LoadedPlan, opts: PlanCommandOptions, fn: (plan: Plan, secrets: PlanSecrets) => Promise<T>): Promise<T> {
  opts.onOpen?.({ planId, warnings: plan.warnings, secrets: secrets.all });
  return fn(plan, secrets);
}

/** Whether a plan moves tenants (`scope.tenants`, run with `waves`) rather than one database. */
export async function isWavesPlan(plan: PlanInput, opts: Pick<PlanCommandOptions, 'env'> = {}): Promise<boolean> {
  const { plan: p } = await loadPlanFile(plan, opts.env ?? process.env);
  return p.scope.kind === 'tenants';
}

/**
 * Per-tenant waves: each tenant database is its own cutover (own journal, lock, budget and router entry),
 * `concurrency` at a time; a failed tenant is rolled back alone. Run again after a crash to continue.
 */
export async function waves(plan: PlanInput, opts: PlanCommandOptions & WavesOptions = {}): Promise<WavesResult> {
  return withWavesPlan(plan, opts, (p, secrets) => runWaves(p, secrets, opts));
}

/** Every tenant's state and write-blocked window, from their journals. */
export async function wavesStatus(plan: PlanInput, opts: PlanCommandOptions = {}): Promise<WavesStatus> {
  return withWavesPlan(plan, opts, (p, secrets) => wavesStatusOf(p, secrets));
}

/** One tenant back on its source, before its point of no return (after it: refused, see the hint). */
export async function wavesRollback(plan: PlanInput, tenant: string, opts: PlanCommandOptions & Pick<WavesOptions, 'onEvent'> = {}): Promise<RollbackResult & { tenant: string }> {
  return withWavesPlan(plan, opts, (p, secrets) => rollbackTenant(p, secrets, tenant, opts));
}

/**
 * A full cutover under a synthetic workload, measured: on throw-away PostgreSQL 15 → 17 servers behind
 * PgBouncer (or MariaDB behind HAProxy), or on the servers of `opts.plan` (a real cutover of that
 * database). Plan passwords come from `opts.env` (default: process.env).
 */
export async function rehearse(opts: RehearseOptions = {}): Promise<RehearseReport> {
  return rehearseOn({ env: process.env, ...opts });
}
