import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgBouncerSandbox } from '../../adapters/routers/pgbouncer-sandbox.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { envMissing, seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, exec, storedVerifier } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

interface Finding {
  severity: string;
  check: string;
  object?: string;
  message: string;
}

/** Logs in through PgBouncer as `user` and counts the seeded rows; the error's message when it cannot. */
async function throughPooler(bouncer: PgBouncerSandbox, user: string, password: string): Promise<string> {
  const c = new pg.Client({ host: bouncer.host, port: bouncer.port, database: 'shop', user, password });
  c.on('error', () => {});
  try {
    await c.connect();
    return `${(await c.query<{ n: number }>('SELECT count(*)::int AS n FROM items')).rows[0]!.n} rows`;
  } catch (e) {
    return `error: ${(e as Error).message}`;
  } finally {
    await c.end().catch(() => {});
  }
}

const PASSWORDS = { app_scram: 'pw-scram', app_plain: 'pw-plain', app_new: 'pw-new' } as const;

// PgBouncer logs in to the server with what its userlist holds for the client's user. After the switch that
// server is the target: a role there with another password, or another salt for a SCRAM secret, refuses every
// pooled client — past the point of no return. check compares the userlist with the target's verifiers.
describe.skipIf(envMissing('postgres') ?? pgbouncerMissing)('check: PgBouncer’s logins as the target will see them (PostgreSQL 15 → 17)', () => {
  let e: PostgresEnv;
  let bouncer: PgBouncerSandbox;
  let plan: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres');
    await seedDatabase(e.src, 'shop', 100);
    await exec(e.src, 'postgres', ...Object.entries(PASSWORDS).map(([r, p]) => `CREATE ROLE ${r} LOGIN PASSWORD '${p}'`));
    await exec(e.src, 'shop', `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${Object.keys(PASSWORDS).join(', ')}`);
    // On the target: app_scram with its password typed again (another salt), app_plain with another password.
    await exec(e.dst, 'postgres', `CREATE ROLE app_scram LOGIN PASSWORD 'pw-scram'`, `CREATE ROLE app_plain LOGIN PASSWORD 'changed'`);
    bouncer = await PgBouncerSandbox.start({
      databases: { shop: { host: e.src.host, port: e.src.port } },
      users: { postgres: e.password, app_scram: await storedVerifier(e.src, 'app_scram'), app_plain: PASSWORDS.app_plain, app_new: PASSWORDS.app_new },
      poolMode: 'transaction',
      baseDir: e.src.dir,
      settings: { server_login_retry: 1 },
    });
    plan = await writePlan({ ...e, bouncer }, { db: 'shop', stateDir: await tempStateDir(e.src.dir), router: true });
    env = { ...e.env, BOUNCER_PW: bouncer.adminPassword };
    // The app's clients have pools for the database.
    for (const [user, password] of Object.entries(PASSWORDS)) expect(await throughPooler(bouncer, user, password)).toBe('100 rows');
  });
  afterAll(async () => {
    await bouncer?.stop();
    await e?.stop();
  });

  it('a SCRAM secret of another salt and a plain password the target refuses are blockers; a role sync will copy is fine; no secret printed', async () => {
    const r = await cli(['check', plan, '--json'], env);
    expect(r.code, r.err).toBe(3);
    const logins = (r.json().findings as Finding[]).filter((f) => f.check === 'roles' && /^the router logs in as/.test(f.message));
    expect(logins.map((f) => [f.object, f.severity]).sort()).toEqual([
      ['app_plain', 'blocker'],
      ['app_scram', 'blocker'],
    ]);
    expect(logins.find((f) => f.object === 'app_scram')!.message).toMatch(/SCRAM secret of its userlist, which the target does not accept/);
    expect(logins.find((f) => f.object === 'app_plain')!.message).toMatch(/password of its userlist/);
    expect(r.out + r.err).not.toMatch(/SCRAM-SHA-256\$|pw-plain|pw-scram|pw-new/);
    const run = await cli(['run', plan, '--yes'], env);
    expect(run.code, run.err).toBe(3);
  });

  it('mended on the target as the fix says, the run switches and every pooled user works against the target', async () => {
    await exec(e.dst, 'postgres', `ALTER ROLE app_scram PASSWORD '${await storedVerifier(e.src, 'app_scram')}'`, `ALTER ROLE app_plain PASSWORD '${PASSWORDS.app_plain}'`);
    const r = await cli(['check', plan, '--json'], env);
    expect((r.json().findings as Finding[]).filter((f) => f.check === 'roles' && f.severity === 'blocker')).toEqual([]);
    const run = await cli(['run', plan, '--yes'], env);
    expect(run.code, run.err).toBe(0);
    const t = await client(e.dst, { database: 'shop' });
    try {
      await t.query(`INSERT INTO items (id, name) SELECT 100000, 'after the switch' WHERE NOT EXISTS (SELECT 1 FROM items WHERE id = 100000)`);
    } finally {
      await t.end();
    }
    for (const [user, password] of Object.entries(PASSWORDS)) expect(await throughPooler(bouncer, user, password), user).toBe('101 rows');
  });
});
