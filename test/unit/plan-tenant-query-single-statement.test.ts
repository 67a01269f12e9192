import { describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/plan/parse-plan.js';
import { hasSeveralStatements } from '../../src/plan/single-statement.js';

const plan = (query: string) => `engine: postgres\nsource: { url: postgres://app@10.0.0.1/app }\ntarget: { url: postgres://app@10.0.0.2/app }\nscope: { tenants: { query: ${JSON.stringify(query)} } }\n`;

describe('a tenant query is one statement', () => {
  it.each([
    ["SELECT datname FROM pg_database WHERE datname LIKE 'tenant_%'", false],
    ['SELECT 1;', false],
    ['SELECT 1 ;  -- trailing comment\n ; ', false],
    ['SELECT \'a;b\' AS "x;y"', false],
    ['SELECT $q$;$q$', false],
    ['SELECT `a;b` FROM t /* ; */', false],
    ["SELECT 'it''s; fine'", false],
    ["SELECT 'esc\\'; still inside'", false],
    ['COMMIT; DROP TABLE t', true],
    ['SELECT datname FROM pg_database; COMMIT; CREATE TABLE x()', true],
    ['SELECT 1;SELECT 2', true],
    ['SELECT 1; /* c */ SELECT 2', true],
  ])('%s → %s', (sql, several) => {
    expect(hasSeveralStatements(sql)).toBe(several);
  });

  it('plan validation refuses a query with a second statement, naming the key', () => {
    expect(() => parsePlan(plan('SELECT datname FROM pg_database; COMMIT; CREATE TABLE escaped()'), 'p.yaml')).toThrow(/scope\.tenants\.query: holds more than one statement/);
    expect(parsePlan(plan("SELECT datname FROM pg_database WHERE datname LIKE 'tenant_%';"), 'p.yaml').scope).toMatchObject({ kind: 'tenants' });
  });
});
