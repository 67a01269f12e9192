import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { liveSandboxes } from '../../src/sandbox/registry.js';

/** A client connection that collects what the echo server sends back. */
async function open(port: number): Promise<{ s: Socket; got: () => string; closed: Promise<string> }> {
  const s = connect(port, '127.0.0.1');
  let buf = '';
  s.on('data', (d) => (buf += d.toString()));
  const closed = new Promise<string>((resolve) => {
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.on('close', () => resolve('closed'));
  });
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  return { s, got: () => buf, closed };
}

async function until(cond: () => boolean, ms = 2000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return cond();
}

describe('fault proxy in front of an echo server', () => {
  let echo: Server;
  let echoPort: number;
  let proxy: FaultProxy;

  beforeAll(async () => {
    echo = createServer((s) => s.on('error', () => {}).pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as { port: number }).port;
    proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: echoPort } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await new Promise((r) => echo.close(r));
  });

  it('forwards both ways and is tracked in the sandbox registry until stopped', async () => {
    expect(liveSandboxes()).toContain(proxy);
    const c = await open(proxy.port);
    c.s.write('hello');
    expect(await until(() => c.got() === 'hello')).toBe(true);
    c.s.destroy();
  });

  it('pause holds bytes on an open connection; resume delivers them in order', async () => {
    const c = await open(proxy.port);
    proxy.pause();
    c.s.write('a');
    c.s.write('b');
    c.s.write('c');
    expect(await until(() => c.got().length > 0, 200)).toBe(false);
    proxy.resume();
    expect(await until(() => c.got() === 'abc')).toBe(true);
    c.s.destroy();
  });

  it('drop resets open connections; refuseNew refuses new ones until resume', async () => {
    const c = await open(proxy.port);
    expect(await until(() => proxy.connections === 1)).toBe(true);
    proxy.drop({ refuseNew: true });
    expect(await c.closed).toMatch(/ECONNRESET|closed/);
    // The reset can arrive before or after the client sees its connect.
    const refused = await open(proxy.port).then(
      (r) => r.closed,
      (e: NodeJS.ErrnoException) => e.code,
    );
    proxy.resume();
    expect(refused).toMatch(/ECONNRESET|closed/);
    const again = await open(proxy.port);
    again.s.write('back');
    expect(await until(() => again.got() === 'back')).toBe(true);
    again.s.destroy();
  });

  it('latency delays each chunk but keeps order', async () => {
    const c = await open(proxy.port);
    proxy.latency(150);
    c.s.write('1');
    await new Promise((r) => setTimeout(r, 20));
    c.s.write('2');
    expect(await until(() => c.got().length > 0, 60)).toBe(false);
    expect(await until(() => c.got() === '12')).toBe(true);
    proxy.latency(0);
    c.s.destroy();
  });

  it('stop closes the listener and leaves the registry', async () => {
    const p = await FaultProxy.start({ target: { host: '127.0.0.1', port: echoPort } });
    await p.stop();
    expect(liveSandboxes()).not.toContain(p);
    await expect(open(p.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
