import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { SAMPLE_DATABASE, stopByPidCommand, type KitEndpoint, type KeptServers, type OnSandboxStarted, type RehearsalKit, type SandboxSet } from '../../src/rehearse/rehearsal-kit.js';
import { sandboxPlan } from '../../src/rehearse/sandbox-plan.js';
import type { RehearsalPrivileges } from '../../src/rehearse/types.js';
import { startAllOrNone } from '../../src/sandbox/registry.js';
import { HaproxySandbox } from '../routers/haproxy-sandbox.js';
import { createManagedAdmin } from './mariadb-managed-profile.js';
import { MariadbSandbox } from './mariadb-sandbox.js';
import { quoteIdent } from './mysql-sql.js';
import { MysqlWorkload, mysqlWorkloadTableSql } from './mysql-workload.js';

const ENV = { source: 'REHEARSE_SOURCE_PASSWORD', target: 'REHEARSE_TARGET_PASSWORD' } as const;
/** The application account: read_only does not stop root (it holds READ ONLY ADMIN), so clients must not be root. */
const APP_USER = 'cutover_app';

async function withConnection<T>(ep: KitEndpoint, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const c = await mysql.createConnection({ host: ep.host, port: ep.port, user: ep.user, ...(ep.password !== undefined ? { password: ep.password } : {}), ...(ep.database ? { database: ep.database } : {}) });
  c.on('error', () => {});
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

export const mariadbKit: RehearsalKit = {
  engine: 'mariadb',
  product: 'MariaDB',
  // HAProxy holds new connections only: the rehearsal's clients connect per operation, the pattern that
  // passes a hold without an error (persistent clients see one dropped connection; docs/mysql-cutover.md).
  startWorkload: (to, o) => new MysqlWorkload({ ...to, writers: o.writers, readers: o.readers, table: o.table, thinkMs: o.thinkMs, connectionPerOperation: true }).start(),
  serverVersion: (ep) => withConnection({ ...ep, database: undefined }, async (c) => String((await c.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v'))[0][0]!.v)),
  recreateTable: (ep, table) =>
    withConnection(ep, async (c) => {
      await c.query(`DROP TABLE IF EXISTS ${quoteIdent(table)}`);
      await c.query(mysqlWorkloadTableSql(table));
    }),
  dropTable: (ep, table) => withConnection(ep, (c) => c.query(`DROP TABLE IF EXISTS ${quoteIdent(table)}`)).then(() => {}),
  keys: (ep, table) => withConnection(ep, async (c) => (await c.query<mysql.RowDataPacket[]>(`SELECT CONCAT(client, ':', seq) AS k FROM ${quoteIdent(table)}`))[0].map((r) => String(r.k))),
  startSandboxes: startMariadbSandboxes,
};

/** Two MariaDB servers (source, target) and HAProxy in front of the source, with an application account on both. */
async function startMariadbSandboxes(onStarted: OnSandboxStarted, privileges: RehearsalPrivileges): Promise<SandboxSet> {
  const password = randomBytes(12).toString('hex');
  const appPassword = randomBytes(12).toString('hex');
  const managed = privileges === 'managed';
  const [src, dst] = (await startAllOrNone([MariadbSandbox.start({ password, serverId: 1 }), MariadbSandbox.start({ password, serverId: 2 })])) as [MariadbSandbox, MariadbSandbox];
  onStarted(`source ${src.label}`, src.dir);
  onStarted(`target ${dst.label}`, dst.dir);
  let haproxy: HaproxySandbox;
  try {
    haproxy = await HaproxySandbox.start({ server: { host: src.host, port: src.port } });
  } catch (e) {
    await Promise.all([src.stop(), dst.stop()]);
    throw e;
  }
  onStarted(`router ${haproxy.label}`, haproxy.dir);
  let planUser = { user: 'root', password };
  try {
    // The managed test profile: the plan's admin holds no SUPER, READ_ONLY ADMIN or BINLOG ADMIN (root stays the provider's).
    const adminPassword = randomBytes(12).toString('hex');
    if (managed) for (const sb of [src, dst]) planUser = await createManagedAdmin(sb, adminPassword);
  } catch (e) {
    await Promise.all([haproxy.stop(), src.stop(), dst.stop()]);
    throw e;
  }
  const root = (port: number, database?: string): KitEndpoint => ({ host: '127.0.0.1', port, user: 'root', password, ...(database ? { database } : {}) });
  const set: SandboxSet = {
    via: { endpoint: { host: haproxy.host, port: haproxy.port, user: APP_USER, password: appPassword, database: SAMPLE_DATABASE }, router: `HAProxy ${haproxy.host}:${haproxy.port}` },

    async loadSample(rows, table) {
      await withConnection(root(src.port), async (c) => {
        await c.query(`CREATE DATABASE ${quoteIdent(SAMPLE_DATABASE)}`);
        await c.query(`USE ${quoteIdent(SAMPLE_DATABASE)}`);
        await c.query('CREATE TABLE items (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(64) NOT NULL, price decimal(10,2) NOT NULL, note char(32)) ENGINE=InnoDB');
        // seq_1_to_N comes from MariaDB's Sequence engine.
        await c.query(`INSERT INTO items (name, price, note) SELECT CONCAT('item ', seq), (seq % 1000) / 10, MD5(seq) FROM seq_1_to_${Math.floor(rows)}`);
        await c.query(mysqlWorkloadTableSql(table));
      });
      // A database dump does not carry accounts: the application account exists on both servers.
      for (const port of [src.port, dst.port]) {
        await withConnection(root(port), async (c) => {
          await c.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [APP_USER, appPassword]);
          await c.query(`GRANT ALL ON ${quoteIdent(SAMPLE_DATABASE)}.* TO ?@'%'`, [APP_USER]);
        });
      }
    },

    async plan(maxWriteBlocked) {
      const url = (port: number) => `mariadb://${planUser.user}@127.0.0.1:${port}/${SAMPLE_DATABASE}`;
      const plan = await sandboxPlan(src.dir, 'rehearsal.plan.yaml', {
        engine: 'mariadb',
        source: { url: url(src.port), passwordEnv: ENV.source },
        target: { url: url(dst.port), passwordEnv: ENV.target },
        scope: { databases: [SAMPLE_DATABASE] },
        method: 'replication',
        limits: { maxWriteBlocked },
        verify: 'rowcounts',
        router: { kind: 'haproxy', socket: haproxy.socket, backend: haproxy.backend, server: haproxy.serverName },
        // Managed: no `SET GLOBAL read_only`; the fence locks the application account and revokes its writes.
        ...(managed ? { privileges: 'managed' as const, readOnly: { scope: 'server', mode: 'strict', roles: [APP_USER] } } : {}),
      });
      return { plan, env: { [ENV.source]: planUser.password, [ENV.target]: planUser.password } };
    },

    async kept(): Promise<KeptServers> {
      // A client option file: the mariadb client reads the password from it, never from argv.
      const passfile = join(src.dir, 'client.cnf');
      await writeFile(passfile, `[client]\nuser=root\npassword=${password}\n`, { mode: 0o600 });
      const url = (port: number) => `mariadb://root@127.0.0.1:${port}/${SAMPLE_DATABASE}`;
      const client = (port: number) => `mariadb --defaults-extra-file=${passfile} -h 127.0.0.1 -P ${port} ${SAMPLE_DATABASE}`;
      return {
        source: url(src.port),
        target: url(dst.port),
        router: url(haproxy.port),
        passfile,
        connect: { source: client(src.port), target: client(dst.port), router: client(haproxy.port) },
        stopCommands: [stopByPidCommand(join(haproxy.dir, 'haproxy.pid'), haproxy.dir), stopByPidCommand(join(dst.dir, 'mariadbd.pid'), dst.dir), stopByPidCommand(join(src.dir, 'mariadbd.pid'), src.dir)],
      };
    },

    async stop() {
      await haproxy.stop();
      await Promise.all([src.stop(), dst.stop()]);
    },
  };
  return set;
}
