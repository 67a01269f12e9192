import { UsageError } from '../../src/errors.js';
import type { FenceTarget, PriorState } from '../../src/readonly/types.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { mapPgError, type PgClient } from './postgres-connection.js';
import { schemaExists } from './postgres-schema-fence.js';

/** The read-only adapter's one connection, shared by its fence strategies, leak watch and status. */
export interface PgReadOnlyContext {
  readonly ep: DbEndpoint;
  readonly client: PgClient;
  /** Runs a query; errors come back mapped (mapPgError), saying what was being done. */
  q<R extends object = Record<string, unknown>>(sql: string, params?: unknown[], doing?: string): Promise<R[]>;
  /** Runs `fn`, mapping its errors the same way. */
  on<T>(doing: string, fn: () => Promise<T>): Promise<T>;
}

export function pgReadOnlyContext(ep: DbEndpoint, client: PgClient): PgReadOnlyContext {
  return {
    ep,
    client,
    async q<R extends object = Record<string, unknown>>(sql: string, params: unknown[] = [], doing?: string): Promise<R[]> {
      try {
        return (await client.query<R>(sql, params)).rows;
      } catch (e) {
        throw mapPgError(e, ep, doing);
      }
    },
    async on<T>(doing: string, fn: () => Promise<T>): Promise<T> {
      try {
        return await fn();
      } catch (e) {
        throw mapPgError(e, ep, doing);
      }
    },
  };
}

/** What `on` changes, so `off` can put back exactly that. */
export interface PgPrior extends PriorState {
  /** The explicit value at the fenced level before the fence (null: none was set). */
  setting: string | null;
  /** strict mode: role → could it log in before the fence. */
  roles: Record<string, boolean>;
}

/** Scopes fenced by the read-only setting (postgres-guc-fence.ts). */
export type PgScope = 'server' | 'database' | 'role';

/** A schema is fenced by triggers instead (postgres-schema-fence.ts). */
export function gucScopeOf(target: FenceTarget): PgScope {
  if (target.scope === 'schema') throw new Error('schema scope is handled by the schema fence');
  if (target.scope !== 'server' && !target.name) {
    throw new UsageError(`${target.scope} scope needs a name`, `set readOnly.name in the plan (or --name <${target.scope}>); the URL's database is used for database scope when it has one`);
  }
  return target.scope;
}

export async function assertTargetExists(c: PgReadOnlyContext, target: FenceTarget): Promise<void> {
  const { ep } = c;
  if (target.scope === 'schema') {
    if (!target.name) throw new UsageError('schema scope needs a name', 'set readOnly.name in the plan (or --name <schema>); the URL names its database');
    if (!(await schemaExists(c.client, target.name)))
      throw new UsageError(`schema "${target.name}" does not exist in database "${ep.database ?? '?'}" on ${ep.host}:${ep.port}`, 'check readOnly.name in the plan (or --name) and the database in the URL');
  } else if (target.scope === 'database') {
    const rows = await c.q(`SELECT 1 FROM pg_database WHERE datname = $1`, [target.name]);
    if (rows.length === 0) throw new UsageError(`database "${target.name}" does not exist on ${ep.host}:${ep.port}`, 'check readOnly.name in the plan (or --name)');
  } else if (target.scope === 'role') {
    const rows = await c.q(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [target.name]);
    if (rows.length === 0) throw new UsageError(`role "${target.name}" does not exist on ${ep.host}:${ep.port}`, 'check readOnly.name in the plan (or --name)');
  }
}
