import { createHash } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import type { SourceLockResult } from '../../src/engine/cutover-adapter.js';
import type { Query } from './mysql-sessions.js';

/** GET_LOCK names are limited to 64 characters: a long key is shortened to a hash of itself. */
export function planLockName(key: string): string {
  const name = `cutover:${key}`;
  return name.length <= 64 ? name : `cutover:${createHash('sha256').update(key).digest('hex').slice(0, 48)}`;
}

/**
 * GET_LOCK(name, 0) on the adapter's session: never waits, held until RELEASE_LOCK or the session ends. On
 * refusal the holder's connection id (IS_USED_LOCK) and its account and client address from the process list.
 */
export async function tryPlanLock(q: Query, key: string): Promise<SourceLockResult> {
  const name = planLockName(key);
  const got = await q<RowDataPacket & { ok: number | null }>('SELECT GET_LOCK(?, 0) AS ok', [name], 'taking the plan lock on the source');
  if (Number(got[0]?.ok) === 1) return { acquired: true };
  const used = await q<RowDataPacket & { id: number | null }>('SELECT IS_USED_LOCK(?) AS id', [name], 'looking up the plan lock holder');
  const id = used[0]?.id;
  if (id === null || id === undefined) return { acquired: false };
  const p = await q<RowDataPacket & { USER: string | null; HOST: string | null }>('SELECT USER, HOST FROM information_schema.PROCESSLIST WHERE ID = ?', [id], 'looking up the plan lock holder');
  return { acquired: false, holder: { session: String(id), ...(p[0]?.USER ? { user: p[0].USER } : {}), ...(p[0]?.HOST ? { client: p[0].HOST } : {}) } };
}

export async function releasePlanLock(q: Query, key: string): Promise<void> {
  await q('SELECT RELEASE_LOCK(?)', [planLockName(key)], 'releasing the plan lock on the source');
}

/** Whether this very connection still holds the plan lock (a reconnected session would not). */
export async function holdsPlanLock(q: Query, key: string): Promise<boolean> {
  const r = await q<RowDataPacket & { mine: number | null }>('SELECT IS_USED_LOCK(?) = CONNECTION_ID() AS mine', [planLockName(key)], 'checking the plan lock on the source');
  return Number(r[0]?.mine) === 1;
}
