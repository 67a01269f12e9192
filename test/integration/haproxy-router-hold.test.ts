import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HaproxyRouter } from '../../adapters/routers/haproxy-router.js';
import { HaproxyRuntime } from '../../adapters/routers/haproxy-runtime.js';
import { findHaproxy, HaproxySandbox } from '../../adapters/routers/haproxy-sandbox.js';
import { missing } from '../helpers/availability.js';
import { tempStateDir } from '../helpers/cli.js';

const haproxyMissing = await missing('HAProxy (haproxy)', () => findHaproxy());

/** A server that greets every connection with its name, as MySQL servers speak first. */
function greeter(name: string): Promise<net.Server> {
  return new Promise((resolve) => {
    const s = net.createServer((c) => {
      c.on('error', () => {});
      c.write(`${name}\n`);
    });
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}

const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;

/** Connects through HAProxy; resolves with the greeting (which server answered) and when. */
function client(port: number, t0: number): Promise<{ who: string; at: number }> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.on('data', (d) => (resolve({ who: d.toString().trim(), at: Date.now() - t0 }), c.destroy()));
    c.on('error', (e) => resolve({ who: `error ${(e as NodeJS.ErrnoException).code}`, at: Date.now() - t0 }));
    c.on('close', () => resolve({ who: 'closed', at: Date.now() - t0 }));
  });
}

describe.skipIf(haproxyMissing)('HAProxy 2.6 router: hold in the server queue, move, release', () => {
  let a: net.Server;
  let b: net.Server;
  let h: HaproxySandbox;
  let stateDir: string;
  const router = () => new HaproxyRouter({ socket: h.socket, backend: h.backend, server: h.serverName, stateDir });
  const stat = () => new HaproxyRuntime(h.socket).server(h.backend, h.serverName);

  beforeAll(async () => {
    [a, b] = await Promise.all([greeter('A'), greeter('B')]);
    h = await HaproxySandbox.start({ server: { host: '127.0.0.1', port: portOf(a) } });
    stateDir = await tempStateDir(h.dir);
  });
  afterAll(async () => {
    await h?.stop();
    a?.close();
    b?.close();
  });

  it('clients that connect during the hold wait, then all reach the new server at release', async () => {
    const r = router();
    await r.hold(2000);
    expect((await stat()).slim).toBe(1);
    const t0 = Date.now();
    const waiting = [1, 2, 3].map(() => client(h.port, t0));
    await new Promise((res) => setTimeout(res, 400));
    await r.pointTo({ host: '127.0.0.1', port: portOf(b) });
    expect(await r.current()).toEqual({ host: '127.0.0.1', port: portOf(b) });
    await r.release();
    const got = await Promise.all(waiting);
    expect(got.map((g) => g.who)).toEqual(['B', 'B', 'B']);
    for (const g of got) expect(g.at).toBeGreaterThanOrEqual(350);
    for (const g of got) expect(g.at).toBeLessThan(2000);
    expect((await stat()).slim).toBe(0);
    await r.release();
    expect((await stat()).slim).toBe(0);
  });

  it('a release by a new process (after a crash) restores maxconn from the hold record', async () => {
    const crashed = router();
    await crashed.hold(2000);
    await crashed.close();
    expect((await stat()).slim).toBe(1);
    const findings = await router().preflight();
    expect(findings.some((f) => /not released/.test(f.why))).toBe(true);
    await router().pointTo({ host: '127.0.0.1', port: portOf(a) });
    await router().release();
    expect((await stat()).slim).toBe(0);
    expect((await client(h.port, Date.now())).who).toBe('A');
  });
});
