import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOnlyOff, readOnlyOn, readOnlyStatus } from '../../src/index.js';
import { tempStateDir } from '../helpers/cli.js';
import { PostgresSandbox, client, exec, pg15Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing)('schema scope fence (PostgreSQL, trigger fence)', () => {
  let sb: PostgresSandbox;
  let stateDir: string;
  const opts = (schema: string) => ({ url: sb.url('app'), password: sb.password, stateDir, scope: 'schema' as const, name: schema, probeMs: 150, drainTimeoutMs: 300 });

  beforeAll(async () => {
    sb = await PostgresSandbox.start({ major: 15 });
    stateDir = await tempStateDir(sb.dir);
    await exec(sb, 'postgres', 'CREATE DATABASE app');
    await exec(sb, 'postgres', `CREATE ROLE owner_role LOGIN PASSWORD '${sb.password}'`);
    for (const s of ['t1', 't2', 'Odd "Schema"', 'adv']) {
      const q = `"${s.replace(/"/g, '""')}"`;
      await exec(sb, 'app', `CREATE SCHEMA ${q} AUTHORIZATION owner_role`, `CREATE TABLE ${q}.items (id int PRIMARY KEY, v text)`, `CREATE TABLE ${q}."Order" (id int)`, `ALTER TABLE ${q}.items OWNER TO owner_role`);
    }
  });
  afterAll(async () => sb?.stop());

  it('blocks every write to the schema for every session (owner, superuser, replica role, open transactions), leaves reads and other schemas alone', async () => {
    const early = await client(sb, { database: 'app', application: 'early' });
    const owner = await client(sb, { database: 'app', user: 'owner_role', application: 'owner' });
    await early.query('INSERT INTO t1.items VALUES (1, $1)', ['before']);
    await early.query('BEGIN');
    await early.query('SELECT count(*) FROM t1.items');
    try {
      const r = await readOnlyOn(opts('t1'));
      expect(r).toMatchObject({ scope: 'schema', name: 't1', mode: 'enforced' });
      expect(r.terminated).toEqual([]);
      expect(r.leakCheck.clean).toBe(true);
      // A transaction opened before the fence is bound at its next write.
      await expect(early.query(`INSERT INTO t1.items VALUES (2, 'x')`)).rejects.toMatchObject({ code: '25006' });
      await early.query('ROLLBACK');
      await expect(owner.query(`UPDATE t1.items SET v = 'y'`)).rejects.toMatchObject({ code: '25006' });
      const su = await client(sb, { database: 'app' });
      await su.query('SET session_replication_role = replica');
      await expect(su.query('DELETE FROM t1.items')).rejects.toMatchObject({ code: '25006' });
      await expect(su.query('TRUNCATE t1."Order"')).rejects.toMatchObject({ code: '25006' });
      await su.query('SET session_replication_role = origin');
      await su.query('SET cutover.writable = on');
      await expect(su.query(`INSERT INTO t1.items VALUES (3, 'z')`)).rejects.toMatchObject({ code: '25006', message: expect.stringMatching(/schema t1 is read-only/) });
      expect((await su.query('SELECT count(*)::int AS n FROM t1.items')).rows[0].n).toBe(1);
      await su.query(`INSERT INTO t2.items VALUES (1, 'other schema')`);
      await su.end();
      const st = await readOnlyStatus({ url: sb.url('app'), password: sb.password, stateDir, scope: 'schema', name: 't1' });
      expect(st.scopes[0]).toMatchObject({ scope: 'schema', name: 't1', readOnly: true, couldWrite: [] });
    } finally {
      await early.end().catch(() => {});
      await owner.end().catch(() => {});
    }
    const off = await readOnlyOff(opts('t1'));
    expect(off.restored).toMatch(/removed from 2 table/);
    await exec(sb, 'app', `INSERT INTO t1.items VALUES (4, 'after')`);
  });

  it('drains an open writer within the drain timeout, ends one that stays open, and the writes it committed count', async () => {
    const quick = await client(sb, { database: 'app', application: 'quick' });
    const stuck = await client(sb, { database: 'app', application: 'stuck' });
    await quick.query('BEGIN');
    await quick.query(`INSERT INTO t2.items VALUES (10, 'drained')`);
    await stuck.query('BEGIN');
    await stuck.query(`INSERT INTO t2."Order" VALUES (11)`);
    try {
      const fencing = readOnlyOn({ ...opts('t2'), drainTimeoutMs: 2000 });
      // Commit the quick writer once the fence is queued behind it (its LOCK TABLE waits): a drain, not a race.
      const watcher = await client(sb, { database: 'app' });
      for (let i = 0; i < 200; i++) {
        const { rows } = await watcher.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'cutover readonly' AND wait_event_type = 'Lock'`);
        if (rows.length) break;
        await new Promise((res) => setTimeout(res, 10));
      }
      await watcher.end();
      await quick.query('COMMIT');
      const r = await fencing;
      expect(r.drained.map((s) => s.application)).toContain('quick');
      expect(r.terminated.map((s) => s.application)).toEqual(['stuck']);
      const rows = await client(sb, { database: 'app' });
      expect((await rows.query('SELECT v FROM t2.items WHERE id = 10')).rows).toEqual([{ v: 'drained' }]);
      expect((await rows.query('SELECT count(*)::int AS n FROM t2."Order"')).rows[0].n).toBe(0);
      await rows.end();
    } finally {
      await quick.end().catch(() => {});
      await stuck.end().catch(() => {});
      await readOnlyOff(opts('t2'));
    }
  });

  it('odd schema names; a table created after the fence is a leak named by the check', async () => {
    const name = 'Odd "Schema"';
    await readOnlyOn(opts(name));
    await expect(exec(sb, 'app', `INSERT INTO "Odd ""Schema""".items VALUES (1, 'x')`)).rejects.toMatchObject({ code: '25006' });
    await exec(sb, 'app', `CREATE TABLE "Odd ""Schema""".late (id int)`);
    const st = await readOnlyStatus({ url: sb.url('app'), password: sb.password, stateDir, scope: 'schema', name });
    expect(st.scopes[0]!.readOnly).toBe(false);
    expect(st.scopes[0]!.couldWrite.map((w) => w.reason).join()).toMatch(/late has no fence trigger/);
    // A second `on` fences the new table too (repeatable), and the check is clean again.
    const again = await readOnlyOn(opts(name));
    expect(again.leakCheck.clean).toBe(true);
    await readOnlyOff(opts(name));
    await exec(sb, 'app', `INSERT INTO "Odd ""Schema""".late VALUES (1)`);
  });

  it('advisory (the hold kind): replication-role sessions and cutover.writable pass, applications do not', async () => {
    await readOnlyOn({ ...opts('adv'), mode: 'advisory' });
    try {
      await expect(exec(sb, 'app', `INSERT INTO adv.items VALUES (1, 'app')`)).rejects.toMatchObject({ code: '25006' });
      await exec(sb, 'app', 'SET session_replication_role = replica', `INSERT INTO adv.items VALUES (2, 'replica')`);
      await exec(sb, 'app', 'SET cutover.writable = on', `INSERT INTO adv.items VALUES (3, 'transform')`);
    } finally {
      await readOnlyOff(opts('adv'));
    }
  });

  it('a schema that does not exist is one clear error', async () => {
    await expect(readOnlyOn(opts('nope'))).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/schema "nope" does not exist in database "app"/) });
  });
});
