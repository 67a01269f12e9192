import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { APP_PASSWORD, APP_USER, mysqlMissingOn, sleep, startCutoverEnv, writeMysqlPlan, type MariadbEnv } from '../helpers/cutover-env.js';
import { connect, digests, exec, mariadbMissing, targetCaughtUp, triggersAndIndexes, type MariadbSandbox } from '../helpers/mariadb.js';
import { MysqlWorkload, mysqlWorkloadTableSql } from '../../adapters/mysql/mysql-workload.js';
import { WORKLOAD_TABLE } from '../../src/sandbox/workload.js';

const TABLES = ['big', 'kv', 'nokey', 'odd', 'audit', WORKLOAD_TABLE];

/** Inserts and updates across the whole key range of the split table while the copy runs. */
function churn(sb: MariadbSandbox, db: string, rows: number): { stop(): Promise<number> } {
  let stopped = false;
  let done = 0;
  const loop = (async () => {
    const c = await connect(sb, { user: APP_USER, password: APP_PASSWORD });
    try {
      while (!stopped) {
        const id = 1 + Math.floor(Math.random() * rows);
        await c.query(`UPDATE \`${db}\`.big SET k = k + 1, pad = CONCAT('u', pad) WHERE id = ?`, [id]);
        await c.query(`INSERT INTO \`${db}\`.big (k, pad) VALUES (?, 'new')`, [id]);
        await c.query(`DELETE FROM \`${db}\`.big WHERE id = ?`, [1 + Math.floor(Math.random() * rows)]);
        done++;
      }
    } finally {
      await c.end().catch(() => c.destroy());
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return done;
    },
  };
}

describe.skipIf(mariadbMissing)('MariaDB sync copies in parallel at one GTID position', () => {
  let e: MariadbEnv;
  let stateDir: string;
  const rows = 40_000;

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb', { haproxy: false });
    stateDir = await tempStateDir(e.src.dir);
    await exec(
      e.src,
      'CREATE DATABASE par',
      'USE par',
      'CREATE TABLE big (id bigint AUTO_INCREMENT PRIMARY KEY, k int NOT NULL, pad varchar(255) NOT NULL, KEY k (k)) ENGINE=InnoDB',
      `INSERT INTO big (k, pad) SELECT seq % 977, REPEAT(MD5(seq), 6) FROM seq_1_to_${rows}`,
      // Sizes come from InnoDB's statistics, which a fresh table has not updated yet.
      'ANALYZE TABLE big',
      'CREATE TABLE kv (a int, b varchar(10), v text, PRIMARY KEY (a, b)) ENGINE=InnoDB',
      `INSERT INTO kv SELECT seq, CHAR(65 + seq % 26), REPEAT('x', seq % 50) FROM seq_1_to_500`,
      // No key: copied whole; values a byte-exact copy must keep (tabs, newlines, backslashes, NUL, \\N, NULL, non-UTF-8 bytes).
      'CREATE TABLE nokey (s varchar(50) CHARACTER SET latin1, b varbinary(20), n int) ENGINE=InnoDB',
      "INSERT INTO nokey VALUES ('tab\\there', 0x00FF5C0A09, 1), ('line\\nbreak\\r', NULL, NULL), ('back\\\\slash', '', 0), ('\\\\N', 0x5C4E, 2), (NULL, 0x00, 3), (_latin1 X'4772FCDF65', 0x80, 4)",
      // BIT, a generated column, an invisible column, zero in an AUTO_INCREMENT key, dates and a decimal.
      'CREATE TABLE odd (id int AUTO_INCREMENT PRIMARY KEY, flags bit(5), twice int AS (id * 2) VIRTUAL, secret int INVISIBLE DEFAULT 7, d datetime(6), t timestamp NULL, m decimal(20,6), j json) ENGINE=InnoDB',
      "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
      "INSERT INTO odd (id, flags, secret, d, t, m, j) VALUES (0, b'10101', 1, '2024-02-29 23:59:59.123456', '2024-06-01 12:00:00', -12345678901234.5, '{\"a\": [1, 2]}'), (5, b'00000', 2, NULL, NULL, NULL, NULL)",
      // A trigger on the churned table: present during the load it would fire for every copied row.
      'CREATE TABLE audit (id int AUTO_INCREMENT PRIMARY KEY, big_id bigint) ENGINE=InnoDB',
      'CREATE TRIGGER big_ins AFTER INSERT ON big FOR EACH ROW INSERT INTO audit (big_id) VALUES (NEW.id)',
      'CREATE VIEW big_small AS SELECT id, k FROM big WHERE k < 10',
      'CREATE PROCEDURE big_count() SELECT COUNT(*) FROM big',
      mysqlWorkloadTableSql(),
    );
    for (const sb of [e.src, e.dst]) await exec(sb, `GRANT ALL ON par.* TO '${APP_USER}'@'%'`);
  });
  afterAll(async () => e?.stop());

  it('splits the big table, keeps every acknowledged write and ends with equal digests; triggers, views and routines follow', async () => {
    const plan = await writeMysqlPlan(e, { db: 'par', stateDir, router: false, extra: 'copy: { jobs: 3, splitTablesLargerThan: 1MB }' });
    // check says which copy sync will take, and why the one-stream dump when the target cannot take the parallel one.
    const initialCopy = async (): Promise<string | undefined> => {
      const r = await cli(['check', plan, '--json'], e.env);
      return (r.json().findings as Array<{ check: string; message: string }>).find((f) => f.check === 'initial copy')?.message;
    };
    expect(await initialCopy()).toMatch(/^sync copies \d+ table\(s\) in parallel \(3 workers\) at one GTID position$/);
    await exec(e.dst, 'SET GLOBAL local_infile = 0');
    try {
      expect(await initialCopy()).toMatch(/^sync copies with one dump stream: the target has local_infile = OFF/);
    } finally {
      await exec(e.dst, 'SET GLOBAL local_infile = 1');
    }
    const w = new MysqlWorkload({ host: e.src.host, port: e.src.port, user: APP_USER, password: APP_PASSWORD, database: 'par', writers: 3 }).start();
    const c = churn(e.src, 'par', rows);
    let sync;
    try {
      await sleep(300);
      sync = await cli(['sync', plan], e.env);
      await sleep(500);
    } finally {
      var churned = await c.stop();
      var result = await w.stop();
    }
    expect(sync.code, sync.err).toBe(0);
    const streams = /as (\d+) stream\(s\) with (\d+) worker\(s\)/.exec(sync.out + sync.err);
    expect(streams, sync.out + sync.err).not.toBeNull();
    // big (~8 MB of data) is split into ranges: more streams than tables.
    expect(Number(streams![1])).toBeGreaterThan(TABLES.length);
    expect(churned).toBeGreaterThan(0);

    expect(await targetCaughtUp(e.src, e.dst)).toBe(0);
    // The trigger is there once, and the split table's secondary key was built after its rows.
    expect(await triggersAndIndexes(e.dst, 'par', 'big')).toEqual({ triggers: ['big_ins'], indexes: ['k', 'PRIMARY'] });
    const dst = await connect(e.dst);
    try {
      const [views] = await dst.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM par.big_small`);
      expect(Number(views[0]!.n)).toBeGreaterThan(0);
      const [routines] = await dst.query<RowDataPacket[]>(`SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'par'`);
      expect(routines.map((t) => t.ROUTINE_NAME)).toEqual(['big_count']);
      const [[odd]] = await dst.query<RowDataPacket[]>(`SELECT CAST(flags AS UNSIGNED) AS f, twice, secret FROM par.odd WHERE id = 0`);
      expect(odd).toMatchObject({ f: 21, twice: 0, secret: 1 });
    } finally {
      await dst.end();
    }
    expect(await digests(e.dst, 'par', TABLES)).toEqual(await digests(e.src, 'par', TABLES));
    expect(result.acknowledged.length).toBeGreaterThan(0);
    expect(await mysqlMissingOn(e.dst, 'par', result)).toEqual([]);
    console.log(`parallel MariaDB sync under writers: ${streams![1]} streams, ${streams![2]} workers, ${result.acknowledged.length} acknowledged inserts, ${churned} update/insert/delete rounds on the split table`);
  });
});
