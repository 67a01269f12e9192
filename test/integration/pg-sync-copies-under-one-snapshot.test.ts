import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, syncKilledWhen } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { missingOn, seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, exec, pg15Missing, pg17Missing, type PostgresSandbox } from '../helpers/pg.js';
import { Workload } from '../../adapters/postgres/postgres-workload.js';

/** Every row of a table as one digest, in key order: equal digests mean equal contents. */
async function digest(sb: PostgresSandbox, db: string, table: string, key: string): Promise<{ n: number; md5: string }> {
  const c = await client(sb, { database: db });
  try {
    // Rows printed in one style on both sides, whatever their databases' settings.
    await c.query(`SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3`);
    const { rows } = await c.query<{ n: number; md5: string }>(`SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY ${key}), '')) AS md5 FROM ${table} t`);
    return rows[0]!;
  } finally {
    await c.end();
  }
}

/** Each table's rows are the same on both sides. */
async function expectSameRows(e: PostgresEnv, db: string, tables: ReadonlyArray<readonly [string, string]>): Promise<void> {
  for (const [table, key] of tables) {
    const [src, dst] = await Promise.all([digest(e.src, db, table, key), digest(e.dst, db, table, key)]);
    expect(dst, table).toEqual(src);
  }
}

async function catalogCounts(sb: PostgresSandbox, db: string): Promise<{ indexes: number; constraints: number }> {
  const c = await client(sb, { database: db });
  try {
    const { rows } = await c.query<{ i: number; k: number }>(
      `SELECT (SELECT count(*)::int FROM pg_indexes WHERE schemaname = 'public') AS i,
              (SELECT count(*)::int FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = 'public') AS k`,
    );
    return { indexes: rows[0]!.i, constraints: rows[0]!.k };
  } finally {
    await c.end();
  }
}

/** Writes that keep changing rows of the big table (inserts and updates) while the copy runs under its snapshot. */
function churn(sb: PostgresSandbox, password: string, db: string): { stop(): Promise<number> } {
  let stopped = false;
  let done = 0;
  // Ends with the test's servers at the latest: its error is the stop, not a finding.
  const loop = (async () => {
    const c = await client(sb, { database: db, password });
    try {
      for (let i = 1; !stopped; i++) {
        await c.query(`UPDATE big SET n = n + 1, note = 'churn ' || $1 WHERE id = $2`, [i, 1 + ((i * 7919) % 400_000)]);
        await c.query(`INSERT INTO big (n, note, owner) VALUES ($1, 'late', 1 + $1 % 50)`, [i]);
        done++;
      }
    } finally {
      await c.end().catch(() => {});
    }
  })().catch((e: unknown) => {
    if (!stopped) throw e;
  });
  return {
    async stop() {
      stopped = true;
      await loop;
      return done;
    },
  };
}

/**
 * A database whose table `slow` (`rows` rows) loads at ~2 ms a row on the target: its CHECK function sleeps in the
 * copy's sessions only (their application name). Pre-data carries the function and the constraint.
 */
async function slowLoadDatabase(sb: PostgresSandbox, db: string, rows: number, ...more: string[]): Promise<void> {
  await exec(sb, 'postgres', `CREATE DATABASE ${db}`);
  await exec(
    sb,
    db,
    `CREATE FUNCTION slow_ok(int) RETURNS boolean LANGUAGE plpgsql AS $$
       BEGIN IF current_setting('application_name') = 'cutover copy' THEN PERFORM pg_sleep(0.002); END IF; RETURN true; END $$`,
    'CREATE TABLE slow (id int PRIMARY KEY, v text, CHECK (slow_ok(id)))',
    `INSERT INTO slow SELECT g, md5(g::text) FROM generate_series(1, ${rows}) g`,
    ...more,
  );
}

/** The parts a resumed sync found already copied, and all parts. */
function resumedParts(out: string): { done: number; total: number } {
  const m = /resuming the copy cut short under slot \S+ at \S+: (\d+) of (\d+) parts already copied/.exec(out);
  expect(m, out).not.toBeNull();
  return { done: Number(m![1]), total: Number(m![2]) };
}

describe.skipIf(pg15Missing ?? pg17Missing)("sync copies a whole database under the slot's snapshot, indexes after, big tables in ranges (PostgreSQL 15 → 17)", () => {
  let e: PostgresEnv;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startCutoverEnv('postgres');
    await seedDatabase(e.src, 'shop', 2000);
    await exec(
      e.src,
      'shop',
      'CREATE TABLE owners (id int PRIMARY KEY, name text UNIQUE)',
      `INSERT INTO owners SELECT g, 'owner ' || g FROM generate_series(1, 50) g`,
      // A dropped column, a generated one, a foreign key and a secondary index: COPY names its columns, post-data builds the rest.
      `CREATE TABLE big (id bigserial PRIMARY KEY, gone int, n int NOT NULL, note text, owner int REFERENCES owners(id), twice int GENERATED ALWAYS AS (n * 2) STORED)`,
      'ALTER TABLE big DROP COLUMN gone',
      `INSERT INTO big (n, note, owner) SELECT g, repeat(md5(g::text), 2), 1 + g % 50 FROM generate_series(1, 400000) g`,
      'CREATE INDEX big_owner ON big (owner, n)',
      'CREATE TABLE events (id int, at date NOT NULL, what text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)',
      `CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`,
      `CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`,
      `INSERT INTO events SELECT g, date '2025-01-01' + (g % 700), 'e' || g FROM generate_series(1, 20000) g`,
    );
  }, 180_000);
  afterAll(async () => e?.stop());

  it('a copy killed twice half-way resumes part by part under the same snapshot; with writers and churn on the big table throughout, every row and every acknowledged write is on the target after the run', async () => {
    const stateDir = await tempStateDir(e.src.dir);
    const plan = await writePlan(e, { db: 'shop', stateDir, extra: 'copy: { jobs: 3, splitTablesLargerThan: 4MB }' });
    const writers = new Workload({ host: '127.0.0.1', port: e.src.port, user: 'postgres', password: e.password, database: 'shop', writers: 3, readers: 0 }).start();
    const changes = churn(e.src, e.password, 'shop');

    // First sync: killed once the copy under the snapshot has committed a part or more.
    const first = await syncKilledWhen(plan, e.env, /copy \d+\/\d+ tables, /);
    expect(first).toMatch(/copying \d+ tables \((\d+) parts\) under its snapshot with 3 workers/);
    const parts = Number(/\((\d+) parts\)/.exec(first)![1]);
    expect(parts).toBeGreaterThan(10);

    // Second sync: resumes under the same snapshot, and is killed again once it has committed more.
    const second = await syncKilledWhen(plan, e.env, /resuming the copy[^\n]*\n(?:.*\n)*?.*copy \d+\/\d+ tables, /);
    const before = resumedParts(second);
    expect(before.done).toBeGreaterThan(0);
    expect(before.total).toBe(parts);

    // Third sync: resumes again and finishes; the parts done before are not copied again.
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    const after = resumedParts(sync.err);
    expect(after.total).toBe(parts);
    expect(after.done).toBeGreaterThan(before.done);
    expect(sync.err).not.toMatch(/copying again under a new snapshot/);
    expect(sync.err).toMatch(/indexes and constraints built in \d+ms \(3 jobs\)/);
    expect(sync.err).toMatch(/streams from the slot's consistent point/);
    // The snapshot keeper is gone once the copy is done (it would hold back vacuum on the source).
    const s = await client(e.src, { database: 'shop' });
    try {
      const kept = await s.query(`SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'cutover snapshot%'`);
      expect(kept.rows).toEqual([]);
    } finally {
      await s.end();
    }

    await new Promise((r) => setTimeout(r, 1000));
    const churned = await changes.stop();
    const run = await cli(['run', plan, '--yes'], e.env);
    const w = await writers.stop();
    expect(run.code, run.err).toBe(0);
    expect(churned).toBeGreaterThan(0);
    expect(w.acknowledged.length).toBeGreaterThan(0);
    expect(await missingOn(e.dst, 'shop', w)).toEqual([]);

    await expectSameRows(e, 'shop', [
      ['big', 'id'],
      ['owners', 'id'],
      ['events', 'id, at'],
      ['items', 'id'],
    ]);
    expect(await catalogCounts(e.dst, 'shop')).toEqual(await catalogCounts(e.src, 'shop'));
    const t = await client(e.dst, { database: 'shop' });
    try {
      const twice = await t.query<{ bad: number }>('SELECT count(*)::int AS bad FROM big WHERE twice <> n * 2');
      expect(twice.rows[0]!.bad).toBe(0);
    } finally {
      await t.end();
    }
  }, 300_000);

  it("tables of built-in types move in COPY's binary format, a table with user types (enum, composite, domain, enum array) as text; every value arrives equal", async () => {
    await seedDatabase(e.src, 'types', 100);
    await exec(
      e.src,
      'types',
      `CREATE TABLE builtin_types (id int PRIMARY KEY, i2 smallint, i8 bigint, nm numeric(20,5), nn numeric, f4 real, f8 double precision, b bool, t text, vc varchar(20), ch char(5), by bytea,
         d date, ts timestamp, tz timestamptz, tm time, tmz timetz, iv interval, u uuid, j json, jb jsonb, ip inet, net cidr, mac macaddr, ia int[], ta text[], r int4range, tr tstzrange,
         mr int4multirange, bits bit varying(16), tv tsvector, pt point, box box, oi oid, ch1 "char")`,
      `INSERT INTO builtin_types SELECT g, (g % 32767)::smallint, g::bigint * 1000003, g / 7.0, CASE WHEN g % 50 = 0 THEN 'NaN'::numeric ELSE g * 1.5e10 END, g / 3.0, g / 7.0, g % 2 = 0,
         CASE WHEN g % 10 = 0 THEN NULL ELSE 'ü€ "quoted" \\ tab	' || g END, 'v' || g, 'c' || (g % 100), decode(md5(g::text), 'hex'),
         CASE WHEN g = 1 THEN 'infinity'::date ELSE '2024-01-01'::date + g END, '2024-01-01 00:00:00.123456'::timestamp + g * interval '1 minute',
         CASE WHEN g = 2 THEN '-infinity'::timestamptz ELSE '2024-01-01 00:00:00+02'::timestamptz + g * interval '1 second' END, time '12:00' + g * interval '1 second', timetz '12:00+05',
         g * interval '1 day 3 hours', md5(g::text)::uuid, json_build_object('g', g, 'a', json_build_array(1, 'x')), jsonb_build_object('g', g, 'n', null),
         ('10.0.' || (g % 256) || '.1')::inet, '192.168.0.0/16', '08:00:2b:01:02:03', ARRAY[g, NULL, -g], ARRAY['a', NULL, 'b"c'], int4range(g, g + 10),
         tstzrange('2024-01-01', '2024-02-01', '[)'), int4multirange(int4range(1, 3), int4range(g + 5, g + 9)), (g % 65536)::bit(16)::varbit, to_tsvector('simple', 'word ' || g),
         point(g, -g), box(point(0, 0), point(g, g)), g::oid, 'x'::"char" FROM generate_series(1, 3000) g`,
      `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`,
      `CREATE TYPE pair AS (a int, b text)`,
      `CREATE DOMAIN posint AS int CHECK (VALUE > 0)`,
      `CREATE TABLE user_types (id int PRIMARY KEY, m mood, p pair, pi posint, ms mood[], n int)`,
      `INSERT INTO user_types SELECT g, (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::mood, ROW(g, 'p' || g)::pair, g, ARRAY['ok', 'happy']::mood[], g FROM generate_series(1, 2000) g`,
    );
    const plan = await writePlan(e, { db: 'types', stateDir: await tempStateDir(e.src.dir) });
    const sync = await cli(['--json', '--events', 'json', 'sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    expect(JSON.parse(sync.out)).toMatchObject({ ok: true, action: 'sync' });
    // --events json: one object per line on stderr; the copy's progress as numbers, rows per table once it is done.
    const events = sync.err
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event: string; status: string; message: string; progress?: { table?: string; tableRows?: number; rowsDone?: number; bytesDone?: number; bytesTotal?: number; tablesTotal?: number } });
    const rowsOf = Object.fromEntries(events.filter((ev) => ev.progress?.tableRows !== undefined).map((ev) => [ev.progress!.table, ev.progress!.tableRows]));
    expect(rowsOf).toMatchObject({ 'public.builtin_types': 3000, 'public.user_types': 2000 });
    const last = events.filter((ev) => ev.progress?.rowsDone !== undefined).at(-1)!.progress!;
    expect(last.bytesDone).toBe(last.bytesTotal);
    expect(last.rowsDone).toBeGreaterThanOrEqual(5000);
    expect(events.some((ev) => ev.event === 'sync' && ev.status === 'ok')).toBe(true);
    const m = /(\d+) of (\d+) tables in COPY's binary format/.exec(events.map((ev) => ev.message).join('\n'));
    expect(m, sync.err).not.toBeNull();
    // Every table but user_types (the sentinel's and the seed's included).
    expect(Number(m![1])).toBe(Number(m![2]) - 1);
    for (const table of ['builtin_types', 'user_types']) {
      const [src, dst] = await Promise.all([digest(e.src, 'types', table, 'id'), digest(e.dst, 'types', table, 'id')]);
      expect(src.n).toBeGreaterThan(0);
      expect(dst, table).toEqual(src);
    }
  }, 300_000);

  it("indexes and constraints built after the copy arrive whole: keys (deferrable unique, exclusion), foreign keys, a trigger, an index comment, CLUSTER ON, REPLICA IDENTITY USING INDEX, a partitioned table's indexes, a table copied in ranges", async () => {
    await exec(e.src, 'postgres', 'CREATE DATABASE indexed');
    await exec(
      e.src,
      'indexed',
      'CREATE TABLE kinds (id int PRIMARY KEY, name text NOT NULL, CONSTRAINT kinds_name UNIQUE (name) DEFERRABLE INITIALLY DEFERRED)',
      `INSERT INTO kinds SELECT g, 'kind ' || g FROM generate_series(1, 20) g`,
      'CREATE TABLE rooms (id int PRIMARY KEY, kind int NOT NULL REFERENCES kinds (id), during tstzrange NOT NULL, code text NOT NULL, EXCLUDE USING gist (during WITH &&))',
      `INSERT INTO rooms SELECT g, 1 + g % 20, tstzrange('2024-01-01'::timestamptz + g * interval '1 hour', '2024-01-01'::timestamptz + (g + 1) * interval '1 hour'), 'r' || g FROM generate_series(1, 3000) g`,
      'CREATE UNIQUE INDEX rooms_code ON rooms (code)',
      'ALTER TABLE rooms REPLICA IDENTITY USING INDEX rooms_code',
      'CREATE INDEX rooms_kind ON rooms (kind)',
      'ALTER TABLE rooms CLUSTER ON rooms_kind',
      'CREATE INDEX rooms_busy ON rooms (kind) WHERE kind > 1',
      "COMMENT ON INDEX rooms_busy IS 'kinds above one'",
      `CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
      'CREATE TRIGGER rooms_touch BEFORE UPDATE ON rooms FOR EACH ROW EXECUTE FUNCTION touch()',
      // Copied in ranges (splitTablesLargerThan below): its indexes wait for every range.
      'CREATE TABLE wide (id int PRIMARY KEY, v text)',
      `INSERT INTO wide SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 30000) g`,
      'CREATE INDEX wide_v ON wide (v)',
      'CREATE TABLE logs (id int, at date NOT NULL, what text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)',
      `CREATE TABLE logs_2025 PARTITION OF logs FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`,
      `CREATE INDEX logs_what ON logs (what)`,
      `INSERT INTO logs SELECT g, date '2025-01-01' + (g % 300), 'w' || g FROM generate_series(1, 2000) g`,
    );
    const plan = await writePlan(e, { db: 'indexed', stateDir: await tempStateDir(e.src.dir), extra: 'copy: { jobs: 2, splitTablesLargerThan: 2MB }' });
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    const copying = /copying (\d+) tables \((\d+) parts\)/.exec(sync.err);
    expect(Number(copying![2]), sync.err).toBeGreaterThan(Number(copying![1]));
    const postData = async (sb: PostgresSandbox) => {
      const c = await client(sb, { database: 'indexed' });
      try {
        const { rows } = await c.query<{ what: string }>(
          `SELECT 'index ' || indexdef AS what FROM pg_indexes WHERE schemaname = 'public'
           UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || condeferrable || condeferred FROM pg_constraint WHERE connamespace = 'public'::regnamespace
           UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
           UNION ALL SELECT 'comment ' || c.relname || ' ' || obj_description(c.oid, 'pg_class') FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND obj_description(c.oid, 'pg_class') IS NOT NULL
           UNION ALL SELECT 'clustered ' || indexrelid::regclass FROM pg_index WHERE indisclustered
           UNION ALL SELECT 'identity ' || indexrelid::regclass FROM pg_index WHERE indisreplident
           UNION ALL SELECT 'attached ' || inhrelid::regclass || ' ' || inhparent::regclass FROM pg_inherits
           ORDER BY 1`,
        );
        return rows.map((r) => r.what);
      } finally {
        await c.end();
      }
    };
    const [src, dst] = await Promise.all([postData(e.src), postData(e.dst)]);
    expect(src).toContain('comment rooms_busy kinds above one');
    expect(src).toContain('attached logs_2025_pkey logs_pkey');
    expect(dst).toEqual(src);
    await expectSameRows(e, 'indexed', [
      ['rooms', 'id'],
      ['wide', 'id'],
      ['logs', 'id, at'],
    ]);
  }, 180_000);

  it('a table copied in one long part reports how far its load is before it is in (rows and bytes read off the target), not only at its end', async () => {
    // A 3000-row load that takes ~6 s, so the watch (every 2 s) sees it part-way.
    await slowLoadDatabase(e.src, 'slowload', 3000);
    const plan = await writePlan(e, { db: 'slowload', stateDir: await tempStateDir(e.src.dir) });
    const sync = await cli(['--json', '--events', 'json', 'sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    const copyEvents = sync.err
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { progress?: { table?: string; rowsDone?: number; bytesDone?: number; bytesTotal?: number; etaMs?: number } })
      .filter((ev) => ev.progress?.rowsDone !== undefined)
      .map((ev) => ev.progress!);
    const slowDone = copyEvents.findIndex((p) => p.table === 'public.slow');
    expect(slowDone, sync.err).toBeGreaterThan(0);
    // Before the table is in: at least one event with some of its rows loaded, none with all of them.
    const midway = copyEvents.slice(0, slowDone).filter((p) => p.table === undefined && p.rowsDone! > 0);
    expect(midway.length, sync.err).toBeGreaterThan(0);
    for (const p of midway) {
      expect(p.rowsDone).toBeLessThan(3000);
      expect(p.bytesDone).toBeLessThan(p.bytesTotal!);
    }
  }, 120_000);

  it("the copy's sessions keep their own settings whatever the database's or role's (the source's, which sync carries over, and the target role's): a statement_timeout does not cancel a longer load, dates and intervals of a table copied as text arrive equal across DateStyle and IntervalStyle", async () => {
    // ~1 s of load against a 300 ms timeout that every session of the source database gets, and every session of the
    // target's role in that database. A table with an enum moves as text: its dates and intervals are printed by the
    // source's session and read by the target's, whose styles differ here ('SQL, DMY' prints 2024-03-01 as 01/03/2024).
    await slowLoadDatabase(
      e.src,
      'sessions',
      500,
      `CREATE TYPE mood AS ENUM ('calm', 'busy')`,
      'CREATE TABLE dated (id int PRIMARY KEY, m mood NOT NULL, d date NOT NULL, i interval NOT NULL, f float8 NOT NULL)',
      `INSERT INTO dated SELECT g, 'busy', date '2024-01-01' + g * 31, make_interval(days => -g, hours => g % 24), 1.0 / g FROM generate_series(1, 24) g`,
      `ALTER DATABASE sessions SET statement_timeout = '300ms'`,
      `ALTER DATABASE sessions SET DateStyle = 'SQL, DMY'`,
      `ALTER DATABASE sessions SET IntervalStyle = 'sql_standard'`,
    );
    // An empty target database made beforehand, as a DBA may (sync takes it as it is), whose role settings differ.
    await exec(
      e.dst,
      'postgres',
      'CREATE DATABASE sessions',
      `DO $$ BEGIN
         EXECUTE format('ALTER ROLE %I IN DATABASE sessions SET statement_timeout = %L', current_user, '300ms');
         EXECUTE format('ALTER ROLE %I IN DATABASE sessions SET DateStyle = %L', current_user, 'ISO, MDY');
         EXECUTE format('ALTER ROLE %I IN DATABASE sessions SET IntervalStyle = %L', current_user, 'postgres');
       END $$`,
    );
    const plan = await writePlan(e, { db: 'sessions', stateDir: await tempStateDir(e.src.dir) });
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    expect(sync.out + sync.err).toMatch(/2 of 3 tables in COPY's binary format/);
    const c = await client(e.dst, { database: 'sessions' });
    try {
      expect((await c.query<{ t: string }>(`SELECT current_setting('statement_timeout') AS t`)).rows[0]!.t).toBe('300ms');
    } finally {
      await c.end();
    }
    await expectSameRows(e, 'sessions', [
      ['slow', 'id'],
      ['dated', 'id'],
    ]);
  }, 120_000);

  it('a copy cut short whose snapshot keeper is gone (as after a source restart) empties the copied tables and copies again under a new snapshot; rows are neither lost nor doubled', async () => {
    await seedDatabase(e.src, 'depot', 2000);
    await exec(e.src, 'depot', `CREATE TABLE stock (id bigserial PRIMARY KEY, n int NOT NULL, note text)`, `INSERT INTO stock (n, note) SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 150000) g`);
    const stateDir = await tempStateDir(e.src.dir);
    const plan = await writePlan(e, { db: 'depot', stateDir, extra: 'copy: { jobs: 2, splitTablesLargerThan: 2MB }' });
    const first = await syncKilledWhen(plan, e.env, /copy \d+\/\d+ tables, /);
    expect(first).toMatch(/under its snapshot with 2 workers/);
    const s = await client(e.src, { database: 'depot' });
    try {
      const ended = await s.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'cutover snapshot%' AND datname = 'depot'`);
      expect(ended.rows.length).toBe(1);
      await s.query(`INSERT INTO stock (n, note) SELECT g, 'after' FROM generate_series(1, 500) g`);
    } finally {
      await s.end();
    }
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    expect(sync.err).toMatch(/cut short and cannot resume: copying again under a new snapshot/);
    expect(sync.err).not.toMatch(/resuming the copy/);
    const run = await cli(['run', plan, '--yes'], e.env);
    expect(run.code, run.err).toBe(0);
    await expectSameRows(e, 'depot', [
      ['stock', 'id'],
      ['items', 'id'],
    ]);
  }, 300_000);
});
