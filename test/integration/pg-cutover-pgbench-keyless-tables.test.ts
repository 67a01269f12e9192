import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findClientBinary } from '../../adapters/postgres/postgres-binaries.js';
import { missing } from '../helpers/availability.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { sleep, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, exec, pg15Missing, pg17Missing } from '../helpers/pg.js';
import { planWindow } from '../helpers/journal-window.js';
import { pgbenchRelay } from '../helpers/pgbench.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const pgbenchMissing = await missing('pgbench', () => findClientBinary('pgbench'));
const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing ?? pgbenchMissing;

/** Every pgbench_history row, as a sortable line (the table has no key: rows are compared as a multiset). */
async function historyRows(e: PostgresEnv, side: 'src' | 'dst'): Promise<string[]> {
  const c = await client(e[side], { database: 'bench' });
  try {
    const { rows } = await c.query<{ r: string }>(`SELECT concat_ws('|', tid, bid, aid, delta, mtime) AS r FROM pgbench_history`);
    return rows.map((x) => x.r).sort();
  } finally {
    await c.end();
  }
}

describe.skipIf(unavailable).each(['full', 'dump'] as const)('a pgbench database moves with tables.keyless: %s, pgbench -c 4 running through PgBouncer', (choice) => {
  let e: PostgresEnv;
  let stateDir: string;
  let pgbench: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { bouncerDatabases: ['bench'] });
    stateDir = await tempStateDir(e.src.dir);
    pgbench = await findClientBinary('pgbench');
    await exec(e.src, 'postgres', 'CREATE DATABASE bench');
    await execa(pgbench, ['-i', '-s', '2', '-q', 'bench'], { env: { PGHOST: '127.0.0.1', PGPORT: String(e.src.port), PGUSER: 'postgres', PGPASSWORD: e.password } });
  });
  afterAll(async () => e?.stop());

  it('check proposes the cheaper choice with sizes, then sync + run move it with no schema change: 0 failed transactions, every history row on the target', async () => {
    const blocked = await cli(['check', await writePlan(e, { db: 'bench', stateDir: `${stateDir}/unset` }), '--json'], e.env);
    expect(blocked.code, blocked.err).toBe(3);
    const noKey = blocked.json().findings.find((f: { check: string; object?: string }) => f.check === 'primary keys' && f.object === 'public.pgbench_history');
    expect(noKey.severity).toBe('blocker');
    // Insert-only (TPC-B never updates or deletes history): full costs nothing to apply.
    expect(noKey.message).toMatch(/proposed: full \(full is cheaper: the table only takes INSERTs .* dump would copy [\d.]+ [KM]?B/);
    expect(noKey.fix).toMatch(/tables: \{ keyless: \{ "public.pgbench_history": full \} \}/);

    const plan = await writePlan(e, { db: 'bench', stateDir, router: true, extra: `tables: { keyless: { public.pgbench_history: ${choice} } }` });
    const checked = await cli(['check', plan, '--json'], e.env);
    expect(checked.code, checked.err).toBe(0);
    expect(checked.json().findings.find((f: { object?: string }) => f.object === 'public.pgbench_history').message).toMatch(choice === 'full' ? /REPLICA IDENTITY FULL/ : /copied inside the write-blocked window/);

    const bench = pgbenchRelay(pgbench, { database: 'bench', port: e.bouncer!.port, password: e.password, clients: 4 });
    await sleep(1000);
    const sync = await cli(['sync', plan], e.env);
    const run = await cli(['run', plan, '--yes', '--json'], e.env);
    const result = await bench.stop();
    expect(sync.code, sync.err).toBe(0);
    expect(run.code, run.err).toBe(0);
    expect(result.spanned(await planWindow(plan))).toBe(true);
    expect(result.failures).toEqual([]);
    const processed = result.processed;
    console.log(`pgbench through the ${choice} cutover: ${processed} transactions, write-blocked window ${run.json().writeBlockedMs} ms, catch-up ${run.json().catchUp.waitedMs} ms`);

    // One history row per transaction (the history starts empty), all on the target, every source row among them.
    const [src, dst] = [await historyRows(e, 'src'), await historyRows(e, 'dst')];
    expect(dst.length).toBe(processed);
    expect(src.length).toBeGreaterThan(0);
    const onTarget = new Map<string, number>();
    for (const r of dst) onTarget.set(r, (onTarget.get(r) ?? 0) + 1);
    expect(src.filter((r) => (onTarget.set(r, (onTarget.get(r) ?? 0) - 1).get(r) ?? 0) < 0)).toEqual([]);
    const t = await client(e.dst, { database: 'bench' });
    const sums = await t.query<{ a: string; h: string }>(`SELECT (SELECT sum(abalance) FROM pgbench_accounts)::text AS a, (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::text AS h`);
    await t.end();
    expect(sums.rows[0]!.a).toBe(sums.rows[0]!.h);

    // cleanup put the source's replica identity back as it found it.
    const s = await client(e.src, { database: 'bench' });
    const ident = await s.query<{ i: string }>(`SELECT relreplident::text AS i FROM pg_class WHERE oid = 'pgbench_history'::regclass`);
    await s.end();
    expect(ident.rows[0]!.i).toBe('d');
  });
});
