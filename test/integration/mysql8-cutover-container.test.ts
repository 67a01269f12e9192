import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { startMysqlContainer, type ContainerSandbox, type ContainerStart } from '../helpers/container-provider.js';
import { MysqlWorkload, mysqlWorkloadTableSql } from '../../adapters/mysql/mysql-workload.js';
import { WORKLOAD_TABLE } from '../../src/sandbox/workload.js';
import { cli, tempStateDir } from '../helpers/cli.js';

// Like mysql-readonly-mysql8-container.test.ts, this skips even under CI=true: it needs a container runtime
// and an image registry, which CI here lacks. The reason is printed so the skip is visible.
const IMAGE = 'mysql:8.4';
const APP_PASSWORD = 'App:pw/8%';

async function startPair(): Promise<{ ok: true; src: ContainerSandbox; dst: ContainerSandbox } | { ok: false; reason: string }> {
  const [a, b]: [ContainerStart, ContainerStart] = await Promise.all([startMysqlContainer({ image: IMAGE }), startMysqlContainer({ image: IMAGE })]);
  if (a.ok && b.ok) return { ok: true, src: a.sandbox, dst: b.sandbox };
  if (a.ok) await a.sandbox.stop();
  if (b.ok) await b.sandbox.stop();
  return { ok: false, reason: !a.ok ? a.reason : !b.ok ? b.reason : '' };
}

const pair = await startPair();
if (!pair.ok) console.warn(`SKIP MySQL 8 cutover container test: ${pair.reason}`);
const src = pair.ok ? pair.src : undefined;
const dst = pair.ok ? pair.dst : undefined;

async function run(sb: ContainerSandbox, ...sql: string[]): Promise<mysql.RowDataPacket[]> {
  const c = await mysql.createConnection({ host: sb.host, port: sb.port, user: 'root', password: sb.password });
  try {
    let last: mysql.RowDataPacket[] = [];
    for (const s of sql) last = (await c.query<mysql.RowDataPacket[]>(s))[0];
    return last;
  } finally {
    await c.end();
  }
}

/**
 * The provider starts stock containers, so GTIDs are switched on online (the documented OFF → OFF_PERMISSIVE →
 * ON_PERMISSIVE → ON steps) and the server ids made distinct; MySQL 8.4 logs binlogs in ROW format by default.
 */
async function prepare(sb: ContainerSandbox, serverId: number): Promise<void> {
  await run(
    sb,
    `SET PERSIST server_id = ${serverId}`,
    `SET PERSIST binlog_format = 'ROW'`,
    `SET PERSIST enforce_gtid_consistency = ON`,
    `SET PERSIST gtid_mode = OFF_PERMISSIVE`,
    `SET PERSIST gtid_mode = ON_PERMISSIVE`,
    `SET PERSIST gtid_mode = ON`,
    `CREATE USER 'app'@'%' IDENTIFIED BY '${APP_PASSWORD}'`,
  );
}

describe.skipIf(!src || !dst)(`MySQL 8.4 cutover between two ${IMAGE} containers (testcontainers)`, () => {
  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  it('sync + run (router none) under a small workload: every acknowledged write on the target, source super_read_only', async () => {
    await prepare(src!, 1);
    await prepare(dst!, 2);
    await run(
      src!,
      'CREATE DATABASE shop',
      'CREATE TABLE shop.items (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(64) NOT NULL) ENGINE=InnoDB',
      `INSERT INTO shop.items (name) VALUES ${Array.from({ length: 200 }, (_, i) => `('item ${i}')`).join(', ')}`,
      `USE shop`,
      mysqlWorkloadTableSql(),
      `GRANT ALL ON shop.* TO 'app'@'%'`,
    );
    await run(dst!, `GRANT ALL ON shop.* TO 'app'@'%'`);
    const gtid = await run(src!, 'SELECT @@GLOBAL.gtid_mode AS g, @@GLOBAL.binlog_format AS f, @@GLOBAL.server_id AS s');
    expect([gtid[0]!.g, gtid[0]!.f, Number(gtid[0]!.s)]).toEqual(['ON', 'ROW', 1]);

    const stateDir = await tempStateDir();
    const plan = join(stateDir, 'shop.plan.yaml');
    await writeFile(
      plan,
      [
        'engine: mysql',
        `source: { url: "mysql://root@${src!.host}:${src!.port}/shop", passwordEnv: SRC_PW }`,
        `target: { url: "mysql://root@${dst!.host}:${dst!.port}/shop", passwordEnv: DST_PW }`,
        'scope: { databases: ["shop"] }',
        'limits: { maxWriteBlocked: 10s }',
        'router: { kind: none }',
        `state: "${stateDir}"`,
      ].join('\n'),
    );
    const env = { SRC_PW: src!.password, DST_PW: dst!.password };
    const workload = new MysqlWorkload({ host: src!.host, port: src!.port, user: 'app', password: APP_PASSWORD, database: 'shop', writers: 2 }).start();
    let sync, cut;
    try {
      await new Promise((r) => setTimeout(r, 300));
      sync = await cli(['sync', plan, '--json'], env);
      expect(sync.code, sync.err).toBe(0);
      cut = await cli(['run', plan, '--yes', '--json'], env);
    } finally {
      var w = await workload.stop();
      await rm(stateDir, { recursive: true, force: true }).catch(() => {});
    }
    expect(cut.code, cut.err).toBe(0);
    expect(w.acknowledged.length).toBeGreaterThan(0);
    const onTarget = await run(dst!, `SELECT CONCAT(client, ':', seq) AS k FROM shop.${WORKLOAD_TABLE}`);
    const have = new Set(onTarget.map((r) => String(r.k)));
    expect(w.acknowledged.filter((k) => !have.has(k))).toEqual([]);
    const ro = await run(src!, 'SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.super_read_only AS sro');
    expect([Number(ro[0]!.ro), Number(ro[0]!.sro)]).toEqual([1, 1]);
  });
});
