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
  fix: string;
}

/** Logs in through PgBouncer as `user`; the error's message when it cannot. */
async function loginThrough(bouncer: PgBouncerSandbox, database: string, user: string, password: string): Promise<string> {
  const c = new pg.Client({ host: bouncer.host, port: bouncer.port, database, user, password });
  c.on('error', () => {});
  try {
    await c.connect();
    return (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
  } catch (e) {
    return `error: ${(e as Error).message}`;
  } finally {
    await c.end().catch(() => {});
  }
}

describe.skipIf(envMissing('postgres') ?? pgbouncerMissing)('check: login roles the target already has but would refuse (PostgreSQL 15 → 17)', () => {
  let e: PostgresEnv;
  let bouncer: PgBouncerSandbox;
  let plan: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres');
    plan = await writePlan(e, { db: 'shop', stateDir: await tempStateDir(e.src.dir) });
    await seedDatabase(e.src, 'shop', 100);
    await exec(
      e.src,
      'postgres',
      `CREATE ROLE app_same LOGIN PASSWORD 'pw-same'`,
      `CREATE ROLE app_salted LOGIN PASSWORD 'pw-salted'`,
      `SET password_encryption = 'md5'`,
      `CREATE ROLE app_md5 LOGIN PASSWORD 'pw-md5'`,
      `CREATE ROLE app_gone LOGIN PASSWORD 'pw-gone'`,
      // Privileges reach app_same through groups: app_rw exists on the target too, reporting only on the source.
      'CREATE ROLE app_rw NOLOGIN',
      'CREATE ROLE reporting NOLOGIN',
      'GRANT app_rw, reporting TO app_same',
    );
    // The target got its roles by hand: one with the source's verifier, one with the same password typed again
    // (another salt), one with another password, one that may not log in.
    await exec(
      e.dst,
      'postgres',
      `CREATE ROLE app_same LOGIN PASSWORD '${await storedVerifier(e.src, 'app_same')}'`,
      `CREATE ROLE app_salted LOGIN PASSWORD 'pw-salted'`,
      `SET password_encryption = 'md5'`,
      `CREATE ROLE app_md5 LOGIN PASSWORD 'another'`,
      `CREATE ROLE app_gone NOLOGIN`,
      'CREATE ROLE app_rw NOLOGIN',
    );
    // A pooler as its docs advise: the userlist holds SCRAM secrets (the source's), one entry per server.
    bouncer = await PgBouncerSandbox.start({
      databases: { on_source: { host: e.src.host, port: e.src.port, dbname: 'postgres' }, on_target: { host: e.dst.host, port: e.dst.port, dbname: 'postgres' } },
      users: { app_salted: await storedVerifier(e.src, 'app_salted') },
      poolMode: 'transaction',
      baseDir: e.src.dir,
      // After a failed server login PgBouncer refuses the pool for this long (15 s by default).
      settings: { server_login_retry: 1 },
    });
  });
  afterAll(async () => {
    await bouncer?.stop();
    await e?.stop();
  });

  it('names each role that would refuse today’s login (blockers) or may (warning), never a hash; check exits 3', async () => {
    const r = await cli(['check', plan, '--json'], e.env);
    expect(r.code, r.err).toBe(3);
    const roles = (r.json().findings as Finding[]).filter((f) => f.check === 'roles').sort((a, b) => (a.object ?? '').localeCompare(b.object ?? ''));
    expect(roles.map((f) => [f.object, f.severity])).toEqual([
      ['app_gone', 'blocker'],
      ['app_md5', 'blocker'],
      ['app_salted', 'warning'],
      ['app_same', 'blocker'],
    ]);
    expect(roles[0]!.fix).toBe('ALTER ROLE "app_gone" LOGIN on the target');
    expect(roles[1]!.message).toMatch(/another password on the target \(md5 hashes differ\)/);
    expect(roles[2]!.message).toMatch(/PgBouncer userlist holding SCRAM secrets/);
    // reporting is not on the target yet: sync creates it with its memberships.
    expect(roles[3]!.message).toBe('role app_same is a member of app_rw on the source but not on the target');
    const human = await cli(['check', plan], e.env);
    expect(human.err).toMatch(/\[BLOCKER\] roles \(app_md5\)/);
    expect(r.out + r.err + human.out + human.err).not.toMatch(/SCRAM-SHA-256\$|md5[0-9a-f]{32}/);
  });

  it('the warning is real: PgBouncer with the source’s SCRAM secret logs in to the source but not to the target, until the fix is applied', async () => {
    expect(await loginThrough(bouncer, 'on_source', 'app_salted', 'pw-salted')).toBe('app_salted');
    expect(await loginThrough(bouncer, 'on_target', 'app_salted', 'pw-salted')).toMatch(/^error: .*(password authentication failed|SASL|login)/i);
    // The fixes the findings name, as a DBA applies them.
    await exec(
      e.dst,
      'postgres',
      `ALTER ROLE app_salted PASSWORD '${await storedVerifier(e.src, 'app_salted')}'`,
      `ALTER ROLE app_md5 PASSWORD '${await storedVerifier(e.src, 'app_md5')}'`,
      'ALTER ROLE app_gone LOGIN',
      `ALTER ROLE app_gone PASSWORD '${await storedVerifier(e.src, 'app_gone')}'`,
      'GRANT app_rw TO app_same',
    );
    expect(await loginThrough(bouncer, 'on_target', 'app_salted', 'pw-salted')).toBe('app_salted');
    const r = await cli(['check', plan, '--json'], e.env);
    expect((r.json().findings as Finding[]).filter((f) => f.check === 'roles')).toEqual([]);
    expect(r.code, r.err).toBe(0);
    // sync made the group the target lacked, with its membership: nothing left to name.
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    const t = await client(e.dst);
    try {
      expect((await t.query(`SELECT pg_has_role('app_same', 'reporting', 'MEMBER') AS m`)).rows[0].m).toBe(true);
    } finally {
      await t.end();
    }
    const after = await cli(['check', plan, '--json'], e.env);
    expect((after.json().findings as Finding[]).filter((f) => f.check === 'roles')).toEqual([]);
  });
});
