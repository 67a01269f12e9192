import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOnlyOff, readOnlyOn } from '../../src/index.js';
import { tempStateDir } from '../helpers/cli.js';
import { PostgresSandbox, client, exec, pg15Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing)('enforced fence drains open write transactions (PostgreSQL)', () => {
  let sb: PostgresSandbox;
  let stateDir: string;
  const opts = (database: string, drainTimeoutMs: number) => ({ url: sb.url(database), password: sb.password, stateDir, probeMs: 200, drainTimeoutMs });
  const count = async (db: string) => {
    const c = await client(sb, { database: db });
    const { rows } = await c.query('SELECT count(*)::int AS n FROM t');
    await c.end();
    return rows[0].n as number;
  };

  beforeAll(async () => {
    sb = await PostgresSandbox.start({ major: 15 });
    stateDir = await tempStateDir(sb.dir);
    for (const db of ['d1', 'd2', 'd3']) {
      await exec(sb, 'postgres', `CREATE DATABASE ${db}`);
      await exec(sb, db, 'CREATE TABLE t (id int)');
    }
  });
  afterAll(async () => sb?.stop());

  it('a write transaction that commits within the drain timeout is drained, and its rows are kept', async () => {
    const w = await client(sb, { database: 'd1', application: 'quick-writer' });
    await w.query('BEGIN');
    await w.query('INSERT INTO t VALUES (1)');
    // Commit a second after the fence is set (its drain is then waiting for this transaction), not a fixed delay
    // after the start: on a loaded machine the fence can take longer than that to reach its drain.
    const watcher = await client(sb, { database: 'postgres' });
    const fenced = async () =>
      (
        await watcher.query(
          `SELECT EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
            WHERE d.datname = 'd1' AND 'default_transaction_read_only=on' = ANY (s.setconfig)) AS on`,
        )
      ).rows[0].on as boolean;
    const commit = (async () => {
      const deadline = Date.now() + 30_000;
      while (!(await fenced()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      // The fence lists the writers it drains right after setting the default: leave it that long first.
      await new Promise((r) => setTimeout(r, 1000));
      await w.query('COMMIT');
    })();
    // Without decoding: creating the slot waits for running transactions, so this one would end before the fence.
    const r = await readOnlyOn({ ...opts('d1', 20_000), decodeLeaks: false });
    await commit;
    await watcher.end();
    expect(r.drained.map((s) => s.application)).toEqual(['quick-writer']);
    expect(await count('d1')).toBe(1);
    await w.end().catch(() => {});
    await readOnlyOff(opts('d1', 0));
  });

  it('a write transaction still open after the drain timeout is terminated and its commit fails', async () => {
    const w = await client(sb, { database: 'd2', application: 'slow-writer' });
    await w.query('BEGIN');
    await w.query('INSERT INTO t VALUES (1)');
    const r = await readOnlyOn(opts('d2', 200));
    const ended = r.terminated.find((s) => s.application === 'slow-writer');
    expect(ended?.reason).toMatch(/write transaction still open/);
    expect(ended?.transactionAgeMs).toBeGreaterThan(0);
    await expect(w.query('COMMIT')).rejects.toThrow();
    expect(await count('d2')).toBe(0);
    await readOnlyOff(opts('d2', 0));
  });

  it('a read-write transaction opened before the fence cannot write after on returns', async () => {
    const w = await client(sb, { database: 'd3', application: 'late-writer' });
    await w.query('BEGIN READ WRITE');
    await w.query('SELECT 1');
    await readOnlyOn(opts('d3', 200));
    await expect(w.query('INSERT INTO t VALUES (1)').then(() => w.query('COMMIT'))).rejects.toThrow();
    expect(await count('d3')).toBe(0);
    await readOnlyOff(opts('d3', 0));
  });
});
