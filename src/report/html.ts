import type { RehearseReport } from '../rehearse/types.js';
import { stepGantt } from './gantt.js';
import { esc, formatMs } from './svg.js';
import { headline, summaryRows } from './summary.js';
import { tenantWindowBars } from './tenants.js';
import { latencyTimeline } from './timeline.js';
import { windowSpan, windowZoom } from './window-zoom.js';

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f; margin: 24px auto; max-width: 1140px; padding: 0 16px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: #555; margin: 0 0 16px; }
.ok { color: #1e7d32; } .failed { color: #c0392b; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid #eee; vertical-align: top; }
th { color: #444; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0; overflow-x: auto; }
figcaption { color: #555; font-size: 13px; margin-top: 4px; }
`;

/**
 * The rehearsal report as one self-contained HTML page: inline CSS and SVG, no script, no external asset.
 * Every string from the report is escaped; the report holds no password (URLs in it never carry one).
 */
export function renderHtmlReport(r: RehearseReport): string {
  const rows = summaryRows(r)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`)
    .join('\n');
  const steps = r.steps.map((s) => `<tr><td>${esc(s.phase)}</td><td>${esc(s.name)}</td><td class="num">${esc(formatMs(s.startMs))}</td><td class="num">${esc(formatMs(s.durationMs))}</td></tr>`).join('\n');
  const errors = r.errors.length ? `<h2>Client errors</h2><ul>${r.errors.map((e) => `<li>${esc(e)}</li>`).join('')}</ul>` : '';
  const missing = r.missingWrites.length ? `<h2>Missing acknowledged writes</h2><p>${esc(r.missingWrites.slice(0, 50).join(', '))}${r.missingWrites.length > 50 ? ' …' : ''}</p>` : '';
  const tenants = r.tenants
    ? `<h2>Tenant windows</h2>
<figure>
${tenantWindowBars(r)}
<figcaption>${esc(`Each tenant's write-blocked window, hold to release: p50 ${formatMs(r.tenants.windows.p50Ms)}, p95 ${formatMs(r.tenants.windows.p95Ms)}, max ${formatMs(r.tenants.windows.maxMs)}. The other tenants stayed writable meanwhile.`)}</figcaption>
</figure>
`
    : '';
  const span = windowSpan(r);
  const zoom = span
    ? `<h2>The write-blocked window</h2>
<figure>
${windowZoom(r)}
<figcaption>${esc(`Hold to lift (${formatMs(span.toMs - span.fromMs)}) on its own axis: where the milliseconds went, per step; "between steps" is the time no step was running (journal, bookkeeping).`)}</figcaption>
</figure>
`
    : '';
  const warnings = r.warnings.length ? `<h2>Warnings</h2><ul>${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`cutover rehearsal ${r.planId}`)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1 class="${r.ok ? 'ok' : 'failed'}">${esc(headline(r))}</h1>
<p class="meta">${esc(`plan ${r.planId} · started ${r.startedAt} · ${formatMs(r.durationMs)} in all · source ${r.source.server} (${r.source.version}) · target ${r.target.server} (${r.target.version})`)}</p>
<h2>Summary</h2>
<table id="summary">
${rows}
</table>
${tenants}<h2>Client latency</h2>
<figure>
${latencyTimeline(r)}
<figcaption>${esc(`Worst latency of each client per ${formatMs(r.workload.bucketMs)} slice. The shaded span runs from the router hold to the lift${r.revert ? ' (the second one, in pink: the revert, back to the old source)' : ''}; red dots mark failed or in-doubt client operations.`)}</figcaption>
</figure>
${zoom}<h2>Steps</h2>
<figure>
${stepGantt(r)}
</figure>
<table id="steps">
<tr><th>stage</th><th>step</th><th>start</th><th>duration</th></tr>
${steps}
</table>
${errors}${missing}${warnings}
</body>
</html>
`;
}
