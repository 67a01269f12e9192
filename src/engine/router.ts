import type { Finding } from './cutover-adapter.js';

/** Where applications should send their queries. */
export interface Endpoint {
  host: string;
  port: number;
  database?: string;
}

/** A preflight observation about the router (same shape as the engine's preflight findings). */
export interface RouterFinding {
  severity: Finding['severity'];
  object: string;
  why: string;
  fix: string;
}

/**
 * A login the router makes to the database server for its clients, and the secret it presents where the router
 * keeps one (a PgBouncer userlist: a plain password or a SCRAM secret). Never printed.
 */
export interface RouterLogin {
  user: string;
  secret?: string;
}

/**
 * Moves application traffic between servers. The orchestrator calls hold → pointTo → release, and calls
 * release on every path (errors and signals too), so release must be idempotent.
 */
export interface Router {
  readonly kind: 'pgbouncer' | 'haproxy' | 'file' | 'exec' | 'none';
  /** Optional: opens ahead (before the write-blocked window) what `hold` needs, so the hold pays no login. */
  prepareHold?(): Promise<void>;
  /** New queries wait instead of failing. Throws OperationError (with the router released) if it cannot hold within `timeoutMs`. */
  hold(timeoutMs: number): Promise<void>;
  /** Sends traffic to `endpoint` from now on; verified where the router can tell. */
  pointTo(endpoint: Endpoint): Promise<void>;
  /** Lets waiting queries through. Safe to call when not held. */
  release(): Promise<void>;
  /**
   * pointTo + release as one step, for routers where a client acting between the two does harm (PgBouncer:
   * a client logging in between RELOAD and RESUME gets its pool refused for server_login_retry).
   */
  switchTo?(endpoint: Endpoint): Promise<void>;
  /**
   * Optional: does ahead, while the engine detaches the target, the part of the switch that nothing sees yet
   * (PgBouncer: the new ini written and fsynced under a temporary name), so switchTo pays only its visible part.
   * switchTo uses it when called for the same endpoint; release and close drop what it left. An error surfaces
   * from switchTo.
   */
  prepareSwitch?(endpoint: Endpoint): Promise<void>;
  /** Where traffic goes now, as far as the router can tell. */
  current(): Promise<Endpoint | undefined>;
  /** One line for logs and reports, no secrets. */
  describe(): string;
  /** Settings that would make a hold unsafe or impossible. */
  preflight(): Promise<RouterFinding[]>;
  /** Optional: the logins it makes to the server for the moved database, so the engine can tell whether the other server accepts them. */
  serverLogins?(): Promise<RouterLogin[]>;
  /** Frees connections the router keeps. */
  close(): Promise<void>;
}

/** Points the router at `endpoint` and releases held clients, in one step where the router can. */
export async function switchRouter(router: Router, endpoint: Endpoint): Promise<void> {
  if (router.switchTo) return router.switchTo(endpoint);
  await router.pointTo(endpoint);
  await router.release();
}
