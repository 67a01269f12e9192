import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReverseState } from '../../src/engine/cutover-adapter.js';
import { planPhase } from '../../src/engine/phase.js';
import { revertPlan } from '../../src/engine/revert.js';
import { runPlan, syncPlan } from '../../src/engine/run.js';
import { revertPlanId } from '../../src/engine/session.js';
import { fakeSession, journalLines, journalRecords, type FakeSession } from '../helpers/fake-session.js';

/** The fake adapter with the reverse path's methods, each logged as `adapter.<method>`. */
function withReverse(f: FakeSession, state: ReverseState['state'] = 'following'): void {
  Object.assign(f.adapter, {
    reversePrepare: () => f.world.act('adapter.reversePrepare'),
    reverseBegin: () => f.world.act('adapter.reverseBegin'),
    reverseStart: () => f.world.act('adapter.reverseStart'),
    reverseUnprepare: async () => {
      await f.world.act('adapter.reverseUnprepare');
      return ['publication cutover_shop_revert (target)'];
    },
    streamState: async (): Promise<ReverseState> => {
      await f.world.act('adapter.streamState');
      return { name: 'cutover_shop_revert', state, lagBytes: 0, ...(state === 'following' ? {} : { why: 'the subscription cutover_shop_revert on the old source is gone' }) };
    },
  });
}

describe('the reverse path never fails a cutover past its point of no return (fakes)', () => {
  let stateDir: string;
  let f: FakeSession;
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'cutover-reverse-'));
    f = fakeSession(stateDir);
    withReverse(f);
    await syncPlan(f.session);
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('plan reverse is on by default for one PostgreSQL database', () => {
    expect(f.session.plan.reverse).toBe(true);
  });

  it('begun between the detach and the open of the target, started after cleanup, journaled before the report', async () => {
    const r = await runPlan(f.session);
    expect(r.reverse).toEqual({ state: 'following' });
    const log = f.world.log;
    expect(log.indexOf('adapter.detachTarget')).toBeLessThan(log.indexOf('adapter.reverseBegin'));
    expect(log.indexOf('adapter.reverseBegin')).toBeLessThan(log.lastIndexOf('hold.off'));
    expect(log.indexOf('adapter.cleanup')).toBeLessThan(log.indexOf('adapter.reverseStart'));
    expect((await journalLines(f.session)).slice(-5)).toEqual(['cleanup ok', 'reverse begin', 'reverse ok', 'report begin', 'report ok']);
  });

  it('prepared before the hold (what it waits for stays out of the window); a failed prepare only leaves the slot to reverseBegin', async () => {
    const r = await runPlan(f.session);
    expect(r.reverse).toEqual({ state: 'following' });
    const log = f.world.log;
    expect(log.indexOf('adapter.reversePrepare')).toBeGreaterThanOrEqual(0);
    expect(log.indexOf('adapter.reversePrepare')).toBeLessThan(log.indexOf('router.hold'));

    const g = fakeSession(await mkdtemp(join(tmpdir(), 'cutover-reverse-prep-')));
    withReverse(g);
    await syncPlan(g.session);
    g.world.fail('adapter.reversePrepare', new Error('statement timeout'));
    const failed = await runPlan(g.session);
    expect(failed.outcome).toBe('done');
    expect(failed.reverse).toEqual({ state: 'following' });
    expect(g.world.ops('adapter.reverseBegin')).toHaveLength(1);
  });

  it('a run rolled back before its point of no return drops what was prepared for the reverse path; a completed one does not', async () => {
    f.world.fail('adapter.catchUp', new Error('the target did not catch up'));
    await expect(runPlan(f.session)).rejects.toThrow(/did not catch up/);
    const log = f.world.log;
    expect(log.indexOf('adapter.reversePrepare')).toBeGreaterThanOrEqual(0);
    expect(log.indexOf('adapter.reverseUnprepare')).toBeGreaterThan(log.indexOf('adapter.reversePrepare'));
    expect(f.world.ops('adapter.reverseBegin')).toEqual([]);

    const g = fakeSession(await mkdtemp(join(tmpdir(), 'cutover-reverse-done-')));
    withReverse(g);
    await syncPlan(g.session);
    await runPlan(g.session);
    expect(g.world.ops('adapter.reverseUnprepare')).toEqual([]);
  });

  it('reverseBegin fails: the cutover completes (done), the reverse path is reported unavailable and never started', async () => {
    f.world.fail('adapter.reverseBegin', new Error('wal_level is replica on the target'));
    const r = await runPlan(f.session);
    expect(r.outcome).toBe('done');
    expect(r.reverse).toEqual({ state: 'unavailable', why: 'wal_level is replica on the target' });
    expect(r.warnings.join(' ')).toMatch(/reverse path unavailable.*wal_level/);
    expect(f.world.ops('adapter.reverseStart')).toEqual([]);
    expect(f.hold.held).toBe(false);
    expect(planPhase(await journalRecords(f.session))).toBe('done');
  });

  it('reverseStart fails: the cutover completes (done), its journal step fails, the report follows', async () => {
    f.world.fail('adapter.reverseStart', new Error('could not connect to the publisher'));
    const r = await runPlan(f.session);
    expect(r.outcome).toBe('done');
    expect(r.reverse).toEqual({ state: 'unavailable', why: 'could not connect to the publisher' });
    const lines = await journalLines(f.session);
    expect(lines.slice(-4)).toEqual(['reverse begin', 'reverse fail', 'report begin', 'report ok']);
    expect(planPhase(await journalRecords(f.session))).toBe('done');
  });

  it('reverse: false: neither is called', async () => {
    const g = fakeSession(await mkdtemp(join(tmpdir(), 'cutover-reverse-off-')), { plan: 'reverse: false' });
    withReverse(g);
    await syncPlan(g.session);
    const r = await runPlan(g.session);
    expect(r.reverse).toBeUndefined();
    expect(g.world.ops('adapter.reverse')).toEqual([]);
  });
});

describe('revert runs the same orchestrator over the swapped session, or refuses (fakes)', () => {
  let stateDir: string;
  let forward: FakeSession;
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'cutover-revert-'));
    forward = fakeSession(stateDir);
    withReverse(forward);
    await syncPlan(forward.session);
    await runPlan(forward.session);
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  /** A second fake session playing the swapped one: its own plan id, direction revert. */
  function revertSession(state: ReverseState['state']): FakeSession {
    const r = fakeSession(stateDir);
    withReverse(r, state);
    r.session.planId = revertPlanId(forward.session.planId);
    r.session.direction = 'revert';
    return r;
  }

  it('a broken reverse path: exit 3 naming the cause and what to do, nothing held or fenced', async () => {
    const r = revertSession('broken');
    const err = await revertPlan(r.session, forward.session.planId, {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 3, message: expect.stringMatching(/refused: the old source no longer follows the new primary \(the subscription .* is gone\)/) });
    expect((err as { hint: string }).hint).toMatch(/ENABLE|new cutover/);
    expect(r.world.ops('router.')).toEqual([]);
    expect(r.world.ops('fence.')).toEqual([]);
  });

  it('an intact one: the full guarded sequence without a sync, in its own journal', async () => {
    const r = revertSession('following');
    const res = await revertPlan(r.session, forward.session.planId, {});
    expect(res.outcome).toBe('done');
    expect(r.world.ops('adapter.sync')).toEqual([]);
    expect(r.world.ops('adapter.reverse')).toEqual([]);
    const steps = (await journalLines(r.session)).filter((l) => l.endsWith(' ok')).map((l) => l.replace(/ ok$/, ''));
    expect(steps).toEqual(['preflight', 'hold', 'fence', 'catch-up', 'sequences', 'verify', 'point-of-no-return', 'repoint', 'lift', 'cleanup', 'report']);
    const again = await revertPlan(r.session, forward.session.planId, {}).catch((e: unknown) => e);
    expect(again).toMatchObject({ exitCode: 5, message: expect.stringMatching(/already reverted/) });
  });

  it('before the forward cutover is done: refused (exit 3), pointing at rollback', async () => {
    const fresh = fakeSession(await mkdtemp(join(tmpdir(), 'cutover-revert-fresh-')));
    const r = fakeSession(fresh.session.plan.stateDir);
    withReverse(r);
    r.session.planId = revertPlanId(fresh.session.planId);
    r.session.direction = 'revert';
    const err = await revertPlan(r.session, fresh.session.planId, {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 3, message: expect.stringMatching(/has not been cut over/) });
  });
});
