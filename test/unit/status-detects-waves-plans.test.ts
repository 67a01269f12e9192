import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlan, status } from '../../src/index.js';

describe('status() tells a waves plan from a one-database plan by itself', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cutover-status-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a plan with scope.tenants gets the tenants table (kind waves), from the journals alone', async () => {
    // Port 1: nothing listens there; a tenants list and no router need no server for the table.
    const plan = parsePlan(
      'source: { url: postgres://app@127.0.0.1:1/postgres }\ntarget: { url: postgres://app@127.0.0.1:2/postgres }\nscope: { tenants: [t1, t2] }\nmethod: dump\nrouter: { kind: none }\nstate: ./state\n',
      join(dir, 'waves.yaml'),
    );
    const r = await status(plan, { env: {} });
    expect(r).toMatchObject({
      kind: 'waves',
      tenants: [
        { tenant: 't1', state: 'pending' },
        { tenant: 't2', state: 'pending' },
      ],
      counts: { pending: 2 },
    });
  });

  it('a one-database plan gets its own status (no kind), which needs the source', async () => {
    const plan = parsePlan('source: { url: postgres://app@127.0.0.1:1/shop }\ntarget: { url: postgres://app@127.0.0.1:2/shop }\nstate: ./state\n', join(dir, 'single.yaml'));
    await expect(status(plan, { env: {} })).rejects.toMatchObject({ code: 'unreachable' });
  });
});
