import { createServer, connect, type Server, type Socket } from 'node:net';
import { OperationError } from '../../src/errors.js';
import { track, untrack, type Stoppable } from '../../src/sandbox/registry.js';

export interface FaultProxyOptions {
  /** Where connections are forwarded. */
  target: { host: string; port: number };
  /** Port to listen on (default: a free one chosen by the OS). */
  port?: number;
}

/** One client connection and the proxy's connection to the target for it. */
interface Pair {
  client: Socket;
  upstream: Socket;
}

/**
 * A TCP proxy on 127.0.0.1 that tests put between two parties to break the network on purpose: pause (bytes
 * are held, connections stay open, like a partition that heals), drop (every connection reset; optionally new
 * ones refused, like a host that went away) and latency (each chunk delayed). Ordering is kept per direction.
 */
export class FaultProxy implements Stoppable {
  private readonly pairs = new Set<Pair>();
  private paused = false;
  private refusing = false;
  private latencyMs = 0;
  /** Forwarding work waiting for resume(), in arrival order. */
  private held: Array<() => void> = [];
  private stopped = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  get label(): string {
    return `fault proxy 127.0.0.1:${this.port} → ${this.target.host}:${this.target.port}`;
  }
  get host(): string {
    return '127.0.0.1';
  }
  /** Connections currently open through the proxy. */
  get connections(): number {
    return this.pairs.size;
  }

  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (!addr || typeof addr !== 'object') throw new OperationError('fault proxy: no listening address');
    const proxy = new FaultProxy(server, addr.port, opts.target);
    server.on('connection', (c) => proxy.accept(c));
    track(proxy);
    return proxy;
  }

  private accept(client: Socket): void {
    if (this.refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    const pair: Pair = { client, upstream };
    this.pairs.add(pair);
    const close = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    this.pipe(client, upstream);
    this.pipe(upstream, client);
  }

  /** Forwards `from` → `to`; while paused, chunks are kept in memory in order and written on resume(). */
  private pipe(from: Socket, to: Socket): void {
    // One chain per direction keeps chunk order when a latency is set.
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      const delay = this.latencyMs;
      chain = chain.then(async () => {
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        await this.whenFlowing();
        if (!to.destroyed) to.write(chunk);
      });
    });
    from.on('end', () => {
      chain = chain.then(() => this.whenFlowing()).then(() => void to.end());
    });
  }

  private whenFlowing(): Promise<void> {
    if (!this.paused) return Promise.resolve();
    return new Promise((resolve) => this.held.push(resolve));
  }

  /** Stop forwarding in both directions; connections stay open and bytes wait for resume(). */
  pause(): void {
    this.paused = true;
  }

  /** Forward again, held bytes first; new connections are accepted again. */
  resume(): void {
    this.paused = false;
    this.refusing = false;
    const held = this.held;
    this.held = [];
    for (const go of held) go();
  }

  /** Reset every open connection; with `refuseNew`, new connections are reset too until resume(). */
  drop(opts: { refuseNew?: boolean } = {}): void {
    if (opts.refuseNew) this.refusing = true;
    for (const p of [...this.pairs]) {
      p.client.resetAndDestroy();
      p.upstream.resetAndDestroy();
    }
    this.pairs.clear();
  }

  /** Delay every chunk by `ms` (0 turns it off); applies to chunks that arrive from now on. */
  latency(ms: number): void {
    this.latencyMs = ms;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    untrack(this);
    this.resume();
    this.drop();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
