import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { OperationError } from '../../src/errors.js';
import { isRoot, run } from '../../src/util/subprocess.js';
import { MARIADB_OS_USER, findMariadbBinaries, type MariadbBinaries } from './mariadb-binaries.js';
import { freePort } from '../../src/sandbox/ports.js';
import { DirSandbox, track } from '../../src/sandbox/registry.js';

export interface MariadbSandboxOptions {
  /** root password (for TCP and socket logins). Random when absent. */
  password?: string;
  /** Extra server options, as `--key=value` without the dashes. */
  settings?: Record<string, string | number>;
  /** Parent for the temp dir (default: the OS temp dir). */
  baseDir?: string;
  /** server_id for the binary log (default: random). */
  serverId?: number;
  /** Start with TLS on: this certificate and key (copied into the server's dir, key 0600). */
  tls?: { cert: string; key: string };
}

const BASE_SETTINGS: Record<string, string | number> = {
  'bind-address': '127.0.0.1',
  'skip-name-resolve': 1,
  'binlog-format': 'ROW',
  'max-connections': 200,
  'innodb-buffer-pool-size': '64M',
  // A throw-away server: durability on crash is not needed, speed is.
  'innodb-flush-log-at-trx-commit': 2,
  'sync-binlog': 0,
  'innodb-doublewrite': 0,
};

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;

function sqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** The sandbox's port answered with another server: start again on another port. */
class PortTakenError extends Error {}

/**
 * A throw-away MariaDB server: own temp datadir, socket and port, binary log on (ROW), a root password for
 * TCP logins. Never touches the machine's own server. Stopped and removed by stop().
 */
export class MariadbSandbox extends DirSandbox {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly binaries: MariadbBinaries,
    readonly dir: string,
    readonly port: number,
    readonly password: string,
    readonly serverId: number,
    private readonly settings: Record<string, string | number>,
  ) {
    super();
  }

  get label(): string {
    return `mariadb ${this.binaries.version} on 127.0.0.1:${this.port}`;
  }
  get dataDir(): string {
    return join(this.dir, 'data');
  }
  get socket(): string {
    return join(this.dir, 'mysqld.sock');
  }
  get host(): string {
    return '127.0.0.1';
  }
  get user(): string {
    return 'root';
  }

  /** A URL without the password: pass `password` separately (MYSQL_PWD), it never needs to be in a URL. */
  url(database?: string, user = 'root'): string {
    return `mariadb://${encodeURIComponent(user)}@127.0.0.1:${this.port}/${database ? encodeURIComponent(database) : ''}`;
  }

  static async start(opts: MariadbSandboxOptions = {}): Promise<MariadbSandbox> {
    const binaries = await findMariadbBinaries();
    const dir = await mkdtemp(join(opts.baseDir ?? tmpdir(), 'cutover-mariadb-'));
    const password = opts.password ?? randomBytes(12).toString('hex');
    const serverId = opts.serverId ?? 1 + (randomBytes(3).readUIntBE(0, 3) % 1_000_000);
    const asRoot = isRoot();
    try {
      await mkdir(join(dir, 'data'));
      await mkdir(join(dir, 'tmp'));
      const tlsSettings: Record<string, string> = {};
      if (opts.tls) {
        await copyFile(opts.tls.cert, join(dir, 'server.crt'));
        await copyFile(opts.tls.key, join(dir, 'server.key'));
        await run('chmod', ['0600', join(dir, 'server.key')]);
        Object.assign(tlsSettings, { 'ssl-cert': join(dir, 'server.crt'), 'ssl-key': join(dir, 'server.key') });
      }
      if (asRoot) await run('chown', ['-R', `${MARIADB_OS_USER}:`, dir]);
      await run(
        binaries.installDb,
        [
          '--no-defaults',
          `--datadir=${join(dir, 'data')}`,
          '--auth-root-authentication-method=normal',
          '--skip-test-db',
          // Concurrent bootstraps sharing /tmp collide on temporary table names: each gets its own.
          `--tmpdir=${join(dir, 'tmp')}`,
          ...(asRoot ? [`--user=${MARIADB_OS_USER}`] : []),
        ],
        { cwd: dir, timeoutMs: 120_000 },
      );
      // The password goes in through a 0600 init file read at the first boot only, never through argv.
      const initFile = join(dir, 'init.sql');
      await writeFile(
        initFile,
        [
          `ALTER USER 'root'@'localhost' IDENTIFIED BY ${sqlString(password)};`,
          // mariadb-install-db also creates root@<hostname> and anonymous accounts; keep only what tests expect.
          `DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost'));`,
          `FLUSH PRIVILEGES;`,
          `CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY ${sqlString(password)};`,
          `GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      if (asRoot) await run('chown', [`${MARIADB_OS_USER}:`, initFile]);
      let lastError: unknown;
      for (let attempt = 0; attempt < 4; attempt++) {
        const port = await freePort();
        const sandbox = new MariadbSandbox(binaries, dir, port, password, serverId, { ...BASE_SETTINGS, ...tlsSettings, ...opts.settings });
        try {
          await sandbox.boot(initFile);
          await rm(initFile, { force: true });
          track(sandbox);
          return sandbox;
        } catch (e) {
          lastError = e;
          await sandbox.kill();
          if (!(e instanceof PortTakenError) && !/Address already in use|Bind on TCP\/IP port/i.test(await sandbox.log())) break;
        }
      }
      throw lastError;
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  private args(initFile?: string): string[] {
    const settings: Record<string, string | number> = {
      ...this.settings,
      datadir: this.dataDir,
      socket: this.socket,
      port: this.port,
      'pid-file': join(this.dir, 'mariadbd.pid'),
      'log-error': join(this.dir, 'server.log'),
      tmpdir: join(this.dir, 'tmp'),
      'log-bin': join(this.dataDir, 'binlog'),
      'server-id': this.serverId,
    };
    return ['--no-defaults', ...Object.entries(settings).map(([k, v]) => `--${k}=${v}`), ...(isRoot() ? [`--user=${MARIADB_OS_USER}`] : []), ...(initFile ? [`--init-file=${initFile}`] : [])];
  }

  /**
   * mariadbd has no daemon mode: it runs as our child. Its output goes to the error log, so a failed start
   * can be explained from there.
   */
  private async boot(initFile?: string): Promise<void> {
    const out = await open(join(this.dir, 'stdout.log'), 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.binaries.server, this.args(initFile), { cwd: this.dir, stdio: ['ignore', out.fd, out.fd] });
    } finally {
      await out.close();
    }
    this.child = child;
    let exitCode: number | null | undefined;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        exitCode = code;
        resolve();
      });
      child.once('error', () => {
        exitCode = -1;
        resolve();
      });
    });
    child.unref();
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exitCode !== undefined) {
        throw new OperationError(`sandbox MariaDB ${this.binaries.version} exited during start (code ${exitCode}): ${await this.logTail()}`);
      }
      try {
        await this.probe();
        return;
      } catch (e) {
        if (e instanceof PortTakenError) throw e;
        if (Date.now() > deadline) {
          throw new OperationError(`sandbox MariaDB ${this.binaries.version} did not accept connections within ${START_TIMEOUT_MS / 1000}s: ${(e as Error).message}; ${await this.logTail()}`);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * One login as root over TCP, bounded by a timer that also keeps the event loop alive while we wait. The server
   * that answers must be this one (its datadir): two sandboxes started at once can be handed the same free port,
   * and the second one's probe then reached the first server (same password) while its own failed to bind.
   */
  private async probe(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const attempt = mysql.createConnection({ host: this.host, port: this.port, user: 'root', password: this.password, connectTimeout: 2_000 });
    try {
      const c = await Promise.race([
        attempt,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer within 3s')), 3_000);
        }),
      ]);
      try {
        const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@datadir AS d');
        const answered = String(rows[0]?.d ?? '').replace(/\/+$/, '');
        if (answered !== this.dataDir.replace(/\/+$/, '')) throw new PortTakenError(`port ${this.port} is another server's (datadir ${answered})`);
      } finally {
        await c.end();
      }
    } finally {
      clearTimeout(timer);
      attempt.then(
        (c) => c.destroy(),
        () => {},
      );
    }
  }

  async log(): Promise<string> {
    return readFile(join(this.dir, 'server.log'), 'utf8').catch(() => '');
  }

  private async logTail(): Promise<string> {
    return (await this.log()).split('\n').filter(Boolean).slice(-5).join(' | ');
  }

  /** SIGTERM is mariadbd's clean shutdown; SIGKILL only when it does not finish in time. */
  protected async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    // The child is unref'd so it never holds the process open; this ref'd timer keeps us waiting for it.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), STOP_TIMEOUT_MS);
    });
    const how = await Promise.race([this.exited.then(() => 'exited' as const), timeout]);
    clearTimeout(timer);
    if (how === 'timeout') {
      child.kill('SIGKILL');
      const poll = setInterval(() => {}, 100);
      await this.exited.finally(() => clearInterval(poll));
    }
  }

  /** Restart in place (same port and data), e.g. to show what a restart keeps and what it drops. */
  async restart(): Promise<void> {
    await this.kill();
    await this.boot();
  }
}
