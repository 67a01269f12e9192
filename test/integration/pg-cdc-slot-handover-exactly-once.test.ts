import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClientBinary } from '../../adapters/postgres/postgres-binaries.js';
import { compareLsn } from '../../adapters/postgres/postgres-leak-decoding.js';
import { missing } from '../helpers/availability.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { keysOn, seedDatabase, sleep, startCutoverEnv, workloadThroughBouncer, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, exec, pg15Missing, pg17Missing, type PostgresSandbox } from '../helpers/pg.js';
import { planWindow } from '../helpers/journal-window.js';
import { pgbenchRelay } from '../helpers/pgbench.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const pgbenchMissing = await missing('pgbench', () => findClientBinary('pgbench'));
const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing ?? pgbenchMissing;
const SLOT = 'orders_cdc';
// only-local: after the switch the old source follows the new primary (plan reverse, on by default), and what that
// reverse path applies there carries its replication origin; a consumer past the stop position would see those
// changes again (README: CDC consumers). Skipping them keeps the check on what matters here: no local write on the
// source after the stop (the fence), every write exactly once across the two slots.
const OPTIONS = `'include-xids', '1', 'skip-empty-xacts', '1', 'only-local', '1'`;

interface Txn {
  xid: string;
  commitLsn: string;
  /** `client:seq` of each workload row the transaction inserted. */
  writes: string[];
  /** pgbench transactions: one pgbench_history INSERT each. */
  bench: number;
  tables: Set<string>;
}

/**
 * A CDC consumer's read of one slot with test_decoding: committed transactions with their commit position and the
 * workload rows they inserted (`upto`: only transactions committed at or before it, as a consumer told to stop there).
 */
async function consume(sb: PostgresSandbox, upto: string | null): Promise<Txn[]> {
  const c = await client(sb, { database: 'shop' });
  try {
    const { rows } = await c.query<{ lsn: string; xid: string; data: string }>(`SELECT lsn::text, xid::text, data FROM pg_logical_slot_get_changes($1, $2::pg_lsn, NULL, ${OPTIONS})`, [SLOT, upto]);
    const out: Txn[] = [];
    let open: Txn | undefined;
    for (const r of rows) {
      if (r.data.startsWith('BEGIN')) open = { xid: r.xid, commitLsn: '', writes: [], bench: 0, tables: new Set() };
      else if (r.data.startsWith('COMMIT')) {
        open!.commitLsn = r.lsn;
        out.push(open!);
        open = undefined;
      } else if (r.data.startsWith('table ')) {
        open!.tables.add(r.data.slice('table '.length, r.data.indexOf(':')));
        const m = /^table public\.cutover_workload: INSERT: .*client\[integer\]:(-?\d+) seq\[integer\]:(\d+)/.exec(r.data);
        if (m) open!.writes.push(`${m[1]}:${m[2]}`);
        if (r.data.startsWith('table public.pgbench_history: INSERT:')) open!.bench++;
      }
    }
    return out;
  } finally {
    await c.end();
  }
}

describe.skipIf(unavailable)('CDC slot handover: a test_decoding consumer reads the source up to the switch and the target after it', () => {
  let e: PostgresEnv;
  let stateDir: string;
  let pgbench: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { bouncerDatabases: ['shop'] });
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'shop', 20_000);
    pgbench = await findClientBinary('pgbench');
    await execa(pgbench, ['-i', '-s', '1', '-q', 'shop'], { env: { PGHOST: '127.0.0.1', PGPORT: String(e.src.port), PGUSER: 'postgres', PGPASSWORD: e.password } });
    await exec(e.src, 'shop', `SELECT pg_create_logical_replication_slot('${SLOT}', 'test_decoding')`);
  });
  afterAll(async () => e?.stop());

  it('check names a slot missing on the source and a name taken on the target as blockers with their fix', async () => {
    const bad = await writePlan(e, { db: 'shop', stateDir: `${stateDir}/bad`, extra: `cdc: { slots: [${SLOT}, no_such_slot] }` });
    await exec(e.dst, 'postgres', `SELECT pg_create_logical_replication_slot('${SLOT}', 'test_decoding')`);
    try {
      const r = await cli(['check', bad, '--json'], e.env);
      expect(r.code, r.err).toBe(3);
      const cdc = r.json().findings.filter((f: { check: string }) => f.check === 'cdc slots');
      expect(cdc.map((f: { object: string; severity: string }) => `${f.severity} ${f.object}`).sort()).toEqual(['blocker no_such_slot', `blocker ${SLOT}`]);
      expect(cdc.find((f: { object: string }) => f.object === SLOT).fix).toMatch(/pg_drop_replication_slot\('orders_cdc'\)/);
    } finally {
      await exec(e.dst, 'postgres', `SELECT pg_drop_replication_slot('${SLOT}')`);
    }
    const plugin = await writePlan(e, { db: 'shop', stateDir: `${stateDir}/plugin`, extra: `cdc: { slots: [${SLOT}], plugin: no_such_plugin }` });
    const p = await cli(['check', plugin, '--json'], e.env);
    expect(p.code).toBe(3);
    expect(p.json().findings.find((f: { check: string }) => f.check === 'cdc slots').message).toMatch(/cannot create a logical slot with plugin no_such_plugin/);
  });

  it('4 writers through PgBouncer during sync and run: every committed workload transaction is decoded exactly once, from the source up to the stop position or from the target after it', async () => {
    const plan = await writePlan(e, { db: 'shop', stateDir, router: true, extra: `cdc: { slots: [${SLOT}] }\ntables: { keyless: { public.pgbench_history: full } }` });
    const checked = await cli(['check', plan, '--json'], e.env);
    expect(checked.code, checked.err).toBe(0);
    const workload = workloadThroughBouncer(e, 'shop');
    // A real client beside our writers: pgbench's TPC-B transactions, each one history row.
    const bench = pgbenchRelay(pgbench, { database: 'shop', port: e.bouncer!.port, password: e.password, clients: 2 });
    let sync, run;
    try {
      await sleep(300);
      sync = await cli(['sync', plan, '--json'], e.env);
      await sleep(300);
      run = await cli(['run', plan, '--yes', '--json'], e.env);
      await sleep(1000);
    } finally {
      var w = await workload.stop();
      var benchResult = await bench.stop();
    }
    expect(sync.code, sync.err).toBe(0);
    expect(run.code, run.err).toBe(0);
    const report = run.json();
    expect(report.cdc).toHaveLength(1);
    const { sourceStop, targetStart, plugin, toolTable } = report.cdc[0];
    expect(plugin).toBe('test_decoding');
    expect(sourceStop).toBe(report.catchUp.fencePosition);
    // The second ANALYZE, after the lag gate: the workload table grew a lot since sync's.
    expect(report.reanalyzed).toContain('public.cutover_workload');

    const status = await cli(['status', plan, '--json'], e.env);
    expect(status.json().cdc).toMatchObject([{ slot: SLOT, sourceStop, targetStart }]);
    expect((await cli(['status', plan], e.env)).err).toContain(`read the source through ${sourceStop}`);

    // The consumer: the source up to the stop position, then whatever the source still has (only the tool's), then the target.
    const fromSource = await consume(e.src, sourceStop);
    const afterStop = await consume(e.src, null);
    const fromTarget = await consume(e.dst, null);
    expect(afterStop.flatMap((t) => t.writes)).toEqual([]);
    for (const t of afterStop)
      expect(
        [...t.tables].every((n) => toolTable.includes(n.split('.')[1]!)),
        [...t.tables].join(),
      ).toBe(true);
    for (const t of fromSource) expect(compareLsn(t.commitLsn, sourceStop)).toBeLessThanOrEqual(0);
    for (const t of fromTarget) expect(compareLsn(t.commitLsn, targetStart)).toBeGreaterThan(0);
    // The tool's own transactions in the target's stream: the final sentinel before the subscription stops, at most.
    const toolOnTarget = fromTarget.filter((t) => [...t.tables].every((n) => n.startsWith('_cutover.')));
    expect(toolOnTarget.length).toBeLessThanOrEqual(1);

    const seen = [...fromSource, ...fromTarget].flatMap((t) => t.writes);
    const counts = new Map<string, number>();
    for (const k of seen) counts.set(k, (counts.get(k) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1).map(([k]) => k);
    const onTarget = await keysOn(e.dst, 'shop');
    const lost = [...onTarget].filter((k) => !counts.has(k));
    const ghost = [...counts.keys()].filter((k) => !onTarget.has(k));
    console.log(
      `CDC handover: ${fromSource.flatMap((t) => t.writes).length} workload writes decoded on the source up to ${sourceStop}, ${fromTarget.flatMap((t) => t.writes).length} on the target from ${targetStart}; ${toolOnTarget.length} tool transaction(s) on the target, ${afterStop.length} after the stop on the source; window ${report.writeBlockedMs} ms, cdc-handover step ${report.steps.find((s: { step: string }) => s.step === 'cdc-handover')?.endMs - report.steps.find((s: { step: string }) => s.step === 'cdc-handover')?.startMs} ms`,
    );
    expect(twice).toEqual([]);
    expect(lost).toEqual([]);
    expect(ghost).toEqual([]);
    expect(w.acknowledged.filter((k) => !counts.has(k))).toEqual([]);
    expect(fromSource.flatMap((t) => t.writes).length).toBeGreaterThan(0);
    expect(fromTarget.flatMap((t) => t.writes).length).toBeGreaterThan(0);

    // pgbench: every history row on the target decoded once (the history was empty when the consumer's slot was made).
    expect(benchResult.spanned(await planWindow(plan))).toBe(true);
    expect(benchResult.failures).toEqual([]);
    const t = await client(e.dst, { database: 'shop' });
    const history = Number((await t.query<{ n: string }>(`SELECT count(*)::text AS n FROM pgbench_history`)).rows[0]!.n);
    await t.end();
    const benchSource = fromSource.reduce((n, x) => n + x.bench, 0);
    const benchTarget = fromTarget.reduce((n, x) => n + x.bench, 0);
    console.log(`pgbench: ${history} history rows on the target; decoded ${benchSource} on the source, ${benchTarget} on the target`);
    expect(benchSource + benchTarget).toBe(history);
    expect(benchSource).toBeGreaterThan(0);
    expect(benchTarget).toBeGreaterThan(0);

    // The source slot stays for its consumer; the target slot is the consumer's from now on. Besides it the target
    // has only the reverse path's slot (plan reverse, on by default), which `cutover finalize` ends.
    const dst = await client(e.dst, { database: 'shop' });
    const slots = await dst.query<{ slot_name: string }>(`SELECT slot_name FROM pg_replication_slots ORDER BY slot_name`);
    await dst.end();
    expect(slots.rows.map((r) => r.slot_name).filter((n) => !n.endsWith('_revert'))).toEqual([SLOT]);
    expect(slots.rows.length).toBe(2);
  });
});
