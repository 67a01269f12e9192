#!/usr/bin/env node
// Copy benchmark: our `sync` (MariaDB to MariaDB: the parallel copy at one GTID position, then replication) vs plain
// `mariadb-dump | mariadb` between MariaDB sandboxes, in ALTERNATING order (which goes first switches every run),
// medians of N runs and their ratio; then the write-blocked window of `cutover run` under 4 writers (median/max).
// Run after `npm run build`:  node scripts/bench/copy-mariadb.mjs [MB] [runs] [jobs]
import { loadavg } from 'node:os';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mariadbSql } from './sandbox-sql.mjs';
import { MysqlCutover } from '../../dist/adapters/mysql/mysql-cutover.js';
import { runCli } from '../../dist/src/cli/program.js';
import { MariadbSandbox } from '../../dist/adapters/mysql/mariadb-sandbox.js';
import { MysqlWorkload, mysqlWorkloadTableSql } from '../../dist/adapters/mysql/mysql-workload.js';
import { stopAllSandboxes } from '../../dist/src/sandbox/registry.js';
import { parseDbUrl } from '../../dist/src/util/db-url.js';
import { pipeline } from '../../dist/src/util/subprocess.js';

const MB = Number(process.argv[2] ?? 500);
const RUNS = Number(process.argv[3] ?? 3);
const JOBS = process.argv[4] === undefined ? undefined : Number(process.argv[4]);
const password = 'bench-pw';
const settings = { 'innodb-buffer-pool-size': '512M', 'innodb-log-file-size': '256M', 'max-allowed-packet': '64M' };

const sql = (sb, ...stmts) => mariadbSql(sb, password, ...stmts);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

try {
  const [src, plain, ours] = await Promise.all([1, 2, 3].map((serverId) => MariadbSandbox.start({ password, serverId, settings })));
  const rows = Math.round((MB * 1024 * 1024) / 1100);
  console.error(`generating ~${MB} MB (${rows} rows of ~1 KB) on the source...`);
  await sql(src, 'CREATE DATABASE bench', 'USE bench', 'CREATE TABLE t (id bigint AUTO_INCREMENT PRIMARY KEY, k int NOT NULL, pad varchar(1024) NOT NULL, KEY (k)) ENGINE=InnoDB');
  for (let done = 0; done < rows; done += 100_000) {
    await sql(src, 'USE bench', `INSERT INTO t (k, pad) SELECT seq % 1000, REPEAT(MD5(seq), 32) FROM seq_1_to_${Math.min(100_000, rows - done)}`);
  }
  // A few small tables beside the big one, as a real database has.
  await sql(src, 'USE bench', 'CREATE TABLE small (id int PRIMARY KEY, v varchar(64)) ENGINE=InnoDB', `INSERT INTO small SELECT seq, MD5(seq) FROM seq_1_to_20000`, 'ANALYZE TABLE t, small');
  const ep = (sb) => ({ ...parseDbUrl(`mariadb://root@127.0.0.1:${sb.port}/bench`, { password }), database: 'bench' });

  const plainRun = async () => {
    await sql(plain, 'DROP DATABASE IF EXISTS bench');
    const t = Date.now();
    await pipeline(
      { cmd: 'mariadb-dump', args: ['--host=127.0.0.1', `--port=${src.port}`, '--user=root', '--single-transaction', '--databases', 'bench'], env: { MYSQL_PWD: password } },
      { cmd: 'mariadb', args: ['--host=127.0.0.1', `--port=${plain.port}`, '--user=root'], env: { MYSQL_PWD: password } },
    );
    return (Date.now() - t) / 1000;
  };
  let how = '';
  const oursRun = async () => {
    await sql(ours, 'DROP DATABASE IF EXISTS bench');
    const adapter = await MysqlCutover.connect({
      source: ep(src),
      target: ep(ours),
      database: 'bench',
      method: 'replication',
      name: 'cutover_bench',
      verify: 'rowcounts',
      lockTimeoutMs: 2000,
      ...(JOBS !== undefined ? { copyJobs: JOBS } : {}),
    });
    try {
      const t = Date.now();
      await adapter.sync((e) => {
        if (/stream|one stream/.test(e.message) && !how) how = e.message;
      });
      return (Date.now() - t) / 1000;
    } finally {
      await adapter.cleanup();
      await adapter.close();
    }
  };
  const plainS = [];
  const oursS = [];
  console.log(`load average before: ${load()}`);
  for (let i = 0; i < RUNS; i++) {
    // Alternating order: a warm cache or a neighbour's burst favours neither side.
    if (i % 2 === 0) {
      oursS.push(await oursRun());
      plainS.push(await plainRun());
    } else {
      plainS.push(await plainRun());
      oursS.push(await oursRun());
    }
    console.log(`run ${i + 1}: cutover sync ${oursS.at(-1).toFixed(1)} s · mariadb-dump | mariadb ${plainS.at(-1).toFixed(1)} s · load ${load()}`);
  }
  console.log(`copy: ${how}`);
  const [o, p] = [median(oursS), median(plainS)];
  console.log(`copy ~${MB} MB, median of ${RUNS} alternating runs: cutover sync ${o.toFixed(1)} s · plain mariadb-dump | mariadb ${p.toFixed(1)} s · ratio ${(o / p).toFixed(2)} · load average after ${load()}`);

  // Write-blocked window: a fresh small database per run, 4 writers straight at the source (router none).
  const windows = [];
  // Inside the source sandbox's dir: removed with it, whatever happens.
  const dir = await mkdtemp(join(src.dir, 'bench-'));
  await sql(ours, "CREATE USER 'app'@'%' IDENTIFIED BY 'app'");
  await sql(src, "CREATE USER 'app'@'%' IDENTIFIED BY 'app'");
  for (let i = 0; i < RUNS; i++) {
    const db = `w${i}`;
    await sql(src, 'SET GLOBAL read_only = OFF', `CREATE DATABASE ${db}`, `USE ${db}`, mysqlWorkloadTableSql(), `GRANT ALL ON ${db}.* TO 'app'@'%'`);
    await sql(ours, `GRANT ALL ON ${db}.* TO 'app'@'%'`);
    const plan = join(dir, `${db}.yaml`);
    await writeFile(
      plan,
      [
        'engine: mariadb',
        `source: { url: "mariadb://root@127.0.0.1:${src.port}/${db}", passwordEnv: PW }`,
        `target: { url: "mariadb://root@127.0.0.1:${ours.port}/${db}", passwordEnv: PW }`,
        `scope: { databases: [${db}] }`,
        'limits: { maxWriteBlocked: 10s }',
        `state: "${join(dir, db)}"`,
      ].join('\n'),
    );
    const w = new MysqlWorkload({ host: src.host, port: src.port, user: 'app', password: 'app', database: db, writers: 4 }).start();
    let out = '';
    let err = '';
    const io = { out: (s) => (out += s), err: (s) => (err += s), env: { PW: password }, isTTY: false };
    const syncCode = await runCli(['sync', plan], io);
    out = '';
    const code = await runCli(['run', plan, '--yes', '--json'], io);
    await w.stop();
    if (syncCode !== 0 || code !== 0)
      throw new Error(
        `run ${i}: sync exit ${syncCode}, run exit ${code}: ${err
          .split('\n')
          .filter((l) => /error|✖/.test(l))
          .join(' | ')}`,
      );
    windows.push(JSON.parse(out).writeBlockedMs);
  }
  console.log(`write-blocked window under 4 writers over ${RUNS} runs: median ${median(windows)} ms, max ${Math.max(...windows)} ms (${windows.join(', ')})`);
} finally {
  await stopAllSandboxes();
}
