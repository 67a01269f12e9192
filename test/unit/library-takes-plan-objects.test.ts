import { describe, expect, it } from 'vitest';
import { isWavesPlan, parsePlan, PlanError, type Plan } from '../../src/index.js';

describe('the library takes Plan objects as well as plan files', () => {
  it('exports parsePlan, and a parsed Plan goes straight into a plan command without a file on disk', async () => {
    const single: Plan = parsePlan('source: { url: postgres://app@a/shop }\ntarget: { url: postgres://app@b/shop }\n', '/nowhere/plan.yaml');
    const tenants: Plan = parsePlan('source: { url: postgres://app@a/postgres }\ntarget: { url: postgres://app@b/postgres }\nscope: { tenants: [t1, t2] }\nmethod: dump\nrouter: { kind: none }\n', '/nowhere/waves.yaml');
    expect(await isWavesPlan(single)).toBe(false);
    expect(await isWavesPlan(tenants)).toBe(true);
  });

  it('exports PlanError for a plan that does not parse', () => {
    expect(() => parsePlan('source: 3\n', '/nowhere/bad.yaml')).toThrow(PlanError);
  });
});
