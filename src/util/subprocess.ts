import { execa, type Options as ExecaOptions } from 'execa';
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

/** The one way this tool starts a child process: env-only credentials, redacted errors. */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, argv] = commandFor(cmd, args, opts.asUser);
  const execaOpts: ExecaOptions = {
    env: childEnv(opts.env),
    extendEnv: false,
    reject: false,
    stripFinalNewline: true,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
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
