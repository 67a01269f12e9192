import { UsageError } from '../../src/errors.js';
import type { FenceTarget, PriorState } from '../../src/readonly/types.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { mappedQuery, type MysqlConnection } from './mysql-connection.js';
import { flavorLabel, type MysqlFlavor } from './mysql-flavor.js';
import type { ManagedFencePrior } from './mysql-managed-fence.js';
import type { StillWriting, SchemaFencePrior } from './mysql-schema-fence.js';
import type { Query } from './mysql-sessions.js';
import type { Account, ServerReadOnlyState } from './mysql-sql.js';

/** The read-only adapter's one connection, shared by its fence strategies, leak watch and status. */
export interface MysqlReadOnlyContext {
  readonly ep: DbEndpoint;
  readonly conn: MysqlConnection;
  readonly flavor: MysqlFlavor;
  /** Runs a query; errors come back mapped (mapMysqlError), saying what was being done. */
  readonly q: Query;
  /** host:port, for messages. */
  readonly where: string;
}

export function mysqlReadOnlyContext(ep: DbEndpoint, conn: MysqlConnection, flavor: MysqlFlavor): MysqlReadOnlyContext {
  return { ep, conn, flavor, q: mappedQuery(conn, ep), where: `${ep.host}:${ep.port}` };
}

/** What `on` changes, so `off` can put back exactly that. */
export interface MysqlPrior extends PriorState {
  flavor: 'mysql' | 'mariadb';
  server?: ServerReadOnlyState;
  /** schema scope: READ ONLY before the fence. */
  schemaReadOnly?: boolean;
  /** strict mode: `user@host` → the account, whether it was locked before the fence, and whether it bypasses read_only (lockBypass). */
  roles: Record<string, Account & { locked: boolean; bypass?: boolean }>;
  /** schema scope without ALTER SCHEMA READ ONLY: the write grants revoked from each --role account. */
  schemaGrants?: SchemaFencePrior;
  /** ... and the named accounts the revoke cannot stop (global, wildcard or role grants). */
  stillWriting?: StillWriting[];
  /** server scope, managed profile (no right to set read_only): the accounts locked and the grants revoked. */
  managed?: ManagedFencePrior;
}

/**
 * How a target is fenced: `server` read_only (mysql-server-fence.ts), `schema` READ ONLY where the server has
 * it (mysql-schema-readonly.ts), and `schema-grants` on servers without it, by revoking write privileges
 * (mysql-schema-fence.ts).
 */
export type MysqlScope = 'server' | 'schema' | 'schema-grants';

/** `database` is a synonym of `schema` here; per-account read-only does not exist. */
export function mysqlScopeOf(flavor: MysqlFlavor, target: FenceTarget): MysqlScope {
  if (target.scope === 'server') return 'server';
  if (target.scope === 'role') {
    throw new UsageError(
      `${flavorLabel(flavor)} has no per-account read-only setting`,
      'fence server scope in mode strict with that account in the roles (readOnly in the plan, or --scope server --mode strict --role <account>) to keep it out while the server is read-only',
    );
  }
  if (!target.name) throw new UsageError(`${target.scope} scope needs a name`, 'set readOnly.name in the plan (or --name <schema>), or put the database in the URL');
  return flavor.schemaReadOnly ? 'schema' : 'schema-grants';
}
