import { randomBytes } from 'node:crypto';
import { appendFile, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OperationError } from '../../src/errors.js';
import { readPidFile, terminateProcess } from '../../src/util/process.js';
import { isRoot, run } from '../../src/util/subprocess.js';
import { POSTGRES_OS_USER, findPostgresBinaries, type PostgresBinaries } from './postgres-binaries.js';
import { freePort } from '../../src/sandbox/ports.js';
import { DirSandbox, track } from '../../src/sandbox/registry.js';

export interface PostgresSandboxOptions {
  major?: number;
  /** Superuser password (TCP connections use scram-sha-256). Random when absent. */
  password?: string;
  /** Extra postgresql.conf settings. */
  settings?: Record<string, string | number>;
  /** Parent for the temp dir (default: the OS temp dir). */
  baseDir?: string;
  /** Start with ssl = on and this certificate and key (copied into the server's dir, key 0600). */
  tls?: { cert: string; key: string };
}

const BASE_SETTINGS: Record<string, string | number> = {
  listen_addresses: "'127.0.0.1'",
  wal_level: 'logical',
  max_wal_senders: 20,
  max_replication_slots: 20,
  max_logical_replication_workers: 8,
  max_worker_processes: 16,
  // Waves keep a PgBouncer pool per tenant database on both servers, plus the tool's own sessions.
  max_connections: 500,
  max_prepared_transactions: 10,
  // A throw-away server: durability on crash is not needed, speed is.
  fsync: 'off',
  full_page_writes: 'off',
  log_min_messages: 'warning',
};

/** The server refuses a key readable by others, and reads both files as its own user. */
async function installTls(dir: string, tls: { cert: string; key: string }, asUser: string | undefined): Promise<Record<string, string>> {
  const cert = join(dir, 'server.crt');
  const key = join(dir, 'server.key');
  await copyFile(tls.cert, cert);
  await copyFile(tls.key, key);
  await run('chmod', ['0600', key]);
  if (asUser) await run('chown', [asUser, cert, key]);
  return { ssl: 'on', ssl_cert_file: `'${cert}'`, ssl_key_file: `'${key}'` };
}

/** A throw-away PostgreSQL server: own temp dir, own port and socket dir, stopped and removed by stop(). */
export class PostgresSandbox extends DirSandbox {
  private constructor(
    readonly binaries: PostgresBinaries,
    readonly dir: string,
    readonly port: number,
    readonly password: string,
  ) {
    super();
  }

  get label(): string {
    return `postgres ${this.binaries.version} on 127.0.0.1:${this.port}`;
  }
  get dataDir(): string {
    return join(this.dir, 'data');
  }
  get socketDir(): string {
    return this.dir;
  }
  get host(): string {
    return '127.0.0.1';
  }
  get user(): string {
    return 'postgres';
  }

  /** A URL without the password: pass `password` separately (it never needs to be in a URL). */
  url(database = 'postgres', user = 'postgres'): string {
    return `postgres://${encodeURIComponent(user)}@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  /** A URL with the superuser password in it, for code paths that take one string. */
  urlWithPassword(database = 'postgres'): string {
    return `postgres://postgres:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  static async start(opts: PostgresSandboxOptions = {}): Promise<PostgresSandbox> {
    const binaries = await findPostgresBinaries(opts.major ?? 15);
    const dir = await mkdtemp(join(opts.baseDir ?? tmpdir(), `cutover-pg${binaries.major}-`));
    const password = opts.password ?? randomBytes(12).toString('hex');
    const asUser = isRoot() ? POSTGRES_OS_USER : undefined;
    try {
      if (asUser) await run('chown', [POSTGRES_OS_USER, dir]);
      const pwfile = join(dir, 'pwfile');
      await writeFile(pwfile, password + '\n', { mode: 0o600 });
      if (asUser) await run('chown', [POSTGRES_OS_USER, pwfile]);
      await run(join(binaries.binDir, 'initdb'), ['-D', join(dir, 'data'), '-U', 'postgres', `--pwfile=${pwfile}`, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'], {
        asUser,
        cwd: dir,
        timeoutMs: 120_000,
      });
      await rm(pwfile, { force: true });
      const tlsSettings = opts.tls ? await installTls(dir, opts.tls, asUser) : {};
      let lastError: unknown;
      for (let attempt = 0; attempt < 4; attempt++) {
        const port = await freePort();
        const sandbox = new PostgresSandbox(binaries, dir, port, password);
        try {
          await sandbox.boot({ ...BASE_SETTINGS, ...tlsSettings, ...opts.settings }, asUser);
          track(sandbox);
          return sandbox;
        } catch (e) {
          lastError = e;
          if (!/already in use|could not bind|could not create listen socket/i.test(await sandbox.log())) break;
        }
      }
      throw lastError;
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  private async boot(settings: Record<string, string | number>, asUser: string | undefined): Promise<void> {
    const conf = Object.entries({ ...settings, port: this.port, unix_socket_directories: `'${this.socketDir}'` })
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n');
    await appendFile(join(this.dataDir, 'postgresql.conf'), `\n# cutover sandbox\n${conf}\n`);
    await run(join(this.binaries.binDir, 'pg_ctl'), ['-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start'], {
      asUser,
      cwd: this.dir,
      timeoutMs: 90_000,
    }).catch(async (e: unknown) => {
      throw new OperationError(`sandbox PostgreSQL ${this.binaries.version} did not start: ${(await this.log()).split('\n').slice(-5).join(' | ') || String(e)}`);
    });
  }

  async log(): Promise<string> {
    return readFile(join(this.dir, 'server.log'), 'utf8').catch(() => '');
  }

  /** A shell command that stops this server and removes its directory (for sandboxes kept running). */
  stopCommand(): string {
    const ctl = `${join(this.binaries.binDir, 'pg_ctl')} -D ${this.dataDir} -m fast stop`;
    return `${isRoot() ? `runuser -u ${POSTGRES_OS_USER} -- ` : ''}${ctl} && rm -rf ${this.dir}`;
  }

  /** Restart in place (same port and data), e.g. to test what survives a restart. */
  async restart(): Promise<void> {
    await run(join(this.binaries.binDir, 'pg_ctl'), ['-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', '-m', 'fast', 'restart'], {
      asUser: isRoot() ? POSTGRES_OS_USER : undefined,
      cwd: this.dir,
      timeoutMs: 90_000,
    });
  }

  /** SIGQUIT is PostgreSQL's immediate shutdown: no checkpoint, since the data is thrown away next. */
  protected async kill(): Promise<void> {
    const pid = await readPidFile(join(this.dataDir, 'postmaster.pid'));
    if (pid) await terminateProcess(pid, 'SIGQUIT', 15_000);
  }
}
