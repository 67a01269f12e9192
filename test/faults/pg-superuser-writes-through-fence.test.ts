import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKLOAD_TABLE } from '../../src/sandbox/workload.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, keysOn, missingOn, seedDatabase, sleep, startCutoverEnv, workloadThroughBouncer, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { faultResult, recordFault } from '../helpers/faults.js';
import { pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const ROGUE = 'rogue-admin';
const ROGUE_CLIENT = 900;

/**
 * A superuser connected straight to the source that turns the read-only default off in every session and keeps
 * writing in short transactions, reconnecting when its session is ended: a batch job or an admin console.
 */
function rogueWriter(e: PostgresEnv, db: string): { stop(): Promise<string[]> } {
  let stopping = false;
  const acked: string[] = [];
  const loop = (async () => {
    let seq = 0;
    while (!stopping) {
      const c = new pg.Client({ host: e.src.host, port: e.src.port, user: 'postgres', password: e.password, database: db, application_name: ROGUE });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query('SET default_transaction_read_only = off');
        while (!stopping) {
          const s = ++seq;
          // A transaction that holds its xid for a moment, like a batch job's: the leak watch samples every 20 ms.
          await c.query('BEGIN READ WRITE');
          await c.query(`INSERT INTO ${WORKLOAD_TABLE} (client, seq) VALUES ($1, $2)`, [ROGUE_CLIENT, s]);
          await c.query('SELECT pg_sleep(0.05)');
          await c.query('COMMIT');
          acked.push(`${ROGUE_CLIENT}:${s}`);
          await sleep(10);
        }
      } catch {
        await sleep(10);
      } finally {
        await c.end().catch(() => {});
      }
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      return acked;
    },
  };
}

describe.skipIf(pg15Missing ?? pg17Missing ?? pgbouncerMissing)('a superuser session writes through the fence during a PostgreSQL cutover run', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { bouncerDatabases: ['leaky'] });
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'leaky', 1000);
  });
  afterAll(async () => e?.stop());

  it('the leak watch fails the run before the point of no return, names the session, restores the source; nothing acknowledged is lost', async () => {
    const db = 'leaky';
    const plan = await writePlan(e, { db, stateDir, router: true });
    const workload = workloadThroughBouncer(e, db, 2);
    let rogue: ReturnType<typeof rogueWriter> | undefined;
    let run,
      rogueAcked: string[] = [];
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      rogue = rogueWriter(e, db);
      await sleep(300);
      // The run waits at its sequences step (a test hook), as a catch-up slowed by load would: the stretch from the
      // fence to the point of no return is otherwise shorter than the rogue's reconnect and first commit.
      run = await cli(['run', plan, '--yes'], e.env, { testPause: { step: 'sequences', delayMs: 400 } });
      await sleep(300);
    } finally {
      rogueAcked = (await rogue?.stop()) ?? [];
      var w = await workload.stop();
    }
    expect(run.code).not.toBe(0);
    expect(run.err).toMatch(/leak check failed/);
    expect(run.err).toContain(ROGUE);
    const status = (await cli(['status', plan, '--json'], e.env)).json();
    expect(status).toMatchObject({ phase: 'synced', source: { readOnly: false } });
    expect(status.journal.some((r: { step: string }) => r.step === 'point-of-no-return')).toBe(false);
    expect(await canWrite(e.src, db)).toBe(true);
    const missing = await missingOn(e.src, db, w);
    expect(missing).toEqual([]);
    const onSource = await keysOn(e.src, db);
    expect(rogueAcked.filter((k) => !onSource.has(k))).toEqual([]);
    expect(rogueAcked.length).toBeGreaterThan(0);
    expect(w.writeErrors).toBe(0);
    await recordFault(faultResult('6. superuser writes through the fence during run (PG)', w, missing, run.code, `leak named ${ROGUE}; source restored, ${rogueAcked.length} rogue writes kept on source`));
  });
});
