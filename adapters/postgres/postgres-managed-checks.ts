import type { Finding } from '../../src/engine/cutover-adapter.js';
import type { ReadOnlyMode, ReadOnlyScope } from '../../src/readonly/types.js';
import type { PrivilegeProfile } from './postgres-privileges.js';
import { PROVIDER_WAYS, type PgPrivileges } from './postgres-privileges.js';
import type { PgSession } from './postgres-sessions.js';

export interface PrivilegeCheckInput {
  requested: PrivilegeProfile;
  source: PgPrivileges;
  target: PgPrivileges;
  /** Logical replication carries the data (method replication). */
  replication: boolean;
  /** The plan names its own replication account (source.replication): the tool creates none. */
  ownReplicationAccount: boolean;
  fence: { scope: ReadOnlyScope; mode: ReadOnlyMode };
}

const side = (s: 'source' | 'target') => `${s}.url`;

/** `auto` is managed unless both accounts are superusers; `managed` is managed even on superusers (a rehearsal). */
export function isManaged(requested: PrivilegeProfile, source: PgPrivileges, target: PgPrivileges): boolean {
  return requested === 'managed' || (requested === 'auto' && !(source.superuser && target.superuser));
}

/**
 * The privilege findings of `cutover check`, from what each account holds (pure: unit-tested). Superuser profile:
 * a blocker per side that is not one. Managed profile: one blocker per missing privilege, naming it and how the
 * providers grant it; nothing here ever asks for a superuser.
 */
export function privilegeFindings(i: PrivilegeCheckInput): Finding[] {
  const f: Finding[] = [];
  const block = (object: 'source' | 'target', message: string, why: string, fix: string) => f.push({ severity: 'blocker', check: 'privileges', object, message, why, fix });
  if (!isManaged(i.requested, i.source, i.target)) {
    for (const end of ['source', 'target'] as const)
      if (!i[end].superuser)
        block(end, `the ${end} user ${i[end].user} is not a superuser (privileges: superuser)`, 'the plan asks for the superuser profile', `use a superuser in ${side(end)}, or set privileges: managed (or auto)`);
    return f;
  }
  f.push({
    severity: 'info',
    check: 'privileges',
    message: `managed profile: source ${i.source.user}${i.source.superuser ? ' (superuser)' : ''}, target ${i.target.user}${i.target.superuser ? ' (superuser)' : ''}`,
    why: i.requested === 'managed' ? 'the plan sets privileges: managed' : 'privileges: auto and an account is not a superuser',
    fix: '—',
  });
  const s = i.source;
  const t = i.target;
  if (i.fence.scope === 'server')
    block('source', 'readOnly.scope server needs ALTER SYSTEM, which a managed admin cannot run', 'only the provider sets server parameters', 'set readOnly.scope: database (or role, with readOnly.name)');
  if (i.fence.mode !== 'advisory') {
    if (!s.superuser && !s.signalBackend) block('source', `${s.user} is not a member of pg_signal_backend`, `mode ${i.fence.mode} ends the sessions that predate the fence`, PROVIDER_WAYS.signalBackend);
    if (!s.superuser && !s.monitor) block('source', `${s.user} is not a member of pg_monitor (pg_read_all_stats)`, "the drain must see other roles' open write transactions", PROVIDER_WAYS.monitor);
  }
  if (i.fence.mode === 'strict' || i.fence.scope === 'role') {
    if (!s.superuser && !s.createRole) block('source', `${s.user} lacks CREATEROLE`, 'a role-scope fence and strict mode alter the app roles', PROVIDER_WAYS.createRole);
  }
  if (i.replication) {
    if (!s.superuser && !s.replication) block('source', `${s.user} lacks the REPLICATION attribute`, 'the initial copy and the leak check read a logical replication slot', PROVIDER_WAYS.replication);
    if (!i.ownReplicationAccount && !s.superuser && (s.major < 16 || !s.createRole || !s.replication))
      block(
        'source',
        s.major < 16
          ? `PostgreSQL ${s.major}: only a superuser creates a role with REPLICATION, so the tool cannot make its replication account`
          : `${s.user} needs CREATEROLE and REPLICATION to make the replication account`,
        "the subscription logs in with its own account, never the admin's (its password would be stored on the target)",
        'create a LOGIN REPLICATION account (RDS/Aurora: GRANT rds_replication TO it) and name it in source.replication: { user, passwordEnv }',
      );
    if (!t.superuser) {
      if (t.major < 16)
        block('target', `PostgreSQL ${t.major}: CREATE SUBSCRIPTION needs a superuser before PostgreSQL 16`, 'the target pulls the changes through a subscription', 'use a PostgreSQL 16+ target, or method: dump');
      else if (!t.createSubscription) block('target', `${t.user} is not a member of pg_create_subscription`, 'the target pulls the changes through a subscription', PROVIDER_WAYS.createSubscription);
    }
  }
  if (!t.superuser && !t.createDb)
    f.push({
      severity: 'warning',
      check: 'privileges',
      object: 'target',
      message: `${t.user} lacks CREATEDB`,
      why: 'sync creates the database on the target when it is missing',
      fix: 'create the database on the target first, owned by the admin',
    });
  if (!t.superuser && !t.createRole)
    f.push({
      severity: 'warning',
      check: 'privileges',
      object: 'target',
      message: `${t.user} lacks CREATEROLE`,
      why: 'sync creates the roles the target is missing',
      fix: 'create the roles on the target first, or grant CREATEROLE',
    });
  return f;
}

/** Managed: login roles sync will create on the target without a password (pg_authid is not readable). */
export function missingPasswordFindings(roles: readonly string[]): Finding[] {
  return roles.map((r) => ({
    severity: 'warning' as const,
    check: 'role passwords',
    object: r,
    message: `login role ${r} will be created on the target without a password`,
    why: 'a managed admin cannot read password hashes (pg_authid)',
    fix: `name it in the plan: roles: { passwordEnv: { ${r}: <VARIABLE> } } (sync creates it with that password), or set it on the target before the switch: ALTER ROLE ${r} PASSWORD '...'`,
  }));
}

/** A session the managed admin may not end, as `check` names it. */
export type ProtectedSession = Pick<PgSession, 'pid' | 'user' | 'application'>;

/**
 * Managed: the superuser sessions (the provider's own) connected to the fenced database now. pg_signal_backend
 * never reaches a superuser's backend, so the fence will leave them running and they can override the read-only
 * default: a warning naming each; under `readOnly.mode: strict` a blocker, since the fence would refuse then.
 */
export function protectedSessionFindings(sessions: readonly ProtectedSession[], database: string, mode: ReadOnlyMode): Finding[] {
  const strict = mode === 'strict';
  return sessions.map((s) => ({
    severity: strict ? ('blocker' as const) : ('warning' as const),
    check: 'sessions',
    object: `pid ${s.pid}`,
    message: `superuser session pid ${s.pid} (user ${s.user}${s.application ? `, application_name ${s.application}` : ''}) on database ${database}: the admin may not end it`,
    why: strict
      ? 'strict mode refuses to fence while a session it cannot end could write through the fence'
      : 'the fence leaves it running (pg_signal_backend does not reach superusers); it can still write, and the leak check watches it',
    fix: strict ? 'wait until it disconnects (or ask the provider), or use readOnly.mode: enforced, which fences and names it' : 'ask the provider which agent it is; nothing to do unless it writes to the moved database',
  }));
}
