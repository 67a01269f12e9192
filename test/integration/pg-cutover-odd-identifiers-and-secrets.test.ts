import { readdir, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, exec, pg15Missing, pg17Missing } from '../helpers/pg.js';

const DB = 'Shop "Ünï" db-1';
const qi = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** Every process's argv on this machine, read while the cutover runs. */
async function allCmdlines(): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const text = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (text) out.push(text.replace(/\0/g, ' '));
  }
  return out;
}

describe.skipIf(pg15Missing ?? pg17Missing)('cutover with hostile identifiers; no secret in argv, output, journal', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres');
    stateDir = await tempStateDir(e.src.dir);
    await exec(e.src, 'postgres', `CREATE DATABASE ${qi(DB)}`, `CREATE ROLE ${qi("o'brien app")} LOGIN PASSWORD 'x'`);
    await exec(
      e.src,
      DB,
      `CREATE SCHEMA ${qi('weird schema')}`,
      `CREATE TABLE ${qi('weird schema')}.${qi('select')} (${qi('id"x')} bigserial PRIMARY KEY, ${qi('väl ue')} text)`,
      `CREATE SEQUENCE ${qi('weird schema')}.${qi('seq-ü "q"')}`,
      `SELECT nextval('${qi('weird schema').replace(/'/g, "''")}.${qi('seq-ü "q"').replace(/'/g, "''")}')`,
      `INSERT INTO ${qi('weird schema')}.${qi('select')} (${qi('väl ue')}) SELECT 'v' || g FROM generate_series(1, 300) g`,
      `CREATE TABLE public.${qi('Order')} (id int PRIMARY KEY)`,
      `INSERT INTO public.${qi('Order')} SELECT generate_series(1, 50)`,
      `GRANT SELECT ON public.${qi('Order')} TO ${qi("o'brien app")}`,
    );
  });
  afterAll(async () => e?.stop());

  it('moves a database whose database, schema, table, column, sequence and role names need quoting', async () => {
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
});
