import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClientBinary } from '../../adapters/postgres/postgres-binaries.js';
import { missing } from '../helpers/availability.js';
import { ensureBuilt } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, keysOn, missingOn, seedDatabase, sleep, startCutoverEnv, workloadThroughBouncer, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { killAtStep } from '../helpers/kill-at-step.js';
import { client, exec, pg15Missing, pg17Missing } from '../helpers/pg.js';
import { planWindow } from '../helpers/journal-window.js';
import { pgbenchRelay } from '../helpers/pgbench.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing;
if (unavailable && process.env.CI === 'true') throw new Error(`pg-revert needs ${unavailable}`);
if (unavailable) console.log(`skipped: ${unavailable}`);

const DBS = ['shop', 'killfence', 'killrepoint', 'broken', 'noreverse', 'bench', 'final', 'openxact', 'strict'];
const pgbenchMissing = await missing('pgbench', () => findClientBinary('pgbench'));

/** Objects of the reverse path (and of the forward one) left on a server. */
async function replicationObjects(sb: PostgresEnv['src'], db: string): Promise<{ slots: string[]; subs: string[]; pubs: string[] }> {
  const c = await client(sb, { database: db });
  try {
    const slots = (await c.query<{ n: string }>(`SELECT slot_name AS n FROM pg_replication_slots WHERE database = $1`, [db])).rows.map((r) => r.n);
    const subs = (await c.query<{ n: string }>(`SELECT subname AS n FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)).rows.map((r) => r.n);
    const pubs = (await c.query<{ n: string }>(`SELECT pubname AS n FROM pg_publication`)).rows.map((r) => r.n);
    return { slots, subs, pubs };
  } finally {
    await c.end();
  }
}

/** The journals in `stateDir` that record a fence. */
async function journalsWithFence(stateDir: string): Promise<string[]> {
  const found: string[] = [];
  for (const f of (await readdir(stateDir)).filter((n) => n.endsWith('.journal'))) if (/"step":"fence"/.test(await readFile(join(stateDir, f), 'utf8'))) found.push(f);
  return found;
}

describe.skipIf(unavailable)('PostgreSQL 15 → 17 cutover, then revert over the reverse path (PgBouncer, writers throughout)', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startCutoverEnv('postgres', { bouncerDatabases: DBS });
    stateDir = await tempStateDir(e.src.dir);
    for (const db of DBS.filter((d) => d !== 'bench')) await seedDatabase(e.src, db, 2000);
  });
  afterAll(async () => e?.stop());

  /** Writes a row on the new primary; how many such rows the old source holds once it shows one (or after 20 s). */
  async function rowsOnOldSourceAfterWrite(db: string): Promise<number> {
    const c = await client(e.dst, { database: db });
    await c.query(`INSERT INTO items (name) VALUES ('after the switch')`);
    await c.end();
    const s = await client(e.src, { database: db });
    try {
      const count = async () => (await s.query(`SELECT 1 FROM items WHERE name = 'after the switch'`)).rows.length;
      const deadline = Date.now() + 20_000;
      while ((await count()) === 0 && Date.now() < deadline) await sleep(100);
      return await count();
    } finally {
      await s.end();
    }
  }

  /** sync + run of one database through PgBouncer, writers on; returns the plan file. */
  async function cutOver(db: string): Promise<string> {
    const plan = await writePlan(e, { db, stateDir, router: true });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    const run = await cli(['run', plan, '--yes', '--json'], e.env);
    expect(run.code, run.err).toBe(0);
    expect(run.json().reverse).toEqual({ state: 'following' });
    const repoint = run.json().steps.find((st: { step: string }) => st.step === 'repoint');
    console.log(`cutover ${db} 15→17 with the reverse path: write-blocked window ${run.json().writeBlockedMs} ms, repoint step (detach + reverse slot + open + switch) ${repoint.endMs - repoint.startMs} ms`);
    return plan;
  }

  it('strict fence: the app role the forward run locked on the old source does not block the revert, and logs in there again after it', async () => {
    await exec(e.src, 'postgres', `CREATE ROLE app_strict LOGIN PASSWORD 'pw-strict'`);
    const plan = await writePlan(e, { db: 'strict', stateDir, router: true, extra: 'readOnly: { mode: strict, roles: [app_strict] }' });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    const run = await cli(['run', plan, '--yes'], e.env);
    expect(run.code, run.err).toBe(0);
    const canLogin = async (sb: PostgresEnv['src']) => {
      const c = await client(sb);
      try {
        return (await c.query<{ l: boolean }>(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'app_strict'`)).rows[0]!.l;
      } finally {
        await c.end();
      }
    };
    expect(await canLogin(e.src)).toBe(false);
    // The revert's preflight sees app_strict NOLOGIN on its target (the old source): this plan's own fence.
    const revert = await cli(['revert', plan, '--yes'], e.env);
    try {
      expect(revert.code, revert.err).toBe(0);
      expect(await canLogin(e.src)).toBe(true);
    } finally {
      // The revert's own strict fence locked the role on the new primary, which stays fenced: the other plans of
      // these servers do not fence it, and their check would rightly name it NOLOGIN on their target.
      await exec(e.dst, 'postgres', 'ALTER ROLE app_strict LOGIN');
    }
  });

  it('forward, writes on the new primary, revert: every acknowledged write of both phases is on the old source, which is the primary again', async () => {
    const workload = workloadThroughBouncer(e, 'shop');
    let plan: string;
    let revert;
    try {
      await sleep(300);
      plan = await cutOver('shop');
      // The old source is read-only to applications and still receives the new primary's writes.
      await sleep(1000);
      expect(await canWrite(e.src, 'shop')).toBe(false);
      const status = (await cli(['status', plan, '--json'], e.env)).json();
      expect(status.reverse).toMatchObject({ state: 'following' });
      expect(typeof status.reverse.lagBytes).toBe('number');
      expect(status.next).toMatch(/cutover revert/);
      await sleep(500);
      revert = await cli(['revert', plan, '--yes', '--json'], e.env);
      await sleep(700);
    } finally {
      var w = await workload.stop();
    }
    expect(revert.code, revert.err).toBe(0);
    const r = revert.json();
    console.log(`revert 17→15 through PgBouncer: write-blocked window ${r.writeBlockedMs} ms, ${w.acknowledged.length} acknowledged writes, max gap between acknowledged writes ${w.maxWriteGapMs} ms`);
    expect(r.catchUp.method).toBe('sentinel');
    expect(w.writeErrors, JSON.stringify(w.ops.filter((o) => o.outcome !== 'ok').slice(0, 3))).toBe(0);
    // Both phases: before the cutover (source), between cutover and revert (new primary), after the revert.
    expect(await missingOn(e.src, 'shop', w)).toEqual([]);
    const onTarget = await keysOn(e.dst, 'shop');
    expect(w.acknowledged.filter((k) => !onTarget.has(k)).length).toBeGreaterThan(0);
    // Sequences came back: the writers' bigserial inserts on the old source met no key conflict.
    expect(await canWrite(e.src, 'shop')).toBe(true);
    expect(await canWrite(e.dst, 'shop')).toBe(false);
    // The revert's cleanup dropped the reverse path: nothing left on either side.
    expect(await replicationObjects(e.src, 'shop')).toEqual({ slots: [], subs: [], pubs: [] });
    expect(await replicationObjects(e.dst, 'shop')).toEqual({ slots: [], subs: [], pubs: [] });
    const after = (await cli(['status', plan!, '--json'], e.env)).json();
    expect(after.revert.phase).toBe('done');
    expect(after.next).toMatch(/reverted/);
    const again = await cli(['revert', plan!, '--yes'], e.env);
    expect(again.code).toBe(5);
    expect(again.err).toMatch(/already reverted/);
  });

  it('revert SIGKILLed at its fence: --rollback puts the new primary back; a later revert loses nothing', async () => {
    const workload = workloadThroughBouncer(e, 'killfence', 2);
    let plan: string;
    let killed, rolledBack, revert;
    try {
      plan = await cutOver('killfence');
      await sleep(500);
      killed = await killAtStep(['revert', plan, '--yes'], e.env, stateDir, 'fence');
      rolledBack = await cli(['revert', plan, '--rollback', '--json'], e.env);
      await sleep(500);
      expect(await canWrite(e.dst, 'killfence')).toBe(true);
      const refused = await cli(['revert', plan, '--yes'], e.env);
      // The journal of the rolled-back revert is clean: a plain revert runs.
      revert = refused;
      await sleep(500);
    } finally {
      var w = await workload.stop();
    }
    expect(killed.exitCode).not.toBe(0);
    expect(rolledBack.code, rolledBack.err).toBe(0);
    expect(revert.code, revert.err).toBe(0);
    expect(w.writeErrors, JSON.stringify(w.ops.filter((o) => o.outcome !== 'ok').slice(0, 3))).toBe(0);
    expect(await missingOn(e.src, 'killfence', w)).toEqual([]);
    expect(await canWrite(e.src, 'killfence')).toBe(true);
  });

  it('revert SIGKILLed after its point of no return (repoint): plain revert refuses, --resume finishes, nothing lost', async () => {
    const workload = workloadThroughBouncer(e, 'killrepoint', 2);
    let plan: string;
    let killed, plain, resumed;
    try {
      plan = await cutOver('killrepoint');
      await sleep(500);
      killed = await killAtStep(['revert', plan, '--yes'], e.env, stateDir, 'repoint');
      plain = await cli(['revert', plan, '--yes'], e.env);
      resumed = await cli(['revert', plan, '--resume', '--yes', '--json'], e.env);
      await sleep(500);
    } finally {
      var w = await workload.stop();
    }
    expect(killed.exitCode).not.toBe(0);
    expect(plain.code).toBe(5);
    expect(plain.err).toMatch(/--resume/);
    expect(resumed.code, resumed.err).toBe(0);
    expect(w.writeErrors, JSON.stringify(w.ops.filter((o) => o.outcome !== 'ok').slice(0, 3))).toBe(0);
    expect(await missingOn(e.src, 'killrepoint', w)).toEqual([]);
    expect(await canWrite(e.src, 'killrepoint')).toBe(true);
    expect(await canWrite(e.dst, 'killrepoint')).toBe(false);
  });

  it('revert refused (exit 3, one line with what to do) once the reverse subscription is gone; finalize drops the rest', async () => {
    const plan = await cutOver('broken');
    // Writes on the new primary reach the old source while the path is intact.
    expect(await rowsOnOldSourceAfterWrite('broken')).toBe(1);
    const s = await client(e.src, { database: 'broken' });
    const { subs } = await replicationObjects(e.src, 'broken');
    expect(subs).toHaveLength(1);
    // The old source is fenced for applications: the test's own session overrides that, as a DBA would.
    await s.query('SET default_transaction_read_only = off');
    await s.query(`ALTER SUBSCRIPTION "${subs[0]}" DISABLE`);
    await s.query(`ALTER SUBSCRIPTION "${subs[0]}" SET (slot_name = NONE)`);
    await s.query(`DROP SUBSCRIPTION "${subs[0]}"`);
    await s.end();

    const status = (await cli(['status', plan, '--json'], e.env)).json();
    expect(status.reverse).toMatchObject({ state: 'broken' });
    const refused = await cli(['revert', plan, '--yes'], e.env);
    expect(refused.code).toBe(3);
    expect(refused.err).toMatch(/refused: the old source no longer follows the new primary .*subscription .* is gone/);
    expect(refused.err).not.toMatch(/\n\s+at /);
    // Nothing was changed: the new primary takes writes, the old source does not.
    expect(await canWrite(e.dst, 'broken')).toBe(true);
    expect(await canWrite(e.src, 'broken')).toBe(false);

    expect((await cli(['finalize', plan], e.env)).code).toBe(2);
    const fin = await cli(['finalize', plan, '--yes', '--json'], e.env);
    expect(fin.code, fin.err).toBe(0);
    expect(fin.json().dropped.join(' ')).toMatch(/replication slot/);
    expect(await replicationObjects(e.dst, 'broken')).toEqual({ slots: [], subs: [], pubs: [] });
    expect(await replicationObjects(e.src, 'broken')).toEqual({ slots: [], subs: [], pubs: [] });
    const after = (await cli(['status', plan, '--json'], e.env)).json();
    expect(after.reverse).toMatchObject({ state: 'absent' });
    const late = await cli(['revert', plan, '--yes'], e.env);
    expect(late.code).toBe(3);
    expect(late.err).toMatch(/finalize/);
  });

  it('a transaction holding an xid on the target across the window: the reverse slot made before the hold is copied at the switch, the path follows and carries only later writes', async () => {
    const plan = await writePlan(e, { db: 'openxact', stateDir, router: true });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    const workload = workloadThroughBouncer(e, 'openxact', 2);
    const holder = await client(e.dst, { database: 'postgres' });
    let run;
    try {
      // The fence waits 2 s after the hold; the early slot exists by then, and the transaction opened now is one
      // a slot made inside the window would wait for (3 s bound: the reverse path would be unavailable).
      const fencedBefore = await journalsWithFence(stateDir);
      const running = cli(['run', plan, '--yes', '--json'], e.env, { testPause: { step: 'fence', delayMs: 2000 } });
      // Inside the window: this run's journal (the one new journal with a fence) has the fence's begin.
      const deadline = Date.now() + 30_000;
      let inWindow = false;
      while (!inWindow && Date.now() < deadline) {
        inWindow = (await journalsWithFence(stateDir)).some((f) => !fencedBefore.includes(f));
        if (!inWindow) await sleep(10);
      }
      expect(inWindow).toBe(true);
      await holder.query('BEGIN');
      await holder.query('SELECT pg_current_xact_id()');
      run = await running;
    } finally {
      await holder.query('COMMIT').catch(() => {});
      await holder.end();
      var w = await workload.stop();
    }
    expect(run.code, run.err).toBe(0);
    expect(run.json().reverse).toEqual({ state: 'following' });
    expect(w.writeErrors).toBe(0);
    const { slots } = await replicationObjects(e.dst, 'openxact');
    expect(slots.filter((n) => n.endsWith('_early'))).toEqual([]);
    // A write on the new primary reaches the old source, and nothing the forward stream applied came back twice
    // (a duplicate key would disable the reverse subscription: status would say broken).
    expect(await rowsOnOldSourceAfterWrite('openxact')).toBe(1);
    expect(await missingOn(e.src, 'openxact', w)).toEqual([]);
    await sleep(500);
    expect((await cli(['status', plan, '--json'], e.env)).json().reverse).toMatchObject({ state: 'following' });
    // Roles are per server: the finalize test below expects none of the reverse path's left.
    expect((await cli(['finalize', plan, '--yes'], e.env)).code).toBe(0);
  });

  it('reverse: false: no reverse objects anywhere, revert refused (exit 2) saying why', async () => {
    const plan = await writePlan(e, { db: 'noreverse', stateDir, router: true, extra: 'reverse: false' });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    const run = await cli(['run', plan, '--yes', '--json'], e.env);
    expect(run.code, run.err).toBe(0);
    expect(run.json().reverse).toBeUndefined();
    const repoint = run.json().steps.find((st: { step: string }) => st.step === 'repoint');
    console.log(`cutover noreverse 15→17 without the reverse path: write-blocked window ${run.json().writeBlockedMs} ms, repoint step ${repoint.endMs - repoint.startMs} ms`);
    expect(await replicationObjects(e.dst, 'noreverse')).toEqual({ slots: [], subs: [], pubs: [] });
    expect(await replicationObjects(e.src, 'noreverse')).toEqual({ slots: [], subs: [], pubs: [] });
    const refused = await cli(['revert', plan, '--yes'], e.env);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/reverse: false/);
  });

  it.skipIf(pgbenchMissing)(
    'pgbench -c 4 through PgBouncer across the cutover and the revert (keyless history, tables.keyless: full): 0 failed transactions, every history row and balance on the old source',
    async () => {
      const pgbench = await findClientBinary('pgbench');
      await exec(e.src, 'postgres', 'CREATE DATABASE bench');
      await execa(pgbench, ['-i', '-s', '2', '-q', 'bench'], { env: { PGHOST: '127.0.0.1', PGPORT: String(e.src.port), PGUSER: 'postgres', PGPASSWORD: e.password } });
      const plan = await writePlan(e, { db: 'bench', stateDir, router: true, extra: 'tables: { keyless: { public.pgbench_history: full } }' });
      const bench = pgbenchRelay(pgbench, { database: 'bench', port: e.bouncer!.port, password: e.password, clients: 4 });
      await sleep(1000);
      const sync = await cli(['sync', plan], e.env);
      const run = await cli(['run', plan, '--yes', '--json'], e.env);
      await sleep(2000);
      const revert = await cli(['revert', plan, '--yes', '--json'], e.env);
      const result = await bench.stop();
      expect(sync.code, sync.err).toBe(0);
      expect(run.code, run.err).toBe(0);
      expect(run.json().reverse).toEqual({ state: 'following' });
      expect(revert.code, revert.err).toBe(0);
      expect(result.spanned(await planWindow(plan))).toBe(true);
      expect(result.spanned(await planWindow(plan, 'revert'))).toBe(true);
      expect(result.failures).toEqual([]);
      const processed = result.processed;
      console.log(`pgbench across cutover and revert: ${processed} transactions, windows ${run.json().writeBlockedMs} ms forward, ${revert.json().writeBlockedMs} ms back`);
      // One history row per transaction, all on the old source (pgbench's TPC-B: balances equal the sum of deltas).
      const c = await client(e.src, { database: 'bench' });
      const r = await c.query<{ n: string; a: string; h: string }>(
        `SELECT (SELECT count(*) FROM pgbench_history)::text AS n, (SELECT sum(abalance) FROM pgbench_accounts)::text AS a, (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::text AS h`,
      );
      await c.end();
      expect(Number(r.rows[0]!.n)).toBe(processed);
      expect(r.rows[0]!.a).toBe(r.rows[0]!.h);
    },
  );

  it('finalize of a following reverse path drops it on both sides (role, slot, publication, subscription, sentinel); revert is refused after it', async () => {
    const plan = await cutOver('final');
    const fin = await cli(['finalize', plan, '--yes', '--json'], e.env);
    expect(fin.code, fin.err).toBe(0);
    expect(fin.json().dropped.join(', ')).toMatch(/subscription .*old source.*replication slot.*publication.*replication role/);
    expect(await replicationObjects(e.src, 'final')).toEqual({ slots: [], subs: [], pubs: [] });
    expect(await replicationObjects(e.dst, 'final')).toEqual({ slots: [], subs: [], pubs: [] });
    for (const sb of [e.src, e.dst]) {
      const c = await client(sb, { database: 'final' });
      const left = await c.query(`SELECT 1 FROM pg_namespace WHERE nspname = '_cutover' UNION ALL SELECT 1 FROM pg_roles WHERE rolname LIKE 'cutover_repl%'`);
      await c.end();
      expect(left.rows).toEqual([]);
    }
    const again = await cli(['finalize', plan, '--yes', '--json'], e.env);
    expect(again.json().dropped).toEqual([]);
    const refused = await cli(['revert', plan, '--yes'], e.env);
    expect(refused.code).toBe(3);
  });
});
