import { spawn, type ChildProcess } from 'node:child_process';
import { run } from '../../src/util/subprocess.js';

/** Throws with the package to install when Debian's sysbench is missing. */
export async function findSysbench(): Promise<string> {
  const r = await run('sysbench', ['--version'], { reject: false, timeoutMs: 10_000 }).catch((e: Error) => ({ exitCode: 1, stdout: '', stderr: e.message }));
  if (r.exitCode !== 0) throw new Error(`sysbench --version failed (${(r.stderr || r.stdout).split('\n')[0] ?? ''}); install it: apt-get install -y sysbench`);
  return r.stdout.trim();
}

export interface SysbenchTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/**
 * sysbench's own deadlock codes (its default `auto`: 1213, 1205, 1020) plus the lost-connection codes a cutover
 * causes, so a client that would reconnect is told apart from one that sees 1290 (read-only) or 1045 (access).
 */
export const SYSBENCH_IGNORE = '1213,1205,1020,2013,2006';

function connArgs(t: SysbenchTarget, tables: number, tableSize: number): string[] {
  return [
    '--db-driver=mysql',
    `--mysql-host=${t.host}`,
    `--mysql-port=${t.port}`,
    `--mysql-user=${t.user}`,
    `--mysql-password=${t.password}`,
    `--mysql-db=${t.database}`,
    `--tables=${tables}`,
    `--table-size=${tableSize}`,
  ];
}

/** `sysbench oltp_write_only prepare`: the sbtest tables (with primary keys, so the cutover's check passes). */
export async function sysbenchPrepare(t: SysbenchTarget, tables = 2, tableSize = 10_000): Promise<void> {
  const r = await run('sysbench', ['oltp_write_only', ...connArgs(t, tables, tableSize), 'prepare'], { reject: false, timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw new Error(`sysbench prepare failed: ${(r.stderr || r.stdout).slice(-500)}`);
}

export interface SysbenchRun {
  /** Waits for sysbench to end by itself up to `graceMs`, then kills it; what it printed and how it ended. */
  stop(graceMs?: number): Promise<SysbenchOutcome>;
}

export interface SysbenchOutcome {
  /** Exit code; null when it died by a signal or had to be killed (it hung). */
  exitCode: number | null;
  signal: string | null;
  hung: boolean;
  /** Per-second reports that show transactions (it was really writing). */
  busySeconds: number;
  output: string;
  /** MySQL error codes sysbench reported (FATAL lines and ignored-error debug lines). */
  errors: number[];
  transactions?: number;
  reconnects?: number;
}

/** `sysbench oltp_write_only run` for `seconds`, in the background. */
export function sysbenchRun(t: SysbenchTarget, o: { threads: number; seconds: number; tables?: number; tableSize?: number }): SysbenchRun {
  const child: ChildProcess = spawn(
    'sysbench',
    ['oltp_write_only', ...connArgs(t, o.tables ?? 2, o.tableSize ?? 10_000), `--threads=${o.threads}`, `--time=${o.seconds}`, '--report-interval=1', `--mysql-ignore-errors=${SYSBENCH_IGNORE}`, 'run'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    async stop(graceMs = 10_000) {
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs));
      const first = await Promise.race([exited, timer]);
      const hung = first === 'timeout';
      if (hung) child.kill('SIGKILL');
      const end = hung ? { code: null, signal: null } : await exited;
      if (hung) await exited;
      const errors = [...output.matchAll(/error (\d{4})\b/gi)].map((m) => Number(m[1]));
      const num = (re: RegExp) => {
        const m = re.exec(output);
        return m ? Number(m[1]) : undefined;
      };
      const transactions = num(/transactions:\s+(\d+)/);
      const reconnects = num(/reconnects:\s+(\d+)/);
      const busySeconds = [...output.matchAll(/tps: (\d+\.\d+)/g)].filter((m) => Number(m[1]) > 0).length;
      return { exitCode: end.code, signal: end.signal, hung, busySeconds, output, errors, ...(transactions !== undefined ? { transactions } : {}), ...(reconnects !== undefined ? { reconnects } : {}) };
    },
  };
}
