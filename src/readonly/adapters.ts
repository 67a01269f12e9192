import { dialectFor, engineCapabilities } from '../../adapters/registry.js';
import type { DbEndpoint, Engine } from '../util/db-url.js';
import type { ReadOnlyAdapter, ReadOnlyScope } from './types.js';

/** The read-only adapter of the URL's engine; only that engine's driver loads. */
export async function connectReadOnlyAdapter(ep: DbEndpoint, lockTimeoutMs: number): Promise<ReadOnlyAdapter> {
  return (await dialectFor(ep.engine)).connectReadOnly(ep, lockTimeoutMs);
}

/**
 * Whether the cutover can overlap the fence's leak check with its catch-up (ReadOnlyAdapter.watchLeaks),
 * known before connecting: the engine says for which fence scopes its check cannot see the catch-up's own work.
 */
export function canWatchLeaks(engine: Engine, scope: ReadOnlyScope): boolean {
  return engineCapabilities(engine).leakWatchScopes.includes(scope);
}

/** The fence scope when none is given: the engine's default (the first it has), a database one only when the URL names the database. */
export function defaultReadOnlyScope(engine: Engine, database: string | undefined): ReadOnlyScope {
  return engineCapabilities(engine).readOnlyScopes[0] === 'database' && database ? 'database' : 'server';
}
