import { randomBytes } from 'node:crypto';
import { track, untrack, type Stoppable } from '../../src/sandbox/registry.js';

/** A database server in a container, with the same handles as the local sandboxes. */
export interface ContainerSandbox extends Stoppable {
  readonly host: string;
  readonly port: number;
  readonly password: string;
  url(database?: string, user?: string): string;
}

/** Either a running server or why there is none (no runtime, no image, no testcontainers). */
export type ContainerStart = { ok: true; sandbox: ContainerSandbox } | { ok: false; reason: string };

const RUNTIME_PROBE_MS = 15_000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000}s`)), ms);
    }),
  ]);
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}

/**
 * Starts a MySQL server through the optional `testcontainers` package. Never throws for a missing runtime or
 * image: it returns the reason instead, so tests can report themselves skipped where Docker is unavailable.
 */
export async function startMysqlContainer(opts: { image?: string; startupTimeoutMs?: number } = {}): Promise<ContainerStart> {
  const image = opts.image ?? 'mysql:8.4';
  let tc: typeof import('testcontainers');
  try {
    tc = await import('testcontainers');
  } catch (e) {
    return { ok: false, reason: `the optional dependency testcontainers is not installed (${firstLine(e)})` };
  }
  try {
    await withTimeout(tc.getContainerRuntimeClient(), RUNTIME_PROBE_MS, 'the container runtime');
  } catch (e) {
    return { ok: false, reason: `no container runtime: ${firstLine(e)}` };
  }
  const password = randomBytes(12).toString('hex');
  try {
    const started = await new tc.GenericContainer(image)
      .withEnvironment({ MYSQL_ROOT_PASSWORD: password })
      .withExposedPorts(3306)
      // The image runs a temporary server during init; only the final one listens on 3306.
      .withWaitStrategy(tc.Wait.forLogMessage(/ready for connections.*port: 3306\b/, 1))
      .withStartupTimeout(opts.startupTimeoutMs ?? 180_000)
      .start();
    const host = started.getHost();
    const port = started.getMappedPort(3306);
    let stopped = false;
    const sandbox: ContainerSandbox = {
      label: `${image} container on ${host}:${port}`,
      host,
      port,
      password,
      url: (database?: string, user = 'root') => `mysql://${encodeURIComponent(user)}@${host}:${port}/${database ? encodeURIComponent(database) : ''}`,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        untrack(sandbox);
        await started.stop({ remove: true });
      },
    };
    track(sandbox);
    return { ok: true, sandbox };
  } catch (e) {
    return { ok: false, reason: `could not start ${image}: ${firstLine(e)}` };
  }
}
