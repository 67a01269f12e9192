import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRouter } from '../../adapters/routers/create-router.js';
import { ExecRouter } from '../../adapters/routers/exec-router.js';
import { FileRouter } from '../../adapters/routers/file-router.js';
import { tenantPlan } from '../../src/engine/waves-plan.js';
import { OperationError, PlanError, UsageError } from '../../src/errors.js';
import { parsePlan } from '../../src/plan/parse-plan.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cutover-wave-router-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function mariadbPlan(...rest: string[]) {
  return parsePlan(
    [
      'engine: mariadb',
      'source: { url: "mariadb://root@10.0.0.1:3306/", passwordEnv: SRC }',
      'target: { url: "mariadb://root@10.0.0.2:3306/", passwordEnv: DST }',
      'scope: { tenants: [acme, globex] }',
      'state: ./state',
      ...rest,
    ].join('\n') + '\n',
    '/srv/w/plan.yaml',
  );
}

function issues(...rest: string[]): string[] {
  try {
    mariadbPlan(...rest);
  } catch (e) {
    expect(e).toBeInstanceOf(PlanError);
    return (e as PlanError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected a PlanError');
}

describe('MariaDB/MySQL waves plan', () => {
  it('MariaDB: replication (the default) runs the tenants through one stream, named after the wave; no reverse path per tenant; dump stays', () => {
    const p = mariadbPlan('router: { kind: none }');
    expect(p.method).toBe('replication');
    expect(tenantPlan(p, 'acme').wave).toEqual(tenantPlan(p, 'globex').wave);
    expect(issues('router: { kind: none }', 'reverse: true')).toEqual([expect.stringMatching(/^reverse: mariadb waves by replication share one stream/)]);
    expect(mariadbPlan('method: dump', 'router: { kind: none }').method).toBe('dump');
  });

  it('MySQL: replication runs the tenants through one channel named after the wave, no reverse path per tenant; dump stays', () => {
    const mysql = (...rest: string[]) =>
      parsePlan(
        [
          'engine: mysql',
          'source: { url: "mysql://root@10.0.0.1:3306/" }',
          'target: { url: "mysql://root@10.0.0.2:3306/" }',
          'scope: { tenants: [acme, globex] }',
          'state: ./state',
          'router: { kind: none }',
          ...rest,
        ].join('\n') + '\n',
        '/srv/w/plan.yaml',
      );
    const p = mysql();
    expect(p.method).toBe('replication');
    expect(tenantPlan(p, 'acme').wave).toEqual(tenantPlan(p, 'globex').wave);
    expect(() => mysql('reverse: true')).toThrow(/reverse: mysql waves by replication share one stream/);
    expect(mysql('method: dump').method).toBe('dump');
  });

  it('a one-database MariaDB plan keeps its method (the rule is for tenants only)', () => {
    const p = parsePlan(['engine: mariadb', 'source: { url: "mariadb://root@h1/shop" }', 'target: { url: "mariadb://root@h2/shop" }', 'router: { kind: none }', 'state: ./s'].join('\n') + '\n', '/srv/w/p.yaml');
    expect(p.method).toBe('replication');
  });

  it('each tenant gets its own entry of the file router and CUTOVER_TENANT for the exec router; haproxy and env files are refused', () => {
    const file = mariadbPlan('method: dump', 'router: { kind: file, path: ./endpoints.json, format: json }');
    expect(tenantPlan(file, 'acme').router).toEqual({ kind: 'file', path: '/srv/w/endpoints.json', format: 'json', tenant: 'acme' });
    expect(tenantPlan(file, 'acme').readOnly.scope).toBe('database');
    const exec = mariadbPlan('method: dump', 'router: { kind: exec, command: [./switch.sh] }');
    expect(tenantPlan(exec, 'globex').router).toMatchObject({ kind: 'exec', tenant: 'globex' });
    const env = mariadbPlan('method: dump', 'router: { kind: file, path: ./endpoint.env, format: env }');
    expect(() => tenantPlan(env, 'acme')).toThrow(UsageError);
    const haproxy = mariadbPlan('method: dump', 'router: { kind: haproxy, socket: /run/h.sock, backend: db, server: primary }');
    expect(() => tenantPlan(haproxy, 'acme')).toThrow(/HAProxy routes a whole server/);
  });
});

describe('file router, one entry per tenant', () => {
  const src = { host: '10.0.0.1', port: 3306 };
  const dst = { host: '10.0.0.2', port: 3307 };

  it("writes only its tenant's entry of the JSON map, keeps the others, and reads its own back", async () => {
    const path = join(dir, 'tenants.json');
    const acme = new FileRouter({ path, format: 'json', scheme: 'mariadb', user: 'app', tenant: 'acme' });
    const globex = new FileRouter({ path, format: 'json', scheme: 'mariadb', user: 'app', tenant: 'globex' });
    expect(await acme.current()).toBeUndefined();
    await acme.pointTo({ ...dst, database: 'acme' });
    await globex.pointTo({ ...src, database: 'globex' });
    await acme.pointTo({ ...dst, database: 'acme' });
    const text = await readFile(path, 'utf8');
    expect(JSON.parse(text)).toEqual({
      acme: { host: '10.0.0.2', port: 3307, database: 'acme', url: 'mariadb://app@10.0.0.2:3307/acme' },
      globex: { host: '10.0.0.1', port: 3306, database: 'globex', url: 'mariadb://app@10.0.0.1:3306/globex' },
    });
    expect(Object.keys(JSON.parse(text))).toEqual(['acme', 'globex']);
    expect(await acme.current()).toEqual({ ...dst, database: 'acme' });
    expect(await globex.current()).toEqual({ ...src, database: 'globex' });
  });

  it('a tenant named __proto__ is an ordinary entry', async () => {
    const path = join(dir, 'tenants.json');
    const odd = new FileRouter({ path, format: 'json', tenant: '__proto__' });
    await new FileRouter({ path, format: 'json', tenant: 'acme' }).pointTo(src);
    await odd.pointTo(dst);
    expect(Object.keys(JSON.parse(await readFile(path, 'utf8')))).toEqual(['__proto__', 'acme']);
    expect(await odd.current()).toEqual(dst);
    expect(await new FileRouter({ path, format: 'json', tenant: 'constructor' }).current()).toBeUndefined();
  });

  it("refuses to overwrite a file that is not a JSON object: the other tenants' entries would be lost", async () => {
    const path = join(dir, 'tenants.json');
    await writeFile(path, '{"acme": {"host": "10.0.0.1"');
    await expect(new FileRouter({ path, format: 'json', tenant: 'globex' }).pointTo(dst)).rejects.toThrow(OperationError);
    await writeFile(path, '[1, 2]');
    await expect(new FileRouter({ path, format: 'json', tenant: 'globex' }).pointTo(dst)).rejects.toThrow(/not a JSON object of tenant entries/);
    expect(await readFile(path, 'utf8')).toBe('[1, 2]');
  });

  it('the plan wires the tenant into the router it creates', async () => {
    const path = join(dir, 'tenants.json');
    const plan = mariadbPlan('method: dump', `router: { kind: file, path: "${path}", format: json }`);
    const r = createRouter(tenantPlan(plan, 'globex'), { all: [] });
    await r.pointTo({ ...dst, database: 'globex' });
    expect(Object.keys(JSON.parse(await readFile(path, 'utf8')))).toEqual(['globex']);
    expect(r.describe()).toBe(`file ${path} (entry "globex")`);
  });
});

describe('exec router of a tenant', () => {
  it('passes CUTOVER_TENANT beside the endpoint', async () => {
    const out = join(dir, 'calls.txt');
    const script = `require('fs').appendFileSync(${JSON.stringify(out)}, [process.env.CUTOVER_TENANT, process.env.CUTOVER_HOST, process.env.CUTOVER_PORT, process.env.CUTOVER_DATABASE].join(' ') + '\\n')`;
    const r = new ExecRouter({ command: [process.execPath, '-e', script], timeoutMs: 10_000, tenant: 'acme' });
    await r.pointTo({ host: '10.0.0.2', port: 3307, database: 'acme' });
    expect(await readFile(out, 'utf8')).toBe('acme 10.0.0.2 3307 acme\n');
  });
});
