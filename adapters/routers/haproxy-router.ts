import { lookup } from 'node:dns/promises';
import { readFile, rm } from 'node:fs/promises';
import { connect, isIP, type Socket } from 'node:net';
import { join } from 'node:path';
import { OperationError } from '../../src/errors.js';
import type { Endpoint, Router, RouterFinding } from '../../src/engine/router.js';
import { ensureDirDurably, writeFileAtomic } from '../../src/util/atomic-file.js';
import { HaproxyRuntime, parseAddr, setAddrCmd, setMaxconnCmd, shutdownSessionsCmd, type ServerStat } from './haproxy-runtime.js';

export interface HaproxyRouterOptions {
  /** The admin socket (`stats socket ... level admin`). */
  socket: string;
  backend: string;
  server: string;
  /** Where the hold record lives, so a release after a crash restores the original maxconn. */
  stateDir: string;
}

/** A maxconn above any queue a hold builds up, so one step lets every waiting client through. */
const DEQUEUE_ALL = 1_000_000;

/** What `hold` changed: the server's maxconn before it and the address established connections use. */
interface HoldRecord {
  maxconn: number;
  addr: string;
}

/**
 * Holds new connections in HAProxy's server queue, the recipe measured on 2.6.12 (FACTS.md): occupy the
 * server's only slot with a connection of our own, then `set maxconn server <be>/<srv> 1`; new clients wait
 * (up to `timeout queue`). Moves with `set server ... addr`; releases by closing the connections still on the
 * old address, restoring maxconn and dropping the slot. `set maxconn frontend` is never used: raising it
 * again deadlocks 2.6.12 (haproxy#2726). The hold returns as soon as new connections queue: connections
 * established before it are the fence's business (it ends them at a statement boundary, and their clients
 * reconnect into this queue), so waiting here for them to close would only lengthen the window.
 */
export class HaproxyRouter implements Router {
  readonly kind = 'haproxy' as const;
  private readonly rt: HaproxyRuntime;
  private slot: Socket | undefined;

  constructor(private readonly opts: HaproxyRouterOptions) {
    this.rt = new HaproxyRuntime(opts.socket);
  }

  describe(): string {
    return `haproxy server ${this.opts.backend}/${this.opts.server} (${this.opts.socket})`;
  }

  private get recordFile(): string {
    return join(this.opts.stateDir, `haproxy-${this.opts.backend}-${this.opts.server}.hold.json`.replace(/[^A-Za-z0-9_.-]/g, '_'));
  }

  private async loadRecord(): Promise<HoldRecord | undefined> {
    const text = await readFile(this.recordFile, 'utf8').catch(() => undefined);
    return text ? (JSON.parse(text) as HoldRecord) : undefined;
  }

  private stat(): Promise<ServerStat> {
    return this.rt.server(this.opts.backend, this.opts.server);
  }

  async hold(timeoutMs: number): Promise<void> {
    const stat = await this.stat();
    // A record left by a crashed run holds the real original: maxconn is 1 now because of that run.
    const record = (await this.loadRecord()) ?? { maxconn: stat.slim, addr: stat.addr };
    await ensureDirDurably(this.opts.stateDir);
    await writeFileAtomic(this.recordFile, JSON.stringify(record));
    try {
      await this.occupySlot(stat, timeoutMs);
      await this.rt.command(setMaxconnCmd(this.opts.backend, this.opts.server, 1));
    } catch (e) {
      await this.release().catch(() => {});
      throw e;
    }
  }

  /**
   * With nothing established, the first new client would pass the maxconn of 1 straight to the old server: a
   * connection of our own through HAProxy takes that place. Proven taken when the server's session count moves.
   */
  private async occupySlot(before: ServerStat, timeoutMs: number): Promise<void> {
    const listeners = await this.rt.listeners();
    if (listeners.length !== 1) {
      if (before.scur > 0) return;
      throw new OperationError(
        `cannot hold ${this.opts.backend}/${this.opts.server}: no connection is established and HAProxy's listening address could not be told (${listeners.length} TCP listeners)`,
        'run the cutover from the HAProxy host with one frontend, or while clients are connected',
      );
    }
    const to = listeners[0]!;
    const slot = connect({ host: to.host, port: to.port });
    slot.on('error', () => {});
    slot.on('data', () => {});
    this.slot = slot;
    const deadline = Date.now() + Math.min(timeoutMs, 5_000);
    for (;;) {
      if ((await this.stat()).stot > before.stot) return;
      if (Date.now() > deadline) throw new OperationError(`the hold connection through ${to.host}:${to.port} never reached ${this.opts.backend}/${this.opts.server}`, 'check that this frontend uses that backend');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async pointTo(endpoint: Endpoint): Promise<void> {
    const ip = isIP(endpoint.host) ? endpoint.host : (await lookup(endpoint.host)).address;
    await this.rt.command(setAddrCmd(this.opts.backend, this.opts.server, ip, endpoint.port));
    const now = parseAddr((await this.stat()).addr);
    if (!now || now.host !== ip || now.port !== endpoint.port) {
      throw new OperationError(`HAProxy still sends ${this.opts.backend}/${this.opts.server} to ${now ? `${now.host}:${now.port}` : 'an unknown address'} after set server addr`, 'check the HAProxy log');
    }
  }

  async release(): Promise<void> {
    const record = await this.loadRecord();
    if (record) {
      const stat = await this.stat();
      // Connections established before the move still talk to the old server: end them so clients reconnect.
      if (stat.addr !== record.addr) await this.rt.command(shutdownSessionsCmd(this.opts.backend, this.opts.server));
      // HAProxy 2.6 dequeues waiting clients only up to a finite maxconn (measured: back to 0 = unlimited, the
      // queue stayed until `timeout queue`), so an unlimited original is restored through a finite step.
      if (record.maxconn === 0) await this.rt.command(setMaxconnCmd(this.opts.backend, this.opts.server, DEQUEUE_ALL));
      await this.rt.command(setMaxconnCmd(this.opts.backend, this.opts.server, record.maxconn));
      await rm(this.recordFile, { force: true });
    }
    this.slot?.destroy();
    this.slot = undefined;
  }

  async current(): Promise<Endpoint | undefined> {
    return parseAddr((await this.stat()).addr);
  }

  async preflight(): Promise<RouterFinding[]> {
    const out: RouterFinding[] = [];
    let stat: ServerStat;
    try {
      stat = await this.stat();
    } catch (e) {
      return [{ severity: 'blocker', object: this.describe(), why: e instanceof Error ? e.message : String(e), fix: 'fix router.socket, router.backend and router.server' }];
    }
    if (stat.mode !== 'tcp')
      out.push({ severity: 'warning', object: this.describe(), why: `the backend runs in ${stat.mode || 'an unknown'} mode; the hold was measured in TCP mode`, fix: 'rehearse the cutover against this HAProxy first' });
    const record = await this.loadRecord();
    if (record)
      out.push({
        severity: 'warning',
        object: this.recordFile,
        why: `an earlier hold was not released (original maxconn ${record.maxconn || 'unlimited'})`,
        fix: 'the next release restores it; `cutover rollback` does so now',
      });
    const listeners = await this.rt.listeners();
    if (listeners.length !== 1)
      out.push({
        severity: 'warning',
        object: this.describe(),
        why: `HAProxy listens on ${listeners.length} TCP addresses: the hold cannot open its own connection and relies on clients being connected`,
        fix: 'run the cutover on the HAProxy host with one frontend for this backend',
      });
    out.push({
      severity: 'info',
      object: this.describe(),
      why: 'clients wait in the server queue during the hold, at most `timeout queue`; a server closes an idle unauthenticated connection after its connect timeout (MySQL connect_timeout, 10s by default), which frees the held slot',
      fix: 'keep timeout queue and connect_timeout above limits.maxWriteBlocked',
    });
    return out;
  }

  async close(): Promise<void> {
    this.slot?.destroy();
    this.slot = undefined;
  }
}
