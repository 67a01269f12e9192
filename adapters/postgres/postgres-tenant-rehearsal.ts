import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { KitEndpoint, OnSandboxStarted, TenantSandboxSet } from '../../src/rehearse/rehearsal-kit.js';
import { sandboxPlan } from '../../src/rehearse/sandbox-plan.js';
import { startAllOrNone } from '../../src/sandbox/registry.js';
import { ClientWorkload, type ClientWorkloadOptions, type WorkloadOp } from '../../src/sandbox/workload.js';
import { PgBouncerSandbox } from '../routers/pgbouncer-sandbox.js';
import { REHEARSAL_TARGET_MAJOR, createSampleDatabase } from './postgres-rehearsal-sample.js';
import type { RehearsalPrivileges } from '../../src/rehearse/types.js';
import { MANAGED_APP_ROLE, MANAGED_REPLICATION_ROLE, managedSetup, providerSession, type ManagedAdmin } from './postgres-managed-profile.js';
import { endAll } from './postgres-connection.js';
import { PostgresSandbox } from './postgres-sandbox.js';

/** Names of the variables the sandbox plan reads its passwords from (an env map private to the rehearsal). */
const ENV = { source: 'REHEARSE_SOURCE_PASSWORD', target: 'REHEARSE_TARGET_PASSWORD', router: 'REHEARSE_ROUTER_PASSWORD', replication: 'REHEARSE_REPLICATION_PASSWORD' } as const;

/** tenant_01 … tenant_N: zero-padded so `order: name` and the listed order agree. */
function tenantNames(n: number): string[] {
  const width = String(n).length;
  return Array.from({ length: n }, (_, i) => `tenant_${String(i + 1).padStart(Math.max(2, width), '0')}`);
}

/**
 * A PostgreSQL 15 source with `n` tenant databases, a PostgreSQL 18 target and a transaction-pooling PgBouncer
 * with one `[databases]` entry per tenant, pointing at the source. If one fails to start, the others are stopped.
 * `managed`: the managed test profile as in the single rehearsal — the wave runs as an admin without superuser
 * who owns every tenant database, the clients write as the application role, and a provider superuser session
 * sits on the first tenant.
 */
export async function startTenantSandboxes(n: number, onStarted: OnSandboxStarted, privileges: RehearsalPrivileges = 'superuser'): Promise<TenantSandboxSet> {
  const password = randomBytes(12).toString('hex');
  const appPassword = randomBytes(12).toString('hex');
  const managed = privileges === 'managed';
  const tenants = tenantNames(n);
  // A managed admin cannot quiet the log for its own session: the provider's parameters do (docs/managed.md).
  const dstSettings = managed ? { settings: { log_min_error_statement: 'log' } } : {};
  const [src, dst] = (await startAllOrNone([PostgresSandbox.start({ major: 15, password }), PostgresSandbox.start({ major: REHEARSAL_TARGET_MAJOR, password, ...dstSettings })])) as [PostgresSandbox, PostgresSandbox];
  onStarted(`source ${src.label}`, src.dir);
  onStarted(`target ${dst.label}`, dst.dir);
  let bouncer: PgBouncerSandbox;
  let admin: ManagedAdmin | undefined;
  try {
    if (managed) admin = await managedSetup(src, dst, randomBytes(12).toString('hex'), appPassword);
    bouncer = await PgBouncerSandbox.start({
      databases: Object.fromEntries(tenants.map((t) => [t, { host: src.host, port: src.port }])),
      users: managed ? { [MANAGED_APP_ROLE]: appPassword } : { postgres: password },
      poolMode: 'transaction',
      // Every writer keeps a connection per tenant it wrote to: writers × tenants client connections.
      settings: { max_client_conn: Math.max(100, 20 * n + 50) },
    });
  } catch (e) {
    await Promise.all([src.stop(), dst.stop()]);
    throw e;
  }
  onStarted(`router ${bouncer.label} (transaction pooling, ${n} tenant databases)`, bouncer.dir);
  const superuser = (port: number): KitEndpoint => ({ host: '127.0.0.1', port, user: 'postgres', password });
  // Without a database: each tenant is its own `[databases]` entry.
  const router = managed ? { ...superuser(bouncer.port), user: MANAGED_APP_ROLE, password: appPassword } : superuser(bouncer.port);
  const planUser = admin ? { user: admin.user, password: admin.password } : { user: 'postgres', password };
  let provider: pg.Client | undefined;

  return {
    tenants,
    source: superuser(src.port),
    target: superuser(dst.port),
    routerLabel: `PgBouncer ${bouncer.host}:${bouncer.port} (transaction pooling, ${n} tenant databases)${managed ? `, clients as ${MANAGED_APP_ROLE}` : ''}`,

    async loadSample(rowsPerTenant, table) {
      for (const t of tenants) await createSampleDatabase(superuser(src.port), t, rowsPerTenant, table, admin ? { src, admin, appRole: MANAGED_APP_ROLE } : undefined);
      // The provider's own superuser session (a monitoring agent) on one tenant: the admin cannot end it; its fence names it.
      if (admin) provider = await providerSession(src, tenants[0]!);
    },

    async plan(maxWriteBlockedPerTenant) {
      const url = (port: number) => `postgres://${planUser.user}@127.0.0.1:${port}/postgres`;
      const plan = await sandboxPlan(src.dir, 'rehearsal-tenants.plan.yaml', {
        engine: 'postgres',
        source: { url: url(src.port), passwordEnv: ENV.source, ...(managed ? { replication: { user: MANAGED_REPLICATION_ROLE, passwordEnv: ENV.replication } } : {}) },
        target: { url: url(dst.port), passwordEnv: ENV.target },
        scope: { tenants },
        method: 'replication',
        verify: 'rowcounts',
        waves: { concurrency: 1, maxWriteBlockedPerTenant },
        router: { kind: 'pgbouncer', admin: bouncer.adminUrl(), adminPasswordEnv: ENV.router, ini: bouncer.iniPath, database: tenants[0]! },
        ...(managed ? { privileges: 'managed' as const } : {}),
      });
      return { plan, env: { [ENV.source]: planUser.password, [ENV.target]: planUser.password, [ENV.router]: bouncer.adminPassword, ...(managed ? { [ENV.replication]: password } : {}) } };
    },

    startWorkload: (o) => new TenantWorkload(router, tenants, o).start(),

    async stop() {
      await provider?.end().catch(() => {});
      await bouncer.stop();
      await Promise.all([src.stop(), dst.stop()]);
    },
  };
}

type TenantConnections = Map<string, pg.Client>;

/**
 * Writers and readers that each pick a random tenant per operation and go through that tenant's PgBouncer
 * entry, keeping one connection per tenant, as an application with a pool per tenant does. It remembers which
 * tenant every operation went to, so acknowledged writes are looked up on the right database.
 */
class TenantWorkload extends ClientWorkload<TenantConnections> {
  private readonly tenantOfOp = new Map<string, string>();

  constructor(
    private readonly router: KitEndpoint,
    private readonly tenants: readonly string[],
    opts: ClientWorkloadOptions,
  ) {
    super(opts);
  }

  tenantOf(op: Pick<WorkloadOp, 'kind' | 'client' | 'seq'>): string | undefined {
    return this.tenantOfOp.get(`${op.kind}:${op.client}:${op.seq}`);
  }

  protected async connect(): Promise<TenantConnections> {
    return new Map();
  }

  protected async execute(conns: TenantConnections, kind: 'write' | 'read', table: string, client: number, seq: number): Promise<void> {
    const tenant = this.tenants[Math.floor(Math.random() * this.tenants.length)]!;
    this.tenantOfOp.set(`${kind}:${client}:${seq}`, tenant);
    let c = conns.get(tenant);
    if (!c) {
      c = new pg.Client({
        host: this.router.host,
        port: this.router.port,
        user: this.router.user,
        password: this.router.password,
        database: tenant,
        application_name: 'cutover-workload',
        connectionTimeoutMillis: 30_000,
      });
      c.on('error', () => {});
      conns.set(tenant, c);
      await c.connect();
    }
    if (kind === 'write') await c.query(`INSERT INTO ${table} (client, seq) VALUES ($1, $2)`, [client, seq]);
    else await c.query(`SELECT count(*) FROM ${table}`);
  }

  protected outcome(e: unknown): { outcome: 'fail' | 'unknown'; error: string } {
    // A SQLSTATE means the server refused the statement; anything else (a dropped connection) leaves a write in doubt.
    const err = e as { code?: string; message?: string };
    const sqlstate = err.code !== undefined && /^[0-9A-Z]{5}$/.test(err.code);
    return { outcome: sqlstate ? 'fail' : 'unknown', error: err.code ? `${err.code} ${err.message ?? ''}`.trim() : (err.message ?? String(e)) };
  }

  protected async close(conns: TenantConnections): Promise<void> {
    await endAll(conns.values());
  }
}
