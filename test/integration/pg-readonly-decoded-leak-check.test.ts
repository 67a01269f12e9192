import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FenceLeakError, readOnlyOff, readOnlyOn } from '../../src/index.js';
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
    for (const db of ['d1', 'd2', 'd3']) {
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
