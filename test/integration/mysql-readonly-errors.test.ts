import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/sandbox/ports.js';
import { MariadbSandbox, cli, connect, exec, mariadbMissing, readOnly } from '../helpers/mariadb.js';

describe.skipIf(mariadbMissing)('MariaDB fence errors and bounds', () => {
  let sb: MariadbSandbox;
  let stateDir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    sb = await MariadbSandbox.start();
    stateDir = await mkdtemp(join(tmpdir(), 'cutover-state-'));
    env = { MYSQL_PWD: sb.password };
    await exec(sb, 'CREATE DATABASE shop', 'CREATE TABLE shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB');
  });
  afterAll(async () => {
    await sb?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('refuses schema scope on MariaDB with exit 2 and names the alternatives', async () => {
    const r = await cli(['--state-dir', stateDir, 'readonly', 'on', sb.url('shop'), '--scope', 'schema'], env);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no schema-level read-only/);
    expect(r.err).toMatch(/--scope server/);
    expect(r.err).toMatch(/revoke/);
    expect(await readOnly(sb)).toBe(0);
  });

  it('--lock-timeout bounds the wait behind LOCK TABLES ... WRITE: an error within seconds, server left writable', async () => {
    const holder = await connect(sb);
    try {
      await holder.query('LOCK TABLES shop.t WRITE');
      const started = Date.now();
      const r = await cli(['--state-dir', stateDir, 'readonly', 'on', sb.url('shop'), '--lock-timeout', '1s'], env);
      const took = Date.now() - started;
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/could not get the lock within --lock-timeout/);
      expect(took).toBeLessThan(5_000);
      expect(await readOnly(sb)).toBe(0);
    } finally {
      await holder.query('UNLOCK TABLES');
      await holder.end();
    }
  });

  it('does not hang behind FLUSH TABLES WITH READ LOCK', async () => {
    const holder = await connect(sb);
    try {
      await holder.query('FLUSH TABLES WITH READ LOCK');
      const started = Date.now();
      const r = await cli(['--state-dir', stateDir, 'readonly', 'on', sb.url('shop'), '--lock-timeout', '1s', '--drain-timeout', '200ms', '--probe', '100ms'], env);
      // MariaDB 10.11 sets read_only at once while another session holds FTWRL (measured); either way, no hang.
      expect(Date.now() - started).toBeLessThan(5_000);
      expect([0, 1]).toContain(r.code);
    } finally {
      await holder.query('UNLOCK TABLES').catch(() => {});
      holder.destroy();
      await cli(['--state-dir', stateDir, 'readonly', 'off', sb.url('shop')], env);
    }
  });

  it('wrong password → exit 3 with one line and a fix, and the password is never printed', async () => {
    const r = await cli(['readonly', 'status', sb.url('shop'), '--json'], { MYSQL_PWD: 'Wrong-Secret-123' });
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/access denied for user "root"/);
    expect(r.err).toMatch(/fix: .*MYSQL_PWD/);
    expect((r.json() as { error: { code: string } }).error.code).toBe('auth');
    expect(r.err + r.out).not.toContain('Wrong-Secret-123');
  });

  it('unreachable server → exit 3 naming host and port', async () => {
    const port = await freePort();
    const r = await cli(['readonly', 'status', `mariadb://root@127.0.0.1:${port}/shop`], { MYSQL_PWD: 'x' });
    expect(r.code).toBe(3);
    expect(r.err).toContain(`127.0.0.1:${port}`);
    expect(r.err).toMatch(/ECONNREFUSED/);
  });

  it('an account without the privilege to set read_only → exit 3 (privilege)', async () => {
    await exec(sb, `CREATE USER 'weak'@'%' IDENTIFIED BY 'weak-pw'`, `GRANT SELECT ON shop.* TO 'weak'@'%'`);
    const r = await cli(['--state-dir', stateDir, 'readonly', 'on', sb.url('shop', 'weak'), '--json'], { MYSQL_PWD: 'weak-pw' });
    expect(r.code).toBe(3);
    expect((r.json() as { error: { code: string } }).error.code).toBe('privilege');
    expect(await readOnly(sb)).toBe(0);
  });
});
