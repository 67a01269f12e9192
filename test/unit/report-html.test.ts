import { describe, expect, it } from 'vitest';
import type { RehearseReport } from '../../src/index.js';
import { renderHtmlReport } from '../../src/report/html.js';
import { esc } from '../../src/report/svg.js';

function report(over: Partial<RehearseReport> = {}): RehearseReport {
  return {
    ok: true,
    mode: 'sandbox',
    engine: 'postgres',
    planId: 'shop-0123456789ab',
    privileges: 'superuser',
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 9000,
    source: { server: '127.0.0.1:5432', version: '15.20' },
    target: { server: '127.0.0.1:5433', version: '17.10' },
    router: 'PgBouncer 127.0.0.1:6432 (transaction pooling)',
    clients: { writers: 2, readers: 1 },
    writeBlockedMs: 420,
    readBlockedMs: 400,
    fenceToLiftMs: 380,
    budgetMs: 5000,
    copy: { method: 'replication', tables: 2, bytes: 1 << 20, rows: 1000, durationMs: 500, bytesPerSecond: 2 << 20, rowsPerSecond: 2000, sampleRows: 1000 },
    steps: [
      { name: 'start servers', phase: 'servers', startMs: 0, endMs: 3000, durationMs: 3000 },
      { name: 'hold', phase: 'cutover', startMs: 5000, endMs: 5020, durationMs: 20 },
      { name: 'fence', phase: 'cutover', startMs: 5020, endMs: 5100, durationMs: 80 },
      { name: 'lift', phase: 'cutover', startMs: 5300, endMs: 5380, durationMs: 80 },
    ],
    marks: [
      { name: 'hold', atMs: 5000 },
      { name: 'fence', atMs: 5020 },
      { name: 'lift', atMs: 5380 },
    ],
    fence: { terminated: 0, drained: 0, leakClean: true },
    catchUp: { method: 'sentinel', waitedMs: 3 },
    verify: { mode: 'rowcounts', tables: 2, mismatches: 0 },
    workload: {
      startMs: 4000,
      endMs: 7000,
      writes: { ok: 300, failed: 0, inDoubt: 0 },
      reads: { ok: 100, failed: 0 },
      bucketMs: 1000,
      latency: [
        { client: 0, kind: 'write', maxLatencyMs: [1, 400, 2], errorBuckets: [] },
        { client: 1000, kind: 'read', maxLatencyMs: [1, null, 1], errorBuckets: [2] },
      ],
    },
    clientErrors: 0,
    errors: [],
    acknowledgedWrites: 300,
    verifiedWrites: 300,
    missingWrites: [],
    warnings: [],
    ...over,
  };
}

describe('HTML rehearsal report', () => {
  it('is one self-contained page: inline SVG, no script, no external asset', () => {
    const html = renderHtmlReport(report());
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toMatch(/<svg id="latency-timeline"/);
    expect(html).toMatch(/<svg id="step-gantt"/);
    expect(html).not.toMatch(/<script|<link|<img|url\(|https?:\/\/(?!www\.w3\.org\/2000\/svg)/i);
  });

  it('marks hold, fence and lift as labelled vertical lines at their moments, and draws one bar per step', () => {
    const html = renderHtmlReport(report());
    for (const m of ['hold', 'fence', 'lift']) expect(html).toMatch(new RegExp(`<line class="marker" id="mark-${m}" x1="([\\d.]+)" x2="\\1"`));
    expect(html.match(/class="bar"/g)).toHaveLength(4);
    expect(html).toContain('class="client-error"');
    // The timeline starts at the workload start: the lift (5380 ms) is right of the fence (5020 ms).
    const x = (m: string) => Number(new RegExp(`id="mark-${m}" x1="([\\d.]+)"`).exec(html)![1]);
    expect(x('lift')).toBeGreaterThan(x('fence'));
  });

  it('escapes every string that comes from the report', () => {
    const evil = '<img src=x onerror="alert(1)">&\'';
    const html = renderHtmlReport(report({ planId: evil, router: evil, warnings: [evil], errors: [evil], steps: [{ name: evil, phase: 'sync', startMs: 0, endMs: 10, durationMs: 10 }] }));
    expect(html).not.toContain('<img');
    expect(html).not.toContain('onerror="');
    expect(html).toContain(esc(evil));
  });

  it('says which privilege profile the cutover ran with', () => {
    expect(renderHtmlReport(report({ privileges: 'managed' }))).toContain('managed profile (the cutover ran as an admin without superuser)');
    expect(renderHtmlReport(report())).not.toContain('managed profile');
  });

  it('shows a failed rehearsal as failed, with the missing writes', () => {
    const html = renderHtmlReport(report({ ok: false, missingWrites: ['0:17', '1:3'], verifiedWrites: 298 }));
    expect(html).toContain('class="failed"');
    expect(html).toContain('0:17, 1:3');
    expect(html).toContain('MISSING 2');
  });

  it('zooms into the window: hold to lift on its own axis, one bar per step inside it and the time between steps', () => {
    const html = renderHtmlReport(report());
    const zoom = /<svg id="window-zoom"[\s\S]*?<\/svg>/.exec(html)?.[0] ?? '';
    expect(zoom).not.toBe('');
    // hold, fence and lift are inside 5000..5380 ms; the server start is not.
    expect(zoom.match(/class="window-step"/g)).toHaveLength(3);
    expect(zoom).toContain('between steps');
    // 380 ms of window, 180 in steps: 200 ms between them.
    expect(zoom).toMatch(/200ms \(53%\)/);
    expect(zoom).toContain('time since the hold (window 380ms)');
    expect(html.indexOf('id="window-zoom"')).toBeLessThan(html.indexOf('id="step-gantt"'));
  });

  it('has no zoomed window when the run never reached the lift', () => {
    const html = renderHtmlReport(report({ marks: [{ name: 'hold', atMs: 5000 }] }));
    expect(html).not.toContain('id="window-zoom"');
  });
});
