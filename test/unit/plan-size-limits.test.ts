import { describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/plan/parse-plan.js';
import { MAX_LIST_ITEMS } from '../../src/plan/plan-reader.js';

const head = 'engine: postgres\nsource: { url: postgres://app@10.0.0.1/app }\ntarget: { url: postgres://app@10.0.0.2/app }\nscope:\n  tenants:\n';
const plan = (names: string[]) => head + names.map((n) => `    - ${n}`).join('\n') + '\n';
const tenants = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);

describe('plan size', () => {
  it(`takes ${MAX_LIST_ITEMS} distinct tenants (checked with a set, not pairwise) and still finds a duplicate among them`, () => {
    expect(parsePlan(plan(tenants(MAX_LIST_ITEMS)), 'p.yaml').scope.names).toHaveLength(MAX_LIST_ITEMS);
    const dup = tenants(MAX_LIST_ITEMS);
    dup[MAX_LIST_ITEMS - 1] = 't17';
    expect(() => parsePlan(plan(dup), 'p.yaml')).toThrow(/scope\.tenants\[9999\]: "t17" is listed twice/);
    // Generous: parsing 10,000 YAML lines twice takes seconds on a loaded 2-core machine (the time is not asserted).
  }, 60_000);

  it('refuses a longer list with one line naming the key and the way out', () => {
    expect(() => parsePlan(plan(tenants(MAX_LIST_ITEMS + 1)), 'p.yaml')).toThrow(/scope\.tenants: lists 10001 entries, more than the 10000 a plan may list.*query/);
  }, 60_000);

  it('refuses a plan file over 4 MB before parsing it', () => {
    const huge = head + `    - ${'x'.repeat(4 * 1024 * 1024)}\n`;
    expect(() => parsePlan(huge, 'big.yaml')).toThrow(/plan file big\.yaml is 4096 KB, more than the 4 MB a plan may be/);
  });
});
