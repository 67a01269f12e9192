import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { SAMPLE_DATABASE, stopByPidCommand, type KitEndpoint, type KeptServers, type OnSandboxStarted, type RehearsalKit, type SandboxSet } from '../../src/rehearse/rehearsal-kit.js';
import type { RehearsalPrivileges } from '../../src/rehearse/types.js';
import { sandboxPlan } from '../../src/rehearse/sandbox-plan.js';
import { startAllOrNone } from '../../src/sandbox/registry.js';
import { PgBouncerSandbox } from '../routers/pgbouncer-sandbox.js';
import { MANAGED_APP_ROLE as APP_ROLE, MANAGED_REPLICATION_ROLE as REPLICATION_ROLE, managedSetup, providerSession, type ManagedAdmin } from './postgres-managed-profile.js';
import { REHEARSAL_TARGET_MAJOR, createSampleDatabase, withClient } from './postgres-rehearsal-sample.js';
import { PostgresSandbox } from './postgres-sandbox.js';
import { quoteIdent } from './postgres-sql.js';
import { startTenantSandboxes } from './postgres-tenant-rehearsal.js';
import { Workload, workloadTableSql } from './postgres-workload.js';

/** Names of the variables the sandbox plan reads its passwords from (an env map private to the rehearsal). */
const ENV = { source: 'REHEARSE_SOURCE_PASSWORD', target: 'REHEARSE_TARGET_PASSWORD', router: 'REHEARSE_ROUTER_PASSWORD', replication: 'REHEARSE_REPLICATION_PASSWORD' } as const;

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
async function startPostgresSandboxes(onStarted: OnSandboxStarted, privileges: RehearsalPrivileges): Promise<SandboxSet> {
  const password = randomBytes(12).toString('hex');
  const managed = privileges === 'managed';
  const appPassword = randomBytes(12).toString('hex');
  // A managed admin cannot quiet the log for its own session: the provider's parameters keep a failed CREATE
  // SUBSCRIPTION's text (it carries the replication password) out of the target's log (docs/managed.md).
  const dstSettings = managed ? { settings: { log_min_error_statement: 'log' } } : {};
  const [src, dst] = (await startAllOrNone([PostgresSandbox.start({ major: 15, password }), PostgresSandbox.start({ major: REHEARSAL_TARGET_MAJOR, password, ...dstSettings })])) as [PostgresSandbox, PostgresSandbox];
  onStarted(`source ${src.label}`, src.dir);
  onStarted(`target ${dst.label}`, dst.dir);
  let bouncer: PgBouncerSandbox;
  let admin: ManagedAdmin | undefined;
  try {
    if (managed) admin = await managedSetup(src, dst, randomBytes(12).toString('hex'), appPassword);
    bouncer = await PgBouncerSandbox.start({ databases: { [SAMPLE_DATABASE]: { host: src.host, port: src.port } }, users: managed ? { [APP_ROLE]: appPassword } : { postgres: password }, poolMode: 'transaction' });
  } catch (e) {
    await Promise.all([src.stop(), dst.stop()]);
    throw e;
  }
  onStarted(`router ${bouncer.label} (transaction pooling)`, bouncer.dir);
  const superuser = (port: number): KitEndpoint & { database: string } => ({ host: '127.0.0.1', port, user: 'postgres', password, database: SAMPLE_DATABASE });
  const planUser = admin ? { user: admin.user, password: admin.password } : { user: 'postgres', password };
  let provider: pg.Client | undefined;

  return {
    via: {
      endpoint: managed ? { ...superuser(bouncer.port), user: APP_ROLE, password: appPassword } : superuser(bouncer.port),
      router: `PgBouncer ${bouncer.host}:${bouncer.port} (transaction pooling)${managed ? `, clients as ${APP_ROLE}` : ''}`,
    },

    /** `rows` items (a bigserial key, so the sequences step has work) and the workload table. */
    async loadSample(rows, table) {
      await createSampleDatabase(superuser(src.port), SAMPLE_DATABASE, rows, table, admin ? { src, admin, appRole: APP_ROLE } : undefined);
      // The provider's own superuser session (a monitoring agent): the admin cannot end it; the fence names it.
      if (admin) provider = await providerSession(src, SAMPLE_DATABASE);
    },

    async plan(maxWriteBlocked) {
      const url = (port: number) => `postgres://${planUser.user}@127.0.0.1:${port}/${SAMPLE_DATABASE}`;
      const plan = await sandboxPlan(src.dir, 'rehearsal.plan.yaml', {
        engine: 'postgres',
        source: { url: url(src.port), passwordEnv: ENV.source, ...(managed ? { replication: { user: REPLICATION_ROLE, passwordEnv: ENV.replication } } : {}) },
        target: { url: url(dst.port), passwordEnv: ENV.target },
        scope: { databases: [SAMPLE_DATABASE] },
        method: 'replication',
        readOnly: { scope: 'database', drainTimeout: '2s' },
        limits: { maxWriteBlocked },
        verify: 'rowcounts',
        router: { kind: 'pgbouncer', admin: bouncer.adminUrl(), adminPasswordEnv: ENV.router, ini: bouncer.iniPath, database: SAMPLE_DATABASE },
        ...(managed ? { privileges: 'managed' as const } : {}),
      });
      return { plan, env: { [ENV.source]: planUser.password, [ENV.target]: planUser.password, [ENV.router]: bouncer.adminPassword, ...(managed ? { [ENV.replication]: password } : {}) } };
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
      await provider?.end().catch(() => {});
      await bouncer.stop();
      await Promise.all([src.stop(), dst.stop()]);
    },
  };
}
