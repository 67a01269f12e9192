import { findPgBouncer } from '../../src/sandbox/pgbouncer-sandbox.js';
import { missing } from './availability.js';

export const pgbouncerMissing = await missing('PgBouncer', () => findPgBouncer());

export { PgBouncerSandbox } from '../../src/sandbox/pgbouncer-sandbox.js';
