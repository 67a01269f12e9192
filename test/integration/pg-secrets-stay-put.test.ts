import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, spawnCli } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { seedDatabase } from '../helpers/cutover-env.js';
import { PostgresSandbox, pg15Missing, pg17Missing } from '../helpers/pg.js';

const SRC_PW = 'source-Secret-4711';
const DST_PW = 'target-Secret-0815';
const DB = 'shop';
/** Variables that hold passwords in this process while the commands run, as an operator's shell would. */
const PLANTED = { PGPASSWORD: SRC_PW, MYSQL_PWD: 'mysql-Secret-1', SRC_PW, DST_PW, SOME_PASSWORD_ENV: 'other-Secret-2' };

/** A child that writes its whole environment as JSON to `file`. */
const dumpEnv = (file: string) => `["${process.execPath}", "-e", "require('fs').appendFileSync(${JSON.stringify(file).replace(/"/g, '\\"')}, JSON.stringify(process.env) + '\\\\n')"]`;

describe.skipIf(pg15Missing ?? pg17Missing)('secrets stay with the command that asked for them (PostgreSQL)', () => {
  let src: PostgresSandbox;
  let dst: PostgresSandbox;

  beforeAll(async () => {
    [src, dst] = await Promise.all([PostgresSandbox.start({ major: 15, password: SRC_PW }), PostgresSandbox.start({ major: 17, password: DST_PW })]);
    await seedDatabase(src, DB, 200);
    await seedDatabase(src, 'hooks', 100);
    await ensureBuilt();
  });
  afterAll(async () => Promise.all([src?.stop(), dst?.stop()]));
  afterEach(() => {
    for (const k of Object.keys(PLANTED)) delete process.env[k];
  });

  function plan(stateDir: string, extra: string[], target = `{ url: "postgres://postgres@127.0.0.1:${dst.port}/${DB}", passwordEnv: DST_PW }`): string[] {
    return [
      'engine: postgres',
      `source: { url: "postgres://postgres@127.0.0.1:${src.port}/${DB}", passwordEnv: SRC_PW }`,
      `target: ${target}`,
      `scope: { databases: [${DB}] }`,
      'limits: { maxWriteBlocked: 10s }',
      `state: "${stateDir}"`,
      ...extra,
    ];
  }

  it('the exec router and the hooks see no password variable, while pg_dump gets the source password', async () => {
    Object.assign(process.env, PLANTED);
    const stateDir = await tempStateDir(src.dir);
    const seen = join(stateDir, 'seen-env.jsonl');
    const file = join(stateDir, 'plan.yaml');
    await writeFile(file, plan(stateDir, [`router: { kind: exec, command: ${dumpEnv(seen)} }`, `hooks: { beforeFence: ${dumpEnv(seen)}, afterSwitch: ${dumpEnv(seen)} }`]).join('\n'));
    const sync = await cli(['sync', file], PLANTED);
    expect(sync.err).not.toMatch(/error/i);
    expect(sync.code).toBe(0);
    const run = await cli(['run', file, '--yes'], PLANTED);
    expect(run.code, run.err).toBe(0);
    const envs = (await readFile(seen, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
    // beforeFence, the router's point, afterSwitch
    expect(envs.length).toBeGreaterThanOrEqual(3);
    for (const env of envs) {
      for (const name of Object.keys(PLANTED)) expect(env[name], name).toBeUndefined();
      for (const value of Object.values(PLANTED)) expect(Object.values(env)).not.toContain(value);
      expect(env.PATH).toBeTruthy();
    }
    expect(envs.some((env) => env.CUTOVER_PHASE === 'point' && env.CUTOVER_PORT === String(dst.port))).toBe(true);
  });

  it('a target without passwordEnv is never sent the source password from PGPASSWORD: a clear refusal', async () => {
    Object.assign(process.env, PLANTED);
    const stateDir = await tempStateDir(src.dir);
    const file = join(stateDir, 'plan.yaml');
    await writeFile(file, plan(stateDir, ['router: { kind: none }'], `{ url: "postgres://postgres@127.0.0.1:${dst.port}/${DB}" }`).join('\n'));
    const r = await cli(['check', file], PLANTED);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`127.0.0.1:${dst.port}`);
    expect(r.err).toMatch(/asks for a password .* none was given/);
    expect(r.err).toMatch(/passwordEnv/);
    expect(r.err).not.toContain(SRC_PW);
    // The target's log shows no failed password attempt: nothing was sent.
    const log = await readFile(join(dst.dir, 'server.log'), 'utf8').catch(() => '');
    expect(log).not.toMatch(/password authentication failed/);
  });

  it('the real cutover binary ignores the test pause variables: a run with CUTOVER_TEST_PAUSE_AT set finishes', async () => {
    const stateDir = await tempStateDir(src.dir);
    const file = join(stateDir, 'plan.yaml');
    await writeFile(file, plan(stateDir, ['router: { kind: none }']).join('\n').replaceAll(`/${DB}"`, '/hooks"').replace(`databases: [${DB}]`, 'databases: [hooks]'));
    const env = { SRC_PW, DST_PW, CUTOVER_TEST_PAUSE_AT: 'fence', CUTOVER_TEST_PAUSE_TENANT: 'hooks' };
    expect((await spawnCli(['sync', file], env)).exitCode).toBe(0);
    const r = await spawnCli(['run', file, '--yes'], env);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect((await readdir(stateDir)).filter((f) => f.startsWith('paused-at-'))).toEqual([]);
  });
});
