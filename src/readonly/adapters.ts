import { PostgresReadOnlyAdapter } from '../../adapters/postgres/postgres-readonly.js';
import type { DbEndpoint, Engine } from '../util/db-url.js';
import type { ReadOnlyAdapter, ReadOnlyScope } from './types.js';

/** The one place that maps an engine to its read-only adapter. */
export async function connectReadOnlyAdapter(ep: DbEndpoint, lockTimeoutMs: number): Promise<ReadOnlyAdapter> {
  switch (ep.engine) {
    case 'postgres':
      return PostgresReadOnlyAdapter.connect(ep, lockTimeoutMs);
    case 'mysql':
    case 'mariadb': {
      // Loaded on demand so PostgreSQL-only use never loads the MySQL driver.
      const { MysqlReadOnlyAdapter } = await import('../../adapters/mysql/mysql-readonly.js');
      return MysqlReadOnlyAdapter.connect(ep, lockTimeoutMs);
    }
  }
}

/**
 * Whether the cutover can overlap the fence's leak check with its catch-up (ReadOnlyAdapter.watchLeaks),
 * known before connecting. MySQL/MariaDB: a database fence's check looks at that database's tables and binary
 * log events, which the tool's own dump does not touch; a server fence's check compares the server's write
 * position from the fence to the point of no return, and the cutover writes nothing to the source meanwhile.
 * Role scope does not exist there.
 */
export function canWatchLeaks(engine: Engine, scope: ReadOnlyScope): boolean {
  return engine === 'postgres' || scope !== 'role';
}
