import { formatBytes, formatDuration } from '../util/units.js';
import type { Finding } from './cutover-adapter.js';
import type { VerifyMode } from '../plan/types.js';

/**
 * How fast a full read of the tables went here: `count(*)` over 116 MB took 212 ms inside the window
 * (PostgreSQL 15, 2 cores, FACTS.md). Checksums read every column of every row: slower.
 */
const COUNT_BYTES_PER_MS = (116 * 1024 ** 2) / 212;

/** The finding `check` shows when the plan verifies inside the window: what it reads and what that costs. */
export function inWindowVerifyFinding(mode: VerifyMode, size: { tables: number; bytes: number }, budgetMs: number): Finding | undefined {
  if (mode === 'none') return undefined;
  const ms = Math.round(size.bytes / COUNT_BYTES_PER_MS);
  const estimate = `${mode === 'checksums' ? 'more than ' : 'about '}${formatDuration(ms)}`;
  return {
    severity: ms > budgetMs / 4 ? 'warning' : 'info',
    check: 'verify in the window',
    message: `verify.inWindow ${mode} reads ${size.tables} table(s), ${formatBytes(size.bytes)}, while writes are blocked: ${estimate} (grows with the data)`,
    why: 'every millisecond of it is write downtime; the online verify before the hold (verify.before: chunks) checks the same content without blocking writes',
    fix: 'use verify: { before: chunks, inWindow: none } unless a check inside the window is required',
  };
}
