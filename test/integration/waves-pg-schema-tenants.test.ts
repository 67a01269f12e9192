import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, sleep, startCutoverEnv, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';
import {
  bouncerRoute,
  missingTenantWrites,
  seedSchemaTenants,
  tenantTable,
  tenantWindows,
  stepsDuring,
  TenantWorkload,
  overlappingWindows,
  windowsThatStoppedOtherTenants,
  worstOutsideWindow,
  writeWavesPlan,
} from '../helpers/waves-env.js';

const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing;
const N = Number(process.env.CUTOVER_TEST_TENANTS ?? 20);
/** A tenant takes a few seconds on two cores: a wave of N needs more than the default test timeout when N is large. */
const WAVE_TIMEOUT_MS = Math.max(120_000, N * 8_000);
const DB = 'saas app';
const layout = { database: DB };
const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(2, '0')}`);
const C1 = names('s1_', N);
const C4 = names('s4_', N);
const TF = ['tf_a', 'tf_bad', 'tf_c'];
/** Names a pg_dump -n pattern would misread unless quoted: wildcards, a dot, quotes, unicode, a reserved word. */
const ODD = ['Odd "Sch.ema*"', 'tenant?ü', 'select'];

describe.skipIf(unavailable)(`per-tenant waves: ${N} schemas of one database through PgBouncer aliases under writers to random tenants`, () => {
  let e: PostgresEnv;
  let stateRoot: string;
  const all = [...C1, ...C4, ...TF];
  const oddTable = (t: string) => `"${t.replace(/"/g, '""')}".items`;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { bouncerAliases: Object.fromEntries(all.map((t) => [t, DB])) });
    stateRoot = await tempStateDir(e.src.dir);
    // 'Odd "SchXema*"' is what a careless -n pattern for 'Odd "Sch.ema*"' would also match: it must stay behind.
    await seedSchemaTenants(e, DB, [...all, ...ODD, 'Odd "SchXema*"']);
  });
  afterAll(async () => e?.stop());

  it.each([
    { concurrency: 1, tenants: C1 },
    { concurrency: 4, tenants: C4 },
  ])(
    'concurrency $concurrency: every acknowledged write on the target, no client error, other schemas never wait on a fence',
    async ({ concurrency, tenants }) => {
      const plan = await writeWavesPlan(e, { name: `s${concurrency}`, tenants, stateDir: join(stateRoot, `s${concurrency}`), database: DB });
      // Writers well above the concurrent windows: a writer that picks a held schema is parked until that window
      // ends, and with 4 + concurrency writers all of them were once parked in the other three windows at the same
      // time (a loaded CI run: no other schema's write landed during one window, though none waited on it).
      const workload = new TenantWorkload(e, tenants, 4 + 3 * concurrency, layout).start();
      let r;
      try {
        await sleep(200);
        r = await cli(['waves', plan, '--yes', '--json', '--concurrency', String(concurrency)], e.env);
        await sleep(200);
      } finally {
        var writes = await workload.stop();
      }
      expect(r.code, r.err).toBe(0);
      const result = r.json();
      expect(result.counts.done).toBe(tenants.length);

      const failed = writes.filter((w) => !w.ok);
      if (failed.length) {
        const bad = new Set(failed.map((w) => w.tenant));
        const lines = (await e.bouncer!.log()).split('\n').filter((l) => !/login attempt/.test(l) && (/ERROR|FATAL|WARNING|failed|closing because/i.test(l) || [...bad].some((t) => l.includes(`${t}/`))));
        console.log(`PgBouncer log for ${[...bad].join(', ')}:\n${lines.slice(-60).join('\n')}`);
      }
      expect(writes.filter((w) => !w.ok).slice(0, 3)).toEqual([]);
      expect(await missingTenantWrites(e, 'dst', writes, tenants, layout)).toEqual([]);
      // Moved schemas stay fenced on the source; the schemas not in this wave were never touched.
      for (const t of tenants.slice(0, 3)) expect(await canWrite(e.src, DB, tenantTable(layout, t))).toBe(false);
      expect(await canWrite(e.src, DB, tenantTable(layout, TF[0]!))).toBe(true);
      expect(await bouncerRoute(e, tenants[0]!)).toBe(`${e.dst.port}/${DB}`);
      // Only the plan's own objects went: the tool schema's tables of other plans, publications and slots.
      const src = await client(e.src, { database: DB });
      try {
        expect((await src.query(`SELECT count(*)::int AS n FROM pg_replication_slots`)).rows[0].n).toBe(0);
        expect((await src.query(`SELECT count(*)::int AS n FROM pg_publication`)).rows[0].n).toBe(0);
      } finally {
        await src.end();
      }

      const windows = await tenantWindows(plan, tenants);
      const smallest = Math.min(...[...windows.values()].map((w) => w.to - w.from));
      const worst = worstOutsideWindow(writes, windows);
      console.log(
        `schema waves c=${concurrency}: ${tenants.length} tenants in ${result.wallMs} ms; windows p50 ${result.windows.p50Ms} p95 ${result.windows.p95Ms} max ${result.windows.maxMs} ms (smallest ${smallest} ms); ${writes.length} writes, worst outside own window ${worst.ms} ms (${worst.tenant})`,
      );
      if (worst.ms >= smallest) {
        const w = writes.filter((x) => x.tenant === worst.tenant).sort((a, b) => b.end - b.start - (a.end - a.start))[0]!;
        console.log(`slowest write outside its window: ${w.tenant} ${w.end - w.start} ms; steps running meanwhile:\n${(await stepsDuring(plan, tenants, w.start, w.end)).join('\n')}`);
      }
      // Other schemas kept being written while each schema was fenced (its LOCK TABLE and trigger stay in it).
      expect(windowsThatStoppedOtherTenants(writes, windows)).toEqual([]);
      // The wave's windows took turns: none shared the machine with another (waves.ts, windowTurn).
      expect(overlappingWindows(windows)).toEqual([]);
    },
    WAVE_TIMEOUT_MS,
  );

  it('odd schema names move exactly (router none): each schema alone, its look-alikes untouched', async () => {
    const stateDir = join(stateRoot, 'odd');
    const plan = join(stateDir, 'odd.plan.yaml');
    await mkdir(stateDir, { recursive: true });
    await writeFile(
      plan,
      [
        'engine: postgres',
        `source: { url: "postgres://postgres@127.0.0.1:${e.src.port}/postgres", passwordEnv: SRC_PW }`,
        `target: { url: "postgres://postgres@127.0.0.1:${e.dst.port}/postgres", passwordEnv: DST_PW }`,
        `scope: { tenants: { schemas: ${JSON.stringify(ODD)}, database: "${DB}" } }`,
        `state: "${stateDir}"`,
      ].join('\n') + '\n',
    );
    const r = await cli(['waves', plan, '--yes', '--json'], e.env);
    expect(r.code, r.err).toBe(0);
    expect(r.json().counts.done).toBe(ODD.length);
    const dst = await client(e.dst, { database: DB });
    try {
      for (const t of ODD) expect((await dst.query(`SELECT count(*)::int AS n FROM ${oddTable(t)}`)).rows[0].n).toBe(200);
      const moved = (await dst.query(`SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])`, [[...ODD, 'Odd "SchXema*"']])).rows.map((x) => x.nspname).sort();
      expect(moved).toEqual([...ODD].sort());
    } finally {
      await dst.end();
    }
    for (const t of ODD) expect(await canWrite(e.src, DB, `"${t.replace(/"/g, '""')}".cutover_workload`)).toBe(false);
  });

  it("a transform that fails for one schema rolls back only that schema (unqualified names are the tenant's)", async () => {
    const stateDir = join(stateRoot, 'tf');
    const sql = join(stateRoot, 'reshape.sql');
    await writeFile(sql, `ALTER TABLE items ADD COLUMN label text;\nUPDATE items SET label = upper(name);\nSELECT 1 / (CASE WHEN current_schema() = 'tf_bad' THEN 0 ELSE 1 END);\n`);
    const plan = await writeWavesPlan(e, { name: 'tf', tenants: TF, stateDir, database: DB, waves: `waves: { transform: { sql: "${sql}" } }` });
    const workload = new TenantWorkload(e, TF, 2, layout).start();
    let r;
    try {
      await sleep(200);
      r = await cli(['waves', plan, '--yes', '--json'], e.env);
      await sleep(200);
    } finally {
      var writes = await workload.stop();
    }
    expect(r.code, r.err).toBe(1);
    const byTenant = Object.fromEntries(r.json().result.tenants.map((t: { tenant: string; state: string }) => [t.tenant, t.state]));
    expect(byTenant).toEqual({ tf_a: 'done', tf_bad: 'rolled-back', tf_c: 'done' });
    expect(writes.filter((w) => !w.ok)).toEqual([]);
    expect(await missingTenantWrites(e, 'dst', writes, ['tf_a', 'tf_c'], layout)).toEqual([]);
    expect(await missingTenantWrites(e, 'src', writes, ['tf_bad'], layout)).toEqual([]);
    expect(await canWrite(e.src, DB, tenantTable(layout, 'tf_bad'))).toBe(true);
    expect(await bouncerRoute(e, 'tf_bad')).toBe(`${e.src.port}/${DB}`);
    const labelColumns = async (schema: string) => {
      const c = await client(e.dst, { database: DB });
      try {
        return (await c.query(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'items' AND column_name = 'label'`, [schema])).rows[0].n;
      } finally {
        await c.end();
      }
    };
    expect(await labelColumns('tf_a')).toBe(1);
    expect(await labelColumns('tf_bad')).toBe(0);
    // The moved schema is open on the target: the hold trigger is gone.
    expect(await canWrite(e.dst, DB, tenantTable(layout, 'tf_a'))).toBe(true);
  });
});
