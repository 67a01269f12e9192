import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NeedsOperatorError } from '../../src/errors.js';
import type { JournalRecord } from '../../src/engine/journal.js';
import { planPhase } from '../../src/engine/phase.js';
import { rollbackPlan, runPlan } from '../../src/engine/run.js';
import { SOURCE, TARGET, crashedSession, fakeSession, journalLines, journalRecords } from '../helpers/fake-session.js';

describe('rollbackPlan before and after the point of no return (fake servers, real journal)', () => {
  let root: string;
  let full: JournalRecord[];
  const upTo = (step: string, status: string) => full.slice(0, full.findIndex((r) => r.step === step && r.status === status) + 1);
  const dir = (name: string) => mkdtemp(join(root, `${name}-`));
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cutover-orchestrator-'));
    const f = fakeSession(await dir('full'));
    await runPlan(f.session);
    full = await journalRecords(f.session);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('while a crashed run left the source fenced and clients held: unfences, routes back, releases, journals both; the plan is synced again and runs', async () => {
    const prefix = upTo('verify', 'ok');
    const f = await crashedSession(await dir('in-flight'), prefix);
    expect(planPhase(prefix)).toBe('in-flight');
    const r = await rollbackPlan(f.session);
    expect(r).toMatchObject({ restored: true, warnings: [], leftovers: [] });
    expect(f.fence.fenced).toBe(false);
    expect(f.router.at).toEqual(SOURCE);
    expect(f.router.held).toBe(false);
    // The subscription stays for a retry; the leak check's slot, which only keeps WAL, goes.
    expect(f.world.ops('adapter.dropLeakSlot')).toHaveLength(1);
    expect(f.world.ops('adapter.cleanup')).toEqual([]);
    expect(f.hold.held).toBe(true);
    expect((await journalLines(f.session)).slice(prefix.length)).toEqual(['unfence begin', 'unfence ok', 'route-back begin', 'route-back ok']);
    expect(planPhase(await journalRecords(f.session))).toBe('synced');
    expect((await runPlan(f.session)).outcome).toBe('done');
    expect(f.router.at).toEqual(TARGET);
  });

  it('with --cleanup: also drops the replication objects and opens the target', async () => {
    const f = await crashedSession(await dir('cleanup'), upTo('catch-up', 'begin'));
    await rollbackPlan(f.session, { cleanup: true });
    expect(f.world.ops('adapter.cleanup')).toHaveLength(1);
    expect(f.hold.held).toBe(false);
    expect(f.fence.fenced).toBe(false);
  });

  it('on a plan that is only synced: restores all the same (repeatable), nothing else changes', async () => {
    const f = await crashedSession(await dir('synced'), upTo('sync', 'ok'));
    await rollbackPlan(f.session);
    await rollbackPlan(f.session);
    expect((await journalLines(f.session)).slice(4)).toEqual(['unfence begin', 'unfence ok', 'route-back begin', 'route-back ok', 'unfence begin', 'unfence ok', 'route-back begin', 'route-back ok']);
    expect(f.world.ops('fence.off')).toHaveLength(2);
    expect(planPhase(await journalRecords(f.session))).toBe('synced');
  });

  it.each([
    { after: 'point-of-no-return', hint: /run `cutover resume` to finish going forward/ },
    { after: 'repoint', hint: /run `cutover resume` to finish going forward/ },
    { after: 'report', hint: /the cutover is complete; moving back is a new cutover in the other direction/ },
  ])('after $after ok: refused with exit 5 (the target took writes), nothing touched, nothing journaled', async ({ after, hint }) => {
    const prefix = upTo(after, 'ok');
    const f = await crashedSession(await dir(`past-${after}`), prefix);
    const routedAt = f.router.at;
    const err = await rollbackPlan(f.session).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeedsOperatorError);
    expect(err).toMatchObject({ exitCode: 5, message: expect.stringMatching(/passed its point of no return: the target has taken writes, rolling back would lose them/), hint: expect.stringMatching(hint) });
    expect(f.world.ops('fence.')).toEqual([]);
    expect(f.world.ops('router.')).toEqual([]);
    expect(f.router.at).toEqual(routedAt);
    expect(await journalLines(f.session)).toHaveLength(prefix.length);
  });

  it('while another session holds the plan lock on the source: refused with exit 5 naming it, nothing changed', async () => {
    const f = await crashedSession(await dir('locked'), upTo('fence', 'ok'));
    f.adapter.lockHeldByOther = true;
    const err = await rollbackPlan(f.session).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 5, code: 'locked', message: expect.stringMatching(/locked on the source by session 4242/), hint: expect.stringMatching(/cutover rollback --force/) });
    expect(f.fence.fenced).toBe(true);
    expect(f.router.held).toBe(true);
  });

  it('--force while another session holds the lock: unfences and releases anyway, journals nothing (the holder owns it), exit 5 naming the holder', async () => {
    const prefix = upTo('fence', 'ok');
    const f = await crashedSession(await dir('forced'), prefix);
    f.adapter.lockHeldByOther = true;
    const err = await rollbackPlan(f.session, { force: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 5, code: 'locked', message: expect.stringMatching(/the source is writable again and clients are released, but plan .* is locked on the source by session 4242/) });
    expect(f.fence.fenced).toBe(false);
    expect(f.router.held).toBe(false);
    expect(f.router.at).toEqual(SOURCE);
    expect(await journalLines(f.session)).toHaveLength(prefix.length);
  });

  it('a router that cannot point back: source unfenced, route-back journaled fail, exit 5 saying to point the router at the source; the plan stays in flight', async () => {
    const prefix = upTo('verify', 'ok');
    const f = await crashedSession(await dir('route-back'), prefix);
    f.world.fail('router.pointTo source.test', new Error('admin console refused'));
    const events: string[] = [];
    const err = await rollbackPlan(f.session, { onEvent: (e) => events.push(`${e.step} ${e.status}: ${e.message}`) }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      exitCode: 5,
      message: 'the run failed and restoring the source failed too: route-back: admin console refused',
      hint: expect.stringMatching(/^make fake router send clients to the source \(source\.test:5432\) again, by hand if need be, then run `cutover rollback`/),
    });
    expect(events).toEqual(['rollback fail: restoring the source failed: route-back: admin console refused']);
    expect((await journalLines(f.session)).slice(prefix.length)).toEqual(['unfence begin', 'unfence ok', 'route-back begin', 'route-back fail']);
    expect(f.fence.fenced).toBe(false);
    expect(f.router.held).toBe(false);
    expect(planPhase(await journalRecords(f.session))).toBe('in-flight');
    // Once the router answers again, a second rollback routes back and the plan counts as restored.
    f.world.heal('router.pointTo source.test');
    await rollbackPlan(f.session);
    expect(planPhase(await journalRecords(f.session))).toBe('synced');
  });
});
