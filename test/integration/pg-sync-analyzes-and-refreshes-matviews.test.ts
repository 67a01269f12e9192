import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, exec, pg15Missing, pg18Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing ?? pg18Missing)('sync leaves the target ready for queries: statistics and materialized views (PostgreSQL 15 → 18)', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { targetMajor: 18 });
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'shop', 3000);
    await exec(
      e.src,
      'shop',
      // by_price reads cheap through a plain view: it must be refreshed after cheap, whatever the names' order.
      'CREATE MATERIALIZED VIEW cheap AS SELECT id, price FROM items WHERE price < 10',
      'CREATE VIEW cheap_v AS SELECT * FROM cheap',
      'CREATE MATERIALIZED VIEW a_by_price AS SELECT price, count(*) AS n FROM cheap_v GROUP BY price',
      'CREATE MATERIALIZED VIEW never_filled AS SELECT id FROM items WITH NO DATA',
    );
  });
  afterAll(async () => e?.stop());

  it('after sync every table has last_analyze set, populated matviews hold the source rows, an unpopulated one stays so; check flags a table never analyzed', async () => {
    const plan = await writePlan(e, { db: 'shop', stateDir });
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    expect(sync.err + sync.out).toMatch(/2 materialized view\(s\) refreshed, \d+ relation\(s\) analyzed/);

    const t = await client(e.dst, { database: 'shop' });
    const s = await client(e.src, { database: 'shop' });
    try {
      const stats = await t.query<{ relname: string; a: boolean }>(`SELECT relname, last_analyze IS NOT NULL AS a FROM pg_stat_user_tables WHERE schemaname = 'public' ORDER BY 1`);
      expect(stats.rows.map((r) => r.relname)).toEqual(expect.arrayContaining(['items', 'cutover_workload']));
      expect(stats.rows.filter((r) => !r.a)).toEqual([]);
      for (const v of ['cheap', 'a_by_price']) {
        const q = `SELECT count(*)::int AS n, coalesce(sum(price), 0)::text AS total FROM ${v}`;
        const [src, dst] = [(await s.query(q)).rows[0], (await t.query(q)).rows[0]];
        expect(src.n).toBeGreaterThan(0);
        expect(dst).toEqual(src);
      }
      const filled = await t.query<{ p: boolean }>(`SELECT relispopulated AS p FROM pg_class WHERE relname = 'never_filled'`);
      expect(filled.rows[0]!.p).toBe(false);

      const quiet = await cli(['check', plan, '--json'], e.env);
      expect(quiet.json().findings.filter((f: { check: string }) => f.check === 'statistics')).toEqual([]);
      // The target is held read-only to applications: the test's session overrides it.
      await t.query('SET default_transaction_read_only = off');
      await t.query('CREATE TABLE late (id int PRIMARY KEY)');
    } finally {
      await Promise.all([t.end(), s.end()]);
    }
    const r = await cli(['check', plan, '--json'], e.env);
    const stale = r.json().findings.find((f: { check: string }) => f.check === 'statistics');
    expect(stale).toMatchObject({ severity: 'warning', object: 'public.late' });
    expect(stale.fix).toMatch(/ANALYZE public\.late;/);
  });
});
