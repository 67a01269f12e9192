import type { PgClient } from './postgres-connection.js';
import { quoteIdent, quoteLiteral } from './postgres-sql.js';
import { REPLICATION_ACCOUNT_PREFIX } from '../../src/util/replication-account.js';

interface RoleRow {
  rolname: string;
  rolsuper: boolean;
  rolinherit: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolcanlogin: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
  rolconnlimit: number;
  rolpassword: string | null;
  rolvaliduntil: Date | null;
}

/**
 * Creates on the target the roles of the source it does not have (with their password hashes, so apps keep
 * their credentials), and their memberships. Existing target roles are left alone: pg_dumpall --roles-only
 * would overwrite them, including the target superuser's password. The tool's own replication roles stay behind:
 * they exist for one job on the source only.
 */
export async function copyMissingRoles(src: PgClient, dst: PgClient): Promise<number> {
  const { rows } = await src.query<RoleRow>(
    `SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
            rolconnlimit, rolpassword, rolvaliduntil
       FROM pg_authid WHERE rolname !~ '^pg_' AND NOT starts_with(rolname, $1) ORDER BY rolname`,
    [REPLICATION_ACCOUNT_PREFIX],
  );
  const existing = new Set((await dst.query<{ rolname: string }>(`SELECT rolname FROM pg_roles`)).rows.map((r) => r.rolname));
  let created = 0;
  for (const r of rows) {
    if (existing.has(r.rolname)) continue;
    const attrs = [
      r.rolsuper ? 'SUPERUSER' : 'NOSUPERUSER',
      r.rolinherit ? 'INHERIT' : 'NOINHERIT',
      r.rolcreaterole ? 'CREATEROLE' : 'NOCREATEROLE',
      r.rolcreatedb ? 'CREATEDB' : 'NOCREATEDB',
      r.rolcanlogin ? 'LOGIN' : 'NOLOGIN',
      r.rolreplication ? 'REPLICATION' : 'NOREPLICATION',
      r.rolbypassrls ? 'BYPASSRLS' : 'NOBYPASSRLS',
      `CONNECTION LIMIT ${Number(r.rolconnlimit)}`,
      ...(r.rolpassword ? [`PASSWORD ${quoteLiteral(r.rolpassword)}`] : []),
      ...(r.rolvaliduntil ? [`VALID UNTIL ${quoteLiteral(r.rolvaliduntil.toISOString())}`] : []),
    ];
    await dst.query(`CREATE ROLE ${quoteIdent(r.rolname)} WITH ${attrs.join(' ')}`);
    created++;
  }
  const members = await src.query<{ role: string; member: string; admin: boolean }>(
    `SELECT r.rolname AS role, m.rolname AS member, am.admin_option AS admin
       FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
      WHERE r.rolname !~ '^pg_' OR m.rolname !~ '^pg_'`,
  );
  for (const m of members.rows) {
    if (existing.has(m.member) && existing.has(m.role)) continue;
    await dst.query(`GRANT ${quoteIdent(m.role)} TO ${quoteIdent(m.member)}${m.admin ? ' WITH ADMIN OPTION' : ''}`);
  }
  return created;
}
