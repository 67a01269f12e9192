import { describe, expect, it } from 'vitest';
import { openAll } from '../../src/util/open-all.js';

describe('opening several connections at once', () => {
  it('closes the ones that opened when one fails, and throws that failure', async () => {
    const closed: number[] = [];
    const boom = new Error('too many connections');
    const opens = [1, 2, 3].map((n) => async () => {
      if (n === 2) throw boom;
      return n;
    });
    await expect(openAll(opens, async (n) => void closed.push(n))).rejects.toBe(boom);
    expect(closed.sort()).toEqual([1, 3]);
  });

  it('returns every resource when all open', async () => {
    const closed: number[] = [];
    expect(await openAll([async () => 'a', async () => 'b'], async () => void closed.push(0))).toEqual(['a', 'b']);
    expect(closed).toEqual([]);
  });
});
