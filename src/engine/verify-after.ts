import { formatDuration } from '../util/units.js';
import type { ChunkCheck, SwitchCompare } from './cutover-adapter.js';
import { MAX_MISMATCHES_KEPT } from './verify-ledger.js';

/** The compare after the switch (plan `verify.after: chunks`): the frozen old source against the target as of the switch. */
export interface AfterSwitchVerifyReport {
  /** verified: every table compared; failed: the compare could not finish (`error`), which says nothing of the data. */
  outcome: 'verified' | 'failed';
  error?: string;
  tables: number;
  chunks: number;
  rows: number;
  mismatchCount: number;
  /** The first mismatched chunks (bounded). */
  mismatches: ChunkCheck[];
  /** When the snapshots were taken (the point of no return). */
  snapshotAt: string;
  durationMs: number;
}

/**
 * Compares, after the release, the two snapshots taken at the point of no return, in key chunks of `chunkRows`.
 * Clients are not held; nothing is written. Never throws: a compare that cannot run says so in its report.
 */
export async function compareAfterSwitch(compare: SwitchCompare, opts: { chunkRows: number; snapshotAt: string; onProgress?: (m: string) => void }): Promise<AfterSwitchVerifyReport> {
  const started = Date.now();
  const r: AfterSwitchVerifyReport = { outcome: 'verified', tables: 0, chunks: 0, rows: 0, mismatchCount: 0, mismatches: [], snapshotAt: opts.snapshotAt, durationMs: 0 };
  let estimated = 0;
  let lastNote = 0;
  try {
    await compare.compare({
      chunkRows: opts.chunkRows,
      cursor: () => undefined,
      tables: async (list) => {
        r.tables = list.length;
        estimated = list.reduce((n, t) => n + t.estimatedRows, 0);
      },
      chunk: async (check) => {
        r.chunks++;
        r.rows += check.rows;
        if (!check.match) {
          r.mismatchCount++;
          if (r.mismatches.length < MAX_MISMATCHES_KEPT) r.mismatches.push(check);
        }
        if (Date.now() - lastNote >= 1000) {
          lastNote = Date.now();
          opts.onProgress?.(`${r.rows}${estimated ? ` of ~${estimated}` : ''} rows compared${r.mismatchCount ? `, ${r.mismatchCount} chunk(s) differ` : ''} (${formatDuration(Date.now() - started)})`);
        }
      },
    });
  } catch (e) {
    r.outcome = 'failed';
    r.error = e instanceof Error ? e.message : String(e);
  } finally {
    await compare.close().catch(() => {});
  }
  r.durationMs = Date.now() - started;
  return r;
}

/** One line for the run's summary. */
export function afterWords(v: AfterSwitchVerifyReport): string {
  if (v.outcome === 'failed') return `could not finish: ${v.error ?? 'unknown reason'} (${v.chunks} chunks compared)`;
  return `${v.tables} tables, ${v.chunks} chunks, ${v.rows} rows ${v.mismatchCount ? `compared, ${v.mismatchCount} chunk(s) DIFFER` : 'match'} (${formatDuration(v.durationMs)})`;
}
