import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parsePlan } from '../../src/plan/parse-plan.js';
import { planId } from '../../src/plan/plan-id.js';
import { resolvePlanSecrets } from '../../src/plan/secrets.js';
import { cli } from '../helpers/cli.js';

const ROUTER = 'router: { kind: pgbouncer, admin: "postgres://pgbouncer:adminpw@127.0.0.1:6432/pgbouncer", ini: /etc/pgbouncer/pgbouncer.ini }';

describe('resolvePlanSecrets', () => {
  it('takes passwords from the named environment variables', () => {
    const plan = parsePlan('source: { url: postgres://app@a/shop, passwordEnv: SRC_PW }\ntarget: { url: postgres://app@b/shop, passwordEnv: DST_PW }\n', 'p.yaml');
    expect(resolvePlanSecrets(plan, { SRC_PW: 'one', DST_PW: 'two' })).toEqual({ source: 'one', target: 'two', all: ['one', 'two'] });
  });

  it('fails naming the variable when it is unset', () => {
    const plan = parsePlan('source: { url: postgres://app@a/shop, passwordEnv: SRC_PW }\ntarget: { url: postgres://app@b/shop }\n', 'p.yaml');
    expect(() => resolvePlanSecrets(plan, {})).toThrow(UsageError);
    expect(() => resolvePlanSecrets(plan, {})).toThrow('source.passwordEnv: environment variable SRC_PW is not set');
  });

  it('rejects an empty password variable the same way from the plan and from --password-env (exit 2)', async () => {
    const plan = parsePlan('source: { url: postgres://app@a/shop, passwordEnv: SRC_PW }\ntarget: { url: postgres://app@b/shop }\n', 'p.yaml');
    expect(() => resolvePlanSecrets(plan, { SRC_PW: '' })).toThrow('source.passwordEnv: environment variable SRC_PW is not set (or empty)');
    const r = await cli(['readonly', 'status', 'postgres://app@127.0.0.1:1/shop', '--password-env', 'SRC_PW'], { SRC_PW: '' });
    expect(r.code).toBe(2);
    expect(r.err).toContain('--password-env: environment variable SRC_PW is not set (or empty)');
  });

  it('never echoes a passwordEnv that may be the password itself: in the plan check, at resolution, or from the CLI with --json', async () => {
    const plan = parsePlan('source: { url: postgres://app@a/shop, passwordEnv: Hunter2secret }\ntarget: { url: postgres://app@b/shop }\n', 'p.yaml');
    const e = (() => {
      try {
        resolvePlanSecrets(plan, {});
      } catch (err) {
        return err as UsageError;
      }
    })();
    expect(e).toBeInstanceOf(UsageError);
    expect(e!.message).toMatch(/^source\.passwordEnv: the environment variable it names is not set/);
    expect(e!.message + e!.hint).not.toContain('Hunter2secret');
    expect(() => parsePlan('source: { url: postgres://app@a/shop, passwordEnv: "s3cr3t!pw" }\ntarget: { url: postgres://app@b/shop }\n', 'p.yaml')).toThrow(/source\.passwordEnv: is not an environment variable name/);
    const bad = (() => {
      try {
        parsePlan('source: { url: postgres://app@a/shop, passwordEnv: "s3cr3t!pw" }\ntarget: { url: postgres://app@b/shop }\n', 'p.yaml');
      } catch (err) {
        return String((err as Error).message);
      }
    })();
    expect(bad).not.toContain('s3cr3t');
    for (const json of [[], ['--json']]) {
      const r = await cli([...json, 'readonly', 'status', 'postgres://app@127.0.0.1:1/shop', '--password-env', 'Tr0ub4dor&3'], {});
      expect(r.code).toBe(2);
      expect(r.out + r.err).toMatch(/--password-env: the environment variable it names is not set/);
      expect(r.out + r.err).not.toContain('Tr0ub4dor');
    }
  });

  it('falls back to a password written in the URL, which the plan itself does not hold', () => {
    const plan = parsePlan(`source: { url: "postgres://app:p%40ss@a/shop" }\ntarget: { url: postgres://app@b/shop }\n${ROUTER}\n`, 'p.yaml');
    expect(JSON.stringify(plan)).not.toMatch(/p%40ss|p@ss|adminpw/);
    expect(plan.warnings).toHaveLength(2);
    expect(resolvePlanSecrets(plan, {})).toEqual({ source: 'p@ss', routerAdmin: 'adminpw', all: ['p@ss', 'adminpw'] });
  });

  it('prefers passwordEnv over a URL password', () => {
    const plan = parsePlan('source: { url: "postgres://app:old@a/shop", passwordEnv: SRC_PW }\ntarget: { url: postgres://app@b/shop }\n', 'p.yaml');
    expect(resolvePlanSecrets(plan, { SRC_PW: 'new' }).source).toBe('new');
  });
});

describe('source.replication: the account the target replicates with', () => {
  it('is read with its password from the named variable, never from the plan', () => {
    const plan = parsePlan('source: { url: postgres://app@a/shop, passwordEnv: SRC_PW, replication: { user: repl, passwordEnv: REPL_PW } }\ntarget: { url: postgres://app@b/shop }\n', 'p.yaml');
    expect(plan.source.replication).toEqual({ user: 'repl', passwordEnv: 'REPL_PW' });
    expect(resolvePlanSecrets(plan, { SRC_PW: 'one', REPL_PW: 'r' })).toMatchObject({ source: 'one', replication: 'r', all: ['one', 'r'] });
    expect(() => resolvePlanSecrets(plan, { SRC_PW: 'one' })).toThrow('source.replication.passwordEnv: environment variable REPL_PW is not set');
  });

  it('needs both user and passwordEnv, and knows no other key', () => {
    const bad = (r: string) => () => parsePlan(`source: { url: postgres://app@a/shop, replication: ${r} }\ntarget: { url: postgres://app@b/shop }\n`, 'p.yaml');
    expect(bad('{ user: repl }')).toThrow(/source\.replication\.passwordEnv.*is required/);
    expect(bad('{ passwordEnv: X }')).toThrow(/source\.replication\.user.*is required/);
    expect(bad('{ user: repl, passwordEnv: X, password: y }')).toThrow(/source\.replication\.password\b/);
  });
});

describe('planId', () => {
  const base = 'source: { url: postgres://app@10.0.0.1/shop }\ntarget: { url: postgres://app@10.0.0.2/shop }\n';

  it('is stable across settings that do not change what moves where', () => {
    const a = planId(parsePlan(base, 'a.yaml'));
    const b = planId(parsePlan(base + 'limits: { maxWriteBlocked: 2s }\nverify: none\nrouter: { kind: file, path: /x }\n', 'other/b.yaml'));
    expect(a).toBe(b);
    expect(a).toMatch(/^shop-[0-9a-f]{12}$/);
  });

  it('changes with the target or the scope', () => {
    const a = planId(parsePlan(base, 'a.yaml'));
    expect(planId(parsePlan(base.replace('10.0.0.2', '10.0.0.3'), 'a.yaml'))).not.toBe(a);
    expect(planId(parsePlan(base + 'scope: { schemas: [public] }\n', 'a.yaml'))).not.toBe(a);
  });
});
