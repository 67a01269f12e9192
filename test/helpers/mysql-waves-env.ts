import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { mysqlWorkloadTableSql } from '../../adapters/mysql/mysql-workload.js';
import { WORKLOAD_TABLE } from '../../src/sandbox/workload.js';
import { connect, exec, MariadbSandbox } from './mariadb.js';
import type { TenantWrite } from './waves-env.js';

export const APP_USER = 'app';
export const APP_PASSWORD = 'App:pw/2%';

/** Two MariaDB servers (same root password), the app account on both, and the JSON map of tenant endpoints. */
export interface MysqlWavesEnv {
  src: MariadbSandbox;
  dst: MariadbSandbox;
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startMysqlWavesEnv(): Promise<MysqlWavesEnv> {
  const password = 'Sh@red:pw/1%';
  const [src, dst] = await Promise.all([MariadbSandbox.start({ password, serverId: 1 }), MariadbSandbox.start({ password, serverId: 2 })]);
  for (const sb of [src, dst]) await exec(sb, `CREATE USER '${APP_USER}'@'%' IDENTIFIED BY '${APP_PASSWORD}'`);
  return {
    src,
    dst,
    env: { SRC_PW: password, DST_PW: password },
    async stop() {
      await Promise.all([src.stop(), dst.stop()]);
    },
  };
}

/** Each tenant a database with some rows and the workload table; the app account may write to it on both servers. */
export async function seedMysqlTenants(e: MysqlWavesEnv, tenants: readonly string[], rows = 200): Promise<void> {
  for (const t of tenants) {
    await exec(
      e.src,
      `CREATE DATABASE \`${t}\``,
      `USE \`${t}\``,
      'CREATE TABLE items (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(64) NOT NULL, price decimal(10,2)) ENGINE=InnoDB',
      `INSERT INTO items (name, price) SELECT CONCAT('item ', seq), seq % 100 FROM seq_1_to_${rows}`,
      mysqlWorkloadTableSql(),
    );
    for (const sb of [e.src, e.dst]) await exec(sb, `GRANT ALL ON \`${t}\`.* TO '${APP_USER}'@'%'`);
  }
}

export async function writeMysqlWavesPlan(e: MysqlWavesEnv, o: { name: string; tenants: readonly string[]; stateDir: string; routerFile: string; waves?: string }): Promise<string> {
  await mkdir(o.stateDir, { recursive: true });
  const file = join(o.stateDir, `${o.name}.plan.yaml`);
  await writeFile(
    file,
    [
      'engine: mariadb',
      `source: { url: "mariadb://root@127.0.0.1:${e.src.port}/", passwordEnv: SRC_PW }`,
      `target: { url: "mariadb://root@127.0.0.1:${e.dst.port}/", passwordEnv: DST_PW }`,
      `scope: { tenants: [${o.tenants.map((t) => `"${t}"`).join(', ')}] }`,
      'method: dump',
      `readOnly: { mode: strict, roles: [${APP_USER}], drainTimeout: 300ms }`,
      `router: { kind: file, path: "${o.routerFile}", format: json }`,
      `state: "${o.stateDir}"`,
      o.waves ?? 'waves: { maxWriteBlockedPerTenant: 3s }',
    ].join('\n') + '\n',
  );
  return file;
}

/** Where the router file sends a tenant: its entry, or the source when it has none (not moved yet). */
async function endpointOf(e: MysqlWavesEnv, routerFile: string, tenant: string): Promise<number> {
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
    private readonly e: MysqlWavesEnv,
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
