import type { LeakWatcher } from '../readonly/readonly.js';
import type { FenceOnResult, ScopeStatus } from '../readonly/types.js';

/** What the run tells the source fence at the moment it goes on. */
export interface FenceRequest {
  /** Sessions the fence must neither end nor count as leaks: the tool's own, and those of its leak watch. */
  exemptSessions: string[];
  /** A router holds new connections, so the fence may end the clients' sessions before it fences. */
  clientsHeld: boolean;
  /** own: the fence probes for leaks itself; watcher: a LeakWatcher opened by `watchLeaks` checks instead. */
  leakCheck: 'own' | 'watcher';
  /** Settles when the fence may change the server (the run's journal record of the fence is on disk). */
  ready?: Promise<unknown>;
}

/**
 * The plan's read-only fence on the source (plan.readOnly), bound to the session's server and state dir, so the
 * orchestrator fences without knowing URLs, passwords or engines.
 */
export interface SourceFence {
  /** Whether `watchLeaks` can give a watch for this engine and scope (known before connecting). */
  readonly canWatchLeaks: boolean;
  /**
   * Connects ahead of `on` (before the hold), so the fence pays no login inside the window. Optional to call;
   * `on` uses and then closes the prepared connection, or opens its own.
   */
  prepare?(): Promise<void>;
  /** Ends a prepared connection that was not used (the run stopped before the fence). */
  close?(): Promise<void>;
  /** Fences and proves it holds. Throws FenceLeakError (the fence stays on) when the fence's own probe saw a write. */
  on(request: FenceRequest): Promise<FenceOnResult>;
  /** Puts back exactly what `on` recorded; a no-op when the source is writable. */
  off(): Promise<void>;
  /** The fenced scope as the server and the state dir show it. */
  status(): Promise<ScopeStatus | undefined>;
  /**
   * A leak watch on its own connections, opened before the hold (its decoding slot must exist before the fence);
   * undefined when the engine cannot watch that way.
   */
  watchLeaks(exemptSessions: string[]): Promise<LeakWatcher | undefined>;
}

/** Keeps applications from writing to the target between sync and the switch; replication still applies. */
export interface TargetHold {
  /** Connects ahead of `off` (before the hold), as SourceFence.prepare. */
  prepare?(): Promise<void>;
  close?(): Promise<void>;
  on(): Promise<void>;
  off(): Promise<void>;
}
