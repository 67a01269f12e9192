import mysql from 'mysql2/promise';
import { ClientWorkload, WORKLOAD_TABLE, type ClientWorkloadOptions } from '../../src/sandbox/workload.js';

export interface MysqlWorkloadOptions extends ClientWorkloadOptions {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

/** The table the workload writes to; (client, seq) identifies each write. */
export function mysqlWorkloadTableSql(table = WORKLOAD_TABLE): string {
  return `CREATE TABLE IF NOT EXISTS \`${table}\` (id bigint AUTO_INCREMENT PRIMARY KEY, client int NOT NULL, seq int NOT NULL, at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), UNIQUE KEY client_seq (client, seq)) ENGINE=InnoDB`;
}

/**
 * The MySQL twin of Workload: writers insert numbered rows on persistent connections and record each
 * acknowledged one. A server error (e.g. 1290 read-only) is a refusal; a connection lost mid-statement (HAProxy
 * `shutdown sessions`) leaves the write in doubt. Either way the client reconnects, as a failover-aware pool
 * would, and the new connection waits in HAProxy's queue while the router holds.
 */
export class MysqlWorkload extends ClientWorkload<mysql.Connection> {
  constructor(private readonly opts: MysqlWorkloadOptions) {
    super(opts);
  }

  protected async connect(): Promise<mysql.Connection> {
    const c = await mysql.createConnection({
      host: this.opts.host,
      port: this.opts.port,
      user: this.opts.user,
      ...(this.opts.password !== undefined ? { password: this.opts.password } : {}),
      database: this.opts.database,
      // Long enough to wait out a hold in HAProxy's queue.
      connectTimeout: 30_000,
    });
    c.on('error', () => {});
    return c;
  }

  protected async execute(conn: mysql.Connection, kind: 'write' | 'read', table: string, client: number, seq: number): Promise<void> {
    if (kind === 'write') await conn.query(`INSERT INTO \`${table}\` (client, seq) VALUES (?, ?)`, [client, seq]);
    else await conn.query(`SELECT COUNT(*) FROM \`${table}\``);
  }

  protected outcome(e: unknown): { outcome: 'fail' | 'unknown'; error: string } {
    const err = e as { errno?: number; code?: string; message?: string; fatal?: boolean };
    // A server error: refused. Lost mid-statement (fatal): in doubt.
    return { outcome: err.errno !== undefined && !err.fatal ? 'fail' : 'unknown', error: `${err.code ?? ''} ${err.message ?? String(e)}`.trim() };
  }

  protected async close(conn: mysql.Connection, clean: boolean): Promise<void> {
    if (clean) await conn.end().catch(() => conn.destroy());
    else conn.destroy();
  }
}
