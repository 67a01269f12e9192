import { readPidFile, terminateProcess } from '../../src/util/process.js';
import { quoteConnValue } from './pgbouncer-ini.js';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { OperationError, PreflightError } from '../../src/errors.js';
import { isRoot, run } from '../../src/util/subprocess.js';
import { POSTGRES_OS_USER } from '../postgres/postgres-binaries.js';
import { freePort } from '../../src/sandbox/ports.js';
import { DirSandbox, track } from '../../src/sandbox/registry.js';

export const PGBOUNCER_BINARY = '/usr/sbin/pgbouncer';
export const PGBOUNCER_ADMIN_USER = 'pgbouncer_admin';

export interface PgBouncerBackend {
  host: string;
  port: number;
  /** Server database name (default: the entry name). */
  dbname?: string;
}

export interface PgBouncerSandboxOptions {
  /** `[databases]` entries: name → server. */
  databases: Record<string, PgBouncerBackend>;
  /** Client users and their passwords (also used towards the servers). */
  users: Record<string, string>;
  poolMode?: 'session' | 'transaction' | 'statement';
  authType?: 'scram-sha-256' | 'md5';
  /** Parent for the temp dir (default: the OS temp dir). */
  baseDir?: string;
  /** Extra [pgbouncer] settings. */
  settings?: Record<string, string | number>;
}

/** Throws PreflightError naming the package when PgBouncer is not installed. */
export async function findPgBouncer(): Promise<string> {
  try {
    await access(PGBOUNCER_BINARY, constants.X_OK);
    return PGBOUNCER_BINARY;
  } catch {
    throw new PreflightError('preflight', `${PGBOUNCER_BINARY} not found`, 'install it: apt-get install -y pgbouncer');
  }
}

function userlistLine(user: string, password: string): string {
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  return `${q(user)} ${q(password)}`;
}

/** A throw-away PgBouncer: own temp dir, ini, userlist and port; stopped and removed by stop(). */
export class PgBouncerSandbox extends DirSandbox {
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly adminPassword: string,
  ) {
    super();
  }

  get label(): string {
    return `pgbouncer on 127.0.0.1:${this.port}`;
  }
  get host(): string {
    return '127.0.0.1';
  }
  get iniPath(): string {
    return join(this.dir, 'pgbouncer.ini');
  }
  get adminUser(): string {
    return PGBOUNCER_ADMIN_USER;
  }

  /** Admin console URL without the password (pass `adminPassword` separately). */
  adminUrl(): string {
    return `postgres://${PGBOUNCER_ADMIN_USER}@127.0.0.1:${this.port}/pgbouncer`;
  }

  static async start(opts: PgBouncerSandboxOptions): Promise<PgBouncerSandbox> {
    const binary = await findPgBouncer();
    const dir = await mkdtemp(join(opts.baseDir ?? tmpdir(), 'cutover-pgbouncer-'));
    const asUser = isRoot() ? POSTGRES_OS_USER : undefined;
    const adminPassword = randomBytes(12).toString('hex');
    try {
      const users = { ...opts.users, [PGBOUNCER_ADMIN_USER]: adminPassword };
      await writeFile(
        join(dir, 'userlist.txt'),
        Object.entries(users)
          .map(([u, p]) => userlistLine(u, p))
          .join('\n') + '\n',
        { mode: 0o600 },
      );
      if (asUser) await run('chown', ['-R', POSTGRES_OS_USER, dir]);
      let lastError: unknown;
      for (let attempt = 0; attempt < 4; attempt++) {
        const port = await freePort();
        const sandbox = new PgBouncerSandbox(dir, port, adminPassword);
        await sandbox.writeIni(opts, port, asUser);
        try {
          await run(binary, ['-d', sandbox.iniPath], { asUser, cwd: dir, timeoutMs: 30_000 });
          await sandbox.waitReady();
          track(sandbox);
          return sandbox;
        } catch (e) {
          lastError = e;
          await sandbox.kill();
          if (!/Address already in use|bind/i.test(await sandbox.log())) break;
        }
      }
      throw new OperationError(`sandbox PgBouncer did not start: ${(await readFile(join(dir, 'pgbouncer.log'), 'utf8').catch(() => '')).split('\n').slice(-4).join(' | ') || String(lastError)}`);
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  private async writeIni(opts: PgBouncerSandboxOptions, port: number, asUser: string | undefined): Promise<void> {
    const databases = Object.entries(opts.databases).map(([name, b]) => `${name} = host=${b.host} port=${b.port} dbname=${quoteConnValue(b.dbname ?? name)}`);
    const settings: Record<string, string | number> = {
      listen_addr: '127.0.0.1',
      listen_port: port,
      unix_socket_dir: this.dir,
      auth_type: opts.authType ?? 'scram-sha-256',
      auth_file: join(this.dir, 'userlist.txt'),
      admin_users: PGBOUNCER_ADMIN_USER,
      pool_mode: opts.poolMode ?? 'transaction',
      logfile: join(this.dir, 'pgbouncer.log'),
      pidfile: join(this.dir, 'pgbouncer.pid'),
      // Clients such as JDBC send it; harmless for others.
      ignore_startup_parameters: 'extra_float_digits',
      max_client_conn: 200,
      default_pool_size: 20,
      ...opts.settings,
    };
    const ini = ['; cutover sandbox', '[databases]', ...databases, '', '[pgbouncer]', ...Object.entries(settings).map(([k, v]) => `${k} = ${v}`), ''].join('\n');
    await writeFile(this.iniPath, ini, { mode: 0o640 });
    if (asUser) await run('chown', [POSTGRES_OS_USER, this.iniPath]);
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 10_000;
    let last: unknown;
    while (Date.now() < deadline) {
      const c = new pg.Client({ host: this.host, port: this.port, user: PGBOUNCER_ADMIN_USER, password: this.adminPassword, database: 'pgbouncer', connectionTimeoutMillis: 1000 });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.query('SHOW VERSION');
        return;
      } catch (e) {
        last = e;
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        await c.end().catch(() => {});
      }
    }
    throw new OperationError(`sandbox PgBouncer on port ${this.port} did not accept connections: ${last instanceof Error ? last.message : String(last)}`);
  }

  async log(): Promise<string> {
    return readFile(join(this.dir, 'pgbouncer.log'), 'utf8').catch(() => '');
  }

  /** SIGTERM is PgBouncer's immediate shutdown; SIGKILL if it lingers. */
  protected async kill(): Promise<void> {
    const pid = await readPidFile(join(this.dir, 'pgbouncer.pid'));
    if (pid) await terminateProcess(pid, 'SIGTERM', 5_000);
  }
}
