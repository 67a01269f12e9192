import { describe, expect, it } from 'vitest';
import type { Router } from '../../src/engine/router.js';
import { Gate } from '../../src/engine/waves-pool.js';
import { WaveRouter } from '../../src/engine/waves-router.js';

function fakeRouter(calls: string[], withPrepare: boolean): Router {
  return {
    kind: 'pgbouncer',
    ...(withPrepare ? { prepareHold: async () => void calls.push('prepareHold'), prepareSwitch: async () => void calls.push('prepareSwitch') } : {}),
    hold: async () => void calls.push('hold'),
    pointTo: async () => void calls.push('pointTo'),
    release: async () => void calls.push('release'),
    current: async () => undefined,
    describe: () => 'fake',
    preflight: async () => [],
    close: async () => {},
  };
}

describe("a wave tenant's router opens what its hold needs before the window", () => {
  it('prepareHold reaches the router behind the wave gate', async () => {
    const calls: string[] = [];
    const r = new WaveRouter(fakeRouter(calls, true), new Gate());
    await r.prepareHold();
    await r.hold(1000);
    expect(calls).toEqual(['prepareHold', 'hold']);
  });

  it('a router without one is fine', async () => {
    const calls: string[] = [];
    await new WaveRouter(fakeRouter(calls, false), new Gate()).prepareHold();
    expect(calls).toEqual([]);
  });

  it('prepareSwitch reaches the router without waiting for the gate (it writes only a temporary file); the switch waits', async () => {
    const calls: string[] = [];
    const gate = new Gate();
    const r = new WaveRouter(fakeRouter(calls, true), gate);
    let open!: () => void;
    const busy = gate.run(() => new Promise<void>((res) => (open = res)));
    await r.prepareSwitch({ host: 'h', port: 1 });
    const switched = r.switchTo({ host: 'h', port: 1 });
    await new Promise((res) => setTimeout(res, 20));
    expect(calls).toEqual(['prepareSwitch']);
    open();
    await Promise.all([busy, switched]);
    expect(calls).toEqual(['prepareSwitch', 'pointTo', 'release']);
  });
});
