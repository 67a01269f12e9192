import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPg } from '../../adapters/postgres/postgres-connection.js';
import { OperationError, run, status, sync, type PlanStatus } from '../../src/index.js';
import { parseDbUrl } from '../../src/util/db-url.js';
import { tempStateDir } from '../helpers/cli.js';
import { canWrite, seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { exec, pg15Missing, pg17Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing ?? pg17Missing)('the plan lock on the source (PostgreSQL)', () => {
  let e: PostgresEnv;
  let stateRoot: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres');
    stateRoot = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'lost', 200);
  });
  afterAll(async () => e?.stop());

  it("the tool's sessions are not closed by the server's idle timeouts", async () => {
    await exec(e.src, 'postgres', `ALTER DATABASE lost SET idle_session_timeout = '500ms'`);
    const c = await connectPg(parseDbUrl(`postgres://postgres@127.0.0.1:${e.src.port}/lost`, { password: e.src.password }));
    try {
      await new Promise((r) => setTimeout(r, 1200));
      const r = await c.query<{ idle: string; tx: string; st: string }>(
        `SELECT current_setting('idle_session_timeout') AS idle, current_setting('idle_in_transaction_session_timeout') AS tx, current_setting('statement_timeout') AS st`,
      );
      expect(r.rows[0]).toEqual({ idle: '0', tx: '0', st: '0' });
    } finally {
      await c.end();
      await exec(e.src, 'postgres', `ALTER DATABASE lost RESET idle_session_timeout`);
    }
  });

  it('a lock session lost before the point of no return: the source is restored and the run fails naming the lost lock', async () => {
    const plan = await writePlan(e, { db: 'lost', stateDir: join(stateRoot, 'lost') });
    const env = { ...process.env, ...e.env };
    await sync(plan, { env });
    const failed = await run(plan, {
      env,
      // The runner's source session (which holds the advisory lock) dies, as on a network drop.
      beforePointOfNoReturn: () => exec(e.src, 'postgres', `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'cutover pid %' AND datname = 'lost'`),
    }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(OperationError);
    expect((failed as OperationError).exitCode).toBe(1);
    expect((failed as Error).message).toMatch(/^the plan's lock on the source was lost \(/);
    expect(await canWrite(e.src, 'lost')).toBe(true);
    expect(((await status(plan, { env })) as PlanStatus).phase).not.toMatch(/past-pnr|done/);
  });
});
