import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderRehearse } from '../../src/cli/render-rehearse.js';
import { validateJson, type JsonSchema } from '../../src/report/json-schema.js';
import { ROOT, ensureBuilt, spawnCli } from '../helpers/built-cli.js';
import { pg15Missing, pg18Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const unavailable = pg15Missing ?? pg18Missing ?? pgbouncerMissing;

describe.skipIf(unavailable)('cutover rehearse --tenants: a wave of tenant databases through PgBouncer (built CLI)', () => {
  let out: string;
  let run: Awaited<ReturnType<typeof spawnCli>>;
  let doc: any;
  let htmlFile: string;

  beforeAll(async () => {
    await ensureBuilt();
    out = await mkdtemp(join(tmpdir(), 'cutover-rehearse-tenants-'));
    htmlFile = join(out, 'wave.html');
    run = await spawnCli(['rehearse', '--tenants', '5', '--rows', '5000', '--clients', '3', '--json', '--report', htmlFile]);
    doc = JSON.parse(run.stdout);
  }, 180_000);
  afterAll(async () => {
    await rm(out, { recursive: true, force: true });
  });

  it('moves every tenant with zero client errors and every acknowledged write on its tenant on the target', async () => {
    expect(run.exitCode, run.stderr).toBe(0);
    expect(doc).toMatchObject({ ok: true, mode: 'sandbox', engine: 'postgres', clientErrors: 0, missingWrites: [], fence: { leakClean: true } });
    expect(doc.acknowledgedWrites).toBeGreaterThan(100);
    expect(doc.verifiedWrites).toBe(doc.acknowledgedWrites);
    expect(doc.source.version).toMatch(/^15\./);
    expect(doc.target.version).toMatch(/^18\./);
    expect(doc.copy.sampleRows).toBe(5000);
    // Every tenant went through the waves code: its own sync, its own window, on the rehearsal clock.
    expect(doc.tenants).toMatchObject({ count: 5, done: 5, concurrency: 1 });
    expect(doc.tenants.list.map((t: { tenant: string }) => t.tenant)).toEqual(['tenant_01', 'tenant_02', 'tenant_03', 'tenant_04', 'tenant_05']);
    for (const t of doc.tenants.list) {
      expect(t.state).toBe('done');
      expect(t.writeBlockedMs).toBeGreaterThan(0);
      expect(t.writeBlockedMs).toBeLessThan(doc.tenants.budgetMs);
      expect(t.liftAtMs).toBeGreaterThan(t.holdAtMs);
      expect(t.acknowledgedWrites).toBeGreaterThan(0);
    }
    const w = doc.tenants.windows;
    expect(w.count).toBe(5);
    expect(w.p50Ms).toBeLessThanOrEqual(w.p95Ms);
    expect(w.p95Ms).toBeLessThanOrEqual(w.maxMs);
    expect(w.maxMs).toBe(Math.max(...doc.tenants.list.map((t: { writeBlockedMs: number }) => t.writeBlockedMs)));
    expect(doc.steps.filter((s: { name: string }) => / window$/.test(s.name))).toHaveLength(5);
    expect(doc.steps.filter((s: { name: string }) => / sync$/.test(s.name))).toHaveLength(5);
    // --json keeps stdout for the document; the terminal summary renders the same report.
    expect(renderRehearse(doc).join('\n')).toMatch(/per-tenant windows\s+p50 \S+, p95 \S+, max \S+ \(hold to release, 5 measured\)/);
    for (const d of [...run.stderr.matchAll(/sandbox .* in (\/\S+)/g)].map((m) => m[1]!))
      expect(
        await access(d).then(
          () => 'exists',
          () => 'gone',
        ),
        d,
      ).toBe('gone');
    console.log(`rehearse --tenants 5: per-tenant window p50 ${w.p50Ms} ms, p95 ${w.p95Ms} ms, max ${w.maxMs} ms; ${doc.acknowledgedWrites} acknowledged writes verified`);
  });

  it('prints a --json document that validates against schemas/rehearse-report.schema.json', async () => {
    const schema = JSON.parse(await readFile(join(ROOT, 'schemas/rehearse-report.schema.json'), 'utf8')) as JsonSchema;
    expect(validateJson(schema, doc)).toEqual([]);
    expect(validateJson(schema, { ...doc, tenants: { ...doc.tenants, windows: { p50Ms: 1 } } })).not.toEqual([]);
  });

  it('writes an HTML report with the per-tenant windows in its summary and one bar per tenant', async () => {
    const html = await readFile(htmlFile, 'utf8');
    expect(html).toMatch(/<th>per-tenant windows<\/th><td>p50 /);
    expect(html).toMatch(/<svg[^>]*id="tenant-windows"/);
    const chart = html.slice(html.indexOf('id="tenant-windows"'));
    expect(chart.slice(0, chart.indexOf('</svg>')).match(/class="bar"/g)).toHaveLength(5);
    expect(html).not.toMatch(/<script|<link|src="http|href="http/i);
  });
});
