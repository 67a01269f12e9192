#!/usr/bin/env node
// Write-blocked window benchmark (PostgreSQL 15 -> 17 through PgBouncer, transaction pooling): repeated
// cutovers of a pgbench database per case, median / p95 / max of the window as clients saw it and of each
// step inside it. Cases: pgbench scale 10 and 100, with 4 app writers (the repo's Workload: the longest gap
// between acknowledged writes) and with `pgbench -c 8` (its per-transaction log: the slowest transaction that
// ended during the run). Every cutover syncs a fresh copy, so a scale-100 case takes a minute or more per run.
//   npm run build && node scripts/bench/window.mjs [--runs 10] [--scales 10,100] [--clients writers,pgbench]
//                                                  [--verify "{ before: none }"] [--userlist plain,scram]
// The plan verifies before the hold by default (not part of the window); --verify sets the plan's verify key.
// --userlist: what PgBouncer's auth_file holds for the clients' role — its plain password (PgBouncer computes
// the SCRAM proof, PBKDF2, at every server login) or the source's SCRAM secret (PgBouncer's docs' advice: it
// logs in with the keys of the client's own SCRAM login). Several kinds alternate run by run within a case.
// The target's role gets the source's verifier (the same password, the same salt) so both kinds can log in there.
import { execa } from 'execa';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pgSql } from './sandbox-sql.mjs';
import { PostgresSandbox } from '../../dist/adapters/postgres/postgres-sandbox.js';
import { PgBouncerSandbox } from '../../dist/adapters/routers/pgbouncer-sandbox.js';
import { installSandboxCleanup, stopAllSandboxes } from '../../dist/src/sandbox/registry.js';
import { Workload, workloadTableSql } from '../../dist/adapters/postgres/postgres-workload.js';
import { openSession } from '../../dist/src/engine/session.js';
import { rollbackPlan, runPlan, syncPlan } from '../../dist/src/engine/run.js';
import { finalize } from '../../dist/src/index.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    scales: { type: 'string', default: '10,100' },
    clients: { type: 'string', default: 'writers,pgbench' },
    verify: { type: 'string', default: '{ before: none }' },
    userlist: { type: 'string', default: 'plain' },
  },
});
const RUNS = Number(args.runs);
const SCALES = args.scales.split(',').map(Number);
const CLIENTS = args.clients.split(',');
const USERLISTS = args.userlist.split(',');
for (const u of USERLISTS) if (u !== 'plain' && u !== 'scram') throw new Error(`--userlist: plain or scram, not ${u}`);
const WINDOW_STEPS = ['hold', 'fence', 'catch-up', 'sequences', 'verify', 'leak-read', 'point-of-no-return', 'repoint', 'lift'];
const PASSWORD = 'bench-pw';
const PGBENCH_SECONDS = 25;
installSandboxCleanup();

const sql = (sb, db, ...stmts) => pgSql(sb, PASSWORD, db, ...stmts);
const pgenv = (host, port, db) => ({ PGHOST: host, PGPORT: String(port), PGUSER: 'postgres', PGPASSWORD: PASSWORD, PGDATABASE: db });
const bin = (name) => `/usr/lib/postgresql/15/bin/${name}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN;
};
const stats = (xs) => `${String(pct(xs, 50)).padStart(5)} ${String(pct(xs, 95)).padStart(5)} ${String(Math.max(...xs)).padStart(5)}`;

/** The slowest pgbench transaction that ended while the cutover ran (its per-transaction log, latency in µs). */
async function pgbenchWorst(dir, fromMs, toMs) {
  let worst = 0;
  let count = 0;
  for (const f of (await readdir(dir)).filter((n) => n.startsWith('pgbench_log'))) {
    for (const line of (await readFile(join(dir, f), 'utf8')).split('\n')) {
      const p = line.trim().split(/\s+/);
      if (p.length < 6) continue;
      const endMs = Number(p[4]) * 1000 + Number(p[5]) / 1000;
      const latMs = Number(p[2]) / 1000;
      if (endMs >= fromMs && endMs - latMs <= toMs) {
        worst = Math.max(worst, latMs);
        count++;
      }
    }
  }
  return { worstMs: Math.round(worst), count };
}

async function oneRun(src, dst, dir, scale, client, userlist, i) {
  const db = `b${scale}_${client}_${userlist}_${i}`;
  await sql(src, 'postgres', `CREATE DATABASE ${db} TEMPLATE bench${scale}`);
  const secret = userlist === 'scram' ? sourceVerifier : PASSWORD;
  const bouncer = await PgBouncerSandbox.start({ databases: { [db]: { host: src.host, port: src.port } }, users: { postgres: secret }, poolMode: 'transaction', settings: { max_client_conn: 200 } });
  const state = join(dir, `state-${db}`);
  const file = join(dir, `${db}.yaml`);
  await writeFile(
    file,
    [
      'engine: postgres',
      `source: { url: "postgres://postgres@127.0.0.1:${src.port}/${db}", passwordEnv: BENCH_PW }`,
      `target: { url: "postgres://postgres@127.0.0.1:${dst.port}/${db}", passwordEnv: BENCH_PW }`,
      `scope: { databases: ["${db}"] }`,
      'limits: { maxWriteBlocked: 10s, maxLagBeforeFence: 1MB }',
      `verify: ${args.verify}`,
      `router: { kind: pgbouncer, admin: "${bouncer.adminUrl()}", adminPasswordEnv: BOUNCER_PW, ini: "${bouncer.iniPath}", database: "${db}" }`,
      `state: "${state}"`,
    ].join('\n'),
  );
  const s = await openSession(file, { env: { BENCH_PW: PASSWORD, BOUNCER_PW: bouncer.adminPassword } });
  let r;
  let failed;
  // A failed run (e.g. a verify inside the window past the budget) restored the source: count it, go on.
  const run = () => runPlan(s).catch((e) => ((failed = `${e.code ?? 'error'}: ${e.message}`), undefined));
  let seen;
  let errors = 0;
  try {
    await syncPlan(s);
    if (client === 'writers') {
      const w = new Workload({ host: '127.0.0.1', port: bouncer.port, user: 'postgres', password: PASSWORD, database: db, writers: 4 }).start();
      await sleep(1000);
      try {
        r = await run();
      } finally {
        await sleep(300);
        const wr = await w.stop();
        seen = wr.maxWriteGapMs;
        errors = wr.writeErrors;
      }
    } else {
      const logDir = await mkdtemp(join(dir, 'pgbench-'));
      const bench = execa(bin('pgbench'), ['-c', '8', '-j', '2', '-n', '-T', String(PGBENCH_SECONDS), '-l', '--log-prefix', join(logDir, 'pgbench_log')], {
        env: pgenv('127.0.0.1', bouncer.port, db),
        reject: false,
        cwd: logDir,
      });
      await sleep(2000);
      const from = Date.now();
      try {
        r = await run();
      } finally {
        const to = Date.now();
        const out = await bench;
        errors = Number(/number of failed transactions: (\d+)/.exec(out.stdout)?.[1] ?? (out.exitCode === 0 ? 0 : NaN));
        if (to - from > (PGBENCH_SECONDS - 3) * 1000) console.error(`  ${db}: the run outlasted pgbench (-T ${PGBENCH_SECONDS})`);
        seen = (await pgbenchWorst(logDir, from, to)).worstMs;
      }
    }
  } finally {
    // A failed run restored the source but left its copy replicating: clean it up so the databases can go.
    if (!r) await rollbackPlan(s, { cleanup: true }).catch((e) => console.error(`  ${db}: rollback --cleanup failed: ${e.message}`));
    // A finished run left the reverse path (the old source subscribes to the new primary): end it.
    await s.close();
    if (r) await finalize(file, { env: { BENCH_PW: PASSWORD, BOUNCER_PW: bouncer.adminPassword } }).catch((e) => console.error(`  ${db}: finalize failed: ${e.message}`));
    await bouncer.stop();
  }
  await sql(src, 'postgres', `DROP DATABASE ${db} WITH (FORCE)`);
  await sql(dst, 'postgres', `DROP DATABASE ${db} WITH (FORCE)`);
  if (!r) return { failed, seen, errors };
  const step = Object.fromEntries(WINDOW_STEPS.map((n) => [n, r.steps.filter((x) => x.step === n).reduce((t, x) => t + x.endMs - x.startMs, 0)]));
  const inSteps = Object.values(step).reduce((a, b) => a + b, 0);
  return { window: r.writeBlockedMs, seen, errors, step, between: r.writeBlockedMs - inSteps };
}

const settings = { shared_buffers: "'256MB'", max_wal_size: "'2GB'", max_replication_slots: 20, max_wal_senders: 20 };
const src = await PostgresSandbox.start({ major: 15, password: PASSWORD, settings });
const dst = await PostgresSandbox.start({ major: 17, password: PASSWORD, settings });
const dir = await mkdtemp(join(src.dir, 'bench-'));
const sourceVerifier = (await sql(src, 'postgres', `SELECT rolpassword AS v FROM pg_authid WHERE rolname = 'postgres'`)).rows[0].v;
await sql(dst, 'postgres', `ALTER ROLE postgres PASSWORD '${sourceVerifier}'`);
try {
  console.log(
    `PostgreSQL ${src.binaries.version} -> ${dst.binaries.version} through PgBouncer (transaction pooling), ${cpus().length} cores, ${RUNS} run(s) per case, plan verify: ${args.verify}, PgBouncer userlist: ${USERLISTS.join(' / ')}`,
  );
  const rows = [];
  for (const scale of SCALES) {
    await sql(src, 'postgres', `CREATE DATABASE bench${scale}`);
    console.error(`loading pgbench scale ${scale}...`);
    await execa(bin('pgbench'), ['-i', '-s', String(scale), '-q'], { env: pgenv(src.host, src.port, `bench${scale}`) });
    await sql(src, `bench${scale}`, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL', workloadTableSql());
    const mb = Number((await sql(src, 'postgres', `SELECT pg_database_size('bench${scale}') AS b`)).rows[0].b) / 1024 ** 2;
    for (const client of CLIENTS) {
      const byList = Object.fromEntries(USERLISTS.map((u) => [u, []]));
      for (let i = 0; i < RUNS; i++) {
        // Alternated, and the first kind changes every run: neither always runs first.
        for (const userlist of i % 2 ? [...USERLISTS].reverse() : USERLISTS) {
          const one = await oneRun(src, dst, dir, scale, client, userlist, i);
          const tag = `  scale ${scale} ${client}${USERLISTS.length > 1 ? ` ${userlist}` : ''} run ${i + 1}`;
          if (one.failed) console.error(`${tag}: FAILED (${one.failed}), clients saw ${one.seen} ms, ${one.errors} errors`);
          else console.error(`${tag}: window ${one.window} ms, clients saw ${one.seen} ms, ${one.errors} errors, steps ${WINDOW_STEPS.map((n) => `${n} ${one.step[n]}`).join(' ')} between ${one.between}`);
          byList[userlist].push(one);
        }
      }
      for (const userlist of USERLISTS) rows.push({ scale, mb, client, userlist, runs: byList[userlist] });
    }
  }
  console.log('\ncase                          | window (run)      | clients saw       | errors | per step median (ms)');
  console.log('                              |  p50   p95   max  |  p50   p95   max  |        | ' + [...WINDOW_STEPS, 'between'].join(' / '));
  for (const row of rows) {
    const r = { ...row, runs: row.runs.filter((x) => !x.failed) };
    const failedRuns = row.runs.length - r.runs.length;
    if (!r.runs.length) {
      console.log(`scale ${r.scale}, ${r.client}: every run failed (${row.runs.map((x) => x.failed).join(', ')})`);
      continue;
    }
    const label = `scale ${r.scale} (${r.mb.toFixed(0)} MB), ${r.client === 'writers' ? '4 writers' : 'pgbench -c 8'}${USERLISTS.length > 1 ? `, ${r.userlist}` : ''}`;
    const steps = [
      ...WINDOW_STEPS.map((n) =>
        pct(
          r.runs.map((x) => x.step[n]),
          50,
        ),
      ),
      pct(
        r.runs.map((x) => x.between),
        50,
      ),
    ].join(' / ');
    console.log(
      `${label.padEnd(30)}| ${stats(r.runs.map((x) => x.window))} | ${stats(r.runs.map((x) => x.seen))} | ${String(r.runs.reduce((t, x) => t + x.errors, 0)).padStart(6)} | ${steps}${
        failedRuns
          ? ` (${failedRuns} run(s) failed: ${row.runs
              .filter((x) => x.failed)
              .map((x) => x.failed)
              .join(', ')})`
          : ''
      }`,
    );
  }
  for (const [client, userlist] of CLIENTS.flatMap((c) => USERLISTS.map((u) => [c, u]))) {
    const medians = SCALES.map((sc) =>
      pct(
        rows
          .find((r) => r.scale === sc && r.client === client && r.userlist === userlist)
          .runs.filter((x) => !x.failed)
          .map((x) => x.seen),
        50,
      ),
    );
    if (medians.length > 1)
      console.log(
        `${client}${USERLISTS.length > 1 ? ` (${userlist})` : ''}: median as clients saw it at scale ${SCALES.join(' / ')}: ${medians.join(' / ')} ms (largest / smallest ${(Math.max(...medians) / Math.min(...medians)).toFixed(2)})`,
      );
  }
} finally {
  await stopAllSandboxes();
}
