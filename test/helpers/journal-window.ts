import { replayJournal } from '../../src/engine/journal.js';
import { revertPlanId } from '../../src/engine/session.js';
import { loadPlan, planId } from '../../src/plan/index.js';

export interface Window {
  from: number;
  to: number;
}

/** A run's write-blocked window from its journal: its last hold begin to its last lift ok (epoch ms). */
export function windowOf(records: ReadonlyArray<{ step: string; status: string; at: string }>): Window | undefined {
  const from = records.findLast((r) => r.step === 'hold' && r.status === 'begin');
  const to = records.findLast((r) => r.step === 'lift' && r.status === 'ok');
  return from && to ? { from: Date.parse(from.at), to: Date.parse(to.at) } : undefined;
}

/** The window of a plan's cutover (or of its revert) from its journal; throws when the journal holds none. */
export async function planWindow(planFile: string, direction: 'forward' | 'revert' = 'forward'): Promise<Window> {
  const plan = await loadPlan(planFile);
  const id = direction === 'revert' ? revertPlanId(planId(plan)) : planId(plan);
  const window = windowOf((await replayJournal(plan.stateDir, id)).records);
  if (!window) throw new Error(`no hold-to-lift window in the ${direction} journal of ${planFile}`);
  return window;
}
