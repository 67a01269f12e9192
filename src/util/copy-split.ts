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
 * How many ranges a table of `tableBytes` is copied as (at least 1, at most `maxParts`): above `splitBytes`, and
 * above one worker's share of the whole copy too, so no worker sits idle while one copies the table that holds most
 * of the data.
 */
export function copyParts(tableBytes: number, totalBytes: number, splitBytes: number, jobs: number, maxParts = MAX_PARTS): number {
  const share = Math.max(MIN_SHARE_SPLIT_BYTES, Math.ceil(totalBytes / Math.max(1, jobs)));
  return Math.max(1, Math.min(MAX_PARTS, maxParts, Math.ceil(tableBytes / Math.min(splitBytes, share))));
}

/** What one copy stream keeps busy on this machine: the relay, and the backend of a server running here. */
const RELAY_CORES = 0.5;
const SERVER_CORES = 0.6;

/**
 * How many ranges one table may be copied as side by side when `serversHere` of the two servers run on this
 * machine. A stream keeps the relay busy here (about half a core: two psql processes) and a backend on each server
 * (measured with both servers on one 2-core machine: one binary COPY stream kept 1.7 of its 2 cores busy), so
 * ranges beyond what the cores hold only take each other's CPU — and a range costs more than the whole table: its
 * TID range scan goes through the executor (+25% on the source here) and it cannot load with COPY FREEZE. Measured
 * on 2 cores, both servers here (PostgreSQL 15 -> 17, pgbench_accounts): scale 30 whole 2.7 s, 2 ranges 3.2 s,
 * 3 ranges 3.5 s; scale 100 whole 8.7-9.6 s, 2 ranges 10.3-11.3 s, 3 ranges 10.6-12.4 s. Both servers elsewhere:
 * undefined (no cap: only the relay runs here).
 */
export function copyStreamsPerTable(jobs: number, serversHere: number, cores = availableParallelism()): number | undefined {
  if (serversHere <= 0) return undefined;
  return Math.max(1, Math.min(jobs, Math.floor(cores / (RELAY_CORES + SERVER_CORES * serversHere))));
}
