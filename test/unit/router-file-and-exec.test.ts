import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRouter } from '../../adapters/routers/create-router.js';
import { ExecRouter } from '../../adapters/routers/exec-router.js';
import { FileRouter } from '../../adapters/routers/file-router.js';
import { OperationError } from '../../src/errors.js';
import { parsePlan } from '../../src/plan/parse-plan.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cutover-router-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const target = { host: '10.0.0.2', port: 5433, database: 'shop' };

describe('file router', () => {
  it('writes the endpoint as JSON with a password-free URL, and reads it back', async () => {
    const path = join(dir, 'endpoint.json');
    const r = new FileRouter({ path, format: 'json', scheme: 'postgres', user: 'app' });
    await r.hold();
    await r.pointTo(target);
    await r.release();
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ host: '10.0.0.2', port: 5433, database: 'shop', url: 'postgres://app@10.0.0.2:5433/shop' });
    expect(await r.current()).toEqual(target);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
  });

  it('writes env-style KEY=value lines, quoting what a shell would split', async () => {
    const path = join(dir, 'endpoint.env');
    const r = new FileRouter({ path, format: 'env', scheme: 'mysql', user: 'app' });
    await r.pointTo({ host: 'db.internal', port: 3306, database: "it's mine" });
    expect(await readFile(path, 'utf8')).toBe("CUTOVER_HOST=db.internal\nCUTOVER_PORT=3306\nCUTOVER_DATABASE='it'\\''s mine'\nCUTOVER_URL='mysql://app@db.internal:3306/it'\\''s%20mine'\n");
    expect(await r.current()).toEqual({ host: 'db.internal', port: 3306, database: "it's mine" });
  });

  it('fails with an operation error when the directory does not exist', async () => {
    const r = new FileRouter({ path: join(dir, 'missing', 'x.json'), format: 'json' });
    await expect(r.pointTo(target)).rejects.toThrow(OperationError);
  });
});

describe('exec router', () => {
  it('passes the endpoint and phase in CUTOVER_* variables, without a shell', async () => {
    const out = join(dir, 'calls.txt');
    const script = `require('fs').appendFileSync(${JSON.stringify(out)}, [process.env.CUTOVER_PHASE, process.env.CUTOVER_HOST, process.env.CUTOVER_PORT, process.env.CUTOVER_DATABASE, process.argv[1]].join(' ') + '\\n')`;
    const argv = [process.execPath, '-e', script];
    const r = new ExecRouter({ command: [...argv, '$HOME;echo'], hold: argv, release: argv, timeoutMs: 10_000 });
    await r.hold();
    await r.pointTo(target);
    await r.release();
    expect((await readFile(out, 'utf8')).split('\n').filter(Boolean)).toEqual(['hold    ', 'point 10.0.0.2 5433 shop $HOME;echo', 'release 10.0.0.2 5433 shop ']);
    expect(await r.current()).toEqual(target);
  });

  it('runs the command with an allow-listed environment: no PGPASSWORD, MYSQL_PWD or plan password variable', async () => {
    const planted = { PGPASSWORD: 'pg-Secret-1', MYSQL_PWD: 'my-Secret-2', SRC_PASSWORD: 'src-Secret-3', AWS_SECRET_ACCESS_KEY: 'aws-Secret-4' };
    Object.assign(process.env, planted);
    try {
      const out = join(dir, 'env.json');
      const r = new ExecRouter({ command: [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.env))`], timeoutMs: 10_000 });
      await r.pointTo(target);
      const env = JSON.parse(await readFile(out, 'utf8')) as Record<string, string>;
      for (const name of Object.keys(planted)) expect(env[name], name).toBeUndefined();
      expect(env.CUTOVER_HOST).toBe('10.0.0.2');
      expect(env.PATH).toBe(process.env.PATH);
    } finally {
      for (const name of Object.keys(planted)) delete process.env[name];
    }
  });

  it('turns a non-zero exit into an operation error with the last stderr line, redacted', async () => {
    const r = new ExecRouter({
      command: ['sh', '-c', 'echo starting >&2; echo "login failed for postgres://app:topsecret@db/x with key k3y" >&2; exit 3'],
      timeoutMs: 10_000,
      secrets: ['k3y'],
    });
    const e = await r.pointTo(target).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(OperationError);
    expect((e as OperationError).message).toBe('router command sh (point) exited 3: login failed for postgres://app:***@db/x with key ***');
  });

  it('stops a command that outlives its timeout', async () => {
    const r = new ExecRouter({ command: ['sleep', '5'], timeoutMs: 200 });
    const t0 = Date.now();
    await expect(r.pointTo(target)).rejects.toThrow(/router command sleep \(point\) did not finish/);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});

describe('createRouter', () => {
  const base = 'source: { url: postgres://app@a/shop }\ntarget: { url: postgres://app@b:5433/shop }\n';

  it('builds the router the plan names', () => {
    const secrets = { all: [] };
    expect(createRouter(parsePlan(base, '/x/p.yaml'), secrets).kind).toBe('none');
    expect(createRouter(parsePlan(base + 'router: { kind: file, path: ./e.json }\n', '/x/p.yaml'), secrets).describe()).toBe('file /x/e.json (json)');
    expect(createRouter(parsePlan(base + 'router: { kind: exec, command: [./switch.sh] }\n', '/x/p.yaml'), secrets).describe()).toBe('exec /x/switch.sh');
    const pgb = createRouter(parsePlan(base + 'router: { kind: pgbouncer, admin: "postgres://pgbouncer@127.0.0.1:6432/pgbouncer", ini: ./p.ini }\n', '/x/p.yaml'), { routerAdmin: 'pw', all: ['pw'] });
    expect(pgb.describe()).toBe('pgbouncer 127.0.0.1:6432 database "shop" (/x/p.ini)');
  });

  it('builds the haproxy router from socket, backend and server', () => {
    const plan = parsePlan(base + 'router: { kind: haproxy, socket: /run/h.sock, backend: db, server: primary }\n', '/x/p.yaml');
    expect(createRouter(plan, { all: [] }).describe()).toBe('haproxy server db/primary (/run/h.sock)');
  });
});
