import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { connect, exec, mariadbMissing } from '../helpers/mariadb.js';
import { startWavesEnv, type MariadbEnv } from '../helpers/cutover-env.js';
import { seedMysqlTenants, writeMysqlWavesPlan } from '../helpers/waves-env.js';

const TENANTS = ['acct_a', 'acct_b'];

async function grantsOf(sb: MariadbEnv['dst'], account: string): Promise<string[]> {
  const c = await connect(sb);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>(`SHOW GRANTS FOR ${account}`);
    return rows.map((r) => String(Object.values(r)[0])).filter((g) => !g.includes(' ON *.* '));
  } finally {
    await c.end();
  }
}

describe.skipIf(mariadbMissing)('MariaDB waves: each tenant carries its own accounts to the target', () => {
  let e: MariadbEnv;

  beforeAll(async () => {
    e = await startWavesEnv('mariadb');
    await seedMysqlTenants(e, TENANTS);
    await exec(
      e.src,
      "CREATE USER 'owner_a'@'%' IDENTIFIED BY 'pw-a'",
      "GRANT ALL ON `acct\\_a`.* TO 'owner_a'@'%'",
      "CREATE USER 'owner_b'@'%' IDENTIFIED BY 'pw-b'",
      "GRANT ALL ON `acct\\_b`.* TO 'owner_b'@'%'",
      // One account over both tenants: created with the first, granted the second when that one moves.
      "CREATE USER 'shared'@'%' IDENTIFIED BY 'pw-s'",
      "GRANT SELECT ON `acct\\_a`.* TO 'shared'@'%'",
      "GRANT SELECT ON `acct\\_b`.* TO 'shared'@'%'",
    );
  });
  afterAll(async () => e?.stop());

  it("creates each tenant's accounts with its own grants, and they log in to the target with their passwords", async () => {
    const stateDir = await tempStateDir(e.src.dir);
    const plan = await writeMysqlWavesPlan(e, { name: 'acct', tenants: TENANTS, stateDir, routerFile: join(stateDir, 'tenants.json'), waves: 'waves: { maxWriteBlockedPerTenant: 20s }' });
    const r = await cli(['waves', plan, '--yes', '--json'], e.env);
    expect(r.code, r.err + r.out).toBe(0);
    expect(r.json().counts.done).toBe(2);

    expect(await grantsOf(e.dst, "'owner_a'@'%'")).toEqual(['GRANT ALL PRIVILEGES ON `acct\\_a`.* TO `owner_a`@`%`']);
    expect(await grantsOf(e.dst, "'owner_b'@'%'")).toEqual(['GRANT ALL PRIVILEGES ON `acct\\_b`.* TO `owner_b`@`%`']);
    expect((await grantsOf(e.dst, "'shared'@'%'")).sort()).toEqual(['GRANT SELECT ON `acct\\_a`.* TO `shared`@`%`', 'GRANT SELECT ON `acct\\_b`.* TO `shared`@`%`']);

    const owner = await connect(e.dst, { user: 'owner_b', password: 'pw-b' });
    try {
      await owner.query("INSERT INTO acct_b.items (name) VALUES ('moved')");
      const denied = await owner.query('SELECT 1 FROM acct_a.items LIMIT 1').then(
        () => 0,
        (err: { errno?: number }) => err.errno,
      );
      expect([1044, 1142]).toContain(denied);
    } finally {
      await owner.end();
    }
    expect(r.out + r.err).not.toMatch(/\*[0-9A-F]{40}/);
  });
});
