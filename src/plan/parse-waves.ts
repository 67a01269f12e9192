import { engineCapabilities } from '../../adapters/registry.js';
import type { Fields } from './plan-reader.js';
import type { Engine } from '../util/db-url.js';
import type { CopyMethod, PlanScope, PlanTransform, PlanWaves } from './types.js';

export const WAVES_DEFAULTS = { concurrency: 1, order: 'listed', maxWriteBlockedPerTenantMs: 2_000 } as const;

interface PathResolver {
  path(p: string): string;
  command(argv: string[] | undefined): string[] | undefined;
}

/**
 * `waves:` — only with `scope.tenants`, and then always present (with defaults) so the waves engine never
 * guesses. Returns null when the key is invalid (the issue is already reported), undefined when it does not apply.
 */
export function readWaves(top: Fields, scope: PlanScope | undefined, resolve: PathResolver): PlanWaves | null | undefined {
  const tenants = scope?.kind === 'tenants';
  if (!top.has('waves')) return tenants ? { ...WAVES_DEFAULTS } : undefined;
  if (scope && !tenants) {
    top.report('waves', `applies to scope.tenants, but scope is ${scope.kind}`, 'use scope: { tenants: [a, b] } or remove waves');
    return null;
  }
  const f = top.fields('waves', ['concurrency', 'order', 'maxWriteBlockedPerTenant', 'stopAfterFailures', 'transform']);
  if (!f) return null;
  const concurrency = f.integer('concurrency', WAVES_DEFAULTS.concurrency, { min: 1, max: 64 });
  const order = f.oneOf('order', ['listed', 'name'] as const, WAVES_DEFAULTS.order);
  const maxWriteBlockedPerTenantMs = f.duration('maxWriteBlockedPerTenant', WAVES_DEFAULTS.maxWriteBlockedPerTenantMs, { min: 100, max: 30 * 60_000 });
  const stopAfterFailures = f.has('stopAfterFailures') ? f.integer('stopAfterFailures', 0, { min: 1, max: 1_000_000 }) : undefined;
  const transform = f.has('transform') ? readTransform(f, resolve) : undefined;
  if (concurrency === undefined || !order || maxWriteBlockedPerTenantMs === undefined) return null;
  if ((f.has('stopAfterFailures') && stopAfterFailures === undefined) || (f.has('transform') && !transform)) return null;
  return { concurrency, order, maxWriteBlockedPerTenantMs, ...(stopAfterFailures !== undefined ? { stopAfterFailures } : {}), ...(transform ? { transform } : {}) };
}

function readTransform(waves: Fields, resolve: PathResolver): PlanTransform | undefined {
  const fix = 'transform: { sql: ./reshape.sql } or transform: { command: [./reshape.sh] }';
  const f = waves.fields('transform', ['sql', 'command']);
  if (!f) return undefined;
  const keys = f.keys();
  if (keys.length !== 1) return f.reader.report(f.node, f.path, keys.length === 0 ? 'names nothing' : 'has both sql and command; give one', fix);
  if (f.has('sql')) {
    const file = f.string('sql', { fix });
    return file === undefined ? undefined : { kind: 'sql', file: resolve.path(file) };
  }
  const command = resolve.command(f.argv('command', { required: true }));
  return command ? { kind: 'command', command } : undefined;
}

/**
 * On an engine whose waves need the dump method, each tenant is copied inside its own fence window. On
 * MySQL/MariaDB a replica accepts one replication connection per source (MariaDB error 1934), and every
 * tenant's dump would reset the one `gtid_slave_pos` (MySQL: gtid_purged), so per-tenant replication cannot run
 * side by side; the tenants share one stream instead (waveStream), which has no room for a reverse path per
 * tenant. Returns false when reported.
 */
export function checkWavesMethod(top: Fields, engine: Engine, method: CopyMethod, reverse?: boolean): boolean {
  const { wavesNeedDump, waveStream } = engineCapabilities(engine);
  if (waveStream && method === 'replication' && reverse === true) {
    top.report('reverse', `${engine} waves by replication share one stream into the target; a reverse path per tenant is not made`, 'set reverse: false, or method: dump');
    return false;
  }
  if (!wavesNeedDump || method === 'dump') return true;
  top.report('method', `${method}: ${engine} waves copy each tenant inside its own fence window`, 'set method: dump (see docs/waves.md: replication per tenant cannot run side by side from one source)');
  return false;
}
