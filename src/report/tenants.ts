import type { RehearseReport } from '../rehearse/types.js';
import { el, esc, formatMs, linearScale, text, timeTicks } from './svg.js';

/**
 * One bar per tenant: its write-blocked window (hold to release), against the per-tenant budget line, with
 * the p95 marked. Tenants that did not finish have no bar and are labelled with their state.
 */
export function tenantWindowBars(r: RehearseReport, width = 1100): string {
  const t = r.tenants!;
  const rowH = 18;
  const pad = { left: 170, right: 90, top: 16, bottom: 40 };
  const height = pad.top + t.list.length * rowH + pad.bottom;
  const end = Math.max(1, t.budgetMs, t.windows.maxMs);
  const x = linearScale(0, end, pad.left, width - pad.right);
  const parts: string[] = [];
  for (const tick of timeTicks(end)) {
    parts.push(el('line', { x1: x(tick), x2: x(tick), y1: pad.top, y2: height - pad.bottom, stroke: '#eee' }));
    parts.push(text({ x: x(tick), y: height - pad.bottom + 16, 'text-anchor': 'middle', 'font-size': 11, fill: '#555' }, formatMs(tick)));
  }
  t.list.forEach((w, i) => {
    const top = pad.top + i * rowH;
    const label = text({ x: pad.left - 8, y: top + 13, 'text-anchor': 'end', 'font-size': 12, fill: '#222' }, w.tenant);
    if (w.writeBlockedMs === null) {
      parts.push(el('g', { class: 'tenant', 'data-state': w.state }, label, text({ x: pad.left + 4, y: top + 13, 'font-size': 11, fill: '#c0392b' }, w.state)));
      return;
    }
    const bw = Math.max(2, x(w.writeBlockedMs) - pad.left);
    parts.push(
      el(
        'g',
        { class: 'tenant', 'data-state': w.state },
        label,
        el('rect', { class: 'bar', x: pad.left, y: top + 3, width: bw, height: rowH - 6, rx: 2, fill: '#d9822b' }, el('title', {}, esc(`${w.tenant}: ${formatMs(w.writeBlockedMs)}`))),
        text({ x: pad.left + bw + 5, y: top + 13, 'font-size': 11, fill: '#444' }, formatMs(w.writeBlockedMs)),
      ),
    );
  });
  const line = (ms: number, color: string, label: string, id: string) => {
    parts.push(el('line', { id, x1: x(ms), x2: x(ms), y1: pad.top - 4, y2: height - pad.bottom, stroke: color, 'stroke-dasharray': '4 3' }));
    parts.push(text({ x: x(ms) + 3, y: pad.top - 5, 'font-size': 11, fill: color }, label));
  };
  if (t.windows.count > 0) line(t.windows.p95Ms, '#555', `p95 ${formatMs(t.windows.p95Ms)}`, 'tenant-p95');
  line(t.budgetMs, '#c0392b', `budget ${formatMs(t.budgetMs)}`, 'tenant-budget');
  parts.push(text({ x: (pad.left + width - pad.right) / 2, y: height - 6, 'text-anchor': 'middle', 'font-size': 12, fill: '#333' }, 'write-blocked window per tenant (hold to release)'));
  return el(
    'svg',
    { id: 'tenant-windows', xmlns: 'http://www.w3.org/2000/svg', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'per-tenant write-blocked windows' },
    el('title', {}, 'Per-tenant write-blocked windows'),
    ...parts,
  );
}
