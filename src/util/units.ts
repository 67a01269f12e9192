import { UsageError } from '../errors.js';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  mb: 1024 ** 2,
  gb: 1024 ** 3,
  tb: 1024 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** `250ms`, `5s`, `1.5m`, `2h` → milliseconds. A bare number is seconds. `what` names the setting in errors. */
export function parseDuration(input: string | number, what = 'duration'): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new UsageError(`${what}: ${input} is not a valid duration`, 'use e.g. 250ms, 5s, 2m');
    return Math.round(input * 1000);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(input);
  if (!m) throw new UsageError(`${what}: "${input}" is not a duration`, 'use a number with a unit, e.g. 250ms, 5s, 2m, 1h');
  const unit = (m[2] ?? 's').toLowerCase();
  const ms = Number(m[1]) * DURATION_UNITS[unit]!;
  if (!Number.isFinite(ms) || ms > 7 * 24 * 3_600_000) throw new UsageError(`${what}: "${input}" is too large`, 'use at most 7 days');
  return Math.round(ms);
}

/** `512KB`, `1MB`, `2GiB` → bytes (binary multiples). A bare number is bytes. */
export function parseSize(input: string | number, what = 'size'): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new UsageError(`${what}: ${input} is not a valid size`, 'use e.g. 512KB, 1MB');
    return Math.round(input);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b)?\s*$/i.exec(input);
  if (!m) throw new UsageError(`${what}: "${input}" is not a size`, 'use a number with a unit, e.g. 512KB, 1MB, 2GB');
  const unit = (m[2] ?? 'b').toLowerCase();
  const factor = SIZE_UNITS[unit];
  if (factor === undefined) throw new UsageError(`${what}: unknown unit in "${input}"`, 'use B, KB, MB, GB or TB');
  return Math.round(Number(m[1]) * factor);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** A count with thousands separators (3,000,000), the same on every locale. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
