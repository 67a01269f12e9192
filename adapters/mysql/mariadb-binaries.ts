import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { PreflightError } from '../../src/errors.js';
import { run } from '../../src/util/subprocess.js';

export interface MariadbBinaries {
  version: string;
  /** The server (mariadbd). */
  server: string;
  /** mariadb-install-db, which creates a fresh data directory. */
  installDb: string;
}

/** The user the server runs as when we are root: mariadbd refuses to run as root without --user. */
export const MARIADB_OS_USER = 'mysql';

const SERVER_CANDIDATES = ['/usr/sbin/mariadbd', '/usr/bin/mariadbd', '/usr/local/sbin/mariadbd', '/usr/local/bin/mariadbd'];
const INSTALL_DB_CANDIDATES = ['/usr/bin/mariadb-install-db', '/usr/local/bin/mariadb-install-db', '/usr/scripts/mariadb-install-db'];

async function firstExecutable(paths: readonly string[]): Promise<string | undefined> {
  for (const p of paths) {
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/**
 * Finds the Debian `mariadb-server` binaries. Throws PreflightError naming the package when they are missing.
 */
export async function findMariadbBinaries(): Promise<MariadbBinaries> {
  const server = await firstExecutable(SERVER_CANDIDATES);
  const installDb = await firstExecutable(INSTALL_DB_CANDIDATES);
  if (!server || !installDb) {
    throw new PreflightError('preflight', 'no MariaDB server binaries found (mariadbd, mariadb-install-db)', 'install them: apt-get install -y mariadb-server');
  }
  const r = await run(server, ['--version'], { reject: false, timeoutMs: 30_000 });
  const m = /Ver\s+(\d+\.\d+\.\d+)/.exec(r.stdout);
  if (r.exitCode !== 0 || !m) {
    throw new PreflightError('preflight', `cannot run ${server} --version: ${(r.stderr || r.stdout).split('\n')[0] ?? ''}`, 'reinstall it: apt-get install -y --reinstall mariadb-server');
  }
  return { version: m[1]!, server, installDb };
}
