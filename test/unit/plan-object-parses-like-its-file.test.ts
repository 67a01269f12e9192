import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parsePlan, type PlanDocument } from '../../src/index.js';

const doc: PlanDocument = {
  engine: 'postgres',
  source: { url: 'postgres://app@10.0.0.1/shop', passwordEnv: 'SRC_PW' },
  target: { url: 'postgres://app@10.0.0.2:5433/shop', passwordEnv: 'DST_PW' },
  scope: { databases: ['shop'] },
  readOnly: { scope: 'database', drainTimeout: '2s' },
  limits: { maxWriteBlocked: '3s' },
  verify: 'rowcounts',
  router: { kind: 'pgbouncer', admin: 'postgres://pgbouncer@127.0.0.1:6432/pgbouncer', adminPasswordEnv: 'PGB_PW', ini: './pgbouncer.ini', database: 'shop' },
  state: './state',
};

describe('a plan built as an object', () => {
  it('parses to the same Plan as the same plan written as a file, defaults and relative paths included', () => {
    const fromObject = parsePlan(doc, '/plans/shop.plan.yaml');
    expect(fromObject).toEqual(parsePlan(stringify(doc), '/plans/shop.plan.yaml'));
    expect(fromObject.limits).toEqual({ maxWriteBlockedMs: 3000, maxLagBeforeFenceBytes: 1024 ** 2 });
    expect(fromObject.stateDir).toBe('/plans/state');
    expect(fromObject.router).toMatchObject({ kind: 'pgbouncer', ini: '/plans/pgbouncer.ini' });
  });

  it('is refused with the key path of what is wrong, as a file would be', () => {
    expect(() => parsePlan({ ...doc, limits: { maxWriteBlocked: '10ms' } }, 'p.yaml')).toThrow(/^p\.yaml:1: limits\.maxWriteBlocked: "10ms" is too small/);
    expect(() => parsePlan({ ...doc, readOnly: { scope: 'sever' as 'server' } }, 'p.yaml')).toThrow(/readOnly\.scope: "sever" is not one of/);
  });
});
