import { describe, expect, it } from 'vitest';
import { readOnlyStatus } from '../../src/index.js';
import { UsageError } from '../../src/errors.js';
import { cli } from '../helpers/cli.js';

describe('--lock-timeout is a bound, never "no limit"', () => {
  it.each(['0', '0s', '11m'])('the CLI refuses --lock-timeout %s with exit 2 before connecting', async (v) => {
    // Port 1: nothing listens there, so a connection attempt would end in exit 3, not 2.
    const r = await cli(['readonly', 'status', 'postgres://postgres@127.0.0.1:1/shop', '--lock-timeout', v], { PGPASSWORD: 'x' });
    expect(r.code, r.err).toBe(2);
    expect(r.err).toMatch(/lock timeout \d+ms is out of range: it must be between 1ms and 10min/);
  });

  it('the library refuses lockTimeoutMs 0 too', async () => {
    await expect(readOnlyStatus({ url: 'postgres://postgres@127.0.0.1:1/shop', lockTimeoutMs: 0 })).rejects.toBeInstanceOf(UsageError);
  });
});
