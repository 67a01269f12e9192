import type { ReadOnlyMode, ReadOnlyScope, TerminatePolicy } from '../readonly/types.js';
import type { Engine } from '../util/db-url.js';
import type { KeylessChoice, PlanAccounts, CopyMethod, VerifyMode } from './types.js';

/**
 * A plan as written in a plan file, as an object: what `parsePlan` takes instead of YAML text. The parser
 * validates it and fills in the defaults exactly as for a file. Durations and sizes take the file's forms
 * (`5s`, `250ms`, `1MB`); passwords are never here, only the names of the variables that hold them.
 */
export interface PlanDocument {
  engine?: Engine;
  source: PlanDocumentEndpoint & { replication?: { user: string; passwordEnv: string } };
  target: PlanDocumentEndpoint;
  scope?: { databases: string[] } | { schemas: string[] } | { tenants: string[] | { query: string; database?: string } | { schemas: string[]; database: string } };
  method?: CopyMethod;
  readOnly?: { scope?: ReadOnlyScope; name?: string; mode?: ReadOnlyMode; drainTimeout?: PlanDuration; lockTimeout?: PlanDuration; terminate?: TerminatePolicy; roles?: string[] };
  limits?: { maxWriteBlocked?: PlanDuration; maxLagBeforeFence?: string | number };
  verify?: VerifyMode | { before?: 'chunks' | 'none'; inWindow?: VerifyMode; chunkRows?: number };
  sequences?: { gap?: number };
  router?: PlanDocumentRouter;
  hooks?: { beforeFence?: PlanCommand; afterSwitch?: PlanCommand };
  /** The journal/lock directory. */
  /** A directory, or a PostgreSQL control database (URL, or { url, passwordEnv, dir }). */
  state?: string | { url: string; passwordEnv?: string; dir?: string };
  waves?: { concurrency?: number; order?: 'listed' | 'name'; maxWriteBlockedPerTenant?: PlanDuration; stopAfterFailures?: number; transform?: { sql: string } | { command: PlanCommand } };
  accounts?: PlanAccounts;
  tables?: { keyless?: KeylessChoice | Record<string, KeylessChoice> };
  /** The old source follows the new primary after the switch, for `cutover revert` (default on where supported). */
  reverse?: boolean;
}

export interface PlanDocumentEndpoint {
  url: string;
  passwordEnv?: string;
}

export type PlanDocumentRouter =
  | { kind: 'none' }
  | { kind: 'pgbouncer'; admin: string; adminPasswordEnv?: string; ini: string; database?: string }
  | { kind: 'haproxy'; socket: string; backend: string; server: string }
  | { kind: 'file'; path: string; format?: 'json' | 'env' }
  | { kind: 'exec'; command: PlanCommand; hold?: PlanCommand; release?: PlanCommand; timeout?: PlanDuration };

/** `5s`, `250ms`, or a number of seconds, as in a plan file. */
export type PlanDuration = string | number;
/** A program path (no splitting, no shell) or an argv list. */
export type PlanCommand = string | string[];
