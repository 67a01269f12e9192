import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { RehearseReport } from '../../src/index.js';
import { renderRehearse } from '../../src/cli/render-rehearse.js';
import { renderHtmlReport } from '../../src/report/html.js';
import { validateJson, type JsonSchema } from '../../src/report/json-schema.js';
import { summaryRows } from '../../src/report/summary.js';

/** A rehearsed wave of three tenants: two moved, one (with a hostile name) rolled back. */
function waveReport(): RehearseReport {
  return {
    ok: false,
    mode: 'sandbox',
    engine: 'postgres',
    planId: 'postgres-0123456789ab',
    privileges: 'superuser',
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 12000,
    source: { server: '127.0.0.1:5432', version: '15.20' },
    target: { server: '127.0.0.1:5433', version: '17.10' },
    router: 'PgBouncer 127.0.0.1:6432 (transaction pooling, 3 tenant databases)',
    clients: { writers: 2, readers: 1 },
    writeBlockedMs: 520,
    readBlockedMs: 300,
    fenceToLiftMs: 480,
    budgetMs: 2000,
    copy: { method: 'replication', tables: 6, bytes: 3 << 20, rows: null, durationMs: 900, bytesPerSecond: 3 << 20, rowsPerSecond: null, sampleRows: 3000 },
    steps: [
      { name: 'tenant_01 window', phase: 'cutover', startMs: 5000, endMs: 5400, durationMs: 400 },
      { name: 'tenant_02 window', phase: 'cutover', startMs: 6000, endMs: 6480, durationMs: 480 },
    ],
    marks: [
      { name: 'hold', atMs: 5000 },
      { name: 'lift', atMs: 5400 },
      { name: 'hold', atMs: 6000 },
      { name: 'lift', atMs: 6480 },
    ],
    fence: { terminated: 0, drained: 0, leakClean: true },
    catchUp: { method: 'sentinel', waitedMs: 4 },
    verify: { mode: 'rowcounts', tables: 6, mismatches: 0 },
    workload: {
      startMs: 4000,
      endMs: 9000,
      writes: { ok: 500, failed: 0, inDoubt: 0 },
      reads: { ok: 100, failed: 0 },
      bucketMs: 1000,
      latency: [{ client: 0, kind: 'write', maxLatencyMs: [1, 400, 2, 480, 1], errorBuckets: [] }],
    },
    clientErrors: 0,
    errors: [],
    acknowledgedWrites: 500,
    verifiedWrites: 500,
    missingWrites: [],
    warnings: ['tenant <b>x</b> rolled-back: transform failed'],
    tenants: {
      count: 3,
      concurrency: 1,
      done: 2,
      budgetMs: 2000,
      windows: { count: 2, p50Ms: 400, p95Ms: 480, maxMs: 480 },
      list: [
        { tenant: 'tenant_01', state: 'done', writeBlockedMs: 400, holdAtMs: 5000, liftAtMs: 5400, clientWriteGapMs: 450, acknowledgedWrites: 200 },
        { tenant: 'tenant_02', state: 'done', writeBlockedMs: 480, holdAtMs: 6000, liftAtMs: 6480, clientWriteGapMs: 520, acknowledgedWrites: 180 },
        { tenant: '<b>x</b>', state: 'rolled-back', writeBlockedMs: null, holdAtMs: 7000, liftAtMs: null, clientWriteGapMs: 300, acknowledgedWrites: 120 },
      ],
    },
  };
}

describe('rehearsed wave in the report', () => {
  it('puts the tenants and the per-tenant window percentiles first in the summary (terminal and HTML alike)', () => {
    const rows = summaryRows(waveReport());
    expect(rows[0]).toEqual(['tenants', '2 of 3 moved, 1 at a time, budget 2.00s each']);
    expect(rows[1]![0]).toBe('per-tenant windows');
    expect(rows[1]![1]).toMatch(/^p50 400ms, p95 480ms, max 480ms \(hold to release, 2 measured\)$/);
    expect(renderRehearse(waveReport()).join('\n')).toMatch(/per-tenant windows\s+p50 400ms/);
    expect(renderHtmlReport(waveReport())).toMatch(/<th>per-tenant windows<\/th><td>p50 400ms, p95 480ms, max 480ms/);
  });

  it('draws one bar per moved tenant, names the unfinished one by its state, and escapes tenant names', () => {
    const html = renderHtmlReport(waveReport());
    const chart = html.slice(html.indexOf('<svg id="tenant-windows"'), html.indexOf('</svg>', html.indexOf('<svg id="tenant-windows"')));
    expect(chart.match(/class="bar"/g)).toHaveLength(2);
    expect(chart).toMatch(/<g class="tenant" data-state="rolled-back">.*rolled-back<\/text><\/g>/);
    expect(chart).toMatch(/id="tenant-p95"/);
    expect(chart).toMatch(/id="tenant-budget"/);
    expect(html).not.toContain('<b>x</b>');
    expect(html).not.toMatch(/<script/i);
  });

  it('shades each finished tenant window on the latency timeline, not one span across the wave', () => {
    const html = renderHtmlReport(waveReport());
    expect(html.match(/<rect class="blocked-window" data-tenant="/g)).toHaveLength(2);
    expect(html).not.toMatch(/id="blocked-window"/);
  });

  it('validates against the report schema, where `tenants` is optional', async () => {
    const schema = JSON.parse(await readFile(new URL('../../schemas/rehearse-report.schema.json', import.meta.url), 'utf8')) as JsonSchema;
    const doc = JSON.parse(JSON.stringify(waveReport()));
    expect(validateJson(schema, doc)).toEqual([]);
    const { tenants: _tenants, ...single } = doc;
    expect(validateJson(schema, single)).toEqual([]);
    expect(validateJson(schema, { ...doc, tenants: { ...doc.tenants, list: [{ ...doc.tenants.list[0], state: 'gone' }] } })).toEqual([
      '$.tenants.list[0].state: "gone" is not one of ["pending","syncing","synced","in-flight","done","failed","rolled-back"]',
    ]);
  });
});
