import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, ENGINES, envMissing, startCutoverEnv, writePlan, type CutoverEnv } from '../helpers/cutover-env.js';
import { connect, exec as mysqlExec, readOnly } from '../helpers/mariadb.js';
import { client, exec } from '../helpers/pg.js';
import { allCmdlines } from '../helpers/faults.js';

const PG_DB = 'Shop "Ünï" db-1';
const MARIADB_DB = "Shop `Ü` 'db'-1";
const qi = (s: string) => `"${s.replace(/"/g, '""')}"`;
const bq = (s: string) => '`' + s.replace(/`/g, '``') + '`';

/** A database whose database, schema, table, column, sequence and role names need quoting in each engine. */
async function seedOddNames(e: CutoverEnv): Promise<void> {
  if (e.engine === 'postgres') {
    await exec(e.src, 'postgres', `CREATE DATABASE ${qi(PG_DB)}`, `CREATE ROLE ${qi("o'brien app")} LOGIN PASSWORD 'x'`);
    await exec(
      e.src,
      PG_DB,
      `CREATE SCHEMA ${qi('weird schema')}`,
      `CREATE TABLE ${qi('weird schema')}.${qi('select')} (${qi('id"x')} bigserial PRIMARY KEY, ${qi('väl ue')} text)`,
      `CREATE SEQUENCE ${qi('weird schema')}.${qi('seq-ü "q"')}`,
      `SELECT nextval('${qi('weird schema').replace(/'/g, "''")}.${qi('seq-ü "q"').replace(/'/g, "''")}')`,
      `INSERT INTO ${qi('weird schema')}.${qi('select')} (${qi('väl ue')}) SELECT 'v' || g FROM generate_series(1, 300) g`,
      `CREATE TABLE public.${qi('Order')} (id int PRIMARY KEY)`,
      `INSERT INTO public.${qi('Order')} SELECT generate_series(1, 50)`,
      `GRANT SELECT ON public.${qi('Order')} TO ${qi("o'brien app")}`,
    );
    return;
  }
  await mysqlExec(
    e.src,
    `CREATE DATABASE ${bq(MARIADB_DB)}`,
    `CREATE TABLE ${bq(MARIADB_DB)}.${bq('select')} (${bq('id`x')} bigint AUTO_INCREMENT PRIMARY KEY, ${bq('väl ue')} varchar(20)) ENGINE=InnoDB`,
    `INSERT INTO ${bq(MARIADB_DB)}.${bq('select')} (${bq('väl ue')}) VALUES ('a'), ('b'), ('c')`,
    `CREATE TABLE ${bq(MARIADB_DB)}.${bq("o'rder")} (id int PRIMARY KEY) ENGINE=InnoDB`,
    `INSERT INTO ${bq(MARIADB_DB)}.${bq("o'rder")} VALUES (1), (2)`,
  );
}

describe.each(ENGINES)('%s', (engine) => {
  describe.skipIf(envMissing(engine))('cutover with hostile identifiers; no secret in argv, output, journal', () => {
    let e: CutoverEnv;
    let stateDir: string;

    beforeAll(async () => {
      // The plans route nowhere: MariaDB needs no HAProxy here.
      e = await startCutoverEnv(engine, { haproxy: false });
      stateDir = await tempStateDir(e.src.dir);
      await seedOddNames(e);
    });
    afterAll(async () => e?.stop());

    if (engine === 'postgres') {
      const DB = PG_DB;

      it('moves a database whose database, schema, table, column, sequence and role names need quoting', async () => {
        if (e.engine !== 'postgres') throw new Error('a PostgreSQL env');
        const plan = await writePlan(e, { db: DB.replace(/"/g, '\\"'), stateDir, extra: 'verify: checksums' });
        let watching = true;
        const seenArgv = new Set<string>();
        const watcher = (async () => {
          while (watching) {
            for (const c of await allCmdlines()) if (c.includes(e.password) || c.includes(encodeURIComponent(e.password))) seenArgv.add(c);
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        let sync, run;
        try {
          sync = await cli(['sync', plan, '--json'], e.env);
          run = await cli(['run', plan, '--yes', '--json'], e.env);
        } finally {
          watching = false;
          await watcher;
        }
        expect(sync.code, sync.err).toBe(0);
        expect(run.code, run.err).toBe(0);
        expect(run.json().verify.mismatches).toEqual([]);
        expect(run.json().verify.tables.length).toBe(2);

        const t = await client(e.dst, { database: DB });
        const rows = await t.query(`SELECT count(*)::int AS n FROM ${qi('weird schema')}.${qi('select')}`);
        const seq = await t.query(`SELECT last_value::int AS v FROM ${qi('weird schema')}.${qi('seq-ü "q"')}`);
        const role = await t.query(`SELECT has_table_privilege($1, 'public."Order"', 'SELECT') AS ok`, ["o'brien app"]);
        await t.end();
        expect(rows.rows[0].n).toBe(300);
        expect(seq.rows[0].v).toBe(1 + 1000);
        expect(role.rows[0].ok).toBe(true);
        expect(await canWrite(e.dst, DB).catch(() => 'no workload table')).toBe('no workload table');
        const src = await client(e.src, { database: DB });
        await expect(src.query(`INSERT INTO public."Order" VALUES (999)`)).rejects.toMatchObject({ code: '25006' });
        await src.end();

        expect([...seenArgv]).toEqual([]);
        const everything = [sync.out, sync.err, run.out, run.err];
        for (const f of await readdir(stateDir)) everything.push(await readFile(`${stateDir}/${f}`, 'utf8').catch(() => ''));
        for (const text of everything) {
          expect(text).not.toContain(e.password);
          expect(text).not.toContain(encodeURIComponent(e.password));
        }
      });

      it("method dump copies a database whose name has quotes and '=' (pg_restore must not read it as a conninfo)", async () => {
        if (e.engine !== 'postgres') throw new Error('a PostgreSQL env');
        const db = "dump 'me' = x";
        await exec(e.src, 'postgres', `CREATE DATABASE ${qi(db)}`);
        await exec(e.src, db, `CREATE TABLE ${qi('t "1"')} (id int PRIMARY KEY)`, `INSERT INTO ${qi('t "1"')} SELECT generate_series(1, 100)`);
        const plan = await writePlan(e, { db: db.replace(/"/g, '\\"'), stateDir: `${stateDir}/dump`, method: 'dump' });
        expect((await cli(['sync', plan], e.env)).code).toBe(0);
        const run = await cli(['run', plan, '--yes', '--json'], e.env);
        expect(run.code, run.err).toBe(0);
        const t = await client(e.dst, { database: db });
        const n = await t.query(`SELECT count(*)::int AS n FROM ${qi('t "1"')}`);
        await t.end();
        expect(n.rows[0].n).toBe(100);
      });
    }

    if (engine === 'mariadb') {
      const DB = MARIADB_DB;

      it('syncs, cuts over and verifies with checksums; the source is left read-only', async () => {
        if (e.engine !== 'mariadb') throw new Error('a MariaDB env');
        const plan = join(stateDir, 'odd.yaml');
        const db = encodeURIComponent(DB);
        await writeFile(
          plan,
          [
            'engine: mariadb',
            `source: { url: "mariadb://root@127.0.0.1:${e.src.port}/${db}", passwordEnv: SRC_PW }`,
            `target: { url: "mariadb://root@127.0.0.1:${e.dst.port}/${db}", passwordEnv: DST_PW }`,
            `scope: { databases: [${JSON.stringify(DB)}] }`,
            'verify: checksums',
            'router: { kind: none }',
            `state: "${stateDir}"`,
          ].join('\n'),
        );
        const sync = await cli(['sync', plan], e.env);
        expect(sync.code, sync.err).toBe(0);
        const run = await cli(['run', plan, '--yes', '--json'], e.env);
        expect(run.code, run.err).toBe(0);
        expect(run.json().verify.mismatches).toEqual([]);
        const t = await connect(e.dst);
        const [rows] = await t.query(`SELECT COUNT(*) AS n FROM ${bq(DB)}.${bq('select')}`);
        await t.query(`INSERT INTO ${bq(DB)}.${bq("o'rder")} VALUES (3)`);
        await t.end();
        expect((rows as Array<{ n: number }>)[0]!.n).toBe(3);
        // root holds READ ONLY ADMIN on MariaDB and would pass read_only: check the server flag itself.
        expect(await readOnly(e.src)).toBe(1);
        for (const text of [sync.out, sync.err, run.out, run.err]) expect(text).not.toContain(e.password);
      });
    }
  });
});
