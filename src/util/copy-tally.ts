import type { SyncProgress, SyncProgressEvent } from '../engine/cutover-adapter.js';
import { formatBytes, formatCount } from './units.js';

/** What a copy reports when one of its parts is in: the numbers of a 'copy' progress event, the same for every engine. */
export type CopyCount = Required<Pick<SyncProgressEvent, 'table' | 'tablesDone' | 'tablesTotal' | 'bytesDone' | 'bytesTotal' | 'rowsDone'>> &
  Pick<SyncProgressEvent, 'tableRows' | 'etaMs'> & {
    /** The part was its table's last one. */
    tableDone: boolean;
  };

/** The share of a copy's bytes that must be in before an ETA rests on the parts done alone. */
const ETA_AFTER_SHARE = 0.05;

/** How often a copy reports what its parts still loading have moved. */
export const LOAD_PROGRESS_MS = 2_000;

/**
 * Readings of the parts still loading (per part or per table), summed by table, each table's bytes capped just below
 * the size of its parts that are loading: a part is in only once committed, and what a load has streamed is not the
 * table's stored size. Readings of tables with no part loading are dropped (the part ended since the reading).
 */
export function cappedInFlight(readings: Iterable<{ table: string; bytes: number; rows: number }>, loading: Iterable<{ table: string; bytes: number }>): Map<string, { bytes: number; rows: number }> {
  const cap = new Map<string, number>();
  for (const p of loading) cap.set(p.table, (cap.get(p.table) ?? 0) + p.bytes);
  const out = new Map<string, { bytes: number; rows: number }>();
  for (const r of readings) {
    const c = cap.get(r.table);
    if (c === undefined) continue;
    const sum = out.get(r.table) ?? { bytes: 0, rows: 0 };
    out.set(r.table, { bytes: Math.min(sum.bytes + r.bytes, Math.floor(c * 0.99)), rows: sum.rows + r.rows });
  }
  return out;
}

/** The counts of a copy while parts are loading: no table named. */
export type RunningCount = Omit<CopyCount, 'table' | 'tableDone' | 'tableRows'>;

/** "3/5 tables, 1.2 GB of 2.0 GB, 1,234 rows": a copy's counts as its progress lines say them. */
export function countsLine(c: RunningCount): string {
  return `${c.tablesDone}/${c.tablesTotal} tables, ${formatBytes(c.bytesDone)} of ${formatBytes(c.bytesTotal)}, ${formatCount(c.rowsDone)} rows`;
}

/**
 * Every `everyMs`, one read at a time, `read` says what the parts still loading have moved (cappedInFlight) and the
 * tally turns it into a progress event. Progress is a courtesy: a read that fails ends the watch and the copy goes
 * on. `stop` waits for a read in flight, so nothing runs on the reader's session after it.
 */
export function watchInFlight(read: () => Promise<ReadonlyMap<string, { bytes: number; rows: number }>>, tally: CopyTally, progress: SyncProgress, everyMs = LOAD_PROGRESS_MS): { stop(): Promise<void> } {
  let reading: Promise<void> | undefined;
  let ended = false;
  const timer = setInterval(() => {
    if (reading || ended) return;
    reading = read()
      .then((inFlight) => {
        if (ended || [...inFlight.values()].every((r) => r.bytes === 0 && r.rows === 0)) return;
        const count = tally.loading(inFlight);
        progress({ phase: 'copy', message: `copy ${countsLine(count)}`, ...count });
      })
      .catch(() => {
        ended = true;
      })
      .finally(() => (reading = undefined));
  }, everyMs);
  timer.unref();
  return {
    async stop() {
      ended = true;
      clearInterval(timer);
      await reading;
    },
  };
}

/**
 * Counts a copy cut into parts (a table, or a range of one): tables whose parts are all in, bytes (parts an earlier,
 * resumed run copied count as done), rows of this run per table and in all, and an ETA from this run's own rate.
 */
export class CopyTally {
  private readonly partsLeft = new Map<string, number>();
  private readonly rowsOf = new Map<string, number>();
  private readonly tablesTotal: number;
  private readonly bytesTotal: number;
  private tablesDone: number;
  private bytesDone: number;
  /** Bytes parts of an earlier, resumed run copied: not this run's rate. */
  private readonly bytesBefore: number;
  private rowsNow = 0;
  /** The most bytes and rows reported yet (in-flight readings included): what is reported never goes back. */
  private bytesShown: number;
  private rowsShown = 0;
  /** The last reading of the parts still loading, by table. */
  private inFlight = new Map<string, { bytes: number; rows: number }>();
  /** A reading of the parts still loading has come in: the rate no longer rests on the small parts alone. */
  private readingSeen = false;
  private readonly started = Date.now();

  constructor(parts: ReadonlyArray<{ table: string; bytes: number; done?: boolean }>) {
    for (const p of parts) if (!p.done) this.partsLeft.set(p.table, (this.partsLeft.get(p.table) ?? 0) + 1);
    this.tablesTotal = new Set(parts.map((p) => p.table)).size;
    this.tablesDone = this.tablesTotal - this.partsLeft.size;
    this.bytesTotal = parts.reduce((a, p) => a + p.bytes, 0);
    this.bytesDone = parts.reduce((a, p) => a + (p.done ? p.bytes : 0), 0);
    this.bytesBefore = this.bytesDone;
    this.bytesShown = this.bytesDone;
  }

  /** Rows this run copied. */
  get rows(): number {
    return this.rowsNow;
  }

  partDone(table: string, bytes: number, rows: number): CopyCount {
    this.bytesDone += bytes;
    this.rowsNow += rows;
    // The finished part is in its table's last reading: its commit counts it instead.
    this.inFlight.delete(table);
    const tableRows = (this.rowsOf.get(table) ?? 0) + rows;
    this.rowsOf.set(table, tableRows);
    const left = this.partsLeft.get(table)! - 1;
    this.partsLeft.set(table, left);
    if (left === 0) this.tablesDone++;
    return { table, tableDone: left === 0, ...this.counts(), ...(left === 0 ? { tableRows } : {}) };
  }

  /**
   * The counts between parts, with a reading of what the parts still loading have moved so far, by table (bytes
   * capped by the caller at those parts' own size), so a table copied in one long part shows progress and a sane
   * ETA before it is in.
   */
  loading(inFlight: ReadonlyMap<string, { bytes: number; rows: number }>): RunningCount {
    this.inFlight = new Map(inFlight);
    if ([...inFlight.values()].some((r) => r.bytes > 0)) this.readingSeen = true;
    return this.counts();
  }

  private counts(): RunningCount {
    let bytesInFlight = 0;
    let rowsInFlight = 0;
    for (const r of this.inFlight.values()) {
      bytesInFlight += r.bytes;
      rowsInFlight += r.rows;
    }
    // A part's reading vanishes when its COPY ends, before its commit counts it: keep the high-water mark.
    this.bytesShown = Math.max(this.bytesShown, Math.min(this.bytesTotal, this.bytesDone + bytesInFlight));
    this.rowsShown = Math.max(this.rowsShown, this.rowsNow + rowsInFlight);
    const moved = this.bytesShown - this.bytesBefore;
    const elapsed = Date.now() - this.started;
    // The small parts finish first and alone say nothing of the big ones still loading (a 4 s copy of pgbench showed
    // "ETA 166m"): an ETA once a reading of the loading parts came in, or once a twentieth of the bytes is in.
    const grounded = this.readingSeen || moved >= ETA_AFTER_SHARE * (this.bytesTotal - this.bytesBefore);
    const etaMs = grounded && moved > 0 && this.bytesShown < this.bytesTotal ? Math.round((elapsed / moved) * (this.bytesTotal - this.bytesShown)) : undefined;
    return {
      tablesDone: this.tablesDone,
      tablesTotal: this.tablesTotal,
      bytesDone: this.bytesShown,
      bytesTotal: this.bytesTotal,
      rowsDone: this.rowsShown,
      ...(etaMs !== undefined ? { etaMs } : {}),
    };
  }
}
