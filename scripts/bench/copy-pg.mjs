#!/usr/bin/env node
// Copy benchmark: a pgbench database from a sandbox PostgreSQL 15 to a sandbox PostgreSQL 17 with
// cutover (replication and dump methods, sync + run) against pg_dump|pg_restore, pg_dump|psql and
// pgcopydb clone, all in this one run; then the write-blocked window of a cutover through PgBouncer
// under 4 writers, median and max of several runs.
//   node scripts/bench/copy-pg.mjs [--scale 30] [--window-runs 5]     (run `npm run build` first)
import { execa } from 'execa';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { pgSql } from './sandbox-sql.mjs';
import { parseArgs } from 'node:util';
import { PostgresSandbox } from '../../dist/adapters/postgres/postgres-sandbox.js';
import { PgBouncerSandbox } from '../../dist/adapters/routers/pgbouncer-sandbox.js';
import { installSandboxCleanup, stopAllSandboxes } from '../../dist/src/sandbox/registry.js';
import { Workload, workloadTableSql } from '../../dist/adapters/postgres/postgres-workload.js';
import { openSession } from '../../dist/src/engine/session.js';
import { runPlan, syncPlan } from '../../dist/src/engine/run.js';
import { readOnlyOff } from '../../dist/src/readonly/readonly.js';

const { values: args } = parseArgs({ options: { scale: { type: 'string', default: '30' }, 'window-runs': { type: 'string', default: '5' } } });
const scale = Number(args.scale);
const windowRuns = Number(args['window-runs']);
const PASSWORD = 'bench-pw';
installSandboxCleanup();

const sql = (sb, db, ...stmts) => pgSql(sb, PASSWORD, db, ...stmts);
const env = (sb, db) => ({ PGHOST: sb.host, PGPORT: String(sb.port), PGUSER: 'postgres', PGPASSWORD: PASSWORD, PGDATABASE: db });
const bin = (name) => `/usr/lib/postgresql/15/bin/${name}`;
const timed = async (fn) => {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
};

async function planFile(dir, src, dst, db, method, extra = '') {
  const file = join(dir, `${db}-${method}.yaml`);
  await writeFile(
    file,
    [
      'engine: postgres',
      `source: { url: "postgres://postgres@127.0.0.1:${src.port}/${db}", passwordEnv: BENCH_PW }`,
      `target: { url: "postgres://postgres@127.0.0.1:${dst.port}/${db}", passwordEnv: BENCH_PW }`,
      `scope: { databases: ["${db}"] }`,
      `method: ${method}`,
      'limits: { maxWriteBlocked: 10m }',
      `state: "${join(dir, `state-${method}-${Date.now()}`)}"`,
      extra,
    ].join('\n'),
  );
  return file;
}

async function cutover(file) {
  const s = await openSession(file, { env: { BENCH_PW: PASSWORD } });
  try {
    await syncPlan(s);
    return await runPlan(s);
  } finally {
    await s.close();
  }
}

async function resetTarget(src, dst, db) {
  // The source is left read-only by a cutover: lift it for the next method.
  await readOnlyOff({ url: src.url(db), password: PASSWORD, stateDir: join(src.dir, 'bench-fences') }).catch(() => {});
  await sql(src, db, `ALTER DATABASE "${db}" RESET default_transaction_read_only`);
  await sql(dst, 'postgres', `DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
}

const src = await PostgresSandbox.start({ major: 15, password: PASSWORD, settings: { shared_buffers: "'256MB'", max_wal_size: "'2GB'" } });
const dst = await PostgresSandbox.start({ major: 17, password: PASSWORD, settings: { shared_buffers: "'256MB'", max_wal_size: "'2GB'" } });
const dir = await mkdtemp(join(src.dir, 'bench-'));
try {
  await sql(src, 'postgres', 'CREATE DATABASE bench');
  console.error(`loading pgbench scale ${scale} into the source...`);
  await execa(bin('pgbench'), ['-i', '-s', String(scale), '-q'], { env: env(src, 'bench') });
  // pgbench_history has no key; published, its UPDATE/DELETE would fail (cutover check says so).
  await sql(src, 'bench', 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
  const size = Number((await sql(src, 'bench', `SELECT pg_database_size('bench') AS b`)).rows[0].b);
  console.log(`database: pgbench scale ${scale}, ${(size / 1024 ** 2).toFixed(0)} MB, PostgreSQL ${src.binaries.version} -> ${dst.binaries.version}, ${(await import('node:os')).cpus().length} cores`);

  const results = [];
  const measure = async (name, kind, fn) => {
    const s = await timed(fn);
    results.push({ name, kind, s });
    console.log(`  ${name.padEnd(40)} ${s.toFixed(1)} s`);
    await resetTarget(src, dst, 'bench');
  };
  await measure('cutover sync+run (replication)', 'ours', async () => cutover(await planFile(dir, src, dst, 'bench', 'replication')));
  await measure('cutover sync+run (dump)', 'ours', async () => cutover(await planFile(dir, src, dst, 'bench', 'dump')));
  await measure('pg_dump -Fc | pg_restore', 'reference', async () => {
    await sql(dst, 'postgres', 'CREATE DATABASE bench');
    await execa(bin('pg_dump'), ['-Fc', '-Z0'], { env: env(src, 'bench'), buffer: { stdout: false } }).pipe(bin('pg_restore'), ['-d', 'bench', '--no-owner'], { env: env(dst, 'bench') });
  });
  await measure('pg_dump | psql', 'reference', async () => {
    await sql(dst, 'postgres', 'CREATE DATABASE bench');
    await execa(bin('pg_dump'), [], { env: env(src, 'bench'), buffer: { stdout: false } }).pipe(bin('psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1'], { env: env(dst, 'bench') });
  });
  const pgcopydb = await execa('which', ['pgcopydb'], { reject: false });
  if (pgcopydb.exitCode === 0) {
    await measure('pgcopydb clone', 'reference', async () => {
      await sql(dst, 'postgres', 'CREATE DATABASE bench');
      await execa(
        'pgcopydb',
        ['clone', '--no-owner', '--dir', join(dir, `pgcopydb-${Date.now()}`), '--source', `postgres://postgres@127.0.0.1:${src.port}/bench`, '--target', `postgres://postgres@127.0.0.1:${dst.port}/bench`],
        { env: { PGPASSWORD: PASSWORD } },
      );
    });
  } else console.log('  pgcopydb clone                           not installed (apt-get install -y pgcopydb)');
  const fastestRef = Math.min(...results.filter((r) => r.kind === 'reference').map((r) => r.s));
  console.log(`ratio to the fastest reference (${fastestRef.toFixed(1)} s; < 1 is faster):`);
  for (const r of results.filter((x) => x.kind === 'ours')) console.log(`  ${r.name.padEnd(40)} ${(r.s / fastestRef).toFixed(2)}x`);

  // Write-blocked window under load: a small database through PgBouncer, 4 writers.
  const windows = [];
  for (let i = 0; i < windowRuns; i++) {
    const db = `w${i}`;
    await sql(src, 'postgres', `CREATE DATABASE ${db}`);
    await sql(src, db, 'CREATE TABLE items (id bigserial PRIMARY KEY, v text)', `INSERT INTO items (v) SELECT md5(g::text) FROM generate_series(1, 20000) g`, workloadTableSql());
    const bouncer = await PgBouncerSandbox.start({ databases: { [db]: { host: src.host, port: src.port } }, users: { postgres: PASSWORD }, poolMode: 'transaction' });
    const file = await planFile(dir, src, dst, db, 'replication', `router: { kind: pgbouncer, admin: "${bouncer.adminUrl()}", adminPasswordEnv: BOUNCER_PW, ini: "${bouncer.iniPath}", database: "${db}" }`);
    const w = new Workload({ host: '127.0.0.1', port: bouncer.port, user: 'postgres', password: PASSWORD, database: db, writers: 4 }).start();
    const s = await openSession(file, { env: { BENCH_PW: PASSWORD, BOUNCER_PW: bouncer.adminPassword } });
    let r;
    try {
      await syncPlan(s);
      await new Promise((res) => setTimeout(res, 500));
      r = await runPlan(s);
    } finally {
      await s.close();
      await new Promise((res) => setTimeout(res, 300));
      const wr = await w.stop();
      if (wr.writeErrors) console.log(`  run ${i}: ${wr.writeErrors} client errors`);
      await bouncer.stop();
    }
    windows.push(r.writeBlockedMs);
  }
  windows.sort((a, b) => a - b);
  const median = windows[Math.floor(windows.length / 2)];
  console.log(`write-blocked window through PgBouncer, 4 writers, ${windowRuns} runs: median ${median} ms, max ${windows.at(-1)} ms (all: ${windows.join(', ')})`);
} finally {
  await stopAllSandboxes();
}
