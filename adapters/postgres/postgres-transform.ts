import type { SqlTransformRequest, TransformCommandConnection, TransformCommandRequest } from '../../src/engine/dialect.js';
import { OperationError } from '../../src/errors.js';
import { connectPg, mapPgError } from './postgres-connection.js';
import { WRITABLE_GUC } from './postgres-schema-fence.js';
import { quoteIdent } from './postgres-sql.js';

/** Runs a transform file on the target's copy of one tenant as one transaction: all or nothing. */
export async function runPostgresSqlTransform({ target, database, schema, sql, timeoutMs, doing }: SqlTransformRequest): Promise<void> {
  const c = await connectPg(target, { database, applicationName: 'cutover-transform' });
  try {
    await c.query(`SET default_transaction_read_only = off`);
    await c.query(`SET ${WRITABLE_GUC} = on`);
    // A schema tenant's transform is written once for all tenants: unqualified names are the tenant's.
    if (schema !== undefined) await c.query(`SET search_path TO ${quoteIdent(schema)}, public`);
    await c.query(`SET statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
    // One simple-protocol query: PostgreSQL runs all its statements in one implicit transaction.
    await c.query(sql);
  } catch (e) {
    const err = mapPgError(e, target, doing);
    throw new OperationError(err.message, 'the transform was rolled back and the tenant stays on its source; fix it and run `cutover waves` again', { cause: e });
  } finally {
    await c.end().catch(() => {});
  }
}

/** libpq's variables for a transform command (psql and the rest read them), the password included: env, never argv. */
export async function postgresTransformConnection({ target, database }: TransformCommandRequest): Promise<TransformCommandConnection> {
  return {
    env: {
      PGHOST: target.host,
      PGPORT: String(target.port),
      PGUSER: target.user,
      PGDATABASE: database,
      PGPASSWORD: target.password,
      // The copy is held read-only for applications until the switch (a database's read-only default or a
      // schema's hold trigger); the transform must write to it.
      PGOPTIONS: `-c default_transaction_read_only=off -c ${WRITABLE_GUC}=on`,
    },
    dispose: async () => {},
  };
}
