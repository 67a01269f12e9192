import { rm } from 'node:fs/promises';
/** Every running sandbox server, so a signal or a failed test still stops them all. */
export interface Stoppable {
  readonly label: string;
  stop(): Promise<void>;
}

/** A server that lives in its own temp dir: `stop()` ends it once and removes the dir, even if called twice. */
export abstract class DirSandbox implements Stoppable {
  private stopped = false;
  abstract readonly label: string;
  abstract readonly dir: string;
  /** Ends the server process (each engine has its own fastest safe way). */
  protected abstract kill(): Promise<void>;

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    untrack(this);
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}

const live = new Set<Stoppable>();

export function track(s: Stoppable): void {
  live.add(s);
}

export function untrack(s: Stoppable): void {
  live.delete(s);
}

export function liveSandboxes(): Stoppable[] {
  return [...live];
}

/** Starts servers together; if one fails, the others that came up are stopped and the first error is thrown. */
export async function startAllOrNone<T extends Stoppable>(starting: Array<Promise<T>>): Promise<T[]> {
  const started = await Promise.allSettled(starting);
  const up = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(up.map((s) => s.stop()));
    throw failed.reason;
  }
  return up;
}

export async function stopAllSandboxes(): Promise<void> {
  await Promise.allSettled([...live].reverse().map((s) => s.stop()));
}

let handlersInstalled = false;

/** On SIGINT/SIGTERM: stop every sandbox, then exit 130/143. For long-running commands such as `rehearse`. */
export function installSandboxCleanup(onSignal?: (signal: NodeJS.Signals) => void): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      onSignal?.(signal);
      void stopAllSandboxes().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}
