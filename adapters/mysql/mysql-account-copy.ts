import type { RowDataPacket } from 'mysql2/promise';
import type { Finding } from '../../src/engine/cutover-adapter.js';
import { PreflightError } from '../../src/errors.js';
import { redactText } from '../../src/util/redact.js';
import {
  authDifference,
  createRoleSql,
  createUserSql,
  describeGrants,
  grantRoleSql,
  grantSql,
  grantsOn,
  mysqlAuthClause,
  parseCreateUser,
  parseGrantLine,
  patternMatches,
  sameGrants,
  setDefaultRoleSql,
  type AccountAuth,
  type GrantLine,
  type ObjectGrant,
} from './mysql-account-sql.js';
import { globalPrivileges, hasAny } from './mysql-checks.js';
import type { MysqlFlavor } from './mysql-flavor.js';
import type { Query } from './mysql-sessions.js';
import { accountLabel, parseAccountSpec, quoteAccount, quoteString, type Account } from './mysql-sql.js';

/** `copy` creates what the target lacks; `check` only reports; `skip` leaves accounts to the operator. */
export type AccountsMode = 'copy' | 'check' | 'skip';

export interface AccountSide {
  q: Query;
  flavor: MysqlFlavor;
}

/** One account or (MariaDB) role of the source with privileges on the moved database. */
interface SourceAccount {
  account: Account;
  isRole: boolean;
  auth?: AccountAuth;
  grants: ObjectGrant[];
  /** MariaDB roles of the copy that this account is granted, and its default role if it is one of them. */
  roles: string[];
  defaultRole?: string;
}

/** What the target needs so the moved database's accounts log in and work there as on the source. */
export interface AccountPlan {
  /** Statements for the target, in order, each with the account it is for; they carry password hashes: never print or journal them. */
  statements: Array<{ sql: string; for: string }>;
  /** The hashes inside the statements, scrubbed from any error the target echoes back. */
  hashes: string[];
  /** Accounts and roles the statements create. */
  created: string[];
  findings: Finding[];
}

const rowText = (r: RowDataPacket | undefined): string => String(Object.values(r ?? {})[0] ?? '');

/** Reserved grantees: the anonymous user and MariaDB's PUBLIC pseudo-role exist on every server already. */
function ignored(a: Account): boolean {
  return a.user === '' || (a.user === 'PUBLIC' && a.host === '');
}

/** Accounts (and MariaDB roles, host '') with a database, table, column or routine grant on `db`. */
async function granteesOn(q: Query, db: string): Promise<Account[]> {
  const rows = await q<RowDataPacket & { user: string; host: string; db: string; pattern: number }>(
    `SELECT User AS user, Host AS host, Db AS db, 1 AS pattern FROM mysql.db
     UNION SELECT User, Host, Db, 0 FROM mysql.tables_priv
     UNION SELECT User, Host, Db, 0 FROM mysql.columns_priv
     UNION SELECT User, Host, Db, 0 FROM mysql.procs_priv`,
    [],
    'listing accounts with privileges on the moved database',
  );
  const out = new Map<string, Account>();
  for (const r of rows) {
    const hit = Number(r.pattern) === 1 ? patternMatches(r.db, db) : r.db === db;
    const a = { user: r.user, host: r.host };
    if (hit && !ignored(a)) out.set(accountLabel(a), a);
  }
  return [...out.values()];
}

async function accountExists(side: AccountSide, a: Account): Promise<{ exists: boolean; isRole: boolean }> {
  // MySQL has no is_role column (its roles are locked accounts with a host).
  const role = side.flavor.kind === 'mariadb' ? 'is_role' : `'N'`;
  const rows = await side.q<RowDataPacket & { r: string | null }>(`SELECT ${role} AS r FROM mysql.user WHERE User = ? AND Host = ?`, [a.user, a.host], `looking up account ${accountLabel(a)}`);
  return { exists: rows.length > 0, isRole: rows[0]?.r === 'Y' };
}

async function grantLines(q: Query, grantee: string, what: string): Promise<GrantLine[]> {
  return (await q<RowDataPacket>(`SHOW GRANTS FOR ${grantee}`, [], `reading the grants of ${what}`)).map((r) => parseGrantLine(rowText(r)));
}

/** Authentication from SHOW CREATE USER; on MySQL the hash is re-read as hex (caching_sha2_password hashes are binary). */
async function readAuth(side: AccountSide, a: Account): Promise<AccountAuth> {
  const text = rowText((await side.q<RowDataPacket>(`SHOW CREATE USER ${quoteAccount(a)}`, [], `reading account ${accountLabel(a)}`))[0]);
  let parsed: AccountAuth;
  try {
    parsed = parseCreateUser(text);
  } catch {
    // The text holds the hash: name the account only.
    throw new PreflightError('preflight', `cannot read the authentication of account ${accountLabel(a)} from SHOW CREATE USER`, 'create that account on the target yourself and set accounts: check (or skip)');
  }
  if (side.flavor.kind === 'mariadb') return parsed;
  const rows = await side.q<RowDataPacket & { plugin: string; hash: string | null }>(
    `SELECT plugin, HEX(authentication_string) AS hash FROM mysql.user WHERE User = ? AND Host = ?`,
    [a.user, a.host],
    `reading account ${accountLabel(a)}`,
  );
  const plugin = rows[0]?.plugin ?? 'caching_sha2_password';
  const hash = (rows[0]?.hash ?? '').toLowerCase();
  return { clause: mysqlAuthClause(plugin, hash), methods: [{ plugin, hash }], options: parsed.options };
}

/** Authentication plugins the server has loaded (built-in ones are listed too). */
async function authPlugins(q: Query): Promise<Set<string>> {
  const rows = await q<RowDataPacket & { p: string }>(
    `SELECT PLUGIN_NAME AS p FROM information_schema.PLUGINS WHERE PLUGIN_TYPE = 'AUTHENTICATION' AND PLUGIN_STATUS = 'ACTIVE'`,
    [],
    'listing the authentication plugins of the target',
  );
  return new Set(rows.map((r) => r.p));
}

function granteeSql(a: Account, isRole: boolean): string {
  return isRole ? quoteString(a.user) : quoteAccount(a);
}

function label(a: Account, isRole: boolean): string {
  return isRole ? `role ${a.user}` : `account ${accountLabel(a)}`;
}

/** The source's accounts and roles of `db`, plus the `named` ones (user or user@host specs). */
async function sourceAccounts(src: AccountSide, db: string, named: readonly string[]): Promise<SourceAccount[]> {
  const found = new Map<string, { account: Account; isRole: boolean }>();
  for (const a of await granteesOn(src.q, db)) found.set(accountLabel(a), { account: a, isRole: a.host === '' && (await accountExists(src, a)).isRole });
  for (const spec of named) {
    const { user, host } = parseAccountSpec(spec);
    const rows = await src.q<RowDataPacket & { user: string; host: string }>(
      `SELECT User AS user, Host AS host FROM mysql.user WHERE User = ?${host !== undefined ? ' AND Host = ?' : ''}`,
      host !== undefined ? [user, host] : [user],
      'looking up the accounts the plan names',
    );
    for (const r of rows) if (!found.has(accountLabel(r))) found.set(accountLabel(r), { account: { user: r.user, host: r.host }, isRole: false });
  }
  const roles = new Set([...found.values()].filter((f) => f.isRole).map((f) => f.account.user));
  // MariaDB: accounts granted a role of the copy reach the database through it.
  if (src.flavor.kind === 'mariadb' && roles.size > 0) {
    // Admin_option rows name who administers a role (its creator gets one), not who uses it.
    const mapping = await src.q<RowDataPacket & { user: string; host: string; role: string }>(
      `SELECT User AS user, Host AS host, Role AS role FROM mysql.roles_mapping WHERE Admin_option <> 'Y'`,
      [],
      'reading role grants',
    );
    // Roles can hold roles: follow the mapping until nothing new turns up.
    for (let grew = true; grew;) {
      grew = false;
      for (const m of mapping) {
        const a = { user: m.user, host: m.host };
        if (!roles.has(m.role) || found.has(accountLabel(a)) || ignored(a)) continue;
        found.set(accountLabel(a), { account: a, isRole: m.host === '' });
        if (m.host === '') roles.add(m.user);
        grew = true;
      }
    }
  }
  const out: SourceAccount[] = [];
  for (const { account, isRole } of found.values()) {
    const lines = await grantLines(src.q, granteeSql(account, isRole), label(account, isRole));
    const roleGrants = lines.flatMap((l) => (l.kind === 'role' && roles.has(l.role) ? [l.role] : []));
    const def = lines.find((l): l is Extract<GrantLine, { kind: 'default-role' }> => l.kind === 'default-role');
    out.push({
      account,
      isRole,
      ...(isRole ? {} : { auth: await readAuth(src, account) }),
      grants: grantsOn(lines, db),
      roles: roleGrants,
      ...(def && roles.has(def.role) ? { defaultRole: def.role } : {}),
    });
  }
  // Roles first, then accounts, each by name: a stable order for statements and messages.
  return out.sort((a, b) => Number(b.isRole) - Number(a.isRole) || accountLabel(a.account).localeCompare(accountLabel(b.account)));
}

function finding(severity: Finding['severity'], object: string, message: string, why: string, fix: string): Finding {
  return { severity, check: 'accounts', object, message, why, fix };
}

/**
 * Compares the moved database's accounts on source and target and lists what `copy` would run. Findings name
 * accounts and the kind of difference, never a hash. `synced`: sync already ran, so a missing account means
 * one was added on the source since (or sync ran with accounts: skip).
 */
export async function planAccounts(src: AccountSide, dst: AccountSide, db: string, opts: { mode: AccountsMode; named: readonly string[]; synced?: boolean }): Promise<AccountPlan> {
  const plan: AccountPlan = { statements: [], hashes: [], created: [], findings: [] };
  if (opts.mode === 'skip') return plan;
  // Every CREATE goes before every GRANT: a role granted to another role or account must exist first.
  const creates: AccountPlan['statements'] = [];
  const grants: AccountPlan['statements'] = [];
  const add = (name: string, sqls: string[], create?: string) => {
    if (create) creates.push({ sql: create, for: name });
    grants.push(...sqls.map((sql) => ({ sql, for: name })));
  };
  const accounts = await sourceAccounts(src, db, opts.named);
  let plugins: Set<string> | undefined;
  for (const s of accounts) {
    const name = label(s.account, s.isRole);
    const obj = s.isRole ? s.account.user : accountLabel(s.account);
    const there = await accountExists(dst, s.account);
    const grantStatements = [
      ...s.grants.map((g) => grantSql(g, s.isRole ? s.account.user : s.account)),
      ...s.roles.map((r) => grantRoleSql(r, s.isRole ? s.account.user : s.account)),
      ...(s.defaultRole ? [setDefaultRoleSql(s.defaultRole, s.account)] : []),
    ];
    if (!there.exists) {
      if (opts.mode === 'check' || opts.synced) {
        const why = s.grants.length || s.roles.length ? `has privileges on ${db} on the source` : 'is named by readOnly.roles';
        plan.findings.push(
          finding(
            'blocker',
            obj,
            `${name} ${why} but does not exist on the target`,
            'after the switch its applications cannot log in (Access denied)',
            opts.mode === 'check'
              ? `create it on the target with the same authentication and grants (SHOW CREATE USER / SHOW GRANTS on the source), or set accounts: copy`
              : 'run `cutover sync` again to create it (accounts: copy), or create it on the target yourself',
          ),
        );
        continue;
      }
      plugins ??= await authPlugins(dst.q);
      const unloaded = (s.auth?.methods ?? []).map((m) => m.plugin).filter((p) => !plugins!.has(p));
      if (unloaded.length > 0) {
        plan.findings.push(
          finding(
            'blocker',
            obj,
            `${name} authenticates with ${unloaded.join(', ')}, which the target has not loaded`,
            'the account cannot be created there with its authentication, so its applications could not log in after the switch',
            `load the plugin on the target (MariaDB: INSTALL SONAME 'auth_${unloaded[0]}'; MySQL: INSTALL PLUGIN), or create the account yourself and set accounts: skip`,
          ),
        );
        continue;
      }
      add(name, grantStatements, s.isRole ? createRoleSql(s.account.user) : createUserSql(s.account, s.auth!));
      plan.hashes.push(...(s.auth?.methods.flatMap((m) => (m.hash ? [m.hash, m.hash.toUpperCase()] : [])) ?? []));
      plan.created.push(name);
      continue;
    }
    const differences: string[] = [];
    let salted = true;
    if (!s.isRole) {
      const diff = authDifference(s.auth!, await readAuth(dst, s.account));
      if (diff) {
        differences.push(diff.text);
        salted = diff.salted;
      }
    }
    const targetLines = await grantLines(dst.q, granteeSql(s.account, s.isRole), `${name} on the target`);
    const targetGrants = grantsOn(targetLines, db);
    const targetRoles = new Set(targetLines.flatMap((l) => (l.kind === 'role' ? [l.role] : [])));
    const missingRoles = s.roles.filter((r) => !targetRoles.has(r));
    const grantsMatch = sameGrants(s.grants, targetGrants);
    if (!grantsMatch && targetGrants.length > 0) {
      differences.push(`grants on ${db} differ: source ${describeGrants(s.grants)}; target ${describeGrants(targetGrants)}`);
      salted = false;
    }
    if (differences.length > 0) {
      // A salted hash differs even for the same password: a warning the operator confirms, not a blocker.
      const severity = salted && differences.length === 1 ? 'warning' : 'blocker';
      plan.findings.push(
        finding(
          severity,
          obj,
          `${name} exists on the target but differs: ${differences.join('; ')}`,
          'after the switch its applications log in to the target: another password or other grants there break them (or give them what the source did not)',
          `make the target's ${name} match the source (ALTER USER / GRANT / REVOKE on the target), or set accounts: skip to manage accounts yourself`,
        ),
      );
      if (severity === 'blocker') continue;
    }
    // The account exists (same authentication, or a salted hash the operator confirms) but has nothing on this
    // database yet, e.g. an earlier tenant of a wave created it.
    const todo = [...(grantsMatch ? [] : s.grants.map((g) => grantSql(g, s.isRole ? s.account.user : s.account))), ...missingRoles.map((r) => grantRoleSql(r, s.isRole ? s.account.user : s.account))];
    if (todo.length === 0) continue;
    if (opts.mode === 'check' || opts.synced) {
      plan.findings.push(
        finding(
          'blocker',
          obj,
          `${name} exists on the target without its grants on ${db} (source: ${describeGrants(s.grants)}${missingRoles.length ? `; roles ${missingRoles.join(', ')}` : ''})`,
          'after the switch its applications are refused on the moved database',
          opts.mode === 'check' ? 'grant them on the target, or set accounts: copy' : 'run `cutover sync` again (accounts: copy), or grant them on the target yourself',
        ),
      );
      continue;
    }
    add(name, [...todo, ...(s.defaultRole && missingRoles.includes(s.defaultRole) ? [setDefaultRoleSql(s.defaultRole, s.account)] : [])]);
  }
  plan.statements = [...creates, ...grants];
  if (creates.length > 0 && !hasAny(await globalPrivileges(dst.q), ['CREATE USER'])) {
    plan.findings.push(
      finding(
        'blocker',
        'target CREATE USER',
        `the target account lacks CREATE USER, needed to create ${plan.created.join(', ')}`,
        "sync creates the moved database's accounts on the target",
        'GRANT CREATE USER ON *.* TO <target account> (it also needs GRANT OPTION on the moved database), or create the accounts yourself and set accounts: check',
      ),
    );
  }
  if (opts.mode === 'copy' && !opts.synced && plan.created.length > 0) {
    plan.findings.push({
      severity: 'info',
      check: 'accounts',
      object: plan.created.join(', '),
      message: `sync creates ${plan.created.length} account(s)/role(s) on the target with the source's authentication and their grants on ${db}`,
      why: 'a database dump does not carry accounts; without them applications cannot log in after the switch',
      fix: 'nothing to do (accounts: check or skip to manage them yourself)',
    });
  }
  return plan;
}

/** Runs the plan's statements on the target; an error names the account, never the statement (it holds the hash). */
export async function applyAccounts(dst: Query, plan: AccountPlan): Promise<number> {
  for (const st of plan.statements) {
    try {
      await dst(st.sql, [], `creating ${st.for} on the target`);
    } catch (e) {
      if (e instanceof Error) e.message = redactText(e.message, plan.hashes);
      throw e;
    }
  }
  return plan.created.length;
}
