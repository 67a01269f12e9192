import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, pg, seedDatabase, startCutoverEnv, workloadThroughBouncer, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { killAtStep, parkAtStep } from '../helpers/kill-at-step.js';
import { pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

/**
 * The state dir is made unusable by replacing the plan's lock file with a directory: every journal append
 * (which checks the lock first) and every lock write then fails with EISDIR — for root too, on any file
 * system, without mount or chattr — as a read-only or full state dir would fail them.
 */
async function breakStateDir(e: PostgresEnv, plan: string, stateDir: string): Promise<void> {
  const planId = (await cli(['status', plan, '--json'], e.env)).json().planId as string;
  const lock = join(stateDir, `${planId}.lock`);
  await rm(lock, { force: true });
  await mkdir(lock);
}

/** A write through PgBouncer that must finish within 5 s: clients are not held any more. */
async function writesThroughBouncer(e: PostgresEnv, db: string): Promise<boolean> {
  const c = new pg.Client({ host: '127.0.0.1', port: e.bouncer!.port, user: 'postgres', password: e.password, database: db, query_timeout: 5000, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query(`INSERT INTO items (name, price) VALUES ('after restore', 1)`);
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

describe.skipIf(pg15Missing ?? pg17Missing ?? pgbouncerMissing)('a state dir that cannot be written does not block the restore', () => {
  let e: PostgresEnv;
  let stateRoot: string;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startCutoverEnv('postgres', { bouncerDatabases: ['ro_run', 'ro_rollback'] });
    await seedDatabase(e.src, 'ro_router', 300);
    stateRoot = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'ro_run', 300);
    await seedDatabase(e.src, 'ro_rollback', 300);
  });
  afterAll(async () => e?.stop());

  it('a run interrupted while fenced, its state dir broken: the source ends writable and clients released', async () => {
    const db = 'ro_run';
    const stateDir = join(stateRoot, db);
    const plan = await writePlan(e, { db, stateDir, router: true });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    const workload = workloadThroughBouncer(e, db, 2);
    let r;
    try {
      const parked = await parkAtStep(['run', plan, '--yes'], e.env, stateDir, 'verify');
      expect(await canWrite(e.src, db)).toBe(false);
      await breakStateDir(e, plan, stateDir);
      r = await parked.stop('SIGINT');
    } finally {
      var w = await workload.stop();
    }
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/interrupted by SIGINT/);
    expect(r.stderr).toMatch(/not journaled/);
    expect(await canWrite(e.src, db)).toBe(true);
    expect(await writesThroughBouncer(e, db)).toBe(true);
    expect(w.writeErrors).toBe(0);
  });

  it('rollback with a broken state dir unfences a source a killed run left fenced, and says it could not journal', async () => {
    const db = 'ro_rollback';
    const stateDir = join(stateRoot, db);
    const plan = await writePlan(e, { db, stateDir, router: true });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    await killAtStep(['run', plan, '--yes'], e.env, stateDir, 'verify');
    expect(await canWrite(e.src, db)).toBe(false);
    await breakStateDir(e, plan, stateDir);
    const r = await cli(['rollback', plan], e.env);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/state dir .* is not usable .*EISDIR/);
    expect(await canWrite(e.src, db)).toBe(true);
    expect(await writesThroughBouncer(e, db)).toBe(true);
  });

  it('a router that cannot point back is reported (exit 5) and journaled as route-back fail, and the source is unfenced anyway', async () => {
    const db = 'ro_router';
    const stateDir = join(stateRoot, db);
    const plan = await writePlan(e, { db, stateDir });
    // The exec router's command is only run to point (at the switch, or back at the source): here it always fails.
    await writeFile(plan, (await readFile(plan, 'utf8')).replace('router: { kind: none }', 'router: { kind: exec, command: [sh, -c, "echo cannot reach the registry >&2; exit 7"] }'));
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    const parked = await parkAtStep(['run', plan, '--yes'], e.env, stateDir, 'verify');
    const r = await parked.stop('SIGINT');
    expect(r.exitCode, r.stderr).toBe(5);
    expect(r.stderr).toMatch(/restoring the source failed too: route-back: router command sh \(point\) exited 7: cannot reach the registry/);
    expect(await canWrite(e.src, db)).toBe(true);
    const journal = (await readdir(stateDir)).find((f) => f.endsWith('.journal'))!;
    const records = (await readFile(join(stateDir, journal), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: string; status: string });
    const last = (step: string) => records.filter((x) => x.step === step).at(-1)?.status;
    expect(last('unfence')).toBe('ok');
    expect(last('route-back')).toBe('fail');
    expect((await cli(['status', plan, '--json'], e.env)).json().phase).toBe('in-flight');
  });
});
