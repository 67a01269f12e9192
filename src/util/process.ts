import { readFile } from 'node:fs/promises';

/** Sends `sig` (0 only probes); false when the process is gone. EPERM means it exists but is not ours. */
export function signalProcess(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid on the first line of a pid file, if there is a sane one. */
export async function readPidFile(path: string): Promise<number | undefined> {
  const pid = Number((await readFile(path, 'utf8').catch(() => '')).split('\n')[0]!.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Sends `sig`, waits up to `graceMs` for the process to go, then SIGKILLs it. */
export async function terminateProcess(pid: number, sig: NodeJS.Signals, graceMs: number): Promise<void> {
  if (!signalProcess(pid, sig)) return;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && signalProcess(pid, 0)) await new Promise((r) => setTimeout(r, 25));
  signalProcess(pid, 'SIGKILL');
}
