import type { WorkloadOp } from '../sandbox/workload.js';
import type { LatencySeries } from './types.js';

/** Longest span between consecutive successful completions of `kind` (what a client waiting for one saw). */
export function longestGap(ops: WorkloadOp[], kind: WorkloadOp['kind']): number {
  const ends = ops
    .filter((o) => o.kind === kind && o.outcome === 'ok')
    .map((o) => o.end)
    .sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < ends.length; i++) gap = Math.max(gap, ends[i]! - ends[i - 1]!);
  return gap;
}

/**
 * Per client, the worst latency of the operations started in each of `buckets` equal slices of
 * [fromMs, toMs). The worst, not the mean: a held query is exactly what the chart must show.
 */
export function latencySeries(ops: WorkloadOp[], fromMs: number, toMs: number, buckets: number): { bucketMs: number; series: LatencySeries[] } {
  const bucketMs = Math.max(1, (toMs - fromMs) / buckets);
  const byClient = new Map<number, LatencySeries>();
  for (const op of ops) {
    let s = byClient.get(op.client);
    if (!s) {
      s = { client: op.client, kind: op.kind, maxLatencyMs: new Array<number | null>(buckets).fill(null), errorBuckets: [] };
      byClient.set(op.client, s);
    }
    const i = Math.min(buckets - 1, Math.max(0, Math.floor((op.start - fromMs) / bucketMs)));
    const latency = op.end - op.start;
    s.maxLatencyMs[i] = Math.max(s.maxLatencyMs[i] ?? 0, latency);
    if (op.outcome !== 'ok' && !s.errorBuckets.includes(i)) s.errorBuckets.push(i);
  }
  return { bucketMs: Math.round(bucketMs * 100) / 100, series: [...byClient.values()].sort((a, b) => a.client - b.client) };
}

/** Short distinct descriptions of failed client operations, for the report. */
export function errorSamples(ops: WorkloadOp[], limit = 5): string[] {
  const seen = new Map<string, number>();
  for (const o of ops) {
    if (o.outcome === 'ok') continue;
    const key = `${o.kind} ${o.outcome === 'fail' ? 'refused' : 'in doubt'}: ${o.error ?? 'unknown error'}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return [...seen.entries()].slice(0, limit).map(([k, n]) => (n > 1 ? `${k} (×${n})` : k));
}

/** Longest span without a successful operation of `kind` on any one tenant: what that tenant's clients saw. */
export function longestTenantGap(ops: WorkloadOp[], kind: WorkloadOp['kind'], tenantOf: (op: WorkloadOp) => string | undefined): Map<string, number> {
  const byTenant = new Map<string, WorkloadOp[]>();
  for (const op of ops) {
    const t = tenantOf(op);
    if (t === undefined || op.kind !== kind) continue;
    const list = byTenant.get(t);
    if (list) list.push(op);
    else byTenant.set(t, [op]);
  }
  return new Map([...byTenant].map(([t, list]) => [t, longestGap(list, kind)]));
}
