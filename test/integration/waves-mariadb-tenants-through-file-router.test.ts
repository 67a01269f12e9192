import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { connect, mariadbMissing } from '../helpers/mariadb.js';
import { startWavesEnv, type MariadbEnv } from '../helpers/cutover-env.js';
import {
  appCanWriteTenant,
  appPrivileges,
  missingMysqlTenantWrites,
  MysqlTenantWorkload,
  routerEntries,
  seedMysqlTenants,
  tenantWindows,
  type TenantWrite,
  overlappingWindows,
  windowsThatStoppedOtherTenants,
  writeMysqlWavesPlan,
} from '../helpers/waves-env.js';

const N = Number(process.env.CUTOVER_TEST_TENANTS ?? 20);
const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(2, '0')}`);
const C1 = names('m1_', N);
const C4 = names('m4_', N);
const TF = ['tf_a', 'tf_bad', 'tf_c'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The longest wait, and any error, of a write to a tenant that did not overlap that tenant's own window. */
function outsideOwnWindow(writes: readonly TenantWrite[], windows: Map<string, { from: number; to: number }>): { worstMs: number; tenant?: string; errors: TenantWrite[] } {
  let worst: { worstMs: number; tenant?: string; errors: TenantWrite[] } = { worstMs: 0, errors: [] };
  for (const w of writes) {
    const own = windows.get(w.tenant);
    if (own && w.end >= own.from && w.start <= own.to) continue;
    if (w.error) worst.errors.push(w);
    if (w.end - w.start > worst.worstMs) worst = { ...worst, worstMs: w.end - w.start, tenant: w.tenant };
  }
  return worst;
}

describe.skipIf(mariadbMissing)(`MariaDB waves: ${N} tenant databases, each copied in its own window and switched in a JSON router file, under writers to random tenants`, () => {
  let e: MariadbEnv;
  let stateRoot: string;

  beforeAll(async () => {
    e = await startWavesEnv('mariadb');
    stateRoot = await tempStateDir(e.src.dir);
    await seedMysqlTenants(e, [...C1, ...C4, ...TF]);
  });
  afterAll(async () => e?.stop());

  it.each([
    { concurrency: 1, tenants: C1 },
    { concurrency: 4, tenants: C4 },
  ])('concurrency $concurrency: every acknowledged write on the target, other tenants never wait on a fence', async ({ concurrency, tenants }) => {
    const routerFile = join(stateRoot, `c${concurrency}-tenants.json`);
    const plan = await writeMysqlWavesPlan(e, { name: `c${concurrency}`, tenants, stateDir: join(stateRoot, `c${concurrency}`), routerFile });
    const workload = new MysqlTenantWorkload(e, routerFile, tenants, 4).start();
    let r;
    try {
      await sleep(200);
      r = await cli(['waves', plan, '--yes', '--json', '--concurrency', String(concurrency)], e.env);
      await sleep(300);
    } finally {
      var writes = await workload.stop();
    }
    expect(r.code, r.err + r.out).toBe(0);
    const result = r.json();
    expect(result.counts.done).toBe(tenants.length);
    expect(result.windows.count).toBe(tenants.length);

    // Every write was acknowledged in the end (the writers retry through the router file), and is on the target.
    expect(writes.filter((w) => !w.ok).length).toBeLessThanOrEqual(4);
    expect(await missingMysqlTenantWrites(e.dst, writes, tenants)).toEqual([]);
    const entries = await routerEntries(routerFile);
    for (const t of tenants) expect(entries[t]).toMatchObject({ port: e.dst.port, database: t });
    // The source stays fenced for moved tenants: the app account's write grants are gone there.
    for (const t of tenants.slice(0, 3)) expect(await appCanWriteTenant(e.src, t)).toBe(false);
    expect(await appCanWriteTenant(e.dst, tenants[0]!)).toBe(true);

    const windows = await tenantWindows(plan, tenants);
    const smallest = Math.min(...[...windows.values()].map((w) => w.to - w.from));
    const outside = outsideOwnWindow(writes, windows);
    const retried = writes.filter((w) => w.attempts > 1);
    console.log(
      `mariadb waves c=${concurrency}: ${tenants.length} tenants in ${result.wallMs} ms; windows p50 ${result.windows.p50Ms} p95 ${result.windows.p95Ms} max ${result.windows.maxMs} ms (smallest by journal ${smallest} ms); ` +
        `${writes.length} writes, ${retried.length} retried inside their tenant's window, worst outside own window ${outside.worstMs} ms (${outside.tenant})`,
    );
    // No write outside its own tenant's window failed, and other tenants kept being written while each was fenced.
    expect(outside.errors.map((w) => `${w.tenant}: ${w.error}`)).toEqual([]);
    expect(windowsThatStoppedOtherTenants(writes, windows)).toEqual([]);
    // The wave's windows took turns: none shared the machine with another (waves.ts, windowTurn).
    expect(overlappingWindows(windows)).toEqual([]);
  });

  it('a transform that fails for one tenant rolls back only that tenant: its grants back exactly, writable source, router entry on the source', async () => {
    const stateDir = join(stateRoot, 'tf');
    const routerFile = join(stateRoot, 'tf-tenants.json');
    const before = await appPrivileges(e.src, 'tf_bad');
    expect(before).toContain('INSERT');
    const script = `[ "$CUTOVER_TENANT" != tf_bad ] || { echo "reshape refused for $CUTOVER_TENANT" >&2; exit 3; }; exec mariadb --defaults-extra-file="$CUTOVER_MYSQL_DEFAULTS_FILE" -e "ALTER TABLE items ADD COLUMN label varchar(64)"`;
    const plan = await writeMysqlWavesPlan(e, { name: 'tf', tenants: TF, stateDir, routerFile, waves: `waves: { maxWriteBlockedPerTenant: 3s, transform: { command: [sh, -c, ${JSON.stringify(script)}] } }` });
    const workload = new MysqlTenantWorkload(e, routerFile, TF, 2).start();
    let r;
    try {
      await sleep(200);
      r = await cli(['waves', plan, '--yes', '--json'], e.env);
      await sleep(300);
    } finally {
      var writes = await workload.stop();
    }
    expect(r.code, r.err).toBe(1);
    const result = r.json().result;
    const byTenant = Object.fromEntries(result.tenants.map((t: { tenant: string; state: string }) => [t.tenant, t.state]));
    expect(byTenant).toEqual({ tf_a: 'done', tf_bad: 'rolled-back', tf_c: 'done' });
    expect(await missingMysqlTenantWrites(e.dst, writes, ['tf_a', 'tf_c'])).toEqual([]);
    expect(await missingMysqlTenantWrites(e.src, writes, ['tf_bad'])).toEqual([]);

    expect(await appPrivileges(e.src, 'tf_bad')).toEqual(before);
    expect(await appCanWriteTenant(e.src, 'tf_bad')).toBe(true);
    const entries = await routerEntries(routerFile);
    expect(entries.tf_bad).toMatchObject({ port: e.src.port, database: 'tf_bad' });
    expect(entries.tf_a).toMatchObject({ port: e.dst.port });
    const c = await connect(e.dst);
    try {
      const [rows] = await c.query(`SELECT TABLE_SCHEMA AS s FROM information_schema.COLUMNS WHERE TABLE_NAME = 'items' AND COLUMN_NAME = 'label' ORDER BY 1`);
      expect((rows as Array<{ s: string }>).map((x) => x.s)).toEqual(['tf_a', 'tf_c']);
    } finally {
      await c.end();
    }

    const status = (await cli(['waves', plan, '--status', '--json'], e.env)).json();
    expect(status.tenants.find((t: { tenant: string }) => t.tenant === 'tf_bad')).toMatchObject({ state: 'rolled-back', lastError: expect.stringMatching(/reshape refused for tf_bad/) });
    const back = await cli(['waves', plan, '--rollback', 'tf_a'], e.env);
    expect(back.code).toBe(5);
    expect(back.err).toMatch(/reverse cutover/);
  });

  it('scope.tenants.query lists the tenants on the source, read-only', async () => {
    const stateDir = join(stateRoot, 'q');
    const plan = await writeMysqlWavesPlan(e, { name: 'q', tenants: [], stateDir, routerFile: join(stateRoot, 'q.json') });
    const { readFile, writeFile } = await import('node:fs/promises');
    const text = (await readFile(plan, 'utf8')).replace(/scope: \{ tenants: \[\] \}/, `scope: { tenants: { query: "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'tf\\\\_%' ORDER BY 1" } }`);
    await writeFile(plan, text);
    const status = await cli(['waves', plan, '--status', '--json'], e.env);
    expect(status.code, status.err).toBe(0);
    expect(status.json().tenants.map((t: { tenant: string }) => t.tenant)).toEqual(TF);
  });
});
