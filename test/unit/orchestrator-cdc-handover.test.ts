import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CdcSlotHandover } from '../../src/engine/cutover-adapter.js';
import { rollbackPlan, runPlan, syncPlan } from '../../src/engine/run.js';
import { PlanError } from '../../src/errors.js';
import { parsePlan } from '../../src/plan/index.js';
import { fakeSession, journalLines, type FakeSession } from '../helpers/fake-session.js';

const CDC = 'cdc: { slots: [orders_cdc, audit_cdc] }';

/** The fake adapter with the CDC handover: made slots are remembered, dropping forgets them. */
function withCdc(f: FakeSession): { made: Set<string>; stops: string[] } {
  const state = { made: new Set<string>(), stops: [] as string[] };
  Object.assign(f.adapter, {
    handOverCdcSlots: async (sourceStop: string): Promise<CdcSlotHandover[]> => {
      await f.world.act('adapter.handOverCdcSlots');
      state.stops.push(sourceStop);
      return f.session.plan.cdc!.slots.map((slot) => {
        state.made.add(slot);
        return { slot, plugin: 'pgoutput', sourceStop, targetStart: '0/20', toolTable: '"_cutover".sentinel' };
      });
    },
    dropCdcSlots: async (): Promise<string[]> => {
      await f.world.act('adapter.dropCdcSlots');
      const gone = [...state.made];
      state.made.clear();
      return gone;
    },
  });
  return state;
}

describe('CDC slot handover in the run (fake adapter, real journal)', () => {
  let stateDir: string;
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'cutover-cdc-'));
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('slots are made after verify, last before the point of no return, from the catch-up fence position; both positions are journaled', async () => {
    const f = fakeSession(stateDir, { plan: CDC });
    const cdc = withCdc(f);
    await syncPlan(f.session);
    const r = await runPlan(f.session);
    expect(cdc.stops).toEqual(['0/10']);
    expect(r.cdc?.map((c) => `${c.slot} ${c.sourceStop} ${c.targetStart}`)).toEqual(['orders_cdc 0/10 0/20', 'audit_cdc 0/10 0/20']);
    const lines = await journalLines(f.session);
    expect(lines.slice(lines.indexOf('verify ok'), lines.indexOf('point-of-no-return begin'))).toEqual(['verify ok', 'cdc-handover begin', 'cdc-handover ok']);
    expect(f.world.log.indexOf('adapter.handOverCdcSlots')).toBeLessThan(f.world.log.lastIndexOf('adapter.assertSourceLock'));
    expect(f.world.ops('adapter.dropCdcSlots')).toEqual([]);
  });

  it('a failure after the slots were made, before the point of no return, restores the source and then drops them', async () => {
    const f = fakeSession(stateDir, { plan: CDC });
    const cdc = withCdc(f);
    await syncPlan(f.session);
    f.world.when('adapter.handOverCdcSlots', () => void f.world.fail('adapter.assertSourceLock', new Error('session gone')));
    await expect(runPlan(f.session)).rejects.toThrow(/lock on the source was lost/);
    expect(cdc.made.size).toBe(0);
    expect(f.fence.fenced).toBe(false);
    const log = f.world.log;
    expect(log.indexOf('adapter.dropCdcSlots')).toBeGreaterThan(log.lastIndexOf('fence.off'));
  });

  it('rollback after a crash inside the handover drops the slots; a run that never began it leaves slots alone', async () => {
    const f = fakeSession(stateDir, { plan: CDC });
    withCdc(f);
    await syncPlan(f.session);
    f.world.fail('adapter.catchUp');
    await expect(runPlan(f.session)).rejects.toThrow(/catchUp failed/);
    await rollbackPlan(f.session);
    expect(f.world.ops('adapter.dropCdcSlots')).toEqual([]);

    f.world.heal('adapter.catchUp');
    f.world.fail('adapter.handOverCdcSlots', new Error('slot creation failed'));
    await expect(runPlan(f.session)).rejects.toThrow(/slot creation failed/);
    expect(f.world.ops('adapter.dropCdcSlots')).toEqual(['adapter.dropCdcSlots']);
    await rollbackPlan(f.session);
    expect(f.world.ops('adapter.dropCdcSlots')).toHaveLength(2);
  });
});

describe('plan key cdc', () => {
  const plan = (body: string) => () => parsePlan(`source: { url: "postgres://a@s:5432/shop" }\ntarget: { url: "postgres://a@t:5432/shop" }\nrouter: { kind: none }\n${body}`, '/tmp/p.yaml');

  it('reads slots and plugin', () => {
    expect(plan('cdc: { slots: [orders_cdc], plugin: pgoutput }')().cdc).toEqual({ slots: ['orders_cdc'], plugin: 'pgoutput' });
    expect(plan('cdc: { slots: [a, b] }')().cdc).toEqual({ slots: ['a', 'b'] });
  });

  it.each([
    ['cdc: { slots: [Orders] }', /not a PostgreSQL replication slot name/],
    ['cdc: { plugin: pgoutput }', /slots/],
    ['cdc: { slots: [a] }\nscope: { schemas: [s1] }', /one whole database/],
  ])('refuses %s', (body, message) => {
    expect(plan(body)).toThrow(PlanError);
    expect(plan(body)).toThrow(message);
  });

  it('is refused for engines without slots', () => {
    const mariadb = () => parsePlan(`engine: mariadb\nsource: { url: "mariadb://a@s:3306/shop" }\ntarget: { url: "mariadb://a@t:3306/shop" }\ncdc: { slots: [a] }`, '/tmp/p.yaml');
    expect(mariadb).toThrow(/binary log/);
  });
});
