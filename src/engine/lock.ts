import { hostname } from 'node:os';
import { open, readFile, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { NeedsOperatorError } from '../errors.js';
import { signalProcess } from '../util/process.js';
import { sleep } from '../util/sleep.js';
import { ensureDirDurably, fsyncDir, writeFileAtomic } from '../util/atomic-file.js';

/** What a lock file holds. `token` only ever grows for a plan: a stale holder can be told apart by it. */
export interface LockInfo {
  planId: string;
  token: number;
  pid: number;
  hostname: string;
  startedAt: string;
  /** Kernel start time of `pid` (Linux), so a recycled pid is not mistaken for the holder. */
  pidStart?: string;
}

export interface AcquireOptions {
  /**
   * Take the lock from a holder on another host, which cannot be checked from here. The old holder's next
   * journal append is refused because its token is no longer current. A holder alive on this host is never
   * taken over: it may be fencing the source right now.
   */
  force?: boolean;
}

/** A lock file without content this old was left by a crash between create and write. */
const EMPTY_LOCK_STALE_MS = 10_000;
/** A takeover guard this old was left by a crash during a takeover. */
const GUARD_STALE_MS = 10_000;
const ACQUIRE_ATTEMPTS = 40;
const RETRY_MS = 25;

export function lockPath(stateDir: string, planId: string): string {
  return join(stateDir, `${planId}.lock`);
}

function counterPath(stateDir: string, planId: string): string {
  return join(stateDir, `${planId}.token`);
}

async function processStartTime(pid: number): Promise<string | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  // The command name (field 2) may contain spaces and parentheses; fields after it are space-separated.
  const fields = text?.slice(text.lastIndexOf(')') + 2).split(' ');
  return fields?.[19];
}

interface Holder {
  info?: LockInfo;
  /** Identifies this very lock file: its token, or for an unreadable file its inode. */
  key: string;
  ageMs: number;
}

async function inspect(path: string): Promise<Holder | undefined> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const info = parseInfo(text);
    return { ...(info ? { info } : {}), key: info ? `token-${info.token}` : `inode-${st.ino}`, ageMs: Date.now() - st.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function parseInfo(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.token === 'number' && typeof v.pid === 'number' && typeof v.hostname === 'string' && typeof v.startedAt === 'string') return v as LockInfo;
  } catch {
    // partial write: treated as an unreadable lock below
  }
  return undefined;
}

/** The holder recorded in the plan's lock file, if any. */
export async function readLock(stateDir: string, planId: string): Promise<LockInfo | undefined> {
  return (await inspect(lockPath(stateDir, planId)))?.info;
}

type Verdict = 'alive' | 'stale' | 'remote' | 'being-acquired';

async function judge(holder: Holder): Promise<Verdict> {
  const info = holder.info;
  if (!info) return holder.ageMs > EMPTY_LOCK_STALE_MS ? 'stale' : 'being-acquired';
  if (info.hostname !== hostname()) return 'remote';
  if (!signalProcess(info.pid, 0)) return 'stale';
  if (info.pidStart !== undefined) {
    const start = await processStartTime(info.pid);
    if (start !== undefined && start !== info.pidStart) return 'stale';
  }
  return 'alive';
}

function lockedError(path: string, holder: Holder, verdict: Verdict): NeedsOperatorError {
  const info = holder.info;
  if (!info) return new NeedsOperatorError('locked', `plan is locked: ${path} is being written by another cutover process`, 'wait a moment and run again');
  const who = `pid ${info.pid} on ${info.hostname} (token ${info.token}, since ${info.startedAt})`;
  if (verdict === 'remote') {
    return new NeedsOperatorError(
      'locked',
      `plan is locked by ${who}; cutover cannot check a process on another host`,
      "if that process is gone, run again with --force: the lock is taken over only while the plan's lock on the source is free, which a running holder keeps",
    );
  }
  return new NeedsOperatorError('locked', `plan is locked by ${who}, which is still running`, `wait for it to finish, or stop it and run \`cutover resume\` (--force does not take over a live holder)`);
}

async function createExclusive(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw e;
  }
}

/**
 * Removes a stale lock so that exactly one of several concurrent takers proceeds: the guard file is named
 * after the stale lock's token, so only one process can create it, and it re-reads the lock before the
 * unlink so it never removes a lock someone took meanwhile. Returns false when another taker is at it.
 */
async function removeStale(path: string, holder: Holder): Promise<boolean> {
  const guard = `${path}.takeover-${holder.key}`;
  const fh = await createExclusive(guard);
  if (!fh) {
    const st = await stat(guard).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > GUARD_STALE_MS) {
      throw new NeedsOperatorError('locked', `a takeover of the stale lock ${path} was interrupted`, `if no cutover process is running, delete ${path} and ${guard}`);
    }
    return false;
  }
  try {
    await fh.writeFile(JSON.stringify({ pid: process.pid, hostname: hostname(), at: new Date().toISOString() }));
    const now = await inspect(path);
    if (now?.key === holder.key) await unlink(path);
    return true;
  } finally {
    await fh.close();
    await unlink(guard).catch(() => {});
  }
}

/** One process's hold on a plan. Journal appends call assertCurrent() so a superseded holder stops. */
export class PlanLock {
  private released = false;

  private constructor(
    readonly stateDir: string,
    readonly planId: string,
    readonly info: LockInfo,
  ) {}

  get token(): number {
    return this.info.token;
  }

  get path(): string {
    return lockPath(this.stateDir, this.planId);
  }

  static async acquire(stateDir: string, planId: string, opts: AcquireOptions = {}): Promise<PlanLock> {
    await ensureDirDurably(stateDir);
    const path = lockPath(stateDir, planId);
    let last: { holder: Holder; verdict: Verdict } | undefined;
    for (let attempt = 0; attempt < ACQUIRE_ATTEMPTS; attempt++) {
      const fh = await createExclusive(path);
      if (fh) return PlanLock.fill(fh, stateDir, planId);
      const holder = await inspect(path);
      if (!holder) continue;
      const verdict = await judge(holder);
      last = { holder, verdict };
      const takeable = verdict === 'stale' || (opts.force === true && verdict === 'remote');
      if (verdict === 'being-acquired' || (takeable && !(await removeStale(path, holder)))) {
        await sleep(RETRY_MS);
        continue;
      }
      if (!takeable) throw lockedError(path, holder, verdict);
    }
    throw last ? lockedError(path, last.holder, last.verdict) : new NeedsOperatorError('locked', `could not create ${path}: it keeps reappearing`, 'another cutover process is starting; run again later');
  }

  /** Only the process that created the lock file gets here, so the token counter has a single writer. */
  private static async fill(fh: FileHandle, stateDir: string, planId: string): Promise<PlanLock> {
    try {
      const counter = counterPath(stateDir, planId);
      const previous = Number((await readFile(counter, 'utf8').catch(() => '0')).trim()) || 0;
      const token = previous + 1;
      await writeFileAtomic(counter, `${token}\n`);
      const pidStart = await processStartTime(process.pid);
      const info: LockInfo = { planId, token, pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString(), ...(pidStart ? { pidStart } : {}) };
      await fh.writeFile(JSON.stringify(info) + '\n');
      await fh.sync();
      await fsyncDir(stateDir);
      return new PlanLock(stateDir, planId, info);
    } catch (e) {
      await unlink(lockPath(stateDir, planId)).catch(() => {});
      throw e;
    } finally {
      await fh.close();
    }
  }

  /** Throws when the lock was released or taken over: this process must not change anything any more. */
  async assertCurrent(): Promise<void> {
    const now = await readLock(this.stateDir, this.planId);
    if (!this.released && now?.token === this.token && now.pid === this.info.pid) return;
    const by = now ? `pid ${now.pid} on ${now.hostname} (token ${now.token})` : 'nobody (the lock file is gone)';
    throw new NeedsOperatorError(
      'locked',
      `this process (token ${this.token}) no longer holds the lock of plan ${this.planId}: it is held by ${by}`,
      'another cutover process owns this plan now; check `cutover status` before doing anything',
    );
  }

  /** Removes the lock file if it is still ours. Safe to call twice. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const now = await readLock(this.stateDir, this.planId);
    if (now?.token !== this.token || now.pid !== this.info.pid) return;
    await unlink(this.path).catch(() => {});
    await fsyncDir(this.stateDir);
  }
}
