import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { client, exec, pg15Missing, pg18Missing } from '../helpers/pg.js';

const SETTINGS = `SELECT coalesce(r.rolname, '-') AS role, s.setdatabase <> 0 AS indb, unnest(s.setconfig) AS cfg
                    FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole
                   WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = 'shop') OR r.rolname = 'app'`;
const ACL = `SELECT pg_get_userbyid(datdba) AS owner, datacl::text[] AS acl FROM pg_database WHERE datname = 'shop'`;

describe.skipIf(pg15Missing ?? pg18Missing)('sync carries database and role settings, database privileges and owner (PostgreSQL 15 → 18)', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { targetMajor: 18 });
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'shop', 100);
    await exec(
      e.src,
      'shop',
      `CREATE ROLE app LOGIN PASSWORD 'app-pw'`,
      'CREATE ROLE shop_owner',
      'ALTER DATABASE shop OWNER TO shop_owner',
      `ALTER DATABASE shop SET work_mem = '8MB'`,
      `ALTER DATABASE shop SET search_path = "$user", public, "Odd Schema"`,
      `ALTER ROLE app SET statement_timeout = '5s'`,
      `ALTER ROLE app IN DATABASE shop SET app.tenant = 'acme'`,
      'REVOKE ALL ON DATABASE shop FROM PUBLIC',
      'GRANT CONNECT ON DATABASE shop TO app',
      'GRANT CREATE ON DATABASE shop TO app WITH GRANT OPTION',
    );
  });
  afterAll(async () => e?.stop());

  it('the target ends with the same settings, privileges and owner; an app session sees them; check names a later difference', async () => {
    const plan = await writePlan(e, { db: 'shop', stateDir });
    const before = await cli(['check', plan, '--json'], e.env);
    expect(before.json().findings.find((f: { check: string }) => f.check === 'settings').message).toMatch(/sync carries 4 database\/role setting\(s\)/);
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    expect(sync.err + sync.out).toMatch(/4 database\/role setting\(s\) and \d+ database grant\(s\) carried over/);

    const s = await client(e.src);
    const t = await client(e.dst);
    try {
      const sorted = async (c: typeof s, q: string) => (await c.query(q)).rows.map((r) => JSON.stringify(r)).sort();
      // The target's read-only hold is the tool's own database setting, not the source's.
      expect((await sorted(t, SETTINGS)).filter((r) => !r.includes('default_transaction_read_only'))).toEqual(await sorted(s, SETTINGS));
      const [a, b] = [(await s.query(ACL)).rows[0], (await t.query(ACL)).rows[0]];
      expect(b.owner).toBe('shop_owner');
      // The source also grants CONNECT to the plan's own replication role, which never goes to the target.
      expect([...b.acl].sort()).toEqual(a.acl.filter((x: string) => !x.startsWith('cutover_repl_')).sort());
    } finally {
      await Promise.all([s.end(), t.end()]);
    }
    const asApp = await client(e.dst, { database: 'shop', user: 'app', password: 'app-pw' });
    const seen = await asApp.query(`SELECT current_setting('app.tenant') AS tenant, current_setting('statement_timeout') AS st, current_setting('work_mem') AS wm, current_setting('search_path') AS sp`);
    await asApp.end();
    expect(seen.rows[0]).toEqual({ tenant: 'acme', st: '5s', wm: '8MB', sp: '"$user", public, "Odd Schema"' });

    const quiet = await cli(['check', plan, '--json'], e.env);
    expect(quiet.json().findings.filter((f: { check: string }) => f.check === 'settings' || f.check === 'privileges')).toEqual([]);
    await exec(e.dst, 'postgres', `ALTER ROLE app SET statement_timeout = '9s'`, 'GRANT TEMPORARY ON DATABASE shop TO PUBLIC');
    const diff = await cli(['check', plan, '--json'], e.env);
    const found = diff.json().findings.filter((f: { check: string }) => f.check === 'settings' || f.check === 'privileges');
    expect(found.map((f: { message: string }) => f.message)).toEqual([
      'statement_timeout is 5s for role app on the source, 9s on the target',
      expect.stringMatching(/^database shop privileges differ: source .*target .*=T/),
    ]);
  });
});
