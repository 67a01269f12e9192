import { availableParallelism } from 'node:os';

/**
 * How an initial copy is cut into parallel streams, the same for every engine: how many workers, and how many
 * ranges a table is copied as.
 */

/** Tables above this size are copied as several ranges side by side (plan copy.splitTablesLargerThan). */
export const COPY_SPLIT_BYTES = 256 * 1024 * 1024;
/** A table is not split for balance below this size: a range's own cost (sessions, a scan start) dominates. */
const MIN_SHARE_SPLIT_BYTES = 32 * 1024 * 1024;
/** At most this many ranges per table: more only adds per-range overhead. */
const MAX_PARTS = 16;

/** Copy workers: the copy is as much I/O and protocol as CPU, so one more than the cores pays on small machines. */
export function defaultCopyJobs(): number {
  return Math.max(2, Math.min(8, availableParallelism() + 1));
}

/**
 * How many ranges a table of `tableBytes` is copied as (at least 1): above `splitBytes`, and above one worker's
 * share of the whole copy too, so no worker sits idle while one copies the table that holds most of the data.
 */
export function copyParts(tableBytes: number, totalBytes: number, splitBytes: number, jobs: number): number {
  const share = Math.max(MIN_SHARE_SPLIT_BYTES, Math.ceil(totalBytes / Math.max(1, jobs)));
  return Math.max(1, Math.min(MAX_PARTS, Math.ceil(tableBytes / Math.min(splitBytes, share))));
}
