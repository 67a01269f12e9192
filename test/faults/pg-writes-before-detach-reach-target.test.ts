import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { killAtStep } from '../helpers/kill-at-step.js';
import { client, pg15Missing, pg17Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing ?? pg17Missing)('writes that slip through the fence before the switch still reach the target', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startCutoverEnv('postgres');
    stateDir = join(await tempStateDir(e.src.dir), 'slip');
    await seedDatabase(e.src, 'slip', 100);
  });
  afterAll(async () => e?.stop());

  it('a superuser autocommit burst after the point of no return (past the leak probe) reaches the target', async () => {
    const plan = await writePlan(e, { db: 'slip', stateDir });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    // Parked after the point of no return, before the subscription is dropped: the leak probe is over.
    await killAtStep(['run', plan, '--yes'], e.env, stateDir, 'repoint');
    const rogue = await client(e.src, { database: 'slip', application: 'rogue-admin' });
    await rogue.query('SET default_transaction_read_only = off');
    for (let i = 1; i <= 50; i++) await rogue.query('INSERT INTO cutover_workload (client, seq) VALUES (-7, $1)', [i]);
    await rogue.end();
    const resumed = await cli(['resume', plan, '--yes'], e.env);
    expect(resumed.code, resumed.err).toBe(0);
    const t = await client(e.dst, { database: 'slip' });
    const { rows } = await t.query('SELECT count(*)::int AS n FROM cutover_workload WHERE client = -7');
    await t.end();
    expect(rows[0].n).toBe(50);
  });
});
