import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing;

describe.skipIf(unavailable)('cutover rehearse --plan: a rehearsal on the servers of a plan', () => {
  let e: PostgresEnv;
  let plan: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { bouncerDatabases: ['staging'] });
    await seedDatabase(e.src, 'staging', 5000);
    plan = await writePlan(e, { db: 'staging', stateDir: await tempStateDir(e.src.dir), router: true });
  }, 60_000);
  afterAll(async () => e?.stop());

  it('cuts the plan over under the workload, verifies every write, and drops its workload table on the target', async () => {
    const r = await cli(['rehearse', '--plan', plan, '--yes', '--json'], e.env);
    expect(r.code, r.err).toBe(0);
    const doc = r.json();
    expect(doc).toMatchObject({ ok: true, mode: 'plan', clientErrors: 0, missingWrites: [], copy: { sampleRows: null } });
    expect(doc.verifiedWrites).toBe(doc.acknowledgedWrites);
    expect(doc.acknowledgedWrites).toBeGreaterThan(0);
    expect(r.err).toMatch(/start the sandbox servers.*using the servers of the plan/);
    expect(r.err).not.toContain(e.password);
    expect(await canWrite(e.dst, 'staging')).toBe(true);
    expect(await canWrite(e.src, 'staging')).toBe(false);
    const t = await client(e.dst, { database: 'staging' });
    const left = await t.query(`SELECT to_regclass('cutover_rehearsal_workload') AS t`);
    await t.end();
    expect(left.rows[0].t).toBeNull();
    expect((await cli(['status', plan, '--json'], e.env)).json().phase).toBe('done');
  }, 60_000);
});
