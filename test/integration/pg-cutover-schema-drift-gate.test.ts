import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, exec, pg15Missing, pg18Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing ?? pg18Missing)('schema drift gate (PostgreSQL 15 → 18)', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { targetMajor: 18 });
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'shop', 500);
    await exec(
      e.src,
      'shop',
      // Constraints and indexes of every kind the fingerprint reads, to pin that 15 and 18 print them alike.
      `CREATE TABLE orders (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
         qty int CHECK (qty > 0), code text UNIQUE, placed timestamptz(3) DEFAULT now())`,
      'CREATE INDEX orders_item_placed ON orders (item, placed DESC) WHERE qty > 1',
      'CREATE SEQUENCE invoice_no AS int INCREMENT 5 MAXVALUE 1000000 CYCLE',
    );
  });
  afterAll(async () => e?.stop());

  it('after sync the schemas match; a column added on the source stops run before the fence (exit 3, named), check --schema shows it; the same DDL on the target clears it', async () => {
    const plan = await writePlan(e, { db: 'shop', stateDir });
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    expect(sync.err + sync.out).toMatch(/schema fingerprint: source and target schemas match \(\d+ objects/);
    const same = await cli(['check', plan, '--schema', '--json'], e.env);
    expect(same.code, same.err).toBe(0);
    expect(same.json().findings.filter((f: { check: string; severity: string }) => f.check === 'schema drift' && f.severity === 'blocker')).toEqual([]);

    await exec(e.src, 'shop', 'ALTER TABLE items ADD COLUMN color text');
    const r = await cli(['check', plan, '--schema', '--json'], e.env);
    expect(r.code).toBe(3);
    const drift = r.json().findings.filter((f: { check: string; severity: string }) => f.check === 'schema drift' && f.severity === 'blocker');
    expect(drift).toHaveLength(1);
    expect(drift[0]).toMatchObject({ object: 'public.items.color', message: 'column public.items.color (text) exists on the source but not on the target' });
    expect((await cli(['check', plan, '--json'], e.env)).code).toBe(0);

    const run = await cli(['run', plan, '--yes'], e.env);
    expect(run.code).toBe(3);
    expect(run.err).toMatch(/the schema changed since sync: column public\.items\.color \(text\) exists on the source but not on the target; nothing was fenced/);
    expect(await canWrite(e.src, 'shop')).toBe(true);
    const status = await cli(['status', plan, '--json'], e.env);
    expect(status.json()).toMatchObject({ phase: 'synced', source: { readOnly: false } });

    const t = await client(e.dst, { database: 'shop' });
    await t.query('SET default_transaction_read_only = off');
    await t.query('ALTER TABLE items ADD COLUMN color text');
    await t.end();
    await exec(e.src, 'shop', `UPDATE items SET color = 'red' WHERE id <= 10`);
    const again = await cli(['run', plan, '--yes'], e.env);
    expect(again.code, again.err).toBe(0);
    const c = await client(e.dst, { database: 'shop' });
    const red = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM items WHERE color = 'red'`);
    await c.end();
    expect(red.rows[0]!.n).toBe(10);
  });
});
