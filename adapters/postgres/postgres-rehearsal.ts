import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SAMPLE_DATABASE, stopByPidCommand, type KitEndpoint, type KeptServers, type OnSandboxStarted, type RehearsalKit, type SandboxSet } from '../../src/rehearse/rehearsal-kit.js';
import { sandboxPlan } from '../../src/rehearse/sandbox-plan.js';
import { startAllOrNone } from '../../src/sandbox/registry.js';
import { PgBouncerSandbox } from '../routers/pgbouncer-sandbox.js';
import { REHEARSAL_TARGET_MAJOR, loadSampleTables, withClient } from './postgres-rehearsal-sample.js';
import { PostgresSandbox } from './postgres-sandbox.js';
import { quoteIdent } from './postgres-sql.js';
import { startTenantSandboxes } from './postgres-tenant-rehearsal.js';
import { Workload, workloadTableSql } from './postgres-workload.js';

/** Names of the variables the sandbox plan reads its passwords from (an env map private to the rehearsal). */
const ENV = { source: 'REHEARSE_SOURCE_PASSWORD', target: 'REHEARSE_TARGET_PASSWORD', router: 'REHEARSE_ROUTER_PASSWORD' } as const;

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
  startSandboxes: startPostgresSandboxes,
  startTenantSandboxes,
};

/**
 * A PostgreSQL 15 source, a PostgreSQL 18 target and a transaction-pooling PgBouncer in front of the source.
 * If one fails to start, the ones already up are stopped; each is also in the signal-cleanup registry.
 */
async function startPostgresSandboxes(onStarted: OnSandboxStarted): Promise<SandboxSet> {
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
