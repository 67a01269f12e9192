import { execFileSync } from 'node:child_process';
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
  it("the first call of a process removes its prefix's directories older than a minute holding nothing or only its FIFO, not a live call's or one with data", async () => {
    const prefix = `cutover-sweep-test-${process.pid}-`;
    const dir = (n: string) => join(tmpdir(), `${prefix}${n}`);
    const [empty, fifo, fresh, data] = [dir('empty'), dir('fifo'), dir('fresh'), dir('data')];
    const old = new Date(Date.now() - 5 * 60_000);
    try {
      await Promise.all([empty, fifo, fresh, data].map((d) => mkdir(d)));
      // What a mkfifo forked just before its parent was killed leaves; and a file with data in it.
      execFileSync('mkfifo', [join(fifo, 'f')]);
      await writeFile(join(data, 'f'), 'rows');
      for (const d of [empty, fifo, data]) await utimes(d, old, old);
      const made = await openNameless(prefix, 'f', async (path) => path);
      expect(await exists(empty)).toBe(false);
      expect(await exists(fifo)).toBe(false);
      expect(await exists(fresh)).toBe(true);
      expect(await exists(join(data, 'f'))).toBe(true);
      // Its own directory is gone as ever.
      expect(await exists(join(made, '..'))).toBe(false);
    } finally {
      await Promise.all([empty, fifo, fresh, data].map((d) => rm(d, { recursive: true, force: true })));
    }
  });
});
