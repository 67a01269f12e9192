import { describe, expect, it } from 'vitest';
import { CopyWindowGate, Gate, runPool } from '../../src/engine/waves-pool.js';
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
    const r = await runPool(
      [1, 2, 3, 4, 5],
      2,
      async (n) => {
        await tick(5);
        if (n <= 2) failures++;
        return n;
      },
      () => failures >= 2,
    );
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

  it("the gate's idle waits for the sections called before it, not for those called after", async () => {
    const gate = new Gate();
    const log: string[] = [];
    const first = gate.run(async () => {
      await tick(20);
      log.push('first');
    });
    const idle = gate.idle().then(() => log.push('idle'));
    const later = gate.run(async () => {
      await tick(20);
      log.push('later');
    });
    await Promise.all([first, idle, later]);
    expect(log).toEqual(['first', 'idle', 'later']);
    // Idle at once when nothing runs, and after a section that failed.
    await gate.run(async () => Promise.reject(new Error('boom'))).catch(() => {});
    await expect(gate.idle()).resolves.toBeUndefined();
  });
});

describe('copies and windows kept apart', () => {
  /** Each tenant of a lane: copy (when fresh), then its window; the log says what ran alongside what. */
  async function wave(tenants: Array<{ name: string; fresh: boolean; copyMs: number; windowMs: number }>, concurrency: number) {
    const phases = new CopyWindowGate();
    const active = { copy: new Set<string>(), window: new Set<string>() };
    const clashes: string[] = [];
    let peakWindows = 0;
    const order: string[] = [];
    await runPool(tenants, concurrency, async (t) => {
      if (t.fresh)
        await phases.copy(async () => {
          active.copy.add(t.name);
          if (active.window.size) clashes.push(`copy ${t.name} during window of ${[...active.window].join(',')}`);
          await tick(t.copyMs);
          active.copy.delete(t.name);
        });
      await phases.window(async () => {
        active.window.add(t.name);
        order.push(t.name);
        peakWindows = Math.max(peakWindows, active.window.size);
        if (active.copy.size) clashes.push(`window ${t.name} during copy of ${[...active.copy].join(',')}`);
        await tick(t.windowMs);
        active.window.delete(t.name);
      });
    });
    return { clashes, peakWindows, order };
  }

  it('no copy runs during any tenant window at concurrency 4, and windows still run side by side', async () => {
    const tenants = Array.from({ length: 12 }, (_, i) => ({ name: `t${i}`, fresh: true, copyMs: 5 + ((i * 7) % 20), windowMs: 5 + ((i * 3) % 10) }));
    const r = await wave(tenants, 4);
    expect(r.clashes).toEqual([]);
    expect(r.order.sort()).toEqual(tenants.map((t) => t.name).sort());
    expect(r.peakWindows).toBeGreaterThan(1);
  });

  it('a tenant waiting for its window holds new copies back (windows are not starved by a stream of copies)', async () => {
    const phases = new CopyWindowGate();
    const log: string[] = [];
    const longCopy = phases.copy(async () => {
      log.push('copy a start');
      await tick(30);
      log.push('copy a end');
    });
    await tick(1);
    const win = phases.window(async () => {
      log.push('window b');
    });
    await tick(1);
    const lateCopy = phases.copy(async () => {
      log.push('copy c start');
    });
    await Promise.all([longCopy, win, lateCopy]);
    expect(log).toEqual(['copy a start', 'copy a end', 'window b', 'copy c start']);
  });

  it('resumed and already-synced tenants (window only) mix with fresh ones without a clash or a hang', async () => {
    const tenants = ['a', 'b', 'c', 'd', 'e', 'f'].map((name, i) => ({ name, fresh: i % 2 === 0, copyMs: 15, windowMs: 5 }));
    const r = await wave(tenants, 3);
    expect(r.clashes).toEqual([]);
    expect(r.order).toHaveLength(6);
  });

  it('a copy or window that throws frees the gate for the others', async () => {
    const phases = new CopyWindowGate();
    await expect(phases.copy(async () => Promise.reject(new Error('dump failed')))).rejects.toThrow('dump failed');
    await expect(phases.window(async () => Promise.reject(new Error('verify failed')))).rejects.toThrow('verify failed');
    await expect(phases.copy(async () => 'copied')).resolves.toBe('copied');
    await expect(phases.window(async () => 'moved')).resolves.toBe('moved');
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
