import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresSandbox } from '../../adapters/postgres/postgres-sandbox.js';
import { cli, tempStateDir, type CliRun } from '../helpers/cli.js';
import { client, exec, pg15Missing, pg17Missing } from '../helpers/pg.js';

const SRC_PASSWORD = 'Src-Admin:Secret/71';
const DST_PASSWORD = 'Dst-Admin:Secret/72';
const DB = 'creds';

/** Everything the tool wrote: CLI output and the state dir (journal, fence records). */
async function toolOutput(stateDir: string, runs: CliRun[]): Promise<string> {
  const parts = runs.flatMap((r) => [r.out, r.err]);
  for (const f of await readdir(stateDir)) parts.push(await readFile(join(stateDir, f), 'utf8').catch(() => ''));
  return parts.join('\n');
}

describe.skipIf(pg15Missing ?? pg17Missing)('PostgreSQL: the subscription logs in with a short-lived replication role, never the admin account', () => {
  let src: PostgresSandbox;
  let dst: PostgresSandbox;
  const env = { SRC_PW: SRC_PASSWORD, DST_PW: DST_PASSWORD, REPL_PW: 'Own-Repl-Secret-73' };

  beforeAll(async () => {
    // Both servers log every statement: a password sent in a statement would show in their logs.
    [src, dst] = await Promise.all([
      PostgresSandbox.start({ major: 15, password: SRC_PASSWORD, settings: { log_statement: "'all'" } }),
      PostgresSandbox.start({ major: 17, password: DST_PASSWORD, settings: { log_statement: "'all'" } }),
    ]);
    for (const db of [DB, 'own']) {
      await exec(src, 'postgres', `CREATE DATABASE ${db}`);
      await exec(src, db, 'CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL)', `INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 500) g`);
    }
  }, 120_000);
  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  async function planFor(db: string, extraSource = ''): Promise<{ plan: string; stateDir: string }> {
    const stateDir = await tempStateDir(src.dir);
    const plan = join(stateDir, 'plan.yaml');
    await writeFile(
      plan,
      [
        'engine: postgres',
        `source: { url: "postgres://postgres@127.0.0.1:${src.port}/${db}", passwordEnv: SRC_PW${extraSource} }`,
        `target: { url: "postgres://postgres@127.0.0.1:${dst.port}/${db}", passwordEnv: DST_PW }`,
        `scope: { databases: ["${db}"] }`,
        'limits: { maxWriteBlocked: 10s }',
        'router: { kind: none }',
        `state: "${stateDir}"`,
      ].join('\n'),
    );
    return { plan, stateDir };
  }

  async function subconninfo(): Promise<string[]> {
    const c = await client(dst, { password: DST_PASSWORD });
    const { rows } = await c.query<{ i: string }>('SELECT subconninfo AS i FROM pg_subscription');
    await c.end();
    return rows.map((r) => r.i);
  }

  async function roles(): Promise<string[]> {
    const c = await client(src, { password: SRC_PASSWORD });
    const { rows } = await c.query<{ r: string }>(`SELECT rolname AS r FROM pg_roles WHERE rolname LIKE 'cutover_repl_%'`);
    await c.end();
    return rows.map((r) => r.r);
  }

  it('after sync, rollback, rollback --cleanup, sync and run: no admin password in pg_subscription or the target log; the random one in no log or journal; the role is gone at the end', async () => {
    const { plan, stateDir } = await planFor(DB);
    const runs: CliRun[] = [];
    const step = async (argv: string[]) => {
      const r = await cli(argv, env);
      runs.push(r);
      expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(0);
      return r;
    };
    const adminAbsentOnTarget = async () => {
      for (const info of await subconninfo()) expect(info).not.toContain(SRC_PASSWORD);
      expect(await dst.log()).not.toContain(SRC_PASSWORD);
    };

    await step(['sync', plan]);
    const [info] = await subconninfo();
    expect(info).toMatch(/user='cutover_repl_[0-9a-f]{12}'/);
    const random = /password='([^']+)'/.exec(info!)![1]!;
    expect(random.length).toBeGreaterThanOrEqual(32);
    await adminAbsentOnTarget();
    const status = (await step(['status', plan, '--json'])).json();
    expect(status.leftovers.map((l: { kind: string }) => l.kind)).toContain('replication role');

    await step(['rollback', plan]);
    await adminAbsentOnTarget();
    await step(['rollback', plan, '--cleanup']);
    expect(await subconninfo()).toEqual([]);
    expect(await roles()).toEqual([]);

    // A fresh start for the second sync: the first copy stays on the target after a rollback.
    const d = await client(dst, { password: DST_PASSWORD });
    await d.query(`DROP DATABASE ${DB} WITH (FORCE)`);
    await d.end();
    await step(['sync', plan]);
    const second = /password='([^']+)'/.exec((await subconninfo())[0]!)![1]!;
    expect(second).not.toBe(random);
    await adminAbsentOnTarget();
    await step(['run', plan, '--yes', '--json']);
    await adminAbsentOnTarget();
    expect(await subconninfo()).toEqual([]);
    expect(await roles()).toEqual([]);
    expect((await step(['status', plan, '--json'])).json().leftovers).toEqual([]);
    const t = await client(dst, { database: DB, password: DST_PASSWORD });
    expect((await t.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(500);
    await t.end();

    // The generated passwords reach the target's catalog only: not the servers' statement logs (the source got a
    // SCRAM verifier, the target's CREATE SUBSCRIPTION ran unlogged), not the tool's output or journal.
    const everywhere = [await src.log(), await dst.log(), await toolOutput(stateDir, runs)];
    for (const text of everywhere) for (const pw of [random, second]) expect(text).not.toContain(pw);
    expect(await src.log()).toMatch(/CREATE ROLE "cutover_repl_[0-9a-f]{12}" LOGIN REPLICATION PASSWORD 'SCRAM-SHA-256\$4096:/);
  }, 240_000);

  it('source.replication names the account: the subscription uses it, cleanup leaves it alone', async () => {
    await exec(src, 'own', `CREATE ROLE repl_app LOGIN REPLICATION PASSWORD '${env.REPL_PW}'`, 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO repl_app');
    const { plan } = await planFor('own', ', replication: { user: repl_app, passwordEnv: REPL_PW }');
    // The tool schema appears at sync: give the account its tables as they are created.
    await exec(src, 'own', 'CREATE SCHEMA IF NOT EXISTS _cutover', 'ALTER DEFAULT PRIVILEGES IN SCHEMA _cutover GRANT SELECT ON TABLES TO repl_app', 'GRANT USAGE ON SCHEMA _cutover TO repl_app');
    const sync = await cli(['sync', plan], env);
    expect(sync.code, sync.err).toBe(0);
    const info = (await subconninfo()).find((i) => i.includes("dbname='own'"))!;
    expect(info).toContain(`user='repl_app'`);
    expect(info).not.toContain(SRC_PASSWORD);
    expect(await roles()).toEqual([]);
    const rb = await cli(['rollback', plan, '--cleanup'], env);
    expect(rb.code, rb.err).toBe(0);
    const c = await client(src, { password: SRC_PASSWORD });
    expect((await c.query(`SELECT 1 FROM pg_roles WHERE rolname = 'repl_app'`)).rows.length).toBe(1);
    await c.end();
  }, 120_000);
});
