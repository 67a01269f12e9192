import type { RehearsalKit } from './rehearsal-kit.js';

/** The rehearsal kit of an engine, loaded when asked for: a PostgreSQL rehearsal never loads mysql2. */
export async function rehearsalKitFor(engine: RehearsalKit['engine']): Promise<RehearsalKit> {
  switch (engine) {
    case 'postgres':
      return (await import('../../adapters/postgres/postgres-rehearsal.js')).postgresKit;
    case 'mariadb':
      return (await import('../../adapters/mysql/mariadb-rehearsal.js')).mariadbKit;
  }
}
