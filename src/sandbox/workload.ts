import pg from 'pg';

/** One client operation as the checker sees it: acknowledged (ok), refused (fail) or in doubt (unknown). */
export interface WorkloadOp {
  client: number;
  seq: number;
  kind: 'write' | 'read';
  /** ms since the workload started. */
  start: number;
  end: number;
  outcome: 'ok' | 'fail' | 'unknown';
  error?: string;
}

export interface WorkloadOptions {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** Writers and readers run concurrently. */
  writers: number;
  readers?: number;
  /** Pause between operations of one client. */
  thinkMs?: number;
  table?: string;
}

export interface WorkloadResult {
  ops: WorkloadOp[];
  /** `client:seq` keys of every acknowledged write: each must be on the final server. */
  acknowledged: string[];
  writeErrors: number;
  readErrors: number;
  /** Longest span with no acknowledged write, from a write that started inside it. */
  maxWriteGapMs: number;
  durationMs: number;
}

export const WORKLOAD_TABLE = 'cutover_workload';

/** The table the workload writes to; (client, seq) identifies each write. */
export function workloadTableSql(table = WORKLOAD_TABLE): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (id bigserial PRIMARY KEY, client int NOT NULL, seq int NOT NULL, at timestamptz NOT NULL DEFAULT now(), UNIQUE (client, seq))`;
}

/**
 * A synthetic application: writers insert numbered rows and record each acknowledged one; readers count.
 * Connection errors are recorded and the client reconnects, as a real pool would.
 */
export class Workload {
  private stopping = false;
  private readonly ops: WorkloadOp[] = [];
  private readonly t0 = Date.now();
  private loops: Promise<void>[] = [];

  constructor(private readonly opts: WorkloadOptions) {}

  start(): this {
    const table = this.opts.table ?? WORKLOAD_TABLE;
    for (let i = 0; i < this.opts.writers; i++) this.loops.push(this.loop(i, 'write', table));
    for (let i = 0; i < (this.opts.readers ?? 0); i++) this.loops.push(this.loop(1000 + i, 'read', table));
    return this;
  }

  private now(): number {
    return Date.now() - this.t0;
  }

  private async connect(): Promise<pg.Client> {
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

  private async loop(client: number, kind: 'write' | 'read', table: string): Promise<void> {
    let seq = 0;
    let conn: pg.Client | undefined;
    while (!this.stopping) {
      const start = this.now();
      const op: WorkloadOp = { client, seq: ++seq, kind, start, end: start, outcome: 'ok' };
      try {
        conn ??= await this.connect();
        if (kind === 'write') await conn.query(`INSERT INTO ${table} (client, seq) VALUES ($1, $2)`, [client, op.seq]);
        else await conn.query(`SELECT count(*) FROM ${table}`);
      } catch (e) {
        const err = e as { code?: string; message?: string };
        // A server error code means the statement was refused; a dropped connection leaves a write in doubt.
        op.outcome = err.code && /^[0-9A-Z]{5}$/.test(err.code) ? 'fail' : 'unknown';
        op.error = err.code ? `${err.code} ${err.message ?? ''}`.trim() : (err.message ?? String(e));
        await conn?.end().catch(() => {});
        conn = undefined;
        await sleep(20);
      }
      op.end = this.now();
      this.ops.push(op);
      if (this.opts.thinkMs) await sleep(this.opts.thinkMs);
    }
    await conn?.end().catch(() => {});
  }

  async stop(): Promise<WorkloadResult> {
    this.stopping = true;
    await Promise.all(this.loops);
    return summarize(this.ops, this.now());
  }
}

export function summarize(ops: WorkloadOp[], durationMs: number): WorkloadResult {
  const writes = ops.filter((o) => o.kind === 'write');
  const okEnds = writes.filter((o) => o.outcome === 'ok').map((o) => o.end).sort((a, b) => a - b);
  let maxWriteGapMs = 0;
  for (let i = 1; i < okEnds.length; i++) maxWriteGapMs = Math.max(maxWriteGapMs, okEnds[i]! - okEnds[i - 1]!);
  return {
    ops,
    acknowledged: writes.filter((o) => o.outcome === 'ok').map((o) => `${o.client}:${o.seq}`),
    writeErrors: writes.filter((o) => o.outcome !== 'ok').length,
    readErrors: ops.filter((o) => o.kind === 'read' && o.outcome !== 'ok').length,
    maxWriteGapMs,
    durationMs,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
