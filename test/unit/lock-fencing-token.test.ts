import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NeedsOperatorError } from '../../src/errors.js';
import { PlanLock, lockPath, readLock } from '../../src/engine/lock.js';

const PLAN = 'shop-0123456789ab';
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cutover-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A pid that surely belongs to no process any more. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

async function writeStaleLock(token: number, pid = deadPid(), host = hostname()): Promise<void> {
  await writeFile(lockPath(dir, PLAN), JSON.stringify({ planId: PLAN, token, pid, hostname: host, startedAt: '2020-01-01T00:00:00.000Z' }));
  await writeFile(join(dir, `${PLAN}.token`), `${token}\n`);
}

describe('plan lock', () => {
  it('records token, pid and host, with tokens growing across acquisitions', async () => {
    const first = await PlanLock.acquire(dir, PLAN);
    expect(first.token).toBe(1);
    expect(await readLock(dir, PLAN)).toMatchObject({ planId: PLAN, token: 1, pid: process.pid, hostname: hostname() });
    await first.release();
    expect(await readLock(dir, PLAN)).toBeUndefined();
    const second = await PlanLock.acquire(dir, PLAN);
    expect(second.token).toBe(2);
    await second.release();
  });

  it('refuses a second holder while the first is alive, naming pid and host', async () => {
    const held = await PlanLock.acquire(dir, PLAN);
    const e = await PlanLock.acquire(dir, PLAN).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(NeedsOperatorError);
    expect((e as NeedsOperatorError).code).toBe('locked');
    expect((e as NeedsOperatorError).message).toContain(`pid ${process.pid} on ${hostname()}`);
    expect((e as NeedsOperatorError).hint).toBeTruthy();
    await held.release();
  });

  it('lets exactly one of many concurrent acquirers win', async () => {
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => PlanLock.acquire(dir, PLAN)));
    const winners = results.filter((r) => r.status === 'fulfilled');
    expect(winners).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(NeedsOperatorError);
    expect((await readLock(dir, PLAN))?.token).toBe(1);
  });

  it('takes over a lock whose holder died, with a higher token', async () => {
    await writeStaleLock(41);
    const lock = await PlanLock.acquire(dir, PLAN);
    expect(lock.token).toBe(42);
    expect((await readLock(dir, PLAN))?.pid).toBe(process.pid);
  });

  it('lets exactly one of many concurrent takers replace a dead holder, leaving no guard files', async () => {
    await writeStaleLock(7);
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => PlanLock.acquire(dir, PLAN)));
    const winners = results.filter((r): r is PromiseFulfilledResult<PlanLock> => r.status === 'fulfilled');
    expect(winners).toHaveLength(1);
    expect(winners[0]!.value.token).toBe(8);
    expect((await readdir(dir)).filter((f) => f.includes('takeover'))).toEqual([]);
  });

  it('does not guess about a holder on another host unless forced', async () => {
    await writeStaleLock(3, process.pid, 'some-other-host');
    await expect(PlanLock.acquire(dir, PLAN)).rejects.toThrow(/some-other-host.*another host/);
    const forced = await PlanLock.acquire(dir, PLAN, { force: true });
    expect(forced.token).toBe(4);
  });

  it('treats a recycled pid (same pid, different process start) as dead', async () => {
    await writeFile(lockPath(dir, PLAN), JSON.stringify({ planId: PLAN, token: 5, pid: process.pid, hostname: hostname(), startedAt: 'x', pidStart: '1' }));
    const lock = await PlanLock.acquire(dir, PLAN);
    expect(lock.token).toBeGreaterThan(0);
  });

  it('--force never takes over a holder alive on this host', async () => {
    const alive = await PlanLock.acquire(dir, PLAN);
    const refused = await PlanLock.acquire(dir, PLAN, { force: true }).catch((e: NeedsOperatorError) => e);
    expect(refused).toBeInstanceOf(NeedsOperatorError);
    expect((refused as NeedsOperatorError).message).toMatch(/still running/);
    expect((refused as NeedsOperatorError).hint).toMatch(/--force does not take over a live holder/);
    await alive.assertCurrent();
  });

  it('refuses a holder whose lock was taken over', async () => {
    const old = await PlanLock.acquire(dir, PLAN);
    // As if `old` ran on another host: the only live holder --force takes over.
    await writeFile(lockPath(dir, PLAN), JSON.stringify({ ...old.info, hostname: 'elsewhere.example' }));
    const usurper = await PlanLock.acquire(dir, PLAN, { force: true });
    expect(usurper.token).toBe(old.token + 1);
    await expect(old.assertCurrent()).rejects.toThrow(/token 1\) no longer holds the lock.*token 2/);
    await old.release();
    expect((await readLock(dir, PLAN))?.token).toBe(2);
    await usurper.assertCurrent();
  });

  it('keeps the token counter when the lock file is removed by hand', async () => {
    const a = await PlanLock.acquire(dir, PLAN);
    await rm(lockPath(dir, PLAN));
    const b = await PlanLock.acquire(dir, PLAN);
    expect(b.token).toBe(a.token + 1);
    expect((await readFile(join(dir, `${PLAN}.token`), 'utf8')).trim()).toBe(String(b.token));
  });
});
