import { describe, expect, it } from 'vitest';
import { PlanError } from '../../src/errors.js';
import { tenantPlan } from '../../src/engine/waves-plan.js';
import { parsePlan } from '../../src/plan/parse-plan.js';

const plan = (...rest: string[]) =>
  ['source: { url: postgres://app@10.0.0.1/postgres, passwordEnv: SRC_PASSWORD }', 'target: { url: postgres://app@10.0.0.2/postgres, passwordEnv: DST_PASSWORD }', ...rest].join('\n') + '\n';

describe('plan reverse for waves: database tenants opt in, each tenant plan keeps it; schema tenants have none', () => {
  it('off by default for a waves plan, on when asked, and every tenant plan carries it', () => {
    expect(parsePlan(plan('scope: { tenants: [a, b] }'), 'p.yaml').reverse).toBe(false);
    const p = parsePlan(plan('scope: { tenants: [a, b] }', 'reverse: true'), 'p.yaml');
    expect(p.reverse).toBe(true);
    expect(tenantPlan(p, 'a')).toMatchObject({ reverse: true, scope: { kind: 'databases', names: ['a'] } });
  });

  it('schema tenants: refused naming the key and why', () => {
    let err: unknown;
    try {
      parsePlan(plan('scope: { tenants: { schemas: [a, b], database: app } }', 'reverse: true'), 'p.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PlanError);
    expect((err as Error).message).toMatch(/p\.yaml:4: reverse: reverse replication follows whole databases .*tenants of one database \(schemas\) has none/);
  });
});
