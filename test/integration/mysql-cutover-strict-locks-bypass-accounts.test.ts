import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findHaproxy } from '../../adapters/routers/haproxy-sandbox.js';
import { missing } from '../helpers/availability.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { connect, exec, mariadbMissing } from '../helpers/mariadb.js';
import { haproxyPort, mysqlMissingOn, seedMysqlDatabase, sleep, startCutoverEnv, workloadThroughHaproxy, writeMysqlPlan, type MariadbEnv } from '../helpers/cutover-env.js';

const unavailable = mariadbMissing ?? (await missing('HAProxy (haproxy)', () => findHaproxy()));

async function locked(e: MariadbEnv, account: string): Promise<boolean> {
  const c = await connect(e.src);
  try {
    const [rows] = await c.query(`SHOW CREATE USER ${account}`);
    return /ACCOUNT LOCK/i.test(String(Object.values((rows as Record<string, unknown>[])[0]!)[0]));
  } finally {
    await c.end();
  }
}

describe.skipIf(unavailable)('MariaDB cutover, readOnly.mode strict: accounts that bypass read_only are locked for the window', () => {
  let e: MariadbEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
    stateDir = await tempStateDir(e.src.dir);
    await seedMysqlDatabase(e, 'shop', 500);
    await exec(e.src, "CREATE USER 'ops'@'%' IDENTIFIED BY 'ops-pw'", "GRANT READ ONLY ADMIN ON *.* TO 'ops'@'%'", "CREATE USER 'oldops'@'%' IDENTIFIED BY 'x' ACCOUNT LOCK", "GRANT ALL ON *.* TO 'oldops'@'%'");
  });
  afterAll(async () => e?.stop());

  it('run ends their sessions and locks them (and the app account), not its own; off unlocks exactly those that were unlocked', async () => {
    const plan = await writeMysqlPlan(e, { db: 'shop', stateDir, extra: 'readOnly: { mode: strict, roles: [app], drainTimeout: 2s }' });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    const ops = await connect(e.src, { user: 'ops', password: 'ops-pw' });
    const opsThread = ops.threadId;
    const writers = workloadThroughHaproxy(e, 'shop', 2);
    let run;
    try {
      await sleep(300);
      run = await cli(['run', plan, '--yes', '--json'], e.env);
      await sleep(300);
    } finally {
      var w = await writers.stop();
      ops.destroy();
    }
    expect(run.code, run.err).toBe(0);
    const report = run.json();
    expect(report.warnings.join('\n')).toMatch(/strict mode locked .*ops@%/);
    expect(await haproxyPort(e)).toBe(e.dst.port);
    expect(await mysqlMissingOn(e.dst, 'shop', w)).toEqual([]);
    // The bypass account's session is gone, and the account cannot log in to the fenced source.
    const c = await connect(e.src);
    const [alive] = await c.query('SELECT ID FROM information_schema.PROCESSLIST WHERE ID = ?', [opsThread]);
    await c.end();
    expect(alive).toEqual([]);
    expect(await locked(e, "'ops'@'%'")).toBe(true);
    expect(await locked(e, "'app'@'%'")).toBe(true);
    // Never the account the tool itself connects as.
    const me = await connect(e.src);
    const [who] = await me.query('SELECT CURRENT_USER() AS me');
    await me.end();
    const [user, host] = String((who as Array<{ me: string }>)[0]!.me).split('@');
    expect(await locked(e, `'${user}'@'${host}'`)).toBe(false);
    await expect(connect(e.src, { user: 'ops', password: 'ops-pw' })).rejects.toMatchObject({ errno: 4151 });

    const off = await cli(['readonly', 'off', `mariadb://root@127.0.0.1:${e.src.port}/shop`, '--password-env', 'SRC_PW', '--state-dir', stateDir, '--json'], e.env);
    expect(off.code, off.err).toBe(0);
    expect(off.json().unlockedRoles).toEqual(expect.arrayContaining(['app@%', 'ops@%']));
    expect(off.json().unlockedRoles).not.toContain('oldops@%');
    expect(await locked(e, "'ops'@'%'")).toBe(false);
    expect(await locked(e, "'app'@'%'")).toBe(false);
    expect(await locked(e, "'oldops'@'%'")).toBe(true);
  });
});
