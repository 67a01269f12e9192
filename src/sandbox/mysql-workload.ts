import mysql from 'mysql2/promise';
import { summarize, WORKLOAD_TABLE, type WorkloadOp, type WorkloadResult } from './workload.js';

export interface MysqlWorkloadOptions {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  writers: number;
  readers?: number;
  /** Pause between operations of one client. */
  thinkMs?: number;
  table?: string;
  /**
   * Open a connection for each operation (PHP-style) instead of keeping one: behind an HAProxy hold such
   * clients only ever wait in the queue, while persistent ones see their connection dropped once.
   */
  connectionPerOperation?: boolean;
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
export class MysqlWorkload {
  private stopping = false;
  private readonly ops: WorkloadOp[] = [];
  private readonly t0 = Date.now();
  private readonly loops: Promise<void>[] = [];

  constructor(private readonly opts: MysqlWorkloadOptions) {}

  start(): this {
    const table = this.opts.table ?? WORKLOAD_TABLE;
    for (let i = 0; i < this.opts.writers; i++) this.loops.push(this.loop(i, 'write', table));
    for (let i = 0; i < (this.opts.readers ?? 0); i++) this.loops.push(this.loop(1000 + i, 'read', table));
    return this;
  }

  private now(): number {
    return Date.now() - this.t0;
  }

  private async connect(): Promise<mysql.Connection> {
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

  private async loop(client: number, kind: 'write' | 'read', table: string): Promise<void> {
    let seq = 0;
    let conn: mysql.Connection | undefined;
    while (!this.stopping) {
      const start = this.now();
      const op: WorkloadOp = { client, seq: ++seq, kind, start, end: start, outcome: 'ok' };
      let sent = false;
      try {
        conn ??= await this.connect();
        sent = true;
        if (kind === 'write') await conn.query(`INSERT INTO \`${table}\` (client, seq) VALUES (?, ?)`, [client, op.seq]);
        else await conn.query(`SELECT COUNT(*) FROM \`${table}\``);
        if (this.opts.connectionPerOperation) {
          await conn.end().catch(() => conn?.destroy());
          conn = undefined;
        }
      } catch (e) {
        const err = e as { errno?: number; code?: string; message?: string; fatal?: boolean };
        // Not connected: the statement never left. A server error: refused. Lost mid-statement: in doubt.
        op.outcome = !sent || (err.errno !== undefined && !err.fatal) ? 'fail' : 'unknown';
        op.error = `${err.code ?? ''} ${err.message ?? String(e)}`.trim();
        conn?.destroy();
        conn = undefined;
        await sleep(20);
      }
      op.end = this.now();
      this.ops.push(op);
      if (this.opts.thinkMs) await sleep(this.opts.thinkMs);
    }
    await conn?.end().catch(() => conn?.destroy());
  }

  async stop(): Promise<WorkloadResult> {
    this.stopping = true;
    await Promise.all(this.loops);
    return summarize(this.ops, this.now());
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
