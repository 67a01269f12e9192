import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findHaproxy } from '../../adapters/routers/haproxy-sandbox.js';
import { missing } from '../helpers/availability.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { connect, exec, mariadbMissing } from '../helpers/mariadb.js';
import { haproxyPort, seedMysqlDatabase, startCutoverEnv, writeMysqlPlan, type MariadbEnv } from '../helpers/cutover-env.js';

const haproxyMissing = await missing('HAProxy (haproxy)', () => findHaproxy());
const unavailable = mariadbMissing ?? haproxyMissing;

const SHOPPER_PW = "Sh0p'per:pw/3%";
const REPORT_PW = 'R3port:pw';

async function hashOf(sb: MariadbEnv['src'], user: string): Promise<string> {
  const c = await connect(sb);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT authentication_string AS h FROM mysql.user WHERE User = ?`, [user]);
    return String(rows[0]!.h);
  } finally {
    await c.end();
  }
}

async function accountsOn(sb: MariadbEnv['src'], users: string[]): Promise<string[]> {
  const c = await connect(sb);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT CONCAT(User, '@', Host) AS a FROM mysql.user WHERE User IN (?) ORDER BY 1`, [users]);
    return rows.map((r) => String(r.a));
  } finally {
    await c.end();
  }
}

/** Every file the run wrote to its state dir (journal, records), as one text. */
async function stateText(dir: string): Promise<string> {
  const files = await readdir(dir, { recursive: true, withFileTypes: true });
  const texts = await Promise.all(files.filter((f) => f.isFile()).map((f) => readFile(join(f.parentPath, f.name), 'utf8')));
  return texts.join('\n');
}

describe.skipIf(unavailable)("MariaDB cutover: the moved database's accounts follow it to the target", () => {
  let e: MariadbEnv;

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
  });
  afterAll(async () => e?.stop());

  it('an account that exists only on the source logs in through HAProxy after the switch with its password and writes', async () => {
    const stateDir = await tempStateDir(e.src.dir);
    await seedMysqlDatabase(e, 'shop-eu', 2000);
    await exec(
      e.src,
      `CREATE USER 'shopper'@'%' IDENTIFIED BY '${SHOPPER_PW.replace(/'/g, "''")}'`,
      "GRANT ALL ON `shop-eu`.* TO 'shopper'@'%'",
      // MariaDB roles: a table grant on a role held by another role, the account's default role.
      'CREATE ROLE eu_base',
      'GRANT SELECT ON `shop-eu`.`items` TO eu_base',
      'CREATE ROLE eu_reader',
      'GRANT eu_base TO eu_reader',
      `CREATE USER 'report'@'%' IDENTIFIED BY '${REPORT_PW}'`,
      "GRANT eu_reader TO 'report'@'%'",
      "SET DEFAULT ROLE eu_reader FOR 'report'@'%'",
      // Bypasses read_only: a finding of check and a warning of run.
      "CREATE USER 'dba'@'%' IDENTIFIED BY 'dba-pw'",
      "GRANT ALL ON *.* TO 'dba'@'%'",
    );
    const hashes = [await hashOf(e.src, 'shopper'), await hashOf(e.src, 'report'), await hashOf(e.src, 'dba')];
    const plan = await writeMysqlPlan(e, { db: 'shop-eu', stateDir });

    const check = await cli(['check', plan, '--json'], e.env);
    expect(check.code, check.err).toBe(0);
    const findings = check.json().findings as Array<{ severity: string; check: string; object?: string; message: string; fix: string }>;
    const bypass = findings.find((f) => f.check === 'read_only bypass');
    expect(bypass).toMatchObject({ severity: 'warning', message: expect.stringContaining('dba@%') });
    expect(bypass!.fix).toMatch(/readOnly\.mode: strict/);
    expect(findings.find((f) => f.check === 'accounts')).toMatchObject({ severity: 'info', object: expect.stringContaining('account shopper@%') });

    const sync = await cli(['sync', plan, '--json'], e.env);
    expect(sync.code, sync.err).toBe(0);
    // shopper, the two roles and report; app already had the same account and grants on the target.
    expect(sync.json().rolesCreated).toBe(4);
    expect(await accountsOn(e.dst, ['shopper', 'report', 'eu_base', 'eu_reader', 'dba'])).toEqual(['eu_base@', 'eu_reader@', 'report@%', 'shopper@%']);

    const run = await cli(['run', plan, '--yes', '--json'], e.env);
    expect(run.code, run.err).toBe(0);
    const report = run.json();
    expect((report.warnings as string[]).some((w) => /read_only bypass/.test(w) && w.includes('dba@%'))).toBe(true);
    expect(report.findings).toContainEqual(expect.objectContaining({ check: 'read_only bypass' }));
    expect(await haproxyPort(e)).toBe(e.dst.port);

    // Through HAProxy, now on the target, with the passwords the applications always used.
    const shopper = await connect({ host: e.haproxy!.host, port: e.haproxy!.port, password: SHOPPER_PW }, { user: 'shopper' });
    try {
      await shopper.query("INSERT INTO `shop-eu`.items (name, price) VALUES ('after the switch', 1)");
      const [server] = await shopper.query<mysql.RowDataPacket[]>('SELECT @@server_id AS id');
      expect(Number(server[0]!.id)).toBe(2);
    } finally {
      await shopper.end();
    }
    const reporter = await connect({ host: e.haproxy!.host, port: e.haproxy!.port, password: REPORT_PW }, { user: 'report' });
    try {
      const [rows] = await reporter.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM `shop-eu`.items WHERE name = 'after the switch'");
      expect(Number(rows[0]!.n)).toBe(1);
      await expect(reporter.query("INSERT INTO `shop-eu`.items (name) VALUES ('x')")).rejects.toMatchObject({ errno: 1142 });
    } finally {
      await reporter.end();
    }

    const everything = [check.out, check.err, sync.out, sync.err, run.out, run.err, await stateText(stateDir)].join('\n');
    for (const h of hashes) expect(everything).not.toContain(h);
    expect(everything).not.toContain(SHOPPER_PW);
  });

  it('an account that exists on the target with another password or other grants blocks check, named, without its hash', async () => {
    const stateDir = await tempStateDir(e.src.dir);
    await seedMysqlDatabase(e, 'shop_us', 100);
    await exec(
      e.src,
      "CREATE USER 'clerk'@'%' IDENTIFIED BY 'clerk-source'",
      "GRANT ALL ON `shop\\_us`.* TO 'clerk'@'%'",
      "CREATE USER 'auditor'@'%' IDENTIFIED BY 'same'",
      "GRANT SELECT, INSERT ON `shop\\_us`.* TO 'auditor'@'%'",
    );
    await exec(
      e.dst,
      "CREATE USER 'clerk'@'%' IDENTIFIED BY 'clerk-target'",
      "GRANT ALL ON `shop\\_us`.* TO 'clerk'@'%'",
      "CREATE USER 'auditor'@'%' IDENTIFIED BY 'same'",
      "GRANT SELECT ON `shop\\_us`.* TO 'auditor'@'%'",
    );
    const plan = await writeMysqlPlan(e, { db: 'shop_us', stateDir, router: false });
    const check = await cli(['check', plan, '--json'], e.env);
    expect(check.code).toBe(3);
    const findings = check.json().findings as Array<{ severity: string; check: string; object?: string; message: string }>;
    expect(findings).toContainEqual(
      expect.objectContaining({ severity: 'blocker', check: 'accounts', object: 'clerk@%', message: expect.stringMatching(/account clerk@% exists on the target but differs: the password differs/) }),
    );
    expect(findings).toContainEqual(
      expect.objectContaining({
        severity: 'blocker',
        check: 'accounts',
        object: 'auditor@%',
        message: expect.stringContaining('grants on shop_us differ: source INSERT, SELECT on `shop\\_us`.*; target SELECT on `shop\\_us`.*'),
      }),
    );
    const text = await cli(['check', plan], e.env);
    expect(text.code).toBe(3);
    for (const h of [await hashOf(e.src, 'clerk'), await hashOf(e.dst, 'clerk')]) expect(check.out + text.out + text.err).not.toContain(h);
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code).toBe(3);
    expect(sync.err).toMatch(/clerk@%/);
  });

  it('accounts: skip creates nothing and checks nothing; a bypass account strict mode locks is no longer a finding', async () => {
    const stateDir = await tempStateDir(e.src.dir);
    await seedMysqlDatabase(e, 'shop-skip', 100);
    await exec(e.src, "CREATE USER 'ghost'@'%' IDENTIFIED BY 'boo'", "GRANT ALL ON `shop-skip`.* TO 'ghost'@'%'", "CREATE USER 'ops'@'%' IDENTIFIED BY 'ops-pw'", "GRANT ALL ON *.* TO 'ops'@'%'");
    const plan = await writeMysqlPlan(e, { db: 'shop-skip', stateDir, router: false, extra: 'accounts: skip\nreadOnly: { mode: strict, roles: [ops] }' });
    const check = await cli(['check', plan, '--json'], e.env);
    expect(check.code, check.err).toBe(0);
    const findings = check.json().findings as Array<{ check: string; object?: string }>;
    expect(findings.filter((f) => f.check === 'accounts')).toEqual([]);
    const bypass = findings.find((f) => f.check === 'read_only bypass');
    expect(bypass?.object).toContain('root@localhost');
    expect(bypass?.object).not.toContain('ops@%');
    const sync = await cli(['sync', plan, '--json'], e.env);
    expect(sync.code, sync.err).toBe(0);
    expect(sync.json().rolesCreated).toBe(0);
    expect(await accountsOn(e.dst, ['ghost'])).toEqual([]);
    await cli(['rollback', plan, '--cleanup'], e.env);
  });
});
