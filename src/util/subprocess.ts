import { execa, type Options as ExecaOptions } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, lstat, mkdtemp, open, readdir, rm, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { OperationError } from '../errors.js';
import { redactText } from './redact.js';

/**
 * What a child inherits from this process's environment: locale, paths and identity, nothing else. The rest
 * (PGPASSWORD, MYSQL_PWD, every plan `passwordEnv` variable, cloud keys) stays here; a child that needs a
 * credential gets exactly its own through `env`. `PGPASSFILE` and `HOME` (for ~/.pgpass, ~/.my.cnf) name files
 * keyed by server and user, so they cannot hand one server's password to another.
 */
const INHERITED = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'TERM', 'LD_LIBRARY_PATH', 'PGPASSFILE', 'PGSERVICEFILE', 'PGSYSCONFDIR']);

/** The environment of a child: the allow-listed part of ours plus what the caller hands it. */
export function childEnv(extra: Record<string, string | undefined> = {}, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(from)) if (v !== undefined && (INHERITED.has(k) || k.startsWith('LC_'))) env[k] = v;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export interface RunOptions {
  /** The child's own environment on top of the allow-listed one: credentials go here, never into args. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
  /** Values to scrub from any message built from the child's output. */
  secrets?: readonly string[];
  /** Run as this OS user (via runuser) when we are root — PostgreSQL refuses to run as root. */
  asUser?: string;
  /** Do not throw on a non-zero exit; the caller inspects `exitCode`. */
  reject?: boolean;
  /**
   * Open files the child gets as its fd 3, 4, … (it names them /dev/fd/3, …: on Linux a reopen with its own
   * offset). Not with `input` or `asUser` (another user cannot reopen our private file).
   */
  fds?: readonly number[];
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** `[cmd, args]` with a runuser prefix when running as root and a user is asked for. */
export function commandFor(cmd: string, args: readonly string[], asUser?: string): [string, string[]] {
  if (asUser && isRoot()) return ['runuser', ['-u', asUser, '--', cmd, ...args]];
  return [cmd, [...args]];
}

/** stdio passing open files on as fd 3, 4, …: execa takes any open fd there, its types only name 3 to 9. */
function extraFds(fds: readonly number[]): ExecaOptions['stdio'] {
  return ['ignore', 'pipe', 'pipe', ...fds] as unknown as ExecaOptions['stdio'];
}

/** The one way this tool starts a child process: env-only credentials, redacted errors. */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  if (opts.fds?.length && (opts.input !== undefined || opts.asUser)) throw new TypeError('run: fds go with neither input nor asUser');
  const [file, argv] = commandFor(cmd, args, opts.asUser);
  const execaOpts: ExecaOptions = {
    env: childEnv(opts.env),
    extendEnv: false,
    reject: false,
    stripFinalNewline: true,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : opts.fds?.length ? { stdio: extraFds(opts.fds) } : { stdin: 'ignore' as const }),
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
  };
  const r = await execa(file, argv, execaOpts);
  const result: RunResult = {
    exitCode: typeof r.exitCode === 'number' ? r.exitCode : -1,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
  };
  if (r.failed && opts.reject !== false) {
    const reason = r.timedOut ? `timed out after ${opts.timeoutMs}ms` : r.exitCode === undefined ? `could not start (${r.code ?? r.shortMessage})` : `exited ${r.exitCode}`;
    const detail = (result.stderr || result.stdout).split('\n').filter(Boolean).slice(-3).join(' | ');
    throw new OperationError(redactText(`${cmd} ${reason}${detail ? `: ${detail}` : ''}`, opts.secrets ?? []));
  }
  return result;
}

export interface PipeSide {
  cmd: string;
  args: readonly string[];
  env?: Record<string, string | undefined>;
}

/**
 * `producer | consumer` with no shell in between (so nothing is quoted wrong and no credential is in argv).
 * Both exit codes matter: a dump that dies half-way must not look like a clean restore.
 */
export async function pipeline(producer: PipeSide, consumer: PipeSide, opts: { secrets?: readonly string[]; timeoutMs?: number } = {}): Promise<void> {
  const base = { reject: false, extendEnv: false, stripFinalNewline: true, ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}) } as const;
  // execa's own pipe: the producer's stdout has exactly one reader (two readers of one stream can stall).
  const p = execa(producer.cmd, [...producer.args], { ...base, env: childEnv(producer.env), stdin: 'ignore', buffer: { stdout: false } });
  const cr = await p.pipe(consumer.cmd, [...consumer.args], { ...base, env: childEnv(consumer.env) });
  const pr = await p;
  for (const [side, r] of [
    [producer, pr],
    [consumer, cr],
  ] as const) {
    if (r.failed) {
      const detail = String(r.stderr ?? '')
        .split('\n')
        .filter(Boolean)
        .slice(-3)
        .join(' | ');
      throw new OperationError(redactText(`${side.cmd} ${r.timedOut ? 'timed out' : `exited ${r.exitCode}`}${detail ? `: ${detail}` : ''}`, opts.secrets ?? []));
    }
  }
}

function failure(cmd: string, code: number | null, signal: NodeJS.Signals | null, stderr: string, secrets: readonly string[]): OperationError {
  const detail = stderr.split('\n').filter(Boolean).slice(-3).join(' | ');
  return new OperationError(redactText(`${cmd} ${signal ? `killed by ${signal}` : `exited ${code}`}${detail ? `: ${detail}` : ''}`, secrets));
}

/**
 * startGatedPipeline's `bigBuffers`: the producer's stdout and the consumer's stdin get stdio buffers of this size
 * (coreutils' stdbuf), instead of glibc's 4 KB for a pipe. Measured relaying 3 M rows of binary COPY between two
 * psql: system time 0.86 s -> 0.40 s, user time about the same.
 */
const PIPE_BUFFER = '1M';
/** coreutils' stdbuf, looked up once; undefined where there is none (the pipeline runs without it). */
let stdbufFound: Promise<string | undefined> | undefined;
/** util-linux's setpriv, looked up once, where it has --pdeathsig (2.33+; RHEL 8's 2.32 has not); else undefined. */
let setprivFound: Promise<string | undefined> | undefined;

async function setprivWithPdeathsig(): Promise<string | undefined> {
  const setpriv = await findOnPath('setpriv');
  if (!setpriv) return undefined;
  const probe = await run(setpriv, ['--pdeathsig', 'KILL', '--', 'true'], { reject: false });
  return probe.exitCode === 0 ? setpriv : undefined;
}

/** $PATH's absolute entries: a relative one would resolve against whatever directory the tool runs in. */
export function searchPathDirs(path = process.env.PATH ?? ''): string[] {
  return path.split(delimiter).filter((d) => d !== '' && isAbsolute(d));
}

/** The first executable `name` in $PATH's absolute entries; undefined where there is none. */
export async function findOnPath(name: string, path?: string): Promise<string | undefined> {
  for (const d of searchPathDirs(path)) {
    const file = join(d, name);
    if (
      await access(file, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return file;
  }
  return undefined;
}

const swept = new Set<string>();
/** An empty directory older than this is no live call's: a call removes its own within milliseconds. */
const STALE_DIR_MS = 60_000;

/**
 * A process killed between openNameless's mkdtemp and its removal (a few ms) leaves the directory, empty or holding
 * what `make` was making (a mkfifo already forked finishes after its parent died): the first call of each process
 * removes this user's directories of `prefix` older than a minute that hold nothing or only `name` (or `name.*`) as
 * FIFOs or empty files. Anything else is left alone (rmdir removes only an empty directory).
 */
async function sweepStaleDirs(prefix: string, name: string): Promise<void> {
  const uid = process.getuid?.();
  const names = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const n of names.filter((n) => n.startsWith(prefix))) {
    const dir = join(tmpdir(), n);
    const st = await lstat(dir).catch(() => undefined);
    if (!st?.isDirectory() || (uid !== undefined && st.uid !== uid) || Date.now() - st.mtimeMs < STALE_DIR_MS) continue;
    for (const left of await readdir(dir).catch(() => [] as string[])) {
      if (left !== name && !left.startsWith(`${name}.`)) continue;
      const st = await lstat(join(dir, left)).catch(() => undefined);
      if (st && (st.isFIFO() || (st.isFile() && st.size === 0))) await unlink(join(dir, left)).catch(() => {});
    }
    await rmdir(dir).catch(() => {});
  }
}

/**
 * What `make` opens at `name` in a fresh private temporary directory, the directory removed as soon as it returns
 * (or throws): the handles live on without a name, nobody else can open them, and nothing is left behind in the
 * temporary directory whatever happens to this process afterwards (children reach them as /dev/fd/N). Only a kill
 * within its first milliseconds leaves the directory behind, which the next process's first call removes.
 */
export async function openNameless<T>(prefix: string, name: string, make: (path: string) => Promise<T>): Promise<T> {
  if (!swept.has(prefix)) {
    swept.add(prefix);
    await sweepStaleDirs(prefix, name);
  }
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await make(join(dir, name));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** FIFOs without a name, `names` in one directory made by one mkfifo, both ends of each open (the writer read-write, so neither open waits for the other). */
function namelessFifos(names: readonly [string, ...string[]]): Promise<Array<{ writer: FileHandle; reader: FileHandle }>> {
  return openNameless('cutover-gate-', names[0], async (first) => {
    const paths = names.map((n) => join(dirname(first), n));
    await run('mkfifo', ['-m', '600', ...paths]);
    const opened: FileHandle[] = [];
    try {
      const fifos = [];
      for (const path of paths) {
        const writer = await open(path, 'r+');
        opened.push(writer);
        const reader = await open(path, 'r');
        opened.push(reader);
        fifos.push({ writer, reader });
      }
      return fifos;
    } catch (e) {
      await Promise.all(opened.map((h) => h.close().catch(() => {})));
      throw e;
    }
  });
}

/** A side of a gated pipeline: `args(scriptPath)` names the script it reads (e.g. psql `-f path`), or ignores it. */
export interface ScriptedSide extends Omit<PipeSide, 'args'> {
  args: (scriptPath: string) => readonly string[];
}

/** What a started gated pipeline is given to do, see startGatedPipeline. */
export interface GateScript {
  /**
   * The producer's whole script, which must end it (psql: `\q`): its FIFO stays open for writing until the end, as a
   * child that has not opened it yet would wait in open() for a writer. None: the producer's args say it all.
   */
  producer?: string;
  /** The consumer's script up to its commit, written at once. */
  prelude: string;
  /** The rest, written only once the producer has exited 0. */
  commit: string;
}

/** A producer | consumer pair already started and waiting for its scripts. */
export interface GatedPipeline {
  /** Hands both their scripts; resolves to the end of what the consumer printed on stdout (its last 4000 characters). */
  run(script: GateScript): Promise<string>;
  /** Ends a pair that will not be used (both killed; nothing was loaded). */
  discard(): Promise<void>;
}

/**
 * `producer | consumer` where each also reads a script from a FIFO of its own (`args(path)` names it, e.g. psql
 * `-f path`). Started ahead of its work, so both can log in while the caller still prepares it; `run` then writes
 * the producer's script and the consumer's `prelude` at once, and the consumer's `commit` only once the producer
 * has exited 0. A producer that dies part-way ends its stream like a finished one; the consumer is then killed
 * before it reads any `commit`, so nothing it loaded survives. The FIFOs have no name by the time the children
 * start: each reaches its own as fd 3 (path /dev/fd/3, which Linux reopens from the fd; psql opens its script by
 * name, and /dev/fd/N of the socket Node hands a child as a pipe cannot be opened, a FIFO's can). Nothing is left in
 * the temporary directory, and no other process can open the FIFOs by a name. If this process is killed, both
 * children get SIGKILL from the kernel (util-linux setpriv --pdeathsig, where it has that option): a consumer that
 * had not opened its script yet would otherwise wait in open() for a writer that never comes; one that had sees end
 * of file without `commit` and rolls back either way. (Without setpriv, or for a consumer's own children, which do
 * not inherit the death signal, such an open can still wait.)
 */
export async function startGatedPipeline(producer: ScriptedSide, consumer: ScriptedSide, opts: { secrets?: readonly string[]; bigBuffers?: boolean } = {}): Promise<GatedPipeline> {
  const secrets = opts.secrets ?? [];
  const [cScript, pScript] = (await namelessFifos(['script', 'script.producer'])) as [{ writer: FileHandle; reader: FileHandle }, { writer: FileHandle; reader: FileHandle }];
  // The last writer gone: a reader the kill did not reach (a child of a shell consumer) sees end of file instead
  // of waiting for a line that never comes.
  const closeAll = () => Promise.all([pScript, cScript].flatMap((f) => [f.reader.close().catch(() => {}), f.writer.close().catch(() => {})]));
  let p: ChildProcess;
  let c: ChildProcess;
  try {
    const stdbuf = opts.bigBuffers ? await (stdbufFound ??= findOnPath('stdbuf')) : undefined;
    const setpriv = await (setprivFound ??= setprivWithPdeathsig());
    const command = (cmd: string, args: readonly string[], buffer: string): [string, string[]] => {
      const argv = [...(stdbuf ? [stdbuf, buffer] : []), cmd, ...args];
      return setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', ...argv]] : [argv[0]!, argv.slice(1)];
    };
    const [pf, pa] = command(producer.cmd, producer.args('/dev/fd/3'), `-o${PIPE_BUFFER}`);
    const [cf, ca] = command(consumer.cmd, consumer.args('/dev/fd/3'), `-i${PIPE_BUFFER}`);
    p = spawn(pf, pa, { env: childEnv(producer.env), stdio: ['ignore', 'pipe', 'pipe', pScript.reader.fd] });
    try {
      c = spawn(cf, ca, { env: childEnv(consumer.env), stdio: [p.stdout!, 'pipe', 'pipe', cScript.reader.fd] });
    } catch (e) {
      // A producer nobody reads would hold its session open.
      p.kill('SIGKILL');
      throw e;
    }
  } catch (e) {
    await closeAll();
    throw e;
  }
  // The consumer holds its own copy of the pipe: ours must not read (and steal) any of the data.
  p.stdout!.destroy();
  const errs = ['', ''];
  let out = '';
  // Piped (stdio[1], stdio[2]): never null; a fourth stdio entry only widens the type.
  c.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
  p.stderr!.on('data', (d: Buffer) => (errs[0] = (errs[0]! + d.toString()).slice(-4000)));
  c.stderr!.on('data', (d: Buffer) => (errs[1] = (errs[1]! + d.toString()).slice(-4000)));
  const exited = (child: ChildProcess) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('error', () => resolve({ code: -1, signal: null }));
      child.on('close', (code, signal) => resolve({ code, signal }));
    });
  const [pDone, cDone] = [exited(p), exited(c)];
  // A consumer's own exit, without waiting for its stdio to close (a killed shell's children may hold it).
  const cExit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => c.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    async run(script) {
      try {
        // A child that died before reading its script leaves a write of more than the pipe holds waiting for good: the
        // write races the producer's exit (closeAll then ends it).
        const write = async (fifo: { writer: FileHandle }, text: string) => {
          const writing = fifo.writer.write(text);
          writing.catch(() => {});
          await Promise.race([writing, pDone]);
        };
        if (script.producer !== undefined) await write(pScript, script.producer);
        await write(cScript, script.prelude);
        const pr = await pDone;
        if (pr.code === 0) await cScript.writer.write(script.commit);
        else c.kill('SIGKILL');
        const cr = pr.code === 0 ? await cDone : await Promise.race([cDone, cExit]);
        // A consumer that failed first leaves its producer writing into a closed pipe: the consumer's error is the cause.
        if (pr.code !== 0 && !(pr.signal === 'SIGPIPE' && cr.code !== 0)) throw failure(producer.cmd, pr.code, pr.signal, errs[0]!, secrets);
        if (cr.code !== 0) throw failure(consumer.cmd, cr.code, cr.signal, errs[1]!, secrets);
        return out;
      } finally {
        await closeAll();
      }
    },
    async discard() {
      p.kill('SIGKILL');
      c.kill('SIGKILL');
      await Promise.all([pDone, Promise.race([cDone, cExit])]);
      await closeAll();
    },
  };
}

/**
 * Starts a child in its own process group that outlives this process (a Ctrl-C or a kill of this process leaves
 * it running), and returns the first line it prints; its output is not read after that.
 */
export async function spawnDetached(side: PipeSide, opts: { timeoutMs?: number; secrets?: readonly string[] } = {}): Promise<{ pid: number; firstLine: string }> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const [f, a] = commandFor(side.cmd, side.args);
  const child = spawn(f, a, { env: childEnv(side.env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  try {
    return await new Promise<{ pid: number; firstLine: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new OperationError(`${side.cmd} printed nothing within ${timeoutMs}ms`)), timeoutMs);
      child.on('error', (e) => reject(new OperationError(`${side.cmd} could not start (${e.message})`)));
      child.on('close', (code, signal) => reject(failure(side.cmd, code, signal, err, opts.secrets ?? [])));
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const nl = out.indexOf('\n');
        if (nl >= 0) {
          clearTimeout(timer);
          resolve({ pid: child.pid!, firstLine: out.slice(0, nl) });
        }
      });
    });
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  } finally {
    child.removeAllListeners();
    child.stdout.destroy();
    child.stderr.destroy();
    child.unref();
  }
}
