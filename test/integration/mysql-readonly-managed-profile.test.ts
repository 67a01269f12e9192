import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManagedAdmin } from '../../adapters/mysql/mariadb-managed-profile.js';
import { MariadbSandbox, cli, connect, exec, mariadbMissing, outcome, readOnly } from '../helpers/mariadb.js';

/** Grants and lock state of the accounts, as the server prints them: `off` must give back exactly these. */
async function accountState(sb: MariadbSandbox, ...accounts: string[]): Promise<Record<string, string[]>> {
  const c = await connect(sb);
  try {
    const out: Record<string, string[]> = {};
    for (const a of accounts) {
      const [grants] = await c.query<mysql.RowDataPacket[]>(`SHOW GRANTS FOR ${a}`);
      const [create] = await c.query<mysql.RowDataPacket[]>(`SHOW CREATE USER ${a}`);
      out[a] = [...grants.map((r) => String(Object.values(r)[0])).sort(), /ACCOUNT LOCK/.test(String(Object.values(create[0]!)[0])) ? 'LOCKED' : 'UNLOCKED'];
    }
    return out;
  } finally {
    await c.end();
  }
}

describe.skipIf(mariadbMissing)('MariaDB 10.11 managed profile: an admin without SUPER / READ_ONLY ADMIN fences by locking and revoking', () => {
  let sb: MariadbSandbox;
  let stateDir: string;
  let env: Record<string, string>;
  const ADMIN_PW = 'Adm:pw/9%';
  const url = () => sb.url('shop', 'cutover_admin');
  const ro = (action: string, ...extra: string[]) => cli(['--state-dir', stateDir, 'readonly', action, url(), ...(action === 'on' ? ['--drain-timeout', '300ms', '--probe', '500ms'] : []), ...extra], env);
  const ACCOUNTS = ["'app'@'%'", "'batch'@'10.%'", "'old'@'%'"];

  beforeAll(async () => {
    sb = await MariadbSandbox.start();
    stateDir = await mkdtemp(join(tmpdir(), 'cutover-state-'));
    await createManagedAdmin(sb, ADMIN_PW);
    env = { MYSQL_PWD: ADMIN_PW };
    await exec(
      sb,
      'CREATE DATABASE shop',
      'CREATE TABLE shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT, note VARCHAR(20)) ENGINE=InnoDB',
      'CREATE DATABASE other',
      'CREATE TABLE other.x (id INT PRIMARY KEY, c INT) ENGINE=InnoDB',
      `CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'`,
      `GRANT ALL ON shop.* TO 'app'@'%'`,
      `GRANT SELECT, INSERT ON other.x TO 'app'@'%'`,
      `GRANT UPDATE (c) ON other.x TO 'app'@'%'`,
      `CREATE USER 'batch'@'10.%' IDENTIFIED BY 'b-pw'`,
      `GRANT INSERT, UPDATE, SELECT ON *.* TO 'batch'@'10.%'`,
      `CREATE USER 'old'@'%' IDENTIFIED BY 'old-pw' ACCOUNT LOCK`,
      `GRANT ALL ON shop.* TO 'old'@'%'`,
    );
  }, 120_000);
  afterAll(async () => {
    await sb?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('the managed admin cannot set read_only (the reason this profile exists)', async () => {
    const c = await connect(sb, { user: 'cutover_admin', password: ADMIN_PW });
    try {
      expect(await outcome(c.query('SET GLOBAL read_only = ON'))).toBe(1227);
    } finally {
      await c.end();
    }
  });

  it('without application accounts to lock, on refuses with the fix and changes nothing', async () => {
    const before = await accountState(sb, ...ACCOUNTS);
    const r = await ro('on', '--scope', 'server');
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/READ_ONLY ADMIN/);
    expect(r.err).toMatch(/mode: strict, roles/);
    expect(await accountState(sb, ...ACCOUNTS)).toEqual(before);
  });

  it('on locks and revokes, ends the app sessions (an open write transaction does not commit), status says fenced, off restores exactly', async () => {
    const before = await accountState(sb, ...ACCOUNTS);
    const app = await connect(sb, { user: 'app', password: 'app-pw' });
    await app.query('USE shop');
    await app.query('BEGIN');
    await app.query(`INSERT INTO t (v, note) VALUES (1, 'in-flight')`);
    const on = await ro('on', '--scope', 'server', '--mode', 'strict', '--role', 'app', '--role', 'batch', '--role', 'old', '--drain-timeout', '200ms', '--json');
    expect(on.code, on.err).toBe(0);
    const r = on.json() as { lockedRoles: string[]; terminated: Array<{ user: string }>; leakCheck: { clean: boolean; method: string }; persistent: boolean };
    expect(r.lockedRoles.sort()).toEqual(['app@%', 'batch@10.%', 'old@%']);
    expect(r.terminated.map((t) => t.user)).toContain('app');
    expect(r.leakCheck).toMatchObject({ clean: true, method: 'position' });
    expect(r.persistent).toBe(true);
    // read_only is untouched: the admin could not set it, and nobody asked it to.
    expect(await readOnly(sb)).toBe(0);
    // The killed session's transaction rolled back; its COMMIT fails.
    expect(await outcome(app.query('COMMIT'))).not.toBe('ok');
    app.destroy();
    // A new login of a locked account is refused (4151: account is locked).
    expect(await outcome(connect(sb, { user: 'app', password: 'app-pw' }))).toBe(4151);
    const during = await accountState(sb, ...ACCOUNTS);
    expect(during["'app'@'%'"]).toEqual(expect.arrayContaining(['LOCKED']));
    expect(during["'app'@'%'"]!.join('\n')).not.toMatch(/INSERT|UPDATE|ALL PRIVILEGES/);
    expect(during["'batch'@'10.%'"]!.join('\n')).not.toMatch(/INSERT|UPDATE/);

    const status = await ro('status', '--scope', 'server', '--json');
    expect(status.code, status.err).toBe(0);
    const st = status.json() as { scopes: Array<{ readOnly: boolean; setting: string; recorded?: { lockedRoles: string[] } }> };
    expect(st.scopes[0]).toMatchObject({ readOnly: true, setting: expect.stringMatching(/managed profile/) });
    expect(st.scopes[0]!.recorded?.lockedRoles.sort()).toEqual(['app@%', 'batch@10.%', 'old@%']);

    // A second `on` keeps the first record: `off` still restores the state before the first.
    const again = await ro('on', '--scope', 'server', '--mode', 'strict', '--role', 'app');
    expect(again.code, again.err).toBe(0);

    const off = await ro('off', '--scope', 'server', '--json');
    expect(off.code, off.err).toBe(0);
    expect((off.json() as { unlockedRoles: string[] }).unlockedRoles.sort()).toEqual(['app@%', 'batch@10.%']);
    // Exactly as before, `old` locked as it was.
    expect(await accountState(sb, ...ACCOUNTS)).toEqual(before);
    const back = await connect(sb, { user: 'app', password: 'app-pw' });
    try {
      await back.query(`INSERT INTO shop.t (v) VALUES (2)`);
      const [rows] = await back.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM shop.t WHERE note = 'in-flight'`);
      expect(Number(rows[0]!.n)).toBe(0);
    } finally {
      await back.end();
    }
  });

  it('an admin that could revoke but not grant back a privilege is refused before anything changes (exit 3)', async () => {
    await exec(
      sb,
      `CREATE USER 'weak'@'%' IDENTIFIED BY 'weak-pw'`,
      `GRANT SELECT, CREATE USER, PROCESS, CONNECTION ADMIN, BINLOG MONITOR ON *.* TO 'weak'@'%' WITH GRANT OPTION`,
      `GRANT INSERT, UPDATE, DELETE ON shop.* TO 'weak'@'%' WITH GRANT OPTION`,
    );
    const before = await accountState(sb, ...ACCOUNTS);
    const r = await cli(['--state-dir', stateDir, 'readonly', 'on', sb.url('shop', 'weak'), '--scope', 'server', '--mode', 'strict', '--role', 'app'], { MYSQL_PWD: 'weak-pw' });
    expect(r.code, r.err).toBe(3);
    expect(r.err).toMatch(/could revoke but not grant back .*INSERT/);
    expect(await accountState(sb, ...ACCOUNTS)).toEqual(before);
  });

  it('an admin without CONNECTION ADMIN ends the app sessions through the provider procedure mysql.rds_kill (RDS-like)', async () => {
    const grants = `SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, REFERENCES, INDEX, ALTER, LOCK TABLES, EXECUTE, CREATE VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER, DELETE HISTORY, CREATE USER, PROCESS, REPLICATION CLIENT`;
    await exec(
      sb,
      `CREATE USER 'rdsadm'@'%' IDENTIFIED BY 'rds-pw'`,
      `GRANT ${grants} ON *.* TO 'rdsadm'@'%' WITH GRANT OPTION`,
      // What the provider installs: a definer procedure its admin may EXECUTE.
      `CREATE DEFINER = 'root'@'localhost' PROCEDURE mysql.rds_kill(IN thread BIGINT) SQL SECURITY DEFINER KILL CONNECTION thread`,
    );
    const before = await accountState(sb, "'app'@'%'");
    const app = await connect(sb, { user: 'app', password: 'app-pw' });
    const [[who]] = (await app.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
    // Without the procedure this admin could not end another account's session.
    const direct = await connect(sb, { user: 'rdsadm', password: 'rds-pw' });
    try {
      expect(await outcome(direct.query(`KILL CONNECTION ${who.id}`))).toBe(1095);
    } finally {
      await direct.end();
    }
    const rds = (action: string, ...extra: string[]) => cli(['--state-dir', stateDir, 'readonly', action, sb.url('shop', 'rdsadm'), '--scope', 'server', ...extra], { MYSQL_PWD: 'rds-pw' });
    const on = await rds('on', '--mode', 'strict', '--role', 'app', '--drain-timeout', '200ms', '--probe', '300ms', '--json');
    expect(on.code, on.err).toBe(0);
    expect((on.json() as { terminated: Array<{ id: string }> }).terminated.map((t) => t.id)).toContain(String(who.id));
    expect(await outcome(app.query('SELECT 1'))).not.toBe('ok');
    app.destroy();
    const off = await rds('off');
    expect(off.code, off.err).toBe(0);
    expect(await accountState(sb, "'app'@'%'")).toEqual(before);
    await exec(sb, 'DROP PROCEDURE mysql.rds_kill');
  });

  it('auto keeps the superuser profile for root: read_only, nothing revoked', async () => {
    const before = await accountState(sb, ...ACCOUNTS);
    const on = await cli(['--state-dir', stateDir, 'readonly', 'on', sb.url('shop'), '--scope', 'server', '--drain-timeout', '300ms', '--probe', '300ms'], { MYSQL_PWD: sb.password });
    expect(on.code, on.err).toBe(0);
    expect(await readOnly(sb)).toBe(1);
    expect(await accountState(sb, ...ACCOUNTS)).toEqual(before);
    const off = await cli(['--state-dir', stateDir, 'readonly', 'off', sb.url('shop'), '--scope', 'server'], { MYSQL_PWD: sb.password });
    expect(off.code, off.err).toBe(0);
    expect(await readOnly(sb)).toBe(0);
  });
});
