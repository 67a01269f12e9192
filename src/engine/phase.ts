import type { JournalRecord } from './journal.js';

/**
 * Where a plan stands, from its journal:
 * fresh → synced → (in-flight: a run is fenced or crashed while fenced) → past-pnr → done.
 * A run that failed before the point of no return and restored the source counts as synced again.
 */
export type PlanPhase = 'fresh' | 'synced' | 'in-flight' | 'past-pnr' | 'done';

export function planPhase(records: readonly JournalRecord[]): PlanPhase {
  const lastIndex = (pred: (r: JournalRecord) => boolean) => {
    for (let i = records.length - 1; i >= 0; i--) if (pred(records[i]!)) return i;
    return -1;
  };
  if (lastIndex((r) => r.step === 'report' && r.status === 'ok') >= 0) return 'done';
  if (lastIndex((r) => r.step === 'point-of-no-return' && r.status === 'ok') >= 0) return 'past-pnr';
  const hold = lastIndex((r) => (r.step === 'hold' || r.step === 'fence') && r.status === 'begin');
  // Restored only when both rollback steps succeeded since the last hold: a failed unfence leaves the source
  // fenced even if routing went back.
  const unfenced = lastIndex((r) => r.step === 'unfence' && r.status === 'ok');
  const routedBack = lastIndex((r) => r.step === 'route-back' && r.status === 'ok');
  if (hold > Math.min(unfenced, routedBack)) return 'in-flight';
  if (lastIndex((r) => r.step === 'sync' && r.status === 'ok') >= 0) return 'synced';
  return 'fresh';
}

/** Data of the last `ok` record of a step (e.g. the pinned identities of preflight). */
export function lastOkData(records: readonly JournalRecord[], step: JournalRecord['step']): Record<string, unknown> | undefined {
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i]!;
    if (r.step === step && r.status === 'ok') return r.data ?? {};
  }
  return undefined;
}

/**
 * Whether `cutover finalize` ended the reverse path, from the revert plan's journal: `done` at its last ok,
 * `unfinished` when one began and did not finish (the reverse path may be partly dropped).
 */
export function finalized(revertRecords: readonly JournalRecord[]): { state: 'done' | 'unfinished'; at: string } | undefined {
  const last = [...revertRecords].reverse().find((r) => r.step === 'finalize');
  if (!last) return undefined;
  return { state: last.status === 'ok' ? 'done' : 'unfinished', at: last.at };
}
