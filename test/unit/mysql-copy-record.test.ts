import { describe, expect, it } from 'vitest';
import { gtidReached, nextStage, resumeState } from '../../adapters/mysql/mysql-copy-record.js';

describe('a MariaDB copy cut short: what resumes and how the replica starts', () => {
  it('a table is complete only when every range of it was loaded by the same copy', () => {
    const s = resumeState([
      { id: 1, table: 'big', from: undefined, to: '100', attempt: 1, gtid: '0-1-10' },
      { id: 2, table: 'big', from: '100', attempt: 1, gtid: '0-1-10' },
      { id: 3, table: 'half', to: '5', attempt: 1, gtid: '0-1-10' },
      { id: 4, table: 'half', from: '5' },
      { id: 5, table: 'mixed', to: '5', attempt: 1, gtid: '0-1-10' },
      { id: 6, table: 'mixed', from: '5', attempt: 2, gtid: '0-1-20' },
      { id: 7, table: 'small', attempt: 2, gtid: '0-1-20' },
      { id: 8, table: 'untouched' },
    ]);
    expect([...s.complete.entries()]).toEqual([
      ['big', { attempt: 1, gtid: '0-1-10' }],
      ['small', { attempt: 2, gtid: '0-1-20' }],
    ]);
    expect(s.incomplete).toEqual(['half', 'mixed', 'untouched']);
    expect(s.nextAttempt).toBe(3);
    expect(resumeState([]).nextAttempt).toBe(1);
  });

  it('compares GTID positions per domain', () => {
    expect(gtidReached('0-1-10', '0-1-10')).toBe(true);
    expect(gtidReached('0-1-11', '0-1-10')).toBe(true);
    expect(gtidReached('0-1-9', '0-1-10')).toBe(false);
    // A domain the replica has not applied anything of yet.
    expect(gtidReached('0-1-10', '0-1-10,1-2-3')).toBe(false);
    expect(gtidReached('0-1-10,1-2-3,5-9-1', '1-2-3,0-1-10')).toBe(true);
    // Sequence numbers beyond 2^53.
    expect(gtidReached('0-1-9007199254740993', '0-1-9007199254740992')).toBe(true);
    expect(gtidReached('', '')).toBe(true);
    expect(gtidReached('', '0-1-1')).toBe(false);
  });

  it('runs the replica stage by stage, ignoring the tables copied at a position not reached yet', () => {
    const positions = [
      { gtid: '0-1-10', tables: ['a'] },
      { gtid: '0-1-20', tables: ['b', 'c'] },
      { gtid: '0-1-30', tables: ['d'] },
    ];
    expect(nextStage(positions, '0-1-10')).toEqual({ until: '0-1-20', ignore: ['b', 'c', 'd'] });
    // Cut short mid-stage: it goes on from where the applier stands.
    expect(nextStage(positions, '0-1-15')).toEqual({ until: '0-1-20', ignore: ['b', 'c', 'd'] });
    expect(nextStage(positions, '0-1-20')).toEqual({ until: '0-1-30', ignore: ['d'] });
    expect(nextStage(positions, '0-1-30')).toBeUndefined();
    // One copy, or copies with no write in between: no stage at all.
    expect(nextStage([{ gtid: '0-1-10', tables: ['a'] }], '0-1-10')).toBeUndefined();
    expect(
      nextStage(
        [
          { gtid: '0-1-10', tables: ['a'] },
          { gtid: '0-1-10', tables: ['b'] },
        ],
        '0-1-10',
      ),
    ).toBeUndefined();
  });
});
