import type { ReadOnlyMode, ReadOnlyScope, TerminatePolicy } from '../readonly/types.js';
import type { Engine } from '../util/db-url.js';

/** A server named by the plan. Never holds a password: see resolvePlanSecrets(). */
export interface PlanEndpoint {
  /** The URL as written, with any password removed. */
  url: string;
  /** Environment variable that holds the password. */
  passwordEnv?: string;
  host: string;
  port: number;
  user: string;
  database?: string;
  /**
   * source only: the account the target's replication link logs in with. Absent: the tool creates a short-lived
   * one per plan with a random password (never the admin account: its password would be stored on the target).
   */
  replication?: { user: string; passwordEnv: string };
}

export type PlanScope =
  | { kind: 'databases'; names: string[] }
  | { kind: 'schemas'; names: string[] }
  /**
   * Tenants move one at a time with `cutover waves`: databases, or (with `database`, PostgreSQL) schemas of that
   * one database. `query` (run on the source) lists them at run time.
   */
  | { kind: 'tenants'; names: string[]; query?: string; database?: string };

/** How the data reaches the target: logical replication kept in sync until the switch, or a dump taken inside the window. */
export type CopyMethod = 'replication' | 'dump';
/** What `verify` checks inside the write-blocked window (grows with the data: only when the plan asks). */
export type VerifyMode = 'none' | 'rowcounts' | 'checksums';
/** The online verify before the hold: primary-key chunks hashed on both sides at one replication point. */
export interface PlanVerifyBefore {
  mode: 'chunks' | 'none';
  /** Rows per chunk (bounds each hash query and the memory it needs). */
  chunkRows: number;
}

/** The compare after the switch: the frozen old source against the target as of the switch, after the release. */
export type VerifyAfterMode = 'none' | 'chunks';

export interface PlanReadOnly {
  scope: ReadOnlyScope;
  /** Database / role / schema name; absent means "derive from scope". */
  name?: string;
  mode: ReadOnlyMode;
  drainTimeoutMs: number;
  lockTimeoutMs: number;
  terminate: TerminatePolicy;
  /** strict mode: roles that may not log in while fenced. */
  roles: string[];
}

export interface PlanLimits {
  /** Fence to lift: the write-downtime budget. */
  maxWriteBlockedMs: number;
  /** Replication lag the fence may start under. */
  maxLagBeforeFenceBytes: number;
}

export type RouterKind = 'none' | 'pgbouncer' | 'haproxy' | 'file' | 'exec';

export type RouterConfig =
  | { kind: 'none' }
  | {
      kind: 'pgbouncer';
      /** Admin console URL, password removed. */
      admin: string;
      adminPasswordEnv?: string;
      /** Absolute path of pgbouncer.ini. */
      ini: string;
      /** The `[databases]` entry the applications connect through. */
      database: string;
    }
  | { kind: 'haproxy'; socket: string; backend: string; server: string }
  | {
      kind: 'file';
      path: string;
      format: 'json' | 'env';
      /** Waves: the file is a JSON map of tenant → endpoint and this router writes only this tenant's entry. */
      tenant?: string;
    }
  | {
      kind: 'exec';
      /** Waves: the tenant the command switches, passed as CUTOVER_TENANT. */
      tenant?: string;
      /** argv; no shell unless the user wrote one (e.g. ["sh", "-c", "..."]). */
      command: string[];
      hold?: string[];
      release?: string[];
      timeoutMs: number;
    };

export interface PlanHooks {
  beforeFence?: string[];
  afterSwitch?: string[];
}

/** Run on the target's copy of a tenant after verify, before the tenant opens: a SQL file or a command. */
export type PlanTransform = { kind: 'sql'; file: string } | { kind: 'command'; command: string[] };

/** How `cutover waves` moves the tenants of `scope.tenants`: each one is its own short cutover. */
export interface PlanWaves {
  /** Tenants cut over at the same time. */
  concurrency: number;
  /** listed: as scope.tenants (or the query) gives them; name: sorted by name. */
  order: 'listed' | 'name';
  /** Each tenant's write-downtime budget (replaces limits.maxWriteBlocked per tenant). */
  maxWriteBlockedPerTenantMs: number;
  /** Stop starting tenants after this many failed; absent: go on to the end. */
  stopAfterFailures?: number;
  transform?: PlanTransform;
}

/**
 * PostgreSQL: passwords of login roles sync creates on the target, each named by the variable that holds it
 * (`roles: { passwordEnv: { app: APP_PASSWORD } }`). A managed admin cannot read the source's password hashes;
 * without this the roles are created without a password and `check` lists them.
 */
export interface PlanRoles {
  passwordEnv: Record<string, string>;
}

/** MySQL/MariaDB: what sync does with the moved database's accounts (create the missing, only check, or nothing). */
export type PlanAccounts = 'copy' | 'check' | 'skip';
/**
 * What happens to a table without a primary key or replica identity under logical replication: `block` (a `check`
 * blocker), `full` (sync sets REPLICA IDENTITY FULL on the source, cleanup restores it), `dump` (left out of
 * replication and copied inside the write-blocked window).
 */
export type KeylessChoice = 'block' | 'full' | 'dump';

export interface PlanTables {
  /** `default` for every keyless table; `tables` by `schema.table` as PostgreSQL quotes it. */
  keyless: { default: KeylessChoice; tables: Record<string, KeylessChoice> };
}

export interface Plan {
  /** Absolute path of the plan file. */
  file: string;
  engine: Engine;
  source: PlanEndpoint;
  target: PlanEndpoint;
  scope: PlanScope;
  method: CopyMethod;
  readOnly: PlanReadOnly;
  limits: PlanLimits;
  /** In the window (`verify.inWindow`). */
  verify: VerifyMode;
  verifyBefore: PlanVerifyBefore;
  /** `verify.after`: none (default) or chunks (never blocks clients; reported in the run's result). */
  verifyAfter: VerifyAfterMode;
  sequences: { gap: number };
  router: RouterConfig;
  hooks: PlanHooks;
  /** MySQL/MariaDB only (PostgreSQL's sync always creates missing roles). */
  accounts: PlanAccounts;
  /** PostgreSQL: passwords for the login roles sync creates, by variable name. */
  roles?: PlanRoles;
  /**
   * How each step is done on servers without a superuser (managed services): `auto` detects it per server from
   * the account's own privileges, `superuser` and `managed` force a profile. Never changes whether a step is safe.
   */
  privileges?: 'auto' | 'superuser' | 'managed';
  /** Absent: every table without a key blocks (PostgreSQL, method replication). */
  tables?: PlanTables;
  /** The initial copy of method replication (PostgreSQL; MariaDB to MariaDB, MySQL to MySQL 8.0+): workers and split threshold. */
  copy?: PlanCopy;
  /** CDC consumers' logical slots handed over to the target at the switch (PostgreSQL, one database). */
  cdc?: PlanCdc;
  /** Set (with defaults) exactly when scope.kind is tenants. */
  waves?: PlanWaves;
  /** A tenant's plan (tenantPlan): the waves plan it belongs to, whose tenants may share one replication stream. */
  wave?: { planId: string };
  /**
   * After the point of no return the old source follows the new primary (PostgreSQL: a subscription from a slot
   * made at the switch), so `cutover revert` can go back; `cutover finalize` ends it.
   */
  reverse: boolean;
  /** Absolute journal/lock directory (with a control database: local files only, e.g. test hooks, readonly fence records). */
  stateDir: string;
  /** `state: postgres://...`: journals, locks and waves in a PostgreSQL control database the runners share. */
  stateDb?: PlanStateDb;
  /** Accepted but risky choices (e.g. a password inside a URL). */
  warnings: string[];
}

/**
 * Logical slots on the source that CDC consumers (Debezium, an outbox relay) read: the run creates each again on the
 * target inside the window and records where the consumer stops reading the source.
 */
export interface PlanCdc {
  slots: string[];
  /** The target slots' output plugin; absent: each source slot's own. */
  plugin?: string;
}

export interface PlanStateDb {
  /** Without a password (a password in the plan's URL is kept beside it, see resolvePlanSecrets). */
  url: string;
  passwordEnv?: string;
}

export interface PlanCopy {
  /** Copy workers and index-build jobs; absent: one more than the cores (2 to 8). */
  jobs?: number;
  /**
   * Tables bigger than this are copied as several ranges side by side (PostgreSQL: pages; MariaDB: integer key).
   * Absent: 256MB, and PostgreSQL splits no more than the cores the copy's streams share allow (see copyStreamsPerTable).
   */
  splitAboveBytes?: number;
}
