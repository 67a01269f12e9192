import { describe, expect, it } from 'vitest';
import { ExitCode, PlanError, UsageError } from '../../src/errors.js';
import { parsePlan } from '../../src/plan/parse-plan.js';

const OK = {
  source: 'source: { url: postgres://app@10.0.0.1/shop, passwordEnv: SRC_PASSWORD }',
  target: 'target: { url: postgres://app@10.0.0.2/shop, passwordEnv: DST_PASSWORD }',
};

/** A plan whose first two lines are valid source/target, then `rest`; line numbers in cases count from 1. */
function planWith(...rest: string[]): string {
  return [OK.source, OK.target, ...rest].join('\n') + '\n';
}

function errorOf(text: string): PlanError {
  try {
    parsePlan(text, 'plan.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(PlanError);
    return e as PlanError;
  }
  throw new Error('expected a PlanError');
}

describe('a bad plan is a usage error naming the file, line and key', () => {
  const cases: Array<[string, string, string]> = [
    ['bad duration', planWith('limits:', '  maxWriteBlocked: 5x'), 'plan.yaml:4: limits.maxWriteBlocked: "5x" is not a duration (use e.g. 5s)'],
    ['negative duration', planWith('limits: { maxWriteBlocked: -5 }'), 'plan.yaml:3: limits.maxWriteBlocked: -5 is negative'],
    ['huge duration', planWith('limits:', '  maxWriteBlocked: 2h'), 'plan.yaml:4: limits.maxWriteBlocked: "2h" is too large (use at most 30m0s)'],
    ['tiny duration', planWith('limits:', '  maxWriteBlocked: 5ms'), 'plan.yaml:4: limits.maxWriteBlocked: "5ms" is too small (use at least 100ms)'],
    ['bad size', planWith('limits:', '  maxLagBeforeFence: lots'), 'plan.yaml:4: limits.maxLagBeforeFence: "lots" is not a size (use e.g. 1MB)'],
    ['huge size', planWith('limits:', '  maxLagBeforeFence: 2TB'), 'plan.yaml:4: limits.maxLagBeforeFence: "2TB" is too large (use at most 10.0 GB)'],
    ['misspelt top key', planWith('verfy: rowcounts'), 'plan.yaml:3: verfy: unknown key "verfy" (did you mean "verify"?)'],
    ['wrong-case key', planWith('limits:', '  maxwriteblocked: 5s'), 'plan.yaml:4: limits.maxwriteblocked: unknown key "maxwriteblocked" (did you mean "maxWriteBlocked"?)'],
    ['unrelated key', planWith('colour: blue'), 'plan.yaml:3: colour: unknown key "colour" (known keys: engine, source'],
    ['bad enum', planWith('verify: rowcount'), 'plan.yaml:3: verify: "rowcount" is not one of none, rowcounts, checksums (did you mean "rowcounts"?)'],
    ['bad method', planWith('method: 7'), 'plan.yaml:3: method: number 7 is not one of replication, dump'],
    ['bad accounts', 'source: { url: "mariadb://r@a/shop" }\ntarget: { url: "mariadb://r@b/shop" }\naccounts: copyall\n', 'plan.yaml:3: accounts: "copyall" is not one of copy, check, skip'],
    ['accounts on postgres', planWith('accounts: check'), 'plan.yaml:3: accounts: is for MySQL/MariaDB; PostgreSQL sync creates missing roles itself (remove accounts from the plan)'],
    [
      'roles on mariadb',
      'source: { url: "mariadb://r@a/shop" }\ntarget: { url: "mariadb://r@b/shop" }\nroles: { passwordEnv: { app: APP_PW } }\n',
      'plan.yaml:3: roles: is for PostgreSQL roles; mariadb accounts are copied with their password hashes',
    ],
    ['roles.passwordEnv not a map', planWith('roles: { passwordEnv: APP_PW }'), 'plan.yaml:3: roles.passwordEnv: must map role names to the variables holding their passwords'],
    ['roles.passwordEnv a password', planWith('roles:', '  passwordEnv: { app: "s3cr3t pw!" }'), 'plan.yaml:4: roles.passwordEnv.app: is not an environment variable name (the value is not shown'],
    ['bad engine', 'engine: oracle\n' + planWith(), 'plan.yaml:1: engine: "oracle" is not one of postgres, mysql, mariadb'],
    ['missing source', `${OK.target}\n`, 'plan.yaml:1: source: is required'],
    ['missing url', `source: { passwordEnv: X }\n${OK.target}\n`, 'plan.yaml:1: source.url: is required (e.g. postgres://'],
    ['url not a string', `source:\n  url: 5\n${OK.target}\n`, 'plan.yaml:2: source.url: number 5 is not a string'],
    ['bad url', `source:\n  url: "http://x/y"\n${OK.target}\n`, 'plan.yaml:2: source.url: unsupported URL scheme "http"'],
    ['wrong engine url', `engine: mysql\n${OK.source}\n${OK.target}\n`, 'plan.yaml:2: source.url: is a postgres URL but engine is mysql'],
    ['same server', `${OK.source}\ntarget:\n  url: postgres://other@10.0.0.1/shop\n`, 'plan.yaml:3: target.url: is the same server and database as source.url'],
    ['bad env name', `source: { url: "postgres://a@h/db", passwordEnv: "my var" }\n${OK.target}\n`, 'plan.yaml:1: source.passwordEnv: is not an environment variable name (the value is not shown'],
    ['source not a map', `source: postgres://a@h/db\n${OK.target}\n`, 'plan.yaml:1: source: "postgres://a@h/db" where a mapping was expected'],
    ['two scopes', planWith('scope:', '  databases: [a]', '  schemas: [b]'), 'plan.yaml:4: scope: has databases and schemas; give exactly one'],
    ['empty scope list', planWith('scope: { databases: [] }'), 'plan.yaml:3: scope.databases: is an empty list'],
    ['duplicate scope name', planWith('scope:', '  databases:', '    - a', '    - a'), 'plan.yaml:6: scope.databases[1]: "a" is listed twice'],
    ['scope item not a string', planWith('scope:', '  databases: [a, {x: 1}]'), 'plan.yaml:4: scope.databases[1]: a mapping is not a non-empty string'],
    ['fence scope for engine', planWith('readOnly:', '  scope: cluster'), 'plan.yaml:4: readOnly.scope: "cluster" is not one of database, server, role, schema'],
    ['schema fence of a database move', planWith('readOnly:', '  scope: schema'), 'plan.yaml:4: readOnly.scope: schema fences one schema; it goes with scope.schemas'],
    ['strict without roles', planWith('readOnly:', '  mode: strict'), 'plan.yaml:3: readOnly.roles: is required (strict mode locks out'],
    ['zero lock timeout', planWith('readOnly: { lockTimeout: 0 }'), 'plan.yaml:3: readOnly.lockTimeout: number 0 is too small (use at least 1ms)'],
    ['gap not integer', planWith('sequences: { gap: 1.5 }'), 'plan.yaml:3: sequences.gap: number 1.5 is not a whole number'],
    ['gap negative', planWith('sequences:', '  gap: -1'), 'plan.yaml:4: sequences.gap: number -1 is too small (use at least 0)'],
    ['router kind missing', planWith('router:', '  path: /x'), 'plan.yaml:3: router.kind: is required'],
    ['router kind typo', planWith('router: { kind: pgbounce }'), 'plan.yaml:3: router.kind: "pgbounce" is not one of none, pgbouncer, haproxy, file, exec (did you mean "pgbouncer"?)'],
    ['router key of another kind', planWith('router:', '  kind: file', '  path: /x', '  ini: /y'), 'plan.yaml:6: router.ini: unknown key "ini" (known keys: kind, path, format)'],
    ['pgbouncer without ini', planWith('router:', '  kind: pgbouncer', '  admin: postgres://pgbouncer@127.0.0.1:6432/pgbouncer'), 'plan.yaml:3: router.ini: is required'],
    [
      'pgbouncer admin db',
      planWith('router: { kind: pgbouncer, admin: "postgres://p@127.0.0.1:6432/shop", ini: /x }'),
      'plan.yaml:3: router.admin: names database "shop", but the admin console is the database "pgbouncer"',
    ],
    ['exec empty command', planWith('router:', '  kind: exec', '  command: []'), 'plan.yaml:5: router.command: is an empty command'],
    ['exec bad timeout', planWith('router:', '  kind: exec', '  command: [x]', '  timeout: 10ms'), 'plan.yaml:6: router.timeout: "10ms" is too small (use at least 1.00s)'],
    ['hook not a command', planWith('hooks:', '  beforeFence: { run: x }'), 'plan.yaml:4: hooks.beforeFence: a mapping where a value was expected'],
    ['state as a MySQL database', planWith('state: mysql://x@y/z'), 'plan.yaml:3: state: a control database must be PostgreSQL'],
    ['empty value', planWith('verify:'), 'plan.yaml:3: verify: nothing where a value was expected'],
    ['yaml syntax', planWith('limits: { a: 1', 'verify: none'), 'plan.yaml:4: YAML syntax:'],
    ['duplicate key', planWith('verify: none', 'verify: rowcounts'), 'plan.yaml:4: YAML syntax: Map keys must be unique'],
    ['no scope and no database in the URL', 'source: { url: "postgres://a@h" }\ntarget: { url: "postgres://a@i" }\n', 'plan.yaml:1: scope: is required'],
    ['empty plan', '', 'plan.yaml:1: the plan is empty'],
    ['not a mapping', '- a\n- b\n', 'plan.yaml:1: a list where a mapping was expected'],
  ];

  it.each(cases)('%s', (_name, text, expected) => {
    const e = errorOf(text);
    expect(e.message.startsWith(expected), `${e.message}\n  does not start with\n${expected}`).toBe(true);
    expect(e).toBeInstanceOf(UsageError);
    expect(e.exitCode).toBe(ExitCode.usage);
  });

  it('reports every problem, not only the first', () => {
    const e = errorOf(planWith('verify: rowcount', 'limits: { maxWriteBlocked: 5x }', 'colour: blue'));
    expect(e.issues.map((i) => `${i.line} ${i.path}`)).toEqual(['3 verify', '4 limits.maxWriteBlocked', '5 colour']);
    expect(e.hint).toContain('plan.yaml:4: limits.maxWriteBlocked');
  });

  it('never echoes a URL password in an error', () => {
    const e = errorOf('engine: mysql\nsource: { url: "postgres://app:hunter2@h/db" }\n' + OK.target + '\n');
    expect(e.message + (e.hint ?? '')).not.toContain('hunter2');
  });
});
