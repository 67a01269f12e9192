import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { replayJournal } from '../../src/engine/journal.js';
import { tenantPlan } from '../../src/engine/waves-plan.js';
import { loadPlan, planId } from '../../src/plan/index.js';
import { mysqlWorkloadTableSql } from '../../adapters/mysql/mysql-workload.js';
import { WORKLOAD_TABLE } from '../../src/sandbox/workload.js';
import { workloadTableSql } from '../../adapters/postgres/postgres-workload.js';
import { APP_PASSWORD, APP_USER, keysOn, seedDatabase, type MariadbEnv, type PostgresEnv } from './cutover-env.js';
import { connect, exec as mysqlExec, type MariadbSandbox } from './mariadb.js';
import { windowOf } from './journal-window.js';
import { exec } from './pg.js';

/** Where tenants live: one database each (the default), or schemas of one database. */
export interface TenantLayout {
  database?: string;
}

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
export const tenantDb = (layout: TenantLayout, tenant: string) => layout.database ?? tenant;
export const tenantTable = (layout: TenantLayout, tenant: string) => (layout.database ? `${q(tenant)}.${WORKLOAD_TABLE}` : WORKLOAD_TABLE);

export async function seedTenants(e: PostgresEnv, tenants: readonly string[], rows = 200): Promise<void> {
  for (const t of tenants) await seedDatabase(e.src, t, rows);
}

/** Schema tenants: each schema of `database` gets the same tables as a tenant database. */
export async function seedSchemaTenants(e: PostgresEnv, database: string, tenants: readonly string[], rows = 200): Promise<void> {
  await exec(e.src, 'postgres', `CREATE DATABASE ${q(database)}`);
  for (const t of tenants) {
    await exec(
      e.src,
      database,
      `CREATE SCHEMA ${q(t)}`,
      `SET search_path TO ${q(t)}`,
      'CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, price numeric(10,2))',
      `INSERT INTO items (name, price) SELECT 'item ' || g, g % 100 FROM generate_series(1, ${rows}) g`,
      workloadTableSql(),
    );
  }
}

export async function writeWavesPlan(e: PostgresEnv, o: { name: string; tenants: readonly string[]; stateDir: string; waves?: string; database?: string }): Promise<string> {
  await mkdir(o.stateDir, { recursive: true });
  const file = join(o.stateDir, `${o.name}.plan.yaml`);
  await writeFile(
    file,
    [
      'engine: postgres',
      `source: { url: "postgres://postgres@127.0.0.1:${e.src.port}/postgres", passwordEnv: SRC_PW }`,
      `target: { url: "postgres://postgres@127.0.0.1:${e.dst.port}/postgres", passwordEnv: DST_PW }`,
      o.database ? `scope: { tenants: { schemas: [${o.tenants.map((t) => `"${t}"`).join(', ')}], database: "${o.database}" } }` : `scope: { tenants: [${o.tenants.map((t) => `"${t}"`).join(', ')}] }`,
      `router: { kind: pgbouncer, admin: "${e.bouncer!.adminUrl()}", adminPasswordEnv: BOUNCER_PW, ini: "${e.bouncer!.iniPath}", database: "${o.tenants[0]}" }`,
      `state: "${o.stateDir}"`,
      o.waves ?? '',
    ].join('\n') + '\n',
  );
  return file;
}

export interface TenantWrite {
  tenant: string;
  key: string;
  /** Epoch ms. */
  start: number;
  end: number;
  ok: boolean;
  error?: string;
}

/** Writers that each insert into a random tenant through PgBouncer, one kept connection per tenant per writer. */
export class TenantWorkload {
  private stopping = false;
  readonly writes: TenantWrite[] = [];
  private loops: Promise<void>[] = [];

  constructor(
    private readonly e: PostgresEnv,
    private readonly tenants: readonly string[],
    private readonly writers = 4,
    private readonly layout: TenantLayout = {},
    /** Who writes: the env's superuser unless an application role is given. */
    private readonly login?: { user: string; password: string },
  ) {}

  start(): this {
    for (let i = 0; i < this.writers; i++) this.loops.push(this.loop(i));
    return this;
  }

  private async loop(client: number): Promise<void> {
    const conns = new Map<string, pg.Client>();
    let seq = 0;
    while (!this.stopping) {
      const tenant = this.tenants[Math.floor(Math.random() * this.tenants.length)]!;
      const w: TenantWrite = { tenant, key: `${client}:${++seq}`, start: Date.now(), end: 0, ok: true };
      try {
        let c = conns.get(tenant);
        if (!c) {
          const login = this.login ?? { user: 'postgres', password: this.e.password };
          c = new pg.Client({ host: '127.0.0.1', port: this.e.bouncer!.port, ...login, database: tenant, connectionTimeoutMillis: 30_000 });
          c.on('error', () => {});
          await c.connect();
          conns.set(tenant, c);
        }
        await c.query(`INSERT INTO ${tenantTable(this.layout, tenant)} (client, seq) VALUES ($1, $2)`, [client, seq]);
      } catch (err) {
        w.ok = false;
        w.error = (err as Error).message;
        await conns
          .get(tenant)
          ?.end()
          .catch(() => {});
        conns.delete(tenant);
      }
      w.end = Date.now();
      this.writes.push(w);
      await new Promise((r) => setTimeout(r, 2));
    }
    await Promise.all([...conns.values()].map((c) => c.end().catch(() => {})));
  }

  async stop(): Promise<TenantWrite[]> {
    this.stopping = true;
    await Promise.all(this.loops);
    return this.writes;
  }
}

/** Acknowledged writes of these tenants missing from a server. */
export async function missingTenantWrites(e: PostgresEnv, server: 'src' | 'dst', writes: readonly TenantWrite[], tenants: readonly string[], layout: TenantLayout = {}): Promise<string[]> {
  const missing: string[] = [];
  for (const t of tenants) {
    const have = await keysOn(e[server], tenantDb(layout, t), tenantTable(layout, t));
    for (const w of writes) if (w.tenant === t && w.ok && !have.has(w.key)) missing.push(`${t}/${w.key}`);
  }
  return missing;
}

/** Each tenant's window from its journal: hold begin to lift ok (epoch ms). */
export async function tenantWindows(planFile: string, tenants: readonly string[]): Promise<Map<string, { from: number; to: number }>> {
  const plan = await loadPlan(planFile);
  const out = new Map<string, { from: number; to: number }>();
  for (const t of tenants) {
    const tp = tenantPlan(plan, t);
    const window = windowOf((await replayJournal(tp.stateDir, planId(tp))).records);
    if (window) out.set(t, window);
  }
  return out;
}

/** How each tenant's run proved its catch-up (the `catch-up` step's method in its journal: gtid, copy, sentinel). */
export async function tenantCatchUpMethods(planFile: string, tenants: readonly string[]): Promise<Map<string, string | undefined>> {
  const plan = await loadPlan(planFile);
  const out = new Map<string, string | undefined>();
  for (const t of tenants) {
    const tp = tenantPlan(plan, t);
    const { records } = await replayJournal(tp.stateDir, planId(tp));
    const ok = [...records].reverse().find((r) => r.step === 'catch-up' && r.status === 'ok');
    out.set(t, (ok?.data as { method?: string } | undefined)?.method);
  }
  return out;
}

/** The host:port/db PgBouncer routes a tenant to (SHOW DATABASES on the admin console). */
export async function bouncerRoute(e: PostgresEnv, tenant: string): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port: e.bouncer!.port, user: e.bouncer!.adminUser, password: e.bouncer!.adminPassword, database: 'pgbouncer' });
  await c.connect();
  try {
    const { rows } = await c.query('SHOW DATABASES');
    const row = rows.find((r: { name: string }) => r.name === tenant) as { port: number; database: string };
    return `${row.port}/${row.database}`;
  } finally {
    await c.end();
  }
}

/** The longest wait of an acknowledged write to a tenant that did not overlap that tenant's own window. */
export function worstOutsideWindow(writes: readonly TenantWrite[], windows: Map<string, { from: number; to: number }>): { ms: number; tenant?: string } {
  let worst: { ms: number; tenant?: string } = { ms: 0 };
  for (const w of writes) {
    const own = windows.get(w.tenant);
    if (own && w.end >= own.from && w.start <= own.to) continue;
    if (w.end - w.start > worst.ms) worst = { ms: w.end - w.start, tenant: w.tenant };
  }
  return worst;
}

/**
 * Tenants during whose write-blocked window no write to any other tenant was acknowledged. Empty when other
 * tenants kept working while each fence was up; a hold or fence that reached beyond its tenant (a global
 * PAUSE, a lock on shared objects) would stop every writer for the whole window and name that tenant here.
 */
export function windowsThatStoppedOtherTenants(writes: readonly { tenant: string; ok: boolean; end: number }[], windows: Map<string, { from: number; to: number }>): string[] {
  const stopped: string[] = [];
  for (const [tenant, w] of windows) {
    if (!writes.some((x) => x.ok && x.tenant !== tenant && x.end > w.from && x.end < w.to)) stopped.push(`${tenant} (${w.to - w.from} ms)`);
  }
  return stopped;
}

/** Pairs of tenants whose windows (hold to lift) overlapped: a wave's windows on one source server take turns. */
export function overlappingWindows(windows: ReadonlyMap<string, { from: number; to: number }>): string[] {
  const all = [...windows].sort(([, a], [, b]) => a.from - b.from);
  const pairs: string[] = [];
  for (const [i, [a, wa]] of all.entries()) {
    for (const [b, wb] of all.slice(i + 1)) if (wb.from < wa.to) pairs.push(`${a} ${wa.from}..${wa.to} and ${b} ${wb.from}..${wb.to}`);
  }
  return pairs;
}

/** Diagnostics for a slow write: the journal steps of every tenant that were running while it waited. */
export async function stepsDuring(planFile: string, tenants: readonly string[], from: number, to: number): Promise<string[]> {
  const plan = await loadPlan(planFile);
  const out: string[] = [];
  for (const t of tenants) {
    const tp = tenantPlan(plan, t);
    const { records } = await replayJournal(tp.stateDir, planId(tp));
    const begun = new Map<string, number>();
    for (const r of records) {
      const at = Date.parse(r.at);
      if (r.status === 'begin') begun.set(r.step, at);
      else if (begun.has(r.step)) {
        const b = begun.get(r.step)!;
        if (at >= from && b <= to) out.push(`${t} ${r.step} ${b - from}..${at - from} ms`);
        begun.delete(r.step);
      }
    }
  }
  return out;
}

// MariaDB tenants: one database each, the app account writing, routed by a JSON router file.

/** Each tenant a database with some rows and the workload table; the app account may write to it on both servers. */
export async function seedMysqlTenants(e: MariadbEnv, tenants: readonly string[], rows = 200): Promise<void> {
  for (const t of tenants) {
    await mysqlExec(
      e.src,
      `CREATE DATABASE \`${t}\``,
      `USE \`${t}\``,
      'CREATE TABLE items (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(64) NOT NULL, price decimal(10,2)) ENGINE=InnoDB',
      `INSERT INTO items (name, price) SELECT CONCAT('item ', seq), seq % 100 FROM seq_1_to_${rows}`,
      mysqlWorkloadTableSql(),
    );
    for (const sb of [e.src, e.dst]) await mysqlExec(sb, `GRANT ALL ON \`${t}\`.* TO '${APP_USER}'@'%'`);
  }
}

export async function writeMysqlWavesPlan(
  e: MariadbEnv,
  o: { name: string; tenants: readonly string[]; stateDir: string; routerFile: string; waves?: string; admin?: { user: string; passwordEnv: string }; extra?: string; method?: 'dump' | 'replication' },
): Promise<string> {
  const [user, src, dst] = o.admin ? [o.admin.user, o.admin.passwordEnv, o.admin.passwordEnv] : ['root', 'SRC_PW', 'DST_PW'];
  await mkdir(o.stateDir, { recursive: true });
  const file = join(o.stateDir, `${o.name}.plan.yaml`);
  await writeFile(
    file,
    [
      'engine: mariadb',
      `source: { url: "mariadb://${user}@127.0.0.1:${e.src.port}/", passwordEnv: ${src} }`,
      `target: { url: "mariadb://${user}@127.0.0.1:${e.dst.port}/", passwordEnv: ${dst} }`,
      `scope: { tenants: [${o.tenants.map((t) => `"${t}"`).join(', ')}] }`,
      `method: ${o.method ?? 'dump'}`,
      `readOnly: { mode: strict, roles: [${APP_USER}], drainTimeout: 300ms }`,
      `router: { kind: file, path: "${o.routerFile}", format: json }`,
      `state: "${o.stateDir}"`,
      o.waves ?? 'waves: { maxWriteBlockedPerTenant: 3s }',
      o.extra ?? '',
    ].join('\n') + '\n',
  );
  return file;
}

/** Where the router file sends a tenant: its entry, or the source when it has none (not moved yet). */
async function endpointOf(e: MariadbEnv, routerFile: string, tenant: string): Promise<number> {
  const text = await readFile(routerFile, 'utf8').catch(() => '{}');
  const entry = (JSON.parse(text) as Record<string, { port?: number } | undefined>)[tenant];
  return entry?.port ?? e.src.port;
}

export interface MysqlTenantWrite extends TenantWrite {
  attempts: number;
}

/**
 * Writers that insert into random tenants as a router-aware application would: one kept connection per tenant
 * per writer, opened to the endpoint the router file names at that moment and dropped as soon as the server
 * closes it; on any error the connection is dropped and the same write retried on a fresh one (re-reading the
 * file) until it is acknowledged. A retry that finds its own row (1062) means the earlier attempt committed:
 * acknowledged too.
 */
export class MysqlTenantWorkload {
  private stopping = false;
  readonly writes: MysqlTenantWrite[] = [];
  private loops: Promise<void>[] = [];

  constructor(
    private readonly e: MariadbEnv,
    private readonly routerFile: string,
    private readonly tenants: readonly string[],
    private readonly writers = 4,
  ) {}

  start(): this {
    for (let i = 0; i < this.writers; i++) this.loops.push(this.loop(i));
    return this;
  }

  private async loop(client: number): Promise<void> {
    const conns = new Map<string, mysql.Connection>();
    let seq = 0;
    while (!this.stopping) {
      const tenant = this.tenants[Math.floor(Math.random() * this.tenants.length)]!;
      const w: MysqlTenantWrite = { tenant, key: `${client}:${++seq}`, start: Date.now(), end: 0, ok: false, attempts: 0 };
      while (!w.ok && !this.stopping) {
        w.attempts++;
        try {
          let c = conns.get(tenant);
          if (!c) {
            const port = await endpointOf(this.e, this.routerFile, tenant);
            const fresh = await mysql.createConnection({ host: '127.0.0.1', port, user: APP_USER, password: APP_PASSWORD, database: tenant, connectTimeout: 10_000 });
            // Like a pool that validates: a connection the server closed (the fence KILLs the tenant's
            // sessions) leaves the pool at once, not on its next use, which may come after the switch.
            const forget = () => conns.get(tenant) === fresh && conns.delete(tenant);
            fresh.on('error', forget);
            fresh.on('end', forget);
            conns.set(tenant, fresh);
            c = fresh;
          }
          await c.query(`INSERT INTO \`${WORKLOAD_TABLE}\` (client, seq) VALUES (?, ?)`, [client, seq]);
          w.ok = true;
        } catch (err) {
          if ((err as { errno?: number }).errno === 1062 && w.attempts > 1) {
            w.ok = true;
            break;
          }
          w.error = (err as Error).message;
          conns.get(tenant)?.destroy();
          conns.delete(tenant);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      w.end = Date.now();
      this.writes.push(w);
      await new Promise((r) => setTimeout(r, 2));
    }
    for (const c of conns.values()) c.destroy();
  }

  async stop(): Promise<MysqlTenantWrite[]> {
    this.stopping = true;
    await Promise.all(this.loops);
    return this.writes;
  }
}

/** Acknowledged writes of these tenants missing from a server. */
export async function missingMysqlTenantWrites(sb: MariadbSandbox, writes: readonly TenantWrite[], tenants: readonly string[]): Promise<string[]> {
  const c = await connect(sb);
  try {
    const missing: string[] = [];
    for (const t of tenants) {
      const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT CONCAT(client, ':', seq) AS k FROM \`${t}\`.\`${WORKLOAD_TABLE}\``);
      const have = new Set(rows.map((r) => String(r.k)));
      for (const w of writes) if (w.tenant === t && w.ok && !have.has(w.key)) missing.push(`${t}/${w.key}`);
    }
    return missing;
  } finally {
    await c.end();
  }
}

/** The app account's privileges on one tenant database, as information_schema lists them (sorted). */
export async function appPrivileges(sb: MariadbSandbox, tenant: string): Promise<string[]> {
  const c = await connect(sb);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT PRIVILEGE_TYPE AS p FROM information_schema.SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA = ? AND GRANTEE = ?`, [tenant, `'${APP_USER}'@'%'`]);
    return rows.map((r) => String(r.p)).sort();
  } finally {
    await c.end();
  }
}

/** A fresh app-account connection's INSERT into the tenant: refused (1142) while its write grants are revoked. */
export async function appCanWriteTenant(sb: MariadbSandbox, tenant: string): Promise<boolean> {
  const c = await connect(sb, { user: APP_USER, password: APP_PASSWORD });
  try {
    await c.query(`INSERT INTO \`${tenant}\`.\`${WORKLOAD_TABLE}\` (client, seq) SELECT -1, COALESCE(MAX(seq), 0) + 1 FROM \`${tenant}\`.\`${WORKLOAD_TABLE}\` WHERE client = -1`);
    return true;
  } catch (e) {
    if ((e as { errno?: number }).errno === 1142) return false;
    throw e;
  } finally {
    await c.end();
  }
}

export async function routerEntries(routerFile: string): Promise<Record<string, { port: number; database: string }>> {
  return JSON.parse(await readFile(routerFile, 'utf8')) as Record<string, { port: number; database: string }>;
}
