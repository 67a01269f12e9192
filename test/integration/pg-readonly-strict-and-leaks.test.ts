import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FenceLeakError, readOnlyOff, readOnlyOn } from '../../src/index.js';
import { tempStateDir } from '../helpers/cli.js';
import { PostgresSandbox, client, exec, pg15Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing)('strict mode and the leak check (PostgreSQL)', () => {
  let sb: PostgresSandbox;
  let stateDir: string;
  const opts = (database: string) => ({ url: sb.url(database), password: sb.password, stateDir, probeMs: 400, drainTimeoutMs: 100 });
  const canLogin = async (role: string) => {
    const c = await client(sb);
    const { rows } = await c.query('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [role]);
    await c.end();
    return rows[0].rolcanlogin as boolean;
  };

  beforeAll(async () => {
    sb = await PostgresSandbox.start({ major: 15 });
    stateDir = await tempStateDir(sb.dir);
    await exec(
      sb,
      'postgres',
      `CREATE ROLE app LOGIN PASSWORD 'app-pw'`,
      `CREATE ROLE "odd role" LOGIN PASSWORD 'x'`,
      `CREATE ROLE dormant NOLOGIN`,
      'CREATE DATABASE s1 OWNER app',
      'CREATE DATABASE s2 OWNER app',
      'CREATE DATABASE s3 OWNER app',
    );
    for (const db of ['s1', 's2', 's3']) await exec(sb, db, 'CREATE TABLE t (id int)', 'GRANT ALL ON t TO app');
  });
  afterAll(async () => sb?.stop());

  it('strict: the app role cannot even start a BEGIN READ WRITE; off gives back exactly what was taken', async () => {
    const appSession = await client(sb, { database: 's1', user: 'app', password: 'app-pw', application: 'app' });
    const r = await readOnlyOn({ ...opts('s1'), mode: 'strict', roles: ['app', 'odd role', 'dormant'] });
    expect(r.lockedRoles.sort()).toEqual(['app', 'dormant', 'odd role']);
    expect(r.terminated.map((s) => s.user)).toContain('app');
    await expect(appSession.query('BEGIN READ WRITE')).rejects.toThrow();
    await expect(client(sb, { database: 's1', user: 'app', password: 'app-pw' })).rejects.toThrow(/not permitted to log in/);
    const off = await readOnlyOff(opts('s1'));
    expect(off.unlockedRoles.sort()).toEqual(['app', 'odd role']);
    expect(await canLogin('app')).toBe(true);
    expect(await canLogin('odd role')).toBe(true);
    expect(await canLogin('dormant')).toBe(false);
    const back = await client(sb, { database: 's1', user: 'app', password: 'app-pw' });
    await back.query('INSERT INTO t VALUES (1)');
    await back.end();
    await appSession.end().catch(() => {});
  });

  it('enforced: a client that says BEGIN READ WRITE during the probe fails the leak check and is named', async () => {
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        const c = await client(sb, { database: 's2', user: 'app', password: 'app-pw', application: 'sneaky-writer' }).catch(() => undefined);
        if (!c) continue;
        try {
          while (!stop) {
            await c.query('BEGIN READ WRITE');
            await c.query('INSERT INTO t VALUES (1)');
            await new Promise((r) => setTimeout(r, 30));
            await c.query('COMMIT');
          }
        } catch {
          // terminated by the fence: reconnect and try again
        } finally {
          await c.end().catch(() => {});
        }
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 200));
      const err = await readOnlyOn(opts('s2')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FenceLeakError);
      const leak = err as FenceLeakError;
      expect(leak.exitCode).toBe(5);
      expect(leak.result.leakCheck.clean).toBe(false);
      expect(leak.result.leakCheck.writers.map((w) => w.application)).toContain('sneaky-writer');
      expect(leak.message).toMatch(/sneaky-writer/);
    } finally {
      stop = true;
      await writer;
      await readOnlyOff(opts('s2'));
    }
  });

  it('a prepared transaction in scope fails the leak check and is named', async () => {
    const c = await client(sb, { database: 's3' });
    await c.query('BEGIN');
    await c.query('INSERT INTO t VALUES (1)');
    await c.query(`PREPARE TRANSACTION 'pending-transfer'`);
    await c.end();
    try {
      const err = await readOnlyOn(opts('s3')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FenceLeakError);
      expect((err as FenceLeakError).result.leakCheck.writers.map((w) => w.id)).toEqual(['prepared:pending-transfer']);
    } finally {
      await exec(sb, 's3', `ROLLBACK PREPARED 'pending-transfer'`);
      await readOnlyOff(opts('s3'));
    }
  });
});
