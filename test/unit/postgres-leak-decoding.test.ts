import { describe, expect, it } from 'vitest';
import { compareLsn, leaksAfter, parseChangeTables, parseDecodedChanges, type DecodedRow } from '../../adapters/postgres/postgres-leak-decoding.js';

// test_decoding output of PostgreSQL 15 (include-xids, skip-empty-xacts, include-timestamp), as the server printed it.
const ROWS: DecodedRow[] = [
  { lsn: '0/15198A0', xid: '726', data: 'BEGIN 726' },
  { lsn: '0/15198A0', xid: '726', data: `table "Odd: sch"."t, ""x""": INSERT: id[integer]:1 v[text]:'a: b'` },
  { lsn: '0/1519980', xid: '726', data: `table "Odd: sch"."t, ""x""": INSERT: id[integer]:2 v[text]:'line\nbreak'` },
  { lsn: '0/1519A38', xid: '726', data: 'COMMIT 726 (at 2026-11-25 17:02:21.335638+00)' },
  { lsn: '0/1519A38', xid: '727', data: 'BEGIN 727' },
  { lsn: '0/1519A38', xid: '727', data: 'table public.plain: INSERT: id[integer]:1' },
  { lsn: '0/1519A78', xid: '727', data: 'table public.plain: UPDATE: id[integer]:2' },
  { lsn: '0/1519AC0', xid: '727', data: 'table public.plain: DELETE: (no-tuple-data)' },
  { lsn: '0/1519B28', xid: '727', data: 'COMMIT 727 (at 2026-11-25 17:02:21.337222+00)' },
  { lsn: '0/151AB88', xid: '728', data: 'BEGIN 728' },
  { lsn: '0/151AB88', xid: '728', data: 'table public.plain, public."Select", "Odd: sch"."t, ""x""": TRUNCATE: (no-flags)' },
  { lsn: '0/151ADA8', xid: '728', data: 'COMMIT 728 (at 2026-11-25 17:02:21.339848+00)' },
  { lsn: '0/151B108', xid: '0', data: 'message: transactional: 0 prefix: p, sz: 5 content:nontx' },
  { lsn: '0/151B140', xid: '730', data: 'message: transactional: 1 prefix: cutover, sz: 10 content:leak check' },
  { lsn: '0/151C000', xid: '731', data: 'BEGIN 731' },
  { lsn: '0/151C000', xid: '731', data: `table _cutover.sentinel: UPDATE: id[integer]:1 token[text]:'abc' at[timestamp with time zone]:'2026-11-25 17:02:22+00'` },
  { lsn: '0/151C100', xid: '731', data: 'COMMIT 731 (at 2026-11-25 17:02:22.000001+00)' },
  { lsn: '0/151C200', xid: '732', data: 'BEGIN 732' },
  { lsn: '0/151C200', xid: '732', data: 'table public.plain: INSERT: id[integer]:9' },
  { lsn: '0/151C300', xid: '732', data: 'COMMIT 732 (at 2026-11-25 17:02:22.100000+00)' },
];

describe('test_decoding output parser', () => {
  it('reads quoted identifiers that contain dots, colons, commas and quotes', () => {
    expect(parseChangeTables(ROWS[1]!.data)).toEqual({ op: 'INSERT', tables: [{ schema: 'Odd: sch', name: 't, "x"', qualified: '"Odd: sch"."t, ""x"""' }] });
  });

  it('reads every table of a TRUNCATE', () => {
    expect(parseChangeTables(ROWS[10]!.data)?.tables.map((t) => `${t.schema}|${t.name}`)).toEqual(['public|plain', 'public|Select', 'Odd: sch|t, "x"']);
  });

  it('ignores rows that are not table changes, and names it cannot parse', () => {
    expect(parseChangeTables('BEGIN 1')).toBeUndefined();
    expect(parseChangeTables('message: transactional: 1 prefix: p, sz: 1 content:x')).toBeUndefined();
    expect(parseChangeTables('table "unterminated: INSERT: x')).toBeUndefined();
    // A row the server cut to its first characters still names its table.
    expect(parseChangeTables(`table public.plain: INSERT: id[integer]:1 v[text]:'aaaa`)?.tables[0]?.name).toBe('plain');
  });

  it('groups rows into committed transactions with tables, row counts, commit position and time', () => {
    const txns = parseDecodedChanges(ROWS);
    expect(txns.map((t) => t.xid)).toEqual(['726', '727', '728', '731', '732']);
    const t727 = txns.find((t) => t.xid === '727')!;
    expect([...t727.tables]).toEqual([['public.plain', { schema: 'public', changes: 3 }]]);
    expect(t727.commitLsn).toBe('0/1519B28');
    expect(t727.committedAt).toBe('2026-11-25 17:02:21.337222+00');
    expect(txns.find((t) => t.xid === '728')!.tables.size).toBe(3);
  });

  it('counts a transaction committed after the position as a leak, the tool schema as a sentinel, not a leak', () => {
    const all = leaksAfter(parseDecodedChanges(ROWS), '0/1519A38');
    expect(all.leaks.map((l) => l.xid)).toEqual(['727', '728', '732']);
    expect(all.leaks[0]).toEqual({ xid: '727', tables: [{ table: 'public.plain', changes: 3 }], changes: 3, commitPosition: '0/1519B28', committedAt: '2026-11-25 17:02:21.337222+00' });
    expect(all.lastSentinelLsn).toBe('0/151C100');
    // A transaction whose commit ends exactly at the position committed before it.
    expect(leaksAfter(parseDecodedChanges(ROWS), '0/1519B28').leaks.map((l) => l.xid)).toEqual(['728', '732']);
    expect(leaksAfter(parseDecodedChanges(ROWS), '0/151C300')).toEqual({ leaks: [] });
  });

  it('compares LSNs numerically, not as text', () => {
    expect(compareLsn('0/9', '0/10')).toBe(-1);
    expect(compareLsn('1/0', '0/FFFFFFFF')).toBe(1);
    expect(compareLsn('A/1B', 'a/1b')).toBe(0);
  });
});
