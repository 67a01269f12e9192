import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { PostgresSandbox } from '../../adapters/postgres/postgres-sandbox.js';
import { execa } from 'execa';
import { BUILT_CLI, ensureBuilt, ROOT } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, envMissing, sleep, startWavesEnv, type PostgresEnv } from '../helpers/cutover-env.js';
import { missingTenantWrites, overlappingWindows, seedTenants, TenantWorkload, writeWavesPlan } from '../helpers/waves-env.js';
import { windowOf } from '../helpers/journal-window.js';
import { pg17Missing } from '../helpers/pg.js';

/** The 60 tenant databases (about 50 s on 2 cores; CUTOVER_TEST_TENANTS for another count). */
const N = Number(process.env.CUTOVER_TEST_TENANTS ?? 60);
const TENANTS = Array.from({ length: N }, (_, i) => `r${String(i + 1).padStart(2, '0')}`);
const RUNNERS = 3;

interface Row {
  plan_id: string;
  seq: number;
  step: string;
  status: string;
  token: string;
  at: string;
}

describe.skipIf(envMissing('postgres', { router: true }) ?? pg17Missing)('cutover waves: three runners share one wave through a PostgreSQL control database', () => {
  let e: PostgresEnv;
  let ctl: PostgresSandbox;
  let stateDir: string;
  let ctlClient: pg.Client;

  beforeAll(async () => {
    await ensureBuilt();
    e = (await startWavesEnv('postgres', { bouncerDatabases: TENANTS })) as PostgresEnv;
    ctl = await PostgresSandbox.start({ major: 17, password: 'ctl:pw/3%' });
    stateDir = await tempStateDir(e.src.dir);
    await seedTenants(e, TENANTS);
    ctlClient = new pg.Client({ host: '127.0.0.1', port: ctl.port, user: 'postgres', password: ctl.password, database: 'postgres' });
    await ctlClient.connect();
  }, 300_000);
  afterAll(async () => {
    await ctlClient?.end().catch(() => {});
    await ctl?.stop();
    await e?.stop();
  });

  it('one runner SIGKILLed mid-wave: its tenant is taken over from the shared journal, every tenant done exactly once, no write lost, no client error', async () => {
    const plan = await writeWavesPlan(e, {
      name: 'runners',
      tenants: TENANTS,
      stateDir,
      waves: `waves: { concurrency: 2 }\nstate: { url: "postgres://postgres@127.0.0.1:${ctl.port}/postgres", passwordEnv: CTL_PW, dir: "${join(stateDir, 'local')}" }`,
    });
    // writeWavesPlan writes `state: <dir>` first; the map after it must win: drop the first.
    const { readFile, writeFile } = await import('node:fs/promises');
    await writeFile(plan, (await readFile(plan, 'utf8')).replace(/^state: ".*"\n/m, ''));
    const env = { ...e.env, CTL_PW: ctl.password };
    const workload = new TenantWorkload(e, TENANTS, 4).start();
    let results;
    let victimTenant: string | undefined;
    let victimHeld: string[] = [];
    let victimPid: number | undefined;
    try {
      const runners = Array.from({ length: RUNNERS }, () => execa('node', [BUILT_CLI, 'waves', plan, '--yes', '--json'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, extendEnv: false, reject: false }));
      const pids = runners.map((r) => r.pid!);
      // Kill a runner while one of its tenants is inside its window (held or fenced), else once it holds one. Any
      // runner may be the victim: on a loaded machine one runner can start late and claim little.
      const deadline = Date.now() + 240_000;
      let killed = false;
      while (!killed && Date.now() < deadline) {
        await sleep(25);
        const { rows } = await ctlClient
          .query<{ tenant: string; pid: number; in_window: boolean }>(
            `SELECT t.tenant, r.pid,
                    EXISTS (SELECT 1 FROM cutover.journal j WHERE j.plan_id = t.plan_id AND j.step = 'hold' AND j.status = 'begin')
                    AND NOT EXISTS (SELECT 1 FROM cutover.journal j WHERE j.plan_id = t.plan_id AND j.step = 'point-of-no-return' AND j.status = 'ok') AS in_window
               FROM cutover.wave_tenants t JOIN cutover.wave_runners r ON r.runner = t.runner
              WHERE t.state = 'claimed' AND r.pid = ANY($1) AND (SELECT count(*) FROM cutover.wave_tenants WHERE state = 'done') >= 2`,
            [pids],
          )
          .catch(() => ({ rows: [] as Array<{ tenant: string; pid: number; in_window: boolean }> }));
        // Prefer a tenant inside its window; once half the wave is done take any tenant a runner holds, so a
        // schedule where windows fall between two polls still kills a runner mid-tenant.
        const done = rows.length ? (await ctlClient.query<{ n: number }>(`SELECT count(*)::int AS n FROM cutover.wave_tenants WHERE state = 'done'`)).rows[0]!.n : 0;
        const hit = rows.find((r) => r.in_window) ?? (done >= N / 2 || Date.now() > deadline - 120_000 ? rows[0] : undefined);
        if (hit) {
          victimPid = hit.pid;
          victimTenant = hit.tenant;
          /** Every tenant the victim held when it died (its lanes may have two windows open at once). */
          victimHeld = rows.filter((r) => r.pid === hit.pid).map((r) => r.tenant);
          runners[pids.indexOf(hit.pid)]!.kill('SIGKILL');
          killed = true;
        }
      }
      expect(killed, 'the victim runner never held a tenant').toBe(true);
      results = await Promise.all(runners);
      // The victim first, the survivors after it.
      results = [results[pids.indexOf(victimPid!)]!, ...results.filter((_, i) => pids[i] !== victimPid)];
      await sleep(200);
    } finally {
      var writes = await workload.stop();
    }
    const [dead, ...alive] = results;
    expect(dead!.signal).toBe('SIGKILL');
    for (const r of alive) expect(r.exitCode, r.stderr).toBe(0);
    const outs = alive.map((r) => JSON.parse(r.stdout) as { runner: string; counts: { done: number }; tenants: Array<{ tenant: string; action: string }> });
    for (const o of outs) expect(o.counts.done).toBe(N);

    // Exactly once: one point of no return and one report per tenant; the victim's tenant resumed by a survivor.
    const journal = (await ctlClient.query<Row>('SELECT plan_id, seq, step, status, token, at FROM cutover.journal ORDER BY plan_id, seq')).rows;
    const tenantsRows = (await ctlClient.query<{ tenant: string; plan_id: string; state: string; runner: string }>('SELECT tenant, plan_id, state, runner FROM cutover.wave_tenants')).rows;
    expect(tenantsRows.map((t) => t.state)).toEqual(TENANTS.map(() => 'done'));
    for (const t of tenantsRows) {
      const recs = journal.filter((r) => r.plan_id === t.plan_id);
      expect(
        recs.filter((r) => r.step === 'point-of-no-return' && r.status === 'ok'),
        t.tenant,
      ).toHaveLength(1);
      expect(
        recs.filter((r) => r.step === 'report' && r.status === 'ok'),
        t.tenant,
      ).toHaveLength(1);
      // No two holders interleave: tokens never go down along the journal, so no fence of one holder overlaps another's.
      const tokens = recs.map((r) => Number(r.token));
      expect(tokens, t.tenant).toEqual([...tokens].sort((a, b) => a - b));
      const fences = recs.filter((r) => r.step === 'fence' && r.status === 'begin');
      if (!victimHeld.includes(t.tenant)) expect(fences, t.tenant).toHaveLength(1);
    }
    // Windows took turns over every runner (a blocking advisory lock per source server): no two tenants were held at
    // once, but for those of the victim, whose turn ended with its control session while they stayed fenced.
    const windows = new Map<string, { from: number; to: number }>();
    for (const t of tenantsRows.filter((t) => !victimHeld.includes(t.tenant))) {
      const window = windowOf(journal.filter((r) => r.plan_id === t.plan_id));
      if (window) windows.set(t.tenant, window);
    }
    expect(windows.size).toBe(N - victimHeld.length);
    expect(overlappingWindows(windows)).toEqual([]);
    // The survivors split the work, and one of them says it resumed the victim's tenant.
    const resumed = outs.flatMap((o) => o.tenants.filter((t) => t.action === 'resumed').map((t) => t.tenant));
    expect(resumed).toContain(victimTenant);
    for (const t of resumed) expect(victimHeld).toContain(t);
    const moved = outs.map((o) => o.tenants.filter((t) => t.action === 'moved' || t.action === 'resumed').length);
    expect(
      moved.reduce((a, b) => a + b, 0),
      `runners moved ${moved.join(' / ')}`,
    ).toBe(tenantsRows.filter((t) => outs.some((o) => o.runner === t.runner)).length);
    // The work was shared: tenants finished by at least two runners.
    expect(new Set(tenantsRows.map((t) => t.runner)).size).toBeGreaterThanOrEqual(2);

    expect(writes.filter((w) => !w.ok)).toEqual([]);
    expect(await missingTenantWrites(e, 'dst', writes, TENANTS)).toEqual([]);
    for (const t of [...TENANTS.slice(0, 2), victimTenant ?? TENANTS[2]!]) {
      expect(await canWrite(e.dst, t)).toBe(true);
      expect(await canWrite(e.src, t)).toBe(false);
    }

    // Fence records are in the control database, not in a runner's local dir: the source of every tenant stays
    // fenced after its switch, one record each, and the taker found the victim's (one server: the source).
    const fences = (await ctlClient.query<{ name: string; server_id: string }>(`SELECT record->>'name' AS name, record->>'serverId' AS server_id FROM cutover.fences`)).rows;
    expect(fences.map((f) => f.name).sort()).toEqual(TENANTS);
    expect(new Set(fences.map((f) => f.server_id)).size).toBe(1);
    const { readdir } = await import('node:fs/promises');
    const local = await readdir(join(stateDir, 'local'), { recursive: true }).catch(() => [] as string[]);
    expect(local.filter((f) => /fence-[0-9a-f]+\.json$/.test(f))).toEqual([]);
    // --rollback of a tenant past its point of no return is refused and leaves its row done.
    const rb = await cli(['waves', plan, '--rollback', TENANTS[0]!], env);
    expect(rb.code, rb.err).toBe(5);
    expect(rb.err).toMatch(/passed its point of no return/);
    expect((await ctlClient.query(`SELECT state FROM cutover.wave_tenants WHERE tenant = $1`, [TENANTS[0]])).rows).toEqual([{ state: 'done' }]);

    // Status from the control database: every tenant done, the dead runner not alive, windows measured.
    const st = await cli(['waves', plan, '--status', '--json'], env);
    expect(st.code, st.err).toBe(0);
    const status = st.json() as { counts: { done: number }; runners: Array<{ pid: number; alive: boolean }>; windows: { count: number; p95Ms: number } };
    expect(status.counts.done).toBe(N);
    expect(status.runners.find((r) => r.pid === victimPid)?.alive).toBe(false);
    expect(status.windows.count).toBeGreaterThanOrEqual(N - 1);
    console.log(
      `runners: ${N} tenants, ${RUNNERS} runners (one killed holding ${victimHeld.join(', ')}; resumed ${resumed.join(', ')}), moved ${moved.join(' / ')}; windows p50/p95/max ${JSON.stringify(status.windows)}; ${writes.length} writes`,
    );
  }, 600_000);
});
