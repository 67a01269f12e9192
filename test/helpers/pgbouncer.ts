import { findPgBouncer } from '../../adapters/routers/pgbouncer-sandbox.js';
import { missing } from './availability.js';

export const pgbouncerMissing = await missing('PgBouncer', () => findPgBouncer());

export { PgBouncerSandbox } from '../../adapters/routers/pgbouncer-sandbox.js';
