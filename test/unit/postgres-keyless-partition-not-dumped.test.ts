import { describe, expect, it } from 'vitest';
import { keylessFindings, type KeylessTable } from '../../adapters/postgres/postgres-keyless.js';

const leaf: KeylessTable = { table: 'public.events_2026', bytes: 8192, rows: 10, changes: 5, identity: 'd', partition: true };
const plain: KeylessTable = { ...leaf, table: 'public.audit', partition: false };

describe('a keyless partition cannot be copied inside the window instead of replicated', () => {
  it('dump chosen for a partition is a blocker naming it and suggesting full', () => {
    const [f] = keylessFindings([leaf], { default: 'block', tables: { 'public.events_2026': 'dump' } }, 'replication');
    expect(f!.severity).toBe('blocker');
    expect(f!.object).toBe('public.events_2026');
    expect(f!.fix).toContain('"public.events_2026": full');
  });

  it('a default of dump blocks partitions but not plain tables', () => {
    const f = keylessFindings([leaf, plain], { default: 'dump', tables: {} }, 'replication');
    expect(f.map((x) => [x.object, x.severity])).toEqual([
      ['public.events_2026', 'blocker'],
      ['public.audit', 'info'],
    ]);
  });

  it('never proposes dump for a partition, even small and updated', () => {
    const [f] = keylessFindings([leaf], undefined, 'replication');
    expect(f!.severity).toBe('blocker');
    expect(f!.message).toContain('proposed: full');
  });
});
