import { UsageError } from '../index.js';

/** A count flag (`--rows`, `--clients`, `--concurrency`): a whole number from 1 to 100 million. */
export function positiveInt(v: string, what: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 100_000_000) throw new UsageError(`${what}: "${v}" is not a positive whole number`, `e.g. ${what} 4`);
  return n;
}
