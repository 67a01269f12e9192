import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { ensureBuilt, spawnCli } from '../helpers/built-cli.js';
import { PostgresSandbox, client, exec, pg15Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing)('cutover readonly CLI (PostgreSQL)', () => {
  let sb: PostgresSandbox;
  let stateDir: string;
  let env: Record<string, string>;
  const url = (db = 'shop', user = 'postgres') => `postgres://${user}@127.0.0.1:${sb.port}/${db}`;

  beforeAll(async () => {
    sb = await PostgresSandbox.start({ major: 15, password: 'S3cr@t:/%pw' });
    stateDir = await tempStateDir(sb.dir);
    env = { PGPASSWORD: sb.password };
    await exec(sb, 'postgres', 'CREATE DATABASE shop', 'CREATE DATABASE lockme', `CREATE ROLE plain LOGIN PASSWORD 'plain-pw'`);
    await exec(sb, 'shop', 'CREATE TABLE t (id int)');
    await ensureBuilt();
  });
  afterAll(async () => sb?.stop());

  it('bad URL: exit 2, one line naming the problem and the fix', async () => {
    const r = await cli(['readonly', 'on', 'postgres//nope'], env);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: not a database URL/m);
    expect(r.err).toMatch(/fix: use e\.g\. postgres:\/\//);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('wrong password: exit 3, names the user and how to pass a password', async () => {
    const r = await cli(['readonly', 'status', url()], { PGPASSWORD: 'wrong-password' });
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/password authentication failed for user "postgres"/);
    expect(r.err).toMatch(/PGPASSWORD|--password-env/);
    expect(r.err).not.toContain('wrong-password');
  });

  it('unreachable server: exit 3', async () => {
    const r = await cli(['readonly', 'status', `postgres://postgres@127.0.0.1:1/shop`], env);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/cannot reach PostgreSQL at 127\.0\.0\.1:1/);
  });

  it('non-superuser: exit 3 naming the missing privilege; nothing is fenced', async () => {
    const r = await cli(['readonly', 'on', url('shop', 'plain'), '--state-dir', stateDir], { PGPASSWORD: 'plain-pw' });
    expect(r.code).toBe(3);
    // privileges: auto takes the managed profile for a non-superuser, which names the one privilege it lacks.
    expect(r.err).toMatch(/role "plain" on \S+ lacks ownership of database "shop"/);
    const st = await cli(['readonly', 'status', url(), '--json', '--state-dir', stateDir], env);
    expect(st.json().scopes[1]).toMatchObject({ name: 'shop', readOnly: false });
  });

  it('--password-env naming an unset variable: exit 2', async () => {
    const r = await cli(['readonly', 'status', url(), '--password-env', 'NOPE_PW'], {});
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/NOPE_PW/);
  });

  it('status --json is one JSON document with the documented fields', async () => {
    const r = await cli(['readonly', 'status', url(), '--json', '--state-dir', stateDir], env);
    expect(r.code).toBe(0);
    const doc = r.json();
    expect(doc).toMatchObject({ ok: true, action: 'status', engine: 'postgres', server: url() });
    expect(typeof doc.version).toBe('string');
    for (const s of doc.scopes) {
      expect(Object.keys(s).sort()).toEqual(expect.arrayContaining(['scope', 'setting', 'readOnly', 'persistent', 'sessions', 'couldWrite']));
      expect(typeof s.readOnly).toBe('boolean');
      expect(Array.isArray(s.couldWrite)).toBe(true);
    }
    expect(doc.scopes.map((s: { scope: string }) => s.scope)).toEqual(['server', 'database']);
  });

  it('on twice is fine, off works from another process, off again says already writable', async () => {
    const first = await cli(['readonly', 'on', url(), '--json', '--state-dir', stateDir, '--probe', '100ms'], env);
    expect(first.code).toBe(0);
    expect(first.json()).toMatchObject({ ok: true, action: 'on', alreadyOn: false, scope: 'database', name: 'shop' });
    const second = await cli(['readonly', 'on', url(), '--json', '--state-dir', stateDir, '--probe', '100ms'], env);
    expect(second.code).toBe(0);
    expect(second.json().alreadyOn).toBe(true);

    const status = await cli(['readonly', 'status', url(), '--json', '--state-dir', stateDir], env);
    expect(status.json().scopes[1]).toMatchObject({ readOnly: true, setting: 'on', recorded: { mode: 'enforced' } });

    const off = await spawnCli(['readonly', 'off', url(), '--state-dir', stateDir], env);
    expect(off.exitCode).toBe(0);
    expect(off.stderr).toMatch(/read-only OFF/);
    expect(off.stderr).toMatch(/no explicit value was set before the fence/);

    const again = await spawnCli(['readonly', 'off', url(), '--state-dir', stateDir], env);
    expect(again.exitCode).toBe(0);
    expect(again.stderr).toMatch(/already writable/);
    const c = await client(sb, { database: 'shop' });
    await c.query('INSERT INTO t VALUES (1)');
    await c.end();
  });

  it('--lock-timeout bounds the DDL: a blocked fence fails fast with exit 1 and leaves the database writable', async () => {
    const holder = await client(sb);
    await holder.query('BEGIN');
    await holder.query(`ALTER DATABASE lockme SET work_mem = '8MB'`);
    try {
      const started = Date.now();
      const r = await cli(['readonly', 'on', url('lockme'), '--lock-timeout', '300ms', '--state-dir', stateDir], env);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/could not get a lock in time/);
      expect(r.err).toMatch(/--lock-timeout/);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    const st = await cli(['readonly', 'status', url('lockme'), '--json', '--state-dir', stateDir], env);
    expect(st.json().scopes[1]).toMatchObject({ readOnly: false });
  });

  it('no secret in any output, even with the password in the URL', async () => {
    const withPw = `postgres://postgres:${encodeURIComponent(sb.password)}@127.0.0.1:${sb.port}/shop`;
    const r = await spawnCli(['readonly', 'status', withPw, '--json', '--state-dir', stateDir], {});
    expect(r.exitCode).toBe(0);
    const all = r.stdout + r.stderr;
    expect(all).not.toContain(sb.password);
    expect(all).not.toContain(encodeURIComponent(sb.password));
    expect(r.stderr).toMatch(/URL carries a password/);
  });

  it('--help is useful', async () => {
    const r = await cli(['readonly', '--help'], {});
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/--drain-timeout/);
    expect(r.err).toMatch(/Examples:/);
  });
});
