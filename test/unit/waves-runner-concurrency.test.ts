import { describe, expect, it } from 'vitest';
import { runnerLanes } from '../../src/engine/waves.js';

describe("a shared wave's concurrency: the round's first runner sets it, a later runner's --concurrency only lowers its own share", () => {
  it('the first runner works the wave concurrency and says it set it', () => {
    expect(runnerLanes({ concurrency: 4, first: true }, 4)).toEqual({ lanes: 4, capped: false, message: '4 at a time over every runner (set by this runner, the first of the round)' });
  });

  it('a later runner without --concurrency takes the wave value', () => {
    expect(runnerLanes({ concurrency: 3, first: false }, undefined)).toMatchObject({ lanes: 3, capped: false });
  });

  it('a later runner asking for less works that many, and the message names both values', () => {
    const r = runnerLanes({ concurrency: 4, first: false }, 1);
    expect(r.lanes).toBe(1);
    expect(r.message).toBe("4 at a time over every runner (set by the round's first runner); this runner at most 1 (--concurrency)");
  });

  it('a later runner asking for more is capped to the wave value, and told so', () => {
    const r = runnerLanes({ concurrency: 2, first: false }, 6);
    expect(r).toMatchObject({ lanes: 2, capped: true });
    expect(r.message).toMatch(/--concurrency 6 of this runner is capped to it/);
  });
});
