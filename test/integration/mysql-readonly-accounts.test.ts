import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbSandbox, cli, connect, createAppUser, exec, mariadbMissing, outcome, readOnly } from '../helpers/mariadb.js';

describe.skipIf(mariadbMissing)('MariaDB accounts that bypass read_only, and strict mode', () => {
  let sb: MariadbSandbox;
  let stateDir: string;
  let env: Record<string, string>;
  const ro = (action: string, ...extra: string[]) => cli(['--state-dir', stateDir, 'readonly', action, sb.url('shop'), ...(action === 'on' ? ['--drain-timeout', '300ms', '--probe', '500ms'] : []), ...extra], env);

  beforeAll(async () => {
    sb = await MariadbSandbox.start();
    stateDir = await mkdtemp(join(tmpdir(), 'cutover-state-'));
    env = { MYSQL_PWD: sb.password };
    await exec(sb, 'CREATE DATABASE shop', 'CREATE TABLE shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB');
    await createAppUser(sb, 'app', 'app-pw', 'shop');
    await createAppUser(sb, 'batch', 'batch-pw', 'shop');
    await createAppUser(sb, 'roadmin', 'roadmin-pw', 'shop', `GRANT READ ONLY ADMIN ON *.* TO 'roadmin'@'%'`);
    await exec(sb, `CREATE USER 'dba'@'%' IDENTIFIED BY 'dba-pw'`, `GRANT ALL PRIVILEGES ON *.* TO 'dba'@'%'`);
    await exec(sb, `CREATE USER 'old'@'%' IDENTIFIED BY 'old-pw' ACCOUNT LOCK`, `GRANT ALL ON shop.* TO 'old'@'%'`);
    await exec(sb, 'CREATE ROLE bypass_role', 'GRANT READ ONLY ADMIN ON *.* TO bypass_role', `CREATE USER 'viarole'@'%' IDENTIFIED BY 'v-pw'`, `GRANT bypass_role TO 'viarole'@'%'`);
  });
  afterAll(async () => {
    await sb?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('status and on list READ ONLY ADMIN, ALL PRIVILEGES and role-granted accounts as warnings, not plain app accounts', async () => {
    const status = await ro('status', '--json');
    expect(status.code, status.err).toBe(0);
    const s = status.json() as { warnings: string[]; scopes: Array<{ couldWrite: Array<{ id: string }> }> };
    const ids = s.scopes[0]!.couldWrite.map((w) => w.id);
    expect(ids).toEqual(expect.arrayContaining(['roadmin@%', 'dba@%', 'viarole@%', 'root@127.0.0.1']));
    expect(ids).not.toContain('app@%');
    const warning = s.warnings.find((w) => /READ_ONLY ADMIN/.test(w));
    expect(warning).toMatch(/roadmin@%/);
    expect(warning).toMatch(/dba@%/);
    expect(warning).toMatch(/viarole@% \(via role bypass_role\)/);

    const on = await ro('on', '--json');
    expect(on.code, on.err).toBe(0);
    const result = on.json() as { warnings: string[] };
    expect(result.warnings.join('\n')).toMatch(/roadmin@%.*dba@%|dba@%.*roadmin@%/);
    expect((await ro('off')).code).toBe(0);
  });

  it('an ALL PRIVILEGES account really writes through read_only (the reason it is listed)', async () => {
    expect((await ro('on')).code).toBe(0);
    const dba = await connect(sb, { user: 'dba', password: 'dba-pw' });
    const app = await connect(sb, { user: 'app', password: 'app-pw' });
    try {
      expect(await outcome(dba.query('INSERT INTO shop.t (v) VALUES (1)'))).toBe('ok');
      expect(await outcome(app.query('INSERT INTO shop.t (v) VALUES (1)'))).toBe(1290);
    } finally {
      dba.destroy();
      app.destroy();
      expect((await ro('off')).code).toBe(0);
    }
  });

  it('leak check fails with exit 5 and names the session when a READ ONLY ADMIN client keeps writing', async () => {
    let stop = false;
    const writes: number[] = [];
    // A client that reconnects after being killed, as a pool would.
    const writer = (async () => {
      let c: mysql.Connection | undefined;
      while (!stop) {
        try {
          c ??= await connect(sb, { user: 'roadmin', password: 'roadmin-pw' });
          await c.query('INSERT INTO shop.t (v) VALUES (2)');
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
      const r = await ro('on', '--json');
      expect(r.code, r.err).toBe(5);
      expect(r.err).toMatch(/leak check failed/);
      const doc = r.json() as { ok: boolean; error: { code: string }; result: { leakCheck: { clean: boolean; writers: Array<{ user: string }> } } };
      expect(doc.ok).toBe(false);
      expect(doc.error.code).toBe('leak');
      expect(doc.result.leakCheck.clean).toBe(false);
      expect(doc.result.leakCheck.writers.map((w) => w.user)).toContain('roadmin');
      // The fence stays on after a failed leak check.
      expect(await readOnly(sb)).toBe(1);
    } finally {
      stop = true;
      await writer;
      expect((await ro('off')).code).toBe(0);
    }
  });

  it('strict locks the --role accounts (they cannot connect) and off unlocks exactly those that were unlocked', async () => {
    const before = await connect(sb, { user: 'app', password: 'app-pw' });
    const on = await ro('on', '--mode', 'strict', '--role', 'app', '--role', 'batch@%', '--role', 'old', '--json');
    expect(on.code, on.err).toBe(0);
    const result = on.json() as { lockedRoles: string[]; terminated: Array<{ user: string }> };
    expect(result.lockedRoles.sort()).toEqual(['app@%', 'batch@%', 'old@%']);
    // The session that predates the lock is ended too: ACCOUNT LOCK only stops new logins.
    expect(result.terminated.map((t) => t.user)).toContain('app');
    expect(await outcome(before.query('SELECT 1'))).not.toBe('ok');
    before.destroy();
    expect(await outcome(connect(sb, { user: 'app', password: 'app-pw' }))).toBe(4151);
    expect(await outcome(connect(sb, { user: 'batch', password: 'batch-pw' }))).toBe(4151);

    const status = await ro('status', '--json');
    const st = status.json() as { scopes: Array<{ recorded?: { lockedRoles: string[] } }> };
    expect(st.scopes[0]!.recorded!.lockedRoles.sort()).toEqual(['app@%', 'batch@%', 'old@%']);

    const off = await ro('off', '--json');
    expect(off.code, off.err).toBe(0);
    expect((off.json() as { unlockedRoles: string[] }).unlockedRoles.sort()).toEqual(['app@%', 'batch@%']);
    const app = await connect(sb, { user: 'app', password: 'app-pw' });
    await app.end();
    expect(await outcome(connect(sb, { user: 'old', password: 'old-pw' }))).toBe(4151);
  });

  it('strict refuses to lock the account the tool connects as, and --role without strict', async () => {
    const self = await ro('on', '--mode', 'strict', '--role', 'root@127.0.0.1');
    expect(self.code).toBe(2);
    expect(self.err).toMatch(/refusing to lock account root@127\.0\.0\.1/);
    const noStrict = await ro('on', '--role', 'app');
    expect(noStrict.code).toBe(2);
    expect(await readOnly(sb)).toBe(0);
  });
});
