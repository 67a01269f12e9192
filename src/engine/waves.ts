import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NeedsOperatorError, UsageError, isCutoverError } from '../errors.js';
import type { Plan, PlanSecrets } from '../plan/index.js';
import { planId } from '../plan/index.js';
import { writeFileAtomic, ensureDirDurably } from '../util/atomic-file.js';
import { redactText } from '../util/redact.js';
import { formatBytes, formatDuration } from '../util/units.js';
import type { JournalRecord } from './journal.js';
import { PlanLock } from './lock.js';
import { finalized, lastOkData, planPhase, type PlanPhase } from './phase.js';
import type { Finding } from './cutover-adapter.js';
import { preflightFindings, resumePlan, rollbackPlan, runPlan, syncPlan, type CutoverEvent, type RollbackResult, type RunOptions } from './run.js';
import { openPlanState, openSessionFor, revertPlanId, type PlanSession } from './session.js';
import type { StateStore, WaveCoordinator, WaveRunnerRow, WaveTenantRow } from './state-store.js';
import { sleep } from '../util/sleep.js';
import { resolveTenants, tenantPlan, tenantPlanId, wavesOf } from './waves-plan.js';
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
  /** What this invocation did with it; `elsewhere`: another runner of a shared wave (control database) took it. */
  action: 'moved' | 'resumed' | 'skipped' | 'failed' | 'not-started' | 'elsewhere';
  error?: { code: string; message: string; hint?: string; exitCode: number };
  /** The tenant's run warnings (e.g. sessions its fence could not end), as `cutover run` reports them. */
  warnings?: string[];
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
  /** With a control database: this runner's id in the shared wave. */
  runner?: string;
  /** With a control database: how many tenants this runner worked at once (`concurrency` is the wave's, over every runner). */
  runnerConcurrency?: number;
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

async function tenantRecords(plan: Plan, tenant: string, store: StateStore): Promise<{ tp: Plan; id: string; records: JournalRecord[] }> {
  const tp = tenantPlan(plan, tenant);
  const id = planId(tp);
  return { tp, id, records: (await store.replay(tp.stateDir, id)).records };
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

/** How many tenants `check` looks at side by side (each opens its own sessions to both servers). */
const CHECK_LANES = 4;

/**
 * `cutover check` of a waves plan: each tenant's preflight as its run would make it (a synced tenant as synced),
 * the tenants already done or in flight left out. A finding every checked tenant makes the same way (a server
 * setting) is listed once; the others name their tenants.
 */
export async function checkWave(plan: Plan, secrets: PlanSecrets): Promise<{ findings: Finding[]; tenants: number; skipped: string[] }> {
  const store = await openPlanState(plan, secrets);
  try {
    const tenants = await waveTenants(plan, secrets);
    const skipped: string[] = [];
    const perTenant = await runPool(tenants, CHECK_LANES, async (tenant): Promise<Finding[]> => {
      try {
        const { tp, id, records } = await tenantRecords(plan, tenant, store);
        const { state, phase } = stateOf(records);
        if (state === 'done' || state === 'in-flight') {
          skipped.push(`${tenant} (${state})`);
          return [];
        }
        const s = await openSessionFor(tp, id, secrets, { state: store });
        try {
          return await preflightFindings(s, { synced: phase === 'synced' });
        } finally {
          await s.close();
        }
      } catch (e) {
        const error = errorOf(e);
        return [{ severity: 'blocker', check: 'tenant', object: tenant, message: redactText(error.message, secrets.all), why: 'its preflight could not run', fix: error.hint ?? 'fix the cause, then check again' }];
      }
    });
    const left = new Set(skipped.map((x) => x.slice(0, x.lastIndexOf(' ('))));
    const checked = tenants.filter((t) => !left.has(t));
    const byKey = new Map<string, Finding & { tenants: string[] }>();
    tenants.forEach((tenant, i) => {
      for (const f of perTenant[i] ?? []) {
        const key = JSON.stringify([f.severity, f.check, f.object, f.message]);
        const seen = byKey.get(key);
        if (seen) seen.tenants.push(tenant);
        else byKey.set(key, { ...f, tenants: [tenant] });
      }
    });
    const findings = [...byKey.values()].map(({ tenants: named, ...f }) => (named.length === checked.length && checked.length > 1 ? f : { ...f, tenants: named }));
    return { findings, tenants: checked.length, skipped };
  } finally {
    await store.close();
  }
}

/**
 * `cutover waves`: every tenant is its own cutover (sync, then run: hold, fence, catch-up, verify, transform,
 * switch, lift) with its own journal, lock and budget, `concurrency` at a time; no tenant's initial copy runs
 * while another tenant is in its run (see CopyWindowGate). A tenant that fails is rolled
 * back alone by its run; the wave goes on unless stopAfterFailures is reached. Run again after a crash: done
 * tenants are skipped, in-flight ones resumed, the rest moved.
 */
export async function runWaves(plan: Plan, secrets: PlanSecrets, opts: WavesOptions = {}): Promise<WavesResult> {
  const store = await openPlanState(plan, secrets);
  try {
    const wave = store.wave?.(planId(plan));
    return wave ? await runSharedWave(plan, secrets, opts, store, wave) : await runLocalWave(plan, secrets, opts, store);
  } finally {
    await store.close();
  }
}

interface WaveContext {
  plan: Plan;
  secrets: PlanSecrets;
  opts: WavesOptions;
  store: StateStore;
  gate: Gate;
  phases: CopyWindowGate;
  /** One window at a time of this runner's tenants, without a control database (see RunOptions.windowTurn). */
  windowTurns: Gate;
  /** Set for a wave shared through the control database. */
  shared?: WaveCoordinator;
}

type Emit = (tenant: string | undefined, step: string, status: CutoverEvent['status'], message: string) => void;

function emitter(opts: WavesOptions): Emit {
  return (tenant, step, status, message) => opts.onEvent?.({ ...(tenant !== undefined ? { tenant } : {}), step, status, message });
}

function finishedMessage(o: TenantOutcome, finished: number, total: number): string {
  return `${o.state}${o.writeBlockedMs !== undefined ? `, write-blocked ${formatDuration(o.writeBlockedMs)}` : ''}${o.error ? `: ${o.error.message}` : ''} (${finished}/${total})`;
}

/** One runner per plan: the state dir's wave-level lock keeps a second one out. */
async function runLocalWave(plan: Plan, secrets: PlanSecrets, opts: WavesOptions, store: StateStore): Promise<WavesResult> {
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
    const ctx: WaveContext = { plan, secrets, opts, store, gate: new Gate(), phases: new CopyWindowGate(), windowTurns: new Gate() };
    let failures = 0;
    let interrupted = false;
    opts.abort?.catch(() => (interrupted = true));
    const stop = () => interrupted || (waves.stopAfterFailures !== undefined && failures >= waves.stopAfterFailures);
    const emit = emitter(opts);
    emit(undefined, 'wave', 'info', `${tenants.length} tenant(s), ${concurrency} at a time, budget ${formatDuration(waves.maxWriteBlockedPerTenantMs)} each`);
    let finished = 0;
    const outcomes = await runPool(
      tenants,
      concurrency,
      async (tenant) => {
        const o = await moveTenant(ctx, tenant);
        if (o.action === 'failed') failures++;
        finished++;
        emit(tenant, 'wave', o.action === 'failed' ? 'fail' : 'ok', finishedMessage(o, finished, tenants.length));
        return o;
      },
      stop,
    );
    const all = await Promise.all(
      tenants.map(async (tenant, i) => {
        const done = outcomes[i];
        if (done) return done;
        const { id: tid, records } = await tenantRecords(plan, tenant, store);
        return { tenant, planId: tid, ...stateOf(records), action: 'not-started' as const };
      }),
    );
    return { planId: id, concurrency, tenants: all, ...tally(all), wallMs: Date.now() - t0, stopped: outcomes.some((o) => o === undefined) };
  } finally {
    await lock.release();
  }
}

/** How long a lane waits before asking the control database again when every slot or tenant is taken. */
const CLAIM_POLL_MS = 200;

/**
 * A wave shared by any number of runner processes through the control database: each lane takes a concurrency
 * slot and claims the next tenant under a lease (FOR UPDATE SKIP LOCKED, a session-level advisory lock), so a
 * tenant is worked by one runner at a time and a dead runner's tenants are picked up, from their journal, by
 * another. A runner leaves when no tenant is pending or claimed: every tenant finished this round.
 */
async function runSharedWave(plan: Plan, secrets: PlanSecrets, opts: WavesOptions, store: StateStore, shared: WaveCoordinator): Promise<WavesResult> {
  const waves = wavesOf(plan);
  const id = planId(plan);
  const t0 = Date.now();
  const emit = emitter(opts);
  // A tenant query answers once per wave: a running wave keeps the list its first runner recorded.
  const recorded = plan.scope.kind === 'tenants' && plan.scope.query ? (await shared.tenants()).map((t) => t.tenant) : [];
  const listed = recorded.length ? recorded : await resolveTenants(plan, secrets);
  const joined = await shared.join(
    listed.map((tenant) => ({ tenant, planId: tenantPlanId(plan, tenant) })),
    opts.concurrency ?? waves.concurrency,
  );
  try {
    const tenants = joined.tenants;
    const ctx: WaveContext = { plan, secrets, opts, store, gate: new Gate(), phases: new CopyWindowGate(), windowTurns: new Gate(), shared };
    const lanes = runnerLanes(joined, opts.concurrency);
    const laneCount = Math.max(1, Math.min(lanes.lanes, tenants.length));
    emit(undefined, 'wave', 'info', `runner ${joined.runner}: ${tenants.length} tenant(s), budget ${formatDuration(waves.maxWriteBlockedPerTenantMs)} each; ${lanes.message}`);
    let interrupted = false;
    let stopped = false;
    opts.abort?.catch(() => (interrupted = true));
    const mine = new Map<string, TenantOutcome>();
    const lane = async (): Promise<void> => {
      while (!interrupted) {
        if (waves.stopAfterFailures !== undefined && (await shared.failures()) >= waves.stopAfterFailures) {
          stopped = true;
          return;
        }
        const c = await shared.claim();
        if (c === 'none') return;
        if (c === 'wait') {
          await sleep(CLAIM_POLL_MS);
          continue;
        }
        if (c.takenOver) emit(c.tenant, 'wave', 'info', `taken over from runner ${c.takenOver}, whose lease ended with its control-database session`);
        const o = await moveTenant(ctx, c.tenant);
        await shared.finish(c.tenant, {
          state: o.state === 'done' ? 'done' : o.state === 'rolled-back' ? 'rolled-back' : 'failed',
          ...(o.writeBlockedMs !== undefined ? { windowMs: o.writeBlockedMs } : {}),
          ...(o.error ? { error: o.error.message } : {}),
        });
        const prior = mine.get(c.tenant);
        mine.set(c.tenant, prior && o.action === 'skipped' ? prior : o);
        emit(c.tenant, 'wave', o.action === 'failed' ? 'fail' : 'ok', finishedMessage(o, mine.size, tenants.length));
      }
      stopped = true;
    };
    await Promise.all(Array.from({ length: laneCount }, lane));
    const rows = new Map((await shared.tenants()).map((r) => [r.tenant, r]));
    const all = await Promise.all(
      tenants.map(async (tenant) => {
        const own = mine.get(tenant);
        if (own) return own;
        const { id: tid, records } = await tenantRecords(plan, tenant, store);
        const row = rows.get(tenant);
        const st = stateOf(records);
        const action = row?.runner !== undefined && row.runner !== joined.runner ? ('elsewhere' as const) : st.state === 'done' ? ('skipped' as const) : ('not-started' as const);
        return { tenant, planId: tid, ...st, ...optionalWindow(measuredWindow(records)), action };
      }),
    );
    return { planId: id, concurrency: joined.concurrency, tenants: all, ...tally(all), wallMs: Date.now() - t0, stopped, runner: joined.runner, runnerConcurrency: laneCount };
  } finally {
    await shared.leave();
  }
}

/**
 * How many tenants one runner of a shared wave works at once. The round's first runner sets the wave's concurrency
 * (its --concurrency, else waves.concurrency): at most that many tenants in progress over every runner. A later
 * runner's --concurrency bounds its own lanes only, never above the wave's; the message says which value governs.
 */
export function runnerLanes(joined: { concurrency: number; first: boolean }, requested: number | undefined): { lanes: number; capped: boolean; message: string } {
  const wave = `${joined.concurrency} at a time over every runner`;
  if (joined.first || requested === undefined) return { lanes: joined.concurrency, capped: false, message: `${wave}${joined.first ? ' (set by this runner, the first of the round)' : ''}` };
  if (requested > joined.concurrency) {
    return {
      lanes: joined.concurrency,
      capped: true,
      message: `${wave}, set by the round's first runner: --concurrency ${requested} of this runner is capped to it (a later runner can only lower its own share; start the next round with the higher value)`,
    };
  }
  return { lanes: requested, capped: false, message: `${wave} (set by the round's first runner); this runner at most ${requested} (--concurrency)` };
}

/** Where a shared wave's runners serialise edits of the router's one file (PgBouncer ini, JSON map). */
function routerResource(plan: Plan): string {
  const r = plan.router;
  return `router:${r.kind === 'pgbouncer' ? r.ini : r.kind === 'file' ? r.path : planId(plan)}`;
}

async function moveTenant(ctx: WaveContext, tenant: string): Promise<TenantOutcome> {
  const { plan, secrets, opts, store, gate, phases, windowTurns, shared } = ctx;
  const waves = wavesOf(plan);
  let tid = '';
  let s: PlanSession | undefined;
  try {
    const { tp, id, records } = await tenantRecords(plan, tenant, store);
    tid = id;
    const before = stateOf(records);
    if (before.state === 'done') return { tenant, planId: id, ...before, ...optionalWindow(measuredWindow(records)), action: 'skipped' };
    // With a control database the tenant's dir holds only local files (readonly fence records, test hooks).
    if (shared) await ensureDirDurably(tp.stateDir);
    const server = `${plan.source.host}:${plan.source.port}`;
    // Quiet windows: the rest of every tenant's work keeps out of a turn (see RunOptions.quiet). A window shared the
    // two cores with other tenants' logins, preflight, leak-watch slots, late leak checks and cleanups, and did so
    // more with more runner processes.
    const quiet = () => (shared ? shared.quiet(server) : windowTurns.idle());
    const resumed = before.phase === 'in-flight' || before.phase === 'past-pnr';
    // A tenant left fenced (its clients may be held) is restored or finished first, without waiting.
    if (!resumed) await quiet();
    const opened = await openSessionFor(tp, id, secrets, { state: store });
    const resource = routerResource(plan);
    const across = shared ? <T>(fn: () => Promise<T>) => shared.exclusive(resource, fn) : undefined;
    s = { ...opened, router: opened.router && new WaveRouter(opened.router, gate, across) };
    const session = s;
    const transform = waves.transform;
    const runOpts: RunOptions = {
      // Windows of one source server take turns (in this runner, or over every runner of a shared wave): two windows
      // at once on the same machine each took twice as long (scripts/bench/waves-runners.mjs), and a turn is a small
      // part of a tenant's time, so the wave's wall time did not grow.
      windowTurn: (fn) => (shared ? shared.windowTurn(server, fn) : windowTurns.run(fn)),
      quiet,
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
    // This runner's gate first, then (shared wave) the source server's gate over every runner.
    const copy = <T>(fn: () => Promise<T>) => phases.copy(() => (shared ? shared.copy(server, fn) : fn()));
    const window = <T>(fn: () => Promise<T>) => phases.window(() => (shared ? shared.window(server, fn) : fn()));
    // The run (hold to lift, and its resume) waits for other tenants' copies to end, and holds new ones back.
    let r;
    if (resumed) r = await window(() => resumePlan(session, runOpts));
    else {
      if (before.phase === 'fresh') await copy(() => syncPlan(session, runOpts));
      r = await window(() => runPlan(session, runOpts));
    }
    return {
      tenant,
      planId: id,
      state: 'done',
      phase: 'done',
      ...optionalWindow(r.writeBlockedMs || undefined),
      action: resumed ? 'resumed' : 'moved',
      ...(r.warnings.length ? { warnings: r.warnings } : {}),
    };
  } catch (e) {
    const dir = tenantPlan(plan, tenant).stateDir;
    const now = tid ? stateOf((await store.replay(dir, tid).catch(() => ({ records: [] as JournalRecord[] }))).records) : { state: 'failed' as const, phase: 'fresh' as const };
    const error = errorOf(e);
    error.message = redactText(error.message, secrets.all);
    // A shared wave records it in the control database (WaveCoordinator.finish).
    if (!shared) {
      await ensureDirDurably(dir);
      await writeFileAtomic(join(dir, LAST_ERROR_FILE), JSON.stringify({ at: new Date().toISOString(), message: error.message }) + '\n');
    }
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

/** Where a tenant's way back stands, from its revert journal (`cutover revert|finalize <plan> --tenant`). */
export type TenantRevert = 'revert-in-flight' | 'revert-past-pnr' | 'revert-rolled-back' | 'reverted' | 'finalized' | 'finalize-unfinished';

export interface WavesStatus {
  planId: string;
  tenants: Array<Omit<TenantOutcome, 'action'> & { lastError?: string; runner?: string; attempts?: number; revert?: TenantRevert }>;
  counts: Record<TenantState, number>;
  windows: WindowStats;
  /** With a control database: the runners of the wave's current round (alive: its control session is open). */
  runners?: Array<WaveRunnerRow & { tenants: string[] }>;
  /** With a control database: where the tenants' journals and the wave live. */
  state?: string;
}

function tenantRevert(records: readonly JournalRecord[]): TenantRevert | undefined {
  const fin = finalized(records);
  if (fin) return fin.state === 'done' ? 'finalized' : 'finalize-unfinished';
  const phase = planPhase(records);
  if (phase === 'done') return 'reverted';
  if (phase === 'past-pnr') return 'revert-past-pnr';
  // Fenced by a revert running now or one that stopped: `revert --tenant` with --resume or --rollback says which.
  if (phase === 'in-flight') return 'revert-in-flight';
  const last = records.at(-1);
  return last?.step === 'route-back' && last.status === 'ok' ? 'revert-rolled-back' : undefined;
}

/**
 * The tenants' table from their journals (no server is changed; a tenant query runs only before the first wave).
 * With a control database, from any machine: the runners, which tenant each holds, and each tenant's last error.
 */
export async function wavesStatus(plan: Plan, secrets: PlanSecrets): Promise<WavesStatus> {
  const store = await openPlanState(plan, secrets);
  try {
    const shared = store.wave?.(planId(plan));
    const sharedRows: WaveTenantRow[] = shared ? await shared.tenants() : [];
    const byTenant = new Map(sharedRows.map((r) => [r.tenant, r]));
    const tenants = sharedRows.length ? sharedRows.map((r) => r.tenant) : await waveTenants(plan, secrets);
    const rows = await Promise.all(
      tenants.map(async (tenant) => {
        const { tp, id, records } = await tenantRecords(plan, tenant, store);
        const st = stateOf(records);
        const row = byTenant.get(tenant);
        const revert = st.state === 'done' ? tenantRevert((await store.replay(tp.stateDir, revertPlanId(id))).records) : undefined;
        const lastError = st.state === 'done' ? undefined : shared ? row?.error : await readLastError(tenantPlan(plan, tenant).stateDir);
        return {
          tenant,
          planId: id,
          ...st,
          ...optionalWindow(measuredWindow(records)),
          ...(lastError ? { lastError } : {}),
          ...(row?.runner !== undefined ? { runner: row.runner } : {}),
          ...(row ? { attempts: row.attempts } : {}),
          ...(revert ? { revert } : {}),
        };
      }),
    );
    const out: WavesStatus = { planId: planId(plan), tenants: rows, ...tally(rows) };
    if (shared) {
      const claimed = sharedRows.filter((r) => r.state === 'claimed');
      out.runners = (await shared.runners()).map((r) => ({ ...r, tenants: claimed.filter((t) => t.runner === r.runner).map((t) => t.tenant) }));
      out.state = store.describe(plan.stateDir);
    }
    return out;
  } finally {
    await store.close();
  }
}

/**
 * `cutover waves --rollback <tenant>`: before the tenant's point of no return its source is made writable
 * again and its router entry put back. After it the target has taken writes: refused, with what a move back
 * (a reverse cutover) costs.
 */
export async function rollbackTenant(plan: Plan, secrets: PlanSecrets, tenant: string, opts: { onEvent?: (e: WaveEvent) => void } = {}): Promise<RollbackResult & { tenant: string }> {
  const store = await openPlanState(plan, secrets);
  try {
    await checkTenant(plan, secrets, store, tenant);
    const shared = store.wave?.(planId(plan));
    const { tp, id, records } = await tenantRecords(plan, tenant, store);
    const { phase } = stateOf(records);
    if (records.length === 0) throw new UsageError(`tenant ${tenant} has not been started: there is nothing to roll back`, 'leave it out of scope.tenants if it must not move');
    if (phase === 'done' || phase === 'past-pnr') throw reverseCutoverNeeded(plan, tenant, records, phase);
    // A runner working this tenant holds its plan lock (and the source's): the rollback is refused while it lives.
    const rollback = async () => {
      const s = await openSessionFor(tp, id, secrets, { state: store });
      try {
        const r = await rollbackPlan(s, { onEvent: (e) => opts.onEvent?.({ ...e, tenant }) });
        return { ...r, tenant };
      } finally {
        await s.close();
      }
    };
    // A shared wave: under the tenant's lease (no runner claims it meanwhile), and its row says rolled-back after.
    return shared ? await shared.rollback(tenant, rollback, (e) => redactText(errorOf(e).message, secrets.all)) : await rollback();
  } finally {
    await store.close();
  }
}

/** Refuses a name that is not one of the wave's tenants (as the wave recorded them, or as the plan lists them). */
async function checkTenant(plan: Plan, secrets: PlanSecrets, store: StateStore, tenant: string): Promise<void> {
  const shared = store.wave?.(planId(plan));
  const recorded = shared ? (await shared.tenants()).map((t) => t.tenant) : [];
  const tenants = recorded.length ? recorded : await waveTenants(plan, secrets);
  if (!tenants.includes(tenant)) throw new UsageError(`"${tenant}" is not a tenant of this plan`, `tenants: ${tenants.slice(0, 10).join(', ')}${tenants.length > 10 ? ', ...' : ''}`);
}

/**
 * One tenant's own plan and plan id, for the commands that act on one tenant after its cutover (`revert --tenant`,
 * `finalize --tenant`): exactly the plan the wave ran it with, so its journals, locks and reverse path are found.
 */
export async function tenantOfWave(plan: Plan, secrets: PlanSecrets, tenant: string): Promise<{ plan: Plan; planId: string }> {
  const store = await openPlanState(plan, secrets);
  try {
    await checkTenant(plan, secrets, store, tenant);
  } finally {
    await store.close();
  }
  const tp = tenantPlan(plan, tenant);
  return { plan: tp, planId: planId(tp) };
}

function reverseCutoverNeeded(plan: Plan, tenant: string, records: readonly JournalRecord[], phase: PlanPhase): NeedsOperatorError {
  const pnr = records.find((r) => r.step === 'point-of-no-return' && r.status === 'ok');
  const sync = lastOkData(records, 'sync');
  const bytes = typeof sync?.bytes === 'number' ? formatBytes(sync.bytes) : 'its data';
  const took = typeof sync?.durationMs === 'number' ? ` (the forward copy took ${formatDuration(sync.durationMs)})` : '';
  if (plan.reverse)
    return new NeedsOperatorError(
      'needs-operator',
      `tenant ${tenant} passed its point of no return${pnr ? ` at ${pnr.at}` : ''}: the target has taken its writes since, and rolling back would lose them`,
      `${phase === 'past-pnr' ? 'finish it first with `cutover waves` (it resumes in-flight tenants); then ' : ''}its old source follows it (plan reverse): \`cutover revert <plan> --tenant ${tenant} --yes\` moves it back without a copy, the other tenants stay where they are`,
    );
  return new NeedsOperatorError(
    'needs-operator',
    `tenant ${tenant} passed its point of no return${pnr ? ` at ${pnr.at}` : ''}: the target has taken its writes since, and rolling back would lose them`,
    `${phase === 'past-pnr' ? 'finish it first with `cutover waves` (it resumes in-flight tenants); then ' : ''}moving it back is a reverse cutover: a one-tenant plan with source ${plan.target.host}:${plan.target.port} and target ${plan.source.host}:${plan.source.port}, ` +
      `after dropping or renaming the stale read-only copy of ${tenant} on ${plan.source.host}:${plan.source.port}; it copies ${bytes} again${took} and costs the tenant another write-blocked window of up to ${formatDuration(wavesOf(plan).maxWriteBlockedPerTenantMs)}`,
  );
}
