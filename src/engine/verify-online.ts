import { formatDuration } from '../util/units.js';
import type { ChunkCheck } from './cutover-adapter.js';
import type { PlanSession } from './session.js';
import { UsageError, VerifyMismatchError } from '../errors.js';
import { planPhase } from './phase.js';
import { estimateRemaining, readLedger, recordChunk, startingPoint, writeLedger, type VerifyLedgerState } from './verify-ledger.js';

export interface OnlineVerifyReport {
  /** verified: every table compared (now, or by an earlier pass that is reused); skipped: nothing to compare. */
  outcome: 'verified' | 'skipped';
  /** Why it was skipped (method dump, or an engine without it). */
  skipped?: string;
  /** A finished clean pass of an earlier `cutover verify` was reused; `finishedAt` says when. */
  reused: boolean;
  tables: number;
  /** Chunks and rows over the whole pass, including those an interrupted run did before. */
  chunks: number;
  rows: number;
  /** Chunks an earlier, interrupted run did and this one did not redo. */
  resumedChunks: number;
  mismatchCount: number;
  /** The first mismatched chunks (bounded). */
  mismatches: ChunkCheck[];
  /** Longest time one table was locked to take its consistent point (its writers waited that long). */
  maxLockedMs: number;
  startedAt: string;
  finishedAt?: string;
  durationMs: number;
}

export interface OnlineVerifyOptions {
  /** Start over even if an earlier pass finished or stopped half-way. */
  restart?: boolean;
  /** Progress lines (at most one a second, plus one per consistent point). */
  onProgress?: (message: string) => void;
  /** The ledger is written at most this often (and at the end): a kill loses at most that much work. */
  saveEveryMs?: number;
}

/**
 * The online verify: every table in primary-key chunks, source and target hashed at one consistent point of the
 * replication stream, resumable from the plan's state dir. Changes nothing on either server except the
 * sentinel row; runs before the hold.
 */
export async function verifyOnline(s: PlanSession, opts: OnlineVerifyOptions = {}): Promise<OnlineVerifyReport> {
  const started = Date.now();
  const { stateDir } = s.plan;
  const { state, reused } = startingPoint(await readLedger(stateDir, s.planId), opts.restart ?? false);
  const resumedChunks = reused ? 0 : state.chunks;
  let maxLockedMs = 0;
  const report = (extra: Partial<OnlineVerifyReport>): OnlineVerifyReport => ({
    outcome: 'verified',
    reused,
    tables: Object.keys(state.cursors).length,
    chunks: state.chunks,
    rows: state.rows,
    resumedChunks,
    mismatchCount: state.mismatchCount,
    mismatches: state.mismatches,
    maxLockedMs,
    startedAt: state.startedAt,
    ...(state.finishedAt ? { finishedAt: state.finishedAt } : {}),
    durationMs: Date.now() - started,
    ...extra,
  });
  if (reused) return report({});
  if (!s.adapter.verifyOnline) return report({ outcome: 'skipped', skipped: `${s.plan.engine} has no online verify` });

  let estimatedRows = 0;
  let tableCount = 0;
  let lastSave = Date.now();
  let lastNote = 0;
  const rowsAtStart = state.rows;
  const saveEvery = opts.saveEveryMs ?? 250;
  const save = (st: VerifyLedgerState) => writeLedger(stateDir, s.planId, st);
  const outcome = await s.adapter.verifyOnline({
    chunkRows: s.plan.verifyBefore.chunkRows,
    cursor: (table) => state.cursors[table],
    tables: async (list) => {
      tableCount = list.length;
      estimatedRows = list.reduce((n, t) => n + t.estimatedRows, 0);
      if (resumedChunks) opts.onProgress?.(`continuing an interrupted verify: ${resumedChunks} chunk(s), ${state.rows} row(s) already checked`);
      await save(state);
    },
    snapshot: (table, position, lockedMs) => {
      maxLockedMs = Math.max(maxLockedMs, lockedMs);
      opts.onProgress?.(`${table}: consistent point at ${position} (table locked ${lockedMs}ms)`);
    },
    chunk: async (check, cursor) => {
      recordChunk(state, check, cursor);
      if (!check.match || Date.now() - lastSave >= saveEvery) {
        await save(state);
        lastSave = Date.now();
      }
      if (Date.now() - lastNote >= 1000) {
        lastNote = Date.now();
        const done = Object.values(state.cursors).filter((c) => c.done).length;
        const { etaMs } = estimateRemaining(estimatedRows, state.rows, state.rows - rowsAtStart, Date.now() - started);
        opts.onProgress?.(`${done}/${tableCount} tables, ${state.rows} rows checked${etaMs !== undefined ? `, ETA ${formatDuration(etaMs)}` : ''}${state.mismatchCount ? `, ${state.mismatchCount} chunk(s) differ` : ''}`);
      }
    },
  });
  if (outcome === null) return report({ outcome: 'skipped', skipped: `method ${s.plan.method} copies the data while the source is fenced: there is nothing to compare before` });
  state.finishedAt = new Date().toISOString();
  await save(state);
  return report({ tables: tableCount });
}

/**
 * `cutover verify`: the online verify on its own, under the plan's lock (a run of the same plan cannot start
 * meanwhile). Only between sync and run: before sync there is no copy, after the switch no stream.
 */
export async function verifyPlan(s: PlanSession, opts: OnlineVerifyOptions = {}): Promise<OnlineVerifyReport> {
  const lock = await s.state.acquire(s.plan.stateDir, s.planId);
  try {
    const journal = await s.state.openJournal(lock, { secrets: s.secrets.all });
    const phase = planPhase(journal.state.records);
    await journal.close();
    if (phase !== 'synced')
      throw new UsageError(
        `plan ${s.planId} is ${phase}: verify compares a synced target with its source before the cutover`,
        phase === 'fresh' ? 'run `cutover sync` first' : phase === 'in-flight' ? 'run `cutover resume` or `cutover rollback` first' : 'the cutover is past its switch; there is no replication stream left to compare at',
      );
    const r = await verifyOnline(s, opts);
    if (r.mismatchCount) throw new VerifyMismatchError(r);
    return r;
  } finally {
    await lock.release();
  }
}
