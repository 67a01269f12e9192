import { chmod, chown, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { privateBinaryCopy } from '../../adapters/postgres/postgres-binaries.js';

const REAL = '#!/bin/sh\necho "postgres (PostgreSQL) 17.10"\n';
const PLANTED = '#!/bin/sh\necho planted\n';
const asRoot = process.getuid?.() === 0;

let root: string;
let native: string;
let cacheRoot: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'cutover-bin-test-'));
  native = join(root, 'native');
  cacheRoot = join(root, 'tmp');
  await mkdir(join(native, 'bin'), { recursive: true });
  await mkdir(join(native, 'lib'));
  await writeFile(join(native, 'bin', 'postgres'), REAL, { mode: 0o700 });
  await writeFile(join(native, 'lib', 'libpq.so.5.17'), 'lib');
  await symlink('libpq.so.5.17', join(native, 'lib', 'libpq.so.5'));
  await mkdir(cacheRoot, { mode: 0o1777 });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A cache someone else prepared at the fixed path, with their own `postgres` in it. */
async function plantCache(): Promise<string> {
  const cache = join(cacheRoot, 'cutover-pgbin-17.10');
  await mkdir(join(cache, 'bin'), { recursive: true });
  await writeFile(join(cache, 'bin', 'postgres'), PLANTED, { mode: 0o755 });
  return cache;
}

describe('sandbox PostgreSQL binaries copied for the server user', () => {
  it('copies into a private tree (ours, readable by all, writable by nobody else) and reuses it', async () => {
    const bin = await privateBinaryCopy(native, '17.10', cacheRoot);
    expect(bin).toBe(join(cacheRoot, 'cutover-pgbin-17.10', 'bin'));
    expect(await readFile(join(bin, 'postgres'), 'utf8')).toBe(REAL);
    const st = await lstat(join(bin, 'postgres'));
    expect(st.uid).toBe(process.getuid?.());
    expect(st.mode & 0o777).toBe(0o755);
    expect((await lstat(join(cacheRoot, 'cutover-pgbin-17.10'))).mode & 0o777).toBe(0o755);
    expect((await lstat(join(bin, '..', 'lib', 'libpq.so.5'))).isSymbolicLink()).toBe(true);
    expect(await privateBinaryCopy(native, '17.10', cacheRoot)).toBe(bin);
  });

  it('refuses a planted cache that is world-writable and runs its own fresh copy instead', async () => {
    const cache = await plantCache();
    await chmod(cache, 0o777);
    const bin = await privateBinaryCopy(native, '17.10', cacheRoot);
    expect(bin.startsWith(cache + '/')).toBe(false);
    expect(await readFile(join(bin, 'postgres'), 'utf8')).toBe(REAL);
    expect(await readFile(join(cache, 'bin', 'postgres'), 'utf8')).toBe(PLANTED);
  });

  it('refuses a cache with one group-writable file inside', async () => {
    const cache = await plantCache();
    await chmod(join(cache, 'bin', 'postgres'), 0o775);
    const bin = await privateBinaryCopy(native, '17.10', cacheRoot);
    expect(await readFile(join(bin, 'postgres'), 'utf8')).toBe(REAL);
  });

  it('refuses a cache path that is a symlink to a directory', async () => {
    const elsewhere = join(root, 'elsewhere');
    await mkdir(join(elsewhere, 'bin'), { recursive: true });
    await writeFile(join(elsewhere, 'bin', 'postgres'), PLANTED, { mode: 0o755 });
    await symlink(elsewhere, join(cacheRoot, 'cutover-pgbin-17.10'));
    const bin = await privateBinaryCopy(native, '17.10', cacheRoot);
    expect(bin.startsWith(elsewhere)).toBe(false);
    expect(await readFile(join(bin, 'postgres'), 'utf8')).toBe(REAL);
  });

  it.skipIf(!asRoot)('as root: refuses a cache owned by another user, even with safe modes', async () => {
    const cache = await plantCache();
    await chown(join(cache, 'bin', 'postgres'), 65534, 65534);
    await chown(join(cache, 'bin'), 65534, 65534);
    await chown(cache, 65534, 65534);
    const bin = await privateBinaryCopy(native, '17.10', cacheRoot);
    expect(bin.startsWith(cache + '/')).toBe(false);
    expect(await readFile(join(bin, 'postgres'), 'utf8')).toBe(REAL);
  });
});
