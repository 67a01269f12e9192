import type { SyncProgressEvent } from '../engine/cutover-adapter.js';

/** What a copy reports when one of its parts is in: the numbers of a 'copy' progress event, the same for every engine. */
export type CopyCount = Required<Pick<SyncProgressEvent, 'table' | 'tablesDone' | 'tablesTotal' | 'bytesDone' | 'bytesTotal' | 'rowsDone'>> &
  Pick<SyncProgressEvent, 'tableRows' | 'etaMs'> & {
    /** The part was its table's last one. */
    tableDone: boolean;
  };

/** The counts of a copy while parts are loading: no table named. */
export type RunningCount = Omit<CopyCount, 'table' | 'tableDone' | 'tableRows'>;

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
  private bytesShown = 0;
  private rowsShown = 0;
  /** The last reading of the parts still loading, by table. */
  private inFlight = new Map<string, { bytes: number; rows: number }>();
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
    const etaMs = moved > 0 && this.bytesShown < this.bytesTotal ? Math.round((elapsed / moved) * (this.bytesTotal - this.bytesShown)) : undefined;
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
