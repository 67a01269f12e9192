import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, pg15Missing, pg17Missing } from '../helpers/pg.js';

async function leakSlots(e: PostgresEnv, db: string): Promise<string[]> {
  const c = await client(e.src);
  try {
    return (await c.query<{ s: string }>(`SELECT slot_name AS s FROM pg_replication_slots WHERE slot_name LIKE '%\\_leaks' AND database = $1 ORDER BY 1`, [db])).rows.map((r) => r.s);
  } finally {
    await c.end();
  }
}

describe.skipIf(pg15Missing ?? pg17Missing)("the leak check's decoding slot is made by sync, so an open transaction at the run cannot downgrade it", () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres');
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'slot_run', 500);
    await seedDatabase(e.src, 'slot_rb', 500);
  });
  afterAll(async () => e?.stop());

  it('sync makes it; a write transaction open when the run starts leaves the check decoded; cleanup drops it', async () => {
    // Only the leak check is under test here: the verify before the hold would wait for the open writer's table.
    const plan = await writePlan(e, { db: 'slot_run', stateDir, extra: 'verify: { before: none }\nreadOnly: { drainTimeout: 200ms }' });
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    expect(sync.err).toMatch(/decoding slot cutover_\w+_leaks for the leak check in place/);
    expect(await leakSlots(e, 'slot_run')).toHaveLength(1);
    const status = await cli(['status', plan, '--json'], e.env);
    expect(status.json().leftovers).toContainEqual(expect.objectContaining({ where: 'source', kind: 'replication slot (leak check)', retainsWal: true }));

    const open = await client(e.src, { database: 'slot_run' });
    open.on('error', () => {});
    await open.query('BEGIN');
    await open.query(`INSERT INTO items (name, price) VALUES ('open at the fence', 1)`);
    try {
      const run = await cli(['run', plan, '--yes', '--json'], e.env);
      expect(run.code, run.err).toBe(0);
      const r = run.json();
      // Before: "creating the decoding slot waited more than 2500ms for running transactions to finish" → sampled.
      expect(r.leakCheck.method).toBe('decoded');
      expect(r.leakCheck.fallback).toBeUndefined();
      expect(r.fence.terminated).toBeGreaterThanOrEqual(1);
    } finally {
      await open.end().catch(() => {});
    }
    expect(await leakSlots(e, 'slot_run')).toEqual([]);
    expect((await cli(['status', plan, '--json'], e.env)).json().leftovers).toEqual([]);
  });

  it('rollback drops it (it only keeps WAL); a later run makes it again before its hold', async () => {
    const dir = await tempStateDir(e.src.dir);
    const plan = await writePlan(e, { db: 'slot_rb', stateDir: dir, extra: 'verify: { before: none }' });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    expect(await leakSlots(e, 'slot_rb')).toHaveLength(1);
    const rb = await cli(['rollback', plan], e.env);
    expect(rb.code, rb.err).toBe(0);
    expect(await leakSlots(e, 'slot_rb')).toEqual([]);
    expect(await canWrite(e.src, 'slot_rb')).toBe(true);
    const run = await cli(['run', plan, '--yes', '--json'], e.env);
    expect(run.code, run.err).toBe(0);
    expect(run.json().leakCheck.method).toBe('decoded');
    expect(await leakSlots(e, 'slot_rb')).toEqual([]);
  });
});
