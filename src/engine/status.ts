import type { ScopeStatus } from '../readonly/types.js';
import type { CdcSlotHandover, Leftover } from './cutover-adapter.js';
import { replayJournal, type JournalRecord } from './journal.js';
import { readLock, type LockInfo } from './lock.js';
import { lastOkData, planPhase, type PlanPhase } from './phase.js';
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
  /**
   * Plan `cdc`, once handed over (past the point of no return): each consumer's target slot and start, the source
   * position it stops at, and how far it has confirmed on the source now (null: that slot is gone).
   */
  cdc?: Array<CdcSlotHandover & { sourceConfirmed?: string | null }>;
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
  const replay = await replayJournal(s.plan.stateDir, s.planId);
  const phase = planPhase(replay.records);
  const lock = await readLock(s.plan.stateDir, s.planId);
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
  const handed = lastOkData(replay.records, 'cdc-handover')?.slots as CdcSlotHandover[] | undefined;
  if (handed && (phase === 'past-pnr' || phase === 'done')) {
    const at = (await live('CDC slots on the source', async () => (await s.adapter.cdcSourcePositions?.()) ?? {})) ?? {};
    status.cdc = handed.map((h) => ({ ...h, ...(h.slot in at ? { sourceConfirmed: at[h.slot] } : {}) }));
  }
  return status;
}
