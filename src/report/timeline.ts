import type { RehearseReport } from '../rehearse/types.js';
import { el, formatMs, linearScale, logScale, logTicks, text, timeTicks } from './svg.js';

const WRITE_COLORS = ['#1f5fbf', '#6a3fb5', '#0b7a8a', '#b5446e', '#3b4cc0', '#8a5a00'];
const READ_COLORS = ['#2e8b3d', '#7a9a01', '#0f8f6f', '#4d7f17'];
const MARK_COLORS: Record<string, string> = { hold: '#b36b00', fence: '#c0392b', 'point-of-no-return': '#555', lift: '#1e7d32' };
const MARK_LABELS: Record<string, string> = { hold: 'hold', fence: 'fence', 'point-of-no-return': 'no return', lift: 'lift' };

/**
 * Per-client worst latency over time (log scale), one line per client, with the hold, fence and lift moments
 * as labelled vertical lines and the window between hold and lift shaded.
 */
export function latencyTimeline(r: RehearseReport, width = 1100, height = 420): string {
  const pad = { left: 64, right: 20, top: 44, bottom: 70 };
  const w = r.workload;
  const values = w.latency.flatMap((s) => s.maxLatencyMs.filter((v): v is number => v !== null));
  // Sub-millisecond operations round to 0 ms; a floor keeps them on the chart.
  const yMin = 0.5;
  const yMax = Math.max(10, ...values) * 1.3;
  const span = Math.max(1, w.endMs - w.startMs);
  const x = linearScale(0, span, pad.left, width - pad.right);
  const y = logScale(yMin, yMax, height - pad.bottom, pad.top);
  const at = (ms: number) => x(ms - w.startMs);
  const bucketMid = (i: number) => x((i + 0.5) * w.bucketMs);
  const parts: string[] = [];

  const hold = r.marks.find((m) => m.name === 'hold') ?? r.marks.find((m) => m.name === 'fence');
  const lift = r.marks.find((m) => m.name === 'lift');
  if (r.tenants) {
    // A wave has one window per tenant, each shaded on its own: the gaps between them are writable time.
    for (const t of r.tenants.list) {
      if (t.holdAtMs === null || t.liftAtMs === null) continue;
      parts.push(
        el('rect', {
          class: 'blocked-window',
          'data-tenant': t.tenant,
          x: at(t.holdAtMs),
          y: pad.top,
          width: Math.max(1, at(t.liftAtMs) - at(t.holdAtMs)),
          height: height - pad.top - pad.bottom,
          fill: '#f6d7a7',
          opacity: 0.45,
        }),
      );
    }
  } else if (hold && lift) {
    parts.push(el('rect', { id: 'blocked-window', x: at(hold.atMs), y: pad.top, width: Math.max(1, at(lift.atMs) - at(hold.atMs)), height: height - pad.top - pad.bottom, fill: '#f6d7a7', opacity: 0.45 }));
  }
  const back = r.revert;
  if (back && back.holdAtMs !== null && back.liftAtMs !== null) {
    // rehearse --revert: the way back's window, shaded like the forward one and labelled at both ends.
    const [from, to] = [at(back.holdAtMs), at(back.liftAtMs)];
    parts.push(el('rect', { id: 'revert-window', x: from, y: pad.top, width: Math.max(1, to - from), height: height - pad.bottom - pad.top, fill: '#f0c4d4', opacity: 0.45 }));
    parts.push(el('line', { class: 'marker', id: 'mark-revert-hold', x1: from, x2: from, y1: pad.top - 4, y2: height - pad.bottom, stroke: '#b5446e', 'stroke-width': 1.5, 'stroke-dasharray': '5 3' }));
    parts.push(el('line', { class: 'marker', id: 'mark-revert-lift', x1: to, x2: to, y1: pad.top - 4, y2: height - pad.bottom, stroke: '#b5446e', 'stroke-width': 1.5, 'stroke-dasharray': '5 3' }));
    parts.push(text({ x: from + 3, y: pad.top - 8, 'font-size': 11, fill: '#b5446e' }, 'revert'));
  }
  for (const t of logTicks(yMin, yMax)) {
    parts.push(el('line', { x1: pad.left, x2: width - pad.right, y1: y(t), y2: y(t), stroke: '#e3e3e3' }));
    parts.push(text({ x: pad.left - 6, y: y(t) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#555' }, formatMs(t)));
  }
  for (const t of timeTicks(span)) {
    parts.push(el('line', { x1: x(t), x2: x(t), y1: height - pad.bottom, y2: height - pad.bottom + 5, stroke: '#888' }));
    parts.push(text({ x: x(t), y: height - pad.bottom + 18, 'text-anchor': 'middle', 'font-size': 11, fill: '#555' }, formatMs(t)));
  }
  parts.push(text({ x: (pad.left + width - pad.right) / 2, y: height - pad.bottom + 36, 'text-anchor': 'middle', 'font-size': 12, fill: '#333' }, 'time since the workload started'));
  parts.push(
    text({ x: 14, y: (pad.top + height - pad.bottom) / 2, 'text-anchor': 'middle', 'font-size': 12, fill: '#333', transform: `rotate(-90 14 ${(pad.top + height - pad.bottom) / 2})` }, 'worst latency per client'),
  );
  parts.push(el('line', { x1: pad.left, x2: width - pad.right, y1: height - pad.bottom, y2: height - pad.bottom, stroke: '#888' }));

  let wi = 0;
  let ri = 0;
  for (const s of w.latency) {
    const color = s.kind === 'write' ? WRITE_COLORS[wi++ % WRITE_COLORS.length]! : READ_COLORS[ri++ % READ_COLORS.length]!;
    let d = '';
    let pen = false;
    s.maxLatencyMs.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${bucketMid(i).toFixed(1)} ${y(v).toFixed(1)}`;
      pen = true;
    });
    parts.push(el('path', { class: `series ${s.kind}`, 'data-client': s.client, d, fill: 'none', stroke: color, 'stroke-width': 1.3, 'stroke-dasharray': s.kind === 'read' ? '4 2' : undefined }));
    for (const i of s.errorBuckets) parts.push(el('circle', { class: 'client-error', cx: bucketMid(i), cy: y(s.maxLatencyMs[i] ?? yMin), r: 4, fill: '#d00' }));
  }

  r.marks.forEach((m, i) => {
    const mx = at(m.atMs);
    const color = MARK_COLORS[m.name] ?? '#333';
    parts.push(el('line', { class: 'marker', id: `mark-${m.name}`, x1: mx, x2: mx, y1: pad.top - 4, y2: height - pad.bottom, stroke: color, 'stroke-width': 1.5, 'stroke-dasharray': '5 3' }));
    // Marks are often a few pixels apart: stagger the labels so they do not overwrite each other.
    parts.push(text({ x: mx + 3, y: pad.top - 8 - (i % 2) * 14, 'font-size': 11, fill: color }, MARK_LABELS[m.name] ?? m.name));
  });

  const legendY = height - 14;
  const legend = [
    el('line', { x1: pad.left, x2: pad.left + 24, y1: legendY, y2: legendY, stroke: WRITE_COLORS[0], 'stroke-width': 2 }),
    text({ x: pad.left + 30, y: legendY + 4, 'font-size': 11 }, `writers (${r.clients.writers})`),
    el('line', { x1: pad.left + 130, x2: pad.left + 154, y1: legendY, y2: legendY, stroke: READ_COLORS[0], 'stroke-width': 2, 'stroke-dasharray': '4 2' }),
    text({ x: pad.left + 160, y: legendY + 4, 'font-size': 11 }, `readers (${r.clients.readers})`),
    el('rect', { x: pad.left + 260, y: legendY - 6, width: 24, height: 12, fill: '#f6d7a7' }),
    text({ x: pad.left + 290, y: legendY + 4, 'font-size': 11 }, `hold → lift (writes blocked ${formatMs(r.writeBlockedMs)} as clients saw it)`),
    el('circle', { cx: pad.left + 620, cy: legendY, r: 4, fill: '#d00' }),
    text({ x: pad.left + 630, y: legendY + 4, 'font-size': 11 }, `client error (${r.clientErrors})`),
  ];
  return el(
    'svg',
    { id: 'latency-timeline', xmlns: 'http://www.w3.org/2000/svg', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'client latency over time' },
    el('title', {}, 'Worst latency per client over time, with the cutover moments'),
    ...parts,
    ...legend,
  );
}
