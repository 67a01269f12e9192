import { NeedsOperatorError, PreflightError } from '../errors.js';
import type { Plan, PlanSecrets } from '../plan/index.js';
import type { ReverseState } from './cutover-adapter.js';
import type { JournalRecord } from './journal.js';
import type { StateJournal } from './state-store.js';
import { finalized, planPhase, type PlanPhase } from './phase.js';
import { resumeLocked, rollbackPlan, runLocked, withLock, type LockOptions, type RollbackResult, type RunOptions, type RunResult } from './run.js';
import { openSessionFor, revertPlanId, type PlanSession } from './session.js';

/**
 * `cutover revert`: the cutover in the other direction over the reverse path, by the same orchestrator: a session
 * whose source is the plan's target (the new primary) and whose target is the plan's source (the old one, which
 * follows it). Its journal, lock and replication objects go by the revert plan id (`<plan id>-revert`).
 */

/** The plan with source and target swapped: what a revert moves, from where to where. */
export function revertedPlan(plan: Plan): Plan {
  // The plan's replication account belongs to the old source; the reverse path has its own, made on the target.
  const { replication: _, ...oldSource } = plan.source;
  // CDC slots are handed over forward only (README: CDC consumers): the consumers' original slots are still on the
  // old source and also decode what the reverse path applied there, so a revert makes no slots of its own.
  const { cdc: _cdc, ...rest } = plan;
  return { ...rest, source: { ...plan.target }, target: oldSource, method: 'replication', reverse: false };
}

function revertedSecrets(secrets: PlanSecrets): PlanSecrets {
  const { source, target, replication: _, ...rest } = secrets;
  return { ...rest, ...(target !== undefined ? { source: target } : {}), ...(source !== undefined ? { target: source } : {}) };
}

export function openRevertSession(plan: Plan, planId: string, secrets: PlanSecrets): Promise<PlanSession> {
  return openSessionFor(revertedPlan(plan), revertPlanId(planId), revertedSecrets(secrets), { direction: 'revert' });
}

/** Where the forward cutover stands, from its journal (read without its lock: only the revert's are held). */
async function forwardPhase(s: Pick<PlanSession, 'plan' | 'state'>, forwardId: string): Promise<PlanPhase> {
  return planPhase((await s.state.replay(s.plan.stateDir, forwardId)).records);
}

export interface RevertOptions extends RunOptions {
  /** Continue an interrupted revert (forward past its point of no return, else restore and run again). */
  resume?: boolean;
}

/** Why a revert cannot start, checked under the revert's locks before anything is fenced. */
function refuseUnlessRevertable(forwardId: string, forward: PlanPhase, revert: PlanPhase, revertRecords: readonly JournalRecord[]): void {
  if (forward === 'past-pnr') throw new NeedsOperatorError('needs-operator', `plan ${forwardId} is past its point of no return but not finished`, 'run `cutover resume` to finish the cutover first, then revert');
  if (forward !== 'done')
    throw new PreflightError('preflight', `plan ${forwardId} has not been cut over (${forward}): there is nothing to revert`, 'before the point of no return `cutover rollback` puts the source back');
  if (revert === 'done') throw new NeedsOperatorError('needs-operator', `plan ${forwardId} was already reverted`, 'nothing to do; `cutover status` shows it');
  const fin = finalized(revertRecords);
  if (fin)
    throw new PreflightError(
      'preflight',
      fin.state === 'done'
        ? `revert of plan ${forwardId} refused: \`cutover finalize\` ended its reverse path at ${fin.at}, so the old source no longer follows the new primary; nothing was changed`
        : `revert of plan ${forwardId} refused: a \`cutover finalize\` began at ${fin.at} and did not finish, so the reverse path may be partly dropped; nothing was changed`,
      fin.state === 'done' ? 'moving back is a new cutover with source and target swapped' : 'run `cutover finalize` again to finish it; moving back is then a new cutover with source and target swapped',
    );
}

function brokenStream(forwardId: string, st: ReverseState): PreflightError {
  return new PreflightError(
    'preflight',
    `revert of plan ${forwardId} refused: the old source no longer follows the new primary (${st.why ?? st.state}), so writes made since then would be lost; nothing was changed`,
    st.state === 'absent'
      ? 'the reverse path was never made (reverse: false, or the cutover reported it unavailable) or `cutover finalize` ended it: moving back is a new cutover with source and target swapped'
      : `${st.fix ? `${st.fix}; otherwise ` : ''}\`cutover finalize\` and move back with a new cutover (source and target swapped)`,
  );
}

/**
 * The revert's locks (its plan lock on the new primary, its state lock) around `fn`: the exclusion between
 * `cutover revert` and `cutover finalize`. Held by another process, the refusal says which commands hold them.
 */
async function withRevertLocks<T>(rs: PlanSession, forwardId: string, what: string, opts: LockOptions, fn: (journal: StateJournal) => Promise<T>): Promise<T> {
  let entered = false;
  try {
    return await withLock(rs, opts, (journal) => {
      entered = true;
      return fn(journal);
    });
  } catch (e) {
    if (entered || !(e instanceof NeedsOperatorError) || e.code !== 'locked') throw e;
    throw new NeedsOperatorError(
      'locked',
      `${what} of plan ${forwardId} refused: a \`cutover revert\` or \`cutover finalize\` of this plan holds the revert's lock (${e.message}); nothing was changed`,
      'revert and finalize exclude each other: wait for the other command to finish and check `cutover status`',
      { cause: e },
    );
  }
}

/**
 * Runs (or with `resume`, continues) the revert: the forward cutover must be done and its reverse path intact.
 * Its preconditions are checked under the revert's locks (the revert plan's lock on the new primary and its state
 * lock), which `cutover finalize` takes too: the two never interleave. Before the revert's point of no return a
 * failure puts the new primary back (unfenced, clients routed to it).
 */
export async function revertPlan(rs: PlanSession, forwardId: string, opts: RevertOptions = {}): Promise<RunResult> {
  return withRevertLocks(rs, forwardId, 'revert', opts, async (journal) => {
    const revert = planPhase(journal.state.records);
    refuseUnlessRevertable(forwardId, await forwardPhase(rs, forwardId), revert, journal.state.records);
    if (revert === 'past-pnr') {
      if (!opts.resume) throw new NeedsOperatorError('needs-operator', `the revert of plan ${forwardId} is past its point of no return`, 'run `cutover revert --resume` to finish it');
      return resumeLocked(rs, journal, opts);
    }
    if (revert === 'in-flight' && !opts.resume)
      throw new NeedsOperatorError(
        'needs-operator',
        `a previous revert of plan ${forwardId} stopped while the new primary was fenced`,
        'run `cutover revert --resume` (restores and reverts again) or `cutover revert --rollback`',
      );
    const st = await rs.adapter.streamState!();
    if (st.state !== 'following') throw brokenStream(forwardId, st);
    return opts.resume ? resumeLocked(rs, journal, opts) : runLocked(rs, journal, opts);
  });
}

/** Before the revert's point of no return: the new primary writable again and routing back on it. */
export async function rollbackRevert(rs: PlanSession, opts: LockOptions & { onEvent?: RunOptions['onEvent'] } = {}): Promise<RollbackResult> {
  return rollbackPlan(rs, opts);
}

export interface FinalizeResult {
  planId: string;
  /** What was dropped (subscription, slot, publication, role, sentinel tables). */
  dropped: string[];
}

/**
 * `cutover finalize`: the cutover is kept for good: the reverse path ends and its objects are dropped (the slot
 * on the new primary would keep its WAL forever). `s` is the plan's session, `rs` its revert session: finalize
 * takes the revert's locks first (the same lock on the same server `cutover revert` takes), reads both journals
 * under them and journals itself in the revert's journal, so a revert and a finalize exclude each other and a
 * later revert refuses saying why; then the plan's own locks, as any command on the plan.
 */
export async function finalizePlan(s: PlanSession, rs: PlanSession, opts: LockOptions = {}): Promise<FinalizeResult> {
  return withRevertLocks(rs, s.planId, 'finalize', opts, async (journal) => {
    const forward = await forwardPhase(s, s.planId);
    const revert = planPhase(journal.state.records);
    if (forward === 'past-pnr') throw new NeedsOperatorError('needs-operator', `plan ${s.planId} is past its point of no return but not finished`, 'run `cutover resume` first');
    if (forward !== 'done') throw new PreflightError('preflight', `plan ${s.planId} has not been cut over (${forward}): nothing to finalize`, 'finalize follows a finished `cutover run`');
    if (revert === 'in-flight' || revert === 'past-pnr')
      throw new NeedsOperatorError('needs-operator', `a revert of plan ${s.planId} is under way (${revert})`, 'finish it with `cutover revert --resume` (or `--rollback`) first');
    if (revert === 'done')
      throw new NeedsOperatorError('needs-operator', `plan ${s.planId} was reverted: the old source is the primary again, there is no reverse path to end`, 'nothing to do; `cutover status` shows it');
    if (!s.plan.reverse || !s.adapter.reverseEnd) return { planId: s.planId, dropped: [] };
    await journal.begin('finalize');
    try {
      const dropped = await withLock(s, opts, () => s.adapter.reverseEnd!());
      await journal.ok('finalize', { dropped });
      return { planId: s.planId, dropped };
    } catch (e) {
      await journal.fail('finalize', { error: e instanceof Error ? e.message : String(e) }).catch(() => {});
      throw e;
    }
  });
}
