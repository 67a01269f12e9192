import { PostgresReadOnlyAdapter } from '../../adapters/postgres/postgres-readonly.js';
import { UsageError } from '../errors.js';
import type { DbEndpoint } from '../util/db-url.js';
import type { ReadOnlyAdapter } from './types.js';

/** The one place that maps an engine to its read-only adapter. */
export async function connectReadOnlyAdapter(ep: DbEndpoint, lockTimeoutMs: number): Promise<ReadOnlyAdapter> {
  switch (ep.engine) {
    case 'postgres':
      return PostgresReadOnlyAdapter.connect(ep, lockTimeoutMs);
    case 'mysql':
    case 'mariadb':
      throw new UsageError(`${ep.engine} is not supported yet`, 'use a postgres:// URL');
  }
}
