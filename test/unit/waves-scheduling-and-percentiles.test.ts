import { describe, expect, it } from 'vitest';
import { Gate, runPool } from '../../src/engine/waves-pool.js';
import { percentile, windowStats } from '../../src/engine/waves-stats.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('wave scheduling', () => {
  it('never runs more than `concurrency` tenants at once, starts them in order, returns results in order', async () => {
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const r = await runPool([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      started.push(n);
      peak = Math.max(peak, ++running);
      await tick(n % 2 ? 15 : 5);
      running--;
      return n * 10;
    });
    expect(peak).toBe(3);
    expect(started).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(r).toEqual([10, 20, 30, 40, 50, 60, 70]);
  });

  it('concurrency 1 is strictly one after another', async () => {
    const log: string[] = [];
    await runPool(['a', 'b'], 1, async (t) => {
      log.push(`start ${t}`);
      await tick(5);
      log.push(`end ${t}`);
    });
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b']);
  });

  it('stops starting tenants once stop() says so (stopAfterFailures); running ones finish, the rest stay unstarted', async () => {
    let failures = 0;
    const r = await runPool([1, 2, 3, 4, 5], 2, async (n) => {
      await tick(5);
      if (n <= 2) failures++;
      return n;
    }, () => failures >= 2);
    // Tenant 3 started after the first failure, before the second: it runs to its end.
    expect(r).toEqual([1, 2, 3, undefined, undefined]);
  });

  it('the gate serialises sections (the shared pgbouncer.ini edits) even when one fails', async () => {
    const gate = new Gate();
    let inside = 0;
    let overlap = false;
    const section = (fail: boolean) =>
      gate.run(async () => {
        if (++inside > 1) overlap = true;
        await tick(5);
        inside--;
        if (fail) throw new Error('boom');
        return 'ok';
      });
    const results = await Promise.allSettled([section(false), section(true), section(false)]);
    expect(overlap).toBe(false);
    expect(results.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });
});

describe('per-tenant window percentiles', () => {
  it('nearest rank: always a measured value', () => {
    const sorted = Array.from({ length: 20 }, (_, i) => (i + 1) * 10);
    expect(percentile(sorted, 0.5)).toBe(100);
    expect(percentile(sorted, 0.95)).toBe(190);
    expect(percentile(sorted, 1)).toBe(200);
    expect(percentile([7], 0.95)).toBe(7);
    expect(percentile([], 0.5)).toBe(0);
  });

  it('summarises unsorted windows', () => {
    expect(windowStats([300, 100, 200, 1000])).toEqual({ count: 4, p50Ms: 200, p95Ms: 1000, maxMs: 1000 });
    expect(windowStats([])).toEqual({ count: 0, p50Ms: 0, p95Ms: 0, maxMs: 0 });
  });
});
