import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CatchUpProof, CutoverAdapter, DetachResult, Finding, Leftover, SourceLockResult, SyncSummary, VerifyReport } from '../../src/engine/cutover-adapter.js';
import type { FenceRequest, SourceFence, TargetHold } from '../../src/engine/fence.js';
import { journalPath, type JournalRecord } from '../../src/engine/journal.js';
import type { Endpoint, Router, RouterFinding } from '../../src/engine/router.js';
import type { PlanSession } from '../../src/engine/session.js';
import { fileStateStore } from '../../src/engine/state-store.js';
import { parsePlan, planId, type Plan } from '../../src/plan/index.js';
import type { LeakWatcher } from '../../src/readonly/readonly.js';
import type { FenceOnResult, LateLeakCheck, LeakCheck, ScopeStatus } from '../../src/readonly/types.js';
import { parseDbUrl } from '../../src/util/db-url.js';

/**
 * What every fake did, in order (`router.hold`, `fence.on`, `adapter.catchUp`, ...), and the faults planned for
 * them: a planned operation throws instead of acting, so a test can fail any step of the orchestrator.
 */
export class FakeWorld {
  readonly log: string[] = [];
  private readonly faults = new Map<string, { error: unknown; times: number }>();
  private readonly hooks = new Map<string, () => Promise<void> | void>();

  /** `op` throws `error` the next `times` calls (default: every call). */
  fail(op: string, error: unknown = new Error(`${op} failed`), times = Infinity): this {
    this.faults.set(op, { error, times });
    return this;
  }

  /** `op` works again. */
  heal(op: string): this {
    this.faults.delete(op);
    return this;
  }

  /** Runs `fn` when `op` is called, before it acts (e.g. to let time pass inside the window). */
  when(op: string, fn: () => Promise<void> | void): this {
    this.hooks.set(op, fn);
    return this;
  }

  /** Logs `op`, runs its hook, and throws its planned fault, if any. */
  async act(op: string): Promise<void> {
    this.log.push(op);
    await this.hooks.get(op)?.();
    const fault = this.faults.get(op);
    if (!fault || fault.times <= 0) return;
    fault.times -= 1;
    throw fault.error;
  }

  /** The logged operations whose name starts with `prefix` (`'fence.'`, `'router.'`). */
  ops(prefix: string): string[] {
    return this.log.filter((op) => op.startsWith(prefix));
  }
}

export const SOURCE_URL = 'postgres://app@source.test:5432/shop';
export const TARGET_URL = 'postgres://app@target.test:5433/shop';
export const SOURCE: Endpoint = { host: 'source.test', port: 5432, database: 'shop' };
export const TARGET: Endpoint = { host: 'target.test', port: 5433, database: 'shop' };

/** A cutover adapter that moves nothing: every call is logged (`adapter.<method>`) and can be made to fail. */
export class FakeAdapter implements CutoverAdapter {
  readonly engine = 'postgres' as const;
  /** Sessions that hold the plan's lock on the "source", as a second runner would. */
  lockHeldByOther = false;
  /** Tables verify reports as different (the step itself succeeds). */
  mismatches: VerifyReport['mismatches'] = [];

  constructor(private readonly world: FakeWorld) {}

  async identities(): Promise<{ source: string; target: string }> {
    await this.world.act('adapter.identities');
    return { source: 'source-id', target: 'target-id' };
  }
  async preflight(): Promise<Finding[]> {
    await this.world.act('adapter.preflight');
    return [];
  }
  async sync(): Promise<SyncSummary> {
    await this.world.act('adapter.sync');
    return { method: 'replication', tables: 2, bytes: 1024, rolesCreated: 0, durationMs: 1 };
  }
  async lagBytes(): Promise<number | null> {
    await this.world.act('adapter.lagBytes');
    return 0;
  }
  async lockSource(): Promise<SourceLockResult> {
    await this.world.act('adapter.lockSource');
    return this.lockHeldByOther ? { acquired: false, holder: { session: '4242', application: 'cutover pid 1@elsewhere' } } : { acquired: true };
  }
  async unlockSource(): Promise<void> {
    await this.world.act('adapter.unlockSource');
  }
  async assertSourceLock(): Promise<void> {
    await this.world.act('adapter.assertSourceLock');
  }
  async ownSourceSessions(): Promise<string[]> {
    await this.world.act('adapter.ownSourceSessions');
    return ['101'];
  }
  async catchUp(): Promise<CatchUpProof> {
    await this.world.act('adapter.catchUp');
    return { fencePosition: '0/10', method: 'sentinel', proofPosition: '0/11', waitedMs: 1 };
  }
  async copySequences(): Promise<number> {
    await this.world.act('adapter.copySequences');
    return 3;
  }
  async verify(): Promise<VerifyReport> {
    await this.world.act('adapter.verify');
    const tables = [{ table: 'public.orders', source: '10', target: '10', match: true }, ...this.mismatches];
    return { mode: 'rowcounts', tables, mismatches: this.mismatches, durationMs: 1 };
  }
  async detachTarget(): Promise<DetachResult> {
    await this.world.act('adapter.detachTarget');
    return { appliedThrough: '0/12' };
  }
  async dropLeakSlot(): Promise<boolean> {
    await this.world.act('adapter.dropLeakSlot');
    return true;
  }
  async cleanup(): Promise<string[]> {
    await this.world.act('adapter.cleanup');
    return ['subscription cutover_x'];
  }
  async leftovers(): Promise<Leftover[]> {
    await this.world.act('adapter.leftovers');
    return [];
  }
  async close(): Promise<void> {
    await this.world.act('adapter.close');
  }
}

/** A router that remembers where it points and whether it holds clients. */
export class FakeRouter implements Router {
  readonly kind = 'exec' as const;
  at: Endpoint = SOURCE;
  held = false;

  constructor(private readonly world: FakeWorld) {}

  async hold(): Promise<void> {
    await this.world.act('router.hold');
    this.held = true;
  }
  async pointTo(endpoint: Endpoint): Promise<void> {
    await this.world.act(`router.pointTo ${endpoint.host}`);
    this.at = endpoint;
  }
  async release(): Promise<void> {
    await this.world.act('router.release');
    this.held = false;
  }
  async current(): Promise<Endpoint | undefined> {
    return this.at;
  }
  describe(): string {
    return 'fake router';
  }
  async preflight(): Promise<RouterFinding[]> {
    await this.world.act('router.preflight');
    return [];
  }
  async close(): Promise<void> {}
}

/** A leak watch that reports `leakCheck` once the run stops watching. */
export class FakeLeakWatcher implements LeakWatcher {
  readonly setup = { method: 'decoded' as const, sessions: ['202'] };
  leakCheck: LeakCheck = { probeMs: 0, clean: true, writers: [], method: 'decoded', transactions: [] };
  lateCheck: LateLeakCheck = { checked: true, splitBy: 'applied', replicated: [], sourceOnly: [], openWriters: [] };

  constructor(private readonly world: FakeWorld) {}

  async run(_minMs: number, until: Promise<unknown>): Promise<LeakCheck> {
    await this.world.act('watch.run');
    await until;
    return this.leakCheck;
  }
  async late(): Promise<LateLeakCheck> {
    await this.world.act('watch.late');
    return this.lateCheck;
  }
  async close(): Promise<void> {
    await this.world.act('watch.close');
  }
}

/** The source fence as a flag; `requests` keeps what the run asked of each `on`. */
export class FakeFence implements SourceFence {
  fenced = false;
  readonly requests: FenceRequest[] = [];
  /** Set to watch leaks beside the catch-up (PostgreSQL database scope); undefined: the fence probes itself. */
  watcher: FakeLeakWatcher | undefined;

  constructor(private readonly world: FakeWorld) {}

  get canWatchLeaks(): boolean {
    return this.watcher !== undefined;
  }
  async on(request: FenceRequest): Promise<FenceOnResult> {
    const { ready, ...asked } = request;
    this.requests.push(asked);
    // Like the real fence: nothing changes before the run's journal record of the fence is on disk.
    await ready;
    await this.world.act('fence.on');
    this.fenced = true;
    const leakCheck: LeakCheck = { probeMs: 0, clean: true, writers: [] };
    return {
      action: 'on',
      engine: 'postgres',
      server: 'source.test:5432',
      scope: 'database',
      name: 'shop',
      mode: 'enforced',
      alreadyOn: false,
      persistent: true,
      drained: [],
      terminated: [],
      untouched: [],
      lockedRoles: [],
      warnings: [],
      leakCheck,
      fencePosition: '0/10',
      durationMs: 1,
    };
  }
  async off(): Promise<void> {
    await this.world.act('fence.off');
    this.fenced = false;
  }
  async status(): Promise<ScopeStatus | undefined> {
    await this.world.act('fence.status');
    return { scope: 'database', name: 'shop', setting: this.fenced ? 'on' : null, readOnly: this.fenced, persistent: true, sessions: 0, couldWrite: [] };
  }
  async watchLeaks(): Promise<LeakWatcher | undefined> {
    if (!this.watcher) return undefined;
    await this.world.act('fence.watchLeaks');
    return this.watcher;
  }
}

/** The target's hold as a flag (on after sync until the switch). */
export class FakeHold implements TargetHold {
  held = false;

  constructor(private readonly world: FakeWorld) {}

  async on(): Promise<void> {
    await this.world.act('hold.on');
    this.held = true;
  }
  async off(): Promise<void> {
    await this.world.act('hold.off');
    this.held = false;
  }
}

export interface FakeSession {
  session: PlanSession;
  world: FakeWorld;
  adapter: FakeAdapter;
  router: FakeRouter;
  fence: FakeFence;
  hold: FakeHold;
}

/** A plan for the fake servers, journaled in `stateDir` (a private temp dir). */
export function fakePlan(stateDir: string, extra = ''): Plan {
  return parsePlan(`source: { url: "${SOURCE_URL}" }\ntarget: { url: "${TARGET_URL}" }\nverify: rowcounts\nrouter: { kind: none }\nstate: "${stateDir}"\n${extra}`, join(stateDir, 'plan.yaml'));
}

/** A PlanSession over fakes. `router: false` is a plan without a router (fence and lift only). */
export function fakeSession(stateDir: string, opts: { router?: boolean; plan?: string } = {}): FakeSession {
  const world = new FakeWorld();
  const adapter = new FakeAdapter(world);
  const router = new FakeRouter(world);
  const fence = new FakeFence(world);
  const hold = new FakeHold(world);
  const plan = fakePlan(stateDir, opts.plan);
  const session: PlanSession = {
    plan,
    planId: planId(plan),
    secrets: { all: [] },
    database: 'shop',
    source: { ...parseDbUrl(SOURCE_URL), database: 'shop' },
    target: { ...parseDbUrl(TARGET_URL), database: 'shop' },
    adapter,
    sourceFence: fence,
    targetHold: hold,
    router: opts.router === false ? undefined : router,
    direction: 'forward',
    state: fileStateStore,
    close: () => adapter.close(),
  };
  return { session, world, adapter, router, fence, hold };
}

/** The plan's journal as written to disk, `step status` per record (`fence begin`, `unfence ok`, ...). */
export async function journalLines(s: PlanSession): Promise<string[]> {
  return (await journalRecords(s)).map((r) => `${r.step} ${r.status}`);
}

export async function journalRecords(s: PlanSession): Promise<JournalRecord[]> {
  const text = await readFile(journalPath(s.plan.stateDir, s.planId), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JournalRecord);
}

/**
 * A state dir whose journal holds `records` as a process that died right after writing them left it (its lock
 * gone with it), and fakes in the state such a crash leaves the servers and the router in.
 */
export async function crashedSession(stateDir: string, records: readonly JournalRecord[], opts: { router?: boolean } = {}): Promise<FakeSession> {
  const f = fakeSession(stateDir, opts);
  await writeFile(journalPath(stateDir, f.session.planId), records.map((r) => JSON.stringify(r) + '\n').join(''), { mode: 0o600 });
  const has = (step: string, status: string) => records.some((r) => r.step === step && r.status === status);
  f.hold.held = has('sync', 'ok') && !has('repoint', 'ok');
  f.fence.fenced = has('fence', 'begin');
  f.router.held = has('hold', 'begin') && !has('lift', 'ok');
  if (has('repoint', 'ok')) f.router.at = TARGET;
  return f;
}
