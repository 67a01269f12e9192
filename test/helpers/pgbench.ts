import { execa } from 'execa';
import type { Window } from './journal-window.js';

export interface PgbenchInvocation {
  startedAt: number;
  endedAt: number;
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

export interface PgbenchRelayResult {
  invocations: PgbenchInvocation[];
  /** Transactions processed across every invocation ("number of transactions actually processed"). */
  processed: number;
  /** Invocations that exited non-zero or did not report 0 failed transactions, with what they printed. */
  failures: string[];
  /** Whether one invocation ran from before the window to after it (its sessions were open across the switch). */
  spanned(window: Window): boolean;
}

export interface PgbenchRelay {
  /** Lets the running invocations end at their `-T`, starts no more, and returns what they printed. */
  stop(): Promise<PgbenchRelayResult>;
}

/**
 * pgbench (TPC-B, `-n`) running until stopped, however long the cutover takes on a loaded machine: two lanes of
 * back-to-back `-T slice` invocations, the second started half a slice after the first, so a window shorter than
 * half a slice lies inside one invocation. One `-T` sized for the expected run ended before the switch on a slow CI
 * machine, and pgbench has no clean stop (SIGINT ends it without its summary).
 */
export function pgbenchRelay(bin: string, o: { database: string; port: number; password: string; clients: number; sliceSeconds?: number }): PgbenchRelay {
  const slice = o.sliceSeconds ?? 6;
  const env = { PGHOST: '127.0.0.1', PGPORT: String(o.port), PGUSER: 'postgres', PGPASSWORD: o.password };
  const invocations: PgbenchInvocation[] = [];
  let stopping = false;
  const lane = async (clients: number, delayMs: number) => {
    await new Promise((r) => setTimeout(r, delayMs));
    while (!stopping) {
      const startedAt = Date.now();
      const r = await execa(bin, ['-c', String(clients), '-j', '1', '-T', String(slice), '-n', o.database], { env, reject: false });
      invocations.push({ startedAt, endedAt: Date.now(), exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr });
    }
  };
  const first = Math.ceil(o.clients / 2);
  const lanes = [lane(first, 0), lane(Math.max(1, o.clients - first), (slice * 1000) / 2)];
  return {
    async stop() {
      stopping = true;
      await Promise.all(lanes);
      const processed = invocations.reduce((n, i) => n + Number(/number of transactions actually processed: (\d+)/.exec(i.stdout)?.[1] ?? 0), 0);
      const failures = invocations.filter((i) => i.exitCode !== 0 || !/number of failed transactions: 0 /.test(i.stdout)).map((i) => `exit ${i.exitCode}: ${(i.stderr || i.stdout).slice(-400)}`);
      return { invocations, processed, failures, spanned: (w) => invocations.some((i) => i.startedAt < w.from && i.endedAt > w.to) };
    },
  };
}
