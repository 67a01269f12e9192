import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManagedAdmin, MANAGED_ADMIN_USER } from '../../adapters/mysql/mariadb-managed-profile.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { APP_USER, startWavesEnv, type MariadbEnv } from '../helpers/cutover-env.js';
import { connect, mariadbMissing, readOnly } from '../helpers/mariadb.js';
import { appCanWriteTenant, appPrivileges, missingMysqlTenantWrites, MysqlTenantWorkload, routerEntries, seedMysqlTenants, writeMysqlWavesPlan } from '../helpers/waves-env.js';

const ADMIN_PW = 'Mgd:adm/7%';
const TENANTS = ['mt_a', 'mt_b', 'mt_c'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `cutover waves` as a managed provider's admin on both MariaDB servers (no SUPER, READ_ONLY ADMIN or BINLOG
 * ADMIN): each tenant is fenced by revoking the app account's write grants on its database and ending its
 * sessions there, never with `SET GLOBAL read_only`; the server's root (the provider) keeps a session open.
 */
describe.skipIf(mariadbMissing)('managed profile: MariaDB waves of 3 tenants through a JSON router file as an admin without SUPER', () => {
  let e: MariadbEnv;

  beforeAll(async () => {
    e = await startWavesEnv('mariadb');
    for (const sb of [e.src, e.dst]) await createManagedAdmin(sb, ADMIN_PW);
    await seedMysqlTenants(e, TENANTS);
  }, 180_000);
  afterAll(async () => e?.stop());

  it('every acknowledged write on the target; read_only never set; the app gets its grants back on the target; the provider session stays', async () => {
    const stateDir = await tempStateDir(e.src.dir);
    const routerFile = join(stateDir, 'tenants.json');
    const plan = await writeMysqlWavesPlan(e, {
      name: 'managed',
      tenants: TENANTS,
      stateDir,
      routerFile,
      admin: { user: MANAGED_ADMIN_USER, passwordEnv: 'ADMIN_PW' },
      extra: 'privileges: managed',
      waves: 'waves: { concurrency: 2, maxWriteBlockedPerTenant: 5s }',
    });
    const env = { ...e.env, ADMIN_PW };
    const provider: mysql.Connection = await connect(e.src);
    await provider.query(`USE \`${TENANTS[1]}\``);
    const workload = new MysqlTenantWorkload(e, routerFile, TENANTS, 4).start();
    let r;
    try {
      await sleep(300);
      r = await cli(['waves', plan, '--yes', '--json'], env);
      await sleep(300);
    } finally {
      var writes = await workload.stop();
    }
    expect(r.code, r.err + r.out).toBe(0);
    const result = r.json();
    console.log(`managed MariaDB waves: ${TENANTS.length} tenants in ${result.wallMs} ms; windows p50 ${result.windows.p50Ms} max ${result.windows.maxMs} ms; ${writes.length} writes`);
    expect(result.counts.done).toBe(TENANTS.length);
    expect(writes.filter((w) => !w.ok)).toEqual([]);
    expect(await missingMysqlTenantWrites(e.dst, writes, TENANTS)).toEqual([]);
    expect(Object.keys(await routerEntries(routerFile)).sort()).toEqual([...TENANTS].sort());

    expect(await readOnly(e.src)).toBe(0);
    for (const t of TENANTS) {
      expect(await appCanWriteTenant(e.src, t)).toBe(false);
      expect(await appCanWriteTenant(e.dst, t)).toBe(true);
      expect(await appPrivileges(e.dst, t)).toContain('INSERT');
    }
    const [[alive]] = await provider.query<mysql.RowDataPacket[]>('SELECT 1 AS ok');
    expect(alive!.ok).toBe(1);
    await provider.end();
    void APP_USER;
  }, 240_000);
});
