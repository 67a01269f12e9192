import type { RowDataPacket } from 'mysql2/promise';
import { atLeast, type MysqlFlavor } from './mysql-flavor.js';
import type { Query } from './mysql-sessions.js';

/** What the plan asks (`privileges:`): detect, or force one profile. */
export type PrivilegesSetting = 'auto' | 'superuser' | 'managed';
/**
 * How each step is done on one server: `superuser` sets read_only and global variables; `managed` (RDS,
 * Aurora, SkySQL-like: no SUPER / READ ONLY ADMIN / SYSTEM_VARIABLES_ADMIN) fences by locking the app accounts
 * and revoking their write privileges instead. Never changes whether a step is safe.
 */
export type PrivilegeProfile = 'superuser' | 'managed';

/**
 * The global privileges that allow `SET GLOBAL read_only` on this server (measured on MariaDB 10.11.19:
 * "you need (at least one of) the READ_ONLY ADMIN privilege"; 10.5.2-10.10 also SUPER; MySQL SUPER or
 * SYSTEM_VARIABLES_ADMIN). information_schema spells the MariaDB one `READ_ONLY ADMIN`.
 */
export function readOnlyPrivileges(f: MysqlFlavor): string[] {
  if (f.kind === 'mysql') return ['SUPER', 'SYSTEM_VARIABLES_ADMIN'];
  const v = f.version.split('.').map(Number) as [number, number, number];
  if (atLeast(v, [10, 11, 0])) return ['READ_ONLY ADMIN'];
  return atLeast(v, [10, 5, 2]) ? ['READ_ONLY ADMIN', 'SUPER'] : ['SUPER'];
}

/** `GRANT a, b ON *.* TO ...` lines of SHOW GRANTS → the global privileges they name (ALL PRIVILEGES kept as is). */
export function globalPrivilegesFromGrants(lines: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const line of lines) {
    const m = /^GRANT\s+(.+?)\s+ON\s+\*\.\*\s+TO\s/i.exec(line.trim());
    if (!m) continue;
    // Column lists never appear at the global level, so a comma always separates two privileges.
    for (const p of m[1]!.split(',')) out.add(p.trim().toUpperCase().replace(/_/g, ' '));
  }
  return out;
}

/** The profile SHOW GRANTS implies: one of readOnlyPrivileges (or ALL PRIVILEGES) → superuser. */
export function profileFromGrants(lines: readonly string[], f: MysqlFlavor): PrivilegeProfile {
  const held = globalPrivilegesFromGrants(lines);
  if (held.has('ALL PRIVILEGES')) return 'superuser';
  return readOnlyPrivileges(f).some((p) => held.has(p.replace(/_/g, ' '))) ? 'superuser' : 'managed';
}

/** The account's own grants, one line each (SHOW GRANTS for the session's account and its default role). */
export async function ownGrants(q: Query): Promise<string[]> {
  const rows = await q<RowDataPacket>(`SHOW GRANTS`, [], 'reading the account\u2019s own grants');
  return rows.map((r) => String(Object.values(r)[0] ?? ''));
}

/** `auto` asks the server; the other two are taken as given. */
export async function resolveProfile(q: Query, f: MysqlFlavor, setting: PrivilegesSetting | undefined): Promise<PrivilegeProfile> {
  if (setting === 'superuser' || setting === 'managed') return setting;
  return profileFromGrants(await ownGrants(q), f);
}
