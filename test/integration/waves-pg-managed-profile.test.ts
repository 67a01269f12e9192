import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, createManagedAdmin, createManagedDatabase, providerSession, type ManagedAdmin } from '../../adapters/postgres/postgres-managed-profile.js';
import { workloadTableSql } from '../../adapters/postgres/postgres-workload.js';
import { PgBouncerSandbox } from '../../adapters/routers/pgbouncer-sandbox.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { sleep, type PostgresEnv } from '../helpers/cutover-env.js';
import { PostgresSandbox, client, exec, pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';
import { bouncerRoute, missingTenantWrites, TenantWorkload } from '../helpers/waves-env.js';

const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing;
const ADMIN_PW = 'Adm:in/pw%1';
const APP_PW = 'app-pw';
const REPL_PW = 'repl-pw';
const TENANTS = ['t_one', 't_two', 't_three'];

/**
 * `cutover waves` as a managed service's admin on both sides (PostgreSQL 15 → 17, no superuser in the plan):
 * each tenant database is fenced at database scope by its owner, the app role writes to random tenants through
 * PgBouncer, and a provider superuser session sits on one tenant the whole time.
 */
describe.skipIf(unavailable)('managed profile: waves of 3 PostgreSQL tenant databases through PgBouncer as a non-superuser admin', () => {
  let e: PostgresEnv;
  let admin: ManagedAdmin;
  let stateDir: string;

  beforeAll(async () => {
    const src = await PostgresSandbox.start({ major: 15 });
    // A managed admin cannot quiet the log for its own session (see docs/managed.md): the provider's parameters do.
    const dst = await PostgresSandbox.start({ major: 17, settings: { log_min_error_statement: 'log' } });
    for (const sb of [src, dst]) admin = await createManagedAdmin(sb, ADMIN_PW);
    for (const sb of [src, dst]) {
      const a = await adminClient(sb, admin, 'postgres');
      // The app's password on the target is set by the admin beforehand: pg_authid is unreadable to it.
      await a.query(`CREATE ROLE app LOGIN PASSWORD '${APP_PW}'`);
      await a.end();
    }
    await exec(src, 'postgres', `CREATE ROLE repl LOGIN REPLICATION PASSWORD '${REPL_PW}'`, 'GRANT pg_read_all_data TO repl');
    for (const t of TENANTS) {
      await createManagedDatabase(src, t, admin);
      const a = await adminClient(src, admin, t);
      await a.query('CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL)');
      await a.query(`INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 500) g`);
      await a.query(workloadTableSql());
      await a.query('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app');
      await a.query('GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app');
      await a.end();
    }
    const bouncer = await PgBouncerSandbox.start({
      databases: Object.fromEntries(TENANTS.map((t) => [t, { host: src.host, port: src.port }])),
      users: { app: APP_PW },
      poolMode: 'transaction',
    });
    e = {
      engine: 'postgres',
      src,
      dst,
      bouncer,
      password: src.password,
      env: { ADMIN_PW, REPL_PW, BOUNCER_PW: bouncer.adminPassword },
      async stop() {
        await bouncer.stop();
        await Promise.all([src.stop(), dst.stop()]);
      },
    };
    stateDir = await tempStateDir(src.dir);
  }, 180_000);
  afterAll(async () => e?.stop());

  it('every acknowledged write on the target; each tenant fenced by ALTER DATABASE; the provider session left and named', async () => {
    await mkdir(stateDir, { recursive: true });
    const plan = join(stateDir, 'waves.plan.yaml');
    await writeFile(
      plan,
      [
        'engine: postgres',
        `source: { url: "postgres://${admin.user}@127.0.0.1:${e.src.port}/postgres", passwordEnv: ADMIN_PW, replication: { user: repl, passwordEnv: REPL_PW } }`,
        `target: { url: "postgres://${admin.user}@127.0.0.1:${e.dst.port}/postgres", passwordEnv: ADMIN_PW }`,
        `scope: { tenants: [${TENANTS.map((t) => `"${t}"`).join(', ')}] }`,
        'privileges: managed',
        'readOnly: { mode: enforced }',
        `router: { kind: pgbouncer, admin: "${e.bouncer!.adminUrl()}", adminPasswordEnv: BOUNCER_PW, ini: "${e.bouncer!.iniPath}", database: "${TENANTS[0]}" }`,
        `state: "${stateDir}"`,
        'waves: { concurrency: 2, maxWriteBlockedPerTenant: 5s }',
      ].join('\n') + '\n',
    );
    const provider = await providerSession(e.src, 't_two');
    // check of one tenant names the session the admin may not end; strict mode makes it a blocker (exit 3).
    for (const mode of ['enforced', 'strict'] as const) {
      const one = join(stateDir, `check-${mode}.plan.yaml`);
      const text = (await readFile(plan, 'utf8'))
        .replace(/scope: \{ tenants: .*\}/, 'scope: { databases: ["t_two"] }')
        .replace('readOnly: { mode: enforced }', `readOnly: { mode: ${mode}${mode === 'strict' ? ', roles: [app]' : ''} }`)
        .replace(/\/postgres"/g, '/t_two"')
        .replace(/^waves:.*$/m, '')
        .replace(`state: "${stateDir}"`, `state: "${join(stateDir, `check-${mode}`)}"`);
      await writeFile(one, text);
      const check = await cli(['check', one, '--json'], e.env);
      const found = (check.json().findings as Array<{ severity: string; check: string; message: string }>).filter((f) => f.check === 'sessions');
      expect(found, check.out).toEqual([
        expect.objectContaining({ severity: mode === 'strict' ? 'blocker' : 'warning', message: expect.stringMatching(/user postgres, application_name provider agent\) on database t_two/) }),
      ]);
      expect(check.code, check.out + check.err).toBe(mode === 'strict' ? 3 : 0);
    }
    const workload = new TenantWorkload(e, TENANTS, 4, {}, { user: 'app', password: APP_PW }).start();
    let r;
    try {
      await sleep(300);
      r = await cli(['waves', plan, '--yes', '--json'], e.env);
      await sleep(300);
    } finally {
      var writes = await workload.stop();
    }
    expect(r.code, r.err + r.out).toBe(0);
    const result = r.json();
    console.log(`managed waves: ${TENANTS.length} tenants in ${result.wallMs} ms; windows p50 ${result.windows.p50Ms} max ${result.windows.maxMs} ms; ${writes.length} writes`);
    expect(result.counts.done).toBe(TENANTS.length);
    expect(writes.filter((w) => !w.ok).slice(0, 3)).toEqual([]);
    expect(await missingTenantWrites(e, 'dst', writes, TENANTS)).toEqual([]);
    for (const t of TENANTS) expect(await bouncerRoute(e, t)).toBe(`${e.dst.port}/${t}`);

    // The fence is the owner's database default, readable by anyone: no server-wide setting was touched.
    const s = await client(e.src);
    const defaults = (await s.query(`SELECT d.datname, s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE s.setrole = 0 ORDER BY 1`)).rows;
    const serverWide = (await s.query(`SELECT setting FROM pg_settings WHERE name = 'default_transaction_read_only'`)).rows[0].setting;
    await s.end();
    expect(defaults.map((d) => d.datname)).toEqual([...TENANTS].sort());
    for (const d of defaults) expect(d.setconfig).toContain('default_transaction_read_only=on');
    expect(serverWide).toBe('off');

    // The provider's session was neither ended nor silently passed over: t_two's result names it.
    expect((await provider.query('SELECT 1 AS ok')).rows[0].ok).toBe(1);
    await provider.end();
    const two = result.tenants.find((t: { tenant: string }) => t.tenant === 't_two');
    expect(JSON.stringify(two.warnings)).toMatch(/provider agent/);
  }, 240_000);
});
