import type { ScopeStatus } from '../readonly/types.js';
import type { Leftover } from './cutover-adapter.js';
import type { JournalRecord } from './journal.js';
import type { LockInfo } from './lock.js';
import { planPhase, type PlanPhase } from './phase.js';
import type { PlanSession } from './session.js';

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
  return status;
}
