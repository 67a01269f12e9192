import { appendFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkloadResult } from '../../src/sandbox/workload.js';

/** One fault scenario's outcome, as scripts/faults-report.mjs tabulates it. */
export interface FaultResult {
  scenario: string;
  /** Writes the workload saw acknowledged. */
  acked: number;
  /** Acknowledged writes missing from the server that owns the data at the end. */
  lost: number;
  /** Client operations refused or left in doubt (a refusal is not a loss). */
  clientErrors: number;
  /** Exit code of the run under fault, and where things stand afterwards, in words. */
  exitCode: number;
  finalState: string;
}

/**
 * Prints `FAULT-RESULT {json}` and, when FAULT_RESULTS_DIR is set (by the report script), appends the same
 * JSON line to a file there: console output of passing tests is not in vitest's JSON report.
 */
export async function recordFault(r: FaultResult): Promise<void> {
  const line = JSON.stringify(r);
  console.log(`FAULT-RESULT ${line}`);
  const dir = process.env.FAULT_RESULTS_DIR;
  if (dir) {
    await mkdir(dir, { recursive: true });
    await appendFile(join(dir, 'results.jsonl'), line + '\n');
  }
}

export function faultResult(scenario: string, w: WorkloadResult, missing: string[], exitCode: number, finalState: string): FaultResult {
  return { scenario, acked: w.acknowledged.length, lost: missing.length, clientErrors: w.writeErrors + w.readErrors, exitCode, finalState };
}

/**
 * Calls `action` once, as soon as the plan's journal in `stateDir` has a record of `step` with `status`: the way
 * a test strikes mid-step while the run goes on in the same process. `stop()` ends the watch and tells whether
 * the action ran (waiting for it to finish if it is running).
 */
export function onJournal(stateDir: string, step: string, status: 'begin' | 'ok', action: () => Promise<void> | void): { stop(): Promise<boolean> } {
  let cancelled = false;
  const fired = (async () => {
    while (!cancelled) {
      const files = (await readdir(stateDir).catch(() => [] as string[])).filter((f) => f.endsWith('.journal'));
      for (const f of files) {
        const text = await readFile(join(stateDir, f), 'utf8').catch(() => '');
        for (const line of text.split('\n')) {
          if (!line) continue;
          let r: { step?: string; status?: string };
          try {
            r = JSON.parse(line) as typeof r;
          } catch {
            // A line being appended right now: read again on the next poll.
            continue;
          }
          if (r.step === step && r.status === status) {
            await action();
            return true;
          }
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    return false;
  })();
  return {
    stop() {
      cancelled = true;
      return fired;
    },
  };
}

/** Every process's argv on this machine (NUL separators as spaces). */
/**
 * The command lines of this test process's descendants (the tool it runs and whatever the tool runs): other test
 * files run beside it on the same machine with their own clients, whose argv is theirs to answer for.
 */
export async function allCmdlines(root = process.pid): Promise<string[]> {
  const parent = new Map<number, number>();
  const lines = new Map<number, string>();
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so read after the last ')'.
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (Number.isFinite(ppid)) parent.set(pid, ppid);
    const text = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (text) lines.set(pid, text.replace(/\0/g, ' '));
  }
  const descends = (pid: number) => {
    for (let p = parent.get(pid), hops = 0; p !== undefined && p > 0 && hops < 64; p = parent.get(p), hops++) if (p === root) return true;
    return false;
  };
  return [...lines].filter(([pid]) => descends(pid)).map(([, line]) => line);
}

/** Polls the argv of every process this test started (and their children) until stopped; returns the command lines that contained a secret. */
export function watchArgv(secrets: string[]): { stop(): Promise<string[]> } {
  let watching = true;
  const seen = new Set<string>();
  const needles = secrets.flatMap((s) => [s, encodeURIComponent(s)]);
  const loop = (async () => {
    while (watching) {
      for (const c of await allCmdlines()) if (needles.some((n) => c.includes(n))) seen.add(c);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      watching = false;
      await loop;
      return [...seen];
    },
  };
}
