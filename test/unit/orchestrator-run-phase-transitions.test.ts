import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NeedsOperatorError } from '../../src/errors.js';
import { planPhase } from '../../src/engine/phase.js';
import { runPlan, syncPlan } from '../../src/engine/run.js';
import { FakeLeakWatcher, SOURCE, TARGET, fakeSession, journalLines, journalRecords } from '../helpers/fake-session.js';

const FORWARD = ['hold', 'fence', 'catch-up', 'sequences', 'verify', 'point-of-no-return', 'repoint', 'lift', 'cleanup', 'report'].flatMap((s) => [`${s} begin`, `${s} ok`]);

describe('runPlan goes through every phase in order (fake adapter, router and fence; real journal)', () => {
  let stateDir: string;
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'cutover-orchestrator-'));
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('a fresh plan: preflight, sync (target held), hold, fence, catch-up, sequences, verify, point of no return, repoint, lift, cleanup, report', async () => {
    const f = fakeSession(stateDir);
    const r = await runPlan(f.session);
    expect(r.outcome).toBe('done');
    expect(await journalLines(f.session)).toEqual(['preflight begin', 'preflight ok', 'sync begin', 'sync ok', ...FORWARD]);
    // What each phase does to the servers and the router, in order.
    expect(f.world.log.filter((op) => !/identities|preflight|lagBytes|lockSource|unlockSource|ownSourceSessions|leftovers|close/.test(op))).toEqual([
      'adapter.sync',
      'hold.on',
      'adapter.assertSourceLock',
      'router.hold',
      'fence.on',
      'adapter.catchUp',
      'adapter.copySequences',
      'adapter.verify',
      'adapter.assertSourceLock',
      'adapter.detachTarget',
      'hold.off',
      'router.pointTo target.test',
      'router.release',
      'router.release',
      'adapter.cleanup',
    ]);
    // The fence exempts the tool's own sessions and may end the held clients' sessions; it probes leaks itself.
    expect(f.fence.requests).toEqual([{ exemptSessions: ['101'], clientsHeld: true, leakCheck: 'own' }]);
    expect(f.router.at).toEqual(TARGET);
    expect(f.router.held).toBe(false);
    expect(f.hold.held).toBe(false);
    // The old source is left read-only: nothing may write to it after the switch.
    expect(f.fence.fenced).toBe(true);
    expect(r).toMatchObject({
      sync: { tables: 2 },
      catchUp: { method: 'sentinel' },
      sequences: 3,
      verify: { mode: 'rowcounts' },
      cleanedUp: ['subscription cutover_x'],
      fence: { terminated: 0, drained: 0, leakClean: true },
      lagBytesAtFence: 0,
    });
    expect(r.writeBlockedMs).toBeGreaterThanOrEqual(0);
    expect(r.steps.map((s) => s.step)).toEqual(['preflight', 'sync', 'hold', 'fence', 'catch-up', 'sequences', 'verify', 'point-of-no-return', 'repoint', 'lift', 'cleanup', 'report']);
  });

  it('the fence acts only once its begin record is on disk, and its ok record is on disk before the point of no return (both fsyncs overlap other work)', async () => {
    const f = fakeSession(stateDir);
    const seen: Record<string, string[]> = {};
    f.world.when('fence.on', async () => void (seen.fence = await journalLines(f.session)));
    f.world.when('adapter.detachTarget', async () => void (seen.detach = await journalLines(f.session)));
    await runPlan(f.session);
    expect(seen.fence!.at(-1)).toBe('fence begin');
    expect(seen.detach).toEqual(expect.arrayContaining(['fence ok', 'point-of-no-return ok']));
  });

  it("a wave's quiet hook runs before the work outside the window (preflight, drift check, leak watch, late leak check, cleanup) and never inside it", async () => {
    const f = fakeSession(stateDir);
    await syncPlan(f.session);
    const events: string[] = [];
    const seen: string[] = [];
    const begunWhileWaiting: string[] = [];
    let waiting = false;
    await runPlan(f.session, {
      onEvent: (e) => {
        if (e.status !== 'begin' && e.status !== 'ok') return;
        events.push(`${e.step} ${e.status}`);
        if (waiting) begunWhileWaiting.push(`${e.step} ${e.status}`);
      },
      // A wait the run must sit out: nothing of the run goes on meanwhile.
      quiet: async () => {
        seen.push(events.at(-1) ?? '(start)');
        waiting = true;
        await new Promise((r) => setTimeout(r, 20));
        waiting = false;
      },
    });
    // Before preflight, before the drift check and before the leak watch (nothing between them here), after the lift
    // (the late leak check), before cleanup.
    expect(seen).toEqual(['(start)', 'preflight ok', 'preflight ok', 'lift ok', 'lift ok']);
    expect(begunWhileWaiting).toEqual([]);
  });

  it('a quiet hook that throws (it must not) does not fail the run, even past the point of no return', async () => {
    const f = fakeSession(stateDir);
    await syncPlan(f.session);
    const r = await runPlan(f.session, { quiet: () => Promise.reject(new Error('control database gone')) });
    expect(r.outcome).toBe('done');
    expect(await journalLines(f.session)).toContain('cleanup ok');
  });

  it('a router that can prepare its switch does it beside the detach (not awaited first), then switches and releases in one step', async () => {
    const f = fakeSession(stateDir);
    let detaching = false;
    let preparedDuringDetach = false;
    f.world.when('adapter.detachTarget', async () => {
      detaching = true;
      await new Promise((r) => setTimeout(r, 20));
      detaching = false;
    });
    Object.assign(f.router, {
      prepareSwitch: async (e: { host: string }) => {
        await f.world.act(`router.prepareSwitch ${e.host}`);
        await new Promise((r) => setTimeout(r, 5));
        preparedDuringDetach = detaching;
      },
      switchTo: async (e: typeof TARGET) => {
        await f.world.act(`router.switchTo ${e.host}`);
        f.router.at = e;
        f.router.held = false;
      },
    });
    expect((await runPlan(f.session)).outcome).toBe('done');
    const log = f.world.log.filter((op) => /^router\.(prepareSwitch|switchTo|pointTo|release)|^adapter\.detachTarget|^hold\.off/.test(op));
    expect(log).toEqual(['router.prepareSwitch target.test', 'adapter.detachTarget', 'hold.off', 'router.switchTo target.test']);
    expect(preparedDuringDetach).toBe(true);
    expect(f.router.at).toEqual(TARGET);
  });

  it('the plan phase moves fresh → synced → in-flight (hold begun) → past-pnr → done along the journal', async () => {
    const f = fakeSession(stateDir);
    await runPlan(f.session);
    const records = await journalRecords(f.session);
    const phaseAfter = (step: string, status: string) => planPhase(records.slice(0, records.findIndex((r) => r.step === step && r.status === status) + 1));
    expect(planPhase([])).toBe('fresh');
    expect(phaseAfter('sync', 'begin')).toBe('fresh');
    expect(phaseAfter('sync', 'ok')).toBe('synced');
    expect(phaseAfter('hold', 'begin')).toBe('in-flight');
    expect(phaseAfter('verify', 'ok')).toBe('in-flight');
    expect(phaseAfter('point-of-no-return', 'begin')).toBe('in-flight');
    expect(phaseAfter('point-of-no-return', 'ok')).toBe('past-pnr');
    expect(phaseAfter('cleanup', 'ok')).toBe('past-pnr');
    expect(phaseAfter('report', 'ok')).toBe('done');
  });

  it('sync then run: sync holds the target, the run does not copy again and starts at its preflight', async () => {
    const f = fakeSession(stateDir);
    await syncPlan(f.session);
    expect(f.hold.held).toBe(true);
    expect(f.fence.fenced).toBe(false);
    expect(f.router.held).toBe(false);
    const r = await runPlan(f.session);
    expect(r.sync).toBeUndefined();
    expect(f.world.ops('adapter.sync')).toHaveLength(1);
    expect(await journalLines(f.session)).toEqual(['preflight begin', 'preflight ok', 'sync begin', 'sync ok', 'preflight begin', 'preflight ok', ...FORWARD]);
  });

  it('without a router: no hold step, the fence does not count on held clients, and the repoint only opens the target', async () => {
    const f = fakeSession(stateDir, { router: false });
    await runPlan(f.session);
    expect(await journalLines(f.session)).toEqual(['preflight begin', 'preflight ok', 'sync begin', 'sync ok', ...FORWARD.slice(2)]);
    expect(f.fence.requests[0]!.clientsHeld).toBe(false);
    expect(f.world.ops('router.')).toEqual([]);
    expect(f.hold.held).toBe(false);
  });

  it('with a leak watch: opened before the hold, its sessions exempt from the fence, watching until the point of no return, checked late after the lift', async () => {
    const f = fakeSession(stateDir);
    f.fence.watcher = new FakeLeakWatcher(f.world);
    const r = await runPlan(f.session);
    expect(f.fence.requests).toEqual([{ exemptSessions: ['101', '202'], clientsHeld: true, leakCheck: 'watcher' }]);
    const at = (op: string) => f.world.log.indexOf(op);
    expect(at('fence.watchLeaks')).toBeLessThan(at('router.hold'));
    expect(at('fence.on')).toBeLessThan(at('watch.run'));
    expect(at('watch.late')).toBeGreaterThan(at('router.pointTo target.test'));
    expect(at('watch.close')).toBeGreaterThan(at('watch.late'));
    expect(r.leakCheck).toMatchObject({ method: 'decoded', late: { checked: true } });
  });

  it('a dry run reads the preflight and changes nothing: no journal record, no hold, no fence', async () => {
    const f = fakeSession(stateDir);
    const r = await runPlan(f.session, { dryRun: true });
    expect(r.outcome).toBe('dry-run');
    expect(await journalLines(f.session)).toEqual([]);
    expect(f.world.ops('fence.')).toEqual([]);
    expect(f.world.ops('router.hold')).toEqual([]);
    expect(f.router.at).toEqual(SOURCE);
  });

  it('another runner holding the plan lock on the source: refused with exit 5 before anything is journaled or touched', async () => {
    const f = fakeSession(stateDir);
    f.adapter.lockHeldByOther = true;
    const err = await runPlan(f.session).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeedsOperatorError);
    expect(err).toMatchObject({ exitCode: 5, code: 'locked', message: expect.stringMatching(/locked on the source: session 4242 \("cutover pid 1@elsewhere"\)/) });
    expect(await journalLines(f.session)).toEqual([]);
    expect(f.world.ops('fence.')).toEqual([]);
  });
});
