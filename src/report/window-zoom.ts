import type { RehearseReport } from '../rehearse/types.js';
import { el, esc, formatMs, linearScale, text, timeTicks } from './svg.js';

/** The window as clients saw it: from the hold (the fence without a router) to the lift. */
export function windowSpan(r: RehearseReport): { fromMs: number; toMs: number } | undefined {
  const at = (n: string) => r.marks.find((m) => m.name === n)?.atMs;
  const from = at('hold') ?? at('fence');
  const to = at('lift');
  return from !== undefined && to !== undefined && to > from ? { fromMs: from, toMs: to } : undefined;
}

/**
 * The write-blocked window on its own axis (0 = hold): one bar per cutover step inside it, and the time between
 * steps as one more row, so the milliseconds of a 400 ms window stay readable next to a minutes-long run.
 */
export function windowZoom(r: RehearseReport, width = 1100): string {
  const span = windowSpan(r);
  if (!span) return '';
  const steps = r.steps.filter((s) => s.phase === 'cutover' && s.endMs > span.fromMs && s.startMs < span.toMs);
  const total = span.toMs - span.fromMs;
  const inSteps = steps.reduce((n, s) => n + Math.min(s.endMs, span.toMs) - Math.max(s.startMs, span.fromMs), 0);
  const rows = [
    ...steps.map((s) => ({ name: s.name, start: Math.max(s.startMs, span.fromMs) - span.fromMs, end: Math.min(s.endMs, span.toMs) - span.fromMs })),
    { name: 'between steps', start: 0, end: Math.max(0, total - inSteps) },
  ];
  const rowH = 22;
  const pad = { left: 170, right: 90, top: 16, bottom: 40 };
  const height = pad.top + rows.length * rowH + pad.bottom;
  const x = linearScale(0, total, pad.left, width - pad.right);
  const parts: string[] = [];
  for (const t of timeTicks(total)) {
    parts.push(el('line', { x1: x(t), x2: x(t), y1: pad.top, y2: height - pad.bottom, stroke: '#eee' }));
    parts.push(text({ x: x(t), y: height - pad.bottom + 16, 'text-anchor': 'middle', 'font-size': 11, fill: '#555' }, formatMs(t)));
  }
  rows.forEach((s, i) => {
    const top = pad.top + i * rowH;
    const bx = x(s.start);
    const bw = Math.max(2, x(s.end) - bx);
    const gap = i === rows.length - 1;
    parts.push(
      el(
        'g',
        { class: gap ? 'window-gap' : 'window-step' },
        text({ x: pad.left - 8, y: top + 15, 'text-anchor': 'end', 'font-size': 12, fill: '#222' }, s.name),
        el('rect', { class: 'window-bar', x: bx, y: top + 4, width: bw, height: rowH - 8, rx: 2, fill: gap ? '#b8b8b8' : '#d9822b' }, el('title', {}, esc(`${s.name}: ${formatMs(s.end - s.start)}`))),
        text({ x: bx + bw + 5, y: top + 15, 'font-size': 11, fill: '#444' }, `${formatMs(s.end - s.start)} (${Math.round(((s.end - s.start) / total) * 100)}%)`),
      ),
    );
  });
  parts.push(text({ x: (pad.left + width - pad.right) / 2, y: height - 6, 'text-anchor': 'middle', 'font-size': 12, fill: '#333' }, `time since the hold (window ${formatMs(total)})`));
  return el(
    'svg',
    { id: 'window-zoom', xmlns: 'http://www.w3.org/2000/svg', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'write-blocked window, per step' },
    el('title', {}, 'The write-blocked window, per step'),
    ...parts,
  );
}
