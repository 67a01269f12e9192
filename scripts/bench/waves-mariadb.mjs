#!/usr/bin/env node
// Waves benchmark, MariaDB: N small tenant databases (default 20) moved between two sandbox MariaDB servers
// with `cutover waves` (--method dump: each tenant copied inside its own window; --method replication: every
// tenant joins one replica connection and its window is fence → GTID wait → switch), its entry switched in a JSON
// router file, while 4 writers insert into random tenants through that file and retry until acknowledged.
// Prints the per-tenant write-blocked window p50/p95/max, the median time of each step inside the window, and
// the wall time.
// With --method both (the default) each run moves the tenants both ways on fresh sandboxes; --runs N repeats
// that and prints the medians and the replication/dump ratios.
//   npx tsc -p tsconfig.json && node scripts/bench/waves-mariadb.mjs [--tenants 20] [--concurrency 1] [--rows 200] [--method both|dump|replication] [--runs 1]
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { waves } from '../../dist/src/index.js';
import { replayJournal } from '../../dist/src/engine/journal.js';
import { tenantPlan } from '../../dist/src/engine/waves-plan.js';
import { loadPlan, planId } from '../../dist/src/plan/index.js';
import { MariadbSandbox } from '../../dist/adapters/mysql/mariadb-sandbox.js';
import { mysqlWorkloadTableSql } from '../../dist/adapters/mysql/mysql-workload.js';
import { installSandboxCleanup, stopAllSandboxes } from '../../dist/src/sandbox/registry.js';
import { WORKLOAD_TABLE } from '../../dist/src/sandbox/workload.js';

const { values: args } = parseArgs({
  options: {
    tenants: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '1' },
    rows: { type: 'string', default: '200' },
    budget: { type: 'string', default: '2s' },
    method: { type: 'string', default: 'both' },
    runs: { type: 'string', default: '1' },
  },
});
const n = Number(args.tenants);
const rows = Number(args.rows);
const PASSWORD = 'bench-pw';
const APP = { user: 'app', password: 'app-pw' };
installSandboxCleanup();

const median = (xs) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : 0);

/** One wave of `n` tenants with `method` on fresh sandboxes: its windows, wall time and step medians. */
async function bench(method) {
  const tenants = Array.from({ length: n }, (_, i) => `t${String(i + 1).padStart(3, '0')}`);
  const [src, dst] = await Promise.all([MariadbSandbox.start({ password: PASSWORD, serverId: 1 }), MariadbSandbox.start({ password: PASSWORD, serverId: 2 })]);
  const root = async (sb) => mysql.createConnection({ host: '127.0.0.1', port: sb.port, user: 'root', password: PASSWORD });
  for (const sb of [src, dst]) {
    const c = await root(sb);
    await c.query(`CREATE USER '${APP.user}'@'%' IDENTIFIED BY '${APP.password}'`);
    for (const t of tenants) await c.query(`GRANT ALL ON \`${t}\`.* TO '${APP.user}'@'%'`);
    await c.end();
  }
  const c = await root(src);
  for (const t of tenants) {
    await c.query(`CREATE DATABASE \`${t}\``);
    await c.query(`USE \`${t}\``);
    await c.query('CREATE TABLE items (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(64) NOT NULL)');
    await c.query(`INSERT INTO items (name) SELECT CONCAT('item ', seq) FROM seq_1_to_${rows}`);
    await c.query(mysqlWorkloadTableSql());
  }
  await c.end();

  const dir = await mkdtemp(join(src.dir, 'waves-bench-'));
  const plan = join(dir, 'tenants.yaml');
  const routerFile = join(dir, 'tenants.json');
  await writeFile(
    plan,
    [
      'engine: mariadb',
      `source: { url: "mariadb://root@127.0.0.1:${src.port}/", passwordEnv: SRC_PW }`,
      `target: { url: "mariadb://root@127.0.0.1:${dst.port}/", passwordEnv: DST_PW }`,
      `scope: { tenants: { query: "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME REGEXP '^t[0-9]{3}$' ORDER BY 1" } }`,
      `method: ${method}`,
      `readOnly: { mode: strict, roles: [${APP.user}], drainTimeout: 300ms }`,
      `router: { kind: file, path: "${routerFile}", format: json }`,
      `waves: { concurrency: ${Number(args.concurrency)}, maxWriteBlockedPerTenant: ${args.budget} }`,
      `state: "${join(dir, 'state')}"`,
    ].join('\n') + '\n',
  );

  let stopping = false;
  let acked = 0;
  let retries = 0;
  const portOf = async (t) => JSON.parse(await readFile(routerFile, 'utf8').catch(() => '{}'))[t]?.port ?? src.port;
  const writer = async (id) => {
    const conns = new Map();
    let seq = 0;
    while (!stopping) {
      const t = tenants[Math.floor(Math.random() * n)];
      seq++;
      for (let attempt = 1; !stopping; attempt++) {
        try {
          if (!conns.has(t)) {
            const conn = await mysql.createConnection({ host: '127.0.0.1', port: await portOf(t), ...APP, database: t });
            const forget = () => conns.get(t) === conn && conns.delete(t);
            conn.on('error', forget);
            conn.on('end', forget);
            conns.set(t, conn);
          }
          await conns.get(t).query(`INSERT INTO ${WORKLOAD_TABLE} (client, seq) VALUES (?, ?)`, [id, seq]);
          acked++;
          break;
        } catch (e) {
          if (e.errno === 1062 && attempt > 1) break;
          retries++;
          conns.get(t)?.destroy();
          conns.delete(t);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    for (const conn of conns.values()) conn.destroy();
  };
  const writers = [0, 1, 2, 3].map(writer);
  const r = await waves(plan, { env: { SRC_PW: PASSWORD, DST_PW: PASSWORD } });
  stopping = true;
  await Promise.all(writers);

  const p = await loadPlan(plan);
  const steps = new Map();
  for (const t of tenants) {
    const tp = tenantPlan(p, t);
    const { records } = await replayJournal(tp.stateDir, planId(tp));
    for (const rec of records.filter((x) => x.status === 'ok')) {
      const begin = records.findLast((x) => x.step === rec.step && x.status === 'begin' && x.at <= rec.at);
      if (begin) steps.set(rec.step, [...(steps.get(rec.step) ?? []), Date.parse(rec.at) - Date.parse(begin.at)]);
    }
  }
  const w = r.windows;
  console.log(`method ${method}:`);
  console.log(`waves: ${r.tenants.length} tenants, concurrency ${r.concurrency}, ${r.counts.done} done, wall ${(r.wallMs / 1000).toFixed(1)} s (${Math.round(r.wallMs / r.tenants.length)} ms/tenant)`);
  console.log(`per-tenant write-blocked window: p50 ${w.p50Ms} ms, p95 ${w.p95Ms} ms, max ${w.maxMs} ms (${w.count} measured)`);
  console.log(`median step times: ${['sync', 'hold', 'fence', 'catch-up', 'sequences', 'verify', 'point-of-no-return', 'repoint', 'lift'].map((s) => `${s} ${median(steps.get(s) ?? [])} ms`).join(', ')}`);
  console.log(`writers: ${acked} acknowledged writes, ${retries} retried attempts (inside their tenant's window)`);
  const failed = r.tenants.filter((t) => t.error).map((t) => `${t.tenant}: ${t.error.message}`);
  if (failed.length) console.log(`not done (rolled back alone):\n  ${failed.join('\n  ')}`);
  if (r.counts.done !== r.tenants.length) process.exitCode = 1;
  await stopAllSandboxes();
  return { p50: w.p50Ms, p95: w.p95Ms, max: w.maxMs, wallMs: r.wallMs };
}

try {
  const methods = args.method === 'both' ? ['dump', 'replication'] : [args.method];
  const results = Object.fromEntries(methods.map((m) => [m, []]));
  for (let i = 0; i < Number(args.runs); i++) for (const m of methods) results[m].push(await bench(m));
  const summary = Object.fromEntries(
    methods.map((m) => [m, { p50: median(results[m].map((x) => x.p50)), p95: median(results[m].map((x) => x.p95)), max: median(results[m].map((x) => x.max)), wallMs: median(results[m].map((x) => x.wallMs)) }]),
  );
  console.log(`\nmedians of ${args.runs} run(s), ${n} tenants, concurrency ${args.concurrency}, ${rows} rows each:`);
  for (const m of methods) console.log(`  ${m.padEnd(11)} window p50 ${summary[m].p50} ms, p95 ${summary[m].p95} ms, max ${summary[m].max} ms, wall ${(summary[m].wallMs / 1000).toFixed(1)} s`);
  if (summary.dump && summary.replication)
    console.log(`  replication / dump: window p95 ×${(summary.replication.p95 / summary.dump.p95).toFixed(2)}, wall ×${(summary.replication.wallMs / summary.dump.wallMs).toFixed(2)}`);
} finally {
  await stopAllSandboxes();
}
