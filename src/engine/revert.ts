import { NeedsOperatorError, PreflightError } from '../errors.js';
import type { Plan, PlanSecrets } from '../plan/index.js';
import type { ReverseState } from './cutover-adapter.js';
import { planPhase, type PlanPhase } from './phase.js';
import { resumePlan, rollbackPlan, runPlan, withLock, type LockOptions, type RollbackResult, type RunOptions, type RunResult } from './run.js';
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

/** Where the forward cutover and its revert stand, from their journals. */
export async function revertPhases(s: Pick<PlanSession, 'plan' | 'state'>, planId: string): Promise<{ forward: PlanPhase; revert: PlanPhase }> {
  const [f, r] = await Promise.all([s.state.replay(s.plan.stateDir, planId), s.state.replay(s.plan.stateDir, revertPlanId(planId))]);
  return { forward: planPhase(f.records), revert: planPhase(r.records) };
}

export interface RevertOptions extends RunOptions {
  /** Continue an interrupted revert (forward past its point of no return, else restore and run again). */
  resume?: boolean;
}

/** Why a revert cannot start, checked before anything is locked or fenced. */
async function refuseUnlessRevertable(rs: PlanSession, forwardId: string, phases: { forward: PlanPhase; revert: PlanPhase }): Promise<void> {
  if (phases.forward === 'past-pnr') throw new NeedsOperatorError('needs-operator', `plan ${forwardId} is past its point of no return but not finished`, 'run `cutover resume` to finish the cutover first, then revert');
  if (phases.forward !== 'done')
    throw new PreflightError('preflight', `plan ${forwardId} has not been cut over (${phases.forward}): there is nothing to revert`, 'before the point of no return `cutover rollback` puts the source back');
  if (phases.revert === 'done') throw new NeedsOperatorError('needs-operator', `plan ${forwardId} was already reverted`, 'nothing to do; `cutover status` shows it');
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
 * Runs (or with `resume`, continues) the revert: the forward cutover must be done and its reverse path intact.
 * Before the revert's point of no return a failure puts the new primary back (unfenced, clients routed to it).
 */
export async function revertPlan(rs: PlanSession, forwardId: string, opts: RevertOptions = {}): Promise<RunResult> {
  const phases = await revertPhases(rs, forwardId);
  await refuseUnlessRevertable(rs, forwardId, phases);
  if (phases.revert === 'past-pnr') {
    if (!opts.resume) throw new NeedsOperatorError('needs-operator', `the revert of plan ${forwardId} is past its point of no return`, 'run `cutover revert --resume` to finish it');
    return resumePlan(rs, opts);
  }
  if (phases.revert === 'in-flight' && !opts.resume)
    throw new NeedsOperatorError(
      'needs-operator',
      `a previous revert of plan ${forwardId} stopped while the new primary was fenced`,
      'run `cutover revert --resume` (restores and reverts again) or `cutover revert --rollback`',
    );
  const st = await rs.adapter.streamState!();
  if (st.state !== 'following') throw brokenStream(forwardId, st);
  return opts.resume ? resumePlan(rs, opts) : runPlan(rs, opts);
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
 * on the new primary would keep its WAL forever). Refused while a revert is under way.
 */
export async function finalizePlan(s: PlanSession, opts: LockOptions = {}): Promise<FinalizeResult> {
  const phases = await revertPhases(s, s.planId);
  if (phases.forward === 'past-pnr') throw new NeedsOperatorError('needs-operator', `plan ${s.planId} is past its point of no return but not finished`, 'run `cutover resume` first');
  if (phases.forward !== 'done') throw new PreflightError('preflight', `plan ${s.planId} has not been cut over (${phases.forward}): nothing to finalize`, 'finalize follows a finished `cutover run`');
  if (phases.revert === 'in-flight' || phases.revert === 'past-pnr')
    throw new NeedsOperatorError('needs-operator', `a revert of plan ${s.planId} is under way (${phases.revert})`, 'finish it with `cutover revert --resume` (or `--rollback`) first');
  if (!s.plan.reverse || !s.adapter.reverseEnd) return { planId: s.planId, dropped: [] };
  return withLock(s, opts, async () => ({ planId: s.planId, dropped: await s.adapter.reverseEnd!() }));
}
