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
      expect((await c.query('SELECT version FROM cutover.schema_version')).rows).toEqual([{ version: 1 }]);
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
});
