import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReverseState } from '../../src/engine/cutover-adapter.js';
import { finalized } from '../../src/engine/phase.js';
import { finalizePlan, revertPlan } from '../../src/engine/revert.js';
import { runPlan, syncPlan } from '../../src/engine/run.js';
import { revertPlanId } from '../../src/engine/session.js';
import { fakeSession, journalLines, journalRecords, type FakeSession } from '../helpers/fake-session.js';

/** The fake adapter with the reverse path's methods, each logged as `adapter.<method>`. */
function withReverse(f: FakeSession): void {
  Object.assign(f.adapter, {
    reverseBegin: () => f.world.act('adapter.reverseBegin'),
    reverseStart: () => f.world.act('adapter.reverseStart'),
    reverseEnd: async () => {
      await f.world.act('adapter.reverseEnd');
      return ['subscription cutover_shop_revert on the old source'];
    },
    streamState: async (): Promise<ReverseState> => {
      await f.world.act('adapter.streamState');
      return { name: 'cutover_shop_revert', state: 'following', lagBytes: 0 };
    },
  });
}

describe('finalize and revert exclude each other: the revert lock on the new primary, the journal read under it (fakes)', () => {
  let stateDir: string;
  let forward: FakeSession;
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'cutover-finalize-revert-'));
    forward = fakeSession(stateDir);
    withReverse(forward);
    await syncPlan(forward.session);
    await runPlan(forward.session);
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  /** A session swapped like `openRevertSession` makes it: plan id `<id>-revert`, direction revert. */
  function revertSession(): FakeSession {
    const r = fakeSession(stateDir);
    withReverse(r);
    r.session.planId = revertPlanId(forward.session.planId);
    r.session.direction = 'revert';
    return r;
  }

  it('finalize while a revert is inside its window: refused (exit 5, one line naming both commands), nothing dropped; the revert completes', async () => {
    const r = revertSession();
    const fin = revertSession();
    let refused: unknown;
    r.world.when('adapter.catchUp', async () => {
      refused = await finalizePlan(forward.session, fin.session).catch((e: unknown) => e);
    });
    const res = await revertPlan(r.session, forward.session.planId, {});
    expect(res.outcome).toBe('done');
    expect(refused).toMatchObject({
      exitCode: 5,
      code: 'locked',
      message: expect.stringMatching(/^finalize of plan .* refused: a `cutover revert` or `cutover finalize` of this plan holds the revert's lock .*nothing was changed$/),
    });
    expect(forward.world.ops('adapter.reverseEnd')).toEqual([]);
    expect(finalized(await journalRecords(r.session))).toBeUndefined();
  });

  it("finalize takes the revert's own lock on the new primary: held by another machine's revert, refused before anything is dropped", async () => {
    const fin = revertSession();
    fin.adapter.lockHeldByOther = true;
    const err = await finalizePlan(forward.session, fin.session).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 5, code: 'locked', message: expect.stringMatching(/cutover pid 1@elsewhere/) });
    expect(fin.world.ops('adapter.lockSource')).toEqual(['adapter.lockSource']);
    expect(forward.world.ops('adapter.reverseEnd')).toEqual([]);
  });

  it('a revert after finalize: refused under its lock (exit 3, names finalize and its time), nothing held or fenced', async () => {
    const fin = revertSession();
    const done = await finalizePlan(forward.session, fin.session);
    expect(done.dropped).toEqual(['subscription cutover_shop_revert on the old source']);
    expect((await journalLines(fin.session)).slice(-2)).toEqual(['finalize begin', 'finalize ok']);
    const r = revertSession();
    const err = await revertPlan(r.session, forward.session.planId, {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 3, message: expect.stringMatching(/refused: `cutover finalize` ended its reverse path at \S+, so the old source no longer follows/) });
    expect(r.world.ops('adapter.streamState')).toEqual([]);
    expect(r.world.ops('router.')).toEqual([]);
    expect(r.world.ops('fence.')).toEqual([]);
  });

  it('a finalize that failed midway: the revert is refused (the reverse path may be partly dropped) and says to finalize again', async () => {
    const fin = revertSession();
    forward.world.fail('adapter.reverseEnd', new Error('could not drop the replication slot'), 1);
    await expect(finalizePlan(forward.session, fin.session)).rejects.toThrow(/could not drop/);
    const r = revertSession();
    const err = await revertPlan(r.session, forward.session.planId, {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 3, message: expect.stringMatching(/a `cutover finalize` began at \S+ and did not finish/) });
    expect((err as { hint: string }).hint).toMatch(/run `cutover finalize` again/);
    expect((await finalizePlan(forward.session, revertSession().session)).dropped).toHaveLength(1);
  });

  it('finalize after a finished revert: refused (exit 5), the reverse path was the way back and is gone', async () => {
    await revertPlan(revertSession().session, forward.session.planId, {});
    const err = await finalizePlan(forward.session, revertSession().session).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 5, message: expect.stringMatching(/was reverted: the old source is the primary again/) });
    expect(forward.world.ops('adapter.reverseEnd')).toEqual([]);
  });
});
