#!/usr/bin/env node
// Waves benchmark: N small tenant databases (default 100) moved from a sandbox PostgreSQL 15 to a sandbox
// PostgreSQL 17 through one PgBouncer (one [databases] entry per tenant) with `cutover waves`, while 4
// writers insert into random tenants. Prints the per-tenant write-blocked window p50/p95/max and the wall time.
//   npx tsc -p tsconfig.json && node scripts/bench/waves-pg.mjs [--tenants 100] [--concurrency 4] [--rows 200] [--schemas]
// --schemas: the tenants are schemas of one database "app" (trigger fence, one PgBouncer alias per tenant).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { waves } from '../../dist/src/index.js';
import { PgBouncerSandbox } from '../../dist/adapters/routers/pgbouncer-sandbox.js';
import { PostgresSandbox } from '../../dist/adapters/postgres/postgres-sandbox.js';
import { installSandboxCleanup, stopAllSandboxes } from '../../dist/src/sandbox/registry.js';
import { WORKLOAD_TABLE } from '../../dist/src/sandbox/workload.js';
import { workloadTableSql } from '../../dist/adapters/postgres/postgres-workload.js';

const { values: args } = parseArgs({
  options: { tenants: { type: 'string', default: '100' }, concurrency: { type: 'string', default: '4' }, rows: { type: 'string', default: '200' }, schemas: { type: 'boolean', default: false } },
});
const schemas = args.schemas;
const n = Number(args.tenants);
const concurrency = Number(args.concurrency);
const rows = Number(args.rows);
const PASSWORD = 'bench-pw';
installSandboxCleanup();

const connect = async (port, database) => {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: PASSWORD, database });
  c.on('error', () => {});
  await c.connect();
  return c;
};

try {
  const tenants = Array.from({ length: n }, (_, i) => `t${String(i + 1).padStart(3, '0')}`);
  const [src, dst] = await Promise.all([PostgresSandbox.start({ major: 15, password: PASSWORD }), PostgresSandbox.start({ major: 17, password: PASSWORD })]);
  const bouncer = await PgBouncerSandbox.start({
    databases: Object.fromEntries(tenants.map((t) => [t, { host: src.host, port: src.port, ...(schemas ? { dbname: 'app' } : {}) }])),
    users: { postgres: PASSWORD },
    poolMode: 'transaction',
    settings: { max_client_conn: 1000, default_pool_size: 5 },
  });
  const seed0 = performance.now();
  const admin = await connect(src.port, 'postgres');
  if (schemas) await admin.query(`CREATE DATABASE app`);
  for (const t of tenants) {
    if (!schemas) await admin.query(`CREATE DATABASE "${t}"`);
    const c = await connect(src.port, schemas ? 'app' : t);
    const into = schemas ? `CREATE SCHEMA "${t}"; SET search_path TO "${t}";` : '';
    await c.query(`${into} CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL); INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, ${rows}) g; ${workloadTableSql()}`);
    await c.end();
  }
  await admin.end();
  console.error(`seeded ${n} tenant ${schemas ? 'schemas' : 'databases'} × ${rows} rows in ${Math.round(performance.now() - seed0)} ms`);

  const dir = await mkdtemp(join(src.dir, 'waves-bench-'));
  const plan = join(dir, 'tenants.yaml');
  await writeFile(
    plan,
    [
      `source: { url: "postgres://postgres@127.0.0.1:${src.port}/postgres", passwordEnv: SRC_PW }`,
      `target: { url: "postgres://postgres@127.0.0.1:${dst.port}/postgres", passwordEnv: DST_PW }`,
      schemas
        ? `scope: { tenants: { query: "SELECT nspname::text FROM pg_namespace WHERE nspname ~ '^t[0-9]{3}$' ORDER BY 1", database: app } }`
        : `scope: { tenants: { query: "SELECT datname FROM pg_database WHERE datname ~ '^t[0-9]{3}$' ORDER BY datname" } }`,
      `router: { kind: pgbouncer, admin: "${bouncer.adminUrl()}", adminPasswordEnv: BOUNCER_PW, ini: "${bouncer.iniPath}", database: t001 }`,
      `waves: { concurrency: ${concurrency} }`,
      `state: "${join(dir, 'state')}"`,
    ].join('\n') + '\n',
  );

  let stopping = false;
  let acked = 0;
  let errors = 0;
  const errorKinds = new Map();
  const writer = async (id) => {
    const conns = new Map();
    let seq = 0;
    while (!stopping) {
      const t = tenants[Math.floor(Math.random() * n)];
      try {
        if (!conns.has(t)) conns.set(t, await connect(bouncer.port, t));
        await conns.get(t).query(`INSERT INTO ${schemas ? `"${t}".` : ''}${WORKLOAD_TABLE} (client, seq) VALUES ($1, $2)`, [id, ++seq]);
        acked++;
      } catch (e) {
        errors++;
        const kind = `${t}: ${e.code ?? ''} ${e.message}`;
        errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
        conns
          .get(t)
          ?.end()
          .catch(() => {});
        conns.delete(t);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all([...conns.values()].map((c) => c.end().catch(() => {})));
  };
  const writers = [0, 1, 2, 3].map(writer);
  const r = await waves(plan, { env: { SRC_PW: PASSWORD, DST_PW: PASSWORD, BOUNCER_PW: bouncer.adminPassword } });
  stopping = true;
  await Promise.all(writers);
  const w = r.windows;
  console.log(
    `waves: ${r.tenants.length} tenant ${schemas ? 'schemas' : 'databases'}, concurrency ${r.concurrency}, ${r.counts.done} done, wall ${(r.wallMs / 1000).toFixed(1)} s (${Math.round(r.wallMs / r.tenants.length)} ms/tenant)`,
  );
  console.log(`per-tenant write-blocked window: p50 ${w.p50Ms} ms, p95 ${w.p95Ms} ms, max ${w.maxMs} ms (${w.count} measured)`);
  console.log(`writers: ${acked} acknowledged writes, ${errors} client errors`);
  for (const [kind, n] of errorKinds) console.log(`  ${n}× ${kind}`);
  if (r.counts.done !== r.tenants.length) process.exitCode = 1;
} finally {
  await stopAllSandboxes();
}
