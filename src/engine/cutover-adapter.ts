import type { CopyMethod } from '../plan/types.js';
import type { Engine } from '../util/db-url.js';
import type { RouterLogin } from './router.js';

/** One preflight result: what, why it matters, how to fix it. A blocker stops `check` (exit 3) and `run`. */
export interface Finding {
  severity: 'blocker' | 'warning' | 'info';
  check: string;
  object?: string;
  /** A waves plan's check: the tenants that made this finding (absent: every tenant checked, or a one-database plan). */
  tenants?: string[];
  message: string;
  why: string;
  fix: string;
}

export interface SyncProgressEvent {
  phase: 'roles' | 'schema' | 'replication' | 'copy' | 'analyze' | 'ready';
  message: string;
  table?: string;
  tablesDone?: number;
  tablesTotal?: number;
  bytesDone?: number;
  bytesTotal?: number;
  /** Rows copied so far (all tables), and those of `table` when this event says it is done. */
  rowsDone?: number;
  tableRows?: number;
  etaMs?: number;
}
export type SyncProgress = (e: SyncProgressEvent) => void;

export interface SyncSummary {
  method: CopyMethod;
  tables: number;
  bytes: number;
  rolesCreated: number;
  durationMs: number;
}

/** Proof that the target has everything the source committed before the fence. */
export interface CatchUpProof {
  /** Write position captured on the source after the fence. */
  fencePosition: string;
  /**
   * How it was proven: a sentinel committed after the fence seen on the target, a copy made while fenced, the
   * target's replica having applied the source's GTID set captured after the fence, or (a replica started from
   * binary log coordinates) having executed the source's binary log up to its position after the fence.
   */
  method: 'sentinel' | 'copy' | 'gtid' | 'binlog';
  proofPosition?: string;
  waitedMs: number;
  rowsCopied?: number;
}

export interface TableCheck {
  table: string;
  source: string;
  target: string;
  match: boolean;
}

export interface VerifyReport {
  mode: 'none' | 'rowcounts' | 'checksums';
  tables: TableCheck[];
  mismatches: TableCheck[];
  durationMs: number;
}

/** A primary-key range of one table: `(lo, hi]`; null means unbounded on that side. Keys in their text form. */
export interface ChunkRange {
  lo: string[] | null;
  hi: string[] | null;
}

/** One chunk hashed on both sides at the same point of the replication stream. */
export interface ChunkCheck extends ChunkRange {
  table: string;
  /** Rows in the chunk on the source. */
  rows: number;
  /** `<rows>:<hash>` on each side. */
  source: string;
  target: string;
  match: boolean;
}

/** Where the online verify of a table stands: the last key checked (null: none yet) and whether it is done. */
export interface ChunkCursor {
  lastKey: string[] | null;
  done: boolean;
}

/** What the orchestrator gives the online verify: chunk size, resume points, and where each result goes. */
export interface OnlineVerifyHooks {
  chunkRows: number;
  /** Where an earlier, interrupted verify left each table (absent: from the start). */
  cursor(table: string): ChunkCursor | undefined;
  /** The tables, with the planner's row estimate, before the first chunk (for progress and ETA). */
  tables(list: Array<{ table: string; estimatedRows: number }>): Promise<void>;
  /** After each chunk; the cursor it returns is recorded so a re-run continues after it. */
  chunk(check: ChunkCheck, cursor: ChunkCursor): Promise<void>;
  /** A consistent point was taken (source snapshot at a position the target then reached): for progress. */
  snapshot?(table: string, position: string, lockedMs: number): void;
}

/**
 * The compare after the switch (plan `verify.after: chunks`): two sessions opened before the hold, each given a
 * snapshot at the point of no return (the fenced source, and the target that holds every commit before the
 * fence), compared chunk by chunk after the clients were released.
 */
export interface SwitchCompare {
  /** Session ids on the source the fence must neither end nor count as leaks. */
  readonly sourceSessions: string[];
  /** Inside the window, at the point of no return: one round trip per side, in parallel. */
  snapshot(): Promise<void>;
  /** After the release: every table of the scope in key chunks, both sides read from their snapshots. */
  compare(hooks: OnlineVerifyHooks): Promise<void>;
  close(): Promise<void>;
}

export interface DetachResult {
  /**
   * The source commit position the target had applied through when replication stopped: a source commit at
   * or before it is on the target, one after it is not (PostgreSQL: the subscription's origin progress).
   */
  appliedThrough?: string;
}

/**
 * One CDC consumer's slot handed over at the switch: the consumer reads the source's slot through every transaction
 * committed at or before `sourceStop`, then the target's slot from `targetStart` on. Nothing a writer committed is
 * in both, nothing is in neither.
 */
export interface CdcSlotHandover {
  slot: string;
  plugin: string;
  /** The last source position that belongs to the source stream (PostgreSQL: an LSN; commits ending after it are the tool's). */
  sourceStop: string;
  /** The target slot's starting point: every target transaction committed after it is decoded. */
  targetStart: string;
  /** The tool's own table: its sentinel rows show up in both streams and carry no application change. */
  toolTable: string;
}

/**
 * A replication stream from one side to the other as the servers show it: the reverse path after a cutover
 * (new primary → old source), or, seen from a revert, the stream the revert proves its catch-up through.
 */
export interface ReverseState {
  /** following: intact; broken: writes on the new primary may no longer reach the old source; absent: never made or ended. */
  state: 'following' | 'broken' | 'absent';
  /** Name of the slot and subscription. */
  name: string;
  /** Bytes of the new primary's WAL (binary log) the old source has not confirmed (applied); null without a slot. */
  lagBytes: number | null;
  /** Where the engine reports it (MySQL/MariaDB Seconds_Behind_Master): seconds the old source's applier is behind. */
  lagSeconds?: number | null;
  why?: string;
  /** How the operator may repair a broken stream, in the engine's terms (absent: none short of a new cutover). */
  fix?: string;
}

/** Replication objects or fences a failed run may leave, with the statement that removes each. */
export interface Leftover {
  where: 'source' | 'target';
  kind: string;
  name: string;
  drop: string;
  /** Keeps WAL from being recycled on the server it is on. */
  retainsWal: boolean;
}

/** The session that holds a plan's lock on the source, as far as the server shows it. */
export interface SourceLockHolder {
  /** Backend pid (PostgreSQL) or connection id (MySQL/MariaDB). */
  session: string;
  /** PostgreSQL: application_name, which a cutover process sets to `cutover pid <pid>@<host>`. */
  application?: string;
  client?: string;
  user?: string;
}

export type SourceLockResult = { acquired: true } | { acquired: false; holder?: SourceLockHolder };

/**
 * What the orchestrator needs from an engine to move one database. It knows nothing of journals, budgets or
 * routers; the orchestrator knows nothing of SQL.
 */
export interface CutoverAdapter {
  readonly engine: Engine;
  /**
   * The plan's persistent decoding slot for the leak check (PostgreSQL, database scope): made by `sync` so the
   * run never waits for running transactions to make one, dropped by cleanup and rollback.
   */
  readonly leakSlot?: string;
  /** Stable identities of source and target (pinned in the journal so a resumed run talks to the same servers). */
  identities(): Promise<{ source: string; target: string }>;
  /**
   * `synced`: the plan's journal holds a finished sync, so the target's copy of the database is the plan's own.
   * `syncing`: a sync follows this preflight (so what it creates need not exist yet).
   */
  preflight(ctx?: { synced?: boolean; syncing?: boolean }): Promise<Finding[]>;
  /** Optional: whether the target will accept the router's logins after the switch (named, never a secret). */
  routerLoginFindings?(logins: readonly RouterLogin[]): Promise<Finding[]>;
  sync(progress: SyncProgress): Promise<SyncSummary>;
  /**
   * The schema of what moves compared between source and target (DDL is not replicated): a blocker per
   * difference, or info findings. `run` calls it at the lag gate and fences nothing on a blocker.
   */
  schemaDrift?(): Promise<Finding[]>;
  /** Bytes the target is behind; null when the method has no replication stream (dump). */
  lagBytes(): Promise<number | null>;
  /**
   * Takes the plan's session-level lock on the source (PostgreSQL advisory lock, MySQL/MariaDB GET_LOCK) on the
   * adapter's own source session, which the fence exempts, without waiting: the exclusion that holds across
   * machines and state dirs. It lasts until unlockSource() or close(); `owner` (pid@host) is shown to other
   * sessions where the engine can.
   */
  lockSource(key: string, owner: string): Promise<SourceLockResult>;
  unlockSource(key: string): Promise<void>;
  /**
   * Rejects unless the adapter's source session still holds the plan's lock taken by lockSource(): a dropped
   * session releases it on the server without the tool noticing, and then another runner may start.
   */
  assertSourceLock(key: string): Promise<void>;
  /** Session ids of the tool's own source sessions, which the fence must not end. */
  ownSourceSessions(): Promise<string[]>;
  /** After the fence: capture the write position and make the target hold everything up to it, by `deadline`. */
  catchUp(deadline: number): Promise<CatchUpProof>;
  copySequences(): Promise<number>;
  verify(deadline: number): Promise<VerifyReport>;
  /**
   * Online, before the hold: every table in primary-key chunks, hashed on both sides at one consistent point of
   * the replication stream, so concurrent writers cause no false mismatch. Absent when the engine has none;
   * `null` when the method has no stream to compare against yet (dump copies while fenced).
   */
  verifyOnline?(hooks: OnlineVerifyHooks): Promise<'done' | null>;
  /**
   * Opens the sessions of the compare after the switch (`verify.after: chunks`), before the hold; absent when
   * the engine has none (its capability `verifyAfterSwitch` says so at plan time).
   */
  openSwitchCompare?(): Promise<SwitchCompare>;
  /** Tables that move and their size on disk (for the cost of a verify inside the window, shown at `check`). */
  movedTablesSize?(): Promise<{ tables: number; bytes: number }>;
  /**
   * Keeps applications from writing to the target until the switch while replication still applies (after
   * sync), and opens it at the lift. Engines whose read-only toggle would also stop or trip over the replica
   * implement these; without them the orchestrator holds the target's database with the read-only toggle.
   */
  holdTarget?(): Promise<void>;
  openTarget?(): Promise<void>;
  /** Stop replication into the target (after the point of no return, before the target opens). */
  detachTarget(): Promise<DetachResult | void>;
  /**
   * Inside the window, after the catch-up proof and before the point of no return: the plan's CDC slots created
   * on the target, each with the source position where its consumer stops. Bounded by `deadline`.
   */
  handOverCdcSlots?(sourceStop: string, deadline: number): Promise<CdcSlotHandover[]>;
  /** A run rolled back before its point of no return: drops the CDC slots it made on the target. Safe to repeat. */
  dropCdcSlots?(): Promise<string[]>;
  /** The plan's CDC slots still on the target (status lists them as leftovers while no run is past its point of no return). */
  cdcTargetLeftovers?(): Promise<Leftover[]>;
  /** How far each CDC slot's consumer has confirmed on the source (null: the slot is gone). */
  cdcSourcePositions?(): Promise<Record<string, string | null>>;
  /**
   * After the lag gate, before the hold: ANALYZE again the tables that changed a lot since sync's ANALYZE.
   * Returns the tables analyzed.
   */
  refreshStatistics?(): Promise<string[]>;
  /**
   * Reverse replication (plan `reverse`, capability reverseReplication). `reverseBegin`: after detachTarget and
   * before the target opens (nothing can write it), fix the stream's start at the switch position (PostgreSQL:
   * publication and slot on the target). `reverseStart`: after the lift, make the old source follow from there;
   * it throws when reverseBegin did not run before the target opened. `reverseState`: how that stream stands.
   * `reverseEnd`: drop it (`cutover finalize`). Each is safe to repeat. `reversePrepare`: before the hold, whatever
   * makes reverseBegin fast and waits on the target (PostgreSQL: a temporary slot whose creation waits for running
   * transactions); reverseBegin works without it.
   */
  reversePrepare?(): Promise<void>;
  /** A run rolled back before its point of no return: drops what reversePrepare made (named in the result). */
  reverseUnprepare?(): Promise<string[]>;
  reverseBegin?(): Promise<void>;
  reverseStart?(): Promise<void>;
  reverseState?(): Promise<ReverseState>;
  reverseEnd?(): Promise<string[]>;
  /**
   * The stream into the target this adapter catches up through, as the servers show it (a revert's session: the
   * reverse path). Revert refuses when it is not `following`.
   */
  streamState?(): Promise<ReverseState>;
  /** Drops the leak check's slot (rollback keeps the subscription for a retry, never a slot that only keeps WAL). */
  dropLeakSlot?(): Promise<boolean>;
  /** Drop what the tool created (publication, slot, sentinel). Safe to repeat. */
  cleanup(): Promise<string[]>;
  leftovers(): Promise<Leftover[]>;
  close(): Promise<void>;
}
