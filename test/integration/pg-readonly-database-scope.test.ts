import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOnlyOff, readOnlyOn } from '../../src/index.js';
import { tempStateDir } from '../helpers/cli.js';
import { PostgresSandbox, client, exec, pg15Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing)('database scope fence (PostgreSQL)', () => {
  let sb: PostgresSandbox;
  let stateDir: string;
  const opts = (database: string) => ({ url: sb.url(database), password: sb.password, stateDir, probeMs: 200, drainTimeoutMs: 200 });

  beforeAll(async () => {
    sb = await PostgresSandbox.start({ major: 15 });
    stateDir = await tempStateDir(sb.dir);
    for (const db of ['shop', 'other', 'adv']) {
      await exec(sb, 'postgres', `CREATE DATABASE ${db}`);
      await exec(sb, db, 'CREATE TABLE t (id int)');
    }
  });
  afterAll(async () => sb?.stop());

  it('enforced: an already-connected session of the database is blocked, other databases stay writable', async () => {
    const shopApp = await client(sb, { database: 'shop', application: 'shop-app' });
    const otherApp = await client(sb, { database: 'other', application: 'other-app' });
    try {
      await shopApp.query('INSERT INTO t VALUES (1)');
      const r = await readOnlyOn(opts('shop'));
      expect(r).toMatchObject({ scope: 'database', name: 'shop', mode: 'enforced' });
      expect(r.terminated.map((s) => s.application)).toEqual(['shop-app']);
      await expect(shopApp.query('INSERT INTO t VALUES (2)')).rejects.toThrow();
      const again = await client(sb, { database: 'shop' });
      await expect(again.query('INSERT INTO t VALUES (3)')).rejects.toMatchObject({ code: '25006' });
      await again.end();
      await otherApp.query('INSERT INTO t VALUES (4)');
      const otherFresh = await client(sb, { database: 'other' });
      await otherFresh.query('INSERT INTO t VALUES (5)');
      await otherFresh.end();
    } finally {
      await shopApp.end().catch(() => {});
      await otherApp.end();
      await readOnlyOff(opts('shop'));
    }
    const after = await client(sb, { database: 'shop' });
    await after.query('INSERT INTO t VALUES (6)');
    await after.end();
  });

  it('advisory: says that sessions connected before the fence keep writing (and they do)', async () => {
    const early = await client(sb, { database: 'adv', application: 'early' });
    try {
      const r = await readOnlyOn({ ...opts('adv'), mode: 'advisory' });
      expect(r.untouched.map((s) => s.application)).toEqual(['early']);
      expect(r.warnings.join('\n')).toMatch(/reaches new sessions only: 1 session/);
      await early.query('INSERT INTO t VALUES (1)');
      const late = await client(sb, { database: 'adv' });
      await expect(late.query('INSERT INTO t VALUES (2)')).rejects.toMatchObject({ code: '25006' });
      await late.end();
    } finally {
      await early.end();
      await readOnlyOff(opts('adv'));
    }
  });

  it('off puts back an explicit database-level value', async () => {
    await exec(sb, 'postgres', `ALTER DATABASE other SET default_transaction_read_only = 'off'`);
    await readOnlyOn(opts('other'));
    const off = await readOnlyOff(opts('other'));
    expect(off.restored).toMatch(/restored to 'off'/);
    const c = await client(sb);
    const { rows } = await c.query(`SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = 'other') AND setrole = 0`);
    await c.end();
    expect(rows[0].setconfig).toEqual(['default_transaction_read_only=off']);
  });
});
