import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
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

  it('names the package to install when neither has it', async () => {
    await expect(findClientBinary('cutover-test-missing', { path: '/nonexistent' })).rejects.toThrow(/cutover-test-missing not found/);
  });
});
