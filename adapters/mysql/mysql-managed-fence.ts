import type { RowDataPacket } from 'mysql2/promise';
import { PreflightError, UsageError } from '../../src/errors.js';
import type { FenceOnResult, FenceOptions, FenceTarget, SessionInfo } from '../../src/readonly/types.js';
import { sleep } from '../../src/util/sleep.js';
import { formatDuration } from '../../src/util/units.js';
import { currentAccount, isLocked, resolveAccounts } from './mysql-accounts.js';
import { fencedPositionCheck, writePosition } from './mysql-leak-watch.js';
import type { MysqlReadOnlyContext } from './mysql-readonly-context.js';
import { COLUMN_WRITE_PRIVILEGES, SCHEMA_WRITE_PRIVILEGES, TABLE_WRITE_PRIVILEGES, grantName, informationSchemaGrantee, restoreGrantSql, revokeGrantSql, type Grantee, type HeldGrant } from './mysql-schema-fence-sql.js';
import { describeHeld } from './mysql-schema-fence.js';
import { sessionKiller } from './mysql-session-killer.js';
import { INNODB_TRX_CACHE_MS, clientSessions, endSessionsAtBoundaries, killSessions, publicSession, type MysqlSession, type Query } from './mysql-sessions.js';
import { accountLabel, accountLockSql, type Account } from './mysql-sql.js';
import { mysqlErrno } from './mysql-connection.js';

/**
 * The managed profile's server fence, for an admin that may not `SET GLOBAL read_only` (no SUPER / READ ONLY
 * ADMIN, as on RDS, Aurora or SkySQL-like services): the application accounts are locked (no new logins),
 * lose every write privilege they hold (global, schema, table, column: recorded exactly, granted back on `off`),
 * and their sessions end after the drain. The leak check is the server's write position, as with read_only.
 * What it cannot stop is named: accounts not in the list (the provider's own included) keep writing, and the
 * position check then fails the fence.
 */

/** One account as the fence found it: `off` unlocks it only if it was unlocked, and grants back `held`. */
export interface ManagedAccountPrior extends Account {
  locked: boolean;
  held: HeldGrant[];
}

export interface ManagedFencePrior {
  accounts: Record<string, ManagedAccountPrior>;
}

const ER_NONEXISTING_GRANT = 1141;
const ER_NONEXISTING_TABLE_GRANT = 1147;
const ER_NO_SUCH_USER = 1133;
const ER_CANNOT_USER = 1396;

const isWrite = (list: readonly string[]) => (p: string) => list.includes(grantName(p) as never);

/** Every write privilege an account holds anywhere: `*.*`, any schema pattern, table and column grants. */
export async function heldWritesAnywhere(q: Query, g: Grantee): Promise<HeldGrant[]> {
  const grantee = informationSchemaGrantee(g);
  const held: HeldGrant[] = [];
  const global = await q<RowDataPacket & { p: string }>(`SELECT PRIVILEGE_TYPE AS p FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ? ORDER BY PRIVILEGE_TYPE`, [grantee], 'reading global privileges');
  const globalWrites = global.map((r) => grantName(r.p)).filter(isWrite(SCHEMA_WRITE_PRIVILEGES));
  if (globalWrites.length > 0) held.push({ level: 'global', privileges: globalWrites });
  const sp = await q<RowDataPacket & { s: string; p: string }>(
    `SELECT TABLE_SCHEMA AS s, PRIVILEGE_TYPE AS p FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? ORDER BY TABLE_SCHEMA, PRIVILEGE_TYPE`,
    [grantee],
    'reading schema privileges',
  );
  const bySchema = new Map<string, string[]>();
  for (const r of sp) if (isWrite(SCHEMA_WRITE_PRIVILEGES)(r.p)) bySchema.set(r.s, [...(bySchema.get(r.s) ?? []), grantName(r.p)]);
  for (const [pattern, privileges] of bySchema) held.push({ level: 'schema', pattern, privileges });
  const tp = await q<RowDataPacket & { s: string; t: string; p: string }>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, PRIVILEGE_TYPE AS p FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ? ORDER BY TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE`,
    [grantee],
    'reading table privileges',
  );
  const byTable = new Map<string, { schema: string; table: string; privileges: string[] }>();
  for (const r of tp) {
    if (!isWrite(TABLE_WRITE_PRIVILEGES)(r.p)) continue;
    const key = JSON.stringify([r.s, r.t]);
    const e = byTable.get(key) ?? { schema: r.s, table: r.t, privileges: [] };
    e.privileges.push(grantName(r.p));
    byTable.set(key, e);
  }
  for (const e of byTable.values()) held.push({ level: 'table', ...e });
  const cp = await q<RowDataPacket & { s: string; t: string; c: string; p: string }>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, COLUMN_NAME AS c, PRIVILEGE_TYPE AS p FROM information_schema.COLUMN_PRIVILEGES WHERE GRANTEE = ? ORDER BY TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE, COLUMN_NAME`,
    [grantee],
    'reading column privileges',
  );
  const byColumn = new Map<string, { schema: string; table: string; privilege: string; columns: string[] }>();
  for (const r of cp) {
    if (!isWrite(COLUMN_WRITE_PRIVILEGES)(r.p)) continue;
    const key = JSON.stringify([r.s, r.t, grantName(r.p)]);
    const e = byColumn.get(key) ?? { schema: r.s, table: r.t, privilege: grantName(r.p), columns: [] };
    e.columns.push(r.c);
    byColumn.set(key, e);
  }
  for (const e of byColumn.values()) held.push({ level: 'column', ...e });
  return held;
}

/** The privileges this admin may grant (WITH GRANT OPTION at the global level): what it can give back. */
export async function grantableByMe(q: Query, me: Account): Promise<Set<string>> {
  const rows = await q<RowDataPacket & { p: string }>(
    `SELECT PRIVILEGE_TYPE AS p FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ? AND IS_GRANTABLE = 'YES'`,
    [informationSchemaGrantee({ kind: 'account', ...me })],
    'reading the admin\u2019s grantable privileges',
  );
  return new Set(rows.map((r) => grantName(r.p)));
}

export const heldPrivileges = (g: HeldGrant): string[] => (g.level === 'column' ? [g.privilege] : g.privileges);

/**
 * The accounts to fence and what each holds. Refused before anything changes when there is no account to lock
 * (the managed fence is nothing else), or when the admin could not grant back what it would revoke: nothing
 * is fenced that the same account cannot unfence.
 */
export async function captureManagedFence(c: MysqlReadOnlyContext, opts: FenceOptions): Promise<ManagedFencePrior> {
  if (opts.mode !== 'strict' || opts.roles.length === 0) {
    // A privilege the account lacks (exit 3, like any refusal before a change), with the managed way as the fix.
    throw new PreflightError(
      'privilege',
      `the managed profile cannot set read_only (it needs ${c.flavor.kind === 'mariadb' ? 'READ_ONLY ADMIN' : 'SUPER or SYSTEM_VARIABLES_ADMIN'}, which this account does not hold): its fence locks the application accounts and revokes their write privileges, so it needs them named`,
      'set readOnly: { mode: strict, roles: [<app account>, ...] } in the plan (or --mode strict --role <user> for `readonly on`)',
    );
  }
  // The leak check reads the write position (BINLOG MONITOR / REPLICATION CLIENT): fail here, before any change.
  await writePosition(c);
  const me = await currentAccount(c.q);
  const canGrant = await grantableByMe(c.q, me);
  const accounts: Record<string, ManagedAccountPrior> = {};
  const missing = new Set<string>();
  for (const a of await resolveAccounts(c.q, opts.roles, c.where)) {
    const label = accountLabel(a);
    if (label === accountLabel(me)) throw new UsageError(`refusing to lock account ${label}: the tool itself connects as it`, 'connect as another administrative account or drop it from readOnly.roles (or --role)');
    const held = await heldWritesAnywhere(c.q, { kind: 'account', ...a });
    for (const g of held) for (const p of heldPrivileges(g)) if (!canGrant.has(p)) missing.add(p);
    accounts[label] = { user: a.user, host: a.host, locked: await isLocked(c.q, a), held };
  }
  if (missing.size > 0) {
    throw new PreflightError(
      'privilege',
      `the admin account ${accountLabel(me)} could revoke but not grant back ${[...missing].sort().join(', ')} (it lacks them WITH GRANT OPTION at the global level)`,
      `GRANT ${[...missing].sort().join(', ')} ON *.* TO <admin account> WITH GRANT OPTION (on a managed service: connect as its master/admin user)`,
    );
  }
  return { accounts };
}

/**
 * Lock first (a client that reconnects meets the lock), revoke, let open write transactions finish within the
 * drain timeout, then end every session of the accounts: a session keeps the privileges it had at login for
 * its current database (measured on MariaDB 10.11), and nothing else stops its COMMIT.
 */
export async function applyManagedFence(c: MysqlReadOnlyContext, target: FenceTarget, opts: FenceOptions, p: ManagedFencePrior) {
  const { q } = c;
  const warnings: string[] = [];
  const exempt = opts.exemptSessions ?? [];
  const lockedRoles: string[] = [];
  for (const [label, a] of Object.entries(p.accounts)) {
    if (!a.locked) await q(accountLockSql(a, true), [], `locking account ${label}`);
    lockedRoles.push(label);
  }
  for (const [label, a] of Object.entries(p.accounts)) {
    for (const g of a.held) {
      try {
        await q(revokeGrantSql({ kind: 'account', ...a }, g), [], `revoking ${describeHeld(g)} from ${label}`);
      } catch (e) {
        // A second `on` finds the recorded grants already revoked: that is the state it wants.
        const errno = mysqlErrno(e);
        if (errno !== ER_NONEXISTING_GRANT && errno !== ER_NONEXISTING_TABLE_GRANT) throw e;
      }
    }
  }
  const users = [...new Set(Object.values(p.accounts).map((a) => a.user))];
  const killer = await sessionKiller(q);
  const terminated: SessionInfo[] = [];
  if (opts.clientsHeld === true && opts.mode !== 'advisory') {
    // A router holds new connections and the accounts are locked: end their sessions between statements now
    // rather than wait for a stream of short transactions to pause (they keep their privileges meanwhile).
    const r = await endSessionsAtBoundaries(q, { exempt, timeoutMs: opts.drainTimeoutMs, users, killer });
    for (const e of r.ended)
      terminated.push(
        publicSession(
          e.session,
          e.idle
            ? 'ended between statements: its account is locked by the managed fence (the client reconnects into the router hold)'
            : 'still inside a statement when the drain timeout ran out: killed, that statement rolled back',
        ),
      );
  }
  await sleep(INNODB_TRX_CACHE_MS);
  const first = await clientSessions(q, { writingOnly: true, users, exempt });
  let writers = first;
  const deadline = Date.now() + (opts.mode === 'advisory' ? 0 : opts.drainTimeoutMs);
  while (writers.length > 0 && Date.now() < deadline) {
    await sleep(INNODB_TRX_CACHE_MS);
    writers = await clientSessions(q, { writingOnly: true, users, exempt });
  }
  const drained: SessionInfo[] = [];
  const still = new Set(writers.map((w) => w.threadId));
  for (const w of first) if (!still.has(w.threadId)) drained.push(publicSession(w, 'write transaction ended within the drain timeout'));
  const toEnd = new Map<string, { s: MysqlSession; reason: string }>();
  for (const s of await clientSessions(q, { users, exempt })) toEnd.set(s.threadId, { s, reason: 'account locked by the managed fence: connected before the lock, keeps its privileges until it ends' });
  for (const s of writers) toEnd.set(s.threadId, { s, reason: `write transaction (${s.rowsModified} row(s) changed) still open after the ${formatDuration(opts.drainTimeoutMs)} drain timeout` });
  const killed = await killSessions(q, [...toEnd.keys()], 5000, killer);
  const untouched: SessionInfo[] = [];
  for (const { s, reason } of toEnd.values()) {
    if (killed.has(s.threadId)) terminated.push(publicSession(s, reason));
    else {
      untouched.push(publicSession(s, `could not be ended (${killer.how}): it can still write`));
      warnings.push(`session ${s.threadId} (user ${s.user}) could not be ended with ${killer.how}`);
    }
  }
  warnings.push(
    `managed profile: read_only stays OFF; ${lockedRoles.length} application account(s) locked and their write privileges revoked until \`off\`. Accounts not named (the provider's own included) can still write: the leak check fails the fence if any does.`,
  );
  const { fencePosition, leakCheck } = await fencedPositionCheck(c, opts.probeMs, new Set(), exempt, warnings);
  return {
    ...(fencePosition !== undefined ? { fencePosition } : {}),
    scope: target.scope,
    ...(target.name ? { name: target.name } : {}),
    mode: opts.mode,
    // Account locks and grants live in the grant tables: a restart keeps them.
    persistent: true,
    drained,
    terminated,
    untouched,
    lockedRoles,
    warnings,
    leakCheck,
  } satisfies Omit<FenceOnResult, 'action' | 'engine' | 'server' | 'alreadyOn' | 'durationMs'>;
}

/** Grants back exactly what was revoked and unlocks what was unlocked; an account dropped meanwhile is a warning. */
export async function restoreManagedFence(c: MysqlReadOnlyContext, p: ManagedFencePrior, warnings: string[]): Promise<{ restored: string; unlockedRoles: string[] }> {
  const unlockedRoles: string[] = [];
  let regranted = 0;
  for (const [label, a] of Object.entries(p.accounts)) {
    try {
      for (const g of a.held) await c.q(restoreGrantSql({ kind: 'account', ...a }, g), [], `granting ${describeHeld(g)} back to ${label}`);
      regranted += a.held.length;
      if (!a.locked) {
        await c.q(accountLockSql(a, false), [], `unlocking account ${label}`);
        unlockedRoles.push(label);
      }
    } catch (e) {
      const errno = mysqlErrno(e);
      // 1133: no such user (GRANT), 1396: ALTER USER on a dropped account, 1146: table gone.
      if (errno !== ER_NO_SUCH_USER && errno !== ER_CANNOT_USER && errno !== 1146) throw e;
      warnings.push(`could not give ${label} its state back: ${(e as Error).message}`);
    }
  }
  return { restored: `granted back ${regranted} recorded write grant(s) and unlocked ${unlockedRoles.length} account(s) (managed profile)`, unlockedRoles };
}
