import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import type { CopyMethod } from '../../src/plan/types.js';
import { PgBouncerSandbox } from '../../adapters/routers/pgbouncer-sandbox.js';
import { PostgresSandbox } from '../../adapters/postgres/postgres-sandbox.js';
import { WORKLOAD_TABLE, type WorkloadResult } from '../../src/sandbox/workload.js';
import { Workload, workloadTableSql } from '../../adapters/postgres/postgres-workload.js';
import { client, exec } from './pg.js';

/** A PG15 source, a PG17 target (or the majors asked for) with the same superuser password, and (optionally) a PgBouncer in front. */
export interface CutoverEnv {
  src: PostgresSandbox;
  dst: PostgresSandbox;
  bouncer?: PgBouncerSandbox;
  password: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** `bouncerAliases`: PgBouncer entries named differently from their database (schema tenants: alias → database). */
export async function startCutoverEnv(opts: { bouncerDatabases?: string[]; bouncerAliases?: Record<string, string>; srcSettings?: Record<string, string | number>; sourceMajor?: number; targetMajor?: number } = {}): Promise<CutoverEnv> {
  const password = 'Sh@red:pw/1%';
  const src = await PostgresSandbox.start({ major: opts.sourceMajor ?? 15, password, ...(opts.srcSettings ? { settings: opts.srcSettings } : {}) });
  const dst = await PostgresSandbox.start({ major: opts.targetMajor ?? 17, password });
  let bouncer: PgBouncerSandbox | undefined;
  if (opts.bouncerDatabases || opts.bouncerAliases) {
    bouncer = await PgBouncerSandbox.start({
      databases: Object.fromEntries([
        ...(opts.bouncerDatabases ?? []).map((d) => [d, { host: src.host, port: src.port }]),
        ...Object.entries(opts.bouncerAliases ?? {}).map(([alias, dbname]) => [alias, { host: src.host, port: src.port, dbname }]),
      ]),
      users: { postgres: password },
      poolMode: 'transaction',
      // Writers keep a connection per tenant: 4 writers × 50 tenants is past PgBouncer's default of 100.
      settings: { max_client_conn: 1000 },
    });
  }
  return {
    src,
    dst,
    ...(bouncer ? { bouncer } : {}),
    password,
    env: { SRC_PW: password, DST_PW: password, ...(bouncer ? { BOUNCER_PW: bouncer.adminPassword } : {}) },
    async stop() {
      await bouncer?.stop();
      await Promise.all([src.stop(), dst.stop()]);
    },
  };
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

export interface PlanOptions {
  db: string;
  stateDir: string;
  method?: CopyMethod;
  maxWriteBlocked?: string;
  /** Raised by budget tests whose stopped replica makes the lag grow: the budget, not the lag gate, must fire. */
  maxLagBeforeFence?: string;
  router?: boolean;
  extra?: string;
}

export async function writePlan(e: CutoverEnv, o: PlanOptions): Promise<string> {
  await mkdir(o.stateDir, { recursive: true });
  const file = join(o.stateDir, `${o.db}.plan.yaml`);
  const router =
    o.router && e.bouncer
      ? `router: { kind: pgbouncer, admin: "${e.bouncer.adminUrl()}", adminPasswordEnv: BOUNCER_PW, ini: "${e.bouncer.iniPath}", database: "${o.db}" }`
      : 'router: { kind: none }';
  await writeFile(
    file,
    [
      'engine: postgres',
      `source: { url: "postgres://postgres@127.0.0.1:${e.src.port}/${o.db}", passwordEnv: SRC_PW }`,
      `target: { url: "postgres://postgres@127.0.0.1:${e.dst.port}/${o.db}", passwordEnv: DST_PW }`,
      `scope: { databases: ["${o.db}"] }`,
      `method: ${o.method ?? 'replication'}`,
      `limits: { maxWriteBlocked: ${o.maxWriteBlocked ?? '10s'}${o.maxLagBeforeFence ? `, maxLagBeforeFence: ${o.maxLagBeforeFence}` : ''} }`,
      router,
      `state: "${o.stateDir}"`,
      o.extra ?? '',
    ].join('\n'),
  );
  return file;
}

export function workloadThroughBouncer(e: CutoverEnv, db: string, writers = 4): Workload {
  return new Workload({ host: '127.0.0.1', port: e.bouncer!.port, user: 'postgres', password: e.password, database: db, writers, readers: 1 }).start();
}

/** Acknowledged writes missing from a server. */
export async function missingOn(sb: PostgresSandbox, db: string, w: WorkloadResult): Promise<string[]> {
  const c = await client(sb, { database: db });
  try {
    const { rows } = await c.query<{ k: string }>(`SELECT client || ':' || seq AS k FROM ${WORKLOAD_TABLE}`);
    const have = new Set(rows.map((r) => r.k));
    return w.acknowledged.filter((k) => !have.has(k));
  } finally {
    await c.end();
  }
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export { pg };
