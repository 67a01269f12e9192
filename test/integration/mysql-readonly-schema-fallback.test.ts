import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbSandbox, cli, connect, exec, mariadbMissing, outcome, readOnly } from '../helpers/mariadb.js';

/** An account name and a schema name that need quoting everywhere the tool builds SQL. */
const ODD_USER = "o'dd`user";
const ODD_SCHEMA = "sh'o`p";
const oddSchema = "`sh'o``p`";

describe.skipIf(mariadbMissing)('MariaDB schema scope by revoking write privileges (--mode strict --role)', () => {
  let sb: MariadbSandbox;
  let stateDir: string;
  let env: Record<string, string>;
  const ro = (action: string, schema: string, ...extra: string[]) =>
    cli(['--state-dir', stateDir, 'readonly', action, sb.url(), '--scope', 'schema', '--name', schema, ...(action === 'on' ? ['--drain-timeout', '300ms', '--probe', '500ms'] : []), ...extra], env);

  async function grantsOf(account: string): Promise<string[]> {
    const c = await connect(sb);
    try {
      const [rows] = await c.query<mysql.RowDataPacket[]>(`SHOW GRANTS FOR ${account}`);
      return rows.map((r) => String(Object.values(r)[0])).sort();
    } finally {
      await c.end();
    }
  }

  beforeAll(async () => {
    sb = await MariadbSandbox.start();
    stateDir = await mkdtemp(join(tmpdir(), 'cutover-state-'));
    env = { MYSQL_PWD: sb.password };
    await exec(
      sb,
      'CREATE DATABASE shop',
      'CREATE DATABASE other',
      `CREATE DATABASE ${oddSchema}`,
      'CREATE TABLE shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB',
      'CREATE TABLE other.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB',
      `CREATE TABLE ${oddSchema}.\`t'1\` (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB`,
      `CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'`,
      `GRANT ALL ON shop.* TO 'app'@'%'`,
      `GRANT ALL ON other.* TO 'app'@'%'`,
      `GRANT SELECT, INSERT ON ${oddSchema}.* TO 'app'@'%' WITH GRANT OPTION`,
      `CREATE USER 'o''dd\`user'@'%' IDENTIFIED BY 'odd-pw'`,
      `GRANT SELECT ON shop.* TO 'o''dd\`user'@'%'`,
      `GRANT INSERT, DELETE ON shop.t TO 'o''dd\`user'@'%'`,
      `GRANT UPDATE (v) ON shop.t TO 'o''dd\`user'@'%'`,
      `GRANT INSERT ON ${oddSchema}.\`t'1\` TO 'o''dd\`user'@'%'`,
      `CREATE USER 'viewer'@'%' IDENTIFIED BY 'viewer-pw'`,
      `CREATE USER 'dba'@'%' IDENTIFIED BY 'dba-pw'`,
      `GRANT ALL PRIVILEGES ON *.* TO 'dba'@'%'`,
      'CREATE ROLE shop_writer',
      'GRANT INSERT ON shop.* TO shop_writer',
      `CREATE USER 'viarole'@'%' IDENTIFIED BY 'viarole-pw'`,
      `GRANT shop_writer TO 'viarole'@'%'`,
    );
  });
  afterAll(async () => {
    await sb?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('without strict mode it is still refused, naming --mode strict --role', async () => {
    const r = await ro('on', 'shop');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no schema-level read-only/);
    expect(r.err).toMatch(/--mode strict --role/);
    const noRole = await ro('on', 'shop', '--mode', 'strict');
    expect(noRole.code).toBe(2);
    expect(await readOnly(sb)).toBe(0);
  });

  it("ends the app's session in the schema; a new session cannot write there but still writes elsewhere; off restores SHOW GRANTS exactly", async () => {
    const before = { app: await grantsOf(`'app'@'%'`), odd: await grantsOf(`'o''dd\`user'@'%'`), viewer: await grantsOf(`'viewer'@'%'`) };
    const inShop = await connect(sb, { user: 'app', password: 'app-pw' });
    await inShop.query('USE shop');
    const inOther = await connect(sb, { user: 'app', password: 'app-pw' });
    await inOther.query('USE other');

    const on = await ro('on', 'shop', '--mode', 'strict', '--role', 'app', '--role', `${ODD_USER}@%`, '--role', 'viewer', '--json');
    expect(on.code, on.err).toBe(0);
    const result = on.json() as { lockedRoles: string[]; terminated: Array<{ id: string; user: string }>; warnings: string[]; leakCheck: { clean: boolean }; persistent: boolean };
    expect(result.lockedRoles.sort()).toEqual(['app@%', `${ODD_USER}@%`]);
    expect(result.warnings.join('\n')).toMatch(/viewer@% held no write privileges/);
    expect(result.terminated.map((t) => t.id)).toEqual([String(inShop.threadId)]);
    expect(result.leakCheck.clean).toBe(true);
    expect(result.persistent).toBe(true);
    // The session that was in the schema is gone; the one in another schema still writes there.
    expect(await outcome(inShop.query('SELECT 1'))).not.toBe('ok');
    inShop.destroy();
    expect(await outcome(inOther.query('INSERT INTO other.t (v) VALUES (1)'))).toBe('ok');
    expect(await outcome(inOther.query('INSERT INTO shop.t (v) VALUES (1)'))).toBe(1142);
    inOther.destroy();

    const app = await connect(sb, { user: 'app', password: 'app-pw' });
    const odd = await connect(sb, { user: ODD_USER, password: 'odd-pw' });
    try {
      expect(await outcome(app.query('INSERT INTO shop.t (v) VALUES (2)'))).toBe(1142);
      expect(await outcome(app.query('CREATE TABLE shop.x (id INT PRIMARY KEY)'))).toBe(1142);
      expect(await outcome(app.query('SELECT COUNT(*) FROM shop.t'))).toBe('ok');
      expect(await outcome(app.query('INSERT INTO other.t (v) VALUES (2)'))).toBe('ok');
      expect(await outcome(app.query(`INSERT INTO ${oddSchema}.\`t'1\` (v) VALUES (2)`))).toBe('ok');
      expect(await outcome(odd.query('INSERT INTO shop.t (v) VALUES (3)'))).toBe(1142);
      // 1142 or 1143 (column-level): either way the column grant is gone.
      expect([1142, 1143]).toContain(await outcome(odd.query('UPDATE shop.t SET v = 4')));
      expect(await outcome(odd.query(`INSERT INTO ${oddSchema}.\`t'1\` (v) VALUES (3)`))).toBe('ok');
    } finally {
      app.destroy();
      odd.destroy();
    }

    const status = await ro('status', 'shop', '--json');
    expect(status.code, status.err).toBe(0);
    expect((status.json() as { scopes: Array<{ readOnly: boolean }> }).scopes[0]!.readOnly).toBe(true);

    const off = await ro('off', 'shop', '--json');
    expect(off.code, off.err).toBe(0);
    expect((off.json() as { unlockedRoles: string[] }).unlockedRoles.sort()).toEqual(['app@%', `${ODD_USER}@%`]);
    expect({ app: await grantsOf(`'app'@'%'`), odd: await grantsOf(`'o''dd\`user'@'%'`), viewer: await grantsOf(`'viewer'@'%'`) }).toEqual(before);
    const again = await connect(sb, { user: 'app', password: 'app-pw' });
    expect(await outcome(again.query('INSERT INTO shop.t (v) VALUES (5)'))).toBe('ok');
    again.destroy();
  });

  it('a write statement that passed its privilege check before the revoke ends before the fence position is read: the fence holds, the leak check is clean, the row is kept', async () => {
    // The app's INSERT (from another database, so ending the sessions in the schema does not reach it) passes its
    // privilege check, then waits for a table lock held by an admin session, released only once the revoke is seen.
    const admin = await connect(sb);
    await admin.query('LOCK TABLES shop.t WRITE');
    const elsewhere = await connect(sb, { user: 'app', password: 'app-pw' });
    await elsewhere.query('USE other');
    const blocked = outcome(elsewhere.query('INSERT INTO shop.t (v) VALUES (4242)'));
    await new Promise((r) => setTimeout(r, 100));
    const fencing = cli(['--state-dir', stateDir, 'readonly', 'on', sb.url(), '--scope', 'schema', '--name', 'shop', '--mode', 'strict', '--role', 'app', '--drain-timeout', '3s', '--probe', '500ms', '--json'], env);
    const deadline = Date.now() + 20_000;
    while ((await grantsOf(`'app'@'%'`)).some((g) => /ON `shop`\.\*/.test(g) && /INSERT|ALL PRIVILEGES/.test(g)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    await admin.query('UNLOCK TABLES');
    const on = await fencing;
    expect(await blocked).toBe('ok');
    await Promise.all([elsewhere.end(), admin.end()]);
    try {
      expect(on.code, on.err).toBe(0);
      expect((on.json() as { leakCheck: { clean: boolean } }).leakCheck.clean).toBe(true);
      const c = await connect(sb);
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT count(*) AS n FROM shop.t WHERE v = 4242');
      await c.end();
      expect(Number(rows[0]!.n)).toBe(1);
    } finally {
      expect((await ro('off', 'shop', '--mode', 'strict', '--role', 'app')).code).toBe(0);
    }
  });

  it('a schema whose name needs quoting: revoked and restored exactly', async () => {
    const before = await grantsOf(`'app'@'%'`);
    const on = await ro('on', ODD_SCHEMA, '--mode', 'strict', '--role', 'app');
    expect(on.code, on.err).toBe(0);
    const app = await connect(sb, { user: 'app', password: 'app-pw' });
    try {
      expect(await outcome(app.query(`INSERT INTO ${oddSchema}.\`t'1\` (v) VALUES (6)`))).toBe(1142);
      expect(await outcome(app.query('INSERT INTO shop.t (v) VALUES (6)'))).toBe('ok');
    } finally {
      app.destroy();
    }
    expect((await ro('off', ODD_SCHEMA)).code).toBe(0);
    expect(await grantsOf(`'app'@'%'`)).toEqual(before);
  });

  it('names accounts the revoke cannot stop (ALL ON *.*, a role) as warnings, and fails the leak check when one writes', async () => {
    const quiet = await ro('on', 'shop', '--mode', 'strict', '--role', 'dba', '--role', 'viarole', '--json');
    expect(quiet.code, quiet.err).toBe(0);
    const warnings = (quiet.json() as { warnings: string[] }).warnings.join('\n');
    expect(warnings).toMatch(/dba@% can still write to schema shop after the revoke: it holds .*INSERT.* ON \*\.\*/);
    expect(warnings).toMatch(/viarole@% can still write to schema shop .*SET ROLE shop_writer/);
    expect((await ro('off', 'shop')).code).toBe(0);

    let stop = false;
    const writes: number[] = [];
    // A client that reconnects after being killed, as a pool would.
    const writer = (async () => {
      let c: mysql.Connection | undefined;
      while (!stop) {
        try {
          if (!c) {
            c = await connect(sb, { user: 'dba', password: 'dba-pw' });
            await c.query('USE shop');
          }
          await c.query('INSERT INTO t (v) VALUES (7)');
          writes.push(Date.now());
        } catch {
          c?.destroy();
          c = undefined;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      c?.destroy();
    })();
    try {
      while (writes.length === 0) await new Promise((r) => setTimeout(r, 10));
      const r = await ro('on', 'shop', '--mode', 'strict', '--role', 'dba', '--json');
      expect(r.code, r.err).toBe(5);
      const doc = r.json() as { error: { code: string }; result: { leakCheck: { writers: Array<{ user: string; reason: string }> } } };
      expect(doc.error.code).toBe('leak');
      expect(doc.result.leakCheck.writers.length).toBeGreaterThan(0);
      expect(doc.result.leakCheck.writers.map((w) => `${w.user} ${w.reason}`).join('\n')).toMatch(/dba|binary log event/);
    } finally {
      stop = true;
      await writer;
      expect((await ro('off', 'shop')).code).toBe(0);
    }
    // dba held nothing on the schema itself: nothing was revoked, nothing granted back.
    expect(await grantsOf(`'dba'@'%'`)).toEqual([expect.stringMatching(/^GRANT ALL PRIVILEGES ON \*\.\* TO `dba`@`%`/)]);
  });
});
