import { describe, expect, it } from 'vitest';
import { CopyTally } from '../../src/util/copy-tally.js';

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
    const midway = tally.loading({ bytes: 490, rows: 4900 });
    expect(midway).toMatchObject({ tablesDone: 1, tablesTotal: 2, bytesDone: 500, bytesTotal: 1010, rowsDone: 4903 });
    // The rate includes the loading bytes: half the data in, about as long again to go (not the tellers' tiny rate).
    expect(midway.etaMs).toBeDefined();
    expect(midway).not.toHaveProperty('table');
    expect(tally.partDone('accounts', 1000, 10_000)).toMatchObject({ tableDone: true, tablesDone: 2, bytesDone: 1010, rowsDone: 10_003 });
  });
});
