import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BudgetExceededError, DifferAfterSwitchError, LeakedAfterSwitchError, NeedsOperatorError, OperationError, PreflightError, VerifyMismatchError, isCutoverError } from '../errors.js';
import { describeLeak, type LeakWatcher } from '../readonly/readonly.js';
import type { FenceOnResult, LateLeakCheck, LeakCheck, LeakCheckMethod } from '../readonly/types.js';
import { run as runCommand } from '../util/subprocess.js';
import { formatBytes, formatDuration } from '../util/units.js';
import type { CatchUpProof, CdcSlotHandover, DetachResult, Finding, SourceLockHolder, SwitchCompare, SyncProgressEvent, SyncSummary, VerifyReport } from './cutover-adapter.js';
import { afterWords, compareAfterSwitch, type AfterSwitchVerifyReport } from './verify-after.js';
import type { JournalRecord, JournalStep } from './journal.js';
import type { StateJournal, StateLock } from './state-store.js';
import { lastOkData, planPhase } from './phase.js';
import { inWindowVerifyFinding } from './verify-cost.js';
import { verifyOnline, type OnlineVerifyReport } from './verify-online.js';
import { switchRouter } from './router.js';
import { endpointOf, type PlanSession } from './session.js';

export interface CutoverEvent {
  step: string;
  status: 'begin' | 'ok' | 'fail' | 'info';
  message: string;
  /** A copy's progress as numbers (sync's info events): tables, bytes, rows, ETA. */
  progress?: Omit<SyncProgressEvent, 'message'>;
}

/** How a command takes the plan's locks. */
export interface LockOptions {
  /**
   * Take over the state dir's lock from a holder that cannot be checked (another host) or looks alive, once
   * the plan's lock on the source server is ours: a holder still running would hold that one.
   */
  force?: boolean;
}

export interface RunOptions extends LockOptions {
  /** Overrides limits.maxWriteBlocked. */
  maxWriteBlockedMs?: number;
  dryRun?: boolean;
  onEvent?: (e: CutoverEvent) => void;
  /** Test hook: after journaling `begin` of this step, write `<stateDir>/paused-at-<step>` and wait forever. */
  pauseAt?: string;
  /** Test hook: with `pauseAt`, wait this long at that step (after its begin) and go on instead of parking. */
  pauseMs?: number;
  /** Test hook: with `pauseAt`, await this at that step (after its begin, before its work) and go on. */
  pauseHold?: () => Promise<void>;
  /** Rejects when the operator interrupts (SIGINT/SIGTERM): the run then restores the safe state. */
  abort?: Promise<never>;
  /** How long to wait for replication lag to drop under the limit before giving up (nothing is changed). */
  lagWaitMs?: number;
  /**
   * Runs after verify and the leak check, inside the write-downtime budget (`deadline`), just before the point
   * of no return: a change to the target's copy (the waves' transform) that verify must not see. Throwing
   * restores the source like any failure before that point.
   */
  beforePointOfNoReturn?: (deadline: number) => Promise<void>;
  /**
   * Wraps the window, from the logins before the hold to the lift (or the source's restore): a wave runs its
   * tenants' windows on one source server one at a time through it, so no window shares the machine with another.
   */
  windowTurn?: <T>(window: () => Promise<T>) => Promise<T>;
  /**
   * Awaited before each piece of this run's work outside its window that loads the source server (preflight, the
   * drift check and second ANALYZE, the leak watch's decoding slot, the late leak check, cleanup): a wave waits
   * there while another tenant's window turn on the same server is on, so that window has the machine to itself
   * (a "quiet window"). Must not throw: it only orders work.
   */
  quiet?: () => Promise<void>;
}

export interface StepTiming {
  step: string;
  startMs: number;
  endMs: number;
}

export interface RunResult {
  planId: string;
  outcome: 'done' | 'dry-run';
  /** Router hold (or fence, without a router) to release and target open: what writers experienced. */
  writeBlockedMs?: number;
  budgetMs: number;
  steps: StepTiming[];
  sync?: SyncSummary;
  lagBytesAtFence?: number | null;
  fence?: { terminated: number; drained: number; leakClean: boolean };
  /**
   * How the leak check worked (decoded: every commit after the fence read from the source's log) and, after the
   * switch, what still committed on the old source (PostgreSQL).
   */
  leakCheck?: { method: LeakCheckMethod; fallback?: string; late?: LateLeakCheck };
  /** The online chunked verify before the hold (plan `verify.before: chunks`). */
  verifyBefore?: OnlineVerifyReport;
  /**
   * The compare after the switch (plan `verify.after: chunks`): the old source and the target as of the point of
   * no return, compared after the release.
   */
  verifyAfter?: AfterSwitchVerifyReport;
  catchUp?: CatchUpProof;
  /** Plan `cdc`: each consumer's slot on the target and where it stops reading the source. */
  cdc?: CdcSlotHandover[];
  /** Tables analyzed again after the lag gate (they changed a lot since sync's ANALYZE). */
  reanalyzed?: string[];
  sequences?: number;
  verify?: VerifyReport;
  cleanedUp?: string[];
  /**
   * The reverse path (plan `reverse`): `following` once the old source follows the new primary from the switch
   * position; `unavailable` (with why) when it could not be made: the cutover itself is done either way.
   */
  reverse?: { state: 'following' | 'unavailable'; why?: string };
  warnings: string[];
  findings: Finding[];
}

const READY_FOR_RUN = new Set(['fresh', 'synced']);
/**
 * Journal records inside the window that need not be on disk before the run goes on: each is written with the
 * next durable one (one fsync, ~6 ms here, up to 70 under load, instead of one per record). On disk before it
 * acts: the hold's and the fence's begin (a crash after either restores the source), the fence's ok (what
 * `status` and anyone watching the journal take as "the source is fenced now") and the point of no return's ok
 * (before anything is repointed). After a crash a queued record is simply missing: the phase it
 * would have shown follows from the durable ones (hold/fence begun: in-flight; point of no return not ok: not
 * past it, so nothing was repointed).
 */
const QUEUED_BEGIN: ReadonlySet<JournalStep> = new Set(['catch-up', 'sequences', 'verify', 'point-of-no-return', 'repoint', 'lift']);
// The CDC handover's begin is durable: a crash after it may leave slots on the target that rollback must drop, and
// only that record tells rollback they are the run's own. Its ok (the positions) goes with the point of no return's.
const QUEUED_OK: ReadonlySet<JournalStep> = new Set(['hold', 'catch-up', 'sequences', 'verify', 'cdc-handover', 'repoint', 'lift']);
/**
 * Steps whose durable records overlap the work around them instead of waiting for their fsync: the fence's begin
 * is on disk before the fence changes the server (the fence awaits it after its reads), its ok before the point
 * of no return (Runner.settle), while the catch-up runs.
 */
const OVERLAPPED: ReadonlySet<JournalStep> = new Set(['fence']);
/**
 * A sampled leak probe runs from the fence to the point of no return, and at least this long: a client that
 * keeps writing is caught in the first 20ms sample; the floor guards against a catch-up so fast it samples
 * nothing. A decoded probe reads every commit after the fence at its end and a schema fence's probe checks the
 * fence itself: neither needs a floor, which would only lengthen the window.
 */
const LEAK_PROBE_MS = 250;

class Runner {
  readonly t0 = Date.now();
  readonly steps: StepTiming[] = [];
  readonly warnings: string[] = [];
  /** How this run's reverseBegin went (undefined: not tried): a reverse path not begun is not started. */
  reverseBegun?: string;

  constructor(
    private readonly s: PlanSession,
    readonly journal: StateJournal,
    private readonly opts: RunOptions,
  ) {}

  get abort(): Promise<never> | undefined {
    return this.opts.abort;
  }

  emit(step: string, status: CutoverEvent['status'], message: string, progress?: CutoverEvent['progress']): void {
    this.opts.onEvent?.({ step, status, message, ...(progress ? { progress } : {}) });
  }

  /** Durable journal writes still in flight (OVERLAPPED steps); `settle` awaits them. */
  private pending: Promise<void>[] = [];

  /** Every overlapped journal write is on disk (rejects if one failed): before the next irreversible step. */
  async settle(): Promise<void> {
    const all = this.pending;
    this.pending = [];
    await Promise.all(all);
  }

  /**
   * Journals begin/ok/fail around `fn`, times it, and races it against an operator interrupt. An OVERLAPPED
   * step's durable begin is written while `fn` prepares (`fn` gets the write as `begun` and awaits it before it
   * changes anything), and its durable ok while the next step runs (`settle` awaits it).
   */
  async step<T>(step: JournalStep, message: string, fn: (begun: Promise<void>) => Promise<T>, okData?: (r: T) => Record<string, unknown>): Promise<T> {
    const startMs = Date.now() - this.t0;
    const overlapped = OVERLAPPED.has(step);
    let begun: Promise<void> = Promise.resolve();
    if (overlapped) {
      // Queued now (so records keep their order), fsynced beside `fn`'s preparation.
      await this.journal.begin(step, undefined, { durable: false });
      begun = this.journal.flush();
      begun.catch(() => {});
    } else await this.journal.begin(step, undefined, { durable: !QUEUED_BEGIN.has(step) });
    this.emit(step, 'begin', message);
    const parked = async (): Promise<T> => {
      await this.journal.flush();
      await writeFile(join(this.s.plan.stateDir, `paused-at-${step}`), String(process.pid));
      return new Promise<T>(() => {});
    };
    // A test's wait at the step before its work goes on (its own hook, or a fixed delay); without one it parks there.
    const { pauseHold, pauseMs } = this.opts;
    const wait = pauseHold ?? (pauseMs !== undefined ? () => new Promise<void>((r) => setTimeout(r, pauseMs)) : undefined);
    const waited = async (): Promise<T> => {
      await wait!();
      return fn(begun);
    };
    const work = this.opts.pauseAt !== step ? () => fn(begun) : wait ? waited : parked;
    try {
      const r = await (this.opts.abort ? Promise.race([work(), this.opts.abort]) : work());
      await begun;
      if (overlapped) {
        await this.journal.ok(step, okData?.(r), { durable: false });
        const written = this.journal.flush();
        written.catch(() => {});
        this.pending.push(written);
      } else await this.journal.ok(step, okData?.(r), { durable: !QUEUED_OK.has(step) });
      this.steps.push({ step, startMs, endMs: Date.now() - this.t0 });
      this.emit(step, 'ok', `${message} (${formatDuration(Date.now() - this.t0 - startMs)})`);
      return r;
    } catch (e) {
      this.steps.push({ step, startMs, endMs: Date.now() - this.t0 });
      await this.journal.fail(step, { error: e instanceof Error ? e.message : String(e) }).catch(() => {});
      this.emit(step, 'fail', e instanceof Error ? e.message : String(e));
      throw e;
    }
  }
}

/** Preflight of the adapter and the router. */
export async function preflightFindings(s: PlanSession, ctx: { synced?: boolean; syncing?: boolean } = {}): Promise<Finding[]> {
  const findings = await s.adapter.preflight(ctx);
  if (s.plan.verify !== 'none' && s.adapter.movedTablesSize) {
    const cost = inWindowVerifyFinding(s.plan.verify, await s.adapter.movedTablesSize(), s.plan.limits.maxWriteBlockedMs);
    if (cost) findings.push(cost);
  }
  for (const f of (await s.router?.preflight()) ?? []) {
    findings.push({ severity: f.severity, check: `router ${s.router!.kind}`, object: f.object, message: f.why, why: f.why, fix: f.fix });
  }
  if (s.router?.serverLogins && s.adapter.routerLoginFindings) findings.push(...(await s.adapter.routerLoginFindings(await s.router.serverLogins())));
  return findings;
}

function blockerError(findings: Finding[]): PreflightError {
  const blockers = findings.filter((f) => f.severity === 'blocker');
  return new PreflightError('preflight', `preflight found ${blockers.length} blocker(s): ${blockers.map((b) => b.message).join('; ')}`, blockers[0]?.fix);
}

function describeHolder(h: SourceLockHolder | undefined): string {
  if (!h) return 'another session';
  const parts = [h.application ? `"${h.application}"` : undefined, h.user ? `user ${h.user}` : undefined, h.client ? `from ${h.client}` : undefined].filter(Boolean);
  return `session ${h.session}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

/**
 * The plan's lock on the source server, held until the command ends: the exclusion that holds across machines
 * and state dirs (the file lock only sees its own state dir). Returns its release.
 */
async function lockSourceServer(s: PlanSession): Promise<() => Promise<void>> {
  const r = await s.adapter.lockSource(s.planId, `${process.pid}@${hostname()}`);
  if (!r.acquired) {
    throw new NeedsOperatorError(
      'locked',
      `plan ${s.planId} is locked on the source: ${describeHolder(r.holder)} holds its server lock, so another cutover process (maybe on another machine or with another state dir) is working on this plan`,
      'wait for it to finish, or stop that process (its lock ends with its session on the source) and run again',
    );
  }
  return () => s.adapter.unlockSource(s.planId).catch(() => {});
}

/**
 * Fails unless the plan's lock on the source is still this process's: a dropped source session releases it
 * silently (the driver's 'error' event is swallowed so an idle drop does not crash), and another runner could
 * then start. A check that cannot run counts as lost.
 */
async function assertSourceLock(s: PlanSession): Promise<void> {
  try {
    await s.adapter.assertSourceLock(s.planId);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new OperationError(
      `the plan's lock on the source was lost (${why}): another cutover process may be working on plan ${s.planId}; the source was restored`,
      'check that no other cutover process runs this plan (`cutover status`), then run again',
      { cause: e },
    );
  }
}

export async function withLock<T>(s: PlanSession, opts: LockOptions, fn: (journal: StateJournal) => Promise<T>): Promise<T> {
  const unlockServer = await lockSourceServer(s);
  try {
    const lock = await s.state.acquire(s.plan.stateDir, s.planId, { force: opts.force === true });
    try {
      const journal = await s.state.openJournal(lock, { secrets: s.secrets.all });
      try {
        return await fn(journal);
      } finally {
        await journal.close();
      }
    } finally {
      // A lock file that cannot be removed (state dir gone read-only) must not hide the command's own outcome;
      // the next command finds its holder dead and takes it over.
      await lock.release().catch(() => {});
    }
  } finally {
    await unlockServer();
  }
}

/** The state dir itself failed (read-only, full, replaced), as opposed to a holder or a damaged journal. */
function stateDirFailure(e: unknown): string | undefined {
  if (isCutoverError(e)) return undefined;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? (e as Error).message : undefined;
}

/** Pins the servers' identities on first use; later commands refuse to talk to different servers. */
async function checkIdentities(s: PlanSession, journal: StateJournal): Promise<Record<string, unknown>> {
  const ids = await s.adapter.identities();
  const pinned = lastOkData(journal.state.records, 'preflight');
  if (pinned?.source && (pinned.source !== ids.source || pinned.target !== ids.target)) {
    throw new NeedsOperatorError(
      'needs-operator',
      `the servers changed since this plan's journal began (source ${String(pinned.source)} → ${ids.source}, target ${String(pinned.target)} → ${ids.target})`,
      'check the plan URLs; start over with a fresh state dir only if this is intended',
    );
  }
  return ids;
}

/** `cutover sync`: preflight, schema, target held read-only, replication started and initial copy done. */
export async function syncPlan(s: PlanSession, opts: RunOptions = {}): Promise<SyncSummary> {
  return withLock(s, opts, async (journal) => {
    const runner = new Runner(s, journal, opts);
    const phase = planPhase(journal.state.records);
    if (!READY_FOR_RUN.has(phase))
      throw new NeedsOperatorError(
        'needs-operator',
        `plan ${s.planId} is ${phase}: sync is only for a plan that has not been cut over`,
        phase === 'in-flight' ? 'run `cutover resume` or `cutover rollback` first' : 'nothing to sync',
      );
    return doSync(s, runner);
  });
}

/** Preflight, then pin (or check) the servers' identities in the journal. Blockers stop here, nothing changed. */
async function preflightStep(s: PlanSession, runner: Runner, syncing: boolean): Promise<Finding[]> {
  let findings: Finding[] = [];
  await runner.step(
    'preflight',
    'preflight checks',
    async () => {
      findings = await preflightFindings(s, { synced: planPhase(runner.journal.state.records) === 'synced', syncing });
      if (findings.some((f) => f.severity === 'blocker')) throw blockerError(findings);
      return checkIdentities(s, runner.journal);
    },
    (r) => r,
  );
  // Risks the operator accepts by running: named in the result, not only in `check`.
  for (const f of findings) if (f.severity === 'warning') runner.warnings.push(`${f.check}${f.object ? ` (${f.object})` : ''}: ${f.message}`);
  return findings;
}

async function doSync(s: PlanSession, runner: Runner, preflight?: (f: Finding[]) => void): Promise<SyncSummary> {
  const findings = await preflightStep(s, runner, true);
  preflight?.(findings);
  return runner.step(
    'sync',
    `copy ${s.database} to the target (${s.plan.method})`,
    async () => {
      const summary = await s.adapter.sync(({ message, ...progress }) =>
        runner.emit(
          'sync',
          'info',
          message + (progress.etaMs ? `, ETA ${formatDuration(progress.etaMs)}` : '') + (progress.bytesTotal ? ` [${formatBytes(progress.bytesDone ?? 0)} / ${formatBytes(progress.bytesTotal)}]` : ''),
          progress,
        ),
      );
      // Applications must not write to the copy before the switch; apply workers are not affected.
      await s.targetHold.on();
      return summary;
    },
    (r) => ({ ...r }),
  );
}

/** `cutover run`: the whole cutover under the write-downtime budget. Before the point of no return every failure restores the source. */
export async function runPlan(s: PlanSession, opts: RunOptions = {}): Promise<RunResult> {
  return withLock(s, opts, (journal) => runLocked(s, journal, opts));
}

/** `runPlan` for a caller that holds the plan's locks already and checked its own preconditions under them (revert). */
export async function runLocked(s: PlanSession, journal: StateJournal, opts: RunOptions = {}): Promise<RunResult> {
  const phase = planPhase(journal.state.records);
  if (phase === 'done') throw new NeedsOperatorError('needs-operator', `plan ${s.planId} is already cut over`, 'nothing to do; `cutover status` shows the report');
  if (phase === 'past-pnr') throw new NeedsOperatorError('needs-operator', `plan ${s.planId} is past its point of no return`, 'run `cutover resume` to finish it');
  if (phase === 'in-flight')
    throw new NeedsOperatorError('needs-operator', `a previous run of plan ${s.planId} stopped while the source was fenced`, 'run `cutover resume` (restores the source and runs again) or `cutover rollback`');
  return doRun(s, journal, opts, phase === 'synced' || s.direction === 'revert');
}

async function doRun(s: PlanSession, journal: StateJournal, opts: RunOptions, synced: boolean): Promise<RunResult> {
  const runner = new Runner(s, journal, opts);
  const budgetMs = opts.maxWriteBlockedMs ?? s.plan.limits.maxWriteBlockedMs;
  const result: RunResult = { planId: s.planId, outcome: 'done', budgetMs, steps: runner.steps, warnings: runner.warnings, findings: [] };

  if (opts.dryRun) {
    result.findings = await preflightFindings(s);
    result.outcome = 'dry-run';
    return result;
  }
  const quiet = quietHook(opts);
  await quiet();
  if (!synced) result.sync = await doSync(s, runner, (f) => (result.findings = f));
  else result.findings = await preflightStep(s, runner, false);
  if (s.plan.verifyBefore.mode === 'chunks') {
    // A schema change makes every row of its table differ: name the change, not a content mismatch.
    await driftGate(s, runner);
    result.verifyBefore = await verifyBeforeHold(s, runner);
  }

  // Fence only when the target is close: the catch-up must fit in the budget.
  const lagLimit = s.plan.limits.maxLagBeforeFenceBytes;
  const lagDeadline = Date.now() + (opts.lagWaitMs ?? 60_000);
  let lag = await s.adapter.lagBytes();
  while (lag !== null && lag > lagLimit) {
    if (Date.now() > lagDeadline)
      throw new OperationError(
        `replication lag ${formatBytes(lag)} stayed above limits.maxLagBeforeFence (${formatBytes(lagLimit)}); nothing was fenced`,
        'wait for the target to catch up, or raise limits.maxLagBeforeFence',
      );
    runner.emit('lag', 'info', `lag ${formatBytes(lag)} > ${formatBytes(lagLimit)}, waiting`);
    await new Promise((r) => setTimeout(r, 200));
    lag = await s.adapter.lagBytes();
  }
  result.lagBytesAtFence = lag;
  await quiet();
  await driftGate(s, runner);
  result.reanalyzed = await reanalyze(s, runner);
  if (lag !== null) runner.emit('lag', 'info', `lag ${formatBytes(lag)} ≤ ${formatBytes(lagLimit)}, fencing`);

  if (s.plan.hooks.beforeFence) await runHook(s.plan.hooks.beforeFence, 'beforeFence', s);

  // The compare after the switch connects now: its snapshots are taken at the point of no return, and its source
  // session must be exempt from the fence. Optional all along: a failure to connect is a warning.
  let compare: SwitchCompare | undefined;
  if (s.plan.verifyAfter === 'chunks' && s.adapter.openSwitchCompare)
    compare = await s.adapter.openSwitchCompare().catch((e: unknown) => {
      runner.warnings.push(`verify after the switch not run: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    });
  await quiet();
  const exempt = [...(await s.adapter.ownSourceSessions()), ...(compare?.sourceSessions ?? [])];
  // The leak watch opens before the hold: its decoding slot must exist before the fence, and creating one waits
  // for the server's running transactions, which must not happen while clients are held. Its sessions are
  // exempt from the fence. It watches until the point of no return, overlapping catch-up and verify.
  const watcher = await s.sourceFence.watchLeaks(exempt).catch(async (e: unknown) => {
    await compare?.close().catch(() => {});
    throw e;
  });
  try {
    if (watcher) {
      result.leakCheck = { method: watcher.setup.method, ...(watcher.setup.fallback ? { fallback: watcher.setup.fallback } : {}) };
      const how = {
        decoded: 'a decoding slot reads every commit after the fence',
        binlog: "the source's binary log from the fence to the point of no return must hold no event of the fenced database",
        trigger: 'the schema fence rejects every write itself; its trigger is checked on every table',
        position: "the source's write position (GTID set / binary log offset) must not move from the fence to the point of no return",
        sampled: `sampling sessions only (${watcher.setup.fallback ?? 'no decoding'})`,
      };
      runner.emit('leak-check', 'info', `leak check: ${how[watcher.setup.method]}`);
      if (watcher.setup.fallback) runner.warnings.push(`leak check sampled sessions only, so a very short write could go unseen: ${watcher.setup.fallback}`);
    }
    const fenceExempt = [...exempt, ...(watcher?.setup.sessions ?? [])];
    const switched = { compare, snapshotAt: undefined as string | undefined };
    const fenceAndSwitchNow = () => fenceAndSwitch(s, runner, opts, result, budgetMs, fenceExempt, watcher, switched);
    const detached = await (opts.windowTurn ? opts.windowTurn(fenceAndSwitchNow) : fenceAndSwitchNow());
    compare = switched.snapshotAt ? compare : undefined;
    // After the lift, so the check covers the longest stretch and adds nothing to the write-blocked window.
    await quiet();
    if (watcher && result.leakCheck) {
      result.leakCheck.late = await watcher.late(detached.appliedThrough);
      if (!result.leakCheck.late.checked) runner.warnings.push(`leak check after the point of no return not run: ${result.leakCheck.late.note ?? 'unknown reason'}`);
    }
    if (compare && switched.snapshotAt) {
      // Clients are released: the compare holds nobody up. Its report is part of the result, its differences exit 5.
      const startMs = Date.now() - runner.t0;
      runner.emit('verify-after', 'begin', 'compare the old source with the target as of the switch, in key chunks');
      result.verifyAfter = await compareAfterSwitch(compare, { chunkRows: s.plan.verifyBefore.chunkRows, snapshotAt: switched.snapshotAt, onProgress: (m) => runner.emit('verify-after', 'info', m) });
      runner.steps.push({ step: 'verify-after', startMs, endMs: Date.now() - runner.t0 });
      const v = result.verifyAfter;
      if (v.outcome === 'failed') runner.warnings.push(`verify after the switch could not finish: ${v.error ?? 'unknown reason'}`);
      runner.emit('verify-after', v.outcome === 'failed' || v.mismatchCount ? 'fail' : 'ok', `verify after the switch: ${afterWords(v)}`);
    }
  } finally {
    await watcher?.close();
    await compare?.close().catch(() => {});
  }
  await quiet();
  result.cleanedUp = await cleanupAndReport(s, runner, result);
  const late = result.leakCheck?.late;
  if (late && (late.replicated.length || late.sourceOnly.length || late.openWriters.length)) throw new LeakedAfterSwitchError(result, late);
  if (result.verifyAfter?.mismatchCount) throw new DifferAfterSwitchError(result);
  return result;
}

/**
 * The wave's quiet hook, made safe where it is awaited: it never throws (some of its calls are past the point of no
 * return) and an operator's interrupt ends its wait (the next step sees the interrupt itself).
 */
function quietHook(opts: RunOptions): () => Promise<void> {
  const hook = opts.quiet;
  if (!hook) return () => Promise.resolve();
  const interrupted = opts.abort?.catch(() => {});
  return () => Promise.race([Promise.resolve().then(hook), ...(interrupted ? [interrupted] : [])]).catch(() => {});
}

/**
 * Statistics again, outside the window: the tables the catch-up changed a lot since sync's ANALYZE. Not a journal
 * step (it changes no data); a failure only warns, the run goes on with the statistics it has.
 */
async function reanalyze(s: PlanSession, runner: Runner): Promise<string[] | undefined> {
  if (!s.adapter.refreshStatistics) return undefined;
  const startMs = Date.now() - runner.t0;
  runner.emit('analyze', 'begin', 'analyze the tables that changed a lot since sync');
  const work = s.adapter.refreshStatistics().then(
    (tables) => ({ tables }),
    (e: unknown) => ({ error: e }),
  );
  const r = await (runner.abort ? Promise.race([work, runner.abort]) : work);
  if ('tables' in r) {
    const tables = r.tables;
    runner.steps.push({ step: 'analyze', startMs, endMs: Date.now() - runner.t0 });
    runner.emit('analyze', 'ok', tables.length ? `${tables.length} table(s) analyzed again: ${tables.slice(0, 5).join(', ')}${tables.length > 5 ? ', ...' : ''}` : 'no table changed enough since sync to analyze again');
    return tables;
  }
  const why = r.error instanceof Error ? r.error.message : String(r.error);
  runner.warnings.push(`second ANALYZE failed, the target keeps the statistics of sync: ${why}`);
  runner.emit('analyze', 'fail', why);
  return undefined;
}

/**
 * The online chunked verify, before anything is held: not a journal step (it changes nothing; its own ledger
 * in the state dir makes it resumable). Differences stop the run with nothing fenced.
 */
/** DDL is not replicated: any difference between the schemas of what moves stops the run before anything is fenced. */
async function driftGate(s: PlanSession, runner: Runner): Promise<void> {
  const drift = (await s.adapter.schemaDrift?.()) ?? [];
  const changed = drift.filter((f) => f.severity === 'blocker');
  if (changed.length) throw new PreflightError('preflight', `the schema changed since sync: ${changed.map((f) => f.message).join('; ')}; nothing was fenced`, changed[0]!.fix);
  if (drift.length) runner.emit('lag', 'info', drift.map((f) => f.message).join('; '));
}

async function verifyBeforeHold(s: PlanSession, runner: Runner): Promise<OnlineVerifyReport> {
  const startMs = Date.now() - runner.t0;
  runner.emit('verify-before', 'begin', 'verify source and target in key chunks at one replication point');
  const work = verifyOnline(s, { onProgress: (m) => runner.emit('verify-before', 'info', m) });
  const r = await (runner.abort ? Promise.race([work, runner.abort]) : work);
  runner.steps.push({ step: 'verify-before', startMs, endMs: Date.now() - runner.t0 });
  if (r.mismatchCount) {
    runner.emit('verify-before', 'fail', `${r.mismatchCount} chunk(s) differ`);
    throw new VerifyMismatchError(r);
  }
  const what =
    r.outcome === 'skipped'
      ? `skipped: ${r.skipped}`
      : r.reused
        ? `verified by an earlier pass finished ${r.finishedAt}`
        : `${r.tables} tables, ${r.chunks} chunks, ${r.rows} rows match${r.resumedChunks ? ` (${r.resumedChunks} chunks from an interrupted pass)` : ''}`;
  runner.emit('verify-before', 'ok', `verify before the hold: ${what} (${formatDuration(r.durationMs)})`);
  return r;
}

/** Hold, fence, catch-up, verify, leak check, point of no return; then forward. Before that point a failure restores the source. */
async function fenceAndSwitch(
  s: PlanSession,
  runner: Runner,
  opts: RunOptions,
  result: RunResult,
  budgetMs: number,
  exempt: string[],
  watcher: LeakWatcher | undefined,
  switched: { compare: SwitchCompare | undefined; snapshotAt: string | undefined },
): Promise<DetachResult> {
  const journal = runner.journal;
  let fencedAt = 0;
  // Writers wait from the hold on (new queries queue at the router), not only from the fence.
  let blockedFrom = 0;
  let held = false;
  let fenced = false;
  try {
    // Logins before the hold, so none happens inside the window: the fence's and the target hold's connections
    // and the router's pausing one.
    await Promise.all([assertSourceLock(s), s.sourceFence.prepare?.(), s.targetHold.prepare?.(), s.router?.prepareHold?.(), prepareReverse(s, runner)]);
    blockedFrom = Date.now();
    if (s.router) {
      await runner.step('hold', `hold new queries at ${s.router.describe()}`, () => {
        // The hold's begin is on disk before the router holds anyone: clients wait from here.
        blockedFrom = Date.now();
        return s.router!.hold(Math.min(5000, budgetMs));
      });
      held = true;
    }
    fencedAt = Date.now();
    const deadline = fencedAt + budgetMs;
    const fence: FenceOnResult = await runner.step(
      'fence',
      `fence the source (${s.plan.readOnly.scope}, ${s.plan.readOnly.mode})`,
      async (begun) => {
        fenced = true;
        // With clients held at the router the fence may end their sessions first. It changes the server only
        // once its begin record is on disk (`ready`).
        return s.sourceFence.on({ exemptSessions: exempt, clientsHeld: held, leakCheck: watcher ? 'watcher' : 'own', ready: begun });
      },
      (r) => ({ terminated: r.terminated.length, drained: r.drained.length, leakClean: r.leakCheck.clean, ...(r.fencePosition ? { fencePosition: r.fencePosition } : {}) }),
    );
    for (const w of fence.warnings) runner.warnings.push(`fence: ${w}`);
    let stopWatching!: () => void;
    const untilPointOfNoReturn = new Promise<void>((r) => (stopWatching = r));
    const leaks = watcher?.run(watcher.setup.method === 'sampled' ? LEAK_PROBE_MS : 0, untilPointOfNoReturn, fence.fencePosition);
    leaks?.catch(() => {});
    result.fence = { terminated: fence.terminated.length, drained: fence.drained.length, leakClean: fence.leakCheck.clean };
    result.catchUp = await runner.step(
      'catch-up',
      'prove the target holds every write committed before the fence',
      () => s.adapter.catchUp(deadline),
      (r) => ({ ...r }),
    );
    result.sequences = await runner.step(
      'sequences',
      'set target sequences from the source',
      () => s.adapter.copySequences(),
      (n) => ({ sequences: n }),
    );
    const verify = await runner.step(
      'verify',
      `verify (${s.plan.verify})`,
      async () => {
        const v = await s.adapter.verify(deadline);
        if (v.mismatches.length) {
          // A session writing through the fence makes the counts differ too: name it when the watch saw it.
          stopWatching();
          const leak = await leaks?.catch(() => undefined);
          if (leak && !leak.clean) throw leakError(leak);
        }
        if (v.mismatches.length)
          throw new OperationError(
            `verify found ${v.mismatches.length} table(s) that differ: ${v.mismatches
              .slice(0, 5)
              .map((m) => `${m.table} (source ${m.source}, target ${m.target})`)
              .join(', ')}`,
            'the source was restored; investigate before running again',
          );
        return v;
      },
      (v) => ({ tables: v.tables.length, durationMs: v.durationMs }),
    );
    result.verify = verify;
    // The watch's last read (a decoded one reads the source's log up to now) is the window's: timed as a step.
    const leakReadFrom = Date.now() - runner.t0;
    stopWatching();
    const leak = await leaks;
    if (leak) {
      runner.steps.push({ step: 'leak-read', startMs: leakReadFrom, endMs: Date.now() - runner.t0 });
      result.fence.leakClean = leak.clean;
      result.leakCheck = { method: leak.method ?? 'sampled', ...(leak.fallback ? { fallback: leak.fallback } : {}) };
      if (!leak.clean) throw leakError(leak);
      // A decoding slot that was there before the fence and cannot be read now proves nothing: fail safe.
      if (watcher?.setup.method === 'decoded' && leak.method !== 'decoded')
        throw new OperationError(`the leak check could not read its decoding slot: ${leak.fallback ?? 'unknown reason'}`, 'the source was restored; run again');
    }
    if (opts.beforePointOfNoReturn) await opts.beforePointOfNoReturn(deadline);
    if (s.plan.cdc && s.adapter.handOverCdcSlots) {
      // Last before the point of no return: the target has every write committed before the fence and nothing
      // else since, so a slot made now decodes exactly what commits on the target after the switch.
      const sourceStop = result.catchUp.fencePosition;
      result.cdc = await runner.step(
        'cdc-handover',
        `create CDC slot(s) ${s.plan.cdc.slots.join(', ')} on the target`,
        () => s.adapter.handOverCdcSlots!(sourceStop, deadline),
        (slots) => ({ slots }),
      );
    }
    if (Date.now() > deadline)
      throw new BudgetExceededError(
        `the write-downtime budget of ${formatDuration(budgetMs)} ran out before the switch (${formatDuration(Date.now() - fencedAt)} since the fence)`,
        'raise limits.maxWriteBlocked or lower the lag before fencing',
      );
    await runner.step(
      'point-of-no-return',
      'point of no return: the target becomes the primary',
      async () => {
        // The fence's ok record is on disk before anything irreversible. The compare's snapshots: the fenced
        // source and the target holding every commit before the fence; optional, so a failure is a warning.
        const snapshot = switched.compare?.snapshot().then(
          () => (switched.snapshotAt = new Date().toISOString()),
          (e: unknown) => runner.warnings.push(`verify after the switch not run: taking its snapshots failed (${e instanceof Error ? e.message : String(e)})`),
        );
        await Promise.all([assertSourceLock(s), runner.settle(), snapshot]);
        return { at: new Date().toISOString() };
      },
      (r) => r,
    );
  } catch (e) {
    await restoreSource(s, journal, runner, { held, fenced });
    await undoTargetPreparations(s, journal.state.records, runner);
    throw e;
  }
  const forward = await finishForward(s, runner, blockedFrom);
  result.writeBlockedMs = forward.writeBlockedMs;
  return forward.detached;
}

/** Before the point of no return, after the source is restored: what the run made on the target for the switch goes. */
async function undoTargetPreparations(s: PlanSession, records: readonly JournalRecord[], runner: Pick<Runner, 'emit' | 'warnings'>): Promise<void> {
  await dropCdcSlots(s, records, runner);
  await dropPreparedReverse(s, runner);
}

/**
 * What reversePrepare made ahead of the switch (PostgreSQL: the reverse publication on the target) is of no use
 * once the run is rolled back: a retry makes it again. Best effort.
 */
async function dropPreparedReverse(s: PlanSession, runner: Pick<Runner, 'emit' | 'warnings'>): Promise<void> {
  if (!s.plan.reverse || s.direction !== 'forward' || !s.adapter.reverseUnprepare) return;
  try {
    const dropped = await s.adapter.reverseUnprepare();
    if (dropped.length) runner.emit('rollback', 'info', `dropped ${dropped.join(', ')} (made for the reverse path ahead of the switch)`);
  } catch (e) {
    runner.warnings.push(`dropping the reverse path's objects made ahead of the switch failed (${e instanceof Error ? e.message : String(e)}): \`cutover status\` lists what is left`);
  }
}

/**
 * Before the point of no return, after the source is restored: the CDC slots a run made on the target start at a
 * position that is no longer the switch, so they go (consumers go on with their source slots). Only when the journal
 * shows the run began making them since its last hold: a slot of that name made by someone else stays. Best effort.
 */
async function dropCdcSlots(s: PlanSession, records: readonly JournalRecord[], runner: Pick<Runner, 'emit' | 'warnings'>): Promise<string[]> {
  if (!s.adapter.dropCdcSlots) return [];
  let hold = -1;
  let began = -1;
  records.forEach((r, i) => {
    if ((r.step === 'hold' || r.step === 'fence') && r.status === 'begin') hold = i;
    if (r.step === 'cdc-handover' && r.status === 'begin') began = i;
  });
  if (began < 0 || began < hold) return [];
  try {
    const dropped = await s.adapter.dropCdcSlots();
    if (dropped.length) runner.emit('rollback', 'info', `dropped ${dropped.join(', ')}: consumers go on reading the source`);
    return dropped;
  } catch (e) {
    runner.warnings.push(
      `dropping the CDC slot(s) ${(s.plan.cdc?.slots ?? []).join(', ')} on the target failed (${e instanceof Error ? e.message : String(e)}): drop them there before the next run (check names each one)`,
    );
    return [];
  }
}

/**
 * Between the detach and the open nothing writes the target: the reverse path starts exactly there. It must never
 * fail the cutover past its point of no return: a failure leaves the reverse path unavailable, reported. A resumed
 * run does not make it (the target may have opened before the crash); an existing one is kept by the adapter.
 */
async function beginReverse(s: PlanSession, runner: Runner, resumed: boolean): Promise<string | undefined> {
  if (!s.plan.reverse || s.direction !== 'forward' || !s.adapter.reverseBegin) return undefined;
  if (resumed) return 'not made by a resumed run';
  try {
    await s.adapter.reverseBegin();
    return 'begun';
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    runner.warnings.push(`reverse path unavailable (cutover revert will refuse): ${why}`);
    return `unavailable: ${why}`;
  }
}

/** Before the hold: what the reverse path waits for is done here, not in the window. A failure only costs that. */
async function prepareReverse(s: PlanSession, runner: Runner): Promise<void> {
  if (!s.plan.reverse || s.direction !== 'forward' || !s.adapter.reversePrepare) return;
  try {
    await s.adapter.reversePrepare();
  } catch (e) {
    runner.emit('repoint', 'info', `the reverse path's slot will be made inside the window (preparing it failed: ${e instanceof Error ? e.message : String(e)})`);
  }
}

/** After cleanup, out of the window: the old source starts following the new primary from the switch position. */
async function startReverse(s: PlanSession, runner: Runner, result: Partial<RunResult>): Promise<void> {
  if (!s.plan.reverse || s.direction !== 'forward' || !s.adapter.reverseStart) return;
  const late = result.leakCheck?.late;
  if (late && (late.replicated.length || late.sourceOnly.length || late.openWriters.length)) {
    // The old source took writes of its own after the switch: following the new primary would mix the two.
    result.reverse = { state: 'unavailable', why: 'the old source took writes after the switch (see the leak check): it no longer matches the new primary' };
    runner.warnings.push(`reverse path not started: ${result.reverse.why}`);
    return;
  }
  if (runner.reverseBegun?.startsWith('unavailable: ')) {
    // Already reported by beginReverse.
    result.reverse = { state: 'unavailable', why: runner.reverseBegun.slice('unavailable: '.length) };
    return;
  }
  try {
    await runner.step('reverse', 'the old source follows the new primary (reverse replication for `cutover revert`)', () => s.adapter.reverseStart!());
    result.reverse = { state: 'following' };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    result.reverse = { state: 'unavailable', why };
    runner.warnings.push(`reverse path unavailable (cutover revert will refuse): ${why}`);
  }
}

function leakError(leak: LeakCheck): OperationError {
  return new OperationError(`leak check failed: ${describeLeak(leak)}`, 'the source was restored; end those sessions or fence with readOnly.mode strict and the app roles');
}

/** After the point of no return: detach and repoint, open the target, release clients. Every step repeatable. */
async function finishForward(s: PlanSession, runner: Runner, blockedFrom: number): Promise<{ writeBlockedMs: number; detached: DetachResult }> {
  let detached: DetachResult = {};
  let reverse: string | undefined;
  try {
    // The target opens before the router points at it, so the switch and the release of held clients can be
    // one step (switchRouter): nothing may reach a PgBouncer pool between its RELOAD and its RESUME.
    const repoint = !s.router ? 'stop replication into the target and open it for writes' : `open the target, point ${s.router.describe()} at it${s.router.switchTo ? ' and release clients' : ''}`;
    await runner.step(
      'repoint',
      repoint,
      async () => {
        // Beside the detach, the part of the switch nobody sees yet (PgBouncer: the new ini fsynced under a
        // temporary name); its error, if any, comes out of the switch below.
        if (s.router?.prepareSwitch) void s.router.prepareSwitch(endpointOf(s.target)).catch(() => {});
        if (s.plan.reverse && s.direction === 'forward' && s.adapter.reverseBegin) {
          // The reverse path's slot must start before the target opens: detach, begin it, then open.
          detached = (await s.adapter.detachTarget()) ?? {};
          reverse = runner.reverseBegun = await beginReverse(s, runner, blockedFrom === 0);
          await s.targetHold.off();
        } else {
          // Opening the target beside the detach is safe: no client reaches it before the router points there.
          const [d] = await Promise.all([s.adapter.detachTarget(), s.targetHold.off()]);
          detached = d ?? {};
        }
        if (s.router) await switchRouter(s.router, endpointOf(s.target));
      },
      () => ({ ...(detached.appliedThrough ? { appliedThrough: detached.appliedThrough } : {}), ...(reverse !== undefined ? { reverse } : {}) }),
    );
    await runner.step('lift', 'release clients', async () => {
      // switchTo released them in the same write as the switch; release is for routers without it.
      if (s.router && !s.router.switchTo) await s.router.release();
    });
  } catch (e) {
    // Clients must not wait forever; the journal says where to continue.
    await s.router?.release().catch(() => {});
    throw new NeedsOperatorError(
      'needs-operator',
      `the cutover stopped after its point of no return: ${e instanceof Error ? e.message : String(e)}`,
      'fix the cause and run `cutover resume` to finish; the source stays read-only',
      { cause: e },
    );
  }
  const blocked = blockedFrom ? Date.now() - blockedFrom : 0;
  runner.emit('lift', 'info', blockedFrom ? `write-blocked window ${formatDuration(blocked)} (hold to release)` : 'resumed after a restart: window not measured');
  if (s.plan.hooks.afterSwitch) await runHook(s.plan.hooks.afterSwitch, 'afterSwitch', s).catch((e: Error) => runner.warnings.push(`afterSwitch hook failed: ${e.message}`));
  return { writeBlockedMs: blocked, detached };
}

async function cleanupAndReport(s: PlanSession, runner: Runner, result: Partial<RunResult>): Promise<string[]> {
  let dropped: string[];
  try {
    dropped = await runner.step(
      'cleanup',
      'drop replication objects',
      () => s.adapter.cleanup(),
      (d) => ({ dropped: d }),
    );
  } catch (e) {
    // The switch is done: a cleanup that fails (e.g. the old source restarted under the tool's session) is not a
    // failed cutover, and nothing was restored; the journal stays past the point of no return for `resume`.
    throw new NeedsOperatorError(
      'needs-operator',
      `the cutover is done (the target is the primary) but dropping the replication objects failed: ${e instanceof Error ? e.message : String(e)}`,
      'run `cutover resume` to drop them (`cutover status` lists each with the statement that drops it); the source stays read-only',
      { cause: e },
    );
  }
  await startReverse(s, runner, result);
  await runner.step(
    'report',
    'report',
    async () => ({ writeBlockedMs: result.writeBlockedMs, budgetMs: result.budgetMs, steps: runner.steps }),
    (r) => r as Record<string, unknown>,
  );
  return dropped;
}

/**
 * Before the point of no return: unfence the source and let clients through to it again. Nothing may stand in
 * the way of that, so each action comes first and its journal record after, best effort: a state dir that
 * cannot be written (disk full, read-only, lock lost) is reported, never a reason to leave the source fenced.
 */
async function restoreSource(
  s: PlanSession,
  journal: StateJournal | undefined,
  runner: Pick<Runner, 'emit' | 'warnings'>,
  state: { held: boolean; fenced: boolean },
  noJournal = 'the state dir is not writable',
): Promise<void> {
  const errors: string[] = [];
  let routedBack = true;
  const unjournaled: string[] = [];
  const note = async (step: 'unfence' | 'route-back', error: string | undefined): Promise<void> => {
    try {
      if (!journal) throw new Error('the state dir is not usable');
      await journal.begin(step);
      await (error === undefined ? journal.ok(step) : journal.fail(step, { error }));
    } catch (e) {
      unjournaled.push(`${step} (${e instanceof Error ? e.message : String(e)})`);
    }
  };
  const attempt = async (step: 'unfence' | 'route-back', fn: () => Promise<void>): Promise<void> => {
    let error: string | undefined;
    try {
      await fn();
    } catch (e) {
      error = `${step}: ${e instanceof Error ? e.message : String(e)}`;
      errors.push(error);
      if (step === 'route-back') routedBack = false;
    }
    await note(step, error);
  };
  await attempt('unfence', async () => {
    if (state.fenced) await s.sourceFence.off();
  });
  await attempt('route-back', async () => {
    if (!s.router) return;
    try {
      await switchRouter(s.router, endpointOf(s.source));
    } finally {
      // Held clients must not wait for the operator, even when the router cannot point back.
      await s.router.release();
    }
  });
  if (unjournaled.length)
    runner.warnings.push(`the journal could not record ${unjournaled.join(', ')}: \`cutover status\` may show the plan in flight; \`cutover rollback\` confirms the restore once the state dir is writable`);
  runner.emit(
    'rollback',
    errors.length ? 'fail' : 'ok',
    errors.length ? `restoring the source failed: ${errors.join('; ')}` : `source writable again, clients routed to it${unjournaled.length ? ` (not journaled: ${noJournal})` : ''}`,
  );
  if (errors.length) {
    // Where the router sends clients is unknown now: released clients may write to a server that is not the source.
    const hint =
      routedBack || !s.router
        ? 'run `cutover rollback` now'
        : `make ${s.router.describe()} send clients to the source (${s.source.host}:${s.source.port}) again, by hand if need be, then run \`cutover rollback\`: it points the router back again and journals it`;
    throw new NeedsOperatorError('needs-operator', `the run failed and restoring the source failed too: ${errors.join('; ')}`, hint);
  }
}

async function runHook(argv: string[], name: string, s: PlanSession): Promise<void> {
  const [cmd, ...args] = argv;
  const r = await runCommand(cmd!, args, {
    env: { CUTOVER_PLAN: s.plan.file, CUTOVER_DATABASE: s.database, ...(s.schema !== undefined ? { CUTOVER_SCHEMA: s.schema } : {}), CUTOVER_HOOK: name },
    reject: false,
    timeoutMs: 60_000,
    secrets: s.secrets.all,
  });
  if (r.exitCode !== 0) throw new OperationError(`${name} hook exited ${r.exitCode}: ${(r.stderr || r.stdout).split('\n').slice(-1)[0] ?? ''}`, 'fix the hook or remove it from the plan');
}

export interface RollbackResult {
  planId: string;
  restored: boolean;
  leftovers: Awaited<ReturnType<PlanSession['adapter']['leftovers']>>;
  /** E.g. the state dir could not be written, so the journal does not record the restore. */
  warnings: string[];
}

/**
 * `cutover rollback`: before the point of no return, the source writable and routing back on it. A state dir
 * that cannot be written does not stop it: the journal is read to rule out the point of no return, the plan's
 * lock on the source keeps other runners out, and the restore is done and reported as not journaled. When another
 * session holds that lock, rollback refuses unless forced (then rollbackWithoutLock).
 */
export async function rollbackPlan(s: PlanSession, opts: LockOptions & { cleanup?: boolean; onEvent?: (e: CutoverEvent) => void } = {}): Promise<RollbackResult> {
  const server = await s.adapter.lockSource(s.planId, `${process.pid}@${hostname()}`);
  if (!server.acquired) {
    // The holder may be a live run that will still check its leak watch and lock; only the operator can tell
    // that it is gone (its host crashed, its session lingering until TCP keepalive gives up).
    if (!opts.force) {
      throw new NeedsOperatorError(
        'locked',
        `plan ${s.planId} is locked on the source by ${describeHolder(server.holder)}: another cutover process may be running it, nothing was changed`,
        'stop that process (an interrupted run restores the source itself); if it is gone, `cutover rollback --force` makes the source writable and releases clients without the lock',
      );
    }
    return rollbackWithoutLock(s, server.holder, opts);
  }
  const unlockServer = () => s.adapter.unlockSource(s.planId).catch(() => {});
  let lock: StateLock | undefined;
  let journal: StateJournal | undefined;
  const warnings: string[] = [];
  try {
    try {
      lock = await s.state.acquire(s.plan.stateDir, s.planId, { force: opts.force === true });
      journal = await s.state.openJournal(lock, { secrets: s.secrets.all });
    } catch (e) {
      const failure = stateDirFailure(e);
      if (failure === undefined) throw e;
      warnings.push(`the state dir ${s.plan.stateDir} is not usable (${failure}): restoring without its lock (the source's plan lock is held) and without journaling`);
    }
    const records: JournalRecord[] = journal ? journal.state.records : await readRecords(s);
    const phase = planPhase(records);
    if (phase === 'past-pnr' || phase === 'done') {
      throw new NeedsOperatorError(
        'needs-operator',
        `plan ${s.planId} passed its point of no return: the target has taken writes, rolling back would lose them`,
        phase === 'done' ? 'the cutover is complete; moving back is a new cutover in the other direction' : 'run `cutover resume` to finish going forward',
      );
    }
    const out = { warnings, emit: (step: string, status: CutoverEvent['status'], message: string) => opts.onEvent?.({ step, status, message }) };
    await restoreSource(s, journal, out, { held: true, fenced: true });
    await undoTargetPreparations(s, records, out);
    // The leak check's slot only keeps WAL; a retry makes it again before its hold.
    await s.adapter.dropLeakSlot?.();
    if (opts.cleanup) {
      await s.adapter.cleanup();
      await s.targetHold.off().catch(() => {});
    }
    return { planId: s.planId, restored: true, leftovers: await s.adapter.leftovers(), warnings };
  } finally {
    await journal?.close().catch(() => {});
    await lock?.release().catch(() => {});
    await unlockServer();
  }
}

/**
 * `rollback --force` while another session holds the plan's server lock (e.g. the session of a runner whose host
 * crashed lives on until TCP keepalive gives up, about two hours): the source is unfenced and held clients
 * released; the journal (owned by the holder) and cleanup are left alone, and the holder is named (exit 5).
 */
async function rollbackWithoutLock(s: PlanSession, holder: SourceLockHolder | undefined, opts: { onEvent?: (e: CutoverEvent) => void }): Promise<never> {
  const phase = planPhase(await readRecords(s));
  if (phase === 'past-pnr' || phase === 'done') {
    throw new NeedsOperatorError(
      'needs-operator',
      `plan ${s.planId} passed its point of no return: the target has taken writes, rolling back would lose them`,
      phase === 'done' ? 'the cutover is complete; moving back is a new cutover in the other direction' : 'run `cutover resume` to finish going forward',
    );
  }
  const out = { warnings: [] as string[], emit: (step: string, status: CutoverEvent['status'], message: string) => opts.onEvent?.({ step, status, message }) };
  await restoreSource(s, undefined, out, { held: true, fenced: true }, 'another session holds the plan lock');
  throw new NeedsOperatorError(
    'locked',
    `the source is writable again and clients are released, but plan ${s.planId} is locked on the source by ${describeHolder(holder)}: the journal and cleanup were skipped`,
    'if that cutover process is gone, end its session on the source (PostgreSQL pg_terminate_backend, MySQL KILL) and run `cutover rollback` again to journal the restore',
  );
}

/** The journal read without the lock, for a rollback whose state dir cannot be written. */
async function readRecords(s: PlanSession): Promise<JournalRecord[]> {
  try {
    return (await s.state.replay(s.plan.stateDir, s.planId)).records;
  } catch (e) {
    if (isCutoverError(e)) throw e;
    throw new NeedsOperatorError(
      'needs-operator',
      `cannot read the journal of plan ${s.planId} in ${s.plan.stateDir} (${e instanceof Error ? e.message : String(e)}), so whether it passed its point of no return is unknown`,
      'make the journal readable again (or copy the state dir elsewhere and point state: at it), then run rollback',
    );
  }
}

/** `cutover resume`: after the point of no return, finish forward; before it, restore the source and run again. */
export async function resumePlan(s: PlanSession, opts: RunOptions = {}): Promise<RunResult> {
  return withLock(s, opts, (journal) => resumeLocked(s, journal, opts));
}

/** `resumePlan` for a caller that holds the plan's locks already (revert). */
export async function resumeLocked(s: PlanSession, journal: StateJournal, opts: RunOptions = {}): Promise<RunResult> {
  const phase = planPhase(journal.state.records);
  const runner = new Runner(s, journal, opts);
  if (phase === 'done') throw new NeedsOperatorError('needs-operator', `plan ${s.planId} is already cut over`, 'nothing to resume');
  if (phase === 'past-pnr') {
    const result: RunResult = { planId: s.planId, outcome: 'done', budgetMs: s.plan.limits.maxWriteBlockedMs, steps: runner.steps, warnings: runner.warnings, findings: [] };
    await checkIdentities(s, journal);
    if (s.sourceFence.canWatchLeaks)
      runner.warnings.push('leak check after the point of no return not run: the decoding slot of the interrupted run ended with its session; writes to the old source since then are not checked');
    result.writeBlockedMs = (await finishForward(s, runner, 0)).writeBlockedMs;
    result.cleanedUp = await cleanupAndReport(s, runner, result);
    return result;
  }
  if (phase === 'in-flight') {
    await restoreSource(s, journal, runner, { held: true, fenced: true });
    await undoTargetPreparations(s, journal.state.records, runner);
  }
  return doRun(s, journal, opts, planPhase(journal.state.records) === 'synced' || s.direction === 'revert');
}
