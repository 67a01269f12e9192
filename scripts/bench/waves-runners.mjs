#!/usr/bin/env node
// Shared-wave benchmark: the same N tenant databases moved by 1, 2 and 3 `cutover waves` runner processes that
// share the wave through a PostgreSQL control database (state: postgres://...), PostgreSQL 15 → 17 through one
// PgBouncer, 4 writers to random tenants. Each runner count moves its own set of N tenants (a, b, c prefixes).
// Prints wall time and window p50/p95/max per runner count, as ratios to one runner, and the load average; a count
// given more than once (--runners 1,3,1,3,1,3: alternated rounds, up to 8) also gets medians over its rounds.
//   npx tsc -p tsconfig.json && node scripts/bench/waves-runners.mjs [--tenants 100] [--concurrency 2] [--runners 1,2,3] [--rows 200]
import { mkdtemp, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import pg from 'pg';
import { wavesStatus } from '../../dist/src/index.js';
import { PgBouncerSandbox } from '../../dist/adapters/routers/pgbouncer-sandbox.js';
import { PostgresSandbox } from '../../dist/adapters/postgres/postgres-sandbox.js';
import { installSandboxCleanup, stopAllSandboxes } from '../../dist/src/sandbox/registry.js';
import { WORKLOAD_TABLE } from '../../dist/src/sandbox/workload.js';
import { workloadTableSql } from '../../dist/adapters/postgres/postgres-workload.js';

const { values: args } = parseArgs({
  options: { tenants: { type: 'string', default: '100' }, concurrency: { type: 'string', default: '2' }, runners: { type: 'string', default: '1,2,3' }, rows: { type: 'string', default: '200' } },
});
const n = Number(args.tenants);
const counts = args.runners.split(',').map(Number);
const rows = Number(args.rows);
const PASSWORD = 'bench-pw';
const CLI = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;
installSandboxCleanup();

const connect = async (port, database) => {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: PASSWORD, database });
  c.on('error', () => {});
  await c.connect();
  return c;
};
const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');

/** The children's user and system time from bash's `times` (its last line), in seconds. */
const runnerCpu = (stderr) => {
  const last = stderr.trim().split('\n').at(-1) ?? '';
  return [...last.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
};

// An even count takes the mean of its middle two (the lower one alone favoured whichever count had a quiet round).
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? s[mid] : Math.round((s[mid - 1] + s[mid]) / 2);
};

/**
 * How often a tenant's window (hold begin → lift ok) shared the machine with another tenant's window or copy
 * (sync begin → sync ok), from the journal's timestamps: what the source server's gate lets overlap.
 */
async function overlaps(c, planIds) {
  const { rows } = await c.query(
    `SELECT plan_id, min(at) FILTER (WHERE step = 'hold' AND status = 'begin') AS w0, max(at) FILTER (WHERE step = 'lift' AND status = 'ok') AS w1,
            min(at) FILTER (WHERE step = 'sync' AND status = 'begin') AS c0, max(at) FILTER (WHERE step = 'sync' AND status = 'ok') AS c1,
            min(at) FILTER (WHERE step = 'preflight' AND status = 'begin' AND seq > 2) AS r0, max(at) FILTER (WHERE step = 'report' AND status = 'ok') AS r1
       FROM cutover.journal WHERE plan_id = ANY($1) GROUP BY plan_id`,
    [planIds],
  );
  const span = (a, b) => (a && b ? [Date.parse(a), Date.parse(b)] : undefined);
  const wins = rows.map((r) => ({ id: r.plan_id, w: span(r.w0, r.w1), c: span(r.c0, r.c1), r: span(r.r0, r.r1) })).filter((r) => r.w);
  const ms = (pick) => median(wins.map(pick).filter((x) => Number.isFinite(x)));
  const phases = `a tenant's median ms: copy ${ms((x) => x.c?.[1] - x.c?.[0])}, run before the hold ${ms((x) => x.w[0] - x.r?.[0])}, window ${ms((x) => x.w[1] - x.w[0])}, after the lift ${ms((x) => x.r?.[1] - x.w[1])}`;
  const meets = (x, y) => x && y && x[0] < y[1] && y[0] < x[1];
  const withWindow = wins.filter((a) => wins.some((b) => b.id !== a.id && meets(a.w, b.w))).length;
  const withCopy = wins.filter((a) => wins.some((b) => b.id !== a.id && meets(a.w, b.c))).length;
  return `windows overlapping another window ${withWindow}/${wins.length}, overlapping a copy ${withCopy}/${wins.length}; ${phases}`;
}

/** Transactions committed in the control database so far: the runners' claims, gates, leases and journals. */
async function controlTransactions(port) {
  const c = await connect(port, 'postgres');
  try {
    return Number((await c.query(`SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = 'postgres'`)).rows[0].n);
  } finally {
    await c.end();
  }
}

/** Per-step times of the tenants' windows, from the report records their runs journaled in the control database. */
async function windowSteps(port, planIds) {
  const c = await connect(port, 'postgres');
  try {
    const { rows } = await c.query(`SELECT data FROM cutover.journal WHERE plan_id = ANY($1) AND step = 'report' AND status = 'ok'`, [planIds]);
    const by = new Map();
    for (const { data } of rows) {
      const steps = data?.steps ?? [];
      const hold = steps.find((x) => x.step === 'hold');
      if (!hold) continue;
      for (const x of steps.filter((x) => x.startMs >= hold.startMs && x.step !== 'cleanup' && x.step !== 'report')) {
        if (!by.has(x.step)) by.set(x.step, []);
        by.get(x.step).push(x.endMs - x.startMs);
      }
    }
    // A runner process's first window runs cold code paths and fresh connections: told apart from its later ones.
    const { rows: order } = await c.query(`SELECT window_ms, row_number() OVER (PARTITION BY runner ORDER BY claimed_at) AS nth FROM cutover.wave_tenants WHERE plan_id = ANY($1) AND window_ms IS NOT NULL`, [planIds]);
    const first = order.filter((r) => Number(r.nth) === 1).map((r) => r.window_ms);
    const later = order.filter((r) => Number(r.nth) > 1).map((r) => r.window_ms);
    const cold = `each runner's first window: median ${median(first)} ms (${first.length}), later ones: ${median(later)} ms (${later.length})`;
    return `${[...by].map(([step, ms]) => `${step} ${median(ms)} (${Math.max(...ms)})`).join(', ')}; ${cold}; ${await overlaps(c, planIds)}`;
  } finally {
    await c.end();
  }
}

try {
  const sets = counts.map((r, i) => Array.from({ length: n }, (_, j) => `${'abcdefgh'[i]}${String(j + 1).padStart(3, '0')}`));
  const all = sets.flat();
  const [src, dst, ctl] = await Promise.all([15, 17, 17].map((major) => PostgresSandbox.start({ major, password: PASSWORD })));
  const bouncer = await PgBouncerSandbox.start({
    databases: Object.fromEntries(all.map((t) => [t, { host: src.host, port: src.port }])),
    users: { postgres: PASSWORD },
    poolMode: 'transaction',
    // Idle server connections close soon: each runner count's tenants would otherwise keep theirs to the target open
    // (600 s by default) and later runner counts would meet "too many clients" there.
    settings: { max_client_conn: 2000, default_pool_size: 5, server_idle_timeout: 5 },
  });
  const admin = await connect(src.port, 'postgres');
  for (const t of all) {
    await admin.query(`CREATE DATABASE "${t}"`);
    const c = await connect(src.port, t);
    await c.query(`CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL); INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, ${rows}) g; ${workloadTableSql()}`);
    await c.end();
  }
  await admin.end();
  const dir = await mkdtemp(join(src.dir, 'runners-bench-'));
  const env = { PATH: process.env.PATH ?? '', SRC_PW: PASSWORD, DST_PW: PASSWORD, BOUNCER_PW: bouncer.adminPassword, CTL_PW: PASSWORD };
  const results = [];
  for (const [i, runners] of counts.entries()) {
    const tenants = sets[i];
    const plan = join(dir, `r${runners}.yaml`);
    await writeFile(
      plan,
      [
        `source: { url: "postgres://postgres@127.0.0.1:${src.port}/postgres", passwordEnv: SRC_PW }`,
        `target: { url: "postgres://postgres@127.0.0.1:${dst.port}/postgres", passwordEnv: DST_PW }`,
        `scope: { tenants: [${tenants.join(', ')}] }`,
        `router: { kind: pgbouncer, admin: "${bouncer.adminUrl()}", adminPasswordEnv: BOUNCER_PW, ini: "${bouncer.iniPath}", database: ${tenants[0]} }`,
        `waves: { concurrency: ${Number(args.concurrency)} }`,
        `state: { url: "postgres://postgres@127.0.0.1:${ctl.port}/postgres", passwordEnv: CTL_PW, dir: "${join(dir, `local-${runners}`)}" }`,
      ].join('\n') + '\n',
    );
    let stopping = false;
    let acked = 0;
    let errors = 0;
    const writer = async (id) => {
      const conns = new Map();
      let seq = 0;
      while (!stopping) {
        const t = tenants[Math.floor(Math.random() * n)];
        try {
          if (!conns.has(t)) conns.set(t, await connect(bouncer.port, t));
          await conns.get(t).query(`INSERT INTO ${WORKLOAD_TABLE} (client, seq) VALUES ($1, $2)`, [id, ++seq]);
          acked++;
        } catch {
          errors++;
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
    const ctlXacts0 = await controlTransactions(ctl.port);
    const t0 = performance.now();
    // Through bash, whose `times` reports each runner's CPU (user + system): what the runner processes cost the machine.
    const procs = await Promise.all(Array.from({ length: runners }, () => execa('bash', ['-c', 'node "$0" waves "$1" --yes --json; rc=$?; times >&2; exit $rc', CLI, plan], { env, extendEnv: false, reject: false })));
    const cpuS = procs.reduce((sum, p) => sum + runnerCpu(p.stderr), 0);
    const wallMs = performance.now() - t0;
    const ctlRate = ((await controlTransactions(ctl.port)) - ctlXacts0) / (wallMs / 1000);
    stopping = true;
    await Promise.all(writers);
    const st = await wavesStatus(plan, { env });
    const steps = await windowSteps(
      ctl.port,
      st.tenants.map((t) => t.planId),
    );
    const loadAfter = load();
    const failed = procs.filter((p) => p.exitCode !== 0).length;
    results.push({ runners, wallMs, windows: st.windows, done: st.counts.done, acked, errors, failed, load: loadAfter });
    console.log(
      `${runners} runner(s): ${st.counts.done}/${n} done, wall ${(wallMs / 1000).toFixed(1)} s, window p50 ${st.windows.p50Ms} p95 ${st.windows.p95Ms} max ${st.windows.maxMs} ms, ${acked} writes, ${errors} client errors, ${failed} runner(s) failed; load ${loadAfter}`,
    );
    console.log(`  window steps, median (max) ms: ${steps}; runner processes' CPU ${cpuS.toFixed(1)} s; control database ${ctlRate.toFixed(0)} transactions/s`);
    const failures = new Map();
    for (const t of st.tenants) {
      const e = t.error?.message ?? t.lastError;
      if (e) failures.set(e, (failures.get(e) ?? 0) + 1);
    }
    for (const [e, k] of failures) console.log(`  ${k} tenant(s) failed: ${e}`);
    for (const p of procs.filter((p) => p.exitCode !== 0)) console.log(`  runner exit ${p.exitCode}: ${p.stderr.trim().split('\n').slice(-3, -1).join(' | ')}`);
  }
  const base = results[0];
  for (const r of results) console.log(`  ${r.runners} runner(s) vs ${base.runners}: wall ×${(r.wallMs / base.wallMs).toFixed(2)}, window p95 ×${(r.windows.p95Ms / Math.max(1, base.windows.p95Ms)).toFixed(2)}`);
  // A runner count given more than once (--runners 1,3,1,3,1,3: alternated rounds): medians per count over its rounds.
  const byCount = new Map();
  for (const r of results.filter((r) => r.done === n && !r.failed)) byCount.set(r.runners, [...(byCount.get(r.runners) ?? []), r]);
  if ([...byCount.values()].some((rs) => rs.length > 1)) {
    const med = (rs, pick) => median(rs.map(pick));
    const [first] = byCount.values();
    for (const [runners, rs] of byCount) {
      const p95 = med(rs, (r) => r.windows.p95Ms);
      const p50 = med(rs, (r) => r.windows.p50Ms);
      const wall = med(rs, (r) => r.wallMs);
      console.log(
        `median of ${rs.length} round(s), ${runners} runner(s): window p95 ${p95} ms (×${(
          p95 /
          Math.max(
            1,
            med(first, (r) => r.windows.p95Ms),
          )
        ).toFixed(2)}; rounds ${rs.map((r) => r.windows.p95Ms).join(', ')}), p50 ${p50} ms (×${(
          p50 /
          Math.max(
            1,
            med(first, (r) => r.windows.p50Ms),
          )
        ).toFixed(2)}), wall ${(wall / 1000).toFixed(1)} s (×${(wall / med(first, (r) => r.wallMs)).toFixed(2)})`,
      );
    }
  }
  if (results.some((r) => r.done !== n || r.failed)) process.exitCode = 1;
} finally {
  await stopAllSandboxes();
}
