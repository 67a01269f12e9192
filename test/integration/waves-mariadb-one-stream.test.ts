import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { startWavesEnv, type MariadbEnv } from '../helpers/cutover-env.js';
import { connect, mariadbMissing } from '../helpers/mariadb.js';
import {
  appCanWriteTenant,
  missingMysqlTenantWrites,
  MysqlTenantWorkload,
  routerEntries,
  seedMysqlTenants,
  tenantCatchUpMethods,
  tenantWindows,
  overlappingWindows,
  windowsThatStoppedOtherTenants,
  writeMysqlWavesPlan,
} from '../helpers/waves-env.js';

const N = Number(process.env.CUTOVER_TEST_TENANTS ?? 12);
const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(2, '0')}`);
const C1 = names('s1_', N);
const C4 = names('s4_', N);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rows(sb: MariadbEnv['dst'], sql: string): Promise<mysql.RowDataPacket[]> {
  const c = await connect(sb);
  try {
    const [r] = await c.query<mysql.RowDataPacket[]>(sql);
    return r;
  } finally {
    await c.end();
  }
}

/**
 * MariaDB waves by replication: every tenant joins one replica connection on the target at its copy's GTID
 * position, so a tenant's window is fence → GTID wait → switch, with no copy inside it.
 */
describe.skipIf(mariadbMissing)(`MariaDB waves by replication: ${N} tenant databases through one stream into the target, under writers to random tenants`, () => {
  let e: MariadbEnv;
  let stateRoot: string;

  beforeAll(async () => {
    e = await startWavesEnv('mariadb');
    stateRoot = await tempStateDir(e.src.dir);
    await seedMysqlTenants(e, [...C1, ...C4, 'g_ok'], 2000);
  });
  afterAll(async () => e?.stop());

  it.each([
    { concurrency: 1, tenants: C1 },
    { concurrency: 4, tenants: C4 },
  ])('concurrency $concurrency: one stream carries every tenant, each window proves the catch-up by GTID, every acknowledged write on the target, nothing left behind', async ({ concurrency, tenants }) => {
    const routerFile = join(stateRoot, `c${concurrency}-tenants.json`);
    const stateDir = join(stateRoot, `c${concurrency}`);
    const plan = await writeMysqlWavesPlan(e, { name: `c${concurrency}`, tenants, stateDir, routerFile, method: 'replication' });
    // check of a waves plan: every tenant's preflight, as its run will make it.
    const check = await cli(['check', plan, '--json'], e.env);
    expect(check.code, check.err + check.out).toBe(0);
    expect(check.json().findings[0].message).toBe(`${tenants.length} tenant(s) checked`);
    // Each writer keeps a connection per tenant it wrote to: writers × tenants stay under the sandbox's max_connections.
    const workload = new MysqlTenantWorkload(e, routerFile, tenants, 6).start();
    // While the wave runs: how many replica connections the target has at once, and how many tenants the stream carries.
    let sampling = true;
    let mostConnections = 0;
    let mostTenants = 0;
    const sampler = (async () => {
      while (sampling) {
        const links = (await rows(e.dst, 'SHOW ALL SLAVES STATUS')).filter((r) => String(r.Connection_name).startsWith('cutover_'));
        mostConnections = Math.max(mostConnections, links.length);
        for (const l of links) mostTenants = Math.max(mostTenants, String(l.Replicate_Do_DB).split(',').filter(Boolean).length);
        await sleep(100);
      }
    })();
    let r;
    try {
      await sleep(200);
      r = await cli(['waves', plan, '--yes', '--json', '--concurrency', String(concurrency)], e.env);
      await sleep(300);
    } finally {
      var writes = await workload.stop();
      sampling = false;
      await sampler;
    }
    expect(r.code, r.err + r.out).toBe(0);
    const result = r.json();
    expect(result.counts.done).toBe(tenants.length);

    expect(mostConnections).toBe(1);
    // One at a time, a tenant leaves the stream before the next joins; four at a time they share it.
    if (concurrency > 1) expect(mostTenants).toBeGreaterThan(1);
    expect(writes.filter((w) => !w.ok)).toEqual([]);
    expect(await missingMysqlTenantWrites(e.dst, writes, tenants)).toEqual([]);
    const entries = await routerEntries(routerFile);
    for (const t of tenants) expect(entries[t]).toMatchObject({ port: e.dst.port, database: t });
    for (const t of tenants.slice(0, 3)) expect(await appCanWriteTenant(e.src, t)).toBe(false);
    expect(await appCanWriteTenant(e.dst, tenants[0]!)).toBe(true);

    // Each tenant's catch-up was a GTID wait on the stream, not a copy inside its window.
    const status = (await cli(['waves', plan, '--status', '--json'], e.env)).json();
    expect(status.counts.done).toBe(tenants.length);
    expect(new Set((await tenantCatchUpMethods(plan, tenants)).values())).toEqual(new Set(['gtid']));
    const windows = await tenantWindows(plan, tenants);
    expect(windowsThatStoppedOtherTenants(writes, windows)).toEqual([]);
    // The wave's windows took turns: none shared the machine with another (waves.ts, windowTurn).
    expect(overlappingWindows(windows)).toEqual([]);
    console.log(
      `mariadb waves by replication c=${concurrency}: ${tenants.length} tenants in ${result.wallMs} ms; windows p50 ${result.windows.p50Ms} p95 ${result.windows.p95Ms} max ${result.windows.maxMs} ms; ${writes.length} writes`,
    );

    // Checked again after the wave: every tenant is done, none is checked.
    const after = await cli(['check', plan, '--json'], e.env);
    expect(after.code, after.err).toBe(0);
    expect(after.json().findings[0].message).toMatch(/^0 tenant\(s\) checked; not checked \(done or in flight\): .*\(done\)/);

    // The last tenant to leave dropped the stream and the wave's replication account.
    expect((await rows(e.dst, 'SHOW ALL SLAVES STATUS')).filter((x) => String(x.Connection_name).startsWith('cutover_'))).toEqual([]);
    expect(await rows(e.src, `SELECT User FROM mysql.user WHERE User LIKE 'cutover\\_repl\\_%'`)).toEqual([]);
  });

  it('check of a waves plan names the tenant a blocker belongs to (exit 3), and moves nothing', async () => {
    const plan = await writeMysqlWavesPlan(e, { name: 'gone', tenants: ['g_ok', 'no_such_tenant'], stateDir: join(stateRoot, 'gone'), routerFile: join(stateRoot, 'gone.json'), method: 'replication' });
    const r = await cli(['check', plan, '--json'], e.env);
    expect(r.code, r.err).toBe(3);
    const blockers = (r.json().findings as Array<{ severity: string; message: string; tenants?: string[] }>).filter((f) => f.severity === 'blocker');
    expect(blockers.length).toBeGreaterThan(0);
    expect(
      blockers.map((b) => b.tenants),
      JSON.stringify(blockers),
    ).toEqual(blockers.map(() => ['no_such_tenant']));
    const human = await cli(['check', plan], e.env);
    expect(human.code).toBe(3);
    expect(human.err + human.out).toMatch(/\[tenant no_such_tenant\]/);
  });

  it('check says a target without local_infile cannot take a tenant into the stream (exit 3), before any copy', async () => {
    const plan = await writeMysqlWavesPlan(e, { name: 'infile', tenants: ['g_ok'], stateDir: join(stateRoot, 'infile'), routerFile: join(stateRoot, 'infile.json'), method: 'replication' });
    await rows(e.dst, 'SET GLOBAL local_infile = 0');
    try {
      const r = await cli(['check', plan, '--json'], e.env);
      expect(r.code, r.err).toBe(3);
      const blockers = (r.json().findings as Array<{ severity: string; object?: string; message: string; fix: string }>).filter((f) => f.severity === 'blocker');
      expect(blockers).toEqual([
        expect.objectContaining({ object: 'target local_infile', message: expect.stringMatching(/local_infile = OFF/), fix: expect.stringMatching(/set local_infile = 1 on the target, or use method: dump/) }),
      ]);
      expect(await rows(e.dst, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'g_ok'")).toEqual([]);
    } finally {
      await rows(e.dst, 'SET GLOBAL local_infile = 1');
    }
  });

  it('check names a tenant the parallel copy cannot take (a MyISAM table) with method: dump as the fix, not local_infile', async () => {
    await rows(e.src, 'CREATE DATABASE g_myisam');
    await rows(e.src, 'CREATE TABLE g_myisam.t (id int PRIMARY KEY) ENGINE=MyISAM');
    const plan = await writeMysqlWavesPlan(e, { name: 'myisam', tenants: ['g_myisam'], stateDir: join(stateRoot, 'myisam'), routerFile: join(stateRoot, 'myisam.json'), method: 'replication' });
    const r = await cli(['check', plan, '--json'], e.env);
    expect(r.code, r.err).toBe(3);
    const blockers = (r.json().findings as Array<{ severity: string; object?: string; message: string; fix: string }>).filter((f) => f.severity === 'blocker');
    expect(blockers).toContainEqual(expect.objectContaining({ object: 'database g_myisam', message: expect.stringMatching(/t uses MyISAM engine/), fix: 'use method: dump for this wave' }));
    expect(blockers.filter((b) => b.object === 'target local_infile')).toEqual([]);
  });

  it('plan: reverse with waves by replication is refused naming the key (exit 2)', async () => {
    const plan = await writeMysqlWavesPlan(e, { name: 'rev', tenants: ['x1', 'x2'], stateDir: join(stateRoot, 'rev'), routerFile: join(stateRoot, 'rev.json'), method: 'replication', extra: 'reverse: true' });
    const r = await cli(['waves', plan, '--yes'], e.env);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/reverse: .*share one stream/);
  });
});
