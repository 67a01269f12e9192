import type { RowDataPacket } from 'mysql2/promise';
import { UsageError } from '../../src/errors.js';
import type { SessionInfo } from '../../src/readonly/types.js';
import { flavorLabel, type MysqlFlavor } from './mysql-flavor.js';
import type { MysqlSession, Query } from './mysql-sessions.js';
import { accountLabel, parseAccountSpec, parseGrantee, quoteAccount, quoteString, type Account } from './mysql-sql.js';

export interface BypassAccount extends Account {
  /** The privilege that lets it write, and the role it comes through (MariaDB roles) if not granted directly. */
  privilege: string;
  viaRole?: string;
  locked: boolean;
}

/** USER_PRIVILEGES spells it `READ_ONLY ADMIN`; GRANT also accepts `READ ONLY ADMIN`. Match both. */
function spellings(privileges: readonly string[]): string[] {
  return [...new Set(privileges.flatMap((p) => [p, p.replace(/_/g, ' ')]))];
}

/** `SHOW CREATE USER` ends with ACCOUNT LOCK on both engines when the account is locked. */
export async function isLocked(q: Query, a: Account): Promise<boolean> {
  const rows = await q<RowDataPacket>(`SHOW CREATE USER ${quoteAccount(a)}`, [], `reading account ${accountLabel(a)}`);
  const text = String(Object.values(rows[0] ?? {})[0] ?? '');
  return /\sACCOUNT LOCK(\s|$)/i.test(text);
}

/**
 * Accounts that keep writing while read_only is ON: holders of the flavor's bypass privileges, directly or
 * (MariaDB) through a role they can SET ROLE to — `GRANT ALL ON *.*` includes them.
 */
export async function bypassAccounts(q: Query, flavor: MysqlFlavor): Promise<BypassAccount[]> {
  const names = spellings(flavor.bypassPrivileges);
  const direct = await q<RowDataPacket & { grantee: string; privilege: string }>(
    `SELECT GRANTEE AS grantee, MIN(PRIVILEGE_TYPE) AS privilege FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE IN (?) GROUP BY GRANTEE ORDER BY GRANTEE`,
    [names],
    'listing accounts that bypass read_only',
  );
  const found: Array<Omit<BypassAccount, 'locked'>> = [];
  for (const r of direct) {
    const a = parseGrantee(r.grantee);
    if (a) found.push({ ...a, privilege: r.privilege });
  }
  if (flavor.kind === 'mariadb') found.push(...(await viaRoles(q, names, new Set(found.map(accountLabel)))));
  const out: BypassAccount[] = [];
  for (const a of found) out.push({ ...a, locked: await isLocked(q, a) });
  return out;
}

/** information_schema lists only direct grants: follow MariaDB's roles_mapping (roles can hold roles). */
async function viaRoles(q: Query, privileges: string[], seen: Set<string>): Promise<Array<Omit<BypassAccount, 'locked'>>> {
  const mapping = await q<RowDataPacket & { user: string; host: string; role: string }>(`SELECT User AS user, Host AS host, Role AS role FROM mysql.roles_mapping`, [], 'reading role grants');
  if (mapping.length === 0) return [];
  const roles = new Set(mapping.map((m) => m.role));
  const privileged = new Map<string, string>();
  const pattern = new RegExp(`^GRANT (.*\\b(${privileges.map((p) => p.replace(/ /g, '[ _]')).join('|')})\\b.*|ALL PRIVILEGES) ON \\*\\.\\* TO`, 'i');
  for (const role of roles) {
    const grants = await q<RowDataPacket>(`SHOW GRANTS FOR ${quoteString(role)}`, [], `reading grants of role ${role}`);
    for (const g of grants) {
      const m = pattern.exec(String(Object.values(g)[0] ?? ''));
      if (m) privileged.set(role, m[2] ?? 'ALL PRIVILEGES');
    }
  }
  // A role granted a privileged role is privileged too (Host '' marks a role as grantee).
  for (let changed = true; changed;) {
    changed = false;
    for (const m of mapping) {
      if (m.host === '' && roles.has(m.user) && privileged.has(m.role) && !privileged.has(m.user)) {
        privileged.set(m.user, privileged.get(m.role)!);
        changed = true;
      }
    }
  }
  const out: Array<Omit<BypassAccount, 'locked'>> = [];
  for (const m of mapping) {
    if (m.host === '' && roles.has(m.user)) continue;
    const via = privileged.get(m.role);
    const label = accountLabel({ user: m.user, host: m.host });
    if (via && !seen.has(label)) {
      seen.add(label);
      out.push({ user: m.user, host: m.host, privilege: via, viaRole: m.role });
    }
  }
  return out;
}

/** Resolves `--role` specs to existing accounts; `app` means every host of user app. */
export async function resolveAccounts(q: Query, specs: readonly string[], where: string): Promise<Account[]> {
  const out = new Map<string, Account>();
  for (const spec of specs) {
    const { user, host } = parseAccountSpec(spec);
    const rows = await q<RowDataPacket & { user: string; host: string }>(
      `SELECT User AS user, Host AS host FROM mysql.user WHERE User = ?${host !== undefined ? ' AND Host = ?' : ''} ORDER BY Host`,
      host !== undefined ? [user, host] : [user],
      'looking up --role accounts',
    );
    if (rows.length === 0)
      throw new UsageError(`account "${host !== undefined ? `${user}@${host}` : user}" does not exist at ${where}`, 'check readOnly.roles in the plan (or --role): user, or user@host as in mysql.user');
    for (const r of rows) out.set(accountLabel(r), { user: r.user, host: r.host });
  }
  return [...out.values()];
}

/** CURRENT_USER() is `user@host` of the account the tool authenticated as. */
export async function currentAccount(q: Query): Promise<Account> {
  const rows = await q<RowDataPacket & { me: string }>(`SELECT CURRENT_USER() AS me`);
  const me = String(rows[0]?.me ?? '');
  const at = me.lastIndexOf('@');
  return { user: me.slice(0, at), host: me.slice(at + 1) };
}

/** Accounts that are connected or able to connect: a locked account without sessions cannot write. */
export function reachable(bypass: BypassAccount[], sessions: MysqlSession[]): BypassAccount[] {
  return bypass.filter((b) => !b.locked || sessions.some((s) => s.user === b.user));
}

export function bypassInfo(b: BypassAccount, sessions: MysqlSession[]): SessionInfo {
  const n = sessions.filter((s) => s.user === b.user).length;
  return {
    id: accountLabel(b),
    user: b.user,
    client: b.host,
    reason: `holds ${b.privilege}${b.viaRole ? ` via role ${b.viaRole}` : ''}: writes despite read_only${b.locked ? ' (locked)' : ''}; ${n} session(s) of user ${b.user} connected`,
  };
}

export function bypassWarning(bypass: BypassAccount[], f: MysqlFlavor): string {
  const names = bypass.map((b) => `${accountLabel(b)}${b.viaRole ? ` (via role ${b.viaRole})` : ''}${b.locked ? ' (locked)' : ''}`).join(', ');
  return `${bypass.length} account(s) with ${f.bypassPrivileges.join(' or ')} write despite read_only on ${flavorLabel(f)}: ${names}; apps must not use them (enforced mode kills their sessions; they can reconnect)`;
}
