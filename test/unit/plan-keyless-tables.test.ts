import { describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/plan/index.js';

const BASE = 'engine: postgres\nsource: { url: "postgres://a@h1/shop" }\ntarget: { url: "postgres://a@h2/shop" }\n';

describe('plan: tables.keyless (tables without a key under logical replication)', () => {
  it('is absent by default: every keyless table blocks', () => {
    expect(parsePlan(BASE, 'p.yaml').tables).toBeUndefined();
  });

  it('takes one choice for every table', () => {
    expect(parsePlan(`${BASE}tables: { keyless: full }\n`, 'p.yaml').tables).toEqual({ keyless: { default: 'full', tables: {} } });
  });

  it('takes a choice per table, quoted names included, with a default for the rest', () => {
    const plan = parsePlan(`${BASE}tables:\n  keyless:\n    default: dump\n    public.pgbench_history: full\n    'public."audit log"': block\n`, 'p.yaml');
    expect(plan.tables).toEqual({ keyless: { default: 'dump', tables: { 'public.pgbench_history': 'full', 'public."audit log"': 'block' } } });
  });

  it.each([
    ['an unknown choice', 'tables: { keyless: fast }\n', /p\.yaml:4: tables\.keyless: .*fast.*block, full, dump/],
    ['a table choice that is not one', 'tables:\n  keyless:\n    public.t: copy\n', /p\.yaml:6: tables\.keyless\.public\.t: .*copy/],
    ['a name without a schema', 'tables:\n  keyless:\n    history: full\n', /p\.yaml:6: tables\.keyless\.history: "history" is not a schema-qualified table/],
    ['an unknown key', 'tables: { keyles: full }\n', /p\.yaml:4: tables\.keyles: unknown key.*keyless/],
  ])('refuses %s naming the key and line', (_what, text, message) => {
    expect(() => parsePlan(BASE + text, 'p.yaml')).toThrow(message);
  });

  it('is refused for MariaDB', () => {
    expect(() => parsePlan('engine: mariadb\nsource: { url: "mariadb://a@h1/shop" }\ntarget: { url: "mariadb://a@h2/shop" }\ntables: { keyless: full }\n', 'p.yaml')).toThrow(/p\.yaml:4: tables: applies to PostgreSQL/);
  });
});
