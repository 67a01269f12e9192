import { describe, expect, it } from 'vitest';
import { compareVersions } from '../../adapters/postgres/postgres-extensions.js';

describe('extension version order (is the target version the same or newer?)', () => {
  it.each([
    ['1.10', '1.9', 1],
    ['1.6', '1.6', 0],
    ['1.6', '1.6.0', 0],
    ['2.0', '10.0', -1],
    ['3.4.2', '3.4', 1],
    ['1.0-beta', '1.0-alpha', 1],
  ])('%s vs %s → %i', (a, b, want) => {
    expect(compareVersions(a, b)).toBe(want);
  });
});
