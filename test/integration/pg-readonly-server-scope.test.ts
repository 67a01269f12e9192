import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOnlyOff, readOnlyOn, readOnlyStatus } from '../../src/index.js';
import { tempStateDir } from '../helpers/cli.js';
import { PostgresSandbox, client, exec, pg15Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing)('server scope fence (PostgreSQL)', () => {
  let sb: PostgresSandbox;
  let stateDir: string;
  const opts = () => ({ url: sb.url('postgres'), password: sb.password, stateDir, scope: 'server' as const, probeMs: 200 });

  beforeAll(async () => {
    sb = await PostgresSandbox.start({ major: 15 });
    stateDir = await tempStateDir(sb.dir);
    await exec(sb, 'postgres', 'CREATE TABLE t (id int)');
  });
  afterAll(async () => sb?.stop());

  it('blocks an idle session that was connected before the fence (advisory: reload reaches it)', async () => {
    const app = await client(sb);
    try {
      await app.query('INSERT INTO t VALUES (1)');
      const r = await readOnlyOn({ ...opts(), mode: 'advisory' });
      expect(r.terminated).toEqual([]);
      await expect(app.query('INSERT INTO t VALUES (2)')).rejects.toMatchObject({ code: '25006' });
      const off = await readOnlyOff(opts());
      expect(off.wasOn).toBe(true);
      await app.query('INSERT INTO t VALUES (3)');
    } finally {
      await app.end();
    }
  });

  it('off puts back an explicit value that was set before the fence, not a reset', async () => {
    await exec(sb, 'postgres', `ALTER SYSTEM SET default_transaction_read_only = 'off'`, 'SELECT pg_reload_conf()');
    await readOnlyOn({ ...opts(), mode: 'advisory' });
    const during = await readOnlyStatus(opts());
    expect(during.scopes[0]).toMatchObject({ scope: 'server', readOnly: true, setting: 'on' });
    const off = await readOnlyOff(opts());
    expect(off.restored).toMatch(/restored to 'off'/);
    const c = await client(sb);
    try {
      const { rows } = await c.query(`SELECT setting FROM pg_file_settings WHERE name = 'default_transaction_read_only' AND sourcefile LIKE '%postgresql.auto.conf'`);
      expect(rows).toEqual([{ setting: 'off' }]);
    } finally {
      await c.end();
    }
    await exec(sb, 'postgres', 'ALTER SYSTEM RESET default_transaction_read_only', 'SELECT pg_reload_conf()');
  });

  it('a server that was read-only before on stays read-only after off', async () => {
    await exec(sb, 'postgres', `ALTER SYSTEM SET default_transaction_read_only = 'on'`, 'SELECT pg_reload_conf()');
    await readOnlyOn({ ...opts(), mode: 'advisory' });
    await readOnlyOff(opts());
    const status = await readOnlyStatus(opts());
    expect(status.scopes[0]).toMatchObject({ readOnly: true, setting: 'on' });
    await exec(sb, 'postgres', 'SET default_transaction_read_only = off', 'ALTER SYSTEM RESET default_transaction_read_only', 'SELECT pg_reload_conf()');
  });

  it('enforced server scope ends every session that predates the fence, including one with a session-level override', async () => {
    const sneaky = await client(sb, { application: 'sneaky' });
    const other = await client(sb, { application: 'idle-reader' });
    try {
      await sneaky.query('SET default_transaction_read_only = off');
      const r = await readOnlyOn({ ...opts(), mode: 'enforced', drainTimeoutMs: 200 });
      const apps = r.terminated.map((s) => s.application).sort();
      expect(apps).toEqual(['idle-reader', 'sneaky']);
      await expect(sneaky.query('INSERT INTO t VALUES (9)')).rejects.toThrow();
      const fresh = await client(sb);
      await expect(fresh.query('INSERT INTO t VALUES (10)')).rejects.toMatchObject({ code: '25006' });
      await fresh.end();
    } finally {
      await sneaky.end().catch(() => {});
      await other.end().catch(() => {});
      await readOnlyOff(opts());
    }
  });
});
