import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import pg from 'pg';
import type { CopyMethod } from '../../src/plan/types.js';
import { HaproxySandbox } from '../../adapters/routers/haproxy-sandbox.js';
import { MysqlWorkload, mysqlWorkloadTableSql } from '../../adapters/mysql/mysql-workload.js';
import { PgBouncerSandbox } from '../../adapters/routers/pgbouncer-sandbox.js';
import { PostgresSandbox } from '../../adapters/postgres/postgres-sandbox.js';
import { WORKLOAD_TABLE, type WorkloadResult } from '../../src/sandbox/workload.js';
import { Workload, workloadTableSql } from '../../adapters/postgres/postgres-workload.js';
import { haproxyMissing } from './haproxy.js';
import { connect, exec as mysqlExec, MariadbSandbox, mariadbMissing } from './mariadb.js';
import { client, exec, pg15Missing, pg17Missing } from './pg.js';
import { pgbouncerMissing } from './pgbouncer.js';

/** The engines every behaviour test runs against: `describe.each(ENGINES)`. */
export const ENGINES = ['postgres', 'mariadb'] as const;
export type Engine = (typeof ENGINES)[number];

/** The application account of MariaDB envs: root holds READ ONLY ADMIN and would write through the fence. */
export const APP_USER = 'app';
export const APP_PASSWORD = 'App:pw/2%';
const PASSWORD = 'Sh@red:pw/1%';

/** A source and a target with the same admin password, and (optionally) the engine's router in front of the source. */
interface EnvBase {
  password: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}
/** PostgreSQL 15 → 17 (or the majors asked for); PgBouncer when databases for it are given. */
export interface PostgresEnv extends EnvBase {
  engine: 'postgres';
  src: PostgresSandbox;
  dst: PostgresSandbox;
  bouncer?: PgBouncerSandbox;
}
/** Two MariaDB 10.11 servers with the app account on both; HAProxy in front of the source unless turned off. */
export interface MariadbEnv extends EnvBase {
  engine: 'mariadb';
  src: MariadbSandbox;
  dst: MariadbSandbox;
  haproxy?: HaproxySandbox;
}
interface Envs {
  postgres: PostgresEnv;
  mariadb: MariadbEnv;
}
/** One engine's env; `CutoverEnv` alone is either, told apart by `engine`. */
export type CutoverEnv<E extends Engine = Engine> = Envs[E];

export interface EnvOptions {
  /** Source server settings (postgresql.conf / my.cnf). */
  srcSettings?: Record<string, string | number>;
  /** PostgreSQL majors: 15 → 17 unless given. */
  sourceMajor?: number;
  targetMajor?: number;
  /** PgBouncer entries for these source databases. */
  bouncerDatabases?: string[];
  /** PgBouncer entries named differently from their database (schema tenants: alias → database). */
  bouncerAliases?: Record<string, string>;
  /** MariaDB: HAProxy in front of the source (default on). */
  haproxy?: boolean;
}

/** Stops what an env's setup had started before it failed: a beforeAll that throws has no env for afterAll to stop. */
async function stopStarted(...started: Array<{ stop(): Promise<void> } | undefined>): Promise<void> {
  await Promise.all(started.map((p) => p?.stop().catch(() => {})));
}

async function startPostgresEnv(opts: EnvOptions): Promise<PostgresEnv> {
  const src = await PostgresSandbox.start({ major: opts.sourceMajor ?? 15, password: PASSWORD, ...(opts.srcSettings ? { settings: opts.srcSettings } : {}) });
  let dst: PostgresSandbox | undefined;
  let bouncer: PgBouncerSandbox | undefined;
  try {
    dst = await PostgresSandbox.start({ major: opts.targetMajor ?? 17, password: PASSWORD });
    if (opts.bouncerDatabases || opts.bouncerAliases) {
      bouncer = await PgBouncerSandbox.start({
        databases: Object.fromEntries([
          ...(opts.bouncerDatabases ?? []).map((d) => [d, { host: src.host, port: src.port }]),
          ...Object.entries(opts.bouncerAliases ?? {}).map(([alias, dbname]) => [alias, { host: src.host, port: src.port, dbname }]),
        ]),
        users: { postgres: PASSWORD },
        poolMode: 'transaction',
        // Writers keep a connection per tenant: 4 writers × 50 tenants is past PgBouncer's default of 100.
        settings: { max_client_conn: 1000 },
      });
    }
  } catch (e) {
    await stopStarted(src, dst);
    throw e;
  }
  return {
    engine: 'postgres',
    src,
    dst,
    ...(bouncer ? { bouncer } : {}),
    password: PASSWORD,
    env: { SRC_PW: PASSWORD, DST_PW: PASSWORD, ...(bouncer ? { BOUNCER_PW: bouncer.adminPassword } : {}) },
    async stop() {
      await bouncer?.stop();
      await Promise.all([src.stop(), dst.stop()]);
    },
  };
}

async function startMariadbEnv(opts: EnvOptions): Promise<MariadbEnv> {
  const servers = await Promise.allSettled([
    MariadbSandbox.start({ password: PASSWORD, serverId: 1, ...(opts.srcSettings ? { settings: opts.srcSettings } : {}) }),
    MariadbSandbox.start({ password: PASSWORD, serverId: 2 }),
  ]);
  const started = servers.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = servers.find((r) => r.status === 'rejected');
  if (failed) {
    await stopStarted(...started);
    throw failed.reason;
  }
  const [src, dst] = started as [MariadbSandbox, MariadbSandbox];
  let haproxy: HaproxySandbox | undefined;
  try {
    haproxy = opts.haproxy === false ? undefined : await HaproxySandbox.start({ server: { host: src.host, port: src.port }, baseDir: src.dir });
    // Application accounts exist on both servers: a database dump does not carry accounts.
    for (const sb of [src, dst]) await mysqlExec(sb, `CREATE USER '${APP_USER}'@'%' IDENTIFIED BY '${APP_PASSWORD}'`);
  } catch (e) {
    await stopStarted(haproxy, src, dst);
    throw e;
  }
  return {
    engine: 'mariadb',
    src,
    dst,
    ...(haproxy ? { haproxy } : {}),
    password: PASSWORD,
    env: { SRC_PW: PASSWORD, DST_PW: PASSWORD },
    async stop() {
      await haproxy?.stop();
      await Promise.all([src.stop(), dst.stop()]);
    },
  };
}

/** What differs between the engines' envs; everything engine-specific below dispatches on `e.engine`. */
const ENGINE_TABLE: { [E in Engine]: { serversMissing: () => string | undefined; routerMissing: () => string | undefined; start: (opts: EnvOptions) => Promise<Envs[E]> } } = {
  postgres: { serversMissing: () => pg15Missing ?? pg17Missing, routerMissing: () => pgbouncerMissing, start: startPostgresEnv },
  mariadb: { serversMissing: () => mariadbMissing, routerMissing: () => haproxyMissing, start: startMariadbEnv },
};

/** Why an engine's env cannot start here (undefined when it can); `router`: its router too (PgBouncer / HAProxy). */
export function envMissing(engine: Engine, { router = false } = {}): string | undefined {
  return ENGINE_TABLE[engine].serversMissing() ?? (router ? ENGINE_TABLE[engine].routerMissing() : undefined);
}

export async function startCutoverEnv<E extends Engine>(engine: E, opts: EnvOptions = {}): Promise<CutoverEnv<E>> {
  return ENGINE_TABLE[engine].start(opts);
}

/**
 * The env waves tests start: PostgreSQL with PgBouncer entries for the tenants (`bouncerDatabases` or
 * `bouncerAliases`), MariaDB without HAProxy (its waves route through a file router).
 */
export async function startWavesEnv<E extends Engine>(engine: E, opts: Pick<EnvOptions, 'bouncerDatabases' | 'bouncerAliases'> = {}): Promise<CutoverEnv<E>> {
  return ENGINE_TABLE[engine].start(engine === 'mariadb' ? { haproxy: false } : opts);
}

/** A database with some data and the workload table (MariaDB: the app account may write to it on both servers). */
export async function seed(e: CutoverEnv, db: string, rows = 5000): Promise<void> {
  if (e.engine === 'postgres') await seedDatabase(e.src, db, rows);
  else await seedMysqlDatabase(e, db, rows);
}

/** A database with some data, a sequence, and the workload table. */
export async function seedDatabase(sb: PostgresSandbox, db: string, rows = 5000): Promise<void> {
  await exec(sb, 'postgres', `CREATE DATABASE "${db}"`);
  await exec(
    sb,
    db,
    'CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, price numeric(10,2))',
    `INSERT INTO items (name, price) SELECT 'item ' || g, g % 100 FROM generate_series(1, ${rows}) g`,
    workloadTableSql(),
  );
}

/** A database with some data and the workload table; the app account may write to it on both servers. */
export async function seedMysqlDatabase(e: MariadbEnv, db: string, rows = 5000): Promise<void> {
  await mysqlExec(
    e.src,
    `CREATE DATABASE \`${db}\``,
    `USE \`${db}\``,
    'CREATE TABLE items (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(64) NOT NULL, price decimal(10,2)) ENGINE=InnoDB',
    // seq_1_to_N is MariaDB's Sequence engine: it needs a current database.
    `INSERT INTO items (name, price) SELECT CONCAT('item ', seq), seq % 100 FROM seq_1_to_${rows}`,
    mysqlWorkloadTableSql(),
  );
  for (const sb of [e.src, e.dst]) await mysqlExec(sb, `GRANT ALL ON \`${db}\`.* TO '${APP_USER}'@'%'`);
}

export interface PlanOptions {
  db: string;
  stateDir: string;
  /** PostgreSQL only: MariaDB plans take the engine's default. */
  method?: CopyMethod;
  maxWriteBlocked?: string;
  /** Raised by budget tests whose stopped replica makes the lag grow: the budget, not the lag gate, must fire. */
  maxLagBeforeFence?: string;
  /** PostgreSQL: route through PgBouncer when asked; MariaDB: through HAProxy unless `false`. */
  router?: boolean;
  extra?: string;
}

/** The plan of one database of the env, in its state dir. */
export async function writeEnvPlan(e: CutoverEnv, o: PlanOptions): Promise<string> {
  return e.engine === 'postgres' ? writePlan(e, o) : writeMysqlPlan(e, o);
}

const limits = (o: PlanOptions) => `limits: { maxWriteBlocked: ${o.maxWriteBlocked ?? '10s'}${o.maxLagBeforeFence ? `, maxLagBeforeFence: ${o.maxLagBeforeFence}` : ''} }`;

export async function writePlan(e: PostgresEnv, o: PlanOptions): Promise<string> {
  await mkdir(o.stateDir, { recursive: true });
  const file = join(o.stateDir, `${o.db}.plan.yaml`);
  const router = o.router && e.bouncer ? `router: { kind: pgbouncer, admin: "${e.bouncer.adminUrl()}", adminPasswordEnv: BOUNCER_PW, ini: "${e.bouncer.iniPath}", database: "${o.db}" }` : 'router: { kind: none }';
  await writeFile(
    file,
    [
      'engine: postgres',
      `source: { url: "postgres://postgres@127.0.0.1:${e.src.port}/${o.db}", passwordEnv: SRC_PW }`,
      `target: { url: "postgres://postgres@127.0.0.1:${e.dst.port}/${o.db}", passwordEnv: DST_PW }`,
      `scope: { databases: ["${o.db}"] }`,
      `method: ${o.method ?? 'replication'}`,
      limits(o),
      router,
      `state: "${o.stateDir}"`,
      o.extra ?? '',
    ].join('\n'),
  );
  return file;
}

export async function writeMysqlPlan(e: MariadbEnv, o: PlanOptions): Promise<string> {
  const file = join(o.stateDir, `${o.db}.plan.yaml`);
  await writeFile(
    file,
    [
      'engine: mariadb',
      `source: { url: "mariadb://root@127.0.0.1:${e.src.port}/${o.db}", passwordEnv: SRC_PW }`,
      `target: { url: "mariadb://root@127.0.0.1:${e.dst.port}/${o.db}", passwordEnv: DST_PW }`,
      `scope: { databases: ["${o.db}"] }`,
      limits(o),
      o.router === false ? 'router: { kind: none }' : `router: { kind: haproxy, socket: "${e.haproxy!.socket}", backend: ${e.haproxy!.backend}, server: ${e.haproxy!.serverName} }`,
      `state: "${o.stateDir}"`,
      o.extra ?? '',
    ].join('\n'),
  );
  return file;
}

/**
 * Whether the application can write to `db` on one server, through a fresh connection: false when the fence
 * refuses it (PostgreSQL 25006 as postgres; MariaDB 1290 as the app account, root would pass read_only).
 */
export async function appWritable(e: CutoverEnv, server: 'src' | 'dst', db: string): Promise<boolean> {
  return e.engine === 'postgres' ? canWrite(e[server], db) : appCanWrite(e[server], db);
}

/** An admin session on one server's database, the same shape for both engines (each engine's own SQL and placeholders). */
export interface AdminSession {
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  end(): Promise<void>;
}

export async function adminSession(e: CutoverEnv, server: 'src' | 'dst', db: string): Promise<AdminSession> {
  if (e.engine === 'postgres') {
    const c = await client(e[server], { database: db });
    return { query: async (sql, params) => (await c.query(sql, params)).rows, end: () => c.end() };
  }
  const c = await connect(e[server]);
  await c.query(`USE \`${db}\``);
  return { query: async (sql, params) => (await c.query<mysql.RowDataPacket[]>(sql, params))[0], end: () => c.end() };
}

export function workloadThroughBouncer(e: PostgresEnv, db: string, writers = 4): Workload {
  return new Workload({ host: '127.0.0.1', port: e.bouncer!.port, user: 'postgres', password: e.password, database: db, writers, readers: 1 }).start();
}

export function workloadThroughHaproxy(e: MariadbEnv, db: string, writers = 4): MysqlWorkload {
  return new MysqlWorkload({ host: e.haproxy!.host, port: e.haproxy!.port, user: APP_USER, password: APP_PASSWORD, database: db, writers }).start();
}

/** Acknowledged writes missing from a server. */
export async function missingOn(sb: PostgresSandbox, db: string, w: WorkloadResult): Promise<string[]> {
  const have = await keysOn(sb, db);
  return w.acknowledged.filter((k) => !have.has(k));
}

export async function keysOn(sb: PostgresSandbox, db: string, table = WORKLOAD_TABLE): Promise<Set<string>> {
  const c = await client(sb, { database: db });
  try {
    const { rows } = await c.query<{ k: string }>(`SELECT client || ':' || seq AS k FROM ${table}`);
    return new Set(rows.map((r) => r.k));
  } finally {
    await c.end();
  }
}

/** Acknowledged writes missing from a server. */
export async function mysqlMissingOn(sb: MariadbSandbox, db: string, w: WorkloadResult): Promise<string[]> {
  const have = await mysqlKeysOn(sb, db);
  return w.acknowledged.filter((k) => !have.has(k));
}

export async function mysqlKeysOn(sb: MariadbSandbox, db: string): Promise<Set<string>> {
  const c = await connect(sb);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>(`SELECT CONCAT(client, ':', seq) AS k FROM \`${db}\`.${WORKLOAD_TABLE}`);
    return new Set(rows.map((r) => String(r.k)));
  } finally {
    await c.end();
  }
}

/** A fresh connection's INSERT: rejected with 25006 when the database is fenced. */
export async function canWrite(sb: PostgresSandbox, db: string, table = WORKLOAD_TABLE): Promise<boolean> {
  const c = await client(sb, { database: db });
  try {
    await c.query(`INSERT INTO ${table} (client, seq) VALUES (-1, (SELECT coalesce(max(seq), 0) + 1 FROM ${table} WHERE client = -1))`);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === '25006') return false;
    throw e;
  } finally {
    await c.end();
  }
}

/** A fresh app-account connection's INSERT: refused with 1290 while the server is read-only. */
export async function appCanWrite(sb: { host: string; port: number; password: string }, db: string): Promise<boolean> {
  const c = await connect(sb, { user: APP_USER, password: APP_PASSWORD });
  try {
    await c.query(`INSERT INTO \`${db}\`.${WORKLOAD_TABLE} (client, seq) SELECT -1, COALESCE(MAX(seq), 0) + 1 FROM \`${db}\`.${WORKLOAD_TABLE} WHERE client = -1`);
    return true;
  } catch (e) {
    if ((e as { errno?: number }).errno === 1290) return false;
    throw e;
  } finally {
    await c.end();
  }
}

/** Where HAProxy's server points, from `show stat`. */
export async function haproxyPort(e: MariadbEnv): Promise<number> {
  const { HaproxyRuntime } = await import('../../adapters/routers/haproxy-runtime.js');
  const stat = await new HaproxyRuntime(e.haproxy!.socket).server(e.haproxy!.backend, e.haproxy!.serverName);
  return Number(stat.addr.split(':').pop());
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export { pg };
