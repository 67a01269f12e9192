import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { HaproxySandbox } from '../../adapters/routers/haproxy-sandbox.js';
import { MysqlWorkload, mysqlWorkloadTableSql } from '../../adapters/mysql/mysql-workload.js';
import { WORKLOAD_TABLE, type WorkloadResult } from '../../src/sandbox/workload.js';
import { connect, exec, MariadbSandbox } from './mariadb.js';

export const APP_USER = 'app';
export const APP_PASSWORD = 'App:pw/2%';

/** Two MariaDB 10.11 servers with the same root password, HAProxy in front of the source. */
export interface MysqlCutoverEnv {
  src: MariadbSandbox;
  dst: MariadbSandbox;
  haproxy: HaproxySandbox;
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startMysqlCutoverEnv(): Promise<MysqlCutoverEnv> {
  const password = 'Sh@red:pw/1%';
  const [src, dst] = await Promise.all([MariadbSandbox.start({ password, serverId: 1 }), MariadbSandbox.start({ password, serverId: 2 })]);
  const haproxy = await HaproxySandbox.start({ server: { host: src.host, port: src.port }, baseDir: src.dir });
  // Application accounts exist on both servers: a database dump does not carry accounts.
  for (const sb of [src, dst]) await exec(sb, `CREATE USER '${APP_USER}'@'%' IDENTIFIED BY '${APP_PASSWORD}'`);
  return {
    src,
    dst,
    haproxy,
    env: { SRC_PW: password, DST_PW: password },
    async stop() {
      await haproxy.stop();
      await Promise.all([src.stop(), dst.stop()]);
    },
  };
}

/** A database with some data and the workload table; the app account may write to it on both servers. */
export async function seedMysqlDatabase(e: MysqlCutoverEnv, db: string, rows = 5000): Promise<void> {
  await exec(
    e.src,
    `CREATE DATABASE \`${db}\``,
    `USE \`${db}\``,
    'CREATE TABLE items (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(64) NOT NULL, price decimal(10,2)) ENGINE=InnoDB',
    // seq_1_to_N is MariaDB's Sequence engine: it needs a current database.
    `INSERT INTO items (name, price) SELECT CONCAT('item ', seq), seq % 100 FROM seq_1_to_${rows}`,
    mysqlWorkloadTableSql(),
  );
  for (const sb of [e.src, e.dst]) await exec(sb, `GRANT ALL ON \`${db}\`.* TO '${APP_USER}'@'%'`);
}

export interface MysqlPlanOptions {
  db: string;
  stateDir: string;
  maxWriteBlocked?: string;
  /** Raised by budget tests whose stopped replica makes the lag grow: the budget, not the lag gate, must fire. */
  maxLagBeforeFence?: string;
  router?: boolean;
  extra?: string;
}

export async function writeMysqlPlan(e: MysqlCutoverEnv, o: MysqlPlanOptions): Promise<string> {
  const file = join(o.stateDir, `${o.db}.plan.yaml`);
  await writeFile(
    file,
    [
      'engine: mariadb',
      `source: { url: "mariadb://root@127.0.0.1:${e.src.port}/${o.db}", passwordEnv: SRC_PW }`,
      `target: { url: "mariadb://root@127.0.0.1:${e.dst.port}/${o.db}", passwordEnv: DST_PW }`,
      `scope: { databases: ["${o.db}"] }`,
      `limits: { maxWriteBlocked: ${o.maxWriteBlocked ?? '10s'}${o.maxLagBeforeFence ? `, maxLagBeforeFence: ${o.maxLagBeforeFence}` : ''} }`,
      o.router === false ? 'router: { kind: none }' : `router: { kind: haproxy, socket: "${e.haproxy.socket}", backend: ${e.haproxy.backend}, server: ${e.haproxy.serverName} }`,
      `state: "${o.stateDir}"`,
      o.extra ?? '',
    ].join('\n'),
  );
  return file;
}

export function workloadThroughHaproxy(e: MysqlCutoverEnv, db: string, writers = 4): MysqlWorkload {
  return new MysqlWorkload({ host: e.haproxy.host, port: e.haproxy.port, user: APP_USER, password: APP_PASSWORD, database: db, writers }).start();
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

/** Acknowledged writes missing from a server. */
export async function mysqlMissingOn(sb: MariadbSandbox, db: string, w: WorkloadResult): Promise<string[]> {
  const have = await mysqlKeysOn(sb, db);
  return w.acknowledged.filter((k) => !have.has(k));
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
export async function haproxyPort(e: MysqlCutoverEnv): Promise<number> {
  const { HaproxyRuntime } = await import('../../adapters/routers/haproxy-runtime.js');
  const stat = await new HaproxyRuntime(e.haproxy.socket).server(e.haproxy.backend, e.haproxy.serverName);
  return Number(stat.addr.split(':').pop());
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
