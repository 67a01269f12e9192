/** Escapes text for HTML and SVG, in content and in double- or single-quoted attributes alike. */
export function esc(value: string | number): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export type Attrs = Record<string, string | number | undefined>;

/** One element as markup; attribute values are escaped here, children are markup already. */
export function el(tag: string, attrs: Attrs, ...children: string[]): string {
  const a = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${esc(typeof v === 'number' ? round(v) : v!)}"`)
    .join('');
  return children.length ? `<${tag}${a}>${children.join('')}</${tag}>` : `<${tag}${a}/>`;
}

/** A text node: the only way strings enter the markup. */
export function text(attrs: Attrs, value: string | number): string {
  return el('text', attrs, esc(value));
}

/** Two decimals are plenty for pixels and keep the files small. */
export function round(n: number): number {
  return Math.round(n * 100) / 100;
}

export type Scale = (v: number) => number;

export function linearScale(d0: number, d1: number, r0: number, r1: number): Scale {
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

/** Log scale: a held query of seconds and a normal one of a millisecond both stay readable. */
export function logScale(d0: number, d1: number, r0: number, r1: number): Scale {
  const l0 = Math.log10(d0);
  const lin = linearScale(l0, Math.log10(d1), r0, r1);
  return (v) => lin(Math.log10(Math.max(v, d0)));
}

/** 1-2-5 steps from `min` to `max`, for log-axis gridlines. */
export function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let p = Math.floor(Math.log10(min)); p <= Math.ceil(Math.log10(max)); p++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** p;
      if (v >= min && v <= max) ticks.push(v);
    }
  }
  return ticks;
}

/** About `count` round steps from 0 to `max` (ms), for time axes. */
export function timeTicks(max: number, count = 8): number[] {
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = 0; v <= max + 1e-9; v += step) ticks.push(v);
  return ticks;
}

export function formatMs(ms: number): string {
  if (ms < 1) return `${round(ms)}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${round(ms / 1000)}s`;
}
