/**
 * Runs `work` over `items` with at most `concurrency` at once, in order of `items`. No new item starts once
 * `stop()` says so; items never started are left undefined in the result. `work` must not throw.
 */
export async function runPool<T, R>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<R>, stop: () => boolean = () => false): Promise<Array<R | undefined>> {
  const results: Array<R | undefined> = new Array<R | undefined>(items.length).fill(undefined);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length && !stop()) {
      const i = next++;
      results[i] = await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane));
  return results;
}

/** Serialises async sections, in call order (e.g. every tenant's edit of the one shared pgbouncer.ini). */
export class Gate {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => {});
    return result;
  }

  /** Resolves once every section called so far has ended (sections called later are not waited for). */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}

/**
 * Keeps tenants' initial copies and tenants' write-blocked windows apart: a copy (pg_dump, table sync) takes
 * the CPU and disk a fenced tenant needs for its catch-up and verify, and on a small machine it doubles that
 * tenant's window. Many of one kind run together (the pool bounds how many); a window waiting for running copies
 * to end stops new copies from starting, so windows are never starved and never share the machine with a copy.
 */
export class CopyWindowGate {
  private copies = 0;
  private windows = 0;
  private windowsWaiting = 0;
  private waiters: Array<() => void> = [];

  async copy<T>(fn: () => Promise<T>): Promise<T> {
    while (this.windows > 0 || this.windowsWaiting > 0) await this.wait();
    this.copies++;
    try {
      return await fn();
    } finally {
      this.copies--;
      this.wake();
    }
  }

  async window<T>(fn: () => Promise<T>): Promise<T> {
    this.windowsWaiting++;
    try {
      while (this.copies > 0) await this.wait();
    } finally {
      this.windowsWaiting--;
    }
    this.windows++;
    try {
      return await fn();
    } finally {
      this.windows--;
      this.wake();
    }
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
