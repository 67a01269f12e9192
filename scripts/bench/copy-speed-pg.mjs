#!/usr/bin/env node
// Initial-copy speed, PostgreSQL 15 -> 17 sandboxes: `cutover sync` (method replication: slot snapshot, parallel
// COPY, indexes after, subscription from the slot) against pgcopydb clone, pg_dump -Fd -j | pg_restore -j and
// pg_dump -Fc | pg_restore, each run several times on the same data in this one script, in rounds whose order
// alternates, after one untimed warm-up run of each; medians and the ratio to pgcopydb are printed. Datasets: pgbench at each scale, and one table holding almost all the data.
//   node scripts/bench/copy-speed-pg.mjs [--scales 30,100] [--big-table-mb 1000] [--many-tables 400] [--runs 3]   (npm run build first;
//   pgcopydb: apt-get install -y pgcopydb; --tools "cutover,pgcopydb" runs only the tools whose names start so;
//   --trace prints each sync event with its time; --durable runs both servers with fsync and full_page_writes on)
import { execa } from 'execa';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pgSql } from './sandbox-sql.mjs';
import { PostgresSandbox } from '../../dist/adapters/postgres/postgres-sandbox.js';
import { installSandboxCleanup, stopAllSandboxes } from '../../dist/src/sandbox/registry.js';
import { openSession } from '../../dist/src/engine/session.js';
import { rollbackPlan, syncPlan } from '../../dist/src/engine/run.js';

const { values: args } = parseArgs({
  options: {
    scales: { type: 'string', default: '30' },
    'big-table-mb': { type: 'string', default: '0' },
    'many-tables': { type: 'string', default: '0' },
    runs: { type: 'string', default: '3' },
    tools: { type: 'string', default: '' },
    trace: { type: 'boolean', default: false },
    durable: { type: 'boolean', default: false },
  },
});
const scales = args.scales.split(',').filter(Boolean).map(Number);
const bigTableMb = Number(args['big-table-mb']);
const manyTables = Number(args['many-tables']);
const runs = Number(args.runs);
const PASSWORD = 'bench-pw';
const jobs = Math.max(2, Math.min(8, availableParallelism() + 1));
installSandboxCleanup();

const sql = (sb, db, ...stmts) => pgSql(sb, PASSWORD, db, ...stmts);
const env = (sb, db) => ({ PGHOST: sb.host, PGPORT: String(sb.port), PGUSER: 'postgres', PGPASSWORD: PASSWORD, PGDATABASE: db });
const bin = (name) => `/usr/lib/postgresql/15/bin/${name}`;
const median = (xs) => {
  const a = [...xs].sort((x, y) => x - y);
  const m = Math.floor(a.length / 2);
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
};
const timed = async (fn) => {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
};

async function cutoverSync(dir, src, dst, db) {
  const file = join(dir, `${db}-${Date.now()}.yaml`);
  await writeFile(
    file,
    [
      'engine: postgres',
      `source: { url: "postgres://postgres@127.0.0.1:${src.port}/${db}", passwordEnv: BENCH_PW }`,
      `target: { url: "postgres://postgres@127.0.0.1:${dst.port}/${db}", passwordEnv: BENCH_PW }`,
      `scope: { databases: ["${db}"] }`,
      'tables: { keyless: full }',
      `state: "${join(dir, `state-${Date.now()}`)}"`,
    ].join('\n'),
  );
  const s = await openSession(file, { env: { BENCH_PW: PASSWORD } });
  try {
    const t0 = performance.now();
    // --trace: each sync event with its time since the start, to see where sync spends it.
    const onEvent = args.trace ? (e) => console.log(`    ${((performance.now() - t0) / 1000).toFixed(2)}s ${e.step}: ${e.message}`) : undefined;
    const seconds = await timed(() => syncPlan(s, { onEvent }));
    // The slot, publication and subscription go before the next run (cleanup, as after a cutover).
    await rollbackPlan(s, { cleanup: true });
    return seconds;
  } finally {
    await s.close();
  }
}

const TOOLS = [
  { name: 'cutover sync', kind: 'ours', run: ({ dir, src, dst, db }) => cutoverSync(dir, src, dst, db) },
  {
    name: 'pgcopydb clone',
    kind: 'reference',
    available: async () => (await execa('which', ['pgcopydb'], { reject: false })).exitCode === 0,
    run: async ({ dir, src, dst, db }) => {
      return timed(() =>
        execa(
          'pgcopydb',
          ['clone', '--no-owner', '--dir', join(dir, `pgcopydb-${Date.now()}`), '--source', `postgres://postgres@127.0.0.1:${src.port}/${db}`, '--target', `postgres://postgres@127.0.0.1:${dst.port}/${db}`],
          { env: { PGPASSWORD: PASSWORD } },
        ),
      );
    },
  },
  {
    name: `pg_dump -Fd -j${jobs} + pg_restore -j${jobs}`,
    kind: 'reference',
    run: async ({ dir, src, dst, db }) => {
      const out = join(dir, `dump-${Date.now()}`);
      return timed(async () => {
        await execa(bin('pg_dump'), ['-Fd', '-Z0', '-j', String(jobs), '-f', out], { env: env(src, db) });
        await execa(bin('pg_restore'), ['-j', String(jobs), '-d', db, '--no-owner', out], { env: env(dst, db) });
      });
    },
  },
  {
    name: 'pg_dump -Fc | pg_restore',
    kind: 'reference',
    run: async ({ src, dst, db }) => {
      return timed(() => execa(bin('pg_dump'), ['-Fc', '-Z0'], { env: env(src, db), buffer: { stdout: false } }).pipe(bin('pg_restore'), ['-d', db, '--no-owner'], { env: env(dst, db) }));
    },
  },
];

// Every tool is given the same empty target database, made before its timer starts: pgcopydb and pg_restore need
// one, and cutover takes an empty one as it is (it would otherwise create it inside its timed run, ~0.1 s here).
async function emptyTarget(db) {
  await sql(dst, 'postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`, `CREATE DATABASE ${db}`);
}

async function loadDataset(src, dataset) {
  await sql(src, 'postgres', `DROP DATABASE IF EXISTS ${dataset.db}`, `CREATE DATABASE ${dataset.db}`);
  if (dataset.scale) await execa(bin('pgbench'), ['-i', '-s', String(dataset.scale), '-q'], { env: env(src, dataset.db) });
  else if (dataset.tables) {
    // Many small tables, as most application schemas have: what each table costs beyond its rows shows here.
    await sql(
      src,
      dataset.db,
      `DO $$ BEGIN FOR i IN 1..${dataset.tables} LOOP
         EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, n int NOT NULL, v text)', i);
         EXECUTE format('INSERT INTO t%s SELECT g, g %% 97, md5(g::text) FROM generate_series(1, 1000) g', i);
         EXECUTE format('CREATE INDEX t%s_n ON t%s (n)', i, i);
       END LOOP; END $$`,
    );
  } else {
    await sql(
      src,
      dataset.db,
      'CREATE TABLE big (id bigserial PRIMARY KEY, n int NOT NULL, payload text)',
      `INSERT INTO big (n, payload) SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, ${Math.round((dataset.mb * 1024 * 1024) / 140)}) g`,
      'CREATE INDEX big_n ON big (n)',
      'CREATE TABLE small (id int PRIMARY KEY, v text)',
      `INSERT INTO small SELECT g, md5(g::text) FROM generate_series(1, 10000) g`,
    );
  }
  await sql(src, dataset.db, 'VACUUM ANALYZE');
  return Number((await sql(src, dataset.db, `SELECT pg_database_size(current_database()) AS b`)).rows[0].b);
}

// --durable: fsync and full_page_writes on, as on a production server (the sandboxes' default is off: test speed).
const settings = { shared_buffers: "'256MB'", max_wal_size: "'4GB'", ...(args.durable ? { fsync: 'on', full_page_writes: 'on' } : {}) };
const src = await PostgresSandbox.start({ major: 15, password: PASSWORD, settings });
const dst = await PostgresSandbox.start({ major: 17, password: PASSWORD, settings });
const dir = await mkdtemp(join(src.dir, 'bench-'));
const datasets = [
  ...scales.map((scale) => ({ name: `pgbench scale ${scale}`, db: `pgbench_${scale}`, scale })),
  ...(bigTableMb > 0 ? [{ name: `one ${bigTableMb} MB table`, db: 'one_big', mb: bigTableMb }] : []),
  ...(manyTables > 0 ? [{ name: `${manyTables} small tables`, db: 'many_tables', tables: manyTables }] : []),
];
try {
  console.log(`PostgreSQL ${src.binaries.version} -> ${dst.binaries.version}, ${availableParallelism()} cores, ${runs} runs each, median wall time`);
  for (const dataset of datasets) {
    const bytes = await loadDataset(src, dataset);
    console.log(`\n${dataset.name}: ${(bytes / 1024 ** 2).toFixed(0)} MB`);
    const tools = [];
    for (const tool of TOOLS) {
      if (args.tools && !args.tools.split(',').some((t) => tool.name.startsWith(t))) continue;
      if (tool.available && !(await tool.available())) console.log(`  ${tool.name.padEnd(36)} not installed (apt-get install -y pgcopydb)`);
      else tools.push(tool);
    }
    // Round by round, the order reversed every other round: a machine getting busier or quieter (or a warmer
    // cache) does not favour whichever tool always runs first.
    const times = new Map(tools.map((t) => [t.name, []]));
    // One untimed run of each tool first: the target cluster's first copy creates its WAL segments (later ones
    // recycle them), which made whichever tool ran first ~1 s slower at scale 30.
    for (const tool of tools) {
      await emptyTarget(dataset.db);
      await tool.run({ dir, src, dst, db: dataset.db });
    }
    for (let i = 0; i < runs; i++) {
      for (const tool of i % 2 ? [...tools].reverse() : tools) {
        await emptyTarget(dataset.db);
        // Each run starts from a checkpoint on both servers: a copy writes about its size in WAL, so without it the
        // checkpoint that max_wal_size forces (and its writes) falls on whichever run comes next.
        await sql(src, 'postgres', 'CHECKPOINT');
        await sql(dst, 'postgres', 'CHECKPOINT');
        // And from a clean page cache: the last run's WAL (recycled, not deleted) and what the checkpoint wrote would
        // otherwise be written back by the kernel during this one (with fsync off nothing else writes them).
        await execa('sync');
        times.get(tool.name).push(await tool.run({ dir, src, dst, db: dataset.db }));
      }
    }
    const medians = new Map();
    for (const tool of tools) {
      const ts = times.get(tool.name);
      medians.set(tool.name, median(ts));
      console.log(`  ${tool.name.padEnd(36)} median ${median(ts).toFixed(1)} s  (runs in order: ${ts.map((t) => t.toFixed(1)).join(', ')})`);
    }
    const ref = medians.get('pgcopydb clone');
    if (ref !== undefined && times.has('cutover sync')) {
      // Also round by round: both tools of one round met the same moment of the machine, whose speed drifts by more
      // than the difference measured (±15 % run to run here).
      const ours = times.get('cutover sync');
      const theirs = times.get('pgcopydb clone');
      const paired = ours.map((t, i) => t / theirs[i]);
      console.log(
        `  cutover sync / pgcopydb clone: ${(medians.get('cutover sync') / ref).toFixed(2)}x (< 1 is faster); round by round ${paired.map((r) => r.toFixed(2)).join(', ')}, median ${median(paired).toFixed(2)}x`,
      );
    }
    await sql(dst, 'postgres', `DROP DATABASE IF EXISTS ${dataset.db} WITH (FORCE)`);
    await sql(src, 'postgres', `DROP DATABASE IF EXISTS ${dataset.db} WITH (FORCE)`);
  }
} finally {
  await stopAllSandboxes();
}
