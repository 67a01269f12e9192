import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { faultResult, recordFault } from '../helpers/faults.js';
import { canWrite, missingOn, seedDatabase, sleep, startCutoverEnv, workloadThroughBouncer, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { killAtStep } from '../helpers/kill-at-step.js';
import { pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

describe.skipIf(pg15Missing ?? pg17Missing ?? pgbouncerMissing)('Ctrl-C / SIGTERM during a PostgreSQL cutover', () => {
  let e: PostgresEnv;
  let stateRoot: string;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startCutoverEnv('postgres', { bouncerDatabases: ['int_a', 'int_b'] });
    stateRoot = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'int_a', 500);
    await seedDatabase(e.src, 'int_b', 500);
  });
  afterAll(async () => e?.stop());

  it.each([
    ['SIGINT', 'int_a', 'verify'],
    ['SIGTERM', 'int_b', 'catch-up'],
  ] as const)('%s while fenced: source unfenced, PgBouncer resumed on the source, exit 1, nothing lost', async (signal, db, step) => {
    const stateDir = join(stateRoot, db);
    const plan = await writePlan(e, { db, stateDir, router: true });
    const workload = workloadThroughBouncer(e, db, 2);
    let r;
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      r = await killAtStep(['run', plan, '--yes'], e.env, stateDir, step, signal);
      await sleep(300);
    } finally {
      var w = await workload.stop();
    }
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`interrupted by ${signal}`));
    expect(await canWrite(e.src, db)).toBe(true);
    expect(w.writeErrors).toBe(0);
    const lost = await missingOn(e.src, db, w);
    expect(lost).toEqual([]);
    expect((await cli(['status', plan, '--json'], e.env)).json()).toMatchObject({ phase: 'synced', source: { readOnly: false } });
    await recordFault(faultResult('1. SIGINT / SIGTERM while fenced (PG)', w, lost, r.exitCode ?? -1, 'source unfenced, PgBouncer resumed on the source'));
  });
});
