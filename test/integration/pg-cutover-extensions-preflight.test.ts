import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, exec, pg15Missing, pg18Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing ?? pg18Missing)('extensions preflight (PostgreSQL 15 → 18)', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { targetMajor: 18 });
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'shop', 100);
    await exec(
      e.src,
      'shop',
      // adminpack is contrib in 15 and was removed in 17: the embedded 18 build does not have it.
      'CREATE EXTENSION adminpack',
      'CREATE EXTENSION citext',
      'CREATE SCHEMA ext',
      'CREATE EXTENSION pg_trgm WITH SCHEMA ext',
      'CREATE TABLE people (id int PRIMARY KEY, email citext NOT NULL)',
      'CREATE INDEX people_email_trgm ON people USING gin ((email::text) ext.gin_trgm_ops)',
      `INSERT INTO people SELECT g, 'User' || g || '@Example.org' FROM generate_series(1, 50) g`,
    );
  });
  afterAll(async () => e?.stop());

  it('an extension the target lacks is a blocker naming it and the package: check and run exit 3, nothing created on the target', async () => {
    const plan = await writePlan(e, { db: 'shop', stateDir });
    const r = await cli(['check', plan, '--json'], e.env);
    expect(r.code, r.err).toBe(3);
    const ext = r.json().findings.filter((f: { check: string; severity: string }) => f.check === 'extensions' && f.severity === 'blocker');
    expect(ext).toHaveLength(1);
    expect(ext[0].object).toBe('adminpack');
    expect(ext[0].message).toMatch(/adminpack .* not available on the target/);
    expect(ext[0].fix).toMatch(/postgresql-18-adminpack/);
    const human = await cli(['check', plan], e.env);
    expect(human.err).toMatch(/\[BLOCKER\] extensions \(adminpack\)/);
    const run = await cli(['run', plan, '--yes'], e.env);
    expect(run.code, run.err).toBe(3);
    const t = await client(e.dst);
    const dbs = await t.query(`SELECT 1 FROM pg_database WHERE datname = 'shop'`);
    await t.end();
    expect(dbs.rows).toEqual([]);
  });

  it('extensions the target has are created before the schema, at the source version, in their schema; the data that uses them loads', async () => {
    await exec(e.src, 'shop', 'DROP EXTENSION adminpack');
    const plan = await writePlan(e, { db: 'shop', stateDir });
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    expect(sync.err + sync.out).toMatch(/extension\(s\) created on the target: .*citext/);
    const q = `SELECT e.extname, e.extversion, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE extname IN ('citext', 'pg_trgm') ORDER BY 1`;
    const s = await client(e.src, { database: 'shop' });
    const t = await client(e.dst, { database: 'shop' });
    try {
      expect((await t.query(q)).rows).toEqual((await s.query(q)).rows);
      const hit = await t.query(`SELECT count(*)::int AS n FROM people WHERE email = 'user7@example.org'`);
      expect(hit.rows[0].n).toBe(1);
    } finally {
      await Promise.all([s.end(), t.end()]);
    }
  });
});
