import { describe, expect, it } from 'vitest';
import { PlanError } from '../../src/errors.js';
import { PLAN_DEFAULTS, parsePlan } from '../../src/plan/parse-plan.js';

const BASE = 'source: { url: "mariadb://admin@10.0.0.1/shop" }\ntarget: { url: "mariadb://admin@10.0.0.2/shop" }\n';

describe('plan key privileges: auto | superuser | managed', () => {
  it('defaults to auto', () => {
    expect(PLAN_DEFAULTS.privileges).toBe('auto');
    expect(parsePlan(BASE, 'plan.yaml').privileges).toBe('auto');
  });

  it.each(['auto', 'superuser', 'managed'] as const)('reads %s', (value) => {
    expect(parsePlan(`${BASE}privileges: ${value}\n`, 'plan.yaml').privileges).toBe(value);
  });

  it('a bad value names the key, the line and the allowed values', () => {
    let err: unknown;
    try {
      parsePlan(`${BASE}privileges: manged\n`, 'plan.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PlanError);
    expect((err as Error).message).toContain('plan.yaml:3: privileges: "manged" is not one of auto, superuser, managed (did you mean "managed"?)');
  });
});
