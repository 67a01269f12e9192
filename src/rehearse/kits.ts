import { dialectFor, engineCapabilities, ENGINES } from '../../adapters/registry.js';
import { UsageError } from '../errors.js';
import type { Engine } from '../util/db-url.js';
import type { RehearsalKit } from './rehearsal-kit.js';

/** The engines `cutover rehearse --engine` can start sandboxes for. */
export const REHEARSAL_ENGINES: readonly Engine[] = ENGINES.filter((e) => engineCapabilities(e).rehearsal !== undefined);

/** The rehearsal kit of an engine, loaded when asked for: a PostgreSQL rehearsal never loads mysql2. */
export async function rehearsalKitFor(engine: Engine): Promise<RehearsalKit> {
  const kit = (await dialectFor(engine)).rehearsalKit;
  if (!kit) throw new UsageError(`rehearse has no sandboxes for ${engine}`, `use --engine ${REHEARSAL_ENGINES.join(' or ')}`);
  return kit();
}
