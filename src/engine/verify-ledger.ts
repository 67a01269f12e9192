import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDirDurably, writeFileAtomic } from '../util/atomic-file.js';
import type { ChunkCheck, ChunkCursor } from './cutover-adapter.js';

/** Mismatched chunks kept in the ledger and the report; the count goes on beyond. */
export const MAX_MISMATCHES_KEPT = 100;

/** What the online verify of a plan has done so far: a re-run continues after the last recorded chunk. */
export interface VerifyLedgerState {
  version: 1;
  startedAt: string;
  finishedAt?: string;
  cursors: Record<string, ChunkCursor>;
  chunks: number;
  rows: number;
  mismatchCount: number;
  mismatches: ChunkCheck[];
}

export function ledgerPath(stateDir: string, planId: string): string {
  return join(stateDir, `${planId}.verify.json`);
}

export function freshLedger(now = new Date()): VerifyLedgerState {
  return { version: 1, startedAt: now.toISOString(), cursors: {}, chunks: 0, rows: 0, mismatchCount: 0, mismatches: [] };
}

/**
 * Where a verify starts: an unfinished pass continues; a finished pass that found differences starts over (the
 * operator has fixed something, or wants to see it again); a finished clean pass is kept unless `restart`.
 */
export function startingPoint(previous: VerifyLedgerState | undefined, restart: boolean, now = new Date()): { state: VerifyLedgerState; reused: boolean } {
  if (!previous || restart || (previous.finishedAt && previous.mismatchCount > 0)) return { state: freshLedger(now), reused: false };
  return { state: previous, reused: previous.finishedAt !== undefined };
}

/** Records one chunk: cursor, totals, and the chunk itself when it differs. */
export function recordChunk(state: VerifyLedgerState, check: ChunkCheck, cursor: ChunkCursor): void {
  state.cursors[check.table] = cursor;
  state.chunks++;
  state.rows += check.rows;
  if (!check.match) {
    state.mismatchCount++;
    if (state.mismatches.length < MAX_MISMATCHES_KEPT) state.mismatches.push(check);
  }
}

/**
 * Rows still to check and the time that takes at this run's rate (`rowsThisRun` in `elapsedMs`; an interrupted
 * run's rows count as done but not toward the rate). Planner estimates: approximate.
 */
export function estimateRemaining(estimatedRows: number, rowsDone: number, rowsThisRun: number, elapsedMs: number): { rowsLeft: number; etaMs: number | undefined } {
  const rowsLeft = Math.max(0, estimatedRows - rowsDone);
  // No estimate (tables never analyzed): no ETA rather than a wrong one.
  const known = estimatedRows > 0 && rowsThisRun > 0 && elapsedMs > 0;
  return { rowsLeft, etaMs: known ? Math.round((rowsLeft * elapsedMs) / rowsThisRun) : undefined };
}

export { describeRange } from './key-range.js';

export async function readLedger(stateDir: string, planId: string): Promise<VerifyLedgerState | undefined> {
  try {
    const doc = JSON.parse(await readFile(ledgerPath(stateDir, planId), 'utf8')) as VerifyLedgerState;
    return doc.version === 1 ? doc : undefined;
  } catch {
    return undefined;
  }
}

export async function writeLedger(stateDir: string, planId: string, state: VerifyLedgerState): Promise<void> {
  await ensureDirDurably(stateDir);
  await writeFileAtomic(ledgerPath(stateDir, planId), JSON.stringify(state));
}
