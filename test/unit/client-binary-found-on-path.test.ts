import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findClientBinary } from '../../adapters/postgres/postgres-binaries.js';

describe('findClientBinary', () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('finds a client tool in an absolute PATH directory (a relative entry is skipped) when no Debian PostgreSQL directory has it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cutover-path-'));
    dirs.push(dir);
    const tool = join(dir, 'cutover-test-client');
    await writeFile(tool, '#!/bin/sh\n');
    await chmod(tool, 0o755);
    expect(await findClientBinary('cutover-test-client', { path: ['relative/bin', dir].join(':') })).toBe(tool);
  });

  it("Debian's versioned dirs: newest major without a floor; with one, the oldest major that reaches it", async () => {
    const root = await mkdtemp(join(tmpdir(), 'cutover-debian-'));
    dirs.push(root);
    for (const major of ['15', '17']) {
      await mkdir(join(root, major, 'bin'), { recursive: true });
      await writeFile(join(root, major, 'bin', 'pg_dump'), '#!/bin/sh\n');
      await chmod(join(root, major, 'bin', 'pg_dump'), 0o755);
    }
    const find = (minMajor?: number) => findClientBinary('pg_dump', { debianRoot: root, path: '/nonexistent', ...(minMajor !== undefined ? { minMajor } : {}) });
    expect(await find()).toBe(join(root, '17', 'bin', 'pg_dump'));
    expect(await find(15)).toBe(join(root, '15', 'bin', 'pg_dump'));
    expect(await find(16)).toBe(join(root, '17', 'bin', 'pg_dump'));
    // None reaches 18: the first found, so the caller's version check can name it.
    expect(await find(18)).toMatch(/\/bin\/pg_dump$/);
  });

  it('names the package to install when neither has it', async () => {
    await expect(findClientBinary('cutover-test-missing', { path: '/nonexistent' })).rejects.toThrow(/cutover-test-missing not found/);
  });
});
