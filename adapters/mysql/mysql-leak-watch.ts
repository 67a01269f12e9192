import type { RowDataPacket } from 'mysql2/promise';
import type { LeakCheck, SessionInfo } from '../../src/readonly/types.js';
import { sleep } from '../../src/util/sleep.js';
import { bypassAccounts, reachable } from './mysql-accounts.js';
import { binlogCoordinates, canTrackWrites, decodePosition, encodePosition, describePosition, normalizeGtidSet, positionMoved, type WritePosition } from './mysql-position.js';
import type { MysqlReadOnlyContext } from './mysql-readonly-context.js';
import { INNODB_TRX_CACHE_MS, clientSessions, publicSession, type MysqlSession } from './mysql-sessions.js';

export const LEAK_SAMPLE_MS = INNODB_TRX_CACHE_MS;

/** The server's write position: the GTID set and the binary log file and offset, which every commit moves. */
export async function writePosition(c: MysqlReadOnlyContext): Promise<WritePosition> {
  const g = await c.q<RowDataPacket & { g: string | null }>(`SELECT @@GLOBAL.${c.flavor.gtidVariable} AS g`);
  const b = await binlogCoordinates(c.q, c.flavor);
  return { gtid: normalizeGtidSet(g[0]?.g), file: b?.file ?? null, pos: b?.pos ?? null };
}

/** The leak check of a server fence already in place, from `fencePosition` (FenceOnResult.fencePosition) when given. */
export async function watchServerLeaks(c: MysqlReadOnlyContext, minMs: number, exempt: readonly string[], warnings: string[], until: Promise<unknown>, fencePosition?: string): Promise<LeakCheck> {
  const bypass = c.flavor.superReadOnly ? [] : reachable(await bypassAccounts(c.q, c.flavor), await clientSessions(c.q));
  return positionLeakCheck(c, minMs, new Set(bypass.map((b) => b.user)), exempt, warnings, until, fencePosition ? decodePosition(fencePosition) : undefined);
}

/**
 * The write position must not move during the probe. Open write transactions are sampled meanwhile so a
 * move can be pinned on a session; a privileged session holding changed rows is a leak even before it
 * commits, since it can.
 */
export async function positionLeakCheck(
  c: MysqlReadOnlyContext,
  probeMs: number,
  bypassUsers: Set<string>,
  exempt: readonly string[],
  warnings: string[],
  until: Promise<unknown> = Promise.resolve(),
  from?: WritePosition,
): Promise<LeakCheck> {
  const settled = settledFlag(until);
  const started = Date.now();
  const start = from ?? (await writePosition(c));
  const seen = new Map<string, MysqlSession>();
  const activePrivileged = new Map<string, MysqlSession>();
  do {
    for (const s of await clientSessions(c.q, { writingOnly: true, exempt })) seen.set(s.threadId, s);
    if (bypassUsers.size > 0) {
      for (const s of await clientSessions(c.q, { users: [...bypassUsers], exempt })) {
        if (s.command !== 'Sleep' || !activePrivileged.has(s.threadId)) activePrivileged.set(s.threadId, s);
      }
    }
    // Past the minimum, the end of `until` ends the wait at once: the caller's window waits for this check.
    const left = probeMs - (Date.now() - started);
    await (left > 0 ? sleep(Math.min(LEAK_SAMPLE_MS, left)) : Promise.race([sleep(LEAK_SAMPLE_MS), until.catch(() => {})]));
  } while (Date.now() - started < probeMs || !settled.now);
  probeMs = Date.now() - started;
  const after = await writePosition(c);
  const moved = positionMoved(start, after);
  if (!canTrackWrites(start)) warnings.push('the binary log is off: the leak check could only watch open transactions, not committed writes');
  const writers: SessionInfo[] = [];
  for (const s of seen.values()) {
    if (bypassUsers.has(s.user)) writers.push(publicSession(s, `privileged session changed ${s.rowsModified} row(s) after the fence and can commit them`));
    else if (moved) writers.push(publicSession(s, `held changed rows while the write position moved`));
  }
  if (moved && writers.length === 0) {
    // Autocommit writes are too short to catch in INNODB_TRX: name every privileged session that was there.
    for (const s of activePrivileged.values()) {
      writers.push(publicSession(s, s.command === 'Sleep' ? 'privileged session connected while the write position moved' : 'privileged session running statements while the write position moved'));
    }
  }
  if (moved && writers.length === 0) {
    writers.push({ id: 'binlog', user: '', reason: `write position moved from ${describePosition(start)} to ${describePosition(after)}; no session was caught in the act (look at the binary log)` });
  }
  writers.push(...(await preparedXa(c)));
  return { probeMs, clean: !moved && writers.length === 0, writers, method: 'position' };
}

/** XA transactions prepared before the fence can still be committed by a privileged session. */
async function preparedXa(c: MysqlReadOnlyContext): Promise<SessionInfo[]> {
  const rows = await c.q<RowDataPacket & { formatID: number; gtrid_length: number; bqual_length: number; data: Buffer | string }>(`XA RECOVER`, [], 'listing prepared XA transactions');
  return rows.map((r) => {
    const data = Buffer.isBuffer(r.data) ? r.data.toString('utf8') : String(r.data);
    const gtrid = data.slice(0, Number(r.gtrid_length));
    return { id: `xa:${gtrid}`, user: '', reason: `prepared XA transaction "${gtrid}" can still be committed (XA COMMIT or XA ROLLBACK it)` };
  });
}

/** Whether `p` has settled yet, readable synchronously by a polling loop. */
export function settledFlag(p: Promise<unknown>): { now: boolean } {
  const flag = { now: false };
  void p.then(
    () => (flag.now = true),
    () => (flag.now = true),
  );
  return flag;
}

/**
 * The end of a fence that watches the write position: the position every later write would move (a caller watching
 * with its own LeakWatcher, probeMs 0, starts there) and, unless probeMs is 0, the leak check from it.
 */
export async function fencedPositionCheck(c: MysqlReadOnlyContext, probeMs: number, bypassUsers: Set<string>, exempt: readonly string[], warnings: string[]): Promise<{ fencePosition?: string; leakCheck: LeakCheck }> {
  const fencedAt = await writePosition(c);
  const leakCheck = probeMs === 0 ? { probeMs: 0, clean: true, writers: [], method: 'position' as const } : await positionLeakCheck(c, probeMs, bypassUsers, exempt, warnings, Promise.resolve(), fencedAt);
  return { ...(canTrackWrites(fencedAt) ? { fencePosition: encodePosition(fencedAt) } : {}), leakCheck };
}
