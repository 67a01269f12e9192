import { describe, expect, it } from 'vitest';
import { randomReplicationPassword, replicationAccountName } from '../../src/util/replication-account.js';

describe('the per-plan replication account, one rule for both engines', () => {
  it('is named after the plan id hash and fits MySQL user names (32 characters)', () => {
    const name = replicationAccountName('cutover_0123456789abcdef0123');
    expect(name).toBe('cutover_repl_89abcdef0123');
    expect(name.length).toBeLessThanOrEqual(32);
  });

  it('gets a fresh 32-character URL-safe password each time', () => {
    const a = randomReplicationPassword();
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(randomReplicationPassword()).not.toBe(a);
  });
});
