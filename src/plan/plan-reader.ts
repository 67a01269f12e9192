import { isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml';
import { UsageError, isCutoverError, type PlanIssue } from '../errors.js';
import { formatBytes, formatDuration, parseDuration, parseSize } from '../util/units.js';
import { closest } from './suggest.js';

/** Entries one list of a plan may hold (scope names, roles): beyond that, a tenant query selects them. */
export const MAX_LIST_ITEMS = 10_000;

type YNode = Node | null | undefined;

/** Reads YAML nodes into typed values, collecting every issue with its key path and line. */
export class PlanReader {
  readonly issues: PlanIssue[] = [];

  constructor(private readonly lines: LineCounter) {}

  lineOf(node: YNode, fallback?: YNode): number {
    const offset = node?.range?.[0] ?? fallback?.range?.[0];
    return offset === undefined ? 1 : Math.max(1, this.lines.linePos(offset).line);
  }

  report(node: YNode, path: string, message: string, fix?: string, fallback?: YNode): undefined {
    this.issues.push({ line: this.lineOf(node, fallback), path, message, ...(fix ? { fix } : {}) });
    return undefined;
  }

  /** The known entries of a mapping; unknown keys are reported with the closest known one. */
  fields(node: YNode, path: string, keys: readonly string[], keyNode?: YNode): Fields | undefined {
    if (!isMap(node)) {
      return this.report(node, path, `${describe(node)} where a mapping was expected`, `write it as "key: value" lines or { key: value }`, keyNode);
    }
    const entries = new Map<string, Entry>();
    for (const pair of node.items) {
      const key = pair.key as YNode;
      const name = isScalar(key) ? String(key.value) : undefined;
      const at = path ? `${path}.${name ?? '?'}` : (name ?? '?');
      if (name === undefined || !keys.includes(name)) {
        const guess = name === undefined ? undefined : closest(name, keys);
        this.report(key, at, `unknown key${name === undefined ? '' : ` "${name}"`}`, guess ? `did you mean "${guess}"?` : `known keys: ${keys.join(', ')}`, node);
        continue;
      }
      entries.set(name, { key, value: pair.value as YNode });
    }
    return new Fields(this, node, path, entries, keyNode);
  }
}

interface Entry {
  key: YNode;
  value: YNode;
}

function describe(node: YNode): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (!isScalar(node) || node.value === null || node.value === undefined) return 'nothing';
  return typeof node.value === 'string' ? `"${node.value}"` : `${typeof node.value} ${String(node.value)}`;
}

interface Bounds {
  min?: number;
  max?: number;
}

/** One mapping's entries with typed getters. Getters report and return undefined on a bad value. */
export class Fields {
  constructor(
    readonly reader: PlanReader,
    readonly node: Node,
    readonly path: string,
    private readonly entries: Map<string, Entry>,
    /** The key that introduced this mapping: a missing entry is reported on its line. */
    private readonly parentKey?: YNode,
  ) {}

  has(key: string): boolean {
    return this.entries.has(key);
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  pathOf(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  valueNode(key: string): YNode {
    return this.entries.get(key)?.value;
  }

  lineOf(key: string): number {
    const e = this.entries.get(key);
    return this.reader.lineOf(e?.value ?? e?.key, this.node);
  }

  report(key: string, message: string, fix?: string): undefined {
    const e = this.entries.get(key);
    return this.reader.report(e?.value ?? e?.key, this.pathOf(key), message, fix, e?.key ?? this.node);
  }

  missing(key: string, fix?: string): undefined {
    return this.reader.report(this.parentKey ?? this.node, this.pathOf(key), 'is required', fix);
  }

  private scalar(key: string, required: boolean, fix?: string): unknown {
    if (!this.entries.has(key)) return required ? this.missing(key, fix) : undefined;
    const node = this.valueNode(key);
    if (!isScalar(node) || node.value === null || node.value === undefined) {
      return this.report(key, `${describe(node)} where a value was expected`, fix);
    }
    return node.value;
  }

  string(key: string, opts: { required?: boolean; fix?: string } = {}): string | undefined {
    const v = this.scalar(key, opts.required ?? false, opts.fix);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') return this.report(key, `${describe(this.valueNode(key))} is not a string`, opts.fix ?? 'quote it');
    if (v.trim() === '') return this.report(key, 'is empty', opts.fix);
    if (/[\0\r\n]/.test(v)) return this.report(key, 'contains a control character', opts.fix);
    return v;
  }

  boolean(key: string, fallback: boolean): boolean | undefined {
    if (!this.entries.has(key)) return fallback;
    const v = this.scalar(key, true, 'use true or false');
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') return this.report(key, `${describe(this.valueNode(key))} is not true or false`, 'use true or false');
    return v;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T | undefined {
    const v = this.scalar(key, fallback === undefined, `use one of: ${allowed.join(', ')}`);
    if (v === undefined) return this.entries.has(key) ? undefined : fallback;
    if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
    const guess = typeof v === 'string' ? closest(v, allowed) : undefined;
    return this.report(key, `${describe(this.valueNode(key))} is not one of ${allowed.join(', ')}`, guess ? `did you mean "${guess}"?` : `use one of: ${allowed.join(', ')}`);
  }

  duration(key: string, fallback: number, bounds: Bounds): number | undefined {
    return this.measure(key, fallback, bounds, parseDuration, 'duration', 'use e.g. 5s', formatDuration);
  }

  size(key: string, fallback: number, bounds: Bounds): number | undefined {
    return this.measure(key, fallback, bounds, parseSize, 'size', 'use e.g. 1MB', formatBytes);
  }

  private measure(key: string, fallback: number, bounds: Bounds, parse: (input: string | number) => number, what: string, example: string, show: (n: number) => string): number | undefined {
    if (!this.entries.has(key)) return fallback;
    const v = this.scalar(key, true, example);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' && typeof v !== 'number') return this.report(key, `${describe(this.valueNode(key))} is not a ${what}`, example);
    if (typeof v === 'number' && v < 0) return this.report(key, `${v} is negative`, example);
    let n: number;
    try {
      n = parse(v);
    } catch (e) {
      if (!isCutoverError(e)) throw e;
      const tooLarge = /too large/.test(e.message);
      return this.report(key, `${describe(this.valueNode(key))} is ${tooLarge ? 'too large' : `not a ${what}`}`, tooLarge && bounds.max !== undefined ? `use at most ${show(bounds.max)}` : example);
    }
    return this.inBounds(key, n, bounds, show);
  }

  integer(key: string, fallback: number, bounds: Bounds): number | undefined {
    if (!this.entries.has(key)) return fallback;
    const v = this.scalar(key, true);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) return this.report(key, `${describe(this.valueNode(key))} is not a whole number`);
    return this.inBounds(key, v, bounds, String);
  }

  private inBounds(key: string, n: number, bounds: Bounds, show: (n: number) => string): number | undefined {
    if (bounds.min !== undefined && n < bounds.min) return this.report(key, `${describe(this.valueNode(key))} is too small`, `use at least ${show(bounds.min)}`);
    if (bounds.max !== undefined && n > bounds.max) return this.report(key, `${describe(this.valueNode(key))} is too large`, `use at most ${show(bounds.max)}`);
    return n;
  }

  /** A list of non-empty, distinct strings. */
  stringList(key: string, opts: { required?: boolean; fix?: string } = {}): string[] | undefined {
    if (!this.entries.has(key)) return opts.required ? this.missing(key, opts.fix) : undefined;
    const node = this.valueNode(key);
    if (!isSeq(node)) return this.report(key, `${describe(node)} where a list was expected`, opts.fix ?? 'write it as [a, b]');
    if (node.items.length === 0) return this.report(key, 'is an empty list', opts.fix);
    return this.items(node.items as YNode[], this.pathOf(key), true);
  }

  /** A command: one program path as a string (no splitting, no shell), or an argv list. */
  argv(key: string, opts: { required?: boolean } = {}): string[] | undefined {
    const fix = 'write a program path, or an argv list like [./notify.sh, --channel, ops]; use [sh, -c, "..."] for a shell';
    if (!this.entries.has(key)) return opts.required ? this.missing(key, fix) : undefined;
    const node = this.valueNode(key);
    if (isSeq(node)) {
      if (node.items.length === 0) return this.report(key, 'is an empty command', fix);
      return this.items(node.items as YNode[], this.pathOf(key), false);
    }
    const one = this.string(key, { fix });
    return one === undefined ? undefined : [one];
  }

  private items(items: YNode[], path: string, distinct: boolean): string[] | undefined {
    if (items.length > MAX_LIST_ITEMS) {
      return this.reader.report(
        items[MAX_LIST_ITEMS]!,
        path,
        `lists ${items.length} entries, more than the ${MAX_LIST_ITEMS} a plan may list`,
        'select that many tenants with a query instead: tenants: { query: "SELECT ..." }',
        this.node,
      );
    }
    const out: string[] = [];
    // A set, not out.includes(): tens of thousands of names made the check quadratic (47 s for 80k).
    const seen = new Set<string>();
    let ok = true;
    items.forEach((item, i) => {
      const at = `${path}[${i}]`;
      const v = isScalar(item) ? item.value : undefined;
      if (typeof v !== 'string' || v === '' || /[\0\r\n]/.test(v)) {
        ok = false;
        this.reader.report(item, at, `${describe(item)} is not a non-empty string`, 'quote it', this.node);
      } else if (distinct && seen.has(v)) {
        ok = false;
        this.reader.report(item, at, `"${v}" is listed twice`);
      } else {
        out.push(v);
        seen.add(v);
      }
    });
    return ok ? out : undefined;
  }

  fields(key: string, keys: readonly string[]): Fields | undefined {
    if (!this.entries.has(key)) return undefined;
    return this.reader.fields(this.valueNode(key), this.pathOf(key), keys, this.entries.get(key)?.key);
  }
}
