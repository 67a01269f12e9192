import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { missingOn, seedDatabase, sleep, startCutoverEnv, workloadThroughBouncer, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, exec, pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const VERIFY_AFTER = 'verify: { before: none, after: chunks, chunkRows: 700 }';

/**
 * `verify.after: chunks`: snapshots on both sides at the point of no return, compared after the release. The
 * workload goes on writing through PgBouncer, to the target after the switch: the compare sees the target as of
 * the switch, so those writes cause no difference, and it holds nobody up.
 */
describe.skipIf(pg15Missing ?? pg17Missing ?? pgbouncerMissing)('PostgreSQL compare after the switch (verify.after: chunks)', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { bouncerDatabases: ['after_ok', 'after_bad'] });
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'after_ok', 3000);
    await seedDatabase(e.src, 'after_bad', 3000);
  });
  afterAll(async () => e?.stop());

  it('compares every table at the switch while clients write to the target, reports it in --json, exit 0', async () => {
    const db = 'after_ok';
    const plan = await writePlan(e, { db, stateDir, router: true, extra: VERIFY_AFTER });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    const workload = workloadThroughBouncer(e, db, 2);
    let run;
    try {
      await sleep(500);
      run = await cli(['run', plan, '--yes', '--json'], e.env);
      await sleep(500);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code, run.err).toBe(0);
    const r = run.json();
    expect(r.verifyAfter).toMatchObject({ outcome: 'verified', mismatchCount: 0, tables: 2 });
    // Both tables, in chunks of 700 rows: items alone is 3000 rows.
    expect(r.verifyAfter.chunks).toBeGreaterThanOrEqual(6);
    expect(r.verifyAfter.rows).toBeGreaterThanOrEqual(3000);
    expect(r.steps.map((s: { step: string }) => s.step)).toContain('verify-after');
    // After the lift: the window does not include it.
    const step = (n: string) => r.steps.find((s: { step: string }) => s.step === n);
    expect(step('verify-after').startMs).toBeGreaterThanOrEqual(step('lift').endMs);
    expect(w.writeErrors).toBe(0);
    expect(await missingOn(e.dst, db, w)).toEqual([]);
  });

  it('a row that differs on the target as of the switch: the cutover is done, exit 5 names the table and key range', async () => {
    const db = 'after_bad';
    const plan = await writePlan(e, { db, stateDir, router: true, extra: VERIFY_AFTER });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    // A change made on the target behind replication's back (the target is read-only to sessions until the switch).
    const c = await client(e.dst, { database: db });
    try {
      await c.query('SET default_transaction_read_only = off');
      await c.query(`UPDATE items SET name = 'planted' WHERE id = 1234`);
    } finally {
      await c.end();
    }
    const run = await cli(['run', plan, '--yes', '--json'], e.env);
    expect(run.code, run.err).toBe(5);
    const r = run.json().result;
    expect(r.outcome).toBe('done');
    expect(r.verifyAfter).toMatchObject({ outcome: 'verified', mismatchCount: 1, mismatches: [expect.objectContaining({ table: 'public.items', match: false })] });
    expect(run.err).toMatch(/compare after the switch found 1 chunk\(s\).*public\.items keys/);
    // The switch happened all the same: the target takes writes.
    await exec(e.dst, db, `INSERT INTO items (name, price) VALUES ('after', 1)`);
  });
});
