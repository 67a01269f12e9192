import { PostgresReadOnlyAdapter } from '../../adapters/postgres/postgres-readonly.js';
import type { DbEndpoint } from '../util/db-url.js';
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
