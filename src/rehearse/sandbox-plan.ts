import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePlan, type Plan, type PlanDocument } from '../plan/index.js';

/**
 * The plan a sandbox rehearsal runs, validated by the parser every plan file goes through, so it gets the same
 * checks and defaults. Its state dir is created in the source sandbox dir: an interrupted run leaves nothing
 * outside the sandbox dirs. No file is written; `name` only places the plan in that dir for messages.
 */
export async function sandboxPlan(sandboxDir: string, name: string, doc: Omit<PlanDocument, 'state'>): Promise<Plan> {
  const state = join(sandboxDir, 'state');
  await mkdir(state, { mode: 0o700 });
  return parsePlan({ ...doc, state }, join(sandboxDir, name));
}

/** Formats a budget in ms as a plan duration (durations in a plan take a unit). */
export function planDuration(ms: number): string {
  return `${Math.max(1, Math.round(ms))}ms`;
}
