import { UsageError } from '../../src/errors.js';
import type { FenceOptions } from '../../src/readonly/types.js';
import { bypassAccounts, currentAccount, isLocked, resolveAccounts } from './mysql-accounts.js';
import type { MysqlPrior, MysqlReadOnlyContext, MysqlScope } from './mysql-readonly-context.js';
import { accountLabel, accountLockSql } from './mysql-sql.js';
import { mysqlErrno } from './mysql-connection.js';

/**
 * Strict mode: the app accounts to lock until `off`, each with whether it was locked before the fence (so
 * `off` unlocks only those it locked). Outside strict mode no account may be named.
 */
export async function captureAccountLocks(c: MysqlReadOnlyContext, scope: MysqlScope, opts: FenceOptions): Promise<MysqlPrior['roles']> {
  const roles: MysqlPrior['roles'] = {};
  if (opts.mode === 'strict') {
    if (opts.roles.length === 0) throw new UsageError('strict mode needs the app accounts to lock', 'pass the app accounts in readOnly.roles of the plan (or --role <user> / --role <user@host>, repeatable)');
    const me = accountLabel(await currentAccount(c.q));
    for (const a of await resolveAccounts(c.q, opts.roles, c.where)) {
      if (accountLabel(a) === me) throw new UsageError(`refusing to lock account ${me}: the tool itself connects as it`, 'connect as another administrative account or drop it from readOnly.roles (or --role)');
      roles[accountLabel(a)] = { ...a, locked: await isLocked(c.q, a) };
    }
    // Accounts that write through read_only are locked too (the cutover asks for it): the tool's own is kept.
    if (opts.lockBypass && scope === 'server' && !c.flavor.superReadOnly) {
      for (const b of await bypassAccounts(c.q, c.flavor)) {
        const label = accountLabel(b);
        if (label !== me && !roles[label]) roles[label] = { user: b.user, host: b.host, locked: b.locked, bypass: true };
      }
    }
  } else if (opts.roles.length > 0) {
    throw new UsageError('roles (--role) only apply to mode strict', 'set readOnly.mode: strict (or --mode strict), or drop the roles');
  }
  return roles;
}

/** Locks the recorded accounts that were not locked already; returns every recorded account. */
export async function lockAccounts(c: MysqlReadOnlyContext, p: MysqlPrior): Promise<string[]> {
  const lockedRoles: string[] = [];
  for (const [label, a] of Object.entries(p.roles)) {
    if (!a.locked) await c.q(accountLockSql(a, true), [], `locking account ${label}`);
    lockedRoles.push(label);
  }
  return lockedRoles;
}

/** The warning for accounts strict mode locked because they write despite read_only, if any. */
export function lockedBypassWarning(p: MysqlPrior): string[] {
  const lockedBypass = Object.entries(p.roles)
    .filter(([, a]) => a.bypass && !a.locked)
    .map(([label]) => label);
  return lockedBypass.length > 0 ? [`strict mode locked ${lockedBypass.length} account(s) that write despite read_only until \`off\` (their sessions were ended): ${lockedBypass.join(', ')}`] : [];
}

/** Unlocks the accounts the fence locked; one dropped meanwhile is a warning. */
export async function unlockAccounts(c: MysqlReadOnlyContext, p: MysqlPrior | undefined, warnings: string[]): Promise<string[]> {
  const unlockedRoles: string[] = [];
  for (const [label, a] of Object.entries(p?.roles ?? {})) {
    if (a.locked) continue;
    try {
      await c.q(accountLockSql(a, false), [], `unlocking account ${label}`);
      unlockedRoles.push(label);
    } catch (e) {
      if (mysqlErrno(e) !== 1396) throw e;
      warnings.push(`account ${label} no longer exists: nothing to unlock`);
    }
  }
  return unlockedRoles;
}
