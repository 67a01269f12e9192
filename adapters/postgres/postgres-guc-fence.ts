import { PreflightError } from '../../src/errors.js';
import type { FenceOnResult, FenceOptions, FenceTarget, PriorState, SessionInfo } from '../../src/readonly/types.js';
import { sleep } from '../../src/util/sleep.js';
import { LEAK_SAMPLE_MS, type PgLeakWatch } from './postgres-leak-watch.js';
import type { PgPrior, PgReadOnlyContext, PgScope } from './postgres-readonly-context.js';
import { lockRoles, unlockRoles } from './postgres-role-locks.js';
import { publicSession, sessionsInScope, terminateSessions } from './postgres-sessions.js';
import { READ_ONLY_GUC, fenceSettingSql } from './postgres-sql.js';

/**
 * The fence of server, database and role scope: `default_transaction_read_only = on` at that level (ALTER
 * SYSTEM + reload, ALTER DATABASE, ALTER ROLE). New sessions start read-only; what predates the setting is
 * drained and ended by mode (advisory leaves it, enforced and strict end it).
 */

const TRUE_VALUES = new Set(['on', 'true', 'yes', '1', 't', 'y']);
export const isOn = (v: string | null | undefined): boolean => v != null && TRUE_VALUES.has(v.trim().toLowerCase().replace(/^'|'$/g, ''));
/** Inside the write-blocked window: a short poll, each one a cheap pg_stat_activity read. */
const DRAIN_POLL_MS = 5;

/** The explicit value set at exactly this level (postgresql.auto.conf, the database, or the role). */
export async function explicitSetting(c: PgReadOnlyContext, scope: PgScope, name?: string): Promise<string | null> {
  if (scope === 'server') {
    const rows = await c.q<{ setting: string }>(`SELECT setting FROM pg_file_settings WHERE name = $1 AND sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1`, [READ_ONLY_GUC]);
    return rows[0]?.setting ?? null;
  }
  const rows = await c.q<{ cfg: string }>(
    `SELECT cfg FROM pg_db_role_setting s, unnest(s.setconfig) AS cfg
      WHERE s.setdatabase = ${scope === 'database' ? '(SELECT oid FROM pg_database WHERE datname = $1)' : '0'}
        AND s.setrole = ${scope === 'role' ? '(SELECT oid FROM pg_roles WHERE rolname = $1)' : '0'}
        AND cfg LIKE $2`,
    [name, `${READ_ONLY_GUC}=%`],
  );
  const cfg = rows[0]?.cfg;
  return cfg === undefined ? null : cfg.slice(READ_ONLY_GUC.length + 1);
}

/** The server-wide value new sessions get from the configuration files. */
export async function serverEffective(c: PgReadOnlyContext): Promise<string> {
  const rows = await c.q<{ setting: string }>(`SELECT setting FROM pg_file_settings WHERE name = $1 AND applied ORDER BY seqno DESC LIMIT 1`, [READ_ONLY_GUC]);
  return rows[0]?.setting ?? 'off';
}

/**
 * `protect`: sessions the account may not end (managed profile: provider superuser sessions). They are neither
 * drained nor ended; they are reported as untouched, by name, and the leak check still watches them.
 */
export async function applyGucFence(c: PgReadOnlyContext, watch: PgLeakWatch, target: FenceTarget, scope: PgScope, opts: FenceOptions, prior: PriorState, protect: readonly string[] = []) {
  const warnings: string[] = [];
  const cutoff = await setReadOnlyDefault(c, scope, target.name);
  const lockedRoles = await lockRoles(c, prior);

  const drained: SessionInfo[] = [];
  const terminated: SessionInfo[] = [];
  let untouched: SessionInfo[] = [];
  if (opts.mode === 'advisory') {
    const before = await sessionsInScope(c.client, target, { startedBefore: cutoff, exempt: opts.exemptSessions });
    untouched = before
      .filter((s) => scope !== 'server' || s.transactionAgeMs !== undefined)
      .map((s) => publicSession(s, scope === 'server' ? 'transaction opened before the fence keeps its read-write mode' : 'connected before the fence'));
    if (scope !== 'server') {
      warnings.push(`advisory ${scope} scope reaches new sessions only: ${untouched.length} session(s) connected before the fence can still write until they reconnect (use --mode enforced)`);
    }
    warnings.push('advisory mode: any session can still write with BEGIN READ WRITE or SET default_transaction_read_only = off');
  } else {
    if (protect.length) {
      const kept = await sessionsInScope(c.client, target, { exempt: opts.exemptSessions });
      for (const s of kept.filter((k) => protect.includes(k.id))) {
        untouched.push(publicSession(s, 'superuser session the managed admin cannot end: it can override the read-only default'));
        warnings.push(`session ${s.pid} (user ${s.user}${s.application ? `, ${s.application}` : ''}) is a superuser session this account cannot end; it can still write (the leak check watches it)`);
      }
    }
    const spare = [...(opts.exemptSessions ?? []), ...protect];
    const firstWriters = await sessionsInScope(c.client, target, { startedBefore: cutoff, writingOnly: true, exempt: spare });
    const deadline = Date.now() + opts.drainTimeoutMs;
    let writers = firstWriters;
    while (writers.length > 0 && Date.now() < deadline) {
      await sleep(DRAIN_POLL_MS);
      writers = await sessionsInScope(c.client, target, { startedBefore: cutoff, writingOnly: true, exempt: spare });
    }
    const stillWriting = new Set(writers.map((w) => w.pid));
    for (const w of firstWriters) if (!stillWriting.has(w.pid)) drained.push(publicSession(w, 'write transaction finished within the drain timeout'));
    // Every session that predates the fence may hold a read-write transaction or a session-level override;
    // the policy may spare some, but never one still holding writes.
    const policy = opts.terminate ?? 'all';
    const predating = await sessionsInScope(c.client, target, { startedBefore: cutoff, exempt: spare });
    const toEnd = predating.filter((s) => policy === 'all' || s.hasWriteXid || (policy === 'idle-in-transaction' && s.transactionAgeMs !== undefined));
    const spared = predating.length - toEnd.length;
    if (spared > 0) {
      warnings.push(`terminate ${policy}: ${spared} session(s) connected before the fence were left running${scope === 'server' ? '' : ` and do not see the ${scope} setting`}; the leak check watches them`);
    }
    const ended = await terminateSessions(
      c.client,
      toEnd.map((s) => s.pid),
    );
    for (const s of toEnd) {
      if (!ended.has(s.pid)) {
        warnings.push(`session ${s.pid} (user ${s.user}) could not be terminated`);
        continue;
      }
      terminated.push(publicSession(s, s.hasWriteXid ? 'write transaction still open after the drain timeout' : 'connected before the fence'));
    }
    if (opts.mode === 'enforced') {
      warnings.push('enforced mode: a new session can still write with BEGIN READ WRITE; use --mode strict --role <app role> to stop that');
    }
  }
  const fencePosition = await walInsertPosition(c);
  const leakCheck = await watch.watch(target, opts.exemptSessions ?? [], opts.probeMs, Promise.resolve(), fencePosition);
  if (leakCheck.fallback) warnings.push(`leak check sampled sessions only (a write shorter than ${LEAK_SAMPLE_MS}ms can fall between samples): ${leakCheck.fallback}`);
  return {
    scope: target.scope,
    ...(target.name ? { name: target.name } : {}),
    mode: opts.mode,
    persistent: true,
    drained,
    terminated,
    untouched,
    lockedRoles,
    warnings,
    leakCheck,
    fencePosition,
  } satisfies Omit<FenceOnResult, 'action' | 'engine' | 'server' | 'alreadyOn' | 'durationMs'>;
}

/**
 * Sets the read-only default and returns the server time after which every new session gets it.
 * Sessions that started earlier may run without it.
 */
async function setReadOnlyDefault(c: PgReadOnlyContext, scope: PgScope, name: string | undefined): Promise<Date> {
  if (scope !== 'server') {
    await c.q(fenceSettingSql(scope, name, 'on'), [], `setting ${READ_ONLY_GUC} on ${scope} "${name}"`);
    const rows = await c.q<{ now: Date }>(`SELECT clock_timestamp() AS now`);
    return rows[0]!.now;
  }
  const before = await c.q<{ t: Date }>(`SELECT pg_conf_load_time() AS t`);
  await c.q(fenceSettingSql('server', undefined, 'on'), [], `ALTER SYSTEM SET ${READ_ONLY_GUC}`);
  await c.q(`SELECT pg_reload_conf()`);
  return waitForReload(c, before[0]!.t);
}

/**
 * The postmaster re-reads its configuration before it signals its children, so once our own backend has
 * reloaded, every backend forked afterwards starts with the new default.
 */
async function waitForReload(c: PgReadOnlyContext, previousLoad: Date): Promise<Date> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const rows = await c.q<{ t: Date; now: Date }>(`SELECT pg_conf_load_time() AS t, clock_timestamp() AS now`);
    if (rows[0]!.t.getTime() > previousLoad.getTime()) return rows[0]!.now;
    if (Date.now() > deadline) throw new PreflightError('preflight', `the server did not reload its configuration within 10s`, 'check the server log for configuration errors');
    await sleep(10);
  }
}

/**
 * Insert position, not pg_current_wal_lsn (the write position): an asynchronous commit that happened before
 * the fence may not be written yet, and must not count as a leak.
 */
async function walInsertPosition(c: PgReadOnlyContext): Promise<string> {
  return (await c.q<{ l: string }>(`SELECT pg_current_wal_insert_lsn()::text AS l`))[0]!.l;
}

/** Puts back the setting `prior` recorded; without a record, resets a fence that is on. */
export async function restoreGucFence(c: PgReadOnlyContext, target: FenceTarget, scope: PgScope, prior: PriorState | undefined) {
  const warnings: string[] = [];
  const current = await explicitSetting(c, scope, target.name);
  const p = prior as PgPrior | undefined;
  const unlockedRoles: string[] = [];
  let restored: string;
  let wasOn = true;
  if (p) {
    await c.q(fenceSettingSql(scope, target.name, p.setting), [], `restoring ${READ_ONLY_GUC}`);
    restored = p.setting === null ? 'reset: no explicit value was set before the fence' : `restored to '${p.setting}' as it was before the fence`;
    unlockedRoles.push(...(await unlockRoles(c, p)));
  } else if (isOn(current)) {
    await c.q(fenceSettingSql(scope, target.name, null), [], `resetting ${READ_ONLY_GUC}`);
    restored = 'reset: no record of the value before the fence was found in the state dir';
    warnings.push('no fence record found in the state dir: the setting was reset to the default; roles locked by strict mode (if any) were not unlocked');
  } else {
    wasOn = false;
    restored = current === null ? 'unchanged: no read-only setting at this level' : `unchanged: '${current}'`;
  }
  if (scope === 'server') {
    const before = await c.q<{ t: Date }>(`SELECT pg_conf_load_time() AS t`);
    await c.q(`SELECT pg_reload_conf()`);
    await waitForReload(c, before[0]!.t);
    if (isOn(await serverEffective(c))) warnings.push(`${READ_ONLY_GUC} is still on from postgresql.conf (not set by cutover): the server stays read-only`);
  }
  return { scope: target.scope, ...(target.name ? { name: target.name } : {}), wasOn, restored, unlockedRoles, warnings };
}
