import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLeakSlot, PgLeakDecoder } from '../../adapters/postgres/postgres-leak-decoding.js';
import { FenceLeakError, readOnlyOff, readOnlyOn } from '../../src/index.js';
import { parseDbUrl } from '../../src/util/db-url.js';
import { tempStateDir } from '../helpers/cli.js';
import { PostgresSandbox, client, exec, pg15Missing } from '../helpers/pg.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A session that turns the read-only default off and commits one-row autocommit inserts (each well under a
 * millisecond) at 30-80 ms intervals, reconnecting when the fence ends it, so it writes from a session that
 * connected after the fence: a 20 ms pg_stat_activity sampler rarely sees one of its transactions.
 */
function shortWriter(sb: PostgresSandbox, db: string): { stop(): Promise<number> } {
  let stopping = false;
  let committed = 0;
  const loop = (async () => {
    while (!stopping) {
      const c = await client(sb, { database: db, application: 'short-writer' }).catch(() => undefined);
      if (!c) continue;
      try {
        await c.query('SET default_transaction_read_only = off');
        while (!stopping) {
          await c.query('INSERT INTO t VALUES (42)');
          committed++;
          await sleep(30 + Math.random() * 50);
        }
      } catch {
        // ended by the fence: connect again, now under the read-only default, and override it again
      } finally {
        await c.end().catch(() => {});
      }
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      return committed;
    },
  };
}

describe.skipIf(pg15Missing)('the leak check decodes every commit after the fence (PostgreSQL, database scope)', () => {
  let sb: PostgresSandbox;
  let stateDir: string;
  const opts = (database: string) => ({ url: sb.url(database), password: sb.password, stateDir, probeMs: 400, drainTimeoutMs: 100 });

  beforeAll(async () => {
    // Two slots only, so a test can take them all.
    sb = await PostgresSandbox.start({ major: 15, settings: { max_replication_slots: 2 } });
    stateDir = await tempStateDir(sb.dir);
    for (const db of ['d1', 'd2', 'd3', 'd4']) {
      await exec(sb, 'postgres', `CREATE DATABASE ${db}`);
      await exec(sb, db, 'CREATE TABLE t (id int)');
    }
  });
  afterAll(async () => sb?.stop());

  it('a quiet database: clean, decoded from the fence position, and the temporary slot is gone afterwards', async () => {
    const r = await readOnlyOn(opts('d1'));
    try {
      expect(r.leakCheck).toMatchObject({ clean: true, method: 'decoded', transactions: [] });
      expect(r.fencePosition).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(r.warnings.join('\n')).not.toMatch(/sampled/);
      const c = await client(sb);
      const { rows } = await c.query(`SELECT slot_name FROM pg_replication_slots`);
      await c.end();
      expect(rows).toEqual([]);
    } finally {
      await readOnlyOff(opts('d1'));
    }
  });

  it('sub-millisecond autocommit writes after the fence fail the check, named by table, xid and commit time', async () => {
    const writer = shortWriter(sb, 'd2');
    let err: unknown;
    try {
      await sleep(200);
      err = await readOnlyOn(opts('d2')).catch((e: unknown) => e);
    } finally {
      await writer.stop();
      await readOnlyOff(opts('d2'));
    }
    expect(err).toBeInstanceOf(FenceLeakError);
    const leak = (err as FenceLeakError).result.leakCheck;
    expect(leak.method).toBe('decoded');
    expect(leak.transactions!.length).toBeGreaterThan(0);
    for (const t of leak.transactions!) {
      expect(t.tables).toEqual([{ table: 'public.t', changes: 1 }]);
      expect(t.xid).toMatch(/^\d+$/);
      expect(t.committedAt).toBeTruthy();
    }
    expect((err as FenceLeakError).message).toMatch(/transaction\(s\) committed after the fence: xid \d+ \(public\.t 1/);
  });

  it("the plan's slot opened before the hold decodes from about then, and still reads a transaction begun before it", async () => {
    const slot = 'plan_leaks';
    const ep = parseDbUrl(sb.url('d4'), { password: sb.password });
    const c = await client(sb, { database: 'd4' });
    const lsn = async () => (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l;
    const restartLsn = async () => (await c.query<{ l: string }>('SELECT restart_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0]!.l;
    const behind = async (a: string, b: string) => Number((await c.query<{ d: string }>('SELECT ($1::pg_lsn - $2::pg_lsn)::text AS d', [a, b])).rows[0]!.d);
    const openDecoder = async () => {
      const d = await PgLeakDecoder.open(ep, 'd4', slot);
      if ('fallback' in d) throw new Error(d.fallback);
      return d;
    };
    const open = await client(sb, { database: 'd4' });
    expect(await ensureLeakSlot(c, slot)).toEqual({ created: true });
    const writer = shortWriter(sb, 'd4');
    let decoder: PgLeakDecoder | undefined;
    try {
      await sleep(500);
      const beforeOpen = await lsn();
      // Without a fresh restart point, every read would decode again from where the slot was made (sync).
      decoder = await openDecoder();
      expect(await behind(await restartLsn(), beforeOpen)).toBeGreaterThanOrEqual(0);
      await decoder.close();
      await writer.stop();
      // A write transaction open while the slot is moved (and so before the fence), committed after the fence
      // position: the restart point stays before its first change, so the read still decodes it.
      await open.query('BEGIN');
      await open.query('INSERT INTO t VALUES (7)');
      const xid = (await open.query<{ x: string }>('SELECT txid_current()::text AS x')).rows[0]!.x;
      decoder = await openDecoder();
      const fence = await lsn();
      await open.query('COMMIT');
      const read = await decoder.drain(fence);
      expect(read.leaks.map((t) => [t.xid, t.tables])).toEqual([[xid, [{ table: 'public.t', changes: 1 }]]]);
    } finally {
      await writer.stop();
      await decoder?.close();
      await open.end();
      await c.query('SELECT pg_drop_replication_slot($1)', [slot]);
      await c.end();
    }
  });

  it('with every replication slot taken, the check falls back to sampling and says why', async () => {
    const holder = await client(sb);
    await holder.query(`SELECT pg_create_physical_replication_slot('hog_1'), pg_create_physical_replication_slot('hog_2')`);
    try {
      const r = await readOnlyOn(opts('d3'));
      expect(r.leakCheck).toMatchObject({ clean: true, method: 'sampled' });
      expect(r.leakCheck.fallback).toMatch(/no free replication slot.*max_replication_slots/);
      expect(r.warnings.join('\n')).toMatch(/leak check sampled sessions only.*max_replication_slots/);
      expect(r.leakCheck.transactions).toBeUndefined();
    } finally {
      await holder.query(`SELECT pg_drop_replication_slot('hog_1'), pg_drop_replication_slot('hog_2')`);
      await holder.end();
      await readOnlyOff(opts('d3'));
    }
  });
});
