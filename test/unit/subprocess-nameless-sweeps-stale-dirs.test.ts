import { mkdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openNameless } from '../../src/util/subprocess.js';

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe('openNameless: what a killed process left', () => {
  it("the first call of a process removes the empty directories of its prefix older than a minute, not a live call's or one with files", async () => {
    const prefix = `cutover-sweep-test-${process.pid}-`;
    const dir = (n: string) => join(tmpdir(), `${prefix}${n}`);
    const [stale, fresh, full] = [dir('stale'), dir('fresh'), dir('full')];
    const old = new Date(Date.now() - 5 * 60_000);
    try {
      await Promise.all([stale, fresh, full].map((d) => mkdir(d)));
      await writeFile(join(full, 'kept'), 'x');
      await utimes(stale, old, old);
      await utimes(full, old, old);
      const made = await openNameless(prefix, 'f', async (path) => path);
      expect(await exists(stale)).toBe(false);
      expect(await exists(fresh)).toBe(true);
      expect(await exists(join(full, 'kept'))).toBe(true);
      // Its own directory is gone as ever.
      expect(await exists(join(made, '..'))).toBe(false);
    } finally {
      await Promise.all([stale, fresh, full].map((d) => rm(d, { recursive: true, force: true })));
    }
  });
});
