import { PreflightError } from '../../src/errors.js';
import type { FenceOptions, FenceTarget } from '../../src/readonly/types.js';
import { PROVIDER_WAYS, missingPrivilege, type PgPrivileges } from './postgres-privileges.js';
import type { PgReadOnlyContext } from './postgres-readonly-context.js';
import { superuserSessions } from './postgres-sessions.js';

/**
 * What a fence needs of a managed admin, checked before anything changes: each refusal names the privilege
 * and how a provider grants it. Server scope is refused outright (ALTER SYSTEM is the provider's); strict mode
 * refuses while a session the admin cannot end could write.
 */
export async function checkManagedFence(c: PgReadOnlyContext, p: PgPrivileges, target: FenceTarget, opts: FenceOptions): Promise<void> {
  const where = `${c.ep.host}:${c.ep.port}`;
  if (target.scope === 'server')
    throw new PreflightError(
      'privilege',
      `server scope needs ALTER SYSTEM, which only a superuser may run; role "${p.user}" on ${where} is a managed admin (privileges: managed)`,
      'fence the database instead (readOnly.scope: database, or --scope database), or one role (scope role with its name); the provider alone sets server parameters',
    );
  if (target.scope === 'database') {
    const owner = await c.q<{ ok: boolean; o: string }>(`SELECT pg_has_role(current_user, datdba, 'USAGE') AS ok, pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = $1`, [target.name]);
    if (owner[0] && !owner[0].ok)
      throw missingPrivilege(p, where, `ALTER DATABASE ${target.name} SET default_transaction_read_only`, `ownership of database "${target.name}" (owner: ${owner[0].o})`, PROVIDER_WAYS.databaseOwner);
  }
  if (target.scope === 'role' || (opts.mode === 'strict' && opts.roles.length > 0)) {
    if (!p.createRole) throw missingPrivilege(p, where, target.scope === 'role' ? `ALTER ROLE ${target.name} SET` : 'locking the app roles (ALTER ROLE ... NOLOGIN)', 'CREATEROLE', PROVIDER_WAYS.createRole);
    const roles = [...(target.scope === 'role' && target.name ? [target.name] : []), ...(opts.mode === 'strict' ? opts.roles : [])];
    const rows = await c.q<{ rolname: string; su: boolean; admin: boolean }>(
      `SELECT rolname, rolsuper AS su, pg_has_role(current_user, oid, 'MEMBER WITH ADMIN OPTION') AS admin FROM pg_roles WHERE rolname = ANY($1::text[])`,
      [roles],
    );
    for (const r of rows) {
      if (r.su) throw missingPrivilege(p, where, `changing role "${r.rolname}"`, 'superuser (the role is a superuser)', 'fence another scope: a managed admin cannot alter a superuser role');
      // PostgreSQL 16+: CREATEROLE reaches only the roles the admin holds ADMIN OPTION on.
      if (p.major >= 16 && !r.admin) throw missingPrivilege(p, where, `changing role "${r.rolname}"`, `ADMIN OPTION on role "${r.rolname}"`, PROVIDER_WAYS.createRole);
    }
  }
  if (opts.mode === 'advisory') return;
  if (!p.signalBackend) throw missingPrivilege(p, where, `ending the sessions that predate the fence (mode ${opts.mode})`, 'membership in pg_signal_backend', PROVIDER_WAYS.signalBackend);
  if (!p.monitor) throw missingPrivilege(p, where, `draining the write transactions of other roles (mode ${opts.mode})`, 'membership in pg_monitor (pg_read_all_stats)', PROVIDER_WAYS.monitor);
  if (opts.mode === 'strict') {
    const kept = await superuserSessions(c.client, target, opts.exemptSessions ?? []);
    if (kept.length)
      throw new PreflightError(
        'privilege',
        `strict mode refuses to fence: ${kept.length} superuser session(s) this account cannot end could still write: ${kept.map((s) => `pid ${s.pid} (user ${s.user}${s.application ? `, ${s.application}` : ''})`).join(', ')}`,
        'wait until they disconnect (or ask the provider), or use readOnly.mode: enforced, which fences, leaves them running and names them',
      );
  }
}
