import { FenceLeakError, UsageError } from '../errors.js';
import { FenceStore, type FenceRecords } from '../state/fence-store.js';
import { parseDbUrl, type Engine } from '../util/db-url.js';
import { connectReadOnlyAdapter, defaultReadOnlyScope } from './adapters.js';
import type { FenceOffResult, FenceOnResult, FenceOptions, FenceTarget, LateLeakCheck, LeakCheck, LeakWatchSetup, ReadOnlyAdapter, ReadOnlyMode, ReadOnlyScope, ReadOnlyStatusResult, TerminatePolicy } from './types.js';

export interface ReadOnlyOptions {
  /** Connection URL; its password (if any) is overridden by `password`. */
  url: string;
  password?: string;
  scope?: ReadOnlyScope;
  /** Database / role / schema name. Database scope defaults to the URL's database. */
  name?: string;
  mode?: ReadOnlyMode;
  drainTimeoutMs?: number;
  lockTimeoutMs?: number;
  probeMs?: number;
  /** strict mode: roles (PostgreSQL) / user accounts (MySQL) that may not log in while fenced. */
  roles?: string[];
  /** Where fence records live (default `.cutover`). */
  stateDir?: string;
  /** Fence records kept elsewhere than in `stateDir` (a plan's control database); wins over `stateDir`. */
  fenceRecords?: FenceRecords;
  /** Session ids the fence must not end (the cutover's own sessions on the source). */
  exemptSessions?: string[];
  /** enforced/strict: which pre-fence sessions to end after the drain (default all). */
  terminate?: TerminatePolicy;
  /** Decode the write-ahead log for the leak check where the engine can (default true). */
  decodeLeaks?: boolean;
  /** A router holds new connections: end pre-fence sessions before fencing (FenceOptions.clientsHeld). */
  clientsHeld?: boolean;
  /** strict mode: also lock the accounts that bypass the fence (FenceOptions.lockBypass). */
  lockBypass?: boolean;
  /** openReadOnly: make the reads of `on`/`off` once right away (before a hold), so they are fast inside it. */
  warm?: boolean;
  /** The plan's `privileges` (FenceOptions.privileges; default auto). */
  privileges?: 'auto' | 'superuser' | 'managed';
  /**
   * openLeakWatcher: a persistent decoding slot of this name (made by `sync`, or now if missing) instead of a
   * temporary one made now; creating one waits for the running transactions, so it is made ahead of the fence.
   */
  leakSlot?: string;
}

export const READ_ONLY_DEFAULTS = {
  mode: 'enforced' as ReadOnlyMode,
  drainTimeoutMs: 10_000,
  lockTimeoutMs: 2_000,
  probeMs: 500,
  stateDir: '.cutover',
};

export { describeLeak, describeLeakedTransaction, sessionWords } from './describe-leak.js';

function resolveTarget(engine: Engine, opts: ReadOnlyOptions, database: string | undefined): FenceTarget {
  const scope = opts.scope ?? defaultReadOnlyScope(engine, database);
  if (scope === 'server') {
    if (opts.name) throw new UsageError('--name does not apply to server scope', 'drop --name, or pick --scope database|role|schema');
    return { scope };
  }
  const name = opts.name ?? (scope === 'database' || scope === 'schema' ? database : undefined);
  if (!name) throw new UsageError(`--scope ${scope} needs --name`, `pass --name <${scope}>`);
  return { scope, name };
}

/**
 * The bound of a lock timeout, for --lock-timeout and a plan's readOnly.lockTimeout alike. 0 is "wait forever"
 * to PostgreSQL's lock_timeout and a 0-second lock_wait_timeout to MySQL: neither is a bound.
 */
export const LOCK_TIMEOUT_BOUNDS = { min: 1, max: 10 * 60_000 } as const;

function checkLockTimeout(ms: number | undefined): void {
  if (ms !== undefined && !(ms >= LOCK_TIMEOUT_BOUNDS.min && ms <= LOCK_TIMEOUT_BOUNDS.max)) {
    throw new UsageError(`lock timeout ${ms}ms is out of range: it must be between 1ms and 10min`, 'pass e.g. --lock-timeout 2s (0 would mean no limit at all to PostgreSQL)');
  }
}

function fenceRecords(opts: ReadOnlyOptions): FenceRecords {
  return opts.fenceRecords ?? new FenceStore(opts.stateDir ?? READ_ONLY_DEFAULTS.stateDir);
}

async function withAdapter<T>(opts: ReadOnlyOptions, fn: (a: ReadOnlyAdapter, target: FenceTarget, store: FenceRecords, server: string) => Promise<T>): Promise<T> {
  const ep = parseDbUrl(opts.url, opts.password !== undefined ? { password: opts.password } : {});
  const target = resolveTarget(ep.engine, opts, ep.database);
  checkLockTimeout(opts.lockTimeoutMs);
  const adapter = await connectReadOnlyAdapter(ep, opts.lockTimeoutMs ?? READ_ONLY_DEFAULTS.lockTimeoutMs);
  try {
    return await fn(adapter, target, fenceRecords(opts), ep.display);
  } finally {
    await adapter.close();
  }
}

function fenceOptions(opts: ReadOnlyOptions): FenceOptions {
  return {
    mode: opts.mode ?? READ_ONLY_DEFAULTS.mode,
    drainTimeoutMs: opts.drainTimeoutMs ?? READ_ONLY_DEFAULTS.drainTimeoutMs,
    lockTimeoutMs: opts.lockTimeoutMs ?? READ_ONLY_DEFAULTS.lockTimeoutMs,
    probeMs: opts.probeMs ?? READ_ONLY_DEFAULTS.probeMs,
    roles: opts.roles ?? [],
    exemptSessions: opts.exemptSessions ?? [],
    terminate: opts.terminate ?? 'all',
    decodeLeaks: opts.decodeLeaks ?? true,
    clientsHeld: opts.clientsHeld ?? false,
    lockBypass: opts.lockBypass ?? false,
    privileges: opts.privileges ?? 'auto',
  };
}

/**
 * Puts a database into its native read-only mode and proves it holds (leak check).
 * Throws FenceLeakError (exit 5) when a session still wrote after the fence; the fence stays on.
 * If applying the fence fails half-way, what was changed is put back before the error is rethrown.
 */
export async function readOnlyOn(opts: ReadOnlyOptions): Promise<FenceOnResult> {
  const h = await openReadOnly(opts);
  try {
    return await h.on();
  } finally {
    await h.close();
  }
}

/** What `ReadOnlyHandle.on` may set per call, over the options the handle was opened with. */
export type ReadOnlyOnOverrides = Pick<ReadOnlyOptions, 'exemptSessions' | 'clientsHeld' | 'probeMs' | 'decodeLeaks' | 'lockBypass'> & {
  /** Settles when the fence may change the server (e.g. the caller's own journal record is on disk). */
  ready?: Promise<unknown>;
};

/**
 * One connection to a server, opened (and its identity and fence record read) ahead of `on`/`off`: a caller
 * with clients held connects before the hold, so the fence itself pays no login.
 */
export interface ReadOnlyHandle {
  on(overrides?: ReadOnlyOnOverrides): Promise<FenceOnResult>;
  off(): Promise<FenceOffResult>;
  close(): Promise<void>;
}

export async function openReadOnly(opts: ReadOnlyOptions): Promise<ReadOnlyHandle> {
  const ep = parseDbUrl(opts.url, opts.password !== undefined ? { password: opts.password } : {});
  const target = resolveTarget(ep.engine, opts, ep.database);
  checkLockTimeout(opts.lockTimeoutMs);
  const adapter = await connectReadOnlyAdapter(ep, opts.lockTimeoutMs ?? READ_ONLY_DEFAULTS.lockTimeoutMs);
  const store = fenceRecords(opts);
  const server = ep.display;
  let serverId: string;
  try {
    serverId = await adapter.serverId();
    // A new backend's first catalog and activity reads are slow (its caches fill: tens of ms on a busy machine):
    // the reads `on`/`off` make are made once here, before the caller holds anyone. A read that fails fails here.
    if (opts.warm) {
      await adapter.capturePrior(target, fenceOptions(opts));
      await adapter.status([target]);
    }
  } catch (e) {
    await adapter.close();
    throw e;
  }
  return {
    async on(overrides = {}) {
      const { ready, ...rest } = overrides;
      const fence = fenceOptions({ ...opts, ...rest });
      const started = Date.now();
      const recorded = await store.load(serverId, target);
      const fresh = await adapter.capturePrior(target, fence);
      const prior = recorded ? adapter.mergePrior(recorded.prior, fresh) : fresh;
      const record = { version: 1 as const, engine: adapter.engine, server, serverId, ...target, mode: fence.mode, fencedAt: new Date().toISOString(), prior };
      // Recorded (once, durably) before anything changes, so a crash mid-way still lets `off` put back what was there.
      await Promise.all([store.save(record), ready]);
      let applied;
      try {
        applied = await adapter.apply(target, fence, prior);
      } catch (e) {
        if (!recorded) {
          await adapter.restore(target, prior, fence.lockTimeoutMs).catch(() => {});
          await store.remove(serverId, target).catch(() => {});
        }
        throw e;
      }
      const result: FenceOnResult = { action: 'on', engine: adapter.engine, server, alreadyOn: recorded !== undefined, ...applied, durationMs: Date.now() - started };
      if (!result.leakCheck.clean) throw new FenceLeakError(result);
      return result;
    },
    async off() {
      const started = Date.now();
      const recorded = await store.load(serverId, target);
      const restored = await adapter.restore(target, recorded?.prior, opts.lockTimeoutMs ?? READ_ONLY_DEFAULTS.lockTimeoutMs);
      await store.remove(serverId, target);
      return { action: 'off', engine: adapter.engine, server, ...restored, durationMs: Date.now() - started };
    },
    close: () => adapter.close(),
  };
}

export interface LeakWatcher {
  /** How it will check (decoded or sampled, and why), and its own sessions, which the fence must exempt. */
  readonly setup: LeakWatchSetup;
  /** Watches for at least `minMs` and until `until` settles; a decoded watch reads commits after `fencePosition`. */
  run(minMs: number, until: Promise<unknown>, fencePosition?: string): Promise<LeakCheck>;
  /**
   * After `run`: what committed since (decoded watches only; otherwise `checked: false` with the reason), told
   * apart by `appliedThrough`, the source position the target applied through (DetachResult).
   */
  late(appliedThrough?: string): Promise<LateLeakCheck>;
  close(): Promise<void>;
}

/**
 * A leak probe on its own connections, opened before the fence (pass `setup.sessions` to `readOnlyOn` as
 * exempt, with `probeMs: 0` and `decodeLeaks: false`), for callers that overlap it with other work.
 * Undefined when the engine's adapter cannot watch that way.
 */
export async function openLeakWatcher(opts: ReadOnlyOptions): Promise<LeakWatcher | undefined> {
  const ep = parseDbUrl(opts.url, opts.password !== undefined ? { password: opts.password } : {});
  const target = resolveTarget(ep.engine, opts, ep.database);
  checkLockTimeout(opts.lockTimeoutMs);
  const adapter = await connectReadOnlyAdapter(ep, opts.lockTimeoutMs ?? READ_ONLY_DEFAULTS.lockTimeoutMs);
  const watch = adapter.watchLeaks?.bind(adapter);
  if (!watch) {
    await adapter.close();
    return undefined;
  }
  const exempt = opts.exemptSessions ?? [];
  let setup: LeakWatchSetup;
  try {
    setup = adapter.prepareLeakWatch && opts.decodeLeaks !== false ? await adapter.prepareLeakWatch(target, opts.leakSlot !== undefined ? { slot: opts.leakSlot } : {}) : { method: 'sampled', sessions: [] };
  } catch (e) {
    await adapter.close();
    throw e;
  }
  const notChecked: LateLeakCheck = { checked: false, note: setup.fallback ?? 'the engine cannot decode its log', splitBy: 'none', replicated: [], sourceOnly: [], openWriters: [] };
  return {
    setup,
    run: (minMs, until, fencePosition) => watch(target, exempt, minMs, until, fencePosition),
    late: (appliedThrough) => (adapter.lateLeaks ? adapter.lateLeaks(target, exempt, appliedThrough) : Promise.resolve(notChecked)),
    close: () => adapter.close(),
  };
}

/** Lifts the fence, putting back exactly what `on` recorded. Exit 0 (wasOn false) when already writable. */
export async function readOnlyOff(opts: ReadOnlyOptions): Promise<FenceOffResult> {
  const h = await openReadOnly(opts);
  try {
    return await h.off();
  } finally {
    await h.close();
  }
}

/** Per scope: the setting, sessions in scope, and who could still write. */
export async function readOnlyStatus(opts: ReadOnlyOptions): Promise<ReadOnlyStatusResult> {
  return withAdapter(opts, async (adapter, target, store, server) => {
    const targets = opts.scope ? [target] : adapter.defaultStatusTargets();
    const serverId = await adapter.serverId();
    const records = await Promise.all(targets.map((t) => store.load(serverId, t)));
    const withRecords = targets.map((t, i) => (records[i] ? { ...t, fencedAt: records[i]!.fencedAt } : t));
    const status = await adapter.status(withRecords);
    status.scopes.forEach((s, i) => {
      const rec = records[i];
      if (rec) s.recorded = { mode: rec.mode, fencedAt: rec.fencedAt, lockedRoles: Object.keys((rec.prior.roles as Record<string, unknown> | undefined) ?? {}) };
    });
    return { action: 'status', engine: adapter.engine, server, ...status };
  });
}
