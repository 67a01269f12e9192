import { sleep } from '../util/sleep.js';

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

/** Options every workload takes, whatever the engine. */
export interface ClientWorkloadOptions {
  writers: number;
  readers?: number;
  /** Pause between operations of one client. */
  thinkMs?: number;
  table?: string;
  /** Open a connection for each operation instead of keeping one. */
  connectionPerOperation?: boolean;
}

/**
 * A synthetic application: writers insert numbered rows and record each acknowledged one; readers count.
 * On an error the client drops its connection and reconnects, as a real pool would. Engines supply how to
 * connect, run one operation, tell a refusal from a write in doubt, and close.
 */
export abstract class ClientWorkload<C> {
  private stopping = false;
  private readonly ops: WorkloadOp[] = [];
  private readonly t0 = Date.now();
  private readonly loops: Promise<void>[] = [];

  constructor(private readonly base: ClientWorkloadOptions) {}

  protected abstract connect(): Promise<C>;
  protected abstract execute(conn: C, kind: 'write' | 'read', table: string, client: number, seq: number): Promise<void>;
  /** After `execute` threw: 'fail' when the server refused the statement, 'unknown' when the write is in doubt. */
  protected abstract outcome(e: unknown): { outcome: 'fail' | 'unknown'; error: string };
  protected abstract close(conn: C, clean: boolean): Promise<void>;

  start(): this {
    const table = this.base.table ?? WORKLOAD_TABLE;
    for (let i = 0; i < this.base.writers; i++) this.loops.push(this.loop(i, 'write', table));
    for (let i = 0; i < (this.base.readers ?? 0); i++) this.loops.push(this.loop(1000 + i, 'read', table));
    return this;
  }

  private now(): number {
    return Date.now() - this.t0;
  }

  private async loop(client: number, kind: 'write' | 'read', table: string): Promise<void> {
    let seq = 0;
    let conn: C | undefined;
    while (!this.stopping) {
      const start = this.now();
      const op: WorkloadOp = { client, seq: ++seq, kind, start, end: start, outcome: 'ok' };
      let sent = false;
      try {
        conn ??= await this.connect();
        sent = true;
        await this.execute(conn, kind, table, client, op.seq);
        if (this.base.connectionPerOperation) {
          await this.close(conn, true);
          conn = undefined;
        }
      } catch (e) {
        // Not connected: the statement never left, so it was refused, never in doubt.
        const o = this.outcome(e);
        op.outcome = sent ? o.outcome : 'fail';
        op.error = o.error;
        if (conn !== undefined) await this.close(conn, false);
        conn = undefined;
        await sleep(20);
      }
      op.end = this.now();
      this.ops.push(op);
      if (this.base.thinkMs) await sleep(this.base.thinkMs);
    }
    if (conn !== undefined) await this.close(conn, true);
  }

  async stop(): Promise<WorkloadResult> {
    this.stopping = true;
    await Promise.all(this.loops);
    return summarize(this.ops, this.now());
  }
}

export function summarize(ops: WorkloadOp[], durationMs: number): WorkloadResult {
  const writes = ops.filter((o) => o.kind === 'write');
  const okEnds = writes
    .filter((o) => o.outcome === 'ok')
    .map((o) => o.end)
    .sort((a, b) => a - b);
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
