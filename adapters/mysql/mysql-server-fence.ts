import type { RowDataPacket } from 'mysql2/promise';
import type { FenceOnResult, FenceOptions, FenceTarget, SessionInfo } from '../../src/readonly/types.js';
import { sleep } from '../../src/util/sleep.js';
import { formatDuration } from '../../src/util/units.js';
import { lockAccounts, lockedBypassWarning } from './mysql-account-locks.js';
import { bypassAccounts, bypassWarning, reachable } from './mysql-accounts.js';
import { flavorLabel } from './mysql-flavor.js';
import { fencedPositionCheck } from './mysql-leak-watch.js';
import type { MysqlPrior, MysqlReadOnlyContext } from './mysql-readonly-context.js';
import { INNODB_TRX_CACHE_MS, clientSessions, endSessionsAtBoundaries, killSessions, publicSession, type EndedSession, type MysqlSession } from './mysql-sessions.js';
import { fenceServerSql, isOn, liftServerSql, restoreServerSql, sessionSetupSql, type ServerReadOnlyState } from './mysql-sql.js';
import { mysqlErrno } from './mysql-connection.js';

/**
 * The server fence: `read_only` (and `super_read_only` where it exists), persisted where the server can. The
 * accounts that write through it (MariaDB, or MySQL without super_read_only) are named, and their sessions
 * ended by enforced mode.
 */

const DRAIN_POLL_MS = INNODB_TRX_CACHE_MS;
const ER_LOCK_WAIT_TIMEOUT = 1205;
/** Pause between two attempts at the server fence when clients are held. */
const FENCE_RETRY_MS = 10;

export async function serverState(c: MysqlReadOnlyContext): Promise<ServerReadOnlyState> {
  const f = c.flavor;
  const rows = await c.q<RowDataPacket & { ro: unknown; sro: unknown }>(`SELECT @@GLOBAL.read_only AS ro${f.superReadOnly ? ', @@GLOBAL.super_read_only AS sro' : ''}`);
  const state: ServerReadOnlyState = { readOnly: isOn(rows[0]?.ro), superReadOnly: f.superReadOnly ? isOn(rows[0]?.sro) : null };
  if (f.persist) {
    const persisted = await c.q<RowDataPacket & { n: string; v: string }>(
      `SELECT VARIABLE_NAME AS n, VARIABLE_VALUE AS v FROM performance_schema.persisted_variables WHERE VARIABLE_NAME IN ('read_only', 'super_read_only')`,
      [],
      'reading persisted variables',
    );
    const get = (name: string): boolean | null => {
      const row = persisted.find((p) => p.n === name);
      return row ? isOn(row.v) : null;
    };
    state.persisted = { read_only: get('read_only'), super_read_only: get('super_read_only') };
  }
  return state;
}

export async function applyServerFence(c: MysqlReadOnlyContext, target: FenceTarget, opts: FenceOptions, p: MysqlPrior) {
  const { q, flavor } = c;
  const warnings: string[] = [];
  const exempt = opts.exemptSessions ?? [];
  // Sessions ended before the fence because a router holds new connections (see FenceOptions.clientsHeld).
  const quiesce = opts.clientsHeld === true && opts.mode !== 'advisory';
  let lockedRoles: string[];
  const ended: EndedSession[] = [];
  if (quiesce) {
    // Locked first, so a client of a locked account that reconnects around the router is refused.
    lockedRoles = await lockAccounts(c, p);
    ended.push(...(await quiescedFence(c, opts, exempt, warnings)));
  } else {
    for (const sql of fenceServerSql(flavor)) await q(sql, [], `fencing the server (${sql})`);
    lockedRoles = await lockAccounts(c, p);
  }

  // Server read_only lets the bypass accounts through (MariaDB, or MySQL without super_read_only).
  const bypass = !flavor.superReadOnly ? reachable(await bypassAccounts(q, flavor), await clientSessions(q)) : [];
  const bypassUsers = new Set(bypass.map((b) => b.user));
  if (bypass.length > 0) warnings.push(bypassWarning(bypass, flavor));
  warnings.push(...lockedBypassWarning(p));

  const drained: SessionInfo[] = [];
  const terminated: SessionInfo[] = ended.map((e) => publicSession(e.session, endedReason(e)));
  let untouched: SessionInfo[] = [];
  // After a quiesced fence no session that predates it is left, so there is no open transaction to look for.
  if (!quiesce) await sleep(INNODB_TRX_CACHE_MS);
  if (opts.mode === 'advisory') {
    const open = await clientSessions(q, { writingOnly: true, exempt });
    untouched = open.map((s) => publicSession(s, bypassUsers.has(s.user) ? 'privileged write transaction: can still commit' : 'write transaction opened before the fence: its COMMIT fails (error 1290)'));
    if (bypass.length > 0) warnings.push('advisory mode: sessions of the accounts above keep writing (use --mode enforced to end them, or strict to lock app accounts)');
  } else {
    const first = quiesce ? [] : await clientSessions(q, { writingOnly: true, exempt });
    let writers = first;
    const deadline = Date.now() + opts.drainTimeoutMs;
    while (writers.length > 0 && Date.now() < deadline) {
      await sleep(DRAIN_POLL_MS);
      writers = await clientSessions(q, { writingOnly: true, exempt });
    }
    const still = new Set(writers.map((w) => w.threadId));
    for (const w of first) if (!still.has(w.threadId)) drained.push(publicSession(w, 'write transaction ended within the drain timeout'));
    const lockedUsers = Object.values(p.roles).map((a) => a.user);
    const privileged = await clientSessions(q, { users: [...bypassUsers], exempt });
    const ofLocked = opts.mode === 'strict' ? await clientSessions(q, { users: lockedUsers, exempt }) : [];
    const toEnd = new Map<string, { s: MysqlSession; reason: string }>();
    for (const s of ofLocked) toEnd.set(s.threadId, { s, reason: 'account locked by strict mode: connected before the lock' });
    for (const s of privileged) toEnd.set(s.threadId, { s, reason: `account bypasses read_only (${flavor.bypassPrivileges.join('/')}): could still commit writes` });
    for (const s of writers) toEnd.set(s.threadId, { s, reason: `write transaction (${s.rowsModified} row(s) changed) still open after the ${formatDuration(opts.drainTimeoutMs)} drain timeout` });
    const killed = await killSessions(q, [...toEnd.keys()]);
    for (const { s, reason } of toEnd.values()) {
      if (killed.has(s.threadId)) terminated.push(publicSession(s, reason));
      else warnings.push(`session ${s.threadId} (user ${s.user}) could not be killed`);
    }
  }

  const persistent = flavor.persist;
  if (!persistent) {
    warnings.push(
      flavor.kind === 'mariadb'
        ? 'MariaDB has no SET PERSIST: a server restart drops this fence (read_only comes back from the config files); run `cutover readonly on` again after any restart'
        : `${flavorLabel(flavor)} has no SET PERSIST: a server restart drops this fence; run \`cutover readonly on\` again after any restart`,
    );
  }
  const { fencePosition, leakCheck } = await fencedPositionCheck(c, opts.probeMs, bypassUsers, exempt, warnings);
  return {
    ...(fencePosition !== undefined ? { fencePosition } : {}),
    scope: target.scope,
    ...(target.name ? { name: target.name } : {}),
    mode: opts.mode,
    persistent,
    drained,
    terminated,
    untouched,
    lockedRoles,
    warnings,
    leakCheck,
  } satisfies Omit<FenceOnResult, 'action' | 'engine' | 'server' | 'alreadyOn' | 'durationMs'>;
}

/**
 * The server fence while a router holds new connections: every client session is ended at a statement
 * boundary first (within the drain timeout), so `SET GLOBAL read_only` meets a quiet server instead of
 * queueing behind a stream of commits (under sysbench it timed out in 1 of 2 runs). It then tries without
 * waiting for locks and, until the lock timeout, ends whoever connected around the router and tries again.
 */
async function quiescedFence(c: MysqlReadOnlyContext, opts: FenceOptions, exempt: readonly string[], warnings: string[]): Promise<EndedSession[]> {
  const { q, flavor } = c;
  const first = await endSessionsAtBoundaries(q, { exempt, timeoutMs: opts.drainTimeoutMs });
  const ended = [...first.ended];
  for (const s of first.failed) warnings.push(`session ${s.threadId} (user ${s.user}) could not be killed`);
  const until = Date.now() + opts.lockTimeoutMs;
  // MariaDB takes 0 as "do not wait"; MySQL's minimum is 1 s.
  await q(`SET SESSION lock_wait_timeout = ${flavor.kind === 'mariadb' ? 0 : 1}`);
  try {
    for (;;) {
      try {
        for (const sql of fenceServerSql(flavor)) await q(sql, [], `fencing the server (${sql})`);
        return ended;
      } catch (e) {
        if (mysqlErrno(e) !== ER_LOCK_WAIT_TIMEOUT || Date.now() >= until) throw e;
        ended.push(...(await endSessionsAtBoundaries(q, { exempt, timeoutMs: 0 })).ended);
        await sleep(FENCE_RETRY_MS);
      }
    }
  } finally {
    await q(sessionSetupSql(flavor, opts.lockTimeoutMs));
  }
}

/** Why the quiesced fence ended a session, as the report says it. */
function endedReason(e: EndedSession): string {
  if (!e.idle) return 'still inside a statement when the drain timeout ran out: killed before the fence, that statement rolled back';
  if (e.session.rowsModified > 0) return `ended between statements before the fence; its open write transaction (${e.session.rowsModified} row(s)) rolled back, so its COMMIT fails`;
  return 'ended between statements before the fence (new connections are held by the router: the client reconnects into the hold)';
}

/** Puts back read_only as `p` recorded it; without a record, turns a fence that is on off. */
export async function restoreServerFence(c: MysqlReadOnlyContext, p: MysqlPrior | undefined, warnings: string[]): Promise<{ wasOn: boolean; restored: string }> {
  const current = await serverState(c);
  if (p?.server) {
    for (const sql of restoreServerSql(c.flavor, p.server)) await c.q(sql, [], `restoring the server (${sql})`);
    return {
      wasOn: true,
      restored: p.server.readOnly ? `read_only stays ON: it was ON before the fence${p.server.superReadOnly ? ' (super_read_only too)' : ''}` : 'restored read_only = OFF as it was before the fence',
    };
  }
  if (current.readOnly || current.superReadOnly) {
    for (const sql of liftServerSql(c.flavor)) await c.q(sql, [], `lifting the fence (${sql})`);
    warnings.push('no fence record found in the state dir: read_only was turned off; accounts locked by strict mode (if any) were not unlocked');
    return { wasOn: true, restored: 'read_only set OFF: no record of the value before the fence was found in the state dir' };
  }
  return { wasOn: false, restored: 'unchanged: read_only is OFF' };
}
