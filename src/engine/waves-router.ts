import { switchRouter, type Endpoint, type Router } from './router.js';
import type { Gate } from './waves-pool.js';

/**
 * A tenant's router whose repoint goes through a gate shared by the whole wave: every tenant's PgBouncer entry
 * lives in one ini file, and two read-modify-write edits at once would lose one of them.
 */
export class WaveRouter implements Router {
  constructor(
    private readonly inner: Router,
    private readonly gate: Gate,
    /** A shared wave: the same edit serialised across runner processes too (an advisory lock in the control database). */
    private readonly across?: <T>(fn: () => Promise<T>) => Promise<T>,
  ) {}

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const across = this.across;
    return this.gate.run(() => (across ? across(fn) : fn()));
  }

  get kind(): Router['kind'] {
    return this.inner.kind;
  }
  describe(): string {
    return this.inner.describe();
  }
  /**
   * Forwarded: without it a wave's tenant logged in to the router's admin console inside its window (the hold),
   * tens to hundreds of ms on a loaded machine.
   */
  async prepareHold(): Promise<void> {
    await this.inner.prepareHold?.();
  }
  hold(timeoutMs: number): Promise<void> {
    return this.inner.hold(timeoutMs);
  }
  pointTo(endpoint: Endpoint): Promise<void> {
    return this.serialised(() => this.inner.pointTo(endpoint));
  }
  release(): Promise<void> {
    return this.inner.release();
  }
  switchTo(endpoint: Endpoint): Promise<void> {
    return this.serialised(() => switchRouter(this.inner, endpoint));
  }
  /**
   * Not serialised: it only writes a file under a temporary name. The switch, serialised, uses it only if the ini
   * still holds the text it was made from (another tenant's switch in between makes it write afresh).
   */
  async prepareSwitch(endpoint: Endpoint): Promise<void> {
    await this.inner.prepareSwitch?.(endpoint);
  }
  current(): Promise<Endpoint | undefined> {
    return this.inner.current();
  }
  preflight() {
    return this.inner.preflight();
  }
  async serverLogins() {
    return (await this.inner.serverLogins?.()) ?? [];
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
