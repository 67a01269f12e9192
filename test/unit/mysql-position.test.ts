import { describe, expect, it } from 'vitest';
import { canTrackWrites, decodePosition, encodePosition, normalizeGtidSet, positionMoved, type WritePosition } from '../../adapters/mysql/mysql-position.js';

const pos = (gtid: string, file: string | null = 'binlog.000001', p: number | null = 100): WritePosition => ({ gtid: normalizeGtidSet(gtid), file, pos: p });

describe('write position comparison', () => {
  it('normalizes MySQL gtid_executed (newlines, order, case)', () => {
    const a = '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5,\n2174B383-5441-11E8-B90A-C80AA9429562:1-3';
    const b = '2174b383-5441-11e8-b90a-c80aa9429562:1-3,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5';
    expect(normalizeGtidSet(a)).toBe(normalizeGtidSet(b));
  });

  it('GTIDs decide when present: a log rotation is not a write, a new GTID is', () => {
    expect(positionMoved(pos('0-1-7', 'binlog.000001', 100), pos('0-1-7', 'binlog.000002', 4))).toBe(false);
    expect(positionMoved(pos('0-1-7'), pos('0-1-8'))).toBe(true);
    expect(positionMoved(pos(''), pos('0-1-1'))).toBe(true);
    expect(positionMoved(pos('0-1-7,1-2-3'), pos('1-2-3,0-1-7'))).toBe(false);
  });

  it('without GTIDs the binary log coordinates decide', () => {
    expect(positionMoved(pos('', 'binlog.000001', 100), pos('', 'binlog.000001', 100))).toBe(false);
    expect(positionMoved(pos('', 'binlog.000001', 100), pos('', 'binlog.000001', 420))).toBe(true);
  });

  it('without a binary log nothing can be told', () => {
    const none = pos('', null, null);
    expect(canTrackWrites(none)).toBe(false);
    expect(positionMoved(none, none)).toBe(false);
    expect(canTrackWrites(pos('0-1-1'))).toBe(true);
  });

  it('the fence position survives its trip through FenceOnResult.fencePosition to the leak watch', () => {
    const g = pos('0-1-7,1-2-3');
    expect(positionMoved(decodePosition(encodePosition(g))!, g)).toBe(false);
    expect(positionMoved(decodePosition(encodePosition(g))!, pos('0-1-8,1-2-3'))).toBe(true);
    const b = pos('', 'mysql-bin.000003', 4242);
    expect(decodePosition(encodePosition(b))).toEqual(b);
    expect(positionMoved(decodePosition(encodePosition(b))!, pos('', 'mysql-bin.000003', 4300))).toBe(true);
    expect(decodePosition('0/1AADD98')).toBeUndefined();
  });
});
