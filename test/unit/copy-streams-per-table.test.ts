import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { copyUnits, type CopyTable } from '../../adapters/postgres/postgres-snapshot-copy.js';
import { copyStreamsPerTable } from '../../src/util/copy-split.js';
import { parseDbUrl } from '../../src/util/db-url.js';
import { endpointOnThisMachine, onThisMachine } from '../../src/util/this-machine.js';

const MB = 1024 * 1024;

describe('a big table is split no further than the cores its streams share', () => {
  it('servers elsewhere: no cap (the split size and balance decide, up to 16 ranges); both servers here: what the cores hold (a stream keeps ~1.7 cores busy)', () => {
    expect(copyStreamsPerTable(3, 0, 2)).toBeUndefined();
    expect(copyStreamsPerTable(3, 2, 2)).toBe(1);
    expect(copyStreamsPerTable(3, 1, 2)).toBe(1);
    expect(copyStreamsPerTable(5, 2, 4)).toBe(2);
    expect(copyStreamsPerTable(8, 2, 16)).toBe(8);
    expect(copyStreamsPerTable(2, 2, 1)).toBe(1);
  });

  it('the cap holds against both the split size and the balance split', () => {
    const accounts: CopyTable = { table: 'public.accounts', columns: ['aid'], bytes: 1300 * MB, pages: (1300 * MB) / 8192 };
    expect(copyUnits([accounts], 256 * MB, 3)).toHaveLength(6);
    expect(copyUnits([{ ...accounts, bytes: 20 * 1024 * MB, pages: (20 * 1024 * MB) / 8192 }], 256 * MB, 3, copyStreamsPerTable(3, 0, 2))).toHaveLength(16);
    expect(copyUnits([accounts], 256 * MB, 3, 1)).toEqual([{ table: accounts, bytes: accounts.bytes }]);
    expect(copyUnits([accounts], 256 * MB, 3, 2)).toHaveLength(2);
  });
});

describe('which servers run on this machine', () => {
  it('loopback, a socket directory and this machine’s own addresses are here; other hosts are not', () => {
    expect(onThisMachine('127.0.0.1')).toBe(true);
    expect(onThisMachine('LOCALHOST')).toBe(true);
    expect(onThisMachine('[::1]')).toBe(true);
    expect(onThisMachine('/var/run/postgresql')).toBe(true);
    const own = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && !a.internal);
    if (own) expect(onThisMachine(own.address)).toBe(true);
    expect(onThisMachine('db-primary.example.com')).toBe(false);
    expect(onThisMachine('::ffff:7f00:1')).toBe(true);
    expect(onThisMachine('0.0.0.0')).toBe(true);
    // A libpq host list is here only when every entry is.
    expect(onThisMachine('127.0.0.1,localhost')).toBe(true);
    expect(onThisMachine('127.0.0.1,db.remote')).toBe(false);
    expect(onThisMachine('192.0.2.10')).toBe(false);
  });

  it('a URL whose host parameter names a socket directory is here whatever its host part says', () => {
    expect(endpointOnThisMachine(parseDbUrl('postgres://u@db.example.com/app?host=/run/postgresql'))).toBe(true);
    expect(endpointOnThisMachine(parseDbUrl('postgres://u@db.example.com:5433/app'))).toBe(false);
    expect(endpointOnThisMachine(parseDbUrl('postgres://u@db.example.com/app?hostaddr=127.0.0.1'))).toBe(true);
    expect(endpointOnThisMachine(parseDbUrl('postgres://u@[::ffff:127.0.0.1]:5432/app'))).toBe(true);
  });
});
