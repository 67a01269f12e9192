import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, keysOn, missingOn, seedDatabase, sleep, startCutoverEnv, workloadThroughBouncer, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { pg15Missing, pg17Missing, client } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing;

describe.skipIf(unavailable)('PostgreSQL 15 → 17 cutover through PgBouncer under 4 writers', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { bouncerDatabases: ['shop', 'slow'] });
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'shop', 20_000);
    await seedDatabase(e.src, 'slow', 1000);
  });
  afterAll(async () => e?.stop());

  it('moves every acknowledged write, clients see no error, later writes land on the target, the source stays read-only', async () => {
    // Without the reverse path (pg-revert.test.ts has it) writes after the switch stay on the target alone.
    const plan = await writePlan(e, { db: 'shop', stateDir, router: true, extra: 'reverse: false' });
    const workload = workloadThroughBouncer(e, 'shop');
    let sync, run;
    try {
      await sleep(300);
      sync = await cli(['sync', plan, '--json'], e.env);
      await sleep(300);
      run = await cli(['run', plan, '--yes', '--json'], e.env);
      await sleep(500);
    } finally {
      var w = await workload.stop();
    }
    expect(sync.code, sync.err).toBe(0);
    expect(run.code, run.err).toBe(0);
    const report = run.json();
    console.log(`cutover 15→17 through PgBouncer: write-blocked window ${report.writeBlockedMs} ms, max gap between acknowledged writes ${w.maxWriteGapMs} ms, ${w.acknowledged.length} acknowledged writes`);

    expect(w.writeErrors, JSON.stringify(w.ops.filter((o) => o.outcome !== 'ok').slice(0, 3))).toBe(0);
    expect(w.readErrors).toBe(0);
    expect(await missingOn(e.dst, 'shop', w)).toEqual([]);
    const onSource = await keysOn(e.src, 'shop');
    expect(w.acknowledged.filter((k) => !onSource.has(k)).length).toBeGreaterThan(0);
    expect(await canWrite(e.src, 'shop')).toBe(false);
    expect(await canWrite(e.dst, 'shop')).toBe(true);
    expect(report.catchUp.method).toBe('sentinel');
    expect(report.verify.mismatches).toEqual([]);

    const c = await client(e.src, { database: 'shop' });
    const slots = await c.query('SELECT slot_name FROM pg_replication_slots');
    await c.end();
    expect(slots.rows).toEqual([]);
    const status = await cli(['status', plan, '--json'], e.env);
    expect(status.json()).toMatchObject({ phase: 'done', leftovers: [] });
    const again = await cli(['run', plan, '--yes'], e.env);
    expect(again.code).toBe(5);
    expect(again.err).toMatch(/already cut over/);
  });

  it('budget exceeded (subscription disabled): exit 4, source writable, router back on the source, nothing lost', async () => {
    // The verify before the hold would stop at the stalled replica with nothing fenced (exit 1): this test is about the budget.
    const plan = await writePlan(e, { db: 'slow', stateDir, router: true, maxWriteBlocked: '1500ms', maxLagBeforeFence: '1GB', extra: 'verify: { before: none }' });
    const workload = workloadThroughBouncer(e, 'slow', 2);
    let run;
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      const t = await client(e.dst, { database: 'slow' });
      const sub = await t.query<{ subname: string }>('SELECT subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())');
      // The target is held read-only for applications: the test's own session overrides that.
      await t.query('SET default_transaction_read_only = off');
      await t.query(`ALTER SUBSCRIPTION "${sub.rows[0]!.subname}" DISABLE`);
      await t.end();
      run = await cli(['run', plan, '--yes'], e.env);
      await sleep(300);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code, run.err).toBe(4);
    expect(run.err).toMatch(/write-downtime budget/);
    expect(await canWrite(e.src, 'slow')).toBe(true);
    expect(w.writeErrors, JSON.stringify(w.ops.filter((o) => o.outcome !== 'ok').slice(0, 3))).toBe(0);
    expect(await missingOn(e.src, 'slow', w)).toEqual([]);
    const status = await cli(['status', plan, '--json'], e.env);
    expect(status.json().phase).toBe('synced');
    expect(status.json().source.readOnly).toBe(false);
    expect(status.json().leftovers.map((l: { kind: string }) => l.kind)).toContain('replication slot');
  });
});
