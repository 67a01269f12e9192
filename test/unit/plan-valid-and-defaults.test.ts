import { describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/plan/parse-plan.js';

const FULL = `engine: postgres
source: { url: postgres://app@10.0.0.1/shop, passwordEnv: SRC_PASSWORD }
target: { url: postgres://app@10.0.0.2:5433/shop, passwordEnv: DST_PASSWORD }
scope: { databases: [shop] }
method: dump
readOnly: { scope: database, drainTimeout: 3s, lockTimeout: 500ms, terminate: idle-in-transaction }
limits: { maxWriteBlocked: 2s, maxLagBeforeFence: 4MB }
verify: checksums
sequences: { gap: 50 }
router: { kind: pgbouncer, admin: postgres://pgbouncer@127.0.0.1:6432/pgbouncer, ini: ./pgbouncer.ini, database: shop }
hooks: { beforeFence: ./notify.sh, afterSwitch: [sh, -c, "curl -s http://x/ok"] }
state: ./state/
`;

describe('parsePlan on a valid plan', () => {
  it('returns every setting typed, with paths resolved against the plan directory', () => {
    const plan = parsePlan(FULL, '/etc/cutover/plan.yaml');
    expect(plan).toMatchObject({
      file: '/etc/cutover/plan.yaml',
      engine: 'postgres',
      source: { url: 'postgres://app@10.0.0.1/shop', passwordEnv: 'SRC_PASSWORD', host: '10.0.0.1', port: 5432, user: 'app', database: 'shop' },
      target: { host: '10.0.0.2', port: 5433 },
      scope: { kind: 'databases', names: ['shop'] },
      method: 'dump',
      readOnly: { scope: 'database', mode: 'enforced', drainTimeoutMs: 3000, lockTimeoutMs: 500, terminate: 'idle-in-transaction', roles: [] },
      limits: { maxWriteBlockedMs: 2000, maxLagBeforeFenceBytes: 4 * 1024 ** 2 },
      verify: 'checksums',
      verifyBefore: { mode: 'none', chunkRows: 10_000 },
      sequences: { gap: 50 },
      router: { kind: 'pgbouncer', admin: 'postgres://pgbouncer@127.0.0.1:6432/pgbouncer', ini: '/etc/cutover/pgbouncer.ini', database: 'shop' },
      hooks: { beforeFence: ['/etc/cutover/notify.sh'], afterSwitch: ['sh', '-c', 'curl -s http://x/ok'] },
      stateDir: '/etc/cutover/state',
      warnings: [],
    });
  });

  it('fills the documented defaults for a minimal plan', () => {
    const plan = parsePlan('source: { url: postgres://app@a/shop }\ntarget: { url: postgres://app@b/shop }\n', '/srv/p/plan.yaml');
    expect(plan.engine).toBe('postgres');
    expect(plan.scope).toEqual({ kind: 'databases', names: ['shop'] });
    expect(plan.method).toBe('replication');
    // Content is verified online before the hold; nothing that grows with the data runs inside the window.
    expect(plan.verify).toBe('none');
    expect(plan.verifyBefore).toEqual({ mode: 'chunks', chunkRows: 10_000 });
    expect(plan.limits).toEqual({ maxWriteBlockedMs: 5000, maxLagBeforeFenceBytes: 1024 ** 2 });
    expect(plan.sequences.gap).toBe(1000);
    expect(plan.readOnly).toEqual({ scope: 'database', mode: 'enforced', drainTimeoutMs: 10_000, lockTimeoutMs: 2000, terminate: 'all', roles: [] });
    expect(plan.router).toEqual({ kind: 'none' });
    expect(plan.hooks).toEqual({});
    expect(plan.stateDir).toBe('/srv/p/.cutover');
  });

  it('infers a MariaDB engine from the source URL and defaults its fence to server scope', () => {
    const plan = parsePlan('source: { url: "mariadb://app@a/shop" }\ntarget: { url: "mariadb://app@b/shop" }\n', 'p.yaml');
    expect(plan.engine).toBe('mariadb');
    expect(plan.readOnly.scope).toBe('server');
    expect(plan.accounts).toBe('copy');
    expect(parsePlan('source: { url: "mariadb://app@a/shop" }\ntarget: { url: "mariadb://app@b/shop" }\naccounts: skip\n', 'p.yaml').accounts).toBe('skip');
  });

  it('reads the file, exec and none routers', () => {
    const base = 'source: { url: postgres://app@a/shop }\ntarget: { url: postgres://app@b/shop }\n';
    expect(parsePlan(base + 'router: { kind: file, path: ./endpoint.env, format: env }\n', '/x/plan.yaml').router).toEqual({ kind: 'file', path: '/x/endpoint.env', format: 'env' });
    expect(parsePlan(base + 'router: { kind: exec, command: [./switch.sh, --fast], hold: ./hold.sh, timeout: 10s }\n', '/x/plan.yaml').router).toEqual({
      kind: 'exec',
      command: ['/x/switch.sh', '--fast'],
      hold: ['/x/hold.sh'],
      timeoutMs: 10_000,
    });
    expect(parsePlan(base + 'router: { kind: none }\n', '/x/plan.yaml').router).toEqual({ kind: 'none' });
  });

  it('accepts a password inside a URL with a warning and keeps it out of the plan', () => {
    const plan = parsePlan('source: { url: "postgres://app:s3cret@a/shop" }\ntarget: { url: postgres://app@b/shop }\n', 'p.yaml');
    expect(plan.source.url).toBe('postgres://app@a/shop');
    expect(plan.warnings).toEqual([expect.stringContaining('source.url holds a password')]);
    expect(JSON.stringify(plan)).not.toContain('s3cret');
  });
});
