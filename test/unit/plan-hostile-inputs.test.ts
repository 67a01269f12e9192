import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlanError, UsageError } from '../../src/errors.js';
import { parsePlan } from '../../src/plan/parse-plan.js';
import { resolvePlanSecrets } from '../../src/plan/secrets.js';
import { cli } from '../helpers/cli.js';

const SRC = 'source: { url: postgres://app@10.0.0.1/shop, passwordEnv: SRC_PASSWORD }';
const DST = 'target: { url: postgres://app@10.0.0.2/shop, passwordEnv: DST_PASSWORD }';
const plan = (...rest: string[]) => [SRC, DST, ...rest].join('\n') + '\n';

/**
 * Hostile plan files: each is refused as a usage error (exit 2) whose message names the key at fault, never a
 * crash, a hang or a stack trace.
 */
const REFUSED: Array<{ name: string; text: string; key: RegExp }> = [
  { name: 'number where a map belongs', text: `source: 42\n${DST}\n`, key: /source/ },
  { name: 'list where a map belongs', text: `source: [a, b]\n${DST}\n`, key: /source/ },
  { name: 'map where a URL belongs', text: `source: { url: { host: x }, passwordEnv: P }\n${DST}\n`, key: /source\.url/ },
  { name: 'boolean URL', text: `source: { url: true }\n${DST}\n`, key: /source\.url/ },
  { name: 'null URL', text: `source: { url: null }\n${DST}\n`, key: /source\.url/ },
  { name: 'duration 1e308', text: plan('limits: { maxWriteBlocked: 1e308 }'), key: /limits\.maxWriteBlocked/ },
  { name: 'duration Infinity', text: plan('limits: { maxWriteBlocked: .inf }'), key: /limits\.maxWriteBlocked/ },
  { name: 'duration NaN', text: plan('limits: { maxWriteBlocked: .nan }'), key: /limits\.maxWriteBlocked/ },
  { name: 'duration with 400 digits', text: plan(`limits: { maxWriteBlocked: "${'9'.repeat(400)}s" }`), key: /limits\.maxWriteBlocked/ },
  { name: 'size as a list', text: plan('limits: { maxLagBeforeFence: [1MB] }'), key: /limits\.maxLagBeforeFence/ },
  { name: 'fractional sequence gap', text: plan('sequences: { gap: 1.5 }'), key: /sequences\.gap/ },
  { name: 'sequence gap 2^64', text: plan('sequences: { gap: 18446744073709551616 }'), key: /sequences\.gap/ },
  { name: 'unicode engine', text: `engine: pøstgres\n${plan()}`, key: /engine/ },
  { name: 'engine as a list', text: `engine: [postgres]\n${plan()}`, key: /engine/ },
  { name: 'passwordEnv with a space', text: `source: { url: postgres://app@10.0.0.1/shop, passwordEnv: "SRC PW" }\n${DST}\n`, key: /source\.passwordEnv/ },
  { name: 'passwordEnv as shell expansion', text: `source: { url: postgres://app@10.0.0.1/shop, passwordEnv: "\${HOME}" }\n${DST}\n`, key: /source\.passwordEnv/ },
  { name: 'URL with a NUL byte', text: `source: { url: "postgres://app@10.0.0.1/sh\\0op", passwordEnv: P }\n${DST}\n`, key: /source\.url/ },
  { name: 'URL of another engine', text: `engine: postgres\nsource: { url: "mysql://app@10.0.0.1/shop", passwordEnv: P }\n${DST}\n`, key: /source\.url: is a mysql URL but engine is postgres/ },
  { name: 'port out of range', text: `source: { url: "postgres://app@10.0.0.1:99999/shop", passwordEnv: P }\n${DST}\n`, key: /source\.url/ },
  { name: 'key of 10 000 characters', text: plan(`${'k'.repeat(10_000)}: 1`), key: /YAML syntax: .*at most 1024 chars/ },
  { name: 'router kind as a number', text: plan('router: { kind: 3 }'), key: /router\.kind/ },
  { name: 'exec router command as a map', text: plan('router: { kind: exec, command: { run: x } }'), key: /router\.command/ },
  // Aliases nest 10 × 10 × 12 deep: the reader must refuse the first wrong type, not expand them.
  {
    name: 'YAML alias bomb',
    text: [SRC, DST, 'verify: &a [x, x, x, x, x, x, x, x, x, x]', 'method: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', 'hooks: { beforeFence: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b] }'].join('\n'),
    key: /verify: a list where a value was expected/,
  },
  { name: 'duplicate key', text: `${SRC}\n${SRC}\n${DST}\n`, key: /Map keys must be unique/ },
  { name: 'not YAML at all', text: '\u0000\u0001{{{[[[', key: /where a mapping was expected/ },
];

function refusal(text: string): PlanError {
  try {
    parsePlan(text, 'plan.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(PlanError);
    return e as PlanError;
  }
  throw new Error('expected a PlanError');
}

describe('hostile plan files are refused with the key named', () => {
  it.each(REFUSED)('$name', ({ text, key }) => {
    const e = refusal(text);
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toMatch(/^plan\.yaml:\d+: /);
    expect(e.message).toMatch(key);
  });
});

describe('hostile but valid values work', () => {
  it('a password with @ : / % (percent-encoded in the URL) is taken out of the URL and kept intact', () => {
    const password = 'p@ss:w/rd%20%';
    const p = parsePlan(plan().replace(SRC, `source: { url: "postgres://app:${encodeURIComponent(password)}@10.0.0.1/shop" }`), 'plan.yaml');
    expect(p.source.url).not.toContain(encodeURIComponent(password));
    expect(resolvePlanSecrets(p, { DST_PASSWORD: 'x' }).source).toBe(password);
  });

  it('passwordEnv values with @ : / % and unicode are passed through byte for byte', () => {
    const p = parsePlan(plan(), 'plan.yaml');
    const secrets = resolvePlanSecrets(p, { SRC_PASSWORD: 'a@b:c/d%e', DST_PASSWORD: 'ü€ "\'\\' });
    expect(secrets.source).toBe('a@b:c/d%e');
    expect(secrets.target).toBe('ü€ "\'\\');
  });

  it("roles.passwordEnv: each role's password from its variable, listed among the secrets to redact; an unset one names the key", () => {
    const p = parsePlan(plan('roles:\n  passwordEnv: { app: APP_PW, "Odd Role": ODD_PW }'), 'plan.yaml');
    expect(p.roles).toEqual({ passwordEnv: { app: 'APP_PW', 'Odd Role': 'ODD_PW' } });
    const secrets = resolvePlanSecrets(p, { SRC_PASSWORD: 's', DST_PASSWORD: 'd', APP_PW: 'a p@ss', ODD_PW: 'ö' });
    expect(secrets.rolePasswords).toEqual({ app: 'a p@ss', 'Odd Role': 'ö' });
    expect(secrets.all).toEqual(expect.arrayContaining(['a p@ss', 'ö']));
    expect(() => resolvePlanSecrets(p, { SRC_PASSWORD: 's', DST_PASSWORD: 'd', APP_PW: 'x' })).toThrow(/roles\.passwordEnv\.Odd Role: environment variable ODD_PW is not set/);
  });

  it('unicode, spaces, quotes and reserved words in the database name survive the URL', () => {
    const name = 'Shöp "select" db-1';
    const url = (host: string) => `postgres://app@${host}/${encodeURIComponent(name)}`;
    const p = parsePlan(`source: { url: "${url('10.0.0.1')}", passwordEnv: S }\ntarget: { url: "${url('10.0.0.2')}", passwordEnv: D }\n`, 'plan.yaml');
    expect(p.source.database).toBe(name);
    expect(p.scope).toEqual({ kind: 'databases', names: [name] });
  });

  it('a 1 MB comment does not matter', () => {
    expect(parsePlan(plan(`# ${'x'.repeat(1024 * 1024)}`), 'plan.yaml').source.host).toBe('10.0.0.1');
  });
});

describe('the CLI turns hostile plans into exit 2 with the key, never a stack', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cutover-hostile-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it.each(REFUSED.filter((c) => ['duration 1e308', 'map where a URL belongs', 'YAML alias bomb', 'URL with a NUL byte', 'passwordEnv as shell expansion'].includes(c.name)))(
    'cutover check: $name',
    async ({ name, text, key }) => {
      const file = join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
      await writeFile(file, text);
      const r = await cli(['check', file], {});
      expect(r.code).toBe(2);
      expect(r.err).toMatch(key);
      expect(r.err).not.toMatch(/\n\s+at .+:\d+:\d+/);
    },
  );

  it('a missing passwordEnv variable is exit 2 naming the variable', async () => {
    const file = join(dir, 'env.yaml');
    await writeFile(file, plan());
    const r = await cli(['check', file], { DST_PASSWORD: 'x' });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/SRC_PASSWORD/);
  });
});
