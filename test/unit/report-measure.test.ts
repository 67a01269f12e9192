import { describe, expect, it } from 'vitest';
import { errorSamples, latencySeries, longestGap } from '../../src/rehearse/measure.js';
import type { WorkloadOp } from '../../src/sandbox/workload.js';

const op = (client: number, kind: WorkloadOp['kind'], start: number, end: number, outcome: WorkloadOp['outcome'] = 'ok', error?: string): WorkloadOp => ({
  client,
  seq: 0,
  kind,
  start,
  end,
  outcome,
  ...(error ? { error } : {}),
});

describe('rehearsal measurements from client operations', () => {
  it('write- and read-blocked windows are the longest gaps between successful completions; failures do not close a gap', () => {
    const ops = [op(0, 'write', 0, 10), op(1, 'write', 5, 20), op(0, 'write', 10, 600), op(1, 'write', 20, 300, 'fail'), op(1000, 'read', 0, 5), op(1000, 'read', 5, 450)];
    expect(longestGap(ops, 'write')).toBe(580);
    expect(longestGap(ops, 'read')).toBe(445);
    expect(longestGap([], 'write')).toBe(0);
  });

  it('keeps the worst latency per client and time bucket, and where errors happened', () => {
    const ops = [op(0, 'write', 100, 101), op(0, 'write', 101, 700), op(0, 'write', 950, 951, 'unknown'), op(1000, 'read', 120, 121)];
    const { bucketMs, series } = latencySeries(ops, 100, 1100, 4);
    expect(bucketMs).toBe(250);
    expect(series).toEqual([
      { client: 0, kind: 'write', maxLatencyMs: [599, null, null, 1], errorBuckets: [3] },
      { client: 1000, kind: 'read', maxLatencyMs: [1, null, null, null], errorBuckets: [] },
    ]);
  });

  it('summarises client errors by kind and message', () => {
    const ops = [op(0, 'write', 0, 1, 'fail', '25006 read-only'), op(1, 'write', 0, 1, 'fail', '25006 read-only'), op(2, 'read', 0, 1, 'unknown', 'Connection terminated')];
    expect(errorSamples(ops)).toEqual(['write refused: 25006 read-only (×2)', 'read in doubt: Connection terminated']);
  });
});
