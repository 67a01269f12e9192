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
  /**
   * Waves: the file is one JSON object mapping each tenant to its endpoint (`{"acme": {host, port, database,
   * url}, ...}`) and this router reads and writes only this tenant's entry. A tenant without an entry has not
   * been moved: it is on its source.
   */
  tenant?: string;
}

const ENV_KEYS = { host: 'CUTOVER_HOST', port: 'CUTOVER_PORT', database: 'CUTOVER_DATABASE', url: 'CUTOVER_URL' } as const;

/** For applications that re-read their endpoint from a file: writes it atomically, holds nothing. */
export class FileRouter implements Router {
  readonly kind = 'file' as const;

  constructor(private readonly opts: FileRouterOptions) {}

  describe(): string {
    return `file ${this.opts.path} (${this.opts.tenant !== undefined ? `entry ${JSON.stringify(this.opts.tenant)}` : this.opts.format})`;
  }

  private url(ep: Endpoint): string {
    const user = this.opts.user ? `${encodeURIComponent(this.opts.user)}@` : '';
    const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
    return `${this.opts.scheme ?? 'postgres'}://${user}${host}:${ep.port}${ep.database !== undefined ? `/${encodeURIComponent(ep.database)}` : ''}`;
  }

  private fields(ep: Endpoint): { host: string; port: number; database?: string; url: string } {
    return { host: ep.host, port: ep.port, ...(ep.database !== undefined ? { database: ep.database } : {}), url: this.url(ep) };
  }

  render(ep: Endpoint): string {
    const fields = this.fields(ep);
    if (this.opts.format === 'json') return JSON.stringify(fields, null, 2) + '\n';
    return (
      Object.entries(fields)
        .map(([k, v]) => `${ENV_KEYS[k as keyof typeof ENV_KEYS]}=${envValue(String(v))}`)
        .join('\n') + '\n'
    );
  }

  async hold(): Promise<void> {}

  async release(): Promise<void> {}

  /**
   * Read-modify-write of the shared map: callers in one process serialise through the wave's Gate, and the
   * atomic rename means readers see the old or the new map, never half of one.
   */
  async pointTo(endpoint: Endpoint): Promise<void> {
    let text = this.render(endpoint);
    if (this.opts.tenant !== undefined) {
      const map = await this.readMap();
      map[this.opts.tenant] = this.fields(endpoint);
      text = renderTenantMap(map);
    }
    await writeFileAtomic(this.opts.path, text, { mode: 0o644 }).catch((e: NodeJS.ErrnoException) => {
      throw new OperationError(`cannot write ${this.opts.path} (${e.code ?? e.message})`, 'check router.path in the plan and that its directory is writable');
    });
  }

  /** The tenants' map as it is on disk; a file that is not one would lose the other tenants' entries, so it is refused. */
  private async readMap(): Promise<Record<string, unknown>> {
    const text = await readFile(this.opts.path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw new OperationError(`cannot read ${this.opts.path} (${e.code ?? e.message})`, 'check router.path in the plan');
    });
    if (text === undefined || text.trim() === '') return {};
    const map = parseTenantMap(text);
    if (!map) throw new OperationError(`${this.opts.path} is not a JSON object of tenant entries; not overwriting it`, 'fix or remove the file (a tenant without an entry is on its source)');
    return map;
  }

  async current(): Promise<Endpoint | undefined> {
    const text = await readFile(this.opts.path, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    if (this.opts.tenant !== undefined) {
      const entry = parseTenantMap(text)?.[this.opts.tenant];
      return entry && typeof entry === 'object' ? endpointFrom(entry as Record<string, unknown>) : undefined;
    }
    const v = this.opts.format === 'json' ? parseJson(text) : parseEnv(text);
    if (!v.host || !Number.isInteger(Number(v.port))) return undefined;
    return { host: v.host, port: Number(v.port), ...(v.database !== undefined ? { database: v.database } : {}) };
  }

  async preflight(): Promise<RouterFinding[]> {
    return [];
  }

  async close(): Promise<void> {}
}

/** The tenants' map, keys sorted so the file diffs cleanly between switches. */
export function renderTenantMap(map: Record<string, unknown>): string {
  const sorted = Object.fromEntries(
    Object.keys(map)
      .sort()
      .map((k) => [k, map[k]]),
  );
  return JSON.stringify(sorted, null, 2) + '\n';
}

export function parseTenantMap(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    // Without a prototype, a tenant named __proto__ is an entry like any other.
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.assign(Object.create(null) as Record<string, unknown>, v) : undefined;
  } catch {
    return undefined;
  }
}

function endpointFrom(v: Record<string, unknown>): Endpoint | undefined {
  if (typeof v.host !== 'string' || !Number.isInteger(Number(v.port))) return undefined;
  return { host: v.host, port: Number(v.port), ...(typeof v.database === 'string' ? { database: v.database } : {}) };
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
