import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal, replayJournal } from '../../src/engine/journal.js';
import { PlanLock } from '../../src/engine/lock.js';
import { planPhase } from '../../src/engine/phase.js';

const PLAN = 'shop-0123456789ab';
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cutover-journal-queued-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const onDisk = async () => (await replayJournal(dir, PLAN)).records.map((r) => `${r.seq} ${r.step} ${r.status}`);

describe('journal records queued off the critical path', () => {
  it('a queued record reaches the disk with the next durable one, in order, in one write', async () => {
    const lock = await PlanLock.acquire(dir, PLAN);
    const j = await Journal.open(lock);
    await j.begin('hold');
    await j.ok('hold', undefined, { durable: false });
    await j.begin('catch-up', undefined, { durable: false });
    expect(await onDisk()).toEqual(['1 hold begin']);
    // In memory the journal already holds them: the run's own view of its phase is complete.
    expect(j.state.records.map((r) => r.seq)).toEqual([1, 2, 3]);
    await j.ok('point-of-no-return');
    expect(await onDisk()).toEqual(['1 hold begin', '2 hold ok', '3 catch-up begin', '4 point-of-no-return ok']);
    await j.close();
  });

  it('close and flush write what is queued', async () => {
    const lock = await PlanLock.acquire(dir, PLAN);
    const j = await Journal.open(lock);
    await j.ok('lift', undefined, { durable: false });
    await j.flush();
    expect(await onDisk()).toEqual(['1 lift ok']);
    await j.ok('cleanup', undefined, { durable: false });
    await j.close();
    expect(await onDisk()).toEqual(['1 lift ok', '2 cleanup ok']);
  });

  it('writes that overlap (a durable flush in flight while the next records are appended) keep order and sequence', async () => {
    const lock = await PlanLock.acquire(dir, PLAN);
    const j = await Journal.open(lock);
    await j.begin('fence', undefined, { durable: false });
    const begun = j.flush();
    await j.ok('fence', undefined, { durable: false });
    const written = j.flush();
    await j.begin('catch-up', undefined, { durable: false });
    const pnr = j.ok('point-of-no-return');
    await Promise.all([begun, written, pnr]);
    expect(await onDisk()).toEqual(['1 fence begin', '2 fence ok', '3 catch-up begin', '4 point-of-no-return ok']);
    await j.close();
  });

  it('a crash that loses queued records leaves a phase that restores, never one past the point of no return', async () => {
    const lock = await PlanLock.acquire(dir, PLAN);
    const j = await Journal.open(lock);
    await j.begin('sync');
    await j.ok('sync');
    await j.begin('hold');
    await j.ok('hold', undefined, { durable: false });
    await j.begin('point-of-no-return', undefined, { durable: false });
    // The process dies here: nothing after the hold's begin is on disk.
    expect(planPhase((await replayJournal(dir, PLAN)).records)).toBe('in-flight');
    await lock.release();
  });
});
