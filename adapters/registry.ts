import type { Dialect, EngineCapabilities } from '../src/engine/dialect.js';
import type { StateStore } from '../src/engine/state-store.js';
import { parseDbUrl, type Engine } from '../src/util/db-url.js';
import { mysqlCapabilities } from './mysql/mysql-capabilities.js';
import { POSTGRES_CAPABILITIES } from './postgres/postgres-capabilities.js';

interface DialectEntry {
  /** Known without loading anything: the plan parser is synchronous. */
  capabilities: EngineCapabilities;
  /** Imports the dialect, and with it the engine's driver. */
  load(): Promise<Dialect>;
}

/** One line per engine. A dialect loads on first use only: a PostgreSQL plan never loads mysql2. */
const DIALECTS: Record<Engine, DialectEntry> = {
  postgres: { capabilities: POSTGRES_CAPABILITIES, load: async () => (await import('./postgres/postgres-dialect.js')).postgresDialect },
  mysql: { capabilities: mysqlCapabilities('mysql'), load: async () => (await import('./mysql/mysql-dialect.js')).mysqlDialect('mysql') },
  mariadb: { capabilities: mysqlCapabilities('mariadb'), load: async () => (await import('./mysql/mysql-dialect.js')).mysqlDialect('mariadb') },
};

/** The engines a plan may name, in the order its error messages list them. */
export const ENGINES = Object.keys(DIALECTS) as readonly Engine[];

/** The engine of a plan that names none and whose source URL does not say. */
export const DEFAULT_ENGINE: Engine = 'postgres';

export function isEngine(name: string): name is Engine {
  return Object.hasOwn(DIALECTS, name);
}

/** An engine's capabilities, synchronously and without loading its driver. */
export function engineCapabilities(engine: Engine): EngineCapabilities {
  return DIALECTS[engine].capabilities;
}

/** The engine's dialect; Node's module cache makes every call after the first cheap. */
export async function dialectFor(engine: Engine): Promise<Dialect> {
  return DIALECTS[engine].load();
}

/**
 * The control database of `state: postgres://...` (journals, locks, shared waves). PostgreSQL whatever the plan's
 * engine: loads the pg driver only for plans that name one.
 */
export async function openStateStore(db: { url: string; password?: string }): Promise<StateStore> {
  const { PostgresStateStore } = await import('./postgres/postgres-state-store.js');
  return PostgresStateStore.open(parseDbUrl(db.url, db.password !== undefined ? { password: db.password } : {}));
}
