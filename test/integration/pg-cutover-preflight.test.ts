import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, exec, pg15Missing, pg17Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing ?? pg17Missing)('cutover check (PostgreSQL preflight) and bad plans', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { srcSettings: { wal_level: 'replica' } });
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'shop', 100);
    await exec(e.src, 'shop', 'CREATE TABLE "audit log" (at timestamptz, what text)', 'CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY)', `SELECT lo_from_bytea(0, repeat('x', 5000)::bytea)`);
    const c = await client(e.src, { database: 'shop' });
    await c.query('BEGIN');
    await c.query(`INSERT INTO items (name) VALUES ('pending')`);
    await c.query(`PREPARE TRANSACTION 'half-done'`);
    await c.end();
  });
  afterAll(async () => {
    await exec(e.src, 'shop', `ROLLBACK PREPARED 'half-done'`).catch(() => {});
    await e?.stop();
  });

  it('finds a table without primary key, a prepared transaction and wal_level=replica: exit 3, nothing changed', async () => {
    const plan = await writePlan(e, { db: 'shop', stateDir });
    const r = await cli(['check', plan, '--json'], e.env);
    expect(r.code, r.err).toBe(3);
    const doc = r.json();
    const blockers = doc.findings.filter((f: { severity: string }) => f.severity === 'blocker');
    const checks = blockers.map((f: { check: string }) => f.check);
    expect(checks).toEqual(expect.arrayContaining(['wal_level', 'primary keys', 'prepared transactions', 'unlogged tables', 'large objects']));
    const lo = blockers.find((f: { check: string }) => f.check === 'large objects');
    expect(lo.message).toMatch(/^1 large object\(s\) \([\d.]+ KB in pg_largeobject\)/);
    const noPk = blockers.find((f: { check: string }) => f.check === 'primary keys');
    expect(noPk).toMatchObject({ object: 'public."audit log"' });
    expect(noPk.fix).toMatch(/REPLICA IDENTITY FULL/);
    for (const f of blockers) {
      expect(f.why.length).toBeGreaterThan(10);
      expect(f.fix.length).toBeGreaterThan(5);
    }
    const human = await cli(['check', plan], e.env);
    expect(human.code).toBe(3);
    expect(human.err).toMatch(/\[BLOCKER\] wal_level/);
    expect(human.err).toMatch(/fix: ALTER SYSTEM SET wal_level = logical/);
    const run = await cli(['run', plan, '--yes'], e.env);
    expect(run.code).toBe(3);
    const t = await client(e.dst);
    const dbs = await t.query(`SELECT 1 FROM pg_database WHERE datname = 'shop'`);
    await t.end();
    expect(dbs.rows).toEqual([]);
  });

  it.each([
    ['unknown key', 'engine: postgres\nsource: { url: "postgres://a@h/shop" }\ntarget: { url: "postgres://a@h2/shop" }\nscope: { databases: [shop] }\nlimts: { maxWriteBlocked: 5s }\n', /:5: .*limts/],
    ['wrong type', 'engine: postgres\nsource: { url: "postgres://a@h/shop" }\ntarget: { url: "postgres://a@h2/shop" }\nscope: { databases: [shop] }\nlimits: { maxWriteBlocked: "5x" }\n', /:5: limits\.maxWriteBlocked/],
    ['missing target', 'engine: postgres\nsource: { url: "postgres://a@h/shop" }\nscope: { databases: [shop] }\n', /target/],
    ['not YAML', 'engine: [postgres\n', /yaml:2: YAML syntax/],
  ])('a bad plan (%s) exits 2 naming the key and line', async (_name, text, message) => {
    const file = join(stateDir, `bad-${_name.replace(/\W+/g, '-')}.yaml`);
    await writeFile(file, text);
    const r = await cli(['check', file], {});
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('a missing plan file exits 2', async () => {
    const r = await cli(['run', join(stateDir, 'nope.yaml'), '--yes'], {});
    expect(r.code).toBe(2);
  });
});
