import { describe, expect, it } from 'vitest';
import { copyInScript, copyOutSql, copyUnits, newerTimeoutsOff, type CopyTable } from '../../adapters/postgres/postgres-snapshot-copy.js';
import { parsePlan } from '../../src/plan/index.js';

const MB = 1024 * 1024;
const table = (name: string, mb: number): CopyTable => ({ table: `public.${name}`, columns: ['id', '"Note"'], bytes: mb * MB, pages: (mb * MB) / 8192 });

describe('the snapshot copy cuts big tables into page ranges and starts with the biggest', () => {
  it('a table above the threshold becomes contiguous ranges covering every page, the last one open-ended', () => {
    const units = copyUnits([table('small', 1), table('big', 100)], 10 * MB);
    const big = units.filter((u) => u.table.table === 'public.big');
    expect(big).toHaveLength(10);
    const ranges = big.map((u) => u.range!).sort((a, b) => a.fromPage - b.fromPage);
    expect(ranges[0]!.fromPage).toBe(0);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.fromPage).toBe(ranges[i - 1]!.toPage);
    expect(ranges.at(-1)!.toPage).toBeUndefined();
    expect(units.at(-1)!.table.table).toBe('public.small');
    expect(units.at(-1)!.range).toBeUndefined();
  });

  it('never more than 16 ranges, never more ranges than pages', () => {
    expect(copyUnits([table('huge', 10_000)], MB)).toHaveLength(16);
    expect(copyUnits([{ table: 'public.t', columns: ['id'], bytes: 50 * MB, pages: 3 }], MB)).toHaveLength(3);
  });

  it('COPY names its columns (generated ones are left out by the caller) and reads a range with a TID range scan', () => {
    const [whole] = copyUnits([table('small', 1)], 10 * MB);
    expect(copyOutSql(whole!)).toBe('COPY public.small (id, "Note") TO STDOUT');
    const ranged = copyUnits([table('big', 30)], 10 * MB)
      .map(copyOutSql)
      .sort();
    expect(ranged).toContain(`COPY (SELECT id, "Note" FROM ONLY public.big WHERE ctid >= '(0,0)'::tid AND ctid < '(1280,0)'::tid) TO STDOUT`);
    expect(ranged).toContain(`COPY (SELECT id, "Note" FROM ONLY public.big WHERE ctid >= '(2560,0)'::tid) TO STDOUT`);
  });

  it('a table of built-in types is read and loaded in the binary format on both ends; any other as text', () => {
    const [bin] = copyUnits([{ ...table('small', 1), binary: true }], 10 * MB);
    expect(copyOutSql(bin!)).toBe('COPY public.small (id, "Note") TO STDOUT (FORMAT binary)');
    expect(copyInScript(bin!).prelude).toBe('BEGIN;\n\\copy public.small (id, "Note") from pstdin (format binary)\n');
    const [ranged] = copyUnits([{ ...table('big', 30), binary: true }], 10 * MB);
    expect(copyOutSql(ranged!)).toMatch(/^COPY \(SELECT id, "Note" FROM ONLY public\.big WHERE ctid .*\) TO STDOUT \(FORMAT binary\)$/);
    const [text] = copyUnits([table('small', 1)], 10 * MB);
    expect(copyInScript(text!).prelude).toBe('BEGIN;\n\\copy public.small (id, "Note") from pstdin\n');
  });

  it('with freeze, a table copied whole (8 MB or more) is emptied in the load transaction and loaded frozen; a smaller one and a range never are', () => {
    const [bin] = copyUnits([{ ...table('mid', 8), binary: true }], 10 * MB);
    expect(copyInScript(bin!, true).prelude).toBe('BEGIN;\nTRUNCATE ONLY public.mid;\n\\copy public.mid (id, "Note") from pstdin (format binary, freeze)\n');
    const [text] = copyUnits([table('mid', 8)], 10 * MB);
    expect(copyInScript(text!, true).prelude).toBe('BEGIN;\nTRUNCATE ONLY public.mid;\n\\copy public.mid (id, "Note") from pstdin (freeze)\n');
    const [small] = copyUnits([{ ...table('small', 7), binary: true }], 10 * MB);
    expect(copyInScript(small!, true).prelude).toBe('BEGIN;\n\\copy public.small (id, "Note") from pstdin (format binary)\n');
    const ranged = copyUnits([{ ...table('big', 30), binary: true }], 10 * MB);
    for (const u of ranged) expect(copyInScript(u, true).prelude).toBe('BEGIN;\n\\copy public.big (id, "Note") from pstdin (format binary)\n');
  });
});

describe('copy sessions: the newer timeouts switched off', () => {
  it('only those the server knows (an unknown name in PGOPTIONS fails the login)', () => {
    expect(newerTimeoutsOff(13)).toBe('');
    expect(newerTimeoutsOff(14)).toBe('-c idle_session_timeout=0');
    expect(newerTimeoutsOff(17)).toBe('-c idle_session_timeout=0 -c transaction_timeout=0');
    expect(newerTimeoutsOff(18)).toBe('-c idle_session_timeout=0 -c transaction_timeout=0');
  });
});

describe('plan: copy', () => {
  const base = ['source: { url: "postgres://u@a/app" }', 'target: { url: "postgres://u@b/app" }', 'scope: { databases: [app] }'];
  it('takes jobs and a split size; absent, the plan has no copy block', () => {
    expect(parsePlan([...base, 'copy: { jobs: 6, splitTablesLargerThan: 1GB }'].join('\n'), '/x/p.yaml').copy).toEqual({ jobs: 6, splitAboveBytes: 1024 ** 3 });
    expect(parsePlan(base.join('\n'), '/x/p.yaml').copy).toBeUndefined();
  });
  it('refuses a bad value with one line naming the key; a MariaDB plan takes the key too (its parallel copy)', () => {
    expect(() => parsePlan([...base, 'copy: { jobs: 0 }'].join('\n'), '/x/p.yaml')).toThrow(/copy\.jobs.*too small/);
    expect(() => parsePlan(['engine: mariadb', 'source: { url: "mariadb://u@a/app" }', 'target: { url: "mariadb://u@b/app" }', 'scope: { databases: [app] }', 'copy: { jobs: 2 }'].join('\n'), '/x/p.yaml')).not.toThrow();
  });
});

describe('copyUnits balance', () => {
  const MB = 1024 * 1024;
  const t = (name: string, mb: number): CopyTable => ({ table: `public.${name}`, columns: ['id'], bytes: mb * MB, pages: (mb * MB) / 8192 });
  it('splits a table holding most of the data into one range per worker even below the split size', () => {
    const units = copyUnits([t('accounts', 384), t('history', 1)], 256 * MB, 3);
    expect(units.filter((u) => u.table.table === 'public.accounts')).toHaveLength(3);
    expect(units.filter((u) => u.table.table === 'public.history')).toHaveLength(1);
  });
  it('leaves small databases whole', () => {
    expect(copyUnits([t('a', 20), t('b', 10)], 256 * MB, 3)).toHaveLength(2);
  });
});
