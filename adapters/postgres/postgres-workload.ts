import pg from 'pg';
import { ClientWorkload, WORKLOAD_TABLE, type ClientWorkloadOptions } from '../../src/sandbox/workload.js';

export interface WorkloadOptions extends ClientWorkloadOptions {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

/** The table the workload writes to; (client, seq) identifies each write. */
export function workloadTableSql(table = WORKLOAD_TABLE): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (id bigserial PRIMARY KEY, client int NOT NULL, seq int NOT NULL, at timestamptz NOT NULL DEFAULT now(), UNIQUE (client, seq))`;
}

/** The PostgreSQL workload. */
export class Workload extends ClientWorkload<pg.Client> {
  constructor(private readonly opts: WorkloadOptions) {
    super(opts);
  }

  protected async connect(): Promise<pg.Client> {
    const c = new pg.Client({
      host: this.opts.host,
      port: this.opts.port,
      user: this.opts.user,
      password: this.opts.password,
      database: this.opts.database,
      application_name: 'cutover-workload',
      connectionTimeoutMillis: 30_000,
    });
    c.on('error', () => {});
    await c.connect();
    return c;
  }

  protected async execute(conn: pg.Client, kind: 'write' | 'read', table: string, client: number, seq: number): Promise<void> {
    if (kind === 'write') await conn.query(`INSERT INTO ${table} (client, seq) VALUES ($1, $2)`, [client, seq]);
    else await conn.query(`SELECT count(*) FROM ${table}`);
  }

  protected outcome(e: unknown): { outcome: 'fail' | 'unknown'; error: string } {
    const err = e as { code?: string; message?: string };
    // A SQLSTATE means the server refused the statement; a dropped connection leaves a write in doubt.
    const sqlstate = err.code !== undefined && /^[0-9A-Z]{5}$/.test(err.code);
    return { outcome: sqlstate ? 'fail' : 'unknown', error: err.code ? `${err.code} ${err.message ?? ''}`.trim() : (err.message ?? String(e)) };
  }

  protected async close(conn: pg.Client): Promise<void> {
    await conn.end().catch(() => {});
  }
}
