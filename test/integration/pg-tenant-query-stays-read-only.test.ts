import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveTenants } from '../../src/engine/waves-plan.js';
import { parsePlan } from '../../src/plan/parse-plan.js';
import { client, exec, PostgresSandbox, pg15Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing)('a tenant query cannot escape its read-only transaction (PostgreSQL)', () => {
  let sb: PostgresSandbox;
  beforeAll(async () => {
    sb = await PostgresSandbox.start({ major: 15 });
    await exec(sb, 'postgres', 'CREATE DATABASE tenant_a', 'CREATE DATABASE tenant_b');
  });
  afterAll(async () => sb?.stop());

  it('a query smuggled past validation with COMMIT; is refused by the server and changes nothing', async () => {
    const text = [
      'engine: postgres',
      `source: { url: "postgres://postgres@127.0.0.1:${sb.port}/postgres", passwordEnv: PW }`,
      'target: { url: "postgres://postgres@127.0.0.1:1/postgres" }',
      `scope: { tenants: { query: "SELECT datname FROM pg_database WHERE datname LIKE 'tenant%'" } }`,
      'method: dump',
    ].join('\n');
    const plan = parsePlan(text, '/tmp/p.yaml');
    const secrets = { source: sb.password, all: [sb.password] };
    expect(await resolveTenants(plan, secrets)).toEqual(['tenant_a', 'tenant_b']);
    // What a plan built in code (not through validation) could hold:
    (plan.scope as { query?: string }).query = "SELECT 'tenant_a'::text; COMMIT; CREATE TABLE escaped (id int)";
    await expect(resolveTenants(plan, secrets)).rejects.toThrow(/multiple commands|prepared statement/);
    const c = await client(sb);
    try {
      expect((await c.query(`SELECT to_regclass('public.escaped') AS t`)).rows[0].t).toBeNull();
    } finally {
      await c.end();
    }
  });
});
