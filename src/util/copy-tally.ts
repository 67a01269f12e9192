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
  private bytesNow = 0;
  private rowsNow = 0;
  private readonly started = Date.now();

  constructor(parts: ReadonlyArray<{ table: string; bytes: number; done?: boolean }>) {
    for (const p of parts) if (!p.done) this.partsLeft.set(p.table, (this.partsLeft.get(p.table) ?? 0) + 1);
    this.tablesTotal = new Set(parts.map((p) => p.table)).size;
    this.tablesDone = this.tablesTotal - this.partsLeft.size;
    this.bytesTotal = parts.reduce((a, p) => a + p.bytes, 0);
    this.bytesDone = parts.reduce((a, p) => a + (p.done ? p.bytes : 0), 0);
  }

  /** Rows this run copied. */
  get rows(): number {
    return this.rowsNow;
  }

  partDone(table: string, bytes: number, rows: number): CopyCount {
    this.bytesNow += bytes;
    this.bytesDone += bytes;
    this.rowsNow += rows;
    const tableRows = (this.rowsOf.get(table) ?? 0) + rows;
    this.rowsOf.set(table, tableRows);
    const left = this.partsLeft.get(table)! - 1;
    this.partsLeft.set(table, left);
    if (left === 0) this.tablesDone++;
    return { table, tableDone: left === 0, ...this.counts(0, 0), ...(left === 0 ? { tableRows } : {}) };
  }

  /**
   * The counts between parts: `inFlight` is what the parts still loading have moved so far (bytes capped by the
   * caller at those parts' own size), so a table copied in one long part shows progress and a sane ETA before it is in.
   */
  loading(inFlight: { bytes: number; rows: number }): RunningCount {
    return this.counts(inFlight.bytes, inFlight.rows);
  }

  private counts(bytesInFlight: number, rowsInFlight: number): RunningCount {
    const bytesNow = this.bytesNow + bytesInFlight;
    const bytesDone = Math.min(this.bytesTotal, this.bytesDone + bytesInFlight);
    const elapsed = Date.now() - this.started;
    const etaMs = bytesNow > 0 && bytesDone < this.bytesTotal ? Math.round((elapsed / bytesNow) * (this.bytesTotal - bytesDone)) : undefined;
    return {
      tablesDone: this.tablesDone,
      tablesTotal: this.tablesTotal,
      bytesDone,
      bytesTotal: this.bytesTotal,
      rowsDone: this.rowsNow + rowsInFlight,
      ...(etaMs !== undefined ? { etaMs } : {}),
    };
  }
}
