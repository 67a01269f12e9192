import type { ScopeStatus } from '../readonly/types.js';
import type { CdcSlotHandover, Leftover, ReverseState } from './cutover-adapter.js';
import type { JournalRecord } from './journal.js';
import type { LockInfo } from './lock.js';
import { finalized, lastOkData, planPhase, type PlanPhase } from './phase.js';
import { revertPlanId, type PlanSession } from './session.js';

export interface PlanStatus {
  planId: string;
  phase: PlanPhase;
  /** What to do next, in words. */
  next: string;
  lock?: LockInfo;
  journal: Array<Pick<JournalRecord, 'seq' | 'step' | 'status' | 'at'>>;
  /** Steps begun and never finished: the process died in them. */
  unfinished: string[];
  source?: ScopeStatus;
  lagBytes?: number | null;
  leftovers: Leftover[];
  /**
   * Plan `cdc`, once handed over (past the point of no return): each consumer's target slot and start, the source
   * position it stops at, and how far it has confirmed on the source now (null: that slot is gone).
   */
  cdc?: Array<CdcSlotHandover & { sourceConfirmed?: string | null }>;
  /** After a cutover with plan `reverse`: whether the old source follows the new primary, and its lag. */
  reverse?: ReverseState;
  /** Where `cutover revert` stands (its own journal), once one began. */
  revert?: { phase: PlanPhase; unfinished: string[]; finalized?: { state: 'done' | 'unfinished'; at: string } };
  /** Live checks that could not run (a server down): the journal part is still true. */
  errors: string[];
}

const NEXT: Record<PlanPhase, string> = {
  fresh: 'run `cutover check`, then `cutover sync` or `cutover run`',
  synced: 'the target is in sync: `cutover run` when ready',
  'in-flight': 'a run stopped with the source fenced: `cutover resume` (restore and run again) or `cutover rollback`',
  'past-pnr': 'past the point of no return: `cutover resume` to finish',
  done: 'cut over; the source is left read-only',
};

/** Journal, lock and, where the servers answer, the source fence, lag and leftover replication objects. */
export async function planStatus(s: PlanSession): Promise<PlanStatus> {
  const replay = await s.state.replay(s.plan.stateDir, s.planId);
  const phase = planPhase(replay.records);
  const lock = await s.state.readLock(s.plan.stateDir, s.planId);
  const status: PlanStatus = {
    planId: s.planId,
    phase,
    next: NEXT[phase],
    ...(lock ? { lock } : {}),
    journal: replay.records.map(({ seq, step, status: st, at }) => ({ seq, step, status: st, at })),
    unfinished: replay.unfinished.map((r) => r.step),
    leftovers: [],
    errors: [],
  };
  const live = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (e) {
      status.errors.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  };
  const fence = await live('source fence', () => s.sourceFence.status());
  if (fence) status.source = fence;
  const lag = await live('replication lag', () => s.adapter.lagBytes());
  if (lag !== undefined) status.lagBytes = lag;
  status.leftovers = (await live('leftovers', () => s.adapter.leftovers())) ?? [];
  // A rollback drops the CDC slots a run made on the target; one it could not drop (or one made by hand) shows here.
  if (s.plan.cdc && s.adapter.cdcTargetLeftovers && (phase === 'fresh' || phase === 'synced')) status.leftovers.push(...((await live('CDC slots on the target', () => s.adapter.cdcTargetLeftovers!())) ?? []));
  const handed = lastOkData(replay.records, 'cdc-handover')?.slots as CdcSlotHandover[] | undefined;
  if (handed && (phase === 'past-pnr' || phase === 'done')) {
    const at = (await live('CDC slots on the source', async () => (await s.adapter.cdcSourcePositions?.()) ?? {})) ?? {};
    status.cdc = handed.map((h) => ({ ...h, ...(h.slot in at ? { sourceConfirmed: at[h.slot] } : {}) }));
  }
  if (s.plan.reverse && s.direction === 'forward' && (phase === 'done' || phase === 'past-pnr')) {
    const revert = await s.state.replay(s.plan.stateDir, revertPlanId(s.planId));
    const revertPhase = planPhase(revert.records);
    const fin = finalized(revert.records);
    if (revert.records.length) status.revert = { phase: revertPhase, unfinished: revert.unfinished.map((r) => r.step), ...(fin ? { finalized: fin } : {}) };
    const reverse = s.adapter.reverseState ? await live('reverse path', () => s.adapter.reverseState!()) : undefined;
    if (reverse) status.reverse = reverse;
    if (fin?.state === 'done') status.next = `finalized at ${fin.at}: the cutover is kept for good, the reverse path ended`;
    else if (fin) status.next = 'a finalize stopped before it finished: run `cutover finalize` again';
    else if (revertPhase === 'done') status.next = 'reverted: the old source is the primary again; the new one is left read-only';
    else if (revertPhase === 'in-flight') status.next = 'a revert stopped with the new primary fenced: `cutover revert --resume` or `cutover revert --rollback`';
    else if (revertPhase === 'past-pnr') status.next = 'a revert is past its point of no return: `cutover revert --resume` to finish it';
    else if (phase === 'done' && reverse?.state === 'following') status.next = 'cut over; the old source follows the new primary: `cutover revert` goes back, `cutover finalize` ends the reverse path';
  }
  return status;
}
