import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { PostgresStateStore } from '../../adapters/postgres/postgres-state-store.js';
import { PostgresSandbox } from '../../adapters/postgres/postgres-sandbox.js';
import { planPhase } from '../../src/engine/phase.js';
import { parseDbUrl } from '../../src/util/db-url.js';
import { pg17Missing } from '../helpers/pg.js';

describe.skipIf(pg17Missing)('the PostgreSQL control database as state store', () => {
  let ctl: PostgresSandbox;
  const open = () => PostgresStateStore.open(parseDbUrl(`postgres://postgres@127.0.0.1:${ctl.port}/postgres`, { password: ctl.password }));

  beforeAll(async () => {
    ctl = await PostgresSandbox.start({ major: 17, password: 'ctl-pw' });
  }, 120_000);
  afterAll(async () => ctl?.stop());

  it('creates its schema once (two stores at once), journals durably and replays the same history', async () => {
    const [a, b] = await Promise.all([open(), open()]);
    try {
      const lock = await a.acquire('', 'plan-1');
      const j = await a.openJournal(lock, { secrets: ['hunter2'] });
      await j.begin('preflight');
      await j.ok('preflight', { note: 'password hunter2' });
      await j.begin('hold');
      await j.ok('hold', undefined, { durable: false });
      // Queued: not in the control database until the next durable append.
      expect((await b.replay('', 'plan-1')).records).toHaveLength(3);
      await j.begin('fence');
      const r = await b.replay('', 'plan-1');
      expect(r.records.map((x) => `${x.seq} ${x.step} ${x.status}`)).toEqual(['1 preflight begin', '2 preflight ok', '3 hold begin', '4 hold ok', '5 fence begin']);
      expect(JSON.stringify(r.records)).not.toContain('hunter2');
      expect(planPhase(r.records)).toBe('in-flight');
      await j.close();
      await lock.release();
      const c = new pg.Client({ host: '127.0.0.1', port: ctl.port, user: 'postgres', password: ctl.password, database: 'postgres' });
      await c.connect();
      expect((await c.query('SELECT version FROM cutover.schema_version ORDER BY version')).rows).toEqual([{ version: 1 }, { version: 2 }]);
      await c.end();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('one holder at a time; a holder that dies loses the lock with its session, and its successor gets a newer token', async () => {
    const [a, b] = await Promise.all([open(), open()]);
    try {
      const first = await a.acquire('', 'plan-2');
      await expect(b.acquire('', 'plan-2')).rejects.toThrow(/plan plan-2 is locked by pid \d+ on .*connected to the control database/);
      expect((await b.readLock('', 'plan-2'))?.token).toBe(first.token);
      const journal = await a.openJournal(first);
      await journal.begin('fence');
      // The holder's session ends (its process died): the lock goes with it.
      await (first as unknown as { client: pg.Client }).client.end();
      expect(await b.readLock('', 'plan-2')).toBeUndefined();
      const second = await b.acquire('', 'plan-2');
      expect(second.token).toBe(first.token + 1);
      const j2 = await b.openJournal(second);
      expect(j2.state.unfinished.map((r) => r.step)).toEqual(['fence']);
      await j2.ok('fence');
      await j2.close();
      await second.release();
      const records = (await a.replay('', 'plan-2')).records;
      expect(records.map((r) => r.token)).toEqual([first.token, second.token]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a superseded holder cannot append: the insert checks its token in the same statement', async () => {
    const a = await open();
    try {
      const lock = await a.acquire('', 'plan-3');
      const j = await a.openJournal(lock);
      await j.begin('preflight');
      const c = new pg.Client({ host: '127.0.0.1', port: ctl.port, user: 'postgres', password: ctl.password, database: 'postgres' });
      await c.connect();
      await c.query(`UPDATE cutover.plan_locks SET token = token + 1 WHERE plan_id = 'plan-3'`);
      await c.end();
      await expect(j.ok('preflight')).rejects.toThrow(/no longer holds the lock of plan plan-3/);
      expect((await a.replay('', 'plan-3')).records).toHaveLength(1);
      await lock.release();
    } finally {
      await a.close();
    }
  });

  it("window turns: one runner's turn at a time, the waiter enters when it ends; a turn session ended between turns is replaced", async () => {
    const [a, b] = await Promise.all([open(), open()]);
    try {
      const [wa, wb] = [a.wave!('wave-turns'), b.wave!('wave-turns')];
      const order: string[] = [];
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const first = wa.windowTurn('src:5432', async () => {
        order.push('a in');
        await held;
        order.push('a out');
      });
      while (!order.length) await new Promise((r) => setTimeout(r, 20));
      const second = wb.windowTurn('src:5432', async () => void order.push('b in'));
      await new Promise((r) => setTimeout(r, 300));
      expect(order).toEqual(['a in']);
      release();
      await Promise.all([first, second]);
      expect(order).toEqual(['a in', 'a out', 'b in']);

      // Both runners' kept turn sessions end (a restart of the control database would do the same): the next turn
      // opens a new one instead of failing the tenant.
      const admin = new pg.Client({ host: '127.0.0.1', port: ctl.port, user: 'postgres', password: ctl.password, database: 'postgres' });
      await admin.connect();
      try {
        const { rows } = await admin.query(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE query LIKE 'SELECT pg_advisory_unlock%' AND state = 'idle'`);
        expect(rows.length).toBeGreaterThanOrEqual(2);
      } finally {
        await admin.end();
      }
      await new Promise((r) => setTimeout(r, 100));
      await wb.windowTurn('src:5432', async () => void order.push('b again'));
      expect(order.at(-1)).toBe('b again');
      await Promise.all([wa.leave(), wb.leave()]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("quiet windows: a runner's other tenants wait while any runner's turn on their server is on, not while one elsewhere is", async () => {
    const [a, b] = await Promise.all([open(), open()]);
    try {
      const [wa, wb] = [a.wave!('wave-quiet'), b.wave!('wave-quiet')];
      const log: string[] = [];
      await wb.quiet('src:5432');
      log.push('quiet with no turn');
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const turn = wa.windowTurn('src:5432', async () => {
        log.push('turn in');
        await held;
        log.push('turn out');
      });
      while (!log.includes('turn in')) await new Promise((r) => setTimeout(r, 20));
      // Another runner and the turn's own runner (its other lanes) wait; another server's work does not.
      const others = [wb.quiet('src:5432').then(() => log.push('b quiet')), wa.quiet('src:5432').then(() => log.push('a quiet'))];
      await wb.quiet('other:5432');
      log.push('other server quiet');
      await new Promise((r) => setTimeout(r, 300));
      expect(log).toEqual(['quiet with no turn', 'turn in', 'other server quiet']);
      release();
      await Promise.all([turn, ...others]);
      expect(log.slice(0, 4)).toEqual(['quiet with no turn', 'turn in', 'other server quiet', 'turn out']);
      expect(log.slice(4).sort()).toEqual(['a quiet', 'b quiet']);
      // A runner that has left waits for nothing (its lanes still finishing must not open a session again).
      let releaseAgain!: () => void;
      const heldAgain = new Promise<void>((r) => (releaseAgain = r));
      let inAgain = false;
      const again = wb.windowTurn('src:5432', async () => {
        inAgain = true;
        await heldAgain;
      });
      while (!inAgain) await new Promise((r) => setTimeout(r, 20));
      await wa.leave();
      const after = await Promise.race([wa.quiet('src:5432').then(() => 'returned'), new Promise((r) => setTimeout(() => r('waited'), 1000))]);
      expect(after).toBe('returned');
      releaseAgain();
      await again;
      await wb.leave();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a later runner gets the wave concurrency its round started with, and is told it was not first', async () => {
    const [a, b] = await Promise.all([open(), open()]);
    try {
      const tenants = [{ tenant: 'c1', planId: 'conc-c1' }];
      const first = await a.wave!('wave-conc').join(tenants, 2);
      const later = await b.wave!('wave-conc').join(tenants, 5);
      expect([first.first, first.concurrency]).toEqual([true, 2]);
      expect([later.first, later.concurrency]).toEqual([false, 2]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('--rollback of a tenant: refused while a live runner holds its lease; afterwards its row says rolled-back and no runner claims it this round', async () => {
    const [runner, operator] = await Promise.all([open(), open()]);
    const c = new pg.Client({ host: '127.0.0.1', port: ctl.port, user: 'postgres', password: ctl.password, database: 'postgres' });
    await c.connect();
    const row = async (tenant: string) => (await c.query(`SELECT state, runner, error FROM cutover.wave_tenants WHERE wave_id = 'wave-rb' AND tenant = $1`, [tenant])).rows[0];
    try {
      const tenants = ['t1', 't2'].map((t) => ({ tenant: t, planId: `rb-${t}` }));
      const w = runner.wave!('wave-rb');
      await w.join(tenants, 1);
      const claim = await w.claim();
      expect(claim).toEqual({ tenant: 't1' });
      const op = operator.wave!('wave-rb');
      let ran = false;
      await expect(op.rollback('t1', async () => (ran = true))).rejects.toThrow(/tenant t1 is being worked by runner .*:\d+:/);
      expect(ran).toBe(false);
      // A rollback that fails leaves the state and records why, redacted by the caller.
      await w.finish('t1', { state: 'failed', error: 'fence failed' });
      await expect(
        op.rollback(
          't1',
          () => Promise.reject(new Error('source down, password hunter2')),
          () => 'source down, password ***',
        ),
      ).rejects.toThrow(/source down/);
      expect(await row('t1')).toMatchObject({ state: 'failed', error: 'rollback: source down, password ***' });
      expect(await op.rollback('t1', async () => 'ok')).toBe('ok');
      expect(await row('t1')).toEqual({ state: 'rolled-back', runner: null, error: null });
      // The runner goes on with t2 only; t1 waits for the next round.
      expect(await w.claim()).toEqual({ tenant: 't2' });
      await w.finish('t2', { state: 'done' });
      expect(await w.claim()).toBe('none');
      expect((await op.tenants()).map((t) => `${t.tenant} ${t.state}`)).toEqual(['t1 rolled-back', 't2 done']);
    } finally {
      await c.end();
      await Promise.all([runner.close(), operator.close()]);
    }
  });

  it('fence records live in the control database: what one process recorded another finds after it died, and removes', async () => {
    const [dead, taker] = await Promise.all([open(), open()]);
    const target = { scope: 'database' as const, name: 'acme' };
    const record = {
      version: 1 as const,
      engine: 'postgres' as const,
      server: 'postgres://src/acme',
      serverId: 'sys-1',
      ...target,
      mode: 'strict' as const,
      fencedAt: new Date().toISOString(),
      prior: { roles: { app: { canLogin: true } } },
    };
    try {
      await dead.fences!().save(record);
      await dead.close();
      expect(await taker.fences!().load('sys-1', target)).toEqual(record);
      expect(await taker.fences!().load('sys-1', { scope: 'database', name: 'other' })).toBeUndefined();
      await taker.fences!().remove('sys-1', target);
      expect(await taker.fences!().load('sys-1', target)).toBeUndefined();
    } finally {
      await taker.close();
    }
  });
});
