import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NeedsOperatorError, UsageError, isCutoverError } from '../errors.js';
import type { Plan, PlanSecrets } from '../plan/index.js';
import { planId } from '../plan/index.js';
import { writeFileAtomic, ensureDirDurably } from '../util/atomic-file.js';
import { redactText } from '../util/redact.js';
import { formatBytes, formatDuration } from '../util/units.js';
import { replayJournal, type JournalRecord } from './journal.js';
import { PlanLock } from './lock.js';
import { lastOkData, planPhase, type PlanPhase } from './phase.js';
import { resumePlan, rollbackPlan, runPlan, syncPlan, type CutoverEvent, type RollbackResult, type RunOptions } from './run.js';
import { openSessionFor, type PlanSession } from './session.js';
import { resolveTenants, tenantPlan, wavesOf } from './waves-plan.js';
import { CopyWindowGate, Gate, runPool } from './waves-pool.js';
import { WaveRouter } from './waves-router.js';
import { windowStats, type WindowStats } from './waves-stats.js';
import { runTransform } from './waves-transform.js';

/**
 * Where a tenant stands, from its own journal: pending (nothing yet), syncing, synced, in-flight (held or
 * fenced, or past its point of no return and not finished), done, failed (stopped before its fence), or
 * rolled-back (its fence lifted and its router entry left on the source after a failure or `--rollback`).
 */
export type TenantState = 'pending' | 'syncing' | 'synced' | 'in-flight' | 'done' | 'failed' | 'rolled-back';

export interface TenantOutcome {
  tenant: string;
  planId: string;
  state: TenantState;
  phase: PlanPhase;
  /** Hold to release as the tenant's writers saw it; absent when not measured (finished after a restart). */
  writeBlockedMs?: number;
  /** What this invocation did with it. */
  action: 'moved' | 'resumed' | 'skipped' | 'failed' | 'not-started';
  error?: { code: string; message: string; hint?: string; exitCode: number };
}

export interface WavesResult {
  planId: string;
  concurrency: number;
  tenants: TenantOutcome[];
  counts: Record<TenantState, number>;
  /** Write-blocked windows of the tenants moved (now or earlier) with a measured window. */
  windows: WindowStats;
  wallMs: number;
  /** stopAfterFailures was reached (or the operator interrupted): some tenants were not started. */
  stopped: boolean;
}

export type WaveEvent = CutoverEvent & { tenant?: string };

export interface WavesOptions extends Omit<RunOptions, 'onEvent' | 'beforePointOfNoReturn' | 'maxWriteBlockedMs' | 'dryRun'> {
  /** Overrides waves.concurrency. */
  concurrency?: number;
  onEvent?: (e: WaveEvent) => void;
  /** Test hook: apply `pauseAt` to this tenant only. */
  pauseTenant?: string;
}

const TENANTS_FILE = 'wave.json';
/** A tenant's last failure as the wave saw it: not every failure is a journal step (a transform, a lag wait). */
const LAST_ERROR_FILE = 'last-error.json';

function tenantsDir(plan: Plan): string {
  return join(plan.stateDir, 'tenants');
}

/** Tenants as the first run resolved them: a query may answer differently later, the wave must not. */
async function rememberedTenants(plan: Plan): Promise<string[] | undefined> {
  const text = await readFile(join(tenantsDir(plan), TENANTS_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const parsed = JSON.parse(text) as { tenants?: unknown };
  return Array.isArray(parsed.tenants) && parsed.tenants.every((t) => typeof t === 'string') ? (parsed.tenants as string[]) : undefined;
}

async function waveTenants(plan: Plan, secrets: PlanSecrets): Promise<string[]> {
  if (plan.scope.kind === 'tenants' && plan.scope.query) {
    const remembered = await rememberedTenants(plan);
    if (remembered) return remembered;
  }
  return resolveTenants(plan, secrets);
}

function stateOf(records: readonly JournalRecord[]): { state: TenantState; phase: PlanPhase } {
  const phase = planPhase(records);
  if (records.length === 0) return { state: 'pending', phase };
  if (phase === 'done') return { state: 'done', phase };
  if (phase === 'in-flight' || phase === 'past-pnr') return { state: 'in-flight', phase };
  const last = records.at(-1)!;
  if (last.step === 'route-back' && last.status === 'ok') return { state: 'rolled-back', phase };
  if (records.some((r) => r.status === 'fail') && last.status !== 'ok') return { state: 'failed', phase };
  if (phase === 'synced') return { state: 'synced', phase };
  return { state: last.status === 'fail' ? 'failed' : 'syncing', phase };
}

async function tenantRecords(plan: Plan, tenant: string): Promise<{ tp: Plan; id: string; records: JournalRecord[] }> {
  const tp = tenantPlan(plan, tenant);
  const id = planId(tp);
  return { tp, id, records: (await replayJournal(tp.stateDir, id)).records };
}

function measuredWindow(records: readonly JournalRecord[]): number | undefined {
  const ms = lastOkData(records, 'report')?.writeBlockedMs;
  // A tenant finished by resume after its point of no return reports 0: its window was not measured.
  return typeof ms === 'number' && ms > 0 ? ms : undefined;
}

function errorOf(e: unknown): NonNullable<TenantOutcome['error']> {
  if (isCutoverError(e)) return { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}), exitCode: e.exitCode };
  return { code: 'unexpected', message: e instanceof Error ? e.message : String(e), exitCode: 1 };
}

type TenantRow = Pick<TenantOutcome, 'state' | 'writeBlockedMs'>;

function tally(rows: readonly TenantRow[]): { counts: Record<TenantState, number>; windows: WindowStats } {
  const counts: Record<TenantState, number> = { pending: 0, syncing: 0, synced: 0, 'in-flight': 0, done: 0, failed: 0, 'rolled-back': 0 };
  for (const t of rows) counts[t.state]++;
  return { counts, windows: windowStats(rows.filter((t) => t.state === 'done' && t.writeBlockedMs !== undefined).map((t) => t.writeBlockedMs!)) };
}

/**
 * `cutover waves`: every tenant is its own cutover (sync, then run: hold, fence, catch-up, verify, transform,
 * switch, lift) with its own journal, lock and budget, `concurrency` at a time; no tenant's initial copy runs
 * while another tenant is in its run (see CopyWindowGate). A tenant that fails is rolled
 * back alone by its run; the wave goes on unless stopAfterFailures is reached. Run again after a crash: done
 * tenants are skipped, in-flight ones resumed, the rest moved.
 */
export async function runWaves(plan: Plan, secrets: PlanSecrets, opts: WavesOptions = {}): Promise<WavesResult> {
  const waves = wavesOf(plan);
  const id = planId(plan);
  const t0 = Date.now();
  const concurrency = opts.concurrency ?? waves.concurrency;
  await ensureDirDurably(tenantsDir(plan));
  // One wave process per plan; each tenant's own lock still guards against a hand-run `cutover run` on it.
  const lock = await PlanLock.acquire(plan.stateDir, id);
  try {
    const tenants = await waveTenants(plan, secrets);
    await writeFileAtomic(join(tenantsDir(plan), TENANTS_FILE), JSON.stringify({ planId: id, tenants }, null, 2) + '\n');
    const gate = new Gate();
    const phases = new CopyWindowGate();
    let failures = 0;
    let interrupted = false;
    opts.abort?.catch(() => (interrupted = true));
    const stop = () => interrupted || (waves.stopAfterFailures !== undefined && failures >= waves.stopAfterFailures);
    const emit = (tenant: string | undefined, step: string, status: CutoverEvent['status'], message: string) => opts.onEvent?.({ ...(tenant !== undefined ? { tenant } : {}), step, status, message });
    emit(undefined, 'wave', 'info', `${tenants.length} tenant(s), ${concurrency} at a time, budget ${formatDuration(waves.maxWriteBlockedPerTenantMs)} each`);
    let finished = 0;
    const outcomes = await runPool(
      tenants,
      concurrency,
      async (tenant) => {
        const o = await moveTenant(plan, secrets, tenant, gate, phases, opts);
        if (o.action === 'failed') failures++;
        finished++;
        emit(
          tenant,
          'wave',
          o.action === 'failed' ? 'fail' : 'ok',
          `${o.state}${o.writeBlockedMs !== undefined ? `, write-blocked ${formatDuration(o.writeBlockedMs)}` : ''}${o.error ? `: ${o.error.message}` : ''} (${finished}/${tenants.length})`,
        );
        return o;
      },
      stop,
    );
    const all = await Promise.all(
      tenants.map(async (tenant, i) => {
        const done = outcomes[i];
        if (done) return done;
        const { id: tid, records } = await tenantRecords(plan, tenant);
        return { tenant, planId: tid, ...stateOf(records), action: 'not-started' as const };
      }),
    );
    return { planId: id, concurrency, tenants: all, ...tally(all), wallMs: Date.now() - t0, stopped: outcomes.some((o) => o === undefined) };
  } finally {
    await lock.release();
  }
}

async function moveTenant(plan: Plan, secrets: PlanSecrets, tenant: string, gate: Gate, phases: CopyWindowGate, opts: WavesOptions): Promise<TenantOutcome> {
  const waves = wavesOf(plan);
  let tid = '';
  let s: PlanSession | undefined;
  try {
    const { tp, id, records } = await tenantRecords(plan, tenant);
    tid = id;
    const before = stateOf(records);
    if (before.state === 'done') return { tenant, planId: id, ...before, ...optionalWindow(measuredWindow(records)), action: 'skipped' };
    const opened = await openSessionFor(tp, id, secrets);
    s = { ...opened, router: opened.router && new WaveRouter(opened.router, gate) };
    const session = s;
    const transform = waves.transform;
    const runOpts: RunOptions = {
      onEvent: (e) => opts.onEvent?.({ ...e, tenant }),
      ...(opts.abort ? { abort: opts.abort } : {}),
      ...(opts.lagWaitMs !== undefined ? { lagWaitMs: opts.lagWaitMs } : {}),
      ...(opts.pauseAt && (opts.pauseTenant === undefined || opts.pauseTenant === tenant) ? { pauseAt: opts.pauseAt } : {}),
      ...(transform
        ? {
            beforePointOfNoReturn: async (deadline: number) => {
              opts.onEvent?.({ tenant, step: 'transform', status: 'info', message: `transform the target's copy of ${tenant}` });
              await runTransform(session, transform, tenant, deadline);
            },
          }
        : {}),
    };
    const resumed = before.phase === 'in-flight' || before.phase === 'past-pnr';
    // The run (hold to lift, and its resume) waits for other tenants' copies to end, and holds new ones back.
    let r;
    if (resumed) r = await phases.window(() => resumePlan(session, runOpts));
    else {
      if (before.phase === 'fresh') await phases.copy(() => syncPlan(session, runOpts));
      r = await phases.window(() => runPlan(session, runOpts));
    }
    return { tenant, planId: id, state: 'done', phase: 'done', ...optionalWindow(r.writeBlockedMs || undefined), action: resumed ? 'resumed' : 'moved' };
  } catch (e) {
    const dir = tenantPlan(plan, tenant).stateDir;
    const now = tid ? stateOf((await replayJournal(dir, tid)).records) : { state: 'failed' as const, phase: 'fresh' as const };
    const error = errorOf(e);
    error.message = redactText(error.message, secrets.all);
    await ensureDirDurably(dir);
    await writeFileAtomic(join(dir, LAST_ERROR_FILE), JSON.stringify({ at: new Date().toISOString(), message: error.message }) + '\n');
    return { tenant, planId: tid, ...now, action: 'failed', error };
  } finally {
    await s?.close().catch(() => {});
  }
}

function optionalWindow(ms: number | undefined): { writeBlockedMs?: number } {
  return ms !== undefined ? { writeBlockedMs: ms } : {};
}

async function readLastError(dir: string): Promise<string | undefined> {
  const text = await readFile(join(dir, LAST_ERROR_FILE), 'utf8').catch(() => undefined);
  const message = text === undefined ? undefined : (JSON.parse(text) as { message?: unknown }).message;
  return typeof message === 'string' ? message : undefined;
}

export interface WavesStatus {
  planId: string;
  tenants: Array<Omit<TenantOutcome, 'action'> & { lastError?: string }>;
  counts: Record<TenantState, number>;
  windows: WindowStats;
}

/** The tenants' table from their journals (no server is changed; a tenant query runs only before the first wave). */
export async function wavesStatus(plan: Plan, secrets: PlanSecrets): Promise<WavesStatus> {
  const tenants = await waveTenants(plan, secrets);
  const rows = await Promise.all(
    tenants.map(async (tenant) => {
      const { id, records } = await tenantRecords(plan, tenant);
      const st = stateOf(records);
      const lastError = st.state === 'done' ? undefined : await readLastError(tenantPlan(plan, tenant).stateDir);
      const error = lastError ? { lastError } : {};
      return { tenant, planId: id, ...st, ...optionalWindow(measuredWindow(records)), ...error };
    }),
  );
  return { planId: planId(plan), tenants: rows, ...tally(rows) };
}

/**
 * `cutover waves --rollback <tenant>`: before the tenant's point of no return its source is made writable
 * again and its router entry put back. After it the target has taken writes: refused, with what a move back
 * (a reverse cutover) costs.
 */
export async function rollbackTenant(plan: Plan, secrets: PlanSecrets, tenant: string, opts: { onEvent?: (e: WaveEvent) => void } = {}): Promise<RollbackResult & { tenant: string }> {
  const tenants = await waveTenants(plan, secrets);
  if (!tenants.includes(tenant)) throw new UsageError(`"${tenant}" is not a tenant of this plan`, `tenants: ${tenants.slice(0, 10).join(', ')}${tenants.length > 10 ? ', ...' : ''}`);
  const { tp, id, records } = await tenantRecords(plan, tenant);
  const { phase } = stateOf(records);
  if (records.length === 0) throw new UsageError(`tenant ${tenant} has not been started: there is nothing to roll back`, 'leave it out of scope.tenants if it must not move');
  if (phase === 'done' || phase === 'past-pnr') throw reverseCutoverNeeded(plan, tenant, records, phase);
  const s = await openSessionFor(tp, id, secrets);
  try {
    const r = await rollbackPlan(s, { onEvent: (e) => opts.onEvent?.({ ...e, tenant }) });
    return { ...r, tenant };
  } finally {
    await s.close();
  }
}

function reverseCutoverNeeded(plan: Plan, tenant: string, records: readonly JournalRecord[], phase: PlanPhase): NeedsOperatorError {
  const pnr = records.find((r) => r.step === 'point-of-no-return' && r.status === 'ok');
  const sync = lastOkData(records, 'sync');
  const bytes = typeof sync?.bytes === 'number' ? formatBytes(sync.bytes) : 'its data';
  const took = typeof sync?.durationMs === 'number' ? ` (the forward copy took ${formatDuration(sync.durationMs)})` : '';
  return new NeedsOperatorError(
    'needs-operator',
    `tenant ${tenant} passed its point of no return${pnr ? ` at ${pnr.at}` : ''}: the target has taken its writes since, and rolling back would lose them`,
    `${phase === 'past-pnr' ? 'finish it first with `cutover waves` (it resumes in-flight tenants); then ' : ''}moving it back is a reverse cutover: a one-tenant plan with source ${plan.target.host}:${plan.target.port} and target ${plan.source.host}:${plan.source.port}, ` +
      `after dropping or renaming the stale read-only copy of ${tenant} on ${plan.source.host}:${plan.source.port}; it copies ${bytes} again${took} and costs the tenant another write-blocked window of up to ${formatDuration(wavesOf(plan).maxWriteBlockedPerTenantMs)}`,
  );
}
