import type { FieldPacket } from 'mysql2/promise';
import type { TenantQueryRequest, TenantQueryResult } from '../../src/engine/dialect.js';
import { UsageError } from '../../src/errors.js';
import { connectMysql, mapMysqlError } from './mysql-connection.js';

const EXAMPLE = "e.g. SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'tenant\\_%'";

/**
 * Runs the plan's tenant query on the source in a read-only transaction (it lists tenants and must not change
 * anything, whatever it says) and returns the values of its one column. Binary columns come back as Buffers
 * and are refused by the caller: names must be text.
 */
export async function queryMysqlTenants({ source, query, timeoutMs }: TenantQueryRequest): Promise<TenantQueryResult> {
  const { conn } = await connectMysql(source);
  try {
    await conn.query('START TRANSACTION READ ONLY');
    const [rows, fields] = (await conn.query({ sql: query, rowsAsArray: true, timeout: timeoutMs })) as unknown as [unknown[][], FieldPacket[]];
    await conn.query('COMMIT');
    if (!Array.isArray(fields) || fields.length !== 1) throw new UsageError(`scope.tenants.query returned ${Array.isArray(fields) ? fields.length : 0} columns; it must return one text column of database names`, EXAMPLE);
    return { values: rows.map((r) => r[0]), notTextHint: `${EXAMPLE}; cast binary names with CONVERT(x USING utf8mb4)` };
  } catch (e) {
    throw mapMysqlError(e, source, 'scope.tenants.query');
  } finally {
    conn.destroy();
  }
}
