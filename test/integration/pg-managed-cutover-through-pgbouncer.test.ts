import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, createManagedAdmin, createManagedDatabase, providerSession, type ManagedAdmin } from '../../adapters/postgres/postgres-managed-profile.js';
import { Workload, workloadTableSql } from '../../adapters/postgres/postgres-workload.js';
import { PgBouncerSandbox } from '../../adapters/routers/pgbouncer-sandbox.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { keysOn, missingOn, sleep } from '../helpers/cutover-env.js';
import { PostgresSandbox, client, exec, pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing;
const ADMIN_PW = 'Adm:in/pw%1';
const APP_PW = 'app-pw';
const REPL_PW = 'repl-pw';

/**
 * A whole cutover as a managed service's admin on both sides (PostgreSQL 15 → 17, no superuser anywhere in the
 * plan): the app writes as its own role through PgBouncer, a provider superuser session sits on the source, the
 * replication account is the provider-made one the plan names (a 15 source: only a superuser creates REPLICATION roles).
 */
describe.skipIf(unavailable)('managed profile: PostgreSQL 15 → 17 cutover through PgBouncer under 4 writers', () => {
  let src: PostgresSandbox;
  let dst: PostgresSandbox;
  let bouncer: PgBouncerSandbox;
  let admin: ManagedAdmin;
  let stateDir: string;
  let env: Record<string, string>;

  const writePlan = async (db: string, extra = '') => {
    const file = join(stateDir, `${db}.plan.yaml`);
    await writeFile(
      file,
      [
        'engine: postgres',
        `source: { url: "postgres://${admin.user}@127.0.0.1:${src.port}/${db}", passwordEnv: ADMIN_PW, replication: { user: repl, passwordEnv: REPL_PW } }`,
        `target: { url: "postgres://${admin.user}@127.0.0.1:${dst.port}/${db}", passwordEnv: ADMIN_PW }`,
        `scope: { databases: ["${db}"] }`,
        'privileges: auto',
        'limits: { maxWriteBlocked: 10s }',
        `router: { kind: pgbouncer, admin: "${bouncer.adminUrl()}", adminPasswordEnv: BOUNCER_PW, ini: "${bouncer.iniPath}", database: "${db}" }`,
        `state: "${stateDir}"`,
        extra,
      ].join('\n'),
    );
    return file;
  };

  const seed = async (db: string) => {
    await createManagedDatabase(src, db, admin);
    const a = await adminClient(src, admin, db);
    await a.query('CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL)');
    await a.query(`INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 5000) g`);
    await a.query(workloadTableSql());
    await a.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app`);
    await a.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app`);
    await a.end();
  };

  beforeAll(async () => {
    src = await PostgresSandbox.start({ major: 15 });
    // The provider's parameter group: a managed admin cannot quiet the log for its own session, so the target
    // must not log a failed CREATE SUBSCRIPTION's text (it carries the replication password).
    dst = await PostgresSandbox.start({ major: 17, settings: { log_min_error_statement: 'log' } });
    stateDir = await tempStateDir(src.dir);
    for (const sb of [src, dst]) admin = await createManagedAdmin(sb, ADMIN_PW);
    const a = await adminClient(src, admin, 'postgres');
    await a.query(`CREATE ROLE app LOGIN PASSWORD '${APP_PW}'`);
    await a.end();
    // The provider's replication account (RDS: a role granted rds_replication).
    await exec(src, 'postgres', `CREATE ROLE repl LOGIN REPLICATION PASSWORD '${REPL_PW}'`, 'GRANT pg_read_all_data TO repl');
    await seed('shop');
    await seed('back');
    bouncer = await PgBouncerSandbox.start({
      databases: { shop: { host: src.host, port: src.port }, back: { host: src.host, port: src.port } },
      users: { app: APP_PW },
      poolMode: 'transaction',
    });
    env = { ADMIN_PW, REPL_PW, BOUNCER_PW: bouncer.adminPassword };
  }, 180_000);
  afterAll(async () => {
    await bouncer?.stop();
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  const appWorkload = (db: string) => new Workload({ host: '127.0.0.1', port: bouncer.port, user: 'app', password: APP_PW, database: db, writers: 4, readers: 1 }).start();

  it('check names the role created without a password; sync + run move every acknowledged write; the provider session is left and named', async () => {
    const plan = await writePlan('shop');
    const check = await cli(['check', plan, '--json'], env);
    expect(check.code, check.err + check.out).toBe(0);
    expect(check.out).toMatch(/managed profile/);
    expect(check.out).toMatch(/login role app will be created on the target without a password/);

    const provider = await providerSession(src, 'shop');
    const workload = appWorkload('shop');
    let sync, run;
    try {
      await sleep(300);
      sync = await cli(['sync', plan, '--json'], env);
      expect(sync.code, sync.err).toBe(0);
      // The step the check asked for: the app's password on the target, set by the admin before the switch.
      const t = await adminClient(dst, admin, 'postgres');
      await t.query(`ALTER ROLE app PASSWORD '${APP_PW}'`);
      await t.end();
      await sleep(300);
      run = await cli(['run', plan, '--yes', '--json'], env);
      await sleep(500);
    } finally {
      var w = await workload.stop();
      await provider.end().catch(() => {});
    }
    expect(run.code, run.err).toBe(0);
    const report = run.json();
    console.log(`managed cutover 15→17 through PgBouncer: write-blocked ${report.writeBlockedMs} ms, ${w.acknowledged.length} acknowledged writes, max gap ${w.maxWriteGapMs} ms`);
    expect(w.writeErrors, JSON.stringify(w.ops.filter((o) => o.outcome !== 'ok').slice(0, 3))).toBe(0);
    expect(await missingOn(dst, 'shop', w)).toEqual([]);
    const onSource = await keysOn(src, 'shop');
    expect(w.acknowledged.filter((k) => !onSource.has(k)).length).toBeGreaterThan(0);
    expect(JSON.stringify(report)).toMatch(/provider agent/);
  });

  it('rollback after sync: the source stays writable and the plan leaves nothing behind', async () => {
    const plan = await writePlan('back');
    expect((await cli(['sync', plan], env)).code).toBe(0);
    const rb = await cli(['rollback', plan, '--cleanup'], env);
    expect(rb.code, rb.err).toBe(0);
    const c = await client(src, { database: 'back', user: 'app', password: APP_PW });
    await c.query('INSERT INTO items (name) VALUES ($1)', ['after rollback']);
    await c.end();
    const s = await client(src);
    const slots = await s.query(`SELECT slot_name FROM pg_replication_slots`);
    await s.end();
    expect(slots.rows).toEqual([]);
  });

  it('roles.passwordEnv: sync creates the login role with the plan password (it logs in to the target); the password reaches neither the target log nor the state', async () => {
    const REPORTING_PW = 'Rep0rt:ing/pw%';
    const a = await adminClient(src, admin, 'postgres');
    await a.query(`CREATE ROLE reporting LOGIN PASSWORD '${REPORTING_PW}'`);
    await a.query(`CREATE ROLE auditor LOGIN PASSWORD 'auditor-pw'`);
    await a.end();
    await seed('rep');
    const plan = await writePlan('rep', `roles: { passwordEnv: { reporting: REPORTING_PW, ghost: REPORTING_PW } }`);
    // Only sync runs here: no PgBouncer entry for this database.
    await writeFile(plan, (await readFile(plan, 'utf8')).replace(/^router: .*$/m, 'router: { kind: none }'));
    const withPw = { ...env, REPORTING_PW };
    const check = await cli(['check', plan, '--json'], withPw);
    expect(check.code, check.err + check.out).toBe(0);
    const findings = (check.json().findings as Array<{ check: string; object?: string; message: string }>).filter((f) => f.check === 'role passwords');
    // auditor still needs one; reporting has it from the plan; ghost is no role of the source.
    expect(findings.map((f) => f.object)).toEqual(expect.arrayContaining(['auditor', 'ghost']));
    expect(findings.map((f) => f.object)).not.toContain('reporting');
    expect(findings.find((f) => f.object === 'ghost')!.message).toMatch(/not a login role of the source/);
    // Every statement the target runs is logged while sync runs; the admin may quiet it for the subscription only.
    await exec(dst, 'postgres', `GRANT SET ON PARAMETER log_statement TO ${admin.user}`, `ALTER SYSTEM SET log_statement = 'all'`, 'SELECT pg_reload_conf()');
    try {
      const sync = await cli(['sync', plan, '--json'], withPw);
      expect(sync.code, sync.err).toBe(0);
      expect(sync.err + sync.out).toMatch(/created with their password from roles.passwordEnv: reporting/);
    } finally {
      await exec(dst, 'postgres', 'ALTER SYSTEM RESET log_statement', 'SELECT pg_reload_conf()', `REVOKE SET ON PARAMETER log_statement FROM ${admin.user}`);
    }
    const c = await client(dst, { database: 'rep', user: 'reporting', password: REPORTING_PW });
    expect((await c.query('SELECT current_user AS u')).rows[0].u).toBe('reporting');
    await c.end();
    const log = await dst.log();
    expect(log).toMatch(/CREATE ROLE "reporting" .*PASSWORD 'SCRAM-SHA-256\$4096:/);
    expect(log).not.toContain(REPORTING_PW);
    expect(log).not.toContain(REPL_PW);
    for (const f of await readdir(stateDir, { recursive: true })) {
      const text = await readFile(join(stateDir, f), 'utf8').catch(() => '');
      expect(text, f).not.toContain(REPORTING_PW);
    }
    expect((await cli(['rollback', plan, '--cleanup'], withPw)).code).toBe(0);
  });

  it('check blocks, before anything changes, a target whose log would record the subscription password', async () => {
    await exec(dst, 'postgres', `ALTER SYSTEM SET log_min_error_statement = 'error'`, 'SELECT pg_reload_conf()');
    try {
      await seed('logged');
      const check = await cli(['check', await writePlan('logged')], env);
      expect(check.code).toBe(3);
      expect(check.out + check.err).toMatch(/the target has log_min_error_statement = error and cutover_admin cannot change it/);
      const t = await client(dst);
      expect((await t.query(`SELECT 1 FROM pg_database WHERE datname = 'logged'`)).rows).toEqual([]);
      await t.end();
    } finally {
      await exec(dst, 'postgres', 'ALTER SYSTEM RESET log_min_error_statement', 'SELECT pg_reload_conf()');
    }
  });

  it('check blocks a source database the admin does not own (the fence needs ALTER DATABASE)', async () => {
    await exec(src, 'postgres', 'CREATE DATABASE theirs');
    await exec(src, 'theirs', 'CREATE TABLE t (id int PRIMARY KEY)');
    const check = await cli(['check', await writePlan('theirs')], env);
    expect(check.code, check.err).toBe(3);
    expect(check.out + check.err).toMatch(/cutover_admin does not own database theirs \(owner: postgres\)/);
  });
});
