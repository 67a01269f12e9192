import { chmod, chown, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NeedsOperatorError, UsageError } from '../../src/errors.js';
import { Journal, journalPath } from '../../src/engine/journal.js';
import { PlanLock } from '../../src/engine/lock.js';

const PLAN = 'shop-0123456789ab';
let root: string;
let dir: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'cutover-statedir-'));
  dir = join(root, 'state');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('the state dir is private', () => {
  it('is created 0700', async () => {
    const lock = await PlanLock.acquire(dir, PLAN);
    await lock.release();
    const { stat } = await import('node:fs/promises');
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it.each([0o777, 0o770, 0o733])('an existing state dir with mode %o is refused (exit 2), naming the fix', async (mode) => {
    await PlanLock.acquire(dir, PLAN).then((l) => l.release());
    await chmod(dir, mode);
    const e = await PlanLock.acquire(dir, PLAN).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).message).toMatch(/state dir .* is writable by (every user|its group)/);
    expect((e as UsageError).hint).toBe(`chmod 700 ${dir} (it holds the journal, lock and fence records)`);
  });

  it.skipIf(process.getuid?.() !== 0)('as root: a state dir owned by another user is refused', async () => {
    await PlanLock.acquire(dir, PLAN).then((l) => l.release());
    await chown(dir, 65534, 65534);
    await expect(PlanLock.acquire(dir, PLAN)).rejects.toThrow(/belongs to another user \(uid 65534\)/);
  });

  it('a journal that is a symlink is not followed: refused, and its target is untouched', async () => {
    await PlanLock.acquire(dir, PLAN).then((l) => l.release());
    const victim = join(root, 'victim.txt');
    await writeFile(victim, 'precious\n');
    await symlink(victim, journalPath(dir, PLAN));
    const lock = await PlanLock.acquire(dir, PLAN);
    try {
      const e = await Journal.open(lock).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(NeedsOperatorError);
      expect((e as Error).message).toMatch(/is not a regular file \(a symlink\)/);
    } finally {
      await lock.release();
    }
    expect(await readFile(victim, 'utf8')).toBe('precious\n');
  });
});
