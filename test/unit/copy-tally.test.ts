import { describe, expect, it } from 'vitest';
import { CopyTally, cappedInFlight } from '../../src/util/copy-tally.js';

describe('a copy cut into parts: what its progress counts', () => {
  it('a table is done with its last part; parts an earlier run copied count as bytes and tables done, not as rows', () => {
    const tally = new CopyTally([
      { table: 'big', bytes: 100, done: true },
      { table: 'big', bytes: 100 },
      { table: 'big', bytes: 100 },
      { table: 'small', bytes: 10, done: true },
      { table: 'mid', bytes: 50 },
    ]);
    const first = tally.partDone('big', 100, 7);
    expect(first).toMatchObject({ table: 'big', tableDone: false, tablesDone: 1, tablesTotal: 3, bytesDone: 210, bytesTotal: 360, rowsDone: 7 });
    expect(first.tableRows).toBeUndefined();
    expect(first.etaMs).toBeGreaterThanOrEqual(0);
    expect(tally.partDone('big', 100, 5)).toMatchObject({ tableDone: true, tablesDone: 2, bytesDone: 310, rowsDone: 12, tableRows: 12 });
    const last = tally.partDone('mid', 50, 3);
    expect(last).toMatchObject({ tableDone: true, tablesDone: 3, bytesDone: 360, rowsDone: 15, tableRows: 3 });
    // Everything is in: no time left to estimate.
    expect(last.etaMs).toBeUndefined();
    expect(tally.rows).toBe(15);
  });

  it('a part still loading counts what it has moved so far, so a table copied whole shows progress before it is in', () => {
    const tally = new CopyTally([
      { table: 'accounts', bytes: 1000 },
      { table: 'tellers', bytes: 10 },
    ]);
    tally.partDone('tellers', 10, 3);
    const midway = tally.loading(new Map([['accounts', { bytes: 490, rows: 4900 }]]));
    expect(midway).toMatchObject({ tablesDone: 1, tablesTotal: 2, bytesDone: 500, bytesTotal: 1010, rowsDone: 4903 });
    // The rate includes the loading bytes: half the data in, about as long again to go (not the tellers' tiny rate).
    expect(midway.etaMs).toBeDefined();
    expect(midway).not.toHaveProperty('table');
    expect(tally.partDone('accounts', 1000, 10_000)).toMatchObject({ tableDone: true, tablesDone: 2, bytesDone: 1010, rowsDone: 10_003 });
  });

  it('what it reports never goes back: a small part done between two readings of a big one still counts the big one, and the ETA comes from all that moved', () => {
    const tally = new CopyTally([
      { table: 'accounts', bytes: 1000 },
      { table: 'tellers', bytes: 10 },
    ]);
    const reading = tally.loading(new Map([['accounts', { bytes: 800, rows: 8000 }]]));
    expect(reading).toMatchObject({ bytesDone: 800, rowsDone: 8000 });
    const tellers = tally.partDone('tellers', 10, 3);
    expect(tellers).toMatchObject({ bytesDone: 810, rowsDone: 8003 });
    // The big part's COPY ended (its reading is gone) before its commit counted it.
    expect(tally.loading(new Map())).toMatchObject({ bytesDone: 810, rowsDone: 8003 });
    expect(tally.partDone('accounts', 1000, 10_000)).toMatchObject({ bytesDone: 1010, rowsDone: 10_003, tablesDone: 2 });
  });

  it('no ETA from small parts alone while a big one loads unseen; one once a reading of it came in', () => {
    const tally = new CopyTally([
      { table: 'accounts', bytes: 100_000 },
      { table: 'tellers', bytes: 100 },
      { table: 'branches', bytes: 100 },
    ]);
    expect(tally.partDone('tellers', 100, 300).etaMs).toBeUndefined();
    expect(tally.partDone('branches', 100, 30).etaMs).toBeUndefined();
    // A reading of 1 % of the bytes: under the twentieth, so only the reading itself grounds the ETA.
    expect(tally.loading(new Map([['accounts', { bytes: 800, rows: 80 }]])).etaMs).toBeGreaterThanOrEqual(0);
    // Without any reading (no progress view on the server): an ETA once a twentieth of the bytes is in.
    const unseen = new CopyTally([
      { table: 'a', bytes: 1000 },
      { table: 'b', bytes: 40 },
      { table: 'c', bytes: 60 },
    ]);
    expect(unseen.partDone('b', 40, 1).etaMs).toBeUndefined();
    expect(unseen.partDone('c', 60, 1).etaMs).toBeGreaterThanOrEqual(0);
  });

  it('an earlier run’s parts are not this run’s rate: a resumed copy with nothing moved yet has no ETA', () => {
    const tally = new CopyTally([
      { table: 'a', bytes: 500, done: true },
      { table: 'b', bytes: 500 },
    ]);
    expect(tally.loading(new Map()).etaMs).toBeUndefined();
    expect(tally.loading(new Map([['b', { bytes: 100, rows: 10 }]])).bytesDone).toBe(600);
  });
});

describe('readings of parts still loading', () => {
  it('are summed by table, capped just below the size of that table’s loading parts, and dropped for a table with none loading', () => {
    const inFlight = cappedInFlight(
      [
        { table: 'big', bytes: 400, rows: 40 },
        { table: 'big', bytes: 700, rows: 70 },
        { table: 'small', bytes: 5, rows: 1 },
        { table: 'gone', bytes: 50, rows: 5 },
      ],
      [
        { table: 'big', bytes: 500 },
        { table: 'big', bytes: 500 },
        { table: 'small', bytes: 100 },
      ],
    );
    expect(Object.fromEntries(inFlight)).toEqual({ big: { bytes: 990, rows: 110 }, small: { bytes: 5, rows: 1 } });
  });
});
