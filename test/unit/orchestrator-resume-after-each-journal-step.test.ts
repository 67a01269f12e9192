import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NeedsOperatorError } from '../../src/errors.js';
import type { JournalRecord } from '../../src/engine/journal.js';
import { planPhase } from '../../src/engine/phase.js';
import { resumePlan, runPlan } from '../../src/engine/run.js';
import { FakeLeakWatcher, TARGET, crashedSession, fakeSession, journalLines, journalRecords } from '../helpers/fake-session.js';

const FORWARD_FROM_PREFLIGHT = ['preflight', 'hold', 'fence', 'catch-up', 'sequences', 'verify', 'point-of-no-return', 'repoint', 'lift', 'cleanup', 'report'].flatMap((s) => [`${s} begin`, `${s} ok`]);
const FINISH = ['repoint', 'lift', 'cleanup', 'report'].flatMap((s) => [`${s} begin`, `${s} ok`]);
const RESTORE = ['unfence begin', 'unfence ok', 'route-back begin', 'route-back ok'];

describe('resumePlan after the process died right after each journal record of a run (fake servers, real journal)', () => {
  let root: string;
  /** The journal a whole run writes: the crash points. */
  let full: JournalRecord[];
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cutover-orchestrator-'));
    const f = fakeSession(await mkdtemp(join(root, 'full-')));
    await runPlan(f.session);
    full = await journalRecords(f.session);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('the crash points cover every step of the run', () => {
    expect(full.map((r) => `${r.step} ${r.status}`)).toEqual(['preflight begin', 'preflight ok', 'sync begin', 'sync ok', ...FORWARD_FROM_PREFLIGHT.slice(2)]);
  });

  // 0..N-1 records kept: died right after record k (k = 0: before anything was journaled).
  const points = Array.from({ length: 24 }, (_, k) => k);
  it.each(points)('died after record %i: resume finishes the cutover the way its phase says, and leaves the router on the target', async (k) => {
    const prefix = full.slice(0, k);
    const phase = planPhase(prefix);
    const f = await crashedSession(await mkdtemp(join(root, `crash-${k}-`)), prefix);
    const r = await resumePlan(f.session);
    expect(r.outcome).toBe('done');
    const after = (await journalLines(f.session)).slice(k);
    if (phase === 'fresh') {
      // Nothing was fenced: sync and run from the start.
      expect(after).toEqual(['preflight begin', 'preflight ok', 'sync begin', 'sync ok', ...FORWARD_FROM_PREFLIGHT.slice(2)]);
    } else if (phase === 'synced') {
      expect(after).toEqual(FORWARD_FROM_PREFLIGHT);
    } else if (phase === 'in-flight') {
      // Restore first (unfence, route back), journaled, then the whole run again from its preflight.
      expect(after).toEqual([...RESTORE, ...FORWARD_FROM_PREFLIGHT]);
      expect(f.world.log.indexOf('fence.off')).toBeLessThan(f.world.log.indexOf('fence.on'));
      expect(f.world.log.indexOf('router.pointTo source.test')).toBeLessThan(f.world.log.indexOf('router.hold'));
    } else {
      expect(phase).toBe('past-pnr');
      // Past the point of no return only forward: no restore, no second hold or fence.
      expect(after).toEqual(FINISH);
      expect(f.world.ops('fence.')).toEqual([]);
      expect(f.world.ops('router.hold')).toEqual([]);
      expect(r.writeBlockedMs).toBe(0);
    }
    expect(f.router.at).toEqual(TARGET);
    expect(f.router.held).toBe(false);
    expect(f.hold.held).toBe(false);
    expect(f.fence.fenced).toBe(true);
    expect(planPhase(await journalRecords(f.session))).toBe('done');
  });

  it('which phase each crash point resumes from', () => {
    const phases = points.map((k) => planPhase(full.slice(0, k)));
    const firstIn = phases.indexOf('in-flight');
    const firstPast = phases.indexOf('past-pnr');
    expect(phases.slice(0, 4)).toEqual(['fresh', 'fresh', 'fresh', 'fresh']);
    expect(phases[4]).toBe('synced');
    expect(full[firstIn - 1]).toMatchObject({ step: 'hold', status: 'begin' });
    expect(full[firstPast - 1]).toMatchObject({ step: 'point-of-no-return', status: 'ok' });
    expect(phases.slice(firstPast)).toEqual(phases.slice(firstPast).map(() => 'past-pnr'));
  });

  it('past the point of no return with a leak watch the engine had: says the late leak check did not run (its slot died with the run)', async () => {
    const k = full.findIndex((r) => r.step === 'repoint' && r.status === 'ok') + 1;
    const f = await crashedSession(await mkdtemp(join(root, 'watch-')), full.slice(0, k));
    f.fence.watcher = new FakeLeakWatcher(f.world);
    const r = await resumePlan(f.session);
    expect(r.warnings).toEqual([expect.stringMatching(/^leak check after the point of no return not run: the decoding slot of the interrupted run ended with its session/)]);
    expect(f.world.ops('fence.watchLeaks')).toEqual([]);
  });

  it('after the report: refused with exit 5, nothing touched', async () => {
    const f = await crashedSession(await mkdtemp(join(root, 'done-')), full);
    const err = await resumePlan(f.session).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeedsOperatorError);
    expect(err).toMatchObject({ exitCode: 5, message: expect.stringMatching(/is already cut over/) });
    expect(f.world.ops('fence.')).toEqual([]);
    expect(f.world.ops('router.')).toEqual([]);
    expect(await journalLines(f.session)).toHaveLength(full.length);
  });

  it('past the point of no return against other servers than the journal pinned: refused with exit 5 before anything is repointed', async () => {
    const k = full.findIndex((r) => r.step === 'point-of-no-return' && r.status === 'ok') + 1;
    const f = await crashedSession(await mkdtemp(join(root, 'moved-')), full.slice(0, k));
    f.adapter.identities = async () => ({ source: 'other-source', target: 'target-id' });
    const err = await resumePlan(f.session).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 5, message: expect.stringMatching(/the servers changed since this plan's journal began \(source source-id → other-source/) });
    expect(f.world.ops('router.')).toEqual([]);
    expect(f.world.ops('adapter.detachTarget')).toEqual([]);
  });

  it('runPlan (not resume) after a crash while fenced or past the point of no return: refused with exit 5 naming resume', async () => {
    for (const [step, why] of [
      ['fence', /stopped while the source was fenced/],
      ['point-of-no-return', /is past its point of no return/],
    ] as const) {
      const k = full.findIndex((r) => r.step === step && r.status === 'ok') + 1;
      const f = await crashedSession(await mkdtemp(join(root, `run-${step}-`)), full.slice(0, k));
      const err = await runPlan(f.session).catch((e: unknown) => e);
      expect(err).toMatchObject({ exitCode: 5, message: expect.stringMatching(why), hint: expect.stringMatching(/cutover resume/) });
      expect(f.world.ops('fence.')).toEqual([]);
      expect(f.world.ops('router.')).toEqual([]);
    }
  });
});
