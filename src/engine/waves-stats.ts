/** Per-tenant write-blocked windows summarised the way operators quote them. */
export interface WindowStats {
  /** Windows measured (a tenant finished after a restart past its point of no return has none). */
  count: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

/** Nearest-rank percentile (q in 0..1): always one of the measured values, never an interpolation. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function windowStats(windows: readonly number[]): WindowStats {
  const sorted = [...windows].sort((a, b) => a - b);
  return { count: sorted.length, p50Ms: percentile(sorted, 0.5), p95Ms: percentile(sorted, 0.95), maxMs: sorted.at(-1) ?? 0 };
}
