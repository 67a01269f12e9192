import { UsageError } from '../../src/errors.js';
import type { FenceOptions, PriorState } from '../../src/readonly/types.js';
import type { PgPrior, PgReadOnlyContext } from './postgres-readonly-context.js';
import { loginSql } from './postgres-sql.js';

/**
 * Strict mode: the app roles to lock out, each with whether it could log in before the fence (so `off`
 * unlocks only those). Outside strict mode no role may be named.
 */
export async function captureRoleLogins(c: PgReadOnlyContext, opts: FenceOptions): Promise<Record<string, boolean>> {
  const roles: Record<string, boolean> = {};
  if (opts.mode === 'strict') {
    if (opts.roles.length === 0) throw new UsageError('strict mode needs the app roles to lock', 'pass the app roles in readOnly.roles of the plan (or --role <name>, repeatable)');
    const rows = await c.q<{ rolname: string; rolcanlogin: boolean; me: boolean }>(`SELECT rolname, rolcanlogin, rolname = current_user AS me FROM pg_roles WHERE rolname = ANY($1::text[])`, [opts.roles]);
    for (const want of opts.roles) {
      const row = rows.find((r) => r.rolname === want);
      if (!row) throw new UsageError(`role "${want}" does not exist on ${c.ep.host}:${c.ep.port}`, 'check readOnly.roles in the plan (or --role)');
      if (row.me) throw new UsageError(`refusing to lock out role "${want}": the tool itself connects as it`, 'connect as another superuser or drop it from readOnly.roles (or --role)');
      roles[want] = row.rolcanlogin;
    }
  } else if (opts.roles.length > 0) {
    throw new UsageError('roles (--role) only apply to mode strict', 'set readOnly.mode: strict (or --mode strict), or drop the roles');
  }
  return roles;
}

export async function lockRoles(c: PgReadOnlyContext, prior: PriorState): Promise<string[]> {
  const lockedRoles: string[] = [];
  for (const role of Object.keys((prior as PgPrior).roles)) {
    await c.q(loginSql(role, false), [], `locking role "${role}"`);
    lockedRoles.push(role);
  }
  return lockedRoles;
}

/** Gives back the login of the roles that had it before the fence. */
export async function unlockRoles(c: PgReadOnlyContext, p: PgPrior): Promise<string[]> {
  const unlocked: string[] = [];
  for (const [role, couldLogin] of Object.entries(p.roles)) {
    if (!couldLogin) continue;
    await c.q(loginSql(role, true), [], `unlocking role "${role}"`);
    unlocked.push(role);
  }
  return unlocked;
}
