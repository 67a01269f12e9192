import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import { basename, dirname, join } from 'node:path';

/** Makes a create, rename or unlink in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Creates a private directory (0700: state names servers) and makes its creation durable. One that exists must
 * be ours (or root's) and writable by nobody else: whoever can write there can plant a journal, a lock or a
 * fence record (or a symlink in their place) and steer what the next command does.
 */
export async function ensureDirDurably(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true, mode: 0o700 });
  if (created !== undefined) return fsyncDir(dirname(dir));
  const st = await stat(dir);
  const uid = process.getuid?.();
  if ((st.mode & 0o022) !== 0) {
    throw new UsageError(`state dir ${dir} is writable by ${st.mode & 0o002 ? 'every user' : 'its group'} (mode ${(st.mode & 0o777).toString(8)})`, `chmod 700 ${dir} (it holds the journal, lock and fence records)`);
  }
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    throw new UsageError(`state dir ${dir} belongs to another user (uid ${st.uid})`, 'use a state dir of your own (state: in the plan, or --state-dir)');
  }
}

export interface AtomicWriteOptions {
  /** File mode (default 0600). */
  mode?: number;
  /** Keep a file's owner when replacing it (needs root to give it away). */
  owner?: { uid: number; gid: number };
}

/**
 * Replaces `path` so that readers and crashes see either the old or the new content, never a mix:
 * temp file in the same directory, fsync, rename, fsync the directory.
 */
export async function writeFileAtomic(path: string, content: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const staged = await stageFileAtomic(path, content, opts);
  await staged.commit();
  await staged.syncDir();
}

/** The temporary name of a staged file is `<path>.<pid>.<8 hex digits>` and this. */
const STAGED_SUFFIX = '.tmp';

/** A replacement of a file written and fsynced under a temporary name, not yet in place. */
export interface StagedFile {
  /** Renames it into place: readers see the new content from now on (durable after syncDir). */
  commit(): Promise<void>;
  /** Makes the rename durable (fsync of the directory). */
  syncDir(): Promise<void>;
  /** Removes the temporary file if it was never committed. */
  discard(): Promise<void>;
}

/**
 * writeFileAtomic in two halves: the slow part (write + fsync of a temporary file in the same directory) now,
 * the rename when the caller says. A switch inside a write-blocked window then pays a rename, not an fsync
 * (a median 5 ms here, 300 ms under another job's I/O).
 */
export async function stageFileAtomic(path: string, content: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<StagedFile> {
  const mode = opts.mode ?? 0o600;
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}${STAGED_SUFFIX}`;
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(content);
      // The umask may have narrowed the mode given to open().
      await fh.chmod(mode);
      if (opts.owner) await fh.chown(opts.owner.uid, opts.owner.gid);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  let committed = false;
  return {
    commit: async () => {
      try {
        await rename(tmp, path);
        committed = true;
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
    },
    syncDir: () => fsyncDir(dirname(path)),
    discard: async () => {
      if (!committed) await rm(tmp, { force: true });
    },
  };
}

/**
 * Removes the staged files of `path` left by processes killed between staging and commit (`<path>.<pid>.<hex>.tmp`,
 * a minute old and of a process that is gone: a live one renames or removes its own). They hold the file's content.
 */
export async function sweepStaleStagedFiles(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  const pidOf = (n: string) => (n.startsWith(prefix) && n.endsWith(STAGED_SUFFIX) ? /^(\d+)\.[0-9a-f]{8}$/.exec(n.slice(prefix.length, -STAGED_SUFFIX.length))?.[1] : undefined);
  const gone = (pid: number) => {
    try {
      process.kill(pid, 0);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ESRCH';
    }
  };
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const pid = pidOf(name);
    if (pid === undefined || !gone(Number(pid))) continue;
    const staged = join(dir, name);
    const st = await lstat(staged).catch(() => undefined);
    if (st?.isFile() && Date.now() - st.mtimeMs > 60_000) await rm(staged, { force: true }).catch(() => {});
  }
}
