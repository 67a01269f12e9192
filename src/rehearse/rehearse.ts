import { DEFAULT_ENGINE, engineCapabilities } from '../../adapters/registry.js';
import type { CutoverEvent, RunResult } from '../engine/run.js';
import { runPlan, syncPlan } from '../engine/run.js';
import { loadPlanFile, openSessionFor, type PlanSession } from '../engine/session.js';
import type { SyncSummary } from '../engine/cutover-adapter.js';
import { UsageError } from '../errors.js';
import type { WorkloadOp, WorkloadResult } from '../sandbox/workload.js';
import { parseDbUrl } from '../util/db-url.js';
import { sleep } from '../util/sleep.js';
import { formatBytes, formatDuration } from '../util/units.js';
import { errorSamples, latencySeries, longestGap, longestTenantGap } from './measure.js';
import { rehearsalKitFor } from './kits.js';
import type { KitEndpoint, RehearsalKit, TenantSandboxSet } from './rehearsal-kit.js';
import { planDuration } from './sandbox-plan.js';
import { replayJournal } from '../engine/journal.js';
import { lastOkData } from '../engine/phase.js';
import { runWaves, type WaveEvent, type WavesResult } from '../engine/waves.js';
import { tenantPlan, wavesOf } from '../engine/waves-plan.js';
import { planId, type Plan, type PlanSecrets } from '../plan/index.js';
import { openRevertSession, revertPlan } from '../engine/revert.js';
import type { RehearseEvent, RehearseOptions, RehearsePhase, RehearseReport, ReportMark, ReportStep, RevertReport, TenantWindow } from './types.js';

export type * from './types.js';

/** The table the synthetic clients write to: created on the source, moved with everything else. */
export const REHEARSAL_TABLE = 'cutover_rehearsal_workload';
const DEFAULT_ROWS = 1_000_000;
const DEFAULT_CLIENTS = 4;
/** Waves' own default per-tenant budget, so a rehearsed wave measures what `cutover waves` would run with. */
const DEFAULT_TENANT_BUDGET_MS = 2000;
const LATENCY_BUCKETS = 400;
const MARKED_STEPS: Record<string, { status: CutoverEvent['status']; mark: ReportMark['name'] }> = {
  hold: { status: 'begin', mark: 'hold' },
  fence: { status: 'begin', mark: 'fence' },
  'point-of-no-return': { status: 'ok', mark: 'point-of-no-return' },
  lift: { status: 'ok', mark: 'lift' },
};

/**
 * A full cutover under a live workload, measured: on throw-away PostgreSQL 15 → 18 servers behind PgBouncer
 * (or MariaDB behind HAProxy), or (with `plan`) on the servers a plan names. The cutover itself is
 * `syncPlan` + `runPlan`, the code `cutover sync` and `cutover run` use. Every acknowledged write is then
 * looked up on the target.
 */
export async function rehearse(opts: RehearseOptions = {}): Promise<RehearseReport> {
  // --plan rehearses PostgreSQL plans only (onPlan says so); a sandbox rehearsal runs on the engine asked for.
  const kit = await rehearsalKitFor(opts.plan ? DEFAULT_ENGINE : (opts.engine ?? DEFAULT_ENGINE));
  if (opts.revert) refuseRevert(opts, kit);
  if (opts.privileges === 'managed' && opts.plan) {
    throw new UsageError('--privileges managed builds the sandboxes with the managed test profile', "drop --privileges: with --plan the plan's `privileges` key decides");
  }
  if (opts.tenants !== undefined) {
    const start = kit.startTenantSandboxes;
    if (opts.plan || !start) throw new UsageError('rehearse --tenants rehearses a wave on PostgreSQL sandboxes', 'drop --plan and --engine (waves move PostgreSQL tenant databases)');
    if (!Number.isInteger(opts.tenants) || opts.tenants < 1) throw new UsageError(`--tenants must be a positive integer (got ${opts.tenants})`);
    return new Rehearsal(opts, kit).onTenantSandboxes(opts.tenants, start);
  }
  if (opts.plan) return new Rehearsal(opts, kit).onPlan(opts.plan);
  return new Rehearsal(opts, kit).onSandboxes();
}

/** Why `rehearse --revert` cannot run as asked, before any server starts. */
function refuseRevert(opts: RehearseOptions, kit: RehearsalKit): void {
  const { product, reverseReplication } = engineCapabilities(kit.engine);
  if (!reverseReplication) throw new UsageError(`rehearse --revert needs reverse replication (plan reverse), which cutover does not support for ${product}`, 'rehearse without --revert, or with --engine postgres');
  if (opts.plan || opts.tenants !== undefined)
    throw new UsageError('rehearse --revert rehearses one cutover and its revert on sandboxes', 'drop --plan and --tenants (`cutover revert` of a plan is rehearsed on a staging copy by hand)');
}

interface WorkloadTarget {
  endpoint: KitEndpoint & { database: string };
  router: string;
}

class Rehearsal {
  private readonly t0 = Date.now();
  private readonly steps: ReportStep[] = [];
  private readonly marks: ReportMark[] = [];
  private readonly rows: number;
  private readonly writers: number;
  private readonly readers: number;
  private readonly settleMs: number;

  constructor(
    private readonly opts: RehearseOptions,
    private readonly kit: RehearsalKit,
  ) {
    this.rows = opts.rows ?? DEFAULT_ROWS;
    this.writers = opts.clients ?? DEFAULT_CLIENTS;
    this.readers = Math.max(1, Math.floor(this.writers / 2));
    this.settleMs = opts.settleMs ?? 1000;
  }

  private now(): number {
    return Date.now() - this.t0;
  }

  private emit(phase: RehearsePhase, status: RehearseEvent['status'], message: string): void {
    this.opts.onEvent?.({ phase, status, message });
  }

  /** One stage of the task list; with a `bar` label it is also one bar of the step timeline. */
  private async phase<T>(phase: RehearsePhase, title: string, fn: () => Promise<T>, bar?: string): Promise<T> {
    const startMs = this.now();
    this.emit(phase, 'begin', title);
    try {
      const r = await fn();
      this.emit(phase, 'ok', title);
      return r;
    } catch (e) {
      this.emit(phase, 'fail', e instanceof Error ? e.message : String(e));
      throw e;
    } finally {
      if (bar) this.steps.push(step(bar, phase, startMs, this.now()));
    }
  }

  async onSandboxes(): Promise<RehearseReport> {
    const product = this.kit.product;
    const sb = await this.phase(
      'servers',
      `start ${product} source and target, and the router${this.opts.privileges === 'managed' ? ' (managed profile: the cutover runs as an admin without superuser)' : ''}`,
      () => this.kit.startSandboxes((label, dir) => this.emit('servers', 'info', `sandbox ${label} in ${dir}`), this.opts.privileges ?? 'superuser'),
      'start servers',
    );
    let report: RehearseReport;
    try {
      await this.phase('data', `load ${this.rows} sample rows`, () => sb.loadSample(this.rows, REHEARSAL_TABLE), 'load sample data');
      const sandbox = await sb.plan('5s');
      const { plan, planId, secrets } = await loadPlanFile(sandbox.plan, sandbox.env);
      // Without --revert a reverse path would only keep a slot (and its WAL) on the target.
      const session = await openSessionFor({ ...plan, reverse: this.opts.revert === true }, planId, secrets);
      report = await this.cutoverUnderWorkload(session, 'sandbox', sb.via);
      if (this.opts.keep) report.kept = await sb.kept();
    } catch (e) {
      await sb.stop();
      throw e;
    }
    if (this.opts.keep) this.emit('teardown', 'skip', 'kept running (--keep)');
    else await this.phase('teardown', 'stop the servers and remove their directories', () => sb.stop(), 'teardown');
    report.steps = this.steps;
    report.durationMs = this.now();
    return report;
  }

  async onPlan(file: string): Promise<RehearseReport> {
    const { plan, planId, secrets } = await loadPlanFile(file, this.opts.env ?? {});
    if (!engineCapabilities(plan.engine).rehearsal?.plans || plan.router.kind !== 'pgbouncer') {
      throw new UsageError(
        `rehearse --plan needs a PostgreSQL plan with router kind pgbouncer (got ${plan.engine}, router ${plan.router.kind})`,
        'the workload connects through the router so its clients follow the switch, and only a pgbouncer router names the address clients use',
      );
    }
    for (const phase of ['servers', 'data'] as const) this.emit(phase, 'skip', 'using the servers of the plan');
    // No reverse path: it would leave a slot keeping WAL on the plan's target after the rehearsal.
    const session = await openSessionFor({ ...plan, reverse: false }, planId, secrets);
    const bouncer = parseDbUrl(plan.router.admin);
    const source = { ...session.source, database: session.database };
    // A fresh table each time: rows of an earlier, interrupted rehearsal would collide with the new numbering.
    await this.kit.recreateTable(source, REHEARSAL_TABLE).catch(async (e: unknown) => {
      await session.close();
      throw e;
    });
    const report = await this.cutoverUnderWorkload(session, 'plan', {
      endpoint: { host: bouncer.host, port: bouncer.port, user: source.user, ...(source.password !== undefined ? { password: source.password } : {}), database: plan.router.database },
      router: `PgBouncer ${bouncer.host}:${bouncer.port} database ${plan.router.database}`,
    });
    // The source stays read-only after a cutover, so its copy of the table stays with it.
    await this.kit.dropTable({ ...session.target, database: session.database }, REHEARSAL_TABLE);
    this.emit('teardown', 'skip', `dropped ${REHEARSAL_TABLE} on the target; nothing else to stop`);
    report.durationMs = this.now();
    return report;
  }

  /**
   * A wave on sandboxes: `n` tenant databases behind one PgBouncer, moved by `runWaves` (the code of
   * `cutover waves`) while the clients write to and read from random tenants; then every acknowledged write
   * is looked up on its tenant's database on the target.
   */
  async onTenantSandboxes(n: number, start: NonNullable<RehearsalKit['startTenantSandboxes']>): Promise<RehearseReport> {
    const sb = await this.phase(
      'servers',
      `start PostgreSQL source and target, and a PgBouncer with ${n} tenant entries${this.opts.privileges === 'managed' ? ' (managed profile: the wave runs as an admin without superuser)' : ''}`,
      () => start(n, (label, dir) => this.emit('servers', 'info', `sandbox ${label} in ${dir}`), this.opts.privileges ?? 'superuser'),
      'start servers',
    );
    let report: RehearseReport;
    try {
      const rowsPerTenant = Math.max(1, Math.ceil(this.rows / n));
      await this.phase('data', `create ${n} tenant databases with ${rowsPerTenant} sample rows each`, () => sb.loadSample(rowsPerTenant, REHEARSAL_TABLE), 'load sample data');
      const sandbox = await sb.plan(planDuration(this.opts.maxWriteBlockedMs ?? DEFAULT_TENANT_BUDGET_MS));
      const { plan, secrets } = await loadPlanFile(sandbox.plan, sandbox.env);
      report = await this.waveUnderWorkload(sb, plan, secrets, n * rowsPerTenant);
    } catch (e) {
      await sb.stop();
      throw e;
    }
    await this.phase('teardown', 'stop the servers and remove their directories', () => sb.stop(), 'teardown');
    report.steps = this.steps;
    report.durationMs = this.now();
    return report;
  }

  private async waveUnderWorkload(sb: TenantSandboxSet, plan: Plan, secrets: PlanSecrets, sampleRows: number): Promise<RehearseReport> {
    const [sourceVersion, targetVersion] = await Promise.all([this.kit.serverVersion(sb.source), this.kit.serverVersion(sb.target)]);
    const workloadStartMs = this.now();
    const workload = sb.startWorkload({ writers: this.writers, readers: this.readers, table: REHEARSAL_TABLE, thinkMs: 2 });
    const windows = new Map<string, { holdAtMs?: number; liftAtMs?: number }>();
    let wave: WavesResult;
    let result: WorkloadResult;
    try {
      await this.phase('workload', `${this.writers} writers and ${this.readers} readers on random tenants through ${sb.routerLabel}`, () => sleep(this.settleMs), 'workload warm-up');
      this.emit('sync', 'skip', 'each tenant is synced inside the wave, right before its own cutover');
      wave = await this.phase(
        'cutover',
        `wave: ${sb.tenants.length} tenants, each synced, fenced, verified, switched and lifted on its own`,
        async () => {
          const r = await runWaves(plan, secrets, { onEvent: this.waveEvents(windows), ...this.abort() });
          this.emit(
            'cutover',
            'info',
            `${r.counts.done} of ${r.tenants.length} tenants done; per-tenant window p50 ${formatDuration(r.windows.p50Ms)}, p95 ${formatDuration(r.windows.p95Ms)}, max ${formatDuration(r.windows.maxMs)}`,
          );
          return r;
        },
        'wave',
      );
      await this.phase('drain', 'workload on the target after the last switch', () => sleep(this.settleMs), 'workload after switch');
      this.emit('revert', 'skip', 'a wave is not rehearsed with a revert');
    } finally {
      result = await workload.stop();
    }
    const workloadEndMs = this.now();
    const tenantOf = (op: WorkloadOp) => workload.tenantOf(op);
    const missing = await this.phase('verify', `look up ${result.acknowledged.length} acknowledged writes on their tenants on the target`, () => this.missingOnTenants(sb, result, tenantOf), 'verify writes');
    const { ops, report: workloadSection } = workloadReport(result, workloadStartMs, workloadEndMs);
    const writeGaps = longestTenantGap(result.ops, 'write', tenantOf);
    const readGaps = longestTenantGap(result.ops, 'read', tenantOf);
    const journals = await tenantJournals(plan, sb.tenants);
    const clientErrors = result.writeErrors + result.readErrors;
    const budgetMs = wavesOf(plan).maxWriteBlockedPerTenantMs;
    const list: TenantWindow[] = wave.tenants.map((t) => ({
      tenant: t.tenant,
      state: t.state,
      writeBlockedMs: t.writeBlockedMs ?? null,
      holdAtMs: windows.get(t.tenant)?.holdAtMs ?? null,
      liftAtMs: windows.get(t.tenant)?.liftAtMs ?? null,
      clientWriteGapMs: writeGaps.get(t.tenant) ?? 0,
      acknowledgedWrites: result.ops.filter((o) => o.kind === 'write' && o.outcome === 'ok' && tenantOf(o) === t.tenant).length,
    }));
    const copied = journals.map((j) => lastOkData(j, 'sync') ?? {});
    const num = (d: Record<string, unknown>, k: string) => (typeof d[k] === 'number' ? (d[k] as number) : 0);
    const sum = (ds: Array<Record<string, unknown>>, k: string) => ds.reduce((acc, d) => acc + num(d, k), 0);
    const fences = journals.map((j) => lastOkData(j, 'fence') ?? {});
    const catchUps = journals.map((j) => lastOkData(j, 'catch-up') ?? {});
    const verifies = journals.map((j) => lastOkData(j, 'verify') ?? {});
    // Tenants copy one after another: the copy took the sum of their copy times.
    const copyMs = sum(copied, 'durationMs');
    const bytes = sum(copied, 'bytes');
    return {
      ok: clientErrors === 0 && missing.length === 0 && wave.counts.done === wave.tenants.length,
      mode: 'sandbox',
      engine: this.kit.engine,
      planId: wave.planId,
      privileges: this.opts.privileges ?? 'superuser',
      startedAt: new Date(this.t0).toISOString(),
      durationMs: this.now(),
      source: { server: `${sb.source.host}:${sb.source.port}`, version: sourceVersion },
      target: { server: `${sb.target.host}:${sb.target.port}`, version: targetVersion },
      router: sb.routerLabel,
      clients: { writers: this.writers, readers: this.readers },
      writeBlockedMs: Math.max(0, ...writeGaps.values()),
      readBlockedMs: Math.max(0, ...readGaps.values()),
      fenceToLiftMs: wave.windows.maxMs,
      budgetMs,
      copy: {
        method: plan.method,
        tables: sum(copied, 'tables'),
        bytes,
        rows: null,
        durationMs: copyMs,
        bytesPerSecond: copyMs > 0 ? Math.round((bytes * 1000) / copyMs) : 0,
        rowsPerSecond: null,
        sampleRows,
      },
      steps: this.steps,
      marks: this.marks,
      fence: { terminated: sum(fences, 'terminated'), drained: sum(fences, 'drained'), leakClean: fences.every((f) => f.leakClean !== false) },
      catchUp: { method: catchUpMethod(catchUps), waitedMs: Math.max(0, ...catchUps.map((c) => num(c, 'waitedMs'))) },
      verify: { mode: plan.verify, tables: sum(verifies, 'tables'), mismatches: 0 },
      workload: workloadSection,
      clientErrors,
      errors: errorSamples(ops),
      acknowledgedWrites: result.acknowledged.length,
      verifiedWrites: result.acknowledged.length - missing.length,
      missingWrites: missing,
      warnings: [
        ...plan.warnings,
        ...wave.tenants.flatMap((t) => (t.warnings ?? []).map((w) => `tenant ${t.tenant}: ${w}`)),
        ...wave.tenants.filter((t) => t.error).map((t) => `tenant ${t.tenant} ${t.state}: ${t.error!.message}`),
      ],
      tenants: { count: wave.tenants.length, concurrency: wave.concurrency, done: wave.counts.done, budgetMs, windows: wave.windows, list },
    };
  }

  /** Wave progress as task output; each tenant's hold and lift become marks and one bar per tenant window. */
  private waveEvents(windows: Map<string, { holdAtMs?: number; liftAtMs?: number }>): (e: WaveEvent) => void {
    const syncs = new Map<string, number>();
    return (e) => {
      const at = this.now();
      if (MARKED_STEPS[e.step]?.status === e.status) this.marks.push({ name: MARKED_STEPS[e.step]!.mark, atMs: at });
      if (e.tenant !== undefined) {
        const w = windows.get(e.tenant) ?? {};
        windows.set(e.tenant, w);
        if (e.step === 'hold' && e.status === 'begin') w.holdAtMs = at;
        if (e.step === 'lift' && e.status === 'ok') {
          w.liftAtMs = at;
          if (w.holdAtMs !== undefined) this.steps.push(step(`${e.tenant} window`, 'cutover', w.holdAtMs, at));
        }
        if (e.step === 'sync' && e.status === 'begin') syncs.set(e.tenant, at);
        if (e.step === 'sync' && e.status === 'ok' && syncs.has(e.tenant)) this.steps.push(step(`${e.tenant} sync`, 'sync', syncs.get(e.tenant)!, at));
      }
      if (e.status !== 'begin') this.emit('cutover', 'info', `${e.tenant !== undefined ? `${e.tenant} ` : ''}${e.step}: ${e.message}`);
    };
  }

  /** Workload on, sync, run, workload off, then every acknowledged write looked up on the target. Closes the session. */
  private async cutoverUnderWorkload(s: PlanSession, mode: RehearseReport['mode'], via: WorkloadTarget): Promise<RehearseReport> {
    try {
      // The target database does not exist before the sync: ask the server, not the database.
      const [sourceVersion, targetVersion] = await Promise.all([this.kit.serverVersion({ ...s.source, database: s.database }), this.kit.serverVersion({ ...s.target, database: undefined })]);
      const workloadStartMs = this.now();
      const workload = this.kit.startWorkload(via.endpoint, { writers: this.writers, readers: this.readers, table: REHEARSAL_TABLE, thinkMs: 2 });
      let sync: SyncSummary;
      let run: RunResult;
      let result: WorkloadResult;
      let back: RevertRun | undefined;
      try {
        await this.phase('workload', `${this.writers} writers and ${this.readers} readers through ${via.router}`, () => sleep(this.settleMs), 'workload warm-up');
        sync = await this.phase('sync', 'sync: copy schema and data, start replication', async () => {
          const r = await syncPlan(s, { onEvent: this.engineEvents('sync', true), ...this.abort() });
          this.emit('sync', 'info', `${r.tables} tables, ${formatBytes(r.bytes)} in ${formatDuration(r.durationMs)}`);
          return r;
        });
        const runStartMs = this.now();
        run = await this.phase('cutover', 'cutover: hold, fence, catch up, verify, switch, lift', async () => {
          const r = await runPlan(s, { onEvent: this.engineEvents('cutover', false), ...this.abort(), ...(this.opts.maxWriteBlockedMs !== undefined ? { maxWriteBlockedMs: this.opts.maxWriteBlockedMs } : {}) });
          this.emit('cutover', 'info', `fence to lift ${formatDuration(r.writeBlockedMs ?? 0)} (budget ${formatDuration(r.budgetMs)})`);
          return r;
        });
        this.placeRunSteps(run, runStartMs);
        await this.phase('drain', 'workload on the target after the switch', () => sleep(this.settleMs), 'workload after switch');
        if (this.opts.revert) back = await this.revertUnderWorkload(s);
        else this.emit('revert', 'skip', 'not asked (--revert)');
      } finally {
        result = await workload.stop();
      }
      const workloadEndMs = this.now();
      // After a revert the old source is the primary again: every write of both phases must be there.
      const owner = back ? { ...s.source, database: s.database } : { ...s.target, database: s.database };
      const missing = await this.phase(
        'verify',
        `look up ${result.acknowledged.length} acknowledged writes on the ${back ? 'old source' : 'target'}`,
        async () => {
          const have = new Set(await this.kit.keys(owner, REHEARSAL_TABLE));
          return result.acknowledged.filter((k) => !have.has(k));
        },
        'verify writes',
      );
      const { ops, report: workloadSection } = workloadReport(result, workloadStartMs, workloadEndMs);
      // With a revert, the top-level figures are the forward cutover's and `revert` has the way back's.
      const forwardOps = back ? ops.filter((o) => o.end < back!.startMs) : ops;
      const clientErrors = result.writeErrors + result.readErrors;
      const rows = run.verify?.mode === 'rowcounts' ? run.verify.tables.reduce((n, t) => n + Number(t.target), 0) : null;
      const perSecond = (n: number) => (sync.durationMs > 0 ? Math.round((n * 1000) / sync.durationMs) : 0);
      return {
        ok: clientErrors === 0 && missing.length === 0,
        mode,
        engine: this.kit.engine,
        planId: s.planId,
        privileges: mode === 'sandbox' ? (this.opts.privileges ?? 'superuser') : (s.plan.privileges ?? 'auto'),
        startedAt: new Date(this.t0).toISOString(),
        durationMs: this.now(),
        source: { server: `${s.source.host}:${s.source.port}`, version: sourceVersion },
        target: { server: `${s.target.host}:${s.target.port}`, version: targetVersion },
        router: via.router,
        clients: { writers: this.writers, readers: this.readers },
        writeBlockedMs: longestGap(forwardOps, 'write'),
        readBlockedMs: longestGap(forwardOps, 'read'),
        fenceToLiftMs: run.writeBlockedMs ?? 0,
        budgetMs: run.budgetMs,
        copy: {
          method: sync.method,
          tables: sync.tables,
          bytes: sync.bytes,
          rows,
          durationMs: sync.durationMs,
          bytesPerSecond: perSecond(sync.bytes),
          rowsPerSecond: rows === null ? null : perSecond(rows),
          sampleRows: mode === 'sandbox' ? this.rows : null,
        },
        steps: this.steps,
        marks: this.marks,
        fence: run.fence ?? { terminated: 0, drained: 0, leakClean: true },
        catchUp: { method: run.catchUp?.method ?? 'sentinel', waitedMs: run.catchUp?.waitedMs ?? 0 },
        verify: { mode: run.verify?.mode ?? 'none', tables: run.verify?.tables.length ?? 0, mismatches: run.verify?.mismatches.length ?? 0 },
        workload: workloadSection,
        clientErrors,
        errors: errorSamples(ops),
        acknowledgedWrites: result.acknowledged.length,
        verifiedWrites: result.acknowledged.length - missing.length,
        missingWrites: missing,
        warnings: [...s.plan.warnings, ...run.warnings, ...(back?.run.warnings ?? [])],
        ...(back ? { revert: revertReport(back, ops, this.marks) } : {}),
      };
    } finally {
      await s.close();
    }
  }

  /**
   * `cutover revert` under the same workload, by its own code (openRevertSession + revertPlan), then the workload
   * on the old source for the settle time. Its steps are placed on the rehearsal clock by its own fence.
   */
  private async revertUnderWorkload(s: PlanSession): Promise<RevertRun> {
    const startMs = this.now();
    const at: { hold?: number; fence?: number; lift?: number } = {};
    const run = await this.phase('revert', 'revert: hold, fence the new primary, catch up the old source, switch back, lift', async () => {
      const rs = await openRevertSession(s.plan, s.planId, s.secrets);
      let r: RunResult;
      try {
        r = await revertPlan(rs, s.planId, {
          onEvent: (e) => {
            const now = this.now();
            if (e.step === 'hold' && e.status === 'begin') at.hold = now;
            if (e.step === 'fence' && e.status === 'begin') at.fence = now;
            if (e.step === 'lift' && e.status === 'ok') at.lift = now;
            this.emit('revert', 'info', `${e.step}: ${e.message}`);
          },
          ...this.abort(),
          ...(this.opts.maxWriteBlockedMs !== undefined ? { maxWriteBlockedMs: this.opts.maxWriteBlockedMs } : {}),
        });
      } finally {
        await rs.close();
      }
      this.emit('revert', 'info', `fence to lift ${formatDuration(r.writeBlockedMs ?? 0)} (budget ${formatDuration(r.budgetMs)}); the workload goes on on the old source`);
      const fence = r.steps.find((x) => x.step === 'fence');
      const offset = fence && at.fence !== undefined ? at.fence - fence.startMs : startMs;
      for (const x of r.steps) this.steps.push(step(x.step, 'revert', x.startMs + offset, x.endMs + offset));
      const settled = this.now();
      await sleep(this.settleMs);
      this.steps.push(step('workload after revert', 'revert', settled, this.now()));
      return r;
    });
    // Without a router the window opens at the fence.
    const holdAtMs = at.hold ?? at.fence;
    return { run, startMs, ...(holdAtMs !== undefined ? { holdAtMs } : {}), ...(at.lift !== undefined ? { liftAtMs: at.lift } : {}) };
  }

  /** Acknowledged writes (`client:seq`) not found on their tenant's database on the target. */
  private async missingOnTenants(sb: TenantSandboxSet, w: WorkloadResult, tenantOf: (op: WorkloadOp) => string | undefined): Promise<string[]> {
    const have = new Map<string, Set<string>>();
    for (const t of sb.tenants) have.set(t, new Set(await this.kit.keys({ ...sb.target, database: t }, REHEARSAL_TABLE)));
    const acked = w.ops.filter((o) => o.kind === 'write' && o.outcome === 'ok');
    return acked.filter((o) => !have.get(tenantOf(o) ?? '')?.has(`${o.client}:${o.seq}`)).map((o) => `${o.client}:${o.seq}`);
  }

  private abort(): { abort?: Promise<never> } {
    return this.opts.abort ? { abort: this.opts.abort } : {};
  }

  /**
   * Engine progress as task output, and the hold/fence/lift moments as marks. With `record`, begin/ok pairs
   * become steps (sync returns no step timings of its own).
   */
  private engineEvents(phase: RehearsePhase, record: boolean): (e: CutoverEvent) => void {
    const open = new Map<string, number>();
    return (e) => {
      const at = this.now();
      if (MARKED_STEPS[e.step]?.status === e.status) this.marks.push({ name: MARKED_STEPS[e.step]!.mark, atMs: at });
      if (e.status === 'begin') open.set(e.step, at);
      else if (record && (e.status === 'ok' || e.status === 'fail') && open.has(e.step)) this.steps.push(step(e.step, phase, open.get(e.step)!, at));
      this.emit(phase, 'info', `${e.step}: ${e.message}`);
    };
  }

  /**
   * RunResult.steps are timed from the run's own start, a few ms after runPlan was called (it takes the plan
   * lock first); the fence mark pins them to the rehearsal clock exactly.
   */
  private placeRunSteps(run: RunResult, runStartMs: number): void {
    const fence = run.steps.find((x) => x.step === 'fence');
    const fenceMark = this.marks.find((m) => m.name === 'fence');
    const offset = fence && fenceMark ? fenceMark.atMs - fence.startMs : runStartMs;
    for (const x of run.steps) this.steps.push(step(x.step, 'cutover', x.startMs + offset, x.endMs + offset));
  }
}

interface RevertRun {
  run: RunResult;
  /** When the revert phase began on the rehearsal clock: ops ending before it belong to the forward cutover. */
  startMs: number;
  holdAtMs?: number;
  liftAtMs?: number;
}

/** The revert's window as the clients saw it, and the writes made while the new primary was the primary. */
function revertReport(back: RevertRun, ops: WorkloadOp[], marks: ReportMark[]): RevertReport {
  const during = ops.filter((o) => o.end >= back.startMs);
  const forwardLift = marks.find((m) => m.name === 'lift')?.atMs ?? back.startMs;
  const revertHold = back.holdAtMs ?? back.startMs;
  const r = back.run;
  return {
    writeBlockedMs: longestGap(during, 'write'),
    readBlockedMs: longestGap(during, 'read'),
    fenceToLiftMs: r.writeBlockedMs ?? 0,
    budgetMs: r.budgetMs,
    catchUp: { method: r.catchUp?.method ?? 'sentinel', waitedMs: r.catchUp?.waitedMs ?? 0 },
    holdAtMs: back.holdAtMs ?? null,
    liftAtMs: back.liftAtMs ?? null,
    writesOnNewPrimary: ops.filter((o) => o.kind === 'write' && o.outcome === 'ok' && o.start > forwardLift && o.end < revertHold).length,
  };
}

/** The proof the tenants' catch-ups used (one engine, one method); PostgreSQL's is the sentinel. */
function catchUpMethod(proofs: Array<Record<string, unknown>>): RehearseReport['catchUp']['method'] {
  const m = proofs.map((p) => p.method).find((x) => x === 'sentinel' || x === 'copy' || x === 'gtid' || x === 'binlog');
  return (m as RehearseReport['catchUp']['method'] | undefined) ?? 'sentinel';
}

async function tenantJournals(plan: Plan, tenants: readonly string[]) {
  return Promise.all(
    tenants.map(async (t) => {
      const tp = tenantPlan(plan, t);
      return (await replayJournal(tp.stateDir, planId(tp))).records;
    }),
  );
}

function step(name: string, phase: RehearsePhase, startMs: number, endMs: number): ReportStep {
  return { name, phase, startMs, endMs, durationMs: endMs - startMs };
}

/** The workload part of a report: its operations moved onto the rehearsal's clock, counts and latency series. */
function workloadReport(result: WorkloadResult, startMs: number, endMs: number) {
  const ops = result.ops.map((o) => ({ ...o, start: o.start + startMs, end: o.end + startMs }));
  const lat = latencySeries(ops, startMs, endMs, LATENCY_BUCKETS);
  const writes = ops.filter((o) => o.kind === 'write');
  const reads = ops.filter((o) => o.kind === 'read');
  return {
    ops,
    report: {
      startMs,
      endMs,
      writes: { ok: result.acknowledged.length, failed: writes.filter((o) => o.outcome === 'fail').length, inDoubt: writes.filter((o) => o.outcome === 'unknown').length },
      reads: { ok: reads.filter((o) => o.outcome === 'ok').length, failed: result.readErrors },
      bucketMs: lat.bucketMs,
      latency: lat.series,
    },
  };
}
