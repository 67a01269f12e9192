import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BudgetExceededError, NeedsOperatorError, OperationError, PreflightError } from '../../src/errors.js';
import { planPhase } from '../../src/engine/phase.js';
import { runPlan, syncPlan, type CutoverEvent } from '../../src/engine/run.js';
import { FenceLeakError } from '../../src/errors.js';
import type { FenceOnResult } from '../../src/readonly/types.js';
import { FakeLeakWatcher, SOURCE, TARGET, fakeSession, journalLines, journalRecords, type FakeSession } from '../helpers/fake-session.js';

const RESTORED = ['unfence begin', 'unfence ok', 'route-back begin', 'route-back ok'];

/** The safe state of DESIGN.md principle 3: the source writable, clients let through to it, the target still held. */
function expectSourceRestored(f: FakeSession): void {
  expect(f.fence.fenced).toBe(false);
  expect(f.router.at).toEqual(SOURCE);
  expect(f.router.held).toBe(false);
  expect(f.hold.held).toBe(true);
  expect(f.world.ops('adapter.detachTarget')).toEqual([]);
}

describe('a failure before the point of no return restores the source, then rethrows (fake adapter, router and fence)', () => {
  let stateDir: string;
  let f: FakeSession;
  let events: CutoverEvent[];
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'cutover-orchestrator-'));
    f = fakeSession(stateDir);
    events = [];
    await syncPlan(f.session);
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  const run = (opts: Parameters<typeof runPlan>[1] = {}) => runPlan(f.session, { ...opts, onEvent: (e) => events.push(e) }).catch((e: unknown) => e);
  /** The journal of the run after sync: its preflight, then the steps it took. */
  const runJournal = async () => (await journalLines(f.session)).slice(4);

  it.each([
    { step: 'hold', op: 'router.hold', error: new OperationError('PAUSE did not finish within 5s'), fenced: false },
    { step: 'fence', op: 'fence.on', error: new OperationError('lock timeout on ALTER DATABASE'), fenced: true },
    { step: 'catch-up', op: 'adapter.catchUp', error: new OperationError('the sentinel did not reach the target'), fenced: true },
    { step: 'sequences', op: 'adapter.copySequences', error: new OperationError('connection reset'), fenced: true },
    { step: 'verify', op: 'adapter.verify', error: new OperationError('verify query failed'), fenced: true },
  ])('$step fails: its fail record, unfence and route-back journaled ok, the same error (exit 1), the plan synced again', async ({ step, op, error, fenced }) => {
    f.world.fail(op, error);
    const err = await run();
    expect(err).toBe(error);
    expect(err).toMatchObject({ exitCode: 1 });
    expectSourceRestored(f);
    const journal = await runJournal();
    expect(journal.slice(-6)).toEqual([`${step} begin`, `${step} fail`, ...RESTORED]);
    expect(planPhase(await journalRecords(f.session))).toBe('synced');
    // Unfenced only when the fence was begun; the router always goes back to the source and is released.
    expect(f.world.ops('fence.off')).toHaveLength(fenced ? 1 : 0);
    expect(f.world.log.slice(f.world.log.indexOf(op) + 1).filter((o) => /^(fence|router)\./.test(o))).toEqual([...(fenced ? ['fence.off'] : []), 'router.pointTo source.test', 'router.release', 'router.release']);
    expect(events.at(-1)).toMatchObject({ step: 'rollback', status: 'ok', message: 'source writable again, clients routed to it' });
  });

  it('the fence own leak probe saw a write (FenceLeakError): restored, exit 5 naming the leak', async () => {
    const leaked = { leakCheck: { probeMs: 500, clean: false, writers: [{ id: '77', user: 'rogue' }] } } as unknown as FenceOnResult;
    f.world.fail('fence.on', new FenceLeakError(leaked));
    const err = await run();
    expect(err).toBeInstanceOf(FenceLeakError);
    expect(err).toMatchObject({ exitCode: 5, code: 'leak', message: expect.stringMatching(/77 \(user rogue\)/) });
    expectSourceRestored(f);
    expect((await runJournal()).slice(-6)).toEqual(['fence begin', 'fence fail', ...RESTORED]);
  });

  it('verify finds tables that differ: restored, exit 1 naming the table', async () => {
    f.adapter.mismatches = [{ table: 'public.orders', source: '10', target: '9', match: false }];
    const err = await run();
    expect(err).toBeInstanceOf(OperationError);
    expect(err).toMatchObject({ exitCode: 1, message: expect.stringMatching(/verify found 1 table\(s\) that differ: public\.orders \(source 10, target 9\)/) });
    expectSourceRestored(f);
    expect((await runJournal()).slice(-6)).toEqual(['verify begin', 'verify fail', ...RESTORED]);
  });

  it('the leak watch saw a commit after the fence: restored, exit 1 naming the transaction', async () => {
    const watcher = new FakeLeakWatcher(f.world);
    watcher.leakCheck = { probeMs: 0, clean: false, writers: [], method: 'decoded', transactions: [{ xid: '991', tables: [{ table: 'public.orders', changes: 1 }], changes: 1, commitPosition: '0/20' }] };
    f.fence.watcher = watcher;
    const err = await run();
    expect(err).toBeInstanceOf(OperationError);
    expect(err).toMatchObject({ exitCode: 1, message: expect.stringMatching(/leak check failed: 1 transaction\(s\) committed after the fence: xid 991 \(public\.orders 1\)/) });
    expectSourceRestored(f);
    expect((await runJournal()).slice(-4)).toEqual(RESTORED);
    expect(await runJournal()).not.toContain('point-of-no-return begin');
    expect(f.world.ops('watch.close')).toHaveLength(1);
  });

  it('the plan lock on the source is lost by the point of no return: its fail record, restored, exit 1', async () => {
    f.world.when('adapter.verify', () => void f.world.fail('adapter.assertSourceLock', new Error('session gone')));
    const err = await run();
    expect(err).toBeInstanceOf(OperationError);
    expect(err).toMatchObject({ exitCode: 1, message: expect.stringMatching(/the plan's lock on the source was lost \(session gone\)/) });
    expectSourceRestored(f);
    expect((await runJournal()).slice(-6)).toEqual(['point-of-no-return begin', 'point-of-no-return fail', ...RESTORED]);
    expect(planPhase(await journalRecords(f.session))).toBe('synced');
  });

  it('the plan lock lost before the hold: nothing held or fenced, the router still routed back, exit 1', async () => {
    f.world.fail('adapter.assertSourceLock', new Error('session gone'));
    const err = await run();
    expect(err).toMatchObject({ exitCode: 1, message: expect.stringMatching(/lock on the source was lost/) });
    expect(f.world.ops('router.hold')).toEqual([]);
    expect(f.world.ops('fence.')).toEqual([]);
    expectSourceRestored(f);
    expect(await runJournal()).toEqual(['preflight begin', 'preflight ok', ...RESTORED]);
  });

  it('the write-downtime budget runs out inside the window: BudgetExceededError (exit 4), restored, never past the point of no return', async () => {
    f.world.when('adapter.verify', () => new Promise((r) => setTimeout(r, 80)));
    const err = await run({ maxWriteBlockedMs: 30 });
    expect(err).toBeInstanceOf(BudgetExceededError);
    expect(err).toMatchObject({ exitCode: 4, message: expect.stringMatching(/the write-downtime budget of 30ms ran out before the switch/) });
    expectSourceRestored(f);
    const journal = await runJournal();
    expect(journal.slice(-5)).toEqual(['verify ok', ...RESTORED]);
    expect(journal).not.toContain('point-of-no-return begin');
    expect(planPhase(await journalRecords(f.session))).toBe('synced');
  });

  it('the step before the point of no return (the waves transform) throws: restored, its error rethrown', async () => {
    const error = new OperationError('transform failed');
    const err = await run({ beforePointOfNoReturn: async () => Promise.reject(error) });
    expect(err).toBe(error);
    expectSourceRestored(f);
    expect((await runJournal()).slice(-5)).toEqual(['verify ok', ...RESTORED]);
  });

  it('the operator interrupts while fenced: the run stops at once, restores the source and rethrows the interrupt', async () => {
    let interrupt!: (e: Error) => void;
    const abort = new Promise<never>((_, reject) => (interrupt = reject));
    abort.catch(() => {});
    const stopped = new OperationError('interrupted by SIGINT');
    f.world.when('adapter.catchUp', () => new Promise((r) => setTimeout(r, 1000)));
    f.world.when('fence.on', () => void setTimeout(() => interrupt(stopped), 10));
    const err = await run({ abort });
    expect(err).toBe(stopped);
    expectSourceRestored(f);
    expect((await runJournal()).slice(-6)).toEqual(['catch-up begin', 'catch-up fail', ...RESTORED]);
  });

  it('a preflight blocker stops the run before anything is held or fenced (exit 3), and nothing is restored', async () => {
    f.adapter.preflight = async () => [{ severity: 'blocker', check: 'wal_level', message: 'wal_level is replica', why: 'logical replication needs it', fix: 'set wal_level = logical' }];
    const err = await run();
    expect(err).toBeInstanceOf(PreflightError);
    expect(err).toMatchObject({ exitCode: 3, message: 'preflight found 1 blocker(s): wal_level is replica' });
    expect(await runJournal()).toEqual(['preflight begin', 'preflight fail']);
    expect(f.world.ops('router.')).toEqual(['router.preflight', 'router.preflight']);
    expect(f.world.ops('fence.')).toEqual([]);
  });
});

describe('a router that cannot point back while restoring', () => {
  let stateDir: string;
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'cutover-orchestrator-'));
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('is journaled route-back fail, the source unfenced first and clients released anyway; exit 5 saying to point the router at the source and run rollback', async () => {
    const f = fakeSession(stateDir);
    await syncPlan(f.session);
    f.world.fail('adapter.catchUp', new OperationError('the sentinel did not reach the target'));
    f.world.fail('router.pointTo source.test', new Error('cannot reach the registry'));
    const err = await runPlan(f.session).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeedsOperatorError);
    expect(err).toMatchObject({
      exitCode: 5,
      code: 'needs-operator',
      message: 'the run failed and restoring the source failed too: route-back: cannot reach the registry',
      hint: expect.stringMatching(/^make fake router send clients to the source \(source\.test:5432\) again, by hand if need be, then run `cutover rollback`/),
    });
    expect((await journalLines(f.session)).slice(-6)).toEqual(['catch-up begin', 'catch-up fail', 'unfence begin', 'unfence ok', 'route-back begin', 'route-back fail']);
    const routeBack = (await journalRecords(f.session)).at(-1)!;
    expect(routeBack.data).toEqual({ error: 'route-back: cannot reach the registry' });
    expect(f.fence.fenced).toBe(false);
    expect(f.world.log.indexOf('fence.off')).toBeLessThan(f.world.log.indexOf('router.pointTo source.test'));
    expect(f.router.held).toBe(false);
    // Not restored as far as the journal knows: status says in flight, and run refuses until rollback succeeds.
    expect(planPhase(await journalRecords(f.session))).toBe('in-flight');
  });

  it('an unfence that fails keeps the plain hint: rollback retries it', async () => {
    const f = fakeSession(stateDir);
    await syncPlan(f.session);
    f.world.fail('adapter.verify', new OperationError('verify query failed'));
    f.world.fail('fence.off', new Error('connection refused'));
    const err = await runPlan(f.session).catch((e: unknown) => e);
    expect(err).toMatchObject({ exitCode: 5, message: 'the run failed and restoring the source failed too: unfence: connection refused', hint: 'run `cutover rollback` now' });
    expect((await journalLines(f.session)).slice(-4)).toEqual(['unfence begin', 'unfence fail', 'route-back begin', 'route-back ok']);
    expect(f.router.at).toEqual(SOURCE);
    expect(planPhase(await journalRecords(f.session))).toBe('in-flight');
  });

  it('after the point of no return a failed repoint is not rolled back: clients released, the source stays fenced, exit 5 naming resume', async () => {
    const f = fakeSession(stateDir);
    await syncPlan(f.session);
    f.world.fail('router.pointTo target.test', new OperationError('HAProxy socket gone'));
    const err = await runPlan(f.session).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeedsOperatorError);
    expect(err).toMatchObject({ exitCode: 5, message: 'the cutover stopped after its point of no return: HAProxy socket gone', hint: expect.stringMatching(/`cutover resume`/) });
    expect((await journalLines(f.session)).slice(-4)).toEqual(['point-of-no-return begin', 'point-of-no-return ok', 'repoint begin', 'repoint fail']);
    expect(f.fence.fenced).toBe(true);
    expect(f.world.ops('fence.off')).toEqual([]);
    expect(f.router.held).toBe(false);
    expect(f.router.at).not.toEqual(TARGET);
    expect(planPhase(await journalRecords(f.session))).toBe('past-pnr');
  });
});
