import { Journal, replayJournal, type AppendOptions, type JournalRecord, type JournalReplay, type JournalStep, type StepStatus } from './journal.js';
import { PlanLock, readLock, type AcquireOptions, type LockInfo } from './lock.js';
import type { FenceRecords } from '../state/fence-store.js';

/** One process's hold on a plan's state: journal appends check it, so a superseded holder stops. */
export interface StateLock {
  readonly planId: string;
  readonly token: number;
  readonly info: LockInfo;
  assertCurrent(): Promise<void>;
  release(): Promise<void>;
}

/** The append side of a plan's journal: durable before an append returns, unless queued (`durable: false`). */
export interface StateJournal {
  readonly state: JournalReplay;
  begin(step: JournalStep, data?: Record<string, unknown>, opts?: AppendOptions): Promise<JournalRecord>;
  ok(step: JournalStep, data?: Record<string, unknown>, opts?: AppendOptions): Promise<JournalRecord>;
  fail(step: JournalStep, data?: Record<string, unknown>): Promise<JournalRecord>;
  append(step: JournalStep, status: StepStatus, data?: Record<string, unknown>, opts?: AppendOptions): Promise<JournalRecord>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Where plans keep their journal and lock: files in the state dir (the default) or a PostgreSQL control database
 * the runners of a wave share (adapters/postgres/postgres-state-store.ts). `stateDir` addresses the file store; the
 * control database keys by plan id alone.
 */
export interface StateStore {
  readonly kind: 'dir' | 'database';
  /** For messages: the state dir, or the control database's redacted URL. */
  describe(stateDir: string): string;
  acquire(stateDir: string, planId: string, opts?: AcquireOptions): Promise<StateLock>;
  openJournal(lock: StateLock, opts?: { secrets?: readonly string[] }): Promise<StateJournal>;
  /** The journal as written, without the lock (status, waves). */
  replay(stateDir: string, planId: string): Promise<JournalReplay>;
  readLock(stateDir: string, planId: string): Promise<LockInfo | undefined>;
  /** Coordination of one wave across runner processes; absent for the file store (one runner per wave). */
  wave?(waveId: string): WaveCoordinator;
  /** Fence records shared by every process of this store; absent: they are files in the plan's state dir. */
  fences?(): FenceRecords;
  close(): Promise<void>;
}

/** A tenant of a shared wave, as the control database records it. */
export interface WaveTenantRow {
  tenant: string;
  planId: string;
  /** pending, claimed (a runner holds its lease), done, failed, rolled-back. */
  state: 'pending' | 'claimed' | 'done' | 'failed' | 'rolled-back';
  runner?: string;
  windowMs?: number;
  error?: string;
  attempts: number;
  claimedAt?: string;
  finishedAt?: string;
}

export interface WaveRunnerRow {
  runner: string;
  host: string;
  pid: number;
  startedAt: string;
  /** Its control-database session is still open (its leases hold). */
  alive: boolean;
  finishedAt?: string;
}

export interface WaveClaim {
  tenant: string;
  /** The previous claimant's lease died with its session: the tenant may be mid-run, its journal says where. */
  takenOver?: string;
}

/**
 * What runners of one wave share through the control database. Leases are session-level advisory locks of the
 * runner's control session: a runner that dies (kill -9, lost network) loses them with its connection.
 */
export interface WaveCoordinator {
  /**
   * Joins the wave. The first runner of a round (no other runner connected) records the tenant list and the
   * concurrency, and makes failed and rolled-back tenants pending again; later runners take the recorded ones.
   * `concurrency` is the wave's (every runner together), as recorded by the round's first runner; `first` says
   * whether this runner was that one.
   */
  join(tenants: ReadonlyArray<{ tenant: string; planId: string }>, concurrency: number): Promise<{ runner: string; tenants: string[]; concurrency: number; first: boolean }>;
  /**
   * A concurrency slot of the wave (at most `concurrency` tenants in progress over every runner) and the next
   * tenant under a lease, `wait` when every slot is taken or the remaining tenants are leased by live runners,
   * `none` when no tenant is left.
   */
  claim(): Promise<WaveClaim | 'wait' | 'none'>;
  /** Records the tenant's outcome and releases its lease and slot. */
  finish(tenant: string, outcome: { state: 'done' | 'failed' | 'rolled-back' | 'pending'; windowMs?: number; error?: string }): Promise<void>;
  /**
   * `--rollback` of one tenant from any process: runs `fn` under the tenant's lease (refused while a live runner
   * holds it) and records the outcome in the tenant's row, so `--status` and the runners see it: rolled-back (not
   * claimed again this round), or the error.
   */
  rollback<T>(tenant: string, fn: () => Promise<T>, errorText?: (e: unknown) => string): Promise<T>;
  /** Failed tenants of this round, over every runner (stopAfterFailures). */
  failures(): Promise<number>;
  /** The source server's copy/window gate across runners: no copy while another tenant is in its window. */
  copy<T>(server: string, fn: () => Promise<T>): Promise<T>;
  window<T>(server: string, fn: () => Promise<T>): Promise<T>;
  /** Tenants' windows (hold to lift) on one source server one at a time over every runner, without polling. */
  windowTurn<T>(server: string, fn: () => Promise<T>): Promise<T>;
  /**
   * Resolves once the window turns of `server` that are on or queued when it is called (over every runner) have
   * ended, or after a bound (RunOptions.quiet). Never rejects.
   */
  quiet(server: string): Promise<void>;
  /** Serialises edits of a shared router file (a PgBouncer ini) across runners. */
  exclusive<T>(resource: string, fn: () => Promise<T>): Promise<T>;
  tenants(): Promise<WaveTenantRow[]>;
  runners(): Promise<WaveRunnerRow[]>;
  leave(): Promise<void>;
}

/** Today's files: `<state>/<plan>.journal` and `<plan>.lock` (see journal.ts, lock.ts). */
export const fileStateStore: StateStore = {
  kind: 'dir',
  describe: (stateDir) => stateDir,
  acquire: (stateDir, planId, opts) => PlanLock.acquire(stateDir, planId, opts),
  openJournal: (lock, opts) => {
    if (!(lock instanceof PlanLock)) throw new TypeError('the file state store journals under its own lock');
    return Journal.open(lock, opts);
  },
  replay: (stateDir, planId) => replayJournal(stateDir, planId),
  readLock: (stateDir, planId) => readLock(stateDir, planId),
  close: async () => {},
};
