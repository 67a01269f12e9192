import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, missingOn, seedDatabase, sleep, startCutoverEnv, workloadThroughBouncer, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, pg15Missing, pg17Missing } from '../helpers/pg.js';
import { ensureBuilt } from '../helpers/built-cli.js';
import { killAtStep } from '../helpers/kill-at-step.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing;

describe.skipIf(unavailable)('PostgreSQL 15 → 17 cutover with method: dump, through PgBouncer', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { bouncerDatabases: ['shop'] });
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'shop', 20_000);
  });
  afterAll(async () => e?.stop());

  it('copies everything while fenced: every acknowledged write on the target, no client error, source read-only', async () => {
    const plan = await writePlan(e, { db: 'shop', stateDir, router: true, method: 'dump', maxWriteBlocked: '20s' });
    const workload = workloadThroughBouncer(e, 'shop');
    let sync, run;
    try {
      await sleep(300);
      sync = await cli(['sync', plan], e.env);
      run = await cli(['run', plan, '--yes', '--json'], e.env);
      await sleep(500);
    } finally {
      var w = await workload.stop();
    }
    expect(sync.code, sync.err).toBe(0);
    expect(run.code, run.err).toBe(0);
    const report = run.json();
    console.log(`cutover 15→17 method dump: write-blocked window ${report.writeBlockedMs} ms, ${w.acknowledged.length} acknowledged writes`);
    expect(report.catchUp.method).toBe('copy');
    expect(w.writeErrors, JSON.stringify(w.ops.filter((o) => o.outcome !== 'ok').slice(0, 3))).toBe(0);
    expect(await missingOn(e.dst, 'shop', w)).toEqual([]);
    expect(await canWrite(e.src, 'shop')).toBe(false);
    expect(await canWrite(e.dst, 'shop')).toBe(true);
    const c = await client(e.dst, { database: 'shop' });
    const items = await c.query('SELECT count(*)::int AS n FROM items');
    // The sequence continues past the source's last value (plus the gap): no id is reused.
    const next = await c.query(`INSERT INTO items (name) VALUES ('after') RETURNING id`);
    // Indexes and constraints are built after the data load (post-data): they must all be there.
    const keys = await c.query(`SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`);
    await c.end();
    expect(items.rows[0].n).toBe(20_000);
    expect(keys.rows.map((r) => r.indexname)).toEqual(['cutover_workload_client_seq_key', 'cutover_workload_pkey', 'items_pkey']);
    expect(Number(next.rows[0].id)).toBeGreaterThan(20_000 + 999);
  });

  it('killed at verify after the first load, resume reloads into the indexed tables and completes', async () => {
    await seedDatabase(e.src, 'again', 2000);
    const dir = `${stateDir}/again`;
    const plan = await writePlan(e, { db: 'again', stateDir: dir, method: 'dump', maxWriteBlocked: '20s' });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    await ensureBuilt();
    await killAtStep(['run', plan, '--yes'], e.env, dir, 'verify');
    const resumed = await cli(['resume', plan, '--yes', '--json'], e.env);
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.json().verify.mismatches).toEqual([]);
    const c = await client(e.dst, { database: 'again' });
    const n = await c.query('SELECT count(*)::int AS n FROM items');
    await c.end();
    expect(n.rows[0].n).toBe(2000);
  });
});
