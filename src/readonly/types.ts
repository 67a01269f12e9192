import type { Engine } from '../util/db-url.js';

/** Where a fence applies. `schema` exists on MySQL 8.0.22+ (ALTER SCHEMA ... READ ONLY). */
export type ReadOnlyScope = 'server' | 'database' | 'role' | 'schema';
/**
 * advisory: only the engine's read-only setting.
 * enforced: the setting, then drain open write transactions and end every session that could still write.
 * strict:   enforced, plus the named app roles/users cannot log in until `off`.
 */
export type ReadOnlyMode = 'advisory' | 'enforced' | 'strict';

export interface FenceTarget {
  scope: ReadOnlyScope;
  /** database / role / schema name; absent for server scope. */
  name?: string;
}

export interface FenceOptions {
  mode: ReadOnlyMode;
  drainTimeoutMs: number;
  lockTimeoutMs: number;
  /** How long the leak check watches for writes after the fence. */
  probeMs: number;
  /** strict mode: roles (PostgreSQL) or user accounts (MySQL) that lose the right to log in. */
  roles: string[];
  /** Session ids the fence must neither end nor count as leaks: the cutover's own sessions. */
  exemptSessions?: string[];
  /**
   * Whether the adapter decodes the write-ahead log for its leak check where it can (PostgreSQL, database
   * scope; default true). Off when the caller watches with its own LeakWatcher instead.
   */
  decodeLeaks?: boolean;
  /**
   * Which sessions that predate the fence enforced mode ends after the drain: all of them (default), those
   * inside a transaction, or none. Sessions still holding writes after the drain are ended whatever this says.
   */
  terminate?: TerminatePolicy;
  /**
   * A router holds new connections (the cutover's hold): the fence may end every client session that predates
   * it at a statement boundary *before* it fences, so the fence never queues behind commits (MySQL `SET GLOBAL
   * read_only`) and the clients reconnect into the hold. Engines whose fence does not wait ignore it.
   */
  clientsHeld?: boolean;
  /** strict mode: also lock, until `off`, the accounts that can write through the fence (MySQL READ ONLY ADMIN/SUPER). */
  lockBypass?: boolean;
  /**
   * The plan's `privileges`: how the fence is done when the account is no superuser (managed services). `auto`
   * (default) asks the server. Engines without a managed way ignore it.
   */
  privileges?: 'auto' | 'superuser' | 'managed';
}

/** Which pre-fence sessions the fence ends: all, only those inside a transaction, or none (drain only). */
export type TerminatePolicy = 'all' | 'idle-in-transaction' | 'none';

/** A client session as the tool reports it. Never carries query text (it can hold secrets). */
export interface SessionInfo {
  id: string;
  user: string;
  database?: string;
  application?: string;
  client?: string;
  state?: string;
  /** Age of the open transaction, when there is one. */
  transactionAgeMs?: number;
  /** Why the session matters (e.g. "in a write transaction", "superuser"). */
  reason?: string;
}

/** A transaction that committed after the fence and changed tables, read from the write-ahead log. */
export interface LeakedTransaction {
  xid: string;
  /** Tables it changed (schema-qualified, quoted as the server quotes them) and rows per table; a TRUNCATE counts 1. */
  tables: Array<{ table: string; changes: number }>;
  changes: number;
  /** Commit time as the server printed it. */
  committedAt?: string;
  /** Write-ahead log position of its commit. */
  commitPosition: string;
  /** The session that ran it, when a pg_stat_activity sample caught its transaction id. */
  session?: SessionInfo;
}

export interface LeakCheck {
  probeMs: number;
  clean: boolean;
  /** Sessions seen writing (or able to commit a write) after the fence. */
  writers: SessionInfo[];
  /**
   * decoded: every commit after the fence position was read from the write-ahead log (PostgreSQL, database
   * scope), on top of sampling sessions. sampled: sessions were sampled only, and a very short write can fall
   * between samples (`fallback` says why decoding was not used). trigger: a PostgreSQL schema fence, which
   * rejects every write itself; the check looks for gaps in it (a table without the trigger, or the trigger
   * disabled). Absent: the engine's own method (MySQL and MariaDB compare binary log positions).
   */
  method?: LeakCheckMethod;
  fallback?: string;
  /** decoded: transactions committed after the fence that changed tables outside the tool's own schema. */
  transactions?: LeakedTransaction[];
}

/**
 * decoded: every commit after the fence read from the log; sampled: sessions sampled; trigger: the schema fence
 * checked on every table; position: the server's write position (MySQL GTID set / binary log offset), which any
 * commit moves, compared between the fence and the end of the watch.
 */
/**
 * decoded: a logical decoding slot reads every commit after the fence (PostgreSQL); binlog: the binary log from
 * the fence position holds no event of the fenced database (MySQL/MariaDB database fence); position: the write
 * position does not move (server fence); trigger: the schema fence's trigger; sampled: sessions sampled only.
 */
export type LeakCheckMethod = 'decoded' | 'binlog' | 'sampled' | 'trigger' | 'position';

/** After the point of no return: what committed on the old source since the leak check ended (decoded only). */
export interface LateLeakCheck {
  /** False when it could not be checked; `note` says why. */
  checked: boolean;
  note?: string;
  /**
   * How `replicated` and `sourceOnly` were told apart. applied: by the position the target applied through when
   * replication stopped (exact). sentinel: by the tool's last sentinel; those after it may have reached the target
   * too. none: no replication ran in that stretch (method dump), nothing reached the target.
   */
  splitBy: 'applied' | 'sentinel' | 'none';
  /** Reached the target before replication into it stopped. */
  replicated: LeakedTransaction[];
  /** Committed on the old source only. */
  sourceOnly: LeakedTransaction[];
  /** Sessions inside a write transaction right now: they may still commit on the old source. */
  openWriters: SessionInfo[];
}

/** What a leak watch prepared before the fence. */
export interface LeakWatchSetup {
  method: LeakCheckMethod;
  fallback?: string;
  /** The watch's own sessions: the fence must neither end them nor count them as leaks. */
  sessions: string[];
}

/**
 * Engine-specific state captured before the fence so that `off` can put back exactly what was there.
 * Opaque to the core; stored as JSON in the state dir.
 */
export type PriorState = Record<string, unknown>;

export interface FenceOnResult {
  action: 'on';
  engine: Engine;
  server: string;
  scope: ReadOnlyScope;
  name?: string;
  mode: ReadOnlyMode;
  /** The scope was already fenced by an earlier `on` (the first one's prior state is kept). */
  alreadyOn: boolean;
  /** Whether the fence survives a server restart. */
  persistent: boolean;
  /** Write transactions that finished on their own within the drain timeout. */
  drained: SessionInfo[];
  terminated: SessionInfo[];
  /** Sessions that connected before the fence and still run without the read-only default (advisory mode). */
  untouched: SessionInfo[];
  lockedRoles: string[];
  warnings: string[];
  leakCheck: LeakCheck;
  /**
   * Write position right after the fence took hold (drain and terminations done): every commit past it is a
   * leak. PostgreSQL only.
   */
  fencePosition?: string;
  durationMs: number;
}

export interface FenceOffResult {
  action: 'off';
  engine: Engine;
  server: string;
  scope: ReadOnlyScope;
  name?: string;
  /** False when the scope was already writable: nothing was changed. */
  wasOn: boolean;
  /** What the setting is now, in words (e.g. "reset to server default", "restored to 'on'"). */
  restored: string;
  unlockedRoles: string[];
  warnings: string[];
  durationMs: number;
}

export interface ScopeStatus {
  scope: ReadOnlyScope;
  name?: string;
  /** The engine setting's value for this scope, or null when not set at this level. */
  setting: string | null;
  /** Whether new sessions in this scope start read-only. */
  readOnly: boolean;
  persistent: boolean;
  /** Client sessions in scope, excluding the tool's own. */
  sessions: number;
  /** Sessions or accounts that could still write despite the setting. */
  couldWrite: SessionInfo[];
  /** A fence recorded in the state dir by `cutover readonly on`, if any. */
  recorded?: { mode: ReadOnlyMode; fencedAt: string; lockedRoles: string[] };
}

export interface ReadOnlyStatusResult {
  action: 'status';
  engine: Engine;
  server: string;
  version: string;
  scopes: ScopeStatus[];
  warnings: string[];
}

export type ReadOnlyResult = FenceOnResult | FenceOffResult | ReadOnlyStatusResult;

/** What the core needs from an engine to fence it. One instance per connection; `close` always runs. */
export interface ReadOnlyAdapter {
  readonly engine: Engine;
  /** Stable identity of the server (system_identifier / server_uuid), for the state record key. */
  serverId(): Promise<string>;
  /** Validates the target and reads what `apply` will change. */
  capturePrior(target: FenceTarget, opts: FenceOptions): Promise<PriorState>;
  /** Merges a new capture into an earlier record (second `on` with more roles). */
  mergePrior(recorded: PriorState, fresh: PriorState): PriorState;
  apply(target: FenceTarget, opts: FenceOptions, prior: PriorState): Promise<Omit<FenceOnResult, 'action' | 'engine' | 'server' | 'alreadyOn' | 'durationMs'>>;
  /** Puts back `prior`; without a record, lifts the fence if one is set (and says it could not restore more). */
  restore(target: FenceTarget, prior: PriorState | undefined, lockTimeoutMs: number): Promise<Omit<FenceOffResult, 'action' | 'engine' | 'server' | 'durationMs'>>;
  /**
   * Optional: before the fence, set up what the leak check needs from before it (PostgreSQL: a temporary
   * logical decoding slot). Never fails for lack of a method: it falls back to sampling and says why.
   */
  prepareLeakWatch?(target: FenceTarget, opts?: { slot?: string }): Promise<LeakWatchSetup>;
  /**
   * Optional: watch the fenced scope for leaks for at least `minMs` and until `until` settles, so the caller
   * can overlap the probe with other work (the cutover's catch-up) instead of waiting for it. With a prepared
   * decoding watch, `fencePosition` (FenceOnResult.fencePosition) is where leaks start.
   */
  watchLeaks?(target: FenceTarget, exempt: readonly string[], minMs: number, until: Promise<unknown>, fencePosition?: string): Promise<LeakCheck>;
  /** Optional: after a decoded watch ended, what committed since (the cutover's check after its point of no return). */
  lateLeaks?(target: FenceTarget, exempt: readonly string[], appliedThrough?: string): Promise<LateLeakCheck>;
  status(targets: Array<FenceTarget & { fencedAt?: string }>): Promise<Omit<ReadOnlyStatusResult, 'action' | 'engine' | 'server'>>;
  /** Default targets for `status` when none is named (e.g. server + the URL's database). */
  defaultStatusTargets(): FenceTarget[];
  close(): Promise<void>;
}
