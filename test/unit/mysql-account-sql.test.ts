import { describe, expect, it } from 'vitest';
import { planAccounts } from '../../adapters/mysql/mysql-account-copy.js';
import { authDifference, createUserSql, escapeDbPattern, grantSql, grantsOn, mysqlAuthClause, parseCreateUser, parseGrantLine, patternMatches } from '../../adapters/mysql/mysql-account-sql.js';
import { detectFlavor } from '../../adapters/mysql/mysql-flavor.js';
import type { Query } from '../../adapters/mysql/mysql-sessions.js';

const mysql8 = detectFlavor('8.0.36', 'MySQL Community Server - GPL');
const SHA2_HEX = '244124303035240C7745603626313D613C4C10633E0A104B1E14135A544A7871567245614F4872344643546336546F624F6C7861326932752F45622F4F473273597557627139';

describe('SHOW CREATE USER', () => {
  it('reads MariaDB native, VIA ... USING ... OR and password-less accounts', () => {
    const native = parseCreateUser("CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*4CBB7DEB1E1E45A42AF705FABFE218D2394958A7' REQUIRE SSL WITH MAX_USER_CONNECTIONS 10");
    expect(native.account).toEqual({ user: 'app', host: '%' });
    expect(native.methods).toEqual([{ plugin: 'mysql_native_password', hash: '*4CBB7DEB1E1E45A42AF705FABFE218D2394958A7' }]);
    expect(native.options).toBe('REQUIRE SSL WITH MAX_USER_CONNECTIONS 10');
    expect(createUserSql({ user: 'app', host: '%' }, native)).toBe("CREATE USER 'app'@'%' IDENTIFIED BY PASSWORD '*4CBB7DEB1E1E45A42AF705FABFE218D2394958A7' REQUIRE SSL WITH MAX_USER_CONNECTIONS 10");

    const via = parseCreateUser("CREATE USER `ed`@`10.0.%` IDENTIFIED VIA ed25519 USING 'Gv2JI8Env2fd5YGonZ082tX3UAW+yJYldOlj4R1bfK4' OR unix_socket");
    expect(via.methods.map((m) => m.plugin)).toEqual(['ed25519', 'unix_socket']);
    expect(via.clause).toBe("IDENTIFIED VIA ed25519 USING 'Gv2JI8Env2fd5YGonZ082tX3UAW+yJYldOlj4R1bfK4' OR unix_socket");

    const none = parseCreateUser('CREATE USER `nopw`@`%`');
    expect(none.methods).toEqual([]);
    expect(createUserSql(none.account, none)).toBe("CREATE USER 'nopw'@'%'");
  });

  it('reads MySQL 8 caching_sha2_password with a hex hash and writes it back as AS 0x...', () => {
    const text = `CREATE USER 'u1'@'localhost' IDENTIFIED WITH 'caching_sha2_password' AS 0x${SHA2_HEX} REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK PASSWORD HISTORY DEFAULT PASSWORD REUSE INTERVAL DEFAULT PASSWORD REQUIRE CURRENT DEFAULT`;
    const p = parseCreateUser(text);
    expect(p.methods).toEqual([{ plugin: 'caching_sha2_password', hash: `0x${SHA2_HEX.toLowerCase()}` }]);
    expect(p.options).toBe('REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK PASSWORD HISTORY DEFAULT PASSWORD REUSE INTERVAL DEFAULT PASSWORD REQUIRE CURRENT DEFAULT');
    const clause = mysqlAuthClause('caching_sha2_password', SHA2_HEX.toLowerCase());
    expect(clause).toBe(`IDENTIFIED WITH 'caching_sha2_password' AS 0x${SHA2_HEX}`);
    expect(createUserSql({ user: "o'brien", host: '10.%' }, { clause, options: 'ACCOUNT LOCK' })).toBe(`CREATE USER 'o''brien'@'10.%' IDENTIFIED WITH 'caching_sha2_password' AS 0x${SHA2_HEX} ACCOUNT LOCK`);
    expect(mysqlAuthClause('auth_socket', '')).toBe("IDENTIFIED WITH 'auth_socket'");
    expect(() => mysqlAuthClause('x', "' OR 1")).toThrow();
  });

  it('names a difference without the hash, and a salted hash only as a possible difference', () => {
    const a = parseCreateUser("CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*AAAA'");
    const b = parseCreateUser("CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*BBBB'");
    const ed = parseCreateUser("CREATE USER `app`@`%` IDENTIFIED VIA ed25519 USING 'xyz'");
    expect(authDifference(a, a)).toBeUndefined();
    const pw = authDifference(a, b)!;
    expect(pw.salted).toBe(false);
    expect(pw.text).not.toMatch(/AAAA|BBBB/);
    expect(authDifference(a, ed)!.text).toBe('authentication differs: source mysql_native_password, target ed25519');
    const s1 = { clause: '', options: '', methods: [{ plugin: 'caching_sha2_password', hash: '0x01' }] };
    const s2 = { clause: '', options: '', methods: [{ plugin: 'caching_sha2_password', hash: '0x02' }] };
    expect(authDifference(s1, s2)!.salted).toBe(true);
  });
});

describe('SHOW GRANTS filtered to the moved database', () => {
  const lines = [
    "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*4CBB7DEB1E1E45A42AF705FABFE218D2394958A7'",
    'GRANT ALL PRIVILEGES ON `shop-eu`.* TO `app`@`%`',
    'GRANT SELECT ON `shop\\_eu`.* TO `app`@`%`',
    'GRANT SELECT ON `shop%`.* TO `app`@`%`',
    'GRANT INSERT, UPDATE (`v`, `w`) ON `shop-eu`.`t` TO `app`@`%` WITH GRANT OPTION',
    'GRANT EXECUTE ON PROCEDURE `shop-eu`.`p` TO `app`@`%`',
    'GRANT `shop_rw` TO `app`@`%`',
    'SET DEFAULT ROLE `shop_rw` FOR `app`@`%`',
  ].map(parseGrantLine);

  it('parses privileges, objects, roles and default roles', () => {
    expect(lines[4]).toEqual({ kind: 'privileges', privileges: ['INSERT', 'UPDATE (`v`, `w`)'], db: 'shop-eu', table: 't', grantOption: true });
    expect(lines[5]).toMatchObject({ kind: 'privileges', routine: 'PROCEDURE', db: 'shop-eu', table: 'p' });
    expect(lines[6]).toEqual({ kind: 'role', role: 'shop_rw', admin: false });
    expect(lines[7]).toEqual({ kind: 'default-role', role: 'shop_rw' });
  });

  it('keeps what covers the database, narrows wildcards to it and never carries the global line (it holds the hash)', () => {
    const g = grantsOn(lines, 'shop-eu');
    expect(g.map((x) => grantSql(x, { user: 'app', host: '%' }))).toEqual([
      "GRANT ALL PRIVILEGES, SELECT ON `shop-eu`.* TO 'app'@'%'",
      "GRANT INSERT, UPDATE (`v`, `w`) ON `shop-eu`.`t` TO 'app'@'%' WITH GRANT OPTION",
      "GRANT EXECUTE ON PROCEDURE `shop-eu`.`p` TO 'app'@'%'",
    ]);
    expect(JSON.stringify(g)).not.toContain('4CBB7');
    // shop_eu: the escaped grant is literal, and the target's grant is escaped so `_` stays literal there too.
    expect(grantsOn(lines, 'shop_eu').map((x) => x.object)).toEqual(['`shop\\_eu`.*']);
    expect(grantsOn(lines, 'shopXeu').map((x) => x.object)).toEqual(['`shopXeu`.*']);
    expect(grantsOn(lines, 'other')).toEqual([]);
  });

  it('matches grant patterns as mysql.db does', () => {
    expect(patternMatches('shop\\_eu', 'shop_eu')).toBe(true);
    expect(patternMatches('shop\\_eu', 'shopXeu')).toBe(false);
    expect(patternMatches('shop_eu', 'shopXeu')).toBe(true);
    expect(patternMatches('tenant\\_%', 'tenant_7')).toBe(true);
    expect(patternMatches('a.b', 'aXb')).toBe(false);
    expect(escapeDbPattern('a_b%c\\d')).toBe('a\\_b\\%c\\\\d');
    expect(parseGrantLine('GRANT SELECT ON `odd``db`.* TO `ed`@`10.0.%`')).toMatchObject({ db: 'odd`db', table: '*' });
  });
});

/** A fake MySQL 8 source/target: answers the catalog reads planAccounts makes. */
function fakeMysql8(
  accounts: Record<string, { create: string; hashHex: string; plugin: string; grants: string[] }>,
  dbRows: Array<{ user: string; host: string; db: string }>,
  plugins = ['caching_sha2_password', 'sha256_password', 'mysql_native_password'],
  own = ['GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION'],
): { q: Query; ran: string[] } {
  const ran: string[] = [];
  const key = (u: unknown, h: unknown) => `${String(u)}@${String(h)}`;
  const q = (async (sql: string, params: unknown[] = []) => {
    ran.push(sql);
    if (sql.includes('FROM mysql.db')) return dbRows.map((r) => ({ ...r, pattern: 1 }));
    if (sql.includes('information_schema.PLUGINS')) return plugins.map((p) => ({ p }));
    if (sql === 'SHOW GRANTS FOR CURRENT_USER()') return own.map((g) => ({ x: g }));
    if (sql.startsWith("SELECT 'N' AS r FROM mysql.user")) return accounts[key(params[0], params[1])] ? [{ r: 'N' }] : [];
    if (sql.startsWith('SELECT plugin, HEX')) {
      const a = accounts[key(params[0], params[1])];
      return a ? [{ plugin: a.plugin, hash: a.hashHex }] : [];
    }
    const m = /^SHOW (CREATE USER|GRANTS FOR) '(.*)'@'(.*)'$/.exec(sql);
    if (m) {
      const a = accounts[key(m[2], m[3])]!;
      return m[1] === 'CREATE USER' ? [{ x: a.create }] : a.grants.map((g) => ({ x: g }));
    }
    throw new Error(`unexpected ${sql}`);
  }) as Query;
  return { q, ran };
}

describe('planAccounts on MySQL 8 (SQL only: no MySQL 8 server here)', () => {
  const app = {
    plugin: 'caching_sha2_password',
    hashHex: SHA2_HEX,
    create: `CREATE USER \`app\`@\`%\` IDENTIFIED WITH 'caching_sha2_password' AS 0x${SHA2_HEX} REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK`,
    grants: ['GRANT USAGE ON *.* TO `app`@`%`', 'GRANT SELECT, INSERT, UPDATE, DELETE ON `shop-eu`.* TO `app`@`%`'],
  };

  it('creates a missing account with its hash as a hex literal and its grants on the database only', async () => {
    const src = fakeMysql8({ 'app@%': app }, [{ user: 'app', host: '%', db: 'shop-eu' }]);
    const dst = fakeMysql8({}, []);
    const plan = await planAccounts({ q: src.q, flavor: mysql8 }, { q: dst.q, flavor: mysql8 }, 'shop-eu', { mode: 'copy', named: [] });
    expect(plan.statements.map((s) => s.sql)).toEqual([
      `CREATE USER 'app'@'%' IDENTIFIED WITH 'caching_sha2_password' AS 0x${SHA2_HEX} REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK`,
      "GRANT DELETE, INSERT, SELECT, UPDATE ON `shop-eu`.* TO 'app'@'%'",
    ]);
    expect(plan.created).toEqual(['account app@%']);
    expect(JSON.stringify(plan.findings)).not.toMatch(new RegExp(SHA2_HEX.slice(0, 16), 'i'));
    expect(plan.hashes).toContain(SHA2_HEX);
  });

  it('check mode creates nothing and blocks on the missing account; skip looks at nothing', async () => {
    const src = fakeMysql8({ 'app@%': app }, [{ user: 'app', host: '%', db: 'shop-eu' }]);
    const dst = fakeMysql8({}, []);
    const check = await planAccounts({ q: src.q, flavor: mysql8 }, { q: dst.q, flavor: mysql8 }, 'shop-eu', { mode: 'check', named: [] });
    expect(check.statements).toEqual([]);
    expect(check.findings).toEqual([expect.objectContaining({ severity: 'blocker', check: 'accounts', object: 'app@%', message: expect.stringMatching(/does not exist on the target/) })]);
    const before = src.ran.length;
    const skip = await planAccounts({ q: src.q, flavor: mysql8 }, { q: dst.q, flavor: mysql8 }, 'shop-eu', { mode: 'skip', named: [] });
    expect(skip).toMatchObject({ statements: [], findings: [] });
    expect(src.ran.length).toBe(before);
  });

  it('blocks when the target account may not create accounts', async () => {
    const src = fakeMysql8({ 'app@%': app }, [{ user: 'app', host: '%', db: 'shop-eu' }]);
    const dst = fakeMysql8({}, [], undefined, ['GRANT SELECT, INSERT, REPLICATION_SLAVE_ADMIN ON *.* TO `cutover`@`%`']);
    const plan = await planAccounts({ q: src.q, flavor: mysql8 }, { q: dst.q, flavor: mysql8 }, 'shop-eu', { mode: 'copy', named: [] });
    expect(plan.findings).toContainEqual(expect.objectContaining({ severity: 'blocker', object: 'target CREATE USER', message: 'the target account lacks CREATE USER, needed to create account app@%' }));
  });

  it('blocks instead of creating an account whose plugin the target has not loaded', async () => {
    const src = fakeMysql8({ 'app@%': app }, [{ user: 'app', host: '%', db: 'shop-eu' }]);
    const dst = fakeMysql8({}, [], ['mysql_native_password']);
    const plan = await planAccounts({ q: src.q, flavor: mysql8 }, { q: dst.q, flavor: mysql8 }, 'shop-eu', { mode: 'copy', named: [] });
    expect(plan.statements).toEqual([]);
    expect(plan.findings).toEqual([expect.objectContaining({ severity: 'blocker', object: 'app@%', message: 'account app@% authenticates with caching_sha2_password, which the target has not loaded' })]);
  });

  it('an existing account with another salted hash is a warning; other grants are a blocker naming both', async () => {
    const src = fakeMysql8({ 'app@%': app }, [{ user: 'app', host: '%', db: 'shop-eu' }]);
    const other = { ...app, hashHex: SHA2_HEX.replace(/^2441/, '2442'), grants: ['GRANT USAGE ON *.* TO `app`@`%`', 'GRANT SELECT ON `shop-eu`.* TO `app`@`%`'] };
    const dst = fakeMysql8({ 'app@%': other }, []);
    const plan = await planAccounts({ q: src.q, flavor: mysql8 }, { q: dst.q, flavor: mysql8 }, 'shop-eu', { mode: 'copy', named: [] });
    expect(plan.statements).toEqual([]);
    expect(plan.findings).toHaveLength(1);
    expect(plan.findings[0]).toMatchObject({ severity: 'blocker', object: 'app@%' });
    expect(plan.findings[0]!.message).toMatch(/password hashes differ.*grants on shop-eu differ: source DELETE, INSERT, SELECT, UPDATE on `shop-eu`\.\*; target SELECT on `shop-eu`\.\*/);
    expect(plan.findings[0]!.message).not.toMatch(/2441|2442/);

    const sameGrants = fakeMysql8({ 'app@%': { ...other, grants: app.grants } }, []);
    const salted = await planAccounts({ q: src.q, flavor: mysql8 }, { q: sameGrants.q, flavor: mysql8 }, 'shop-eu', { mode: 'copy', named: [] });
    expect(salted.findings).toEqual([expect.objectContaining({ severity: 'warning', message: expect.stringMatching(/salts its hash/) })]);
    expect(salted.statements).toEqual([]);
    // The same warning, and the grants the account lacks on the database are still given.
    const noGrants = fakeMysql8({ 'app@%': { ...other, grants: ['GRANT USAGE ON *.* TO `app`@`%`'] } }, []);
    const granted = await planAccounts({ q: src.q, flavor: mysql8 }, { q: noGrants.q, flavor: mysql8 }, 'shop-eu', { mode: 'copy', named: [] });
    expect(granted.findings.map((f) => f.severity)).toEqual(['warning']);
    expect(granted.statements.map((st) => st.sql)).toEqual(["GRANT DELETE, INSERT, SELECT, UPDATE ON `shop-eu`.* TO 'app'@'%'"]);
  });

  it('asks MySQL catalogs nothing MariaDB-only (is_role, roles_mapping)', async () => {
    const src = fakeMysql8({ 'app@%': app }, [{ user: 'app', host: '%', db: 'shop-eu' }]);
    await planAccounts({ q: src.q, flavor: mysql8 }, { q: fakeMysql8({}, []).q, flavor: mysql8 }, 'shop-eu', { mode: 'copy', named: [] });
    expect(src.ran.some((s) => s.includes('is_role') || s.includes('roles_mapping'))).toBe(false);
  });
});
