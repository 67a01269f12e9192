import type { PgClient } from './postgres-connection.js';
import { scramVerifier } from './postgres-scram.js';
import { quoteIdent, quoteLiteral } from './postgres-sql.js';
import { REPLICATION_ACCOUNT_PREFIX } from '../../src/util/replication-account.js';

/** Whether the connected role may grant membership in `role`: a superuser, CREATEROLE before 16, or ADMIN OPTION on it. */
async function canGrant(dst: PgClient, role: string): Promise<boolean> {
  const { rows } = await dst.query<{ ok: boolean }>(
    `SELECT (SELECT rolsuper OR (rolcreaterole AND current_setting('server_version_num')::int < 160000) FROM pg_roles WHERE rolname = current_user) OR COALESCE(pg_has_role(current_user, (SELECT oid FROM pg_roles WHERE rolname = $1), 'MEMBER WITH ADMIN OPTION'), false) AS ok`,
    [role],
  );
  return rows[0]?.ok ?? false;
}

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
export async function copyMissingRoles(src: PgClient, dst: PgClient, opts: { managed?: boolean; passwords?: Record<string, string> } = {}): Promise<{ created: number; notes: string[] }> {
  // Managed: pg_authid (the password hashes) is the provider's; pg_roles has every attribute but the hash.
  const { rows } = await src.query<RoleRow>(
    `SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
            rolconnlimit, ${opts.managed ? 'NULL::text AS rolpassword' : 'rolpassword'}, rolvaliduntil
       FROM ${opts.managed ? 'pg_roles' : 'pg_authid'} WHERE rolname !~ '^pg_' AND NOT starts_with(rolname, $1) ORDER BY rolname`,
    [REPLICATION_ACCOUNT_PREFIX],
  );
  const existing = new Set((await dst.query<{ rolname: string }>(`SELECT rolname FROM pg_roles`)).rows.map((r) => r.rolname));
  const me = (await dst.query<{ su: boolean; repl: boolean; rls: boolean }>(`SELECT rolsuper AS su, rolreplication AS repl, rolbypassrls AS rls FROM pg_roles WHERE rolname = current_user`)).rows[0]!;
  const notes: string[] = [];
  const withoutPassword: string[] = [];
  const fromPlan: string[] = [];
  let created = 0;
  for (const r of rows) {
    if (existing.has(r.rolname)) continue;
    if (opts.managed && !me.su) {
      // A managed admin cannot give what it lacks: superusers stay the provider's, the attributes are noted.
      if (r.rolsuper) {
        notes.push(`role ${r.rolname} is a superuser on the source and was not created (a managed admin cannot create superusers)`);
        continue;
      }
      if (r.rolreplication && !me.repl) notes.push(`role ${r.rolname} was created without REPLICATION (the target admin lacks it)`);
      if (r.rolbypassrls && !me.rls) notes.push(`role ${r.rolname} was created without BYPASSRLS (the target admin lacks it)`);
      r.rolreplication &&= me.repl;
      r.rolbypassrls &&= me.rls;
    }
    // The plan's password wins over the source's hash; only its SCRAM verifier reaches the target (and its logs).
    const planned = opts.passwords?.[r.rolname];
    const password = planned !== undefined ? scramVerifier(planned) : r.rolpassword;
    const attrs = [
      r.rolsuper ? 'SUPERUSER' : 'NOSUPERUSER',
      r.rolinherit ? 'INHERIT' : 'NOINHERIT',
      r.rolcreaterole ? 'CREATEROLE' : 'NOCREATEROLE',
      r.rolcreatedb ? 'CREATEDB' : 'NOCREATEDB',
      r.rolcanlogin ? 'LOGIN' : 'NOLOGIN',
      r.rolreplication ? 'REPLICATION' : 'NOREPLICATION',
      r.rolbypassrls ? 'BYPASSRLS' : 'NOBYPASSRLS',
      `CONNECTION LIMIT ${Number(r.rolconnlimit)}`,
      ...(password ? [`PASSWORD ${quoteLiteral(password)}`] : []),
      ...(r.rolvaliduntil ? [`VALID UNTIL ${quoteLiteral(r.rolvaliduntil.toISOString())}`] : []),
    ];
    try {
      await dst.query(`CREATE ROLE ${quoteIdent(r.rolname)} WITH ${attrs.join(' ')}`);
    } catch (e) {
      // Tenants of a wave copy at the same time into one target: the role another one just made is left alone
      // (42710 once it committed, 23505 from pg_authid's unique index while it was committing).
      const code = (e as { code?: string }).code;
      if (code !== '42710' && code !== '23505') throw e;
      existing.add(r.rolname);
      continue;
    }
    if (planned !== undefined) fromPlan.push(r.rolname);
    else if (opts.managed && r.rolcanlogin) withoutPassword.push(r.rolname);
    created++;
  }
  if (fromPlan.length) notes.push(`role(s) created with their password from roles.passwordEnv: ${fromPlan.join(', ')}`);
  if (withoutPassword.length)
    notes.push(
      `login role(s) created without a password (managed: pg_authid is not readable): ${withoutPassword.join(', ')}; set them on the target with ALTER ROLE ... PASSWORD before the switch (or name them in the plan's roles.passwordEnv before sync)`,
    );
  const members = await src.query<{ role: string; member: string; admin: boolean }>(
    `SELECT r.rolname AS role, m.rolname AS member, am.admin_option AS admin
       FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
      WHERE r.rolname !~ '^pg_' OR m.rolname !~ '^pg_'`,
  );
  for (const m of members.rows) {
    if (existing.has(m.member) && existing.has(m.role)) continue;
    if (opts.managed && (!existing.has(m.role) || !existing.has(m.member)) && !(await canGrant(dst, m.role))) {
      notes.push(`membership of ${m.member} in ${m.role} not granted: the target admin holds no ADMIN OPTION on ${m.role}`);
      continue;
    }
    await dst.query(`GRANT ${quoteIdent(m.role)} TO ${quoteIdent(m.member)}${m.admin ? ' WITH ADMIN OPTION' : ''}`);
  }
  return { created, notes };
}
