import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { startMysqlContainer } from '../helpers/container-provider.js';
import { cli } from '../helpers/mariadb.js';

// The one test that skips even under CI=true: it needs Docker and an image registry, which CI here lacks.
const started = await startMysqlContainer({ image: 'mysql:8.4' });
if (!started.ok) console.warn(`SKIP MySQL 8 container tests: ${started.reason}`);
const sb = started.ok ? started.sandbox : undefined;

describe.skipIf(!sb)('MySQL 8.4 (testcontainers): super_read_only, SET PERSIST, ALTER SCHEMA READ ONLY', () => {
  afterAll(async () => {
    await sb?.stop();
  });

  async function query(sql: string): Promise<mysql.RowDataPacket[]> {
    const c = await mysql.createConnection({ host: sb!.host, port: sb!.port, user: 'root', password: sb!.password });
    try {
      return (await c.query<mysql.RowDataPacket[]>(sql))[0];
    } finally {
      await c.end();
    }
  }

  it('server scope sets read_only and super_read_only persistently, and off restores exactly', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'cutover-state-'));
    const env = { MYSQL_PWD: sb!.password };
    try {
      const on = await cli(['--state-dir', stateDir, 'readonly', 'on', sb!.url(), '--drain-timeout', '500ms', '--json'], env);
      expect(on.code, on.err).toBe(0);
      expect((on.json() as { persistent: boolean }).persistent).toBe(true);
      const v = await query('SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.super_read_only AS sro');
      expect([Number(v[0]!.ro), Number(v[0]!.sro)]).toEqual([1, 1]);
      const persisted = await query(`SELECT VARIABLE_NAME AS n, VARIABLE_VALUE AS v FROM performance_schema.persisted_variables WHERE VARIABLE_NAME IN ('read_only','super_read_only') ORDER BY 1`);
      expect(persisted.map((r) => `${r.n}=${r.v}`)).toEqual(['read_only=ON', 'super_read_only=ON']);
      const off = await cli(['--state-dir', stateDir, 'readonly', 'off', sb!.url()], env);
      expect(off.code, off.err).toBe(0);
      const after = await query('SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.super_read_only AS sro');
      expect([Number(after[0]!.ro), Number(after[0]!.sro)]).toEqual([0, 0]);
      expect(await query(`SELECT * FROM performance_schema.persisted_variables WHERE VARIABLE_NAME IN ('read_only','super_read_only')`)).toEqual([]);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it('schema scope uses ALTER SCHEMA ... READ ONLY and off lifts it', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'cutover-state-'));
    const env = { MYSQL_PWD: sb!.password };
    try {
      await query('CREATE DATABASE IF NOT EXISTS shop');
      const on = await cli(['--state-dir', stateDir, 'readonly', 'on', sb!.url('shop'), '--scope', 'schema'], env);
      expect(on.code, on.err).toBe(0);
      const opts = await query(`SELECT OPTIONS AS o FROM information_schema.SCHEMATA_EXTENSIONS WHERE SCHEMA_NAME = 'shop'`);
      expect(String(opts[0]!.o)).toMatch(/READ ONLY=1/);
      expect((await cli(['--state-dir', stateDir, 'readonly', 'off', sb!.url('shop'), '--scope', 'schema'], env)).code).toBe(0);
      const after = await query(`SELECT OPTIONS AS o FROM information_schema.SCHEMATA_EXTENSIONS WHERE SCHEMA_NAME = 'shop'`);
      expect(String(after[0]!.o ?? '')).not.toMatch(/READ ONLY=1/);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
