#!/usr/bin/env node
// Write-blocked window of `cutover run` MariaDB → MariaDB through HAProxy under a real client: sysbench
// oltp_write_only with 8 and 32 threads (persistent connections) through HAProxy, beside 4 of the project's
// writers. Every run must fence and switch (exit 0) with every acknowledged writer write on the target; prints
// the window and the steps of each run, then median/p95/max per thread count.
//   npx tsc -p tsconfig.json && node scripts/bench/window-mariadb.mjs [--runs 10] [--threads 8,32]
import { mkdtemp, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { mariadbSql } from './sandbox-sql.mjs';
import { HaproxyRuntime, setAddrCmd } from '../../dist/adapters/routers/haproxy-runtime.js';
import { runCli } from '../../dist/src/cli/program.js';
import { HaproxySandbox } from '../../dist/adapters/routers/haproxy-sandbox.js';
import { MariadbSandbox } from '../../dist/adapters/mysql/mariadb-sandbox.js';
import { MysqlWorkload, mysqlWorkloadTableSql } from '../../dist/adapters/mysql/mysql-workload.js';
import { stopAllSandboxes } from '../../dist/src/sandbox/registry.js';
import { WORKLOAD_TABLE } from '../../dist/src/sandbox/workload.js';

const flag = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const RUNS = Number(flag('runs', 10));
const THREADS = flag('threads', '8,32').split(',').map(Number);
const password = 'bench-pw';
const appPassword = 'bench-app';

const sql = (sb, ...stmts) => mariadbSql(sb, password, ...stmts);

function sysbench(port, db, args) {
  const child = spawn(
    'sysbench',
    ['oltp_write_only', '--db-driver=mysql', '--mysql-host=127.0.0.1', `--mysql-port=${port}`, '--mysql-user=app', `--mysql-password=${appPassword}`, `--mysql-db=${db}`, '--tables=4', '--table-size=10000', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, exited, output: () => out };
}

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];
const STEPS = ['hold', 'fence', 'catch-up', 'sequences', 'verify', 'point-of-no-return', 'repoint', 'lift'];

try {
  const [src, dst] = await Promise.all([1, 2].map((serverId) => MariadbSandbox.start({ password, serverId })));
  const haproxy = await HaproxySandbox.start({ server: { host: src.host, port: src.port }, baseDir: src.dir });
  const rt = new HaproxyRuntime(haproxy.socket);
  for (const sb of [src, dst]) await sql(sb, `CREATE USER 'app'@'%' IDENTIFIED BY '${appPassword}'`);
  const dir = await mkdtemp(join(src.dir, 'bench-'));
  const results = new Map(THREADS.map((t) => [t, []]));
  let n = 0;
  for (const threads of THREADS) {
    for (let i = 0; i < RUNS; i++) {
      const db = `w${n++}`;
      // The previous run left the source read-only and HAProxy on the target: start again from the source.
      await sql(src, 'SET GLOBAL read_only = OFF', `CREATE DATABASE ${db}`, `USE ${db}`, mysqlWorkloadTableSql(), `GRANT ALL ON ${db}.* TO 'app'@'%'`);
      await sql(dst, `GRANT ALL ON ${db}.* TO 'app'@'%'`);
      await rt.command(setAddrCmd(haproxy.backend, haproxy.serverName, '127.0.0.1', src.port));
      const prep = sysbench(src.port, db, ['prepare']);
      if ((await prep.exited).code !== 0) throw new Error(`sysbench prepare: ${prep.output().slice(-300)}`);
      const plan = join(dir, `${db}.yaml`);
      await writeFile(
        plan,
        [
          'engine: mariadb',
          `source: { url: "mariadb://root@127.0.0.1:${src.port}/${db}", passwordEnv: PW }`,
          `target: { url: "mariadb://root@127.0.0.1:${dst.port}/${db}", passwordEnv: PW }`,
          `scope: { databases: [${db}] }`,
          'limits: { maxWriteBlocked: 10s }',
          `router: { kind: haproxy, socket: "${haproxy.socket}", backend: ${haproxy.backend}, server: ${haproxy.serverName} }`,
          `state: "${join(dir, db)}"`,
        ].join('\n'),
      );
      let out = '';
      let err = '';
      const io = { out: (s) => (out += s), err: (s) => (err += s), env: { PW: password }, isTTY: false };
      if ((await runCli(['sync', plan], io)) !== 0) throw new Error(`run ${db}: sync failed: ${err.slice(-500)}`);
      const bench = sysbench(haproxy.port, db, [`--threads=${threads}`, '--time=30', '--report-interval=1', '--mysql-ignore-errors=1213,1205,1020,2013,2006', 'run']);
      const w = new MysqlWorkload({ host: haproxy.host, port: haproxy.port, user: 'app', password: appPassword, database: db, writers: 4 }).start();
      await new Promise((r) => setTimeout(r, 1500));
      out = '';
      const code = await runCli(['run', plan, '--yes', '--json'], io);
      await new Promise((r) => setTimeout(r, 300));
      const wr = await w.stop();
      bench.child.kill('SIGKILL');
      await bench.exited;
      if (code !== 0)
        throw new Error(
          `run ${db} (${threads} threads): exit ${code}: ${err
            .split('\n')
            .filter((l) => /error|✖|fix/.test(l))
            .join(' | ')}`,
        );
      const report = JSON.parse(out);
      const c = await mysql.createConnection({ host: dst.host, port: dst.port, user: 'root', password });
      const [rows] = /** @type {[Array<{ k: string }>, unknown]} */ (/** @type {unknown} */ (await c.query(`SELECT CONCAT(client, ':', seq) AS k FROM ${db}.${WORKLOAD_TABLE}`)));
      await c.end();
      const have = new Set(rows.map((r) => r.k));
      const lost = wr.acknowledged.filter((k) => !have.has(k)).length;
      if (lost) throw new Error(`run ${db}: ${lost} acknowledged writes missing on the target`);
      const sbErrors = [...bench.output().matchAll(/error (\d{4})\b/gi)].map((m) => Number(m[1]));
      const steps = Object.fromEntries(
        STEPS.map((s) => [s, report.steps.find((x) => x.step === s)])
          .filter(([, x]) => x)
          .map(([s, x]) => [s, x.endMs - x.startMs]),
      );
      results.get(threads).push({ window: report.writeBlockedMs, steps });
      console.log(
        `${threads} threads run ${i + 1}: window ${report.writeBlockedMs} ms | ${Object.entries(steps)
          .map(([s, v]) => `${s} ${v}`)
          .join(
            ' · ',
          )} | fence ended ${report.fence.terminated} session(s) | sysbench errors ${sbErrors.filter((e) => e === 1290 || e === 1045).length ? sbErrors.join(',') : 'no 1290/1045'} | writers ${wr.acknowledged.length} acked, 0 lost`,
      );
    }
  }
  console.log('\nwrite-blocked window as clients saw it (hold → release), ms:');
  for (const [threads, rs] of results) {
    const ws = rs.map((r) => r.window);
    const per = STEPS.map((s) => [s, rs.map((r) => r.steps[s]).filter((v) => v !== undefined)])
      .filter(([, v]) => v.length)
      .map(([s, v]) => `${s} ${pct(v, 50)}`)
      .join(' · ');
    console.log(`sysbench oltp_write_only --threads=${threads} + 4 writers, ${rs.length} runs: median ${pct(ws, 50)}, p95 ${pct(ws, 95)}, max ${Math.max(...ws)} (${ws.join(', ')}); step medians: ${per}`);
  }
} finally {
  await stopAllSandboxes();
}
