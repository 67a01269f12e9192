import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, createManagedAdmin, createManagedDatabase, providerSession, type ManagedAdmin } from '../../adapters/postgres/postgres-managed-profile.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { PostgresSandbox, client, exec, pg15Missing } from '../helpers/pg.js';

/**
 * `readonly` as a managed service's admin (no superuser, ALTER SYSTEM refused, a provider superuser session it
 * cannot end): database scope by ALTER DATABASE, sessions ended through pg_signal_backend, the provider's session
 * named and left, server scope and strict-with-a-provider-session refused before anything changes.
 */
describe.skipIf(pg15Missing)('readonly with privileges: managed (PostgreSQL)', () => {
  let sb: PostgresSandbox;
  let admin: ManagedAdmin;
  let stateDir: string;
  const env = { ADMIN_PW: 'Adm:in/pw%1' };
  const url = (db: string) => `postgres://${admin.user}@127.0.0.1:${sb.port}/${db}`;
  const ro = (action: string, db: string, ...extra: string[]) => cli(['readonly', action, url(db), '--password-env', 'ADMIN_PW', '--state-dir', stateDir, '--probe', '200ms', '--drain-timeout', '300ms', ...extra], env);
  const app = (db = 'shop') => client(sb, { database: db, user: 'app', password: 'app-pw', application: 'shop-app' });
  const dbSetting = async (db: string) => {
    const c = await client(sb);
    const { rows } = await c.query(`SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = $1) AND setrole = 0`, [db]);
    await c.end();
    return rows[0]?.setconfig ?? null;
  };

  beforeAll(async () => {
    sb = await PostgresSandbox.start({ major: 15 });
    stateDir = await tempStateDir(sb.dir);
    admin = await createManagedAdmin(sb, env.ADMIN_PW);
    await createManagedDatabase(sb, 'shop', admin);
    const a = await adminClient(sb, admin, 'shop');
    await a.query(`CREATE TABLE t (id int)`);
    await a.query(`CREATE ROLE app LOGIN PASSWORD 'app-pw'`);
    await a.query(`GRANT INSERT, SELECT ON t TO app`);
    await a.end();
    await exec(sb, 'postgres', 'CREATE DATABASE foreign_db');
  }, 120_000);
  afterAll(async () => sb?.stop());

  it('ALTER SYSTEM is refused to the admin (the profile is really not a superuser)', async () => {
    const a = await adminClient(sb, admin, 'shop');
    await expect(a.query(`ALTER SYSTEM SET work_mem = '8MB'`)).rejects.toMatchObject({ code: '42501' });
    await a.end();
  });

  it('on/status/off at database scope: app sessions ended, the provider session named and left running', async () => {
    const early = await app();
    const provider = await providerSession(sb, 'shop');
    try {
      await early.query('INSERT INTO t VALUES (1)');
      const on = await ro('on', 'shop', '--json');
      expect(on.err).toBe('');
      expect(on.code).toBe(0);
      const r = on.json();
      expect(r.terminated.map((s: { application?: string }) => s.application)).toEqual(['shop-app']);
      expect(r.untouched).toEqual([expect.objectContaining({ user: 'postgres', application: 'provider agent' })]);
      expect(r.warnings.join('\n')).toMatch(/superuser session this account cannot end/);
      expect(r.leakCheck).toMatchObject({ clean: true, method: 'decoded' });
      await expect(early.query('INSERT INTO t VALUES (2)')).rejects.toThrow();
      const late = await app();
      await expect(late.query('INSERT INTO t VALUES (3)')).rejects.toMatchObject({ code: '25006' });
      await late.end();
      expect(await provider.query('SELECT 1')).toBeTruthy();

      const st = await ro('status', 'shop', '--json', '--scope', 'database');
      expect(st.code).toBe(0);
      expect(st.json().scopes[0]).toMatchObject({ scope: 'database', name: 'shop' });
      // pg_monitor shows the admin every session: status hides nothing from it.
      expect(st.json().warnings.join('\n')).not.toMatch(/may be hidden/);
      expect(JSON.stringify(st.json().scopes[0])).toMatch(/"effective":"on"|"on"/);
    } finally {
      await early.end().catch(() => {});
      await provider.end();
    }
    const off = await ro('off', 'shop');
    expect(off.code).toBe(0);
    expect(await dbSetting('shop')).toBeNull();
    const after = await app();
    await after.query('INSERT INTO t VALUES (4)');
    await after.end();
  });

  it('strict refuses to fence while a provider session could write, and changes nothing', async () => {
    const provider = await providerSession(sb, 'shop');
    try {
      const r = await ro('on', 'shop', '--mode', 'strict', '--role', 'app');
      expect(r.code).toBe(3);
      expect(r.err).toMatch(/strict mode refuses to fence: 1 superuser session\(s\).*user postgres, provider agent/);
      expect(await dbSetting('shop')).toBeNull();
      const c = await app();
      await c.query('INSERT INTO t VALUES (5)');
      await c.end();
    } finally {
      await provider.end();
    }
  });

  it('strict without provider sessions locks the app role and off gives its login back', async () => {
    const on = await ro('on', 'shop', '--mode', 'strict', '--role', 'app', '--json');
    expect(on.code).toBe(0);
    expect(on.json().lockedRoles).toEqual(['app']);
    await expect(app()).rejects.toThrow(/not permitted to log in/);
    expect((await ro('off', 'shop')).code).toBe(0);
    const c = await app();
    await c.query('INSERT INTO t VALUES (6)');
    await c.end();
  });

  it('role scope: ALTER ROLE app SET by the admin that made the role; app sessions ended, new ones read-only; off restores', async () => {
    const roleSetting = async () => {
      const c = await client(sb);
      const { rows } = await c.query(`SELECT setconfig FROM pg_db_role_setting WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = 'app') AND setdatabase = 0`);
      await c.end();
      return rows[0]?.setconfig ?? null;
    };
    const early = await app();
    try {
      await early.query('INSERT INTO t VALUES (10)');
      const on = await ro('on', 'shop', '--scope', 'role', '--name', 'app', '--json');
      expect(on.code, on.err).toBe(0);
      expect(on.json().terminated.map((x: { application?: string }) => x.application)).toEqual(['shop-app']);
      expect(await roleSetting()).toEqual(['default_transaction_read_only=on']);
      await expect(early.query('INSERT INTO t VALUES (11)')).rejects.toThrow();
      const late = await app();
      await expect(late.query('INSERT INTO t VALUES (12)')).rejects.toMatchObject({ code: '25006' });
      await late.end();
      // Another role of the same database is not fenced by a role scope.
      const a = await adminClient(sb, admin, 'shop');
      await a.query('INSERT INTO t VALUES (13)');
      await a.end();
    } finally {
      await early.end().catch(() => {});
    }
    const off = await ro('off', 'shop', '--scope', 'role', '--name', 'app');
    expect(off.code, off.err).toBe(0);
    expect(await roleSetting()).toBeNull();
    const c = await app();
    await c.query('INSERT INTO t VALUES (14)');
    await c.end();
  });

  it('schema scope: trigger fence on the tables the admin owns; writes refused, reads go on, off drops it', async () => {
    const a = await adminClient(sb, admin, 'shop');
    await a.query('CREATE SCHEMA IF NOT EXISTS sales');
    await a.query('CREATE TABLE IF NOT EXISTS sales.orders (id int)');
    await a.query('GRANT USAGE ON SCHEMA sales TO app');
    await a.query('GRANT INSERT, SELECT ON sales.orders TO app');
    await a.end();
    const on = await ro('on', 'shop', '--scope', 'schema', '--name', 'sales', '--json');
    expect(on.code, on.err).toBe(0);
    const c = await app();
    try {
      await expect(c.query('INSERT INTO sales.orders VALUES (1)')).rejects.toThrow();
      expect((await c.query('SELECT count(*)::int AS n FROM sales.orders')).rows[0].n).toBe(0);
      // Outside the schema the app writes on.
      await c.query('INSERT INTO t VALUES (20)');
    } finally {
      await c.end();
    }
    const off = await ro('off', 'shop', '--scope', 'schema', '--name', 'sales');
    expect(off.code, off.err).toBe(0);
    const d = await app();
    await d.query('INSERT INTO sales.orders VALUES (2)');
    await d.end();
  });

  it('server scope is refused with the reason and the alternative', async () => {
    const r = await ro('on', 'shop', '--scope', 'server');
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/server scope needs ALTER SYSTEM/);
    expect(r.err).toMatch(/scope: database/);
  });

  it('a database the admin does not own is refused, naming the owner and how to change it', async () => {
    const r = await ro('on', 'foreign_db');
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/lacks ownership of database "foreign_db" \(owner: postgres\)/);
    expect(r.err).toMatch(/ALTER DATABASE <db> OWNER TO <admin>/);
  });

  it('privileges: superuser on an admin account is refused', async () => {
    const r = await ro('on', 'shop', '--privileges', 'superuser');
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/is not a superuser/);
    expect(await dbSetting('shop')).toBeNull();
  });
});
