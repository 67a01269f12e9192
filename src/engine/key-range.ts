import type { ChunkRange } from './cutover-adapter.js';

/** A key range for messages: `(10, 20]`, `(-∞, 5]`, `(7, +∞)`. */
export function describeRange(c: ChunkRange): string {
  const key = (k: string[]) => (k.length === 1 ? k[0]! : `(${k.join(', ')})`);
  return `(${c.lo ? key(c.lo) : '-∞'}, ${c.hi ? `${key(c.hi)}]` : '+∞)'}`;
}
