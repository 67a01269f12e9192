import type { Finding } from '../../src/engine/cutover-adapter.js';
import type { RouterLogin } from '../../src/engine/router.js';
import { REPLICATION_ACCOUNT_PREFIX } from '../../src/util/replication-account.js';
import type { PgClient } from './postgres-connection.js';
import { scramVerifier, secretKind, secretMatches } from './postgres-scram.js';
import { quoteIdent, quoteLiteral } from './postgres-sql.js';

/** A login role as one server sees it; `hash` is undefined where pg_authid is unreadable (managed). */
export interface LoginRole {
  name: string;
  canLogin: boolean;
  /** The stored verifier (`SCRAM-SHA-256$...`, `md5...`), null for none; never printed. */
  hash?: string | null;
  validUntil: Date | null;
  /** Roles it is a member of (pg_auth_members), sorted. */
  memberOf: readonly string[];
}

function hashKind(h: string | null): 'scram' | 'md5' | 'none' | 'plain' {
  return h === null ? 'none' : secretKind(h);
}

function finding(severity: Finding['severity'], role: string, message: string, fix: string): Finding {
  return {
    severity,
    check: 'roles',
    object: role,
    message,
    why: 'after the switch its applications (and a pooler logging in for them) log in to the target with the password they use today',
    fix,
  };
}

/**
 * Login roles that exist on both servers but would not accept the same login there. sync leaves existing target
 * roles alone, so such a role is the DBA's to mend before the switch. Pure: `source` and `target` as read by
 * `readLoginRoles`. A SCRAM verifier is salted, so two verifiers of one password differ: a warning, not a blocker;
 * md5 is salted with the role name only, so two different md5 hashes are two different passwords.
 */
export function roleDriftFindings(
  source: readonly LoginRole[],
  target: readonly LoginRole[],
  opts: {
    targetRoleNames: ReadonlySet<string>;
    /** Roles whose password the plan gives (roles.passwordEnv): checked against it instead (plannedPasswordFindings). */
    passwordsFromPlan?: ReadonlySet<string>;
    /** Roles this plan's strict fence locked on the target (a revert's old source): their NOLOGIN is ours, lifted at its switch. */
    lockedByFence?: ReadonlySet<string>;
    now?: Date;
  },
): Finding[] {
  const now = opts.now ?? new Date();
  const there = new Map(target.map((r) => [r.name, r]));
  const out: Finding[] = [];
  const copyVerifier = (role: string) =>
    `set the same password on the target (ALTER ROLE ${quoteIdent(role)} PASSWORD ...), or copy the source's verifier: SELECT rolpassword FROM pg_authid WHERE rolname = ${quoteLiteral(role)} on the source, then ALTER ROLE ${quoteIdent(role)} PASSWORD '<that verifier>' on the target`;
  for (const s of source) {
    const t = there.get(s.name);
    if (!s.canLogin || !t) continue;
    if (!t.canLogin && !opts.lockedByFence?.has(s.name)) {
      out.push(finding('blocker', s.name, `role ${s.name} may log in on the source but is NOLOGIN on the target`, `ALTER ROLE ${quoteIdent(s.name)} LOGIN on the target`));
      continue;
    }
    if (t.validUntil && t.validUntil <= now && !(s.validUntil && s.validUntil <= now)) {
      out.push(
        finding(
          'blocker',
          s.name,
          `role ${s.name}'s password expired on the target (VALID UNTIL ${t.validUntil.toISOString()})`,
          `ALTER ROLE ${quoteIdent(s.name)} VALID UNTIL 'infinity' (or the source's date) on the target`,
        ),
      );
      continue;
    }
    // A group the target lacks is created by sync with its memberships; one it has is left alone, like the role.
    const missing = s.memberOf.filter((g) => opts.targetRoleNames.has(g) && !t.memberOf.includes(g));
    if (missing.length > 0)
      out.push(
        finding(
          'blocker',
          s.name,
          `role ${s.name} is a member of ${missing.join(', ')} on the source but not on the target`,
          `GRANT ${missing.map(quoteIdent).join(', ')} TO ${quoteIdent(s.name)} on the target (the privileges it uses may come through those roles)`,
        ),
      );
    if (opts.passwordsFromPlan?.has(s.name) || s.hash === undefined || t.hash === undefined || s.hash === t.hash) continue;
    const [sk, tk] = [hashKind(s.hash), hashKind(t.hash)];
    if (tk === 'none') {
      out.push(finding('blocker', s.name, `role ${s.name} has a password on the source but none on the target`, copyVerifier(s.name)));
    } else if (sk === 'none') {
      out.push(
        finding(
          'warning',
          s.name,
          `role ${s.name} has no password on the source but one on the target`,
          `nothing to do if its applications authenticate otherwise (pg_hba.conf); else ALTER ROLE ${quoteIdent(s.name)} PASSWORD NULL on the target`,
        ),
      );
    } else if (sk === 'md5' && tk === 'md5') {
      out.push(finding('blocker', s.name, `role ${s.name} has another password on the target (md5 hashes differ)`, copyVerifier(s.name)));
    } else {
      out.push(
        finding(
          'warning',
          s.name,
          `role ${s.name} has another password verifier on the target (${sk === tk ? `${sk}, salted: the same password gives another verifier` : `${sk} on the source, ${tk} on the target`}); a PgBouncer userlist holding SCRAM secrets logs in to the server only with the verifier it was given`,
          `if the passwords are the same and no pooler holds the source's verifier, nothing to do; else ${copyVerifier(s.name)}`,
        ),
      );
    }
  }
  return out;
}

/**
 * The login roles of one server, without superusers (the tool's own accounts, not the applications') and the
 * tool's replication accounts. `hash` only where pg_authid is readable (a superuser).
 */
export async function readLoginRoles(c: PgClient, withHash: boolean): Promise<LoginRole[]> {
  const { rows } = await c.query<{ name: string; can_login: boolean; hash?: string | null; valid_until: Date | null; member_of: string[] }>(
    `SELECT a.rolname AS name, a.rolcanlogin AS can_login, a.rolvaliduntil AS valid_until${withHash ? ', a.rolpassword AS hash' : ''},
            ARRAY(SELECT DISTINCT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = a.oid ORDER BY 1) AS member_of
       FROM ${withHash ? 'pg_authid' : 'pg_roles'} a
      WHERE NOT a.rolsuper AND a.rolname !~ '^pg_' AND NOT starts_with(a.rolname, $1) AND a.rolname <> current_user`,
    [REPLICATION_ACCOUNT_PREFIX],
  );
  return rows.map((r) => ({ name: r.name, canLogin: r.can_login, validUntil: r.valid_until, memberOf: r.member_of, ...(withHash ? { hash: r.hash ?? null } : {}) }));
}

/** Every role name of a server (groups included): memberships in a group it lacks are sync's to grant. */
export async function roleNames(c: PgClient): Promise<Set<string>> {
  return new Set((await c.query<{ r: string }>(`SELECT rolname AS r FROM pg_roles`)).rows.map((x) => x.r));
}

/** The stored verifier of each role (pg_authid: a superuser only); null where it is unreadable. */
async function storedVerifiers(c: PgClient, users: readonly string[]): Promise<Map<string, string | null> | null> {
  try {
    const { rows } = await c.query<{ u: string; h: string | null }>(`SELECT rolname AS u, rolpassword AS h FROM pg_authid WHERE rolname = ANY($1)`, [users]);
    return new Map(rows.map((r) => [r.u, r.h]));
  } catch (e) {
    if ((e as { code?: string }).code === '42501') return null;
    throw e;
  }
}

/**
 * Roles of the plan's roles.passwordEnv that the target already has: sync leaves them alone (it creates only the
 * missing ones with that password), so the target must accept the plan's password as it is.
 */
export async function plannedPasswordFindings(target: readonly LoginRole[], planned: Readonly<Record<string, string>>): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const t of target) {
    const password = planned[t.name];
    if (password === undefined || !t.hash || (await secretMatches(password, t.name, t.hash))) continue;
    out.push(
      finding(
        'blocker',
        t.name,
        `role ${t.name} exists on the target with another password than roles.passwordEnv gives`,
        `set it on the target (ALTER ROLE ${quoteIdent(t.name)} PASSWORD ...), or fix the variable roles.passwordEnv names for it: sync does not change an existing role`,
      ),
    );
  }
  return out;
}

/**
 * Whether the target will accept the logins a pooler makes for the moved database after the switch: a PgBouncer
 * userlist (or its entry's password=) holds a plain password (checked against the verifier as the server would),
 * a SCRAM secret (the same verifier, salt included) or an md5 hash. A role the target lacks is compared with what
 * sync will give it: the plan's password (a fresh verifier) or the source's verifier. A secret the source refuses
 * too is not what today's login uses (trust, a certificate): a warning. Nothing is said where a verifier is
 * unreadable (managed) or the secret unknown.
 */
export async function routerLoginFindings(src: PgClient, dst: PgClient, logins: readonly RouterLogin[], planned: Readonly<Record<string, string>> = {}): Promise<Finding[]> {
  const known = logins.filter((l): l is Required<RouterLogin> => l.secret !== undefined);
  if (known.length === 0) return [];
  const users = known.map((l) => l.user);
  const [onTarget, onSource] = await Promise.all([storedVerifiers(dst, users), storedVerifiers(src, users)]);
  if (!onTarget) return [];
  const out: Finding[] = [];
  for (const { user, secret } of known) {
    const there = onTarget.has(user);
    const plannedPassword = planned[user];
    const stored = there ? onTarget.get(user) : plannedPassword !== undefined ? scramVerifier(plannedPassword) : onSource?.get(user);
    if (stored === undefined || stored === null || (await secretMatches(secret, user, stored))) continue;
    const today = onSource?.get(user);
    const usedToday = today === undefined || today === null || (await secretMatches(secret, user, today));
    const kind = { scram: 'SCRAM secret', md5: 'md5 hash', plain: 'password' }[secretKind(secret)];
    out.push({
      severity: usedToday ? 'blocker' : 'warning',
      check: 'roles',
      object: user,
      message: `the router logs in as ${user} with the ${kind} of its userlist, which ${there ? 'the target' : 'the role sync creates on the target'} does not accept${usedToday ? '' : ' (the source does not either: its login there may not use a password)'}`,
      why: 'after the switch every client of the moved database that the router serves as this user would be refused a server connection',
      fix: `make them agree before the switch: give ${quoteIdent(user)} on the target the password the userlist has (or the source's verifier: ALTER ROLE ${quoteIdent(user)} PASSWORD '<verifier>'), or update the userlist entry and RELOAD`,
    });
  }
  return out;
}
