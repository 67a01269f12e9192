import { PostgresReadOnlyAdapter } from '../../adapters/postgres/postgres-readonly.js';
import type { DbEndpoint, Engine } from '../util/db-url.js';
import type { ReadOnlyAdapter } from './types.js';

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

/** Whether the engine's adapter implements ReadOnlyAdapter.watchLeaks (known before connecting). */
export function canWatchLeaks(engine: Engine): boolean {
  return engine === 'postgres';
}
