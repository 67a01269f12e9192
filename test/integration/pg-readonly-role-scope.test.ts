import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOnlyOff, readOnlyOn } from '../../src/index.js';
import { tempStateDir } from '../helpers/cli.js';
import { PostgresSandbox, client, exec, pg15Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing)('role scope fence and terminate policies (PostgreSQL)', () => {
  let sb: PostgresSandbox;
  let stateDir: string;
  const app = () => client(sb, { database: 'shop', user: 'app', password: 'app-pw', application: 'app' });
  const other = () => client(sb, { database: 'shop', user: 'reporter', password: 'rep-pw', application: 'reporter' });

  beforeAll(async () => {
    sb = await PostgresSandbox.start({ major: 15 });
    stateDir = await tempStateDir(sb.dir);
    await exec(sb, 'postgres', `CREATE ROLE app LOGIN PASSWORD 'app-pw'`, `CREATE ROLE reporter LOGIN PASSWORD 'rep-pw'`, 'CREATE DATABASE shop');
    await exec(sb, 'shop', 'CREATE TABLE t (id int)', 'GRANT ALL ON t TO app, reporter');
  });
  afterAll(async () => sb?.stop());

  it('role scope: the role is read-only in every new session, its old sessions are ended, other roles keep writing', async () => {
    const old = await app();
    const rep = await other();
    const r = await readOnlyOn({ url: sb.url('shop'), password: sb.password, stateDir, scope: 'role', name: 'app', probeMs: 100, drainTimeoutMs: 100 });
    expect(r.terminated.map((s) => s.user)).toEqual(['app']);
    await expect(old.query('INSERT INTO t VALUES (1)')).rejects.toThrow();
    const fresh = await app();
    await expect(fresh.query('INSERT INTO t VALUES (2)')).rejects.toMatchObject({ code: '25006' });
    await rep.query('INSERT INTO t VALUES (3)');
    await readOnlyOff({ url: sb.url('shop'), password: sb.password, stateDir, scope: 'role', name: 'app' });
    const after = await app();
    await after.query('INSERT INTO t VALUES (4)');
    await Promise.all([old, rep, fresh, after].map((c) => c.end().catch(() => {})));
  });

  it('terminate idle-in-transaction spares idle sessions (and says so) but ends one inside a transaction', async () => {
    const idle = await other();
    const inTx = await app();
    await inTx.query('BEGIN');
    await inTx.query('SELECT 1');
    const r = await readOnlyOn({ url: sb.url('shop'), password: sb.password, stateDir, probeMs: 100, drainTimeoutMs: 100, terminate: 'idle-in-transaction' });
    expect(r.terminated.map((s) => s.application)).toEqual(['app']);
    expect(r.warnings.join('\n')).toMatch(/terminate idle-in-transaction: 1 session\(s\) connected before the fence were left running/);
    await idle.query('SELECT 1');
    await readOnlyOff({ url: sb.url('shop'), password: sb.password, stateDir });
    await Promise.all([idle, inTx].map((c) => c.end().catch(() => {})));
  });
});
