import { readFile } from 'node:fs/promises';
import { OperationError } from '../../src/errors.js';
import type { Endpoint, Router, RouterFinding } from '../../src/engine/router.js';
import { writeFileAtomic } from '../../src/util/atomic-file.js';

export interface FileRouterOptions {
  path: string;
  format: 'json' | 'env';
  /** Scheme and user for the written URL (never a password), e.g. from the target URL. */
  scheme?: string;
  user?: string;
}

const ENV_KEYS = { host: 'CUTOVER_HOST', port: 'CUTOVER_PORT', database: 'CUTOVER_DATABASE', url: 'CUTOVER_URL' } as const;

/** For applications that re-read their endpoint from a file: writes it atomically, holds nothing. */
export class FileRouter implements Router {
  readonly kind = 'file' as const;

  constructor(private readonly opts: FileRouterOptions) {}

  describe(): string {
    return `file ${this.opts.path} (${this.opts.format})`;
  }

  private url(ep: Endpoint): string {
    const user = this.opts.user ? `${encodeURIComponent(this.opts.user)}@` : '';
    const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
    return `${this.opts.scheme ?? 'postgres'}://${user}${host}:${ep.port}${ep.database !== undefined ? `/${encodeURIComponent(ep.database)}` : ''}`;
  }

  render(ep: Endpoint): string {
    const fields = { host: ep.host, port: ep.port, ...(ep.database !== undefined ? { database: ep.database } : {}), url: this.url(ep) };
    if (this.opts.format === 'json') return JSON.stringify(fields, null, 2) + '\n';
    return Object.entries(fields).map(([k, v]) => `${ENV_KEYS[k as keyof typeof ENV_KEYS]}=${envValue(String(v))}`).join('\n') + '\n';
  }

  async hold(): Promise<void> {}

  async release(): Promise<void> {}

  async pointTo(endpoint: Endpoint): Promise<void> {
    await writeFileAtomic(this.opts.path, this.render(endpoint), { mode: 0o644 }).catch((e: NodeJS.ErrnoException) => {
      throw new OperationError(`cannot write ${this.opts.path} (${e.code ?? e.message})`, 'check router.path in the plan and that its directory is writable');
    });
  }

  async current(): Promise<Endpoint | undefined> {
    const text = await readFile(this.opts.path, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    const v = this.opts.format === 'json' ? parseJson(text) : parseEnv(text);
    if (!v.host || !Number.isInteger(Number(v.port))) return undefined;
    return { host: v.host, port: Number(v.port), ...(v.database !== undefined ? { database: v.database } : {}) };
  }

  async preflight(): Promise<RouterFinding[]> {
    return [];
  }

  async close(): Promise<void> {}
}

/** Quotes a value for dotenv/sh readers only when it has characters they would split or expand. */
function envValue(v: string): string {
  return /^[A-Za-z0-9_.:/@%+-]*$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

function parseJson(text: string): Record<string, string | undefined> {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    return { host: v.host as string | undefined, port: String(v.port), ...(typeof v.database === 'string' ? { database: v.database } : {}) };
  } catch {
    return {};
  }
}

function parseEnv(text: string): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (!m) continue;
    const value = m[2]!.startsWith("'") ? m[2]!.slice(1, -1).replace(/'\\''/g, "'") : m[2]!;
    const key = Object.entries(ENV_KEYS).find(([, env]) => env === m[1])?.[0];
    if (key) out[key] = value;
  }
  return out;
}
