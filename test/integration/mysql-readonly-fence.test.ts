import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbSandbox, cli, connect, createAppUser, exec, mariadbMissing, outcome, readOnly } from '../helpers/mariadb.js';

const ER_OPTION_PREVENTS_STATEMENT = 1290;

describe.skipIf(mariadbMissing)('MariaDB server-scope fence', () => {
  let sb: MariadbSandbox;
  let stateDir: string;
  let env: Record<string, string>;
  const on = (...extra: string[]) => cli(['--state-dir', stateDir, 'readonly', 'on', sb.url('shop'), '--drain-timeout', '500ms', '--probe', '200ms', ...extra], env);
  const off = () => cli(['--state-dir', stateDir, 'readonly', 'off', sb.url('shop')], env);

  beforeAll(async () => {
    sb = await MariadbSandbox.start();
    stateDir = await mkdtemp(join(tmpdir(), 'cutover-state-'));
    env = { MYSQL_PWD: sb.password };
    await exec(sb, 'CREATE DATABASE shop', 'CREATE TABLE shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB');
    await createAppUser(sb, 'app', 'app-pw', 'shop');
    await createAppUser(sb, 'admin', 'admin-pw', 'shop', `GRANT READ ONLY ADMIN ON *.* TO 'admin'@'%'`);
  });
  afterAll(async () => {
    await sb?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('blocks the next write of a session that was already connected and idle (1290)', async () => {
    const app = await connect(sb, { user: 'app', password: 'app-pw' });
    try {
      expect(await outcome(app.query('INSERT INTO shop.t (v) VALUES (1)'))).toBe('ok');
      const r = await on();
      expect(r.code, r.err).toBe(0);
      expect(r.err).toContain('read-only ON');
      expect(await readOnly(sb)).toBe(1);
      expect(await outcome(app.query('INSERT INTO shop.t (v) VALUES (2)'))).toBe(ER_OPTION_PREVENTS_STATEMENT);
    } finally {
      app.destroy();
      expect((await off()).code).toBe(0);
    }
    expect(await readOnly(sb)).toBe(0);
  });

  it('kills an open write transaction after the drain timeout, and its COMMIT cannot succeed', async () => {
    const app = await connect(sb, { user: 'app', password: 'app-pw' });
    try {
      await app.query('BEGIN');
      await app.query('INSERT INTO shop.t (v) VALUES (10)');
      const [idRows] = await app.query<import('mysql2/promise').RowDataPacket[]>('SELECT CONNECTION_ID() AS id');
      const started = Date.now();
      const r = await on('--json');
      const took = Date.now() - started;
      expect(r.code, r.err).toBe(0);
      const result = r.json() as { terminated: Array<{ id: string; user: string; reason: string; transactionAgeMs?: number }> };
      const killed = result.terminated.find((s) => s.id === String(idRows[0]!.id));
      expect(killed, JSON.stringify(result.terminated)).toBeDefined();
      expect(killed!.user).toBe('app');
      expect(killed!.reason).toMatch(/drain timeout/);
      expect(killed!.transactionAgeMs).toBeGreaterThanOrEqual(0);
      expect(took).toBeGreaterThanOrEqual(500);
      expect(await outcome(app.query('COMMIT'))).not.toBe('ok');
      const check = await connect(sb);
      const [rows] = await check.query<import('mysql2/promise').RowDataPacket[]>('SELECT COUNT(*) AS n FROM shop.t WHERE v = 10');
      await check.end();
      expect(Number(rows[0]!.n)).toBe(0);
    } finally {
      app.destroy();
      expect((await off()).code).toBe(0);
    }
  });

  it('reports a write transaction that ends within the drain timeout as drained', async () => {
    const app = await connect(sb, { user: 'app', password: 'app-pw' });
    try {
      await app.query('BEGIN');
      await app.query('INSERT INTO shop.t (v) VALUES (20)');
      // The client sees its COMMIT fail (1290) and rolls back on its own, as an app would.
      const finishing = (async () => {
        while ((await readOnly(sb)) !== 1) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 400));
        const commit = await outcome(app.query('COMMIT'));
        await app.query('ROLLBACK');
        return commit;
      })();
      const r = await cli(['--state-dir', stateDir, 'readonly', 'on', sb.url('shop'), '--drain-timeout', '5s', '--probe', '200ms', '--json'], env);
      expect(r.code, r.err).toBe(0);
      expect(await finishing).toBe(ER_OPTION_PREVENTS_STATEMENT);
      const result = r.json() as { drained: Array<{ user: string }>; terminated: Array<{ user: string }> };
      expect(result.drained.map((s) => s.user)).toEqual(['app']);
      expect(result.terminated.filter((s) => s.user === 'app')).toEqual([]);
    } finally {
      app.destroy();
      expect((await off()).code).toBe(0);
    }
  });

  it('kills a READ ONLY ADMIN session with an open write transaction, which could otherwise commit', async () => {
    const admin = await connect(sb, { user: 'admin', password: 'admin-pw' });
    try {
      await admin.query('BEGIN');
      await admin.query('INSERT INTO shop.t (v) VALUES (30)');
      const r = await on('--json');
      expect(r.code, r.err).toBe(0);
      const result = r.json() as { terminated: Array<{ user: string; reason: string }> };
      expect(result.terminated.some((s) => s.user === 'admin')).toBe(true);
      expect(await outcome(admin.query('COMMIT'))).not.toBe('ok');
      const check = await connect(sb);
      const [rows] = await check.query<import('mysql2/promise').RowDataPacket[]>('SELECT COUNT(*) AS n FROM shop.t WHERE v = 30');
      await check.end();
      expect(Number(rows[0]!.n)).toBe(0);
    } finally {
      admin.destroy();
      expect((await off()).code).toBe(0);
    }
  });

  it('off puts back a read_only=ON that was there before on: the server stays read-only', async () => {
    await exec(sb, 'SET GLOBAL read_only = ON');
    try {
      expect((await on()).code).toBe(0);
      const r = await off();
      expect(r.code, r.err).toBe(0);
      expect(r.err).toMatch(/stays ON/);
      expect(await readOnly(sb)).toBe(1);
    } finally {
      await exec(sb, 'SET GLOBAL read_only = OFF');
    }
  });

  it('status --json has the documented fields and reports the fence as not persistent', async () => {
    expect((await on()).code).toBe(0);
    try {
      const r = await cli(['--state-dir', stateDir, 'readonly', 'status', sb.url('shop'), '--json'], env);
      expect(r.code, r.err).toBe(0);
      const s = r.json() as {
        ok: boolean;
        action: string;
        engine: string;
        server: string;
        version: string;
        warnings: string[];
        scopes: Array<{ scope: string; setting: string; readOnly: boolean; persistent: boolean; sessions: number; couldWrite: unknown[]; recorded?: { mode: string; fencedAt: string; lockedRoles: string[] } }>;
      };
      expect(s).toMatchObject({ ok: true, action: 'status', engine: 'mariadb' });
      expect(s.server).toBe(sb.url('shop'));
      expect(s.version).toMatch(/MariaDB/);
      expect(s.scopes).toHaveLength(1);
      expect(s.scopes[0]).toMatchObject({ scope: 'server', setting: 'read_only=ON', readOnly: true, persistent: false });
      expect(typeof s.scopes[0]!.sessions).toBe('number');
      expect(Array.isArray(s.scopes[0]!.couldWrite)).toBe(true);
      expect(s.scopes[0]!.recorded).toMatchObject({ mode: 'enforced', lockedRoles: [] });
      expect(s.warnings.join('\n')).toMatch(/no SET PERSIST/);
    } finally {
      expect((await off()).code).toBe(0);
    }
  });

  it('on warns that MariaDB drops the fence on restart, and a restart indeed drops it', async () => {
    const r = await on('--json');
    expect(r.code, r.err).toBe(0);
    const result = r.json() as { persistent: boolean; warnings: string[] };
    expect(result.persistent).toBe(false);
    expect(result.warnings.join('\n')).toMatch(/restart drops this fence/);
    await sb.restart();
    expect(await readOnly(sb)).toBe(0);
    expect((await off()).code).toBe(0);
  });
});
