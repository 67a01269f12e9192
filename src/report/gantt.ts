import type { RehearsePhase, RehearseReport } from '../rehearse/types.js';
import { el, esc, formatMs, linearScale, text, timeTicks } from './svg.js';

const PHASE_COLORS: Record<RehearsePhase, string> = {
  servers: '#9aa5b1',
  data: '#7f8c9d',
  workload: '#5b8def',
  sync: '#3b6fd6',
  cutover: '#d9822b',
  drain: '#5b8def',
  revert: '#b5446e',
  verify: '#2e8b3d',
  teardown: '#9aa5b1',
};

/** One bar per step on the rehearsal clock; cutover steps (the write-blocked part) stand out in orange. */
export function stepGantt(r: RehearseReport, width = 1100): string {
  const rowH = 22;
  const pad = { left: 170, right: 90, top: 16, bottom: 40 };
  const height = pad.top + r.steps.length * rowH + pad.bottom;
  const end = Math.max(1, r.durationMs, ...r.steps.map((s) => s.endMs));
  const x = linearScale(0, end, pad.left, width - pad.right);
  const parts: string[] = [];
  for (const t of timeTicks(end)) {
    parts.push(el('line', { x1: x(t), x2: x(t), y1: pad.top, y2: height - pad.bottom, stroke: '#eee' }));
    parts.push(text({ x: x(t), y: height - pad.bottom + 16, 'text-anchor': 'middle', 'font-size': 11, fill: '#555' }, formatMs(t)));
  }
  r.steps.forEach((s, i) => {
    const top = pad.top + i * rowH;
    const bx = x(s.startMs);
    const bw = Math.max(2, x(s.endMs) - bx);
    parts.push(
      el(
        'g',
        { class: 'step', 'data-phase': s.phase },
        text({ x: pad.left - 8, y: top + 15, 'text-anchor': 'end', 'font-size': 12, fill: '#222' }, s.name),
        el('rect', { class: 'bar', x: bx, y: top + 4, width: bw, height: rowH - 8, rx: 2, fill: PHASE_COLORS[s.phase] }, el('title', {}, esc(`${s.name}: ${formatMs(s.durationMs)}`))),
        text({ x: bx + bw + 5, y: top + 15, 'font-size': 11, fill: '#444' }, formatMs(s.durationMs)),
      ),
    );
  });
  parts.push(text({ x: (pad.left + width - pad.right) / 2, y: height - 6, 'text-anchor': 'middle', 'font-size': 12, fill: '#333' }, 'time since the rehearsal started'));
  return el(
    'svg',
    { id: 'step-gantt', xmlns: 'http://www.w3.org/2000/svg', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'step timeline' },
    el('title', {}, 'Steps of the rehearsal'),
    ...parts,
  );
}
