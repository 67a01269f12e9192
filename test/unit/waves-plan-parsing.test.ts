import { describe, expect, it } from 'vitest';
import { tenantDirName, tenantPlan, orderTenants } from '../../src/engine/waves-plan.js';
import { planId } from '../../src/plan/plan-id.js';
import { parsePlan } from '../../src/plan/parse-plan.js';
import { PlanError } from '../../src/errors.js';

const HEAD = [
  'source: { url: postgres://app@10.0.0.1/postgres, passwordEnv: SRC }',
  'target: { url: postgres://app@10.0.0.2/postgres, passwordEnv: DST }',
  'router: { kind: pgbouncer, admin: postgres://pgbouncer@127.0.0.1:6432/pgbouncer, ini: ./pgbouncer.ini, database: main }',
  'state: ./state',
];

function plan(...rest: string[]) {
  return parsePlan([...HEAD, ...rest].join('\n') + '\n', '/srv/w/plan.yaml');
}

function issues(...rest: string[]): string[] {
  try {
    plan(...rest);
  } catch (e) {
    expect(e).toBeInstanceOf(PlanError);
    return (e as PlanError).issues.map((i) => `${i.line}: ${i.path}: ${i.message}`);
  }
  throw new Error('expected a PlanError');
}

describe('plan parsing of waves', () => {
  it('a tenants scope gets the documented wave defaults', () => {
    expect(plan('scope: { tenants: [a, b] }').waves).toEqual({ concurrency: 1, order: 'listed', maxWriteBlockedPerTenantMs: 2000 });
  });

  it('reads every waves key, resolving a transform path against the plan directory', () => {
    const p = plan('scope: { tenants: [a, b] }', 'waves: { concurrency: 4, order: name, maxWriteBlockedPerTenant: 800ms, stopAfterFailures: 2, transform: { sql: ./reshape.sql } }');
    expect(p.waves).toEqual({ concurrency: 4, order: 'name', maxWriteBlockedPerTenantMs: 800, stopAfterFailures: 2, transform: { kind: 'sql', file: '/srv/w/reshape.sql' } });
    expect(plan('scope: { tenants: [a] }', 'waves: { transform: { command: [./t.sh, --fast] } }').waves?.transform).toEqual({ kind: 'command', command: ['/srv/w/t.sh', '--fast'] });
  });

  it('a tenant query is kept as text; names come from the source at run time', () => {
    expect(plan('scope: { tenants: { query: "SELECT datname FROM pg_database" } }').scope).toEqual({ kind: 'tenants', names: [], query: 'SELECT datname FROM pg_database' });
  });

  it('a plan without tenants has no waves, and a waves key on it is an error on its line', () => {
    expect(plan('scope: { databases: [shop] }').waves).toBeUndefined();
    expect(issues('scope: { databases: [shop] }', 'waves: { concurrency: 2 }')).toEqual(['6: waves: applies to scope.tenants, but scope is databases']);
  });

  it('bad waves values are reported with key path and line', () => {
    expect(issues('scope: { tenants: [a] }', 'waves:', '  concurrency: 0', '  order: random', '  maxWriteBlockedPerTenant: soon', '  stopAfer: 1')).toEqual([
      '7: waves.concurrency: number 0 is too small',
      '8: waves.order: "random" is not one of listed, name',
      '9: waves.maxWriteBlockedPerTenant: "soon" is not a duration',
      '10: waves.stopAfer: unknown key "stopAfer"',
    ]);
    expect(issues('scope: { tenants: [a] }', 'waves: { transform: { sql: a.sql, command: b } }')[0]).toMatch(/^6: waves.transform: has both sql and command/);
    expect(issues('scope: { tenants: { qery: x } }')[0]).toMatch(/^5: scope.tenants.qery: unknown key/);
  });
});

describe('a tenant plan', () => {
  const base = plan('scope: { tenants: [acme, "we/ird"] }', 'limits: { maxWriteBlocked: 9s }', 'waves: { maxWriteBlockedPerTenant: 1500ms }');

  it('is a one-database plan of the tenant: URLs, router entry, budget and its own state dir', () => {
    const t = tenantPlan(base, 'acme');
    expect(t.scope).toEqual({ kind: 'databases', names: ['acme'] });
    expect(t.source).toMatchObject({ url: 'postgres://app@10.0.0.1/acme', database: 'acme', passwordEnv: 'SRC' });
    expect(t.target).toMatchObject({ url: 'postgres://app@10.0.0.2/acme', database: 'acme' });
    expect(t.router).toMatchObject({ kind: 'pgbouncer', database: 'acme' });
    expect(t.limits.maxWriteBlockedMs).toBe(1500);
    expect(t.readOnly.scope).toBe('database');
    expect(t.stateDir).toBe('/srv/w/state/tenants/acme');
    expect(t.waves).toBeUndefined();
  });

  it('each tenant has its own plan id (own journal and lock); odd names get a safe, distinct directory', () => {
    expect(planId(tenantPlan(base, 'acme'))).not.toBe(planId(tenantPlan(base, 'we/ird')));
    expect(tenantDirName('we/ird')).toMatch(/^we_ird~[0-9a-f]{10}$/);
    expect(tenantDirName('..')).not.toBe('..');
    expect(tenantDirName('we/ird')).not.toBe(tenantDirName('we_ird'));
  });

  it('a schema tenant is a one-schema plan of the shared database: schema fence, PgBouncer alias named after it', () => {
    const schemas = plan('scope: { tenants: { schemas: [t1, "Odd t"], database: app } }');
    expect(schemas.scope).toEqual({ kind: 'tenants', names: ['t1', 'Odd t'], database: 'app' });
    const t = tenantPlan(schemas, 'Odd t');
    expect(t.scope).toEqual({ kind: 'schemas', names: ['Odd t'] });
    expect(t.source).toMatchObject({ url: 'postgres://app@10.0.0.1/app', database: 'app' });
    expect(t.target).toMatchObject({ url: 'postgres://app@10.0.0.2/app', database: 'app' });
    expect(t.readOnly.scope).toBe('schema');
    expect(t.router).toMatchObject({ kind: 'pgbouncer', database: 'Odd t' });
    expect(planId(t)).not.toBe(planId(tenantPlan(schemas, 't1')));
    expect(plan('scope: { tenants: { query: "SELECT nspname FROM pg_namespace", database: app } }').scope).toEqual({ kind: 'tenants', names: [], query: 'SELECT nspname FROM pg_namespace', database: 'app' });
  });

  it('a schemas scope fences its schema by default; schema tenants need their database, and are PostgreSQL only', () => {
    expect(plan('scope: { schemas: [t1] }').readOnly.scope).toBe('schema');
    expect(issues('scope: { tenants: { schemas: [a] } }')[0]).toMatch(/^5: scope.tenants.database: is required/);
    expect(issues('scope: { tenants: { schemas: [a], query: x, database: d } }')[0]).toMatch(/^5: scope.tenants: has query and schemas; give one/);
    const mysql = (...rest: string[]) => issues('engine: mariadb', ...rest).find((i) => /scope/.test(i));
    expect(mysql('scope: { tenants: { schemas: [a], database: d } }')).toMatch(/scope.tenants.database: schema tenants are PostgreSQL only/);
    expect(mysql('scope: { schemas: [a] }')).toMatch(/scope.schemas: moves schemas of one PostgreSQL database/);
  });

  it('orders tenants as listed or by name', () => {
    expect(orderTenants(['b', 'a', 'c'], 'listed')).toEqual(['b', 'a', 'c']);
    expect(orderTenants(['b', 'a', 'c'], 'name')).toEqual(['a', 'b', 'c']);
  });
});
