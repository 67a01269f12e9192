import { describe, expect, it } from 'vitest';
import { chunkHashSql, nextBoundSql, rangePredicate, type KeyColumn } from '../../adapters/postgres/postgres-verify-chunks.js';
import { mysqlChunkHashSql, mysqlNextBoundSql, mysqlRangePredicate, mysqlVerifyChunks, REPEATABLE_READ_SQL, SWITCH_SNAPSHOT_SQL } from '../../adapters/mysql/mysql-verify-chunks.js';
import type { Query } from '../../adapters/mysql/mysql-sessions.js';
import { inWindowVerifyFinding } from '../../src/engine/verify-cost.js';
import type { ChunkCheck, OnlineVerifyHooks } from '../../src/engine/cutover-adapter.js';
import { describeRange, estimateRemaining, freshLedger, MAX_MISMATCHES_KEPT, recordChunk, startingPoint } from '../../src/engine/verify-ledger.js';
import { parsePlan } from '../../src/plan/parse-plan.js';
import { PlanError } from '../../src/errors.js';

const ID: KeyColumn[] = [{ name: '"id"', type: 'bigint' }];
const PAIR: KeyColumn[] = [
  { name: '"tenant"', type: 'text' },
  { name: '"n"', type: 'integer' },
];

describe('primary-key ranges of the online verify', () => {
  it('bounds a chunk by row comparison on the key, values as typed parameters', () => {
    expect(rangePredicate(ID, { lo: ['10'], hi: ['20'] })).toEqual({ sql: '("id") > ($1::bigint) AND ("id") <= ($2::bigint)', params: ['10', '20'] });
    expect(rangePredicate(PAIR, { lo: ['a', '3'], hi: null })).toEqual({ sql: '("tenant", "n") > ($1::text, $2::integer)', params: ['a', '3'] });
  });

  it('leaves the first chunk open below and the last open above, so rows outside every bound are still counted', () => {
    expect(rangePredicate(ID, { lo: null, hi: ['5'] }).sql).toBe('("id") <= ($1::bigint)');
    expect(rangePredicate(ID, { lo: null, hi: null })).toEqual({ sql: 'true', params: [] });
  });

  it('finds the next bound as the chunkRows-th key after the last one, in key order', () => {
    const q = nextBoundSql('"public"."t"', PAIR, ['a', '3'], 500);
    expect(q.sql).toBe('SELECT "tenant"::text AS k0, "n"::text AS k1 FROM "public"."t" WHERE ("tenant", "n") > ($1::text, $2::integer) ORDER BY "tenant", "n" OFFSET 499 LIMIT 1');
    expect(q.params).toEqual(['a', '3']);
    expect(nextBoundSql('t', ID, null, 1).sql).toContain('WHERE true ORDER BY "id" OFFSET 0 LIMIT 1');
  });

  it('hashes a chunk with one aggregate (count and a sum of row md5s: constant memory), and a keyless table whole', () => {
    const q = chunkHashSql('"s"."t"', ID, { lo: ['1'], hi: ['9'] });
    expect(q.sql).toMatch(
      /^SELECT count\(\*\)::text AS n, coalesce\(sum\(\('x' \|\| left\(md5\(\(r\.\*\)::text\), 16\)\)::bit\(64\)::bigint::numeric\), 0\)::text AS h FROM "s"."t" AS r WHERE \("id"\) > \(\$1::bigint\) AND \("id"\) <= \(\$2::bigint\)$/,
    );
    expect(q.sql).not.toMatch(/string_agg|array_agg/);
    expect(chunkHashSql('t', [], { lo: null, hi: null })).toEqual({ sql: expect.stringMatching(/FROM t AS r WHERE true$/), params: [] });
  });
});

/** A session that answers the catalog, bound and hash queries of one table `t` (key id) of 5 rows, and logs every statement. */
function fakeSession(log: string[], side: string, hashOf: (bounds: string) => string): Query {
  return (async (sql: string, params: unknown[] = []) => {
    log.push(`${side}: ${sql.split(' ').slice(0, 3).join(' ')}`);
    if (sql.includes('information_schema.TABLES')) return [{ t: 't', n: '5' }];
    if (sql.includes('information_schema.COLUMNS')) return [{ c: 'id' }, { c: 'v' }];
    if (sql.includes('information_schema.STATISTICS')) return [{ c: 'id' }];
    // Chunks of 2: bounds after 2 and 4, then no 2nd row after 4.
    if (sql.includes('LIMIT 1 OFFSET')) return params.length === 0 ? [{ k0: '2' }] : params[0] === '2' ? [{ k0: '4' }] : [];
    if (sql.includes('COUNT(*)')) return [{ n: '2', h: hashOf(params.join(',')) }];
    throw new Error(`unexpected ${sql}`);
  }) as Query;
}

describe('MariaDB/MySQL compare after the switch (SQL only for MySQL 8: no server here)', () => {
  it('takes each snapshot with one statement that MariaDB and MySQL 8 both read the same way, on REPEATABLE READ sessions', () => {
    expect(SWITCH_SNAPSHOT_SQL).toBe('START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT');
    expect(REPEATABLE_READ_SQL).toBe('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  });

  it('reads every chunk from the snapshots the sessions hold: no table lock, no new snapshot, no commit, and a differing chunk is named', async () => {
    const log: string[] = [];
    const checks: ChunkCheck[] = [];
    const hooks: OnlineVerifyHooks = { chunkRows: 2, cursor: () => undefined, tables: async () => {}, chunk: async (c) => void checks.push(c) };
    const src = fakeSession(log, 'src', () => '1');
    await mysqlVerifyChunks({ database: 'shop', src, srcSnap: fakeSession(log, 'srcSnap', () => '1'), dstSnap: fakeSession(log, 'dstSnap', (bounds) => (bounds === '2,4' ? '9' : '1')) }, hooks);
    expect(checks.map((c) => [c.table, c.lo, c.hi, c.match])).toEqual([
      ['t', null, ['2'], true],
      ['t', ['2'], ['4'], false],
      ['t', ['4'], null, true],
    ]);
    expect(log.filter((l) => /LOCK|START|COMMIT|ROLLBACK|GTID/i.test(l))).toEqual([]);
    // Bounds come from the source snapshot, hashes from both: the main session only reads the catalog.
    expect(log.filter((l) => l.startsWith('dstSnap')).length).toBe(3);
    expect(log.filter((l) => l.startsWith('src:')).every((l) => !l.includes('CAST'))).toBe(true);
  });
});

const chunk = (table: string, match: boolean, rows = 10): ChunkCheck => ({ table, lo: null, hi: ['9'], rows, source: `${rows}:1`, target: match ? `${rows}:1` : `${rows}:2`, match });

describe('the verify ledger (resume)', () => {
  it('records cursors, totals and mismatches, keeping at most a bounded number of mismatched chunks', () => {
    const st = freshLedger(new Date(0));
    recordChunk(st, chunk('a', true), { lastKey: ['9'], done: false });
    for (let i = 0; i < MAX_MISMATCHES_KEPT + 5; i++) recordChunk(st, chunk('b', false, 1), { lastKey: [String(i)], done: false });
    expect(st.cursors).toEqual({ a: { lastKey: ['9'], done: false }, b: { lastKey: [String(MAX_MISMATCHES_KEPT + 4)], done: false } });
    expect(st.chunks).toBe(MAX_MISMATCHES_KEPT + 6);
    expect(st.rows).toBe(10 + MAX_MISMATCHES_KEPT + 5);
    expect(st.mismatchCount).toBe(MAX_MISMATCHES_KEPT + 5);
    expect(st.mismatches).toHaveLength(MAX_MISMATCHES_KEPT);
  });

  it('continues an unfinished pass, reuses a clean finished one, and starts over after differences or on restart', () => {
    const unfinished = { ...freshLedger(new Date(0)), chunks: 3 };
    expect(startingPoint(unfinished, false)).toEqual({ state: unfinished, reused: false });
    const clean = { ...unfinished, finishedAt: '2026-01-01T00:00:00.000Z' };
    expect(startingPoint(clean, false)).toEqual({ state: clean, reused: true });
    const now = new Date(5000);
    expect(startingPoint(clean, true, now)).toEqual({ state: freshLedger(now), reused: false });
    expect(startingPoint({ ...clean, mismatchCount: 1 }, false, now)).toEqual({ state: freshLedger(now), reused: false });
    expect(startingPoint(undefined, false, now)).toEqual({ state: freshLedger(now), reused: false });
  });

  it('estimates the time left from this run’s rate, not from rows an earlier run checked', () => {
    expect(estimateRemaining(1000, 600, 100, 1000)).toEqual({ rowsLeft: 400, etaMs: 4000 });
    expect(estimateRemaining(1000, 600, 0, 1000)).toEqual({ rowsLeft: 400, etaMs: undefined });
    expect(estimateRemaining(10, 50, 50, 10).rowsLeft).toBe(0);
    expect(estimateRemaining(0, 50, 50, 10).etaMs).toBeUndefined();
  });

  it('names key ranges the way an operator types them', () => {
    expect(describeRange({ lo: ['1'], hi: ['9'] })).toBe('(1, 9]');
    expect(describeRange({ lo: null, hi: ['a', '2'] })).toBe('(-∞, (a, 2)]');
    expect(describeRange({ lo: ['7'], hi: null })).toBe('(7, +∞)');
  });
});

const BASE = 'source: { url: postgres://app@a/shop }\ntarget: { url: postgres://app@b/shop }\n';

describe('plan key verify', () => {
  it('reads the map form', () => {
    const plan = parsePlan(BASE + 'verify: { before: none, inWindow: rowcounts, chunkRows: 500 }\n', '/p/plan.yaml');
    expect(plan.verify).toBe('rowcounts');
    expect(plan.verifyBefore).toEqual({ mode: 'none', chunkRows: 500 });
    expect(parsePlan(BASE + 'verify: { inWindow: checksums }\n', '/p/plan.yaml')).toMatchObject({ verify: 'checksums', verifyBefore: { mode: 'chunks', chunkRows: 10_000 } });
  });

  it('waves default to no verify before each tenant’s hold, unless the plan asks', () => {
    const waves = BASE.replace('postgres://app@a/shop', 'postgres://app@a/').replace('postgres://app@b/shop', 'postgres://app@b/') + 'scope: { tenants: [t1, t2] }\n';
    expect(parsePlan(waves, '/p/plan.yaml').verifyBefore.mode).toBe('none');
    expect(parsePlan(waves + 'verify: { before: chunks }\n', '/p/plan.yaml').verifyBefore.mode).toBe('chunks');
  });

  it('verify.after: none by default, chunks when asked, on both engines; anything else refused', () => {
    expect(parsePlan(BASE, '/p/plan.yaml').verifyAfter).toBe('none');
    expect(parsePlan(BASE + 'verify: { after: chunks }\n', '/p/plan.yaml').verifyAfter).toBe('chunks');
    expect(parsePlan(BASE + 'verify: rowcounts\n', '/p/plan.yaml').verifyAfter).toBe('none');
    const maria = 'engine: mariadb\nsource: { url: mysql://app@a/shop }\ntarget: { url: mysql://app@b/shop }\nverify: { after: chunks }\n';
    expect(parsePlan(maria, 'plan.yaml').verifyAfter).toBe('chunks');
    expect(() => parsePlan(BASE + 'verify: { after: rows }\n', 'plan.yaml')).toThrow(/verify\.after/);
  });

  it('keeps the scalar form meaning what it did: that check inside the window, no online verify', () => {
    for (const v of ['none', 'rowcounts', 'checksums'] as const) {
      expect(parsePlan(BASE + `verify: ${v}\n`, '/p/plan.yaml')).toMatchObject({ verify: v, verifyBefore: { mode: 'none' } });
    }
  });

  it('names a bad key or value with its line', () => {
    const err = (text: string) => {
      try {
        parsePlan(BASE + text, 'plan.yaml');
      } catch (e) {
        return (e as PlanError).message;
      }
      return 'no error';
    };
    expect(err('verify: { before: chunk }\n')).toContain('plan.yaml:3: verify.before: "chunk" is not one of chunks, none (did you mean "chunks"?)');
    expect(err('verify: { chunkRows: 0 }\n')).toContain('plan.yaml:3: verify.chunkRows:');
    expect(err('verify: { inwindow: none }\n')).toContain('verify.inwindow: unknown key "inwindow" (did you mean "inWindow"?)');
  });
});

describe('MariaDB/MySQL chunk statements', () => {
  it('spells a composite-key range out lexicographically so the index serves it', () => {
    expect(mysqlRangePredicate(['`a`', '`b`'], { lo: ['1', 'x'], hi: ['3', 'y'] })).toEqual({
      sql: '((`a` > ?) OR (`a` = ? AND `b` > ?)) AND ((`a` < ?) OR (`a` = ? AND `b` <= ?))',
      params: ['1', '1', 'x', '3', '3', 'y'],
    });
    expect(mysqlRangePredicate(['`id`'], { lo: null, hi: ['9'] })).toEqual({ sql: '((`id` <= ?))', params: ['9'] });
    expect(mysqlRangePredicate(['`id`'], { lo: null, hi: null }).sql).toBe('TRUE');
  });

  it('hashes every column QUOTE()d (NULL differs from empty) into one aggregate per chunk', () => {
    const q = mysqlChunkHashSql('`d`.`t`', ['`id`', '`v`'], ['`id`'], { lo: ['5'], hi: null });
    expect(q.sql).toBe(
      "SELECT CAST(COUNT(*) AS CHAR) AS n, CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5(CONCAT_WS(',', QUOTE(`id`), QUOTE(`v`))), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) AS h FROM `d`.`t` WHERE ((`id` > ?))",
    );
    expect(q.params).toEqual(['5']);
    expect(mysqlNextBoundSql('`d`.`t`', ['`id`'], null, 100).sql).toBe('SELECT CAST(`id` AS CHAR) AS k0 FROM `d`.`t` WHERE TRUE ORDER BY `id` LIMIT 1 OFFSET 99');
  });
});

describe('the cost of a verify inside the window, shown at check', () => {
  it('estimates from the tables’ size, warns when it takes a real share of the budget, and says nothing for none', () => {
    expect(inWindowVerifyFinding('none', { tables: 3, bytes: 1e9 }, 5000)).toBeUndefined();
    const small = inWindowVerifyFinding('rowcounts', { tables: 2, bytes: 1024 ** 2 }, 5000)!;
    expect(small).toMatchObject({ severity: 'info', check: 'verify in the window' });
    expect(small.message).toMatch(/^verify.inWindow rowcounts reads 2 table\(s\), 1(\.0)? MB, while writes are blocked: about 2ms/);
    const big = inWindowVerifyFinding('checksums', { tables: 9, bytes: 100 * 1024 ** 3 }, 5000)!;
    expect(big.severity).toBe('warning');
    expect(big.message).toContain('100.0 GB, while writes are blocked: more than 3m7s (grows with the data)');
    expect(big.fix).toContain('before: chunks');
  });
});
