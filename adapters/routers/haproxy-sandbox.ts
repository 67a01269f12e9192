import { readPidFile, terminateProcess } from '../../src/util/process.js';
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OperationError, PreflightError } from '../../src/errors.js';
import { run } from '../../src/util/subprocess.js';
import { freePort } from '../../src/sandbox/ports.js';
import { DirSandbox, track } from '../../src/sandbox/registry.js';

export const HAPROXY_BINARY = '/usr/sbin/haproxy';

export interface HaproxySandboxOptions {
  /** Where the one backend server points at first. */
  server: { host: string; port: number };
  backend?: string;
  serverName?: string;
  /** The server's maxconn in the config (default none: unlimited). */
  maxconn?: number;
  /** How long a connection may wait in the server queue during a hold. */
  queueTimeout?: string;
  baseDir?: string;
}

/** Throws PreflightError naming the package when HAProxy is not installed. */
export async function findHaproxy(): Promise<string> {
  try {
    await access(HAPROXY_BINARY, constants.X_OK);
  } catch {
    throw new PreflightError('preflight', `${HAPROXY_BINARY} not found`, 'install it: apt-get install -y haproxy');
  }
  const r = await run(HAPROXY_BINARY, ['-v'], { reject: false, timeoutMs: 10_000 });
  if (r.exitCode !== 0) throw new PreflightError('preflight', `cannot run ${HAPROXY_BINARY} -v: ${r.stderr.split('\n')[0] ?? ''}`, 'reinstall it: apt-get install -y --reinstall haproxy');
  return HAPROXY_BINARY;
}

/**
 * A throw-away HAProxy in TCP mode: one frontend on a free port, one backend with one server, a server-side
 * queue (`timeout queue`) for the hold recipe in FACTS.md, and an admin socket in its temp dir.
 */
export class HaproxySandbox extends DirSandbox {
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly backend: string,
    readonly serverName: string,
  ) {
    super();
  }

  get label(): string {
    return `haproxy on 127.0.0.1:${this.port}`;
  }
  get host(): string {
    return '127.0.0.1';
  }
  get socket(): string {
    return join(this.dir, 'admin.sock');
  }
  get configPath(): string {
    return join(this.dir, 'haproxy.cfg');
  }

  static async start(opts: HaproxySandboxOptions): Promise<HaproxySandbox> {
    const binary = await findHaproxy();
    const dir = await mkdtemp(join(opts.baseDir ?? tmpdir(), 'cutover-haproxy-'));
    const backend = opts.backend ?? 'db';
    const serverName = opts.serverName ?? 'primary';
    try {
      let lastError: unknown;
      for (let attempt = 0; attempt < 4; attempt++) {
        const sandbox = new HaproxySandbox(dir, await freePort(), backend, serverName);
        await writeFile(sandbox.configPath, sandbox.config(opts));
        const r = await run(binary, ['-D', '-f', sandbox.configPath, '-p', join(dir, 'haproxy.pid')], { cwd: dir, timeoutMs: 30_000, reject: false });
        if (r.exitCode === 0) {
          try {
            await sandbox.waitReady();
            track(sandbox);
            return sandbox;
          } catch (e) {
            lastError = e;
          }
        } else {
          lastError = new OperationError(`haproxy exited ${r.exitCode}: ${(r.stderr || r.stdout).split('\n').filter(Boolean).slice(-3).join(' | ')}`);
        }
        await sandbox.kill();
        if (!/Address already in use|cannot bind/i.test(String((lastError as Error).message))) break;
      }
      throw lastError;
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  private config(opts: HaproxySandboxOptions): string {
    return [
      'global',
      `  stats socket ${this.socket} mode 600 level admin`,
      '  maxconn 1000',
      '',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 1h',
      '  timeout server 1h',
      `  timeout queue ${opts.queueTimeout ?? '30s'}`,
      '',
      'frontend fe',
      `  bind 127.0.0.1:${this.port}`,
      `  default_backend ${this.backend}`,
      '',
      `backend ${this.backend}`,
      `  server ${this.serverName} ${opts.server.host}:${opts.server.port}${opts.maxconn ? ` maxconn ${opts.maxconn}` : ''}`,
      '',
    ].join('\n');
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect(this.socket);
        s.once('connect', () => (s.end(), resolve(true)));
        s.once('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > deadline) throw new OperationError(`sandbox HAProxy did not open its admin socket ${this.socket}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  protected async kill(): Promise<void> {
    const pid = await readPidFile(join(this.dir, 'haproxy.pid'));
    if (pid) await terminateProcess(pid, 'SIGTERM', 5_000);
  }
}
