import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/util/subprocess.js';

describe('run: open files handed to the child as fd 3, …', () => {
  it('a file whose name is already gone is read and written by the child through /dev/fd/3', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'run-fds-'));
    const file = await open(join(dir, 'f'), 'wx+', 0o600);
    await rm(dir, { recursive: true });
    try {
      await run('sh', ['-c', 'echo written > /dev/fd/3'], { fds: [file.fd] });
      const back = await run('sh', ['-c', 'cat /dev/fd/3'], { fds: [file.fd] });
      expect(back.stdout).toBe('written');
      expect((await file.readFile('utf8')).trim()).toBe('written');
    } finally {
      await file.close();
    }
    await expect(readFile(join(dir, 'f'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses fds with input or another OS user (that user could not reopen our private file)', async () => {
    await expect(run('true', [], { fds: [0], input: 'x' })).rejects.toThrow(/neither input nor asUser/);
    await expect(run('true', [], { fds: [0], asUser: 'postgres' })).rejects.toThrow(/neither input nor asUser/);
  });
});
