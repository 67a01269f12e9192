import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { formatBytes, formatDuration, parseDuration, parseSize } from '../../src/util/units.js';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['5s', 5000],
    ['1.5s', 1500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['10', 10_000],
    [' 3 s ', 3000],
  ])('%s → %d ms', (input, ms) => expect(parseDuration(input)).toBe(ms));

  it('treats numbers as seconds', () => expect(parseDuration(2)).toBe(2000));

  it.each(['5x', '', '-1s', 'abc', '1e3s'])('rejects %j naming the setting', (bad) => {
    expect(() => parseDuration(bad, '--drain-timeout')).toThrow(UsageError);
    expect(() => parseDuration(bad, '--drain-timeout')).toThrow(/--drain-timeout/);
  });

  it('rejects absurd values', () => expect(() => parseDuration('9999h')).toThrow(/too large/));
});

describe('parseSize', () => {
  it.each([
    ['1MB', 1024 ** 2],
    ['512KB', 512 * 1024],
    ['2GiB', 2 * 1024 ** 3],
    ['100', 100],
    ['1.5mb', 1.5 * 1024 ** 2],
  ])('%s → %d bytes', (input, bytes) => expect(parseSize(input)).toBe(bytes));

  it.each(['1XB', 'MB', '-1MB'])('rejects %j', (bad) => expect(() => parseSize(bad, 'limits.maxLagBeforeFence')).toThrow(/limits.maxLagBeforeFence/));
});

describe('formatting', () => {
  it('formats durations and sizes', () => {
    expect(formatDuration(12)).toBe('12ms');
    expect(formatDuration(1234)).toBe('1.23s');
    expect(formatBytes(1536)).toBe('1.5 KB');
  });
});
