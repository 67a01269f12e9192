import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, syncKilledWhen } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { APP_PASSWORD, APP_USER, mysqlMissingOn, sleep, startCutoverEnv, writeMysqlPlan, type MariadbEnv } from '../helpers/cutover-env.js';
import { connect, digests, exec, mariadbMissing, targetCaughtUp, triggersAndIndexes, type MariadbSandbox } from '../helpers/mariadb.js';
import { MysqlWorkload, mysqlWorkloadTableSql } from '../../adapters/mysql/mysql-workload.js';
import { WORKLOAD_TABLE } from '../../src/sandbox/workload.js';

const SMALL = ['s1', 's2', 's3', 's4', 's5', 's6'];
const TABLES = ['big', 'parent', 'child', 'nokey', 'audit', ...SMALL, WORKLOAD_TABLE];

/** Updates, inserts and deletes on the split table and on every small one (and a keyless one) while the copies run. */
function churn(sb: MariadbSandbox, db: string, rows: number): { stop(): Promise<number> } {
  let stopped = false;
  let done = 0;
  const loop = (async () => {
    const c = await connect(sb, { user: APP_USER, password: APP_PASSWORD });
    try {
      while (!stopped) {
        const id = 1 + Math.floor(Math.random() * rows);
        await c.query(`UPDATE \`${db}\`.big SET k = k + 1, pad = CONCAT('u', LEFT(pad, 200)) WHERE id = ?`, [id]);
        await c.query(`INSERT INTO \`${db}\`.big (k, pad) VALUES (?, 'new')`, [id]);
        const s = SMALL[done % SMALL.length]!;
        await c.query(`UPDATE \`${db}\`.\`${s}\` SET v = CONCAT(v, 'x') WHERE id = ?`, [1 + (id % 3000)]);
        await c.query(`INSERT INTO \`${db}\`.nokey VALUES (?, 'churn')`, [id]);
        await c.query(`INSERT INTO \`${db}\`.child (parent_id, note) VALUES (?, 'churn')`, [1 + (id % 100)]);
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

/** The tables a resumed sync found complete, and all tables. */
function resumed(out: string): { done: number; total: number } {
  const m = /resuming the copy cut short: (\d+) of (\d+) table\(s\) already copied/.exec(out);
  expect(m, out).not.toBeNull();
  return { done: Number(m![1]), total: Number(m![2]) };
}

describe.skipIf(mariadbMissing)('MariaDB sync killed mid-copy resumes table by table', () => {
  let e: MariadbEnv;
  let stateDir: string;
  const rows = 40_000;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startCutoverEnv('mariadb', { haproxy: false });
    stateDir = await tempStateDir(e.src.dir);
    await exec(
      e.src,
      'CREATE DATABASE res',
      'USE res',
      'CREATE TABLE big (id bigint AUTO_INCREMENT PRIMARY KEY, k int NOT NULL, pad varchar(255) NOT NULL, KEY k (k)) ENGINE=InnoDB',
      `INSERT INTO big (k, pad) SELECT seq % 977, REPEAT(MD5(seq), 6) FROM seq_1_to_${rows}`,
      'ANALYZE TABLE big',
      // A foreign key: emptying the parent for a second copy must not trip over it.
      'CREATE TABLE parent (id int PRIMARY KEY, name varchar(20)) ENGINE=InnoDB',
      'INSERT INTO parent SELECT seq, CONCAT("p", seq) FROM seq_1_to_100',
      'CREATE TABLE child (id int AUTO_INCREMENT PRIMARY KEY, parent_id int NOT NULL, note varchar(20), FOREIGN KEY (parent_id) REFERENCES parent (id)) ENGINE=InnoDB',
      'INSERT INTO child (parent_id, note) SELECT 1 + seq % 100, "seed" FROM seq_1_to_2000',
      'CREATE TABLE nokey (n int, note varchar(20)) ENGINE=InnoDB',
      'INSERT INTO nokey SELECT seq, "seed" FROM seq_1_to_2000',
      'CREATE TABLE audit (id int AUTO_INCREMENT PRIMARY KEY, big_id bigint) ENGINE=InnoDB',
      'CREATE TRIGGER big_ins AFTER INSERT ON big FOR EACH ROW INSERT INTO audit (big_id) VALUES (NEW.id)',
      ...SMALL.flatMap((s) => [`CREATE TABLE ${s} (id int PRIMARY KEY, v text) ENGINE=InnoDB`, `INSERT INTO ${s} SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_3000`]),
      mysqlWorkloadTableSql(),
    );
    for (const sb of [e.src, e.dst]) await exec(sb, `GRANT ALL ON res.* TO '${APP_USER}'@'%'`);
  }, 180_000);
  afterAll(async () => e?.stop());

  it('killed twice at random points under writers, it keeps the complete tables, copies the rest at a later position, starts the replica in stages and ends with equal contents', async () => {
    // One worker: units finish one after the other, so a kill lands between tables as well as inside one.
    const plan = await writeMysqlPlan(e, { db: 'res', stateDir, router: false, extra: 'copy: { jobs: 1, splitTablesLargerThan: 1MB }' });
    const w = new MysqlWorkload({ host: e.src.host, port: e.src.port, user: APP_USER, password: APP_PASSWORD, database: 'res', writers: 3 }).start();
    const c = churn(e.src, 'res', rows);
    const firstAfter = 1 + Math.floor(Math.random() * 3);
    const secondAfter = 1 + Math.floor(Math.random() * 2);
    console.log(`killing the first sync once ${firstAfter} table(s) are copied, the second after ${secondAfter} more unit(s)`);
    let first: string, second: string, third;
    try {
      await sleep(300);
      first = await syncKilledWhen(plan, e.env, new RegExp(`copied \\S+(?: \\(a key range\\))?(?: \\([\\d,]+ rows\\))?: ${firstAfter}/\\d+ tables`));
      await sleep(300);
      second = await syncKilledWhen(
        plan,
        e.env,
        new RegExp(`resuming the copy cut short[^\\n]*\\n(?:.*\\n){0,40}?(?:.*copied \\S+(?: \\(a key range\\))?(?: \\([\\d,]+ rows\\))?: \\d+/\\d+ tables.*\\n?){${secondAfter}}`),
      );
      await sleep(300);
      third = await cli(['sync', plan], e.env);
      await sleep(500);
    } finally {
      var churned = await c.stop();
      var result = await w.stop();
    }
    expect(first).toMatch(/copying \d+ table\(s\) as \d+ stream\(s\) with 1 worker/);
    const r2 = resumed(second);
    expect(r2.done).toBeGreaterThanOrEqual(1);
    expect(r2.done).toBeLessThan(r2.total);
    expect(third.code, third.err).toBe(0);
    const r3 = resumed(third.err);
    expect(r3.done).toBeGreaterThanOrEqual(r2.done);
    // Writers moved the source between the copies: the replica ran through the later positions in stages.
    expect(third.err).toMatch(/runs to GTID \S+ without \d+ table\(s\) copied at that position or later/);
    expect(churned).toBeGreaterThan(0);

    expect(await targetCaughtUp(e.src, e.dst)).toBe(0);
    expect(await triggersAndIndexes(e.dst, 'res', 'big')).toEqual({ triggers: ['big_ins'], indexes: ['k', 'PRIMARY'] });
    const dst = await connect(e.dst);
    try {
      // The record is gone and the replica applies every table again.
      const [record] = await dst.query<RowDataPacket[]>(`SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '_cutover'`);
      expect(record).toEqual([]);
      const [replicas] = await dst.query<RowDataPacket[]>('SHOW ALL SLAVES STATUS');
      expect(replicas.map((x) => [x.Replicate_Ignore_Table, x.Slave_SQL_Running])).toEqual([['', 'Yes']]);
    } finally {
      await dst.end();
    }
    expect(await digests(e.dst, 'res', TABLES)).toEqual(await digests(e.src, 'res', TABLES));
    expect(result.acknowledged.length).toBeGreaterThan(0);
    expect(await mysqlMissingOn(e.dst, 'res', result)).toEqual([]);
    console.log(`resumed MariaDB sync: ${r2.done}/${r2.total} then ${r3.done}/${r3.total} tables kept, ${result.acknowledged.length} acknowledged inserts, ${churned} churn rounds`);
  });
});
