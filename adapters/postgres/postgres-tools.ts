import { access, constants, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { clientBinaryMajor, findClientBinary } from './postgres-binaries.js';
import { openNameless, pipeline, run, type PipeSide } from '../../src/util/subprocess.js';

/** The URL's TLS settings under libpq's keyword names, for a child tool's env or a conninfo. */
function libpqTls(ep: DbEndpoint): [keyword: string, env: string, value: string][] {
  const t = ep.tls;
  const out: [string, string, string][] = [['sslmode', 'PGSSLMODE', t.mode]];
  if (t.ca) out.push(['sslrootcert', 'PGSSLROOTCERT', t.ca]);
  if (t.cert) out.push(['sslcert', 'PGSSLCERT', t.cert]);
  if (t.key) out.push(['sslkey', 'PGSSLKEY', t.key]);
  if (t.crl) out.push(['sslcrl', 'PGSSLCRL', t.crl]);
  return out;
}

/**
 * Connection for libpq child tools entirely through env: nothing about the server, least of all the password, in
 * argv. The TLS settings are always explicit, so the child trusts exactly what the tool's own connections trust
 * (never a PGSSLROOTCERT or ~/.postgresql/root.crt it would otherwise pick up).
 */
export function libpqEnv(ep: DbEndpoint, database: string, extra: Record<string, string> = {}): Record<string, string | undefined> {
  const tls = Object.fromEntries(libpqTls(ep).map(([, env, v]) => [env, v]));
  return {
    PGSSLROOTCERT: undefined,
    PGSSLCERT: undefined,
    PGSSLKEY: undefined,
    PGSSLCRL: undefined,
    ...tls,
    PGHOST: ep.host,
    PGPORT: String(ep.port),
    PGUSER: ep.user,
    PGDATABASE: database,
    PGPASSWORD: ep.password,
    PGAPPNAME: 'cutover',
    PGCONNECT_TIMEOUT: '10',
    ...extra,
  };
}

/** A keyword/value conninfo value, quoted per libpq rules. */
export function quoteConninfoValue(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * Keyword/value conninfo (for CREATE SUBSCRIPTION). The TLS settings go as the URL gave them: the target server
 * opens this connection, so the file paths are read on the target's host, by its server user.
 */
export function conninfo(ep: DbEndpoint, database: string, withPassword: boolean): string {
  const q = quoteConninfoValue;
  const parts = [`host=${q(ep.host)}`, `port=${ep.port}`, `user=${q(ep.user)}`, `dbname=${q(database)}`, `application_name='cutover'`];
  if (withPassword && ep.password) parts.push(`password=${q(ep.password)}`);
  for (const [k, , v] of libpqTls(ep)) parts.push(`${k}=${q(v)}`);
  return parts.join(' ');
}

/** The client programs of one copy, from one installation. */
export interface ClientTools {
  /** pg_dump's major (0 when it cannot tell). */
  major: number;
  pgDump: string;
  pgRestore: string;
  psql: string;
}

/**
 * pg_dump at least the source's major (it refuses newer servers; the source's own major where installed), and
 * pg_restore and psql beside it: pg_restore reads only archives of its own version or older.
 */
export async function clientTools(sourceMajor: number): Promise<ClientTools> {
  const pgDump = await findClientBinary('pg_dump', { minMajor: sourceMajor });
  const beside = async (name: string) =>
    access(join(dirname(pgDump), name), constants.X_OK).then(
      () => join(dirname(pgDump), name),
      () => findClientBinary(name, { minMajor: sourceMajor }),
    );
  const [major, pgRestore, psql] = await Promise.all([clientBinaryMajor(pgDump), beside('pg_restore'), beside('psql')]);
  return { major: major ?? 0, pgDump, pgRestore, psql };
}

/**
 * `pg_dump <args> | psql` (plain) or `pg_dump -Fc -Z0 <args> | pg_restore` (custom) from one server's database
 * into another's, stopping at the first error. The custom format restores data faster here (see
 * scripts/bench/copy-pg.mjs); it cannot be parallel (-j needs a file, not a pipe).
 */
export async function dumpInto(
  tools: ClientTools,
  source: DbEndpoint,
  sourceDb: string,
  target: DbEndpoint,
  targetDb: string,
  dumpArgs: string[],
  targetOptions = '',
  format: 'plain' | 'custom' = 'plain',
): Promise<void> {
  const producer: PipeSide = { cmd: tools.pgDump, args: format === 'custom' ? ['-Fc', '-Z0', ...dumpArgs] : dumpArgs, env: libpqEnv(source, sourceDb) };
  const consumerEnv = libpqEnv(target, targetDb, targetOptions ? { PGOPTIONS: targetOptions } : {});
  const consumer: PipeSide =
    format === 'custom'
      ? // pg_restore only connects with -d; a conninfo naming just the database keeps a name with '=' from being read as one.
        { cmd: tools.pgRestore, args: ['--exit-on-error', '--no-owner', '-d', `dbname=${quoteConninfoValue(targetDb)}`], env: consumerEnv }
      : { cmd: tools.psql, args: ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'], env: consumerEnv };
  await pipeline(producer, consumer, { secrets: [source.password, target.password].filter((s): s is string => !!s) });
}

/** A section of the source's schema dumped to a private temporary file (`pg_dump -Fc`), to restore in parallel. */
export interface SectionDump {
  /**
   * `pg_restore -j <jobs>` of the dump into the target database. With `clean`, every object is dropped if it
   * exists before it is made, so a restore that was cut short can run again.
   */
  restore(target: DbEndpoint, opts: { jobs: number; targetOptions: string; clean: boolean }): Promise<void>;
  /** Closes the (nameless) file, which frees its space; no restore after it. */
  discard(): Promise<void>;
}

/**
 * `pg_dump -Fc <args>` into a private temporary file: parallel restore needs a file. The file has no name from the
 * start (created, opened, unlinked): pg_dump and pg_restore reach it as their fd 3 (/dev/fd/3, which pg_restore's
 * parallel workers inherit; Linux reopens it from the fd with an offset of its own), so a process killed mid-sync
 * leaves no dump behind.
 */
export async function dumpSection(tools: ClientTools, source: DbEndpoint, database: string, dumpArgs: string[]): Promise<SectionDump> {
  const file = await openNameless('cutover-restore-', 'section.dump', (path) => open(path, 'wx+', 0o600));
  let discarded = false;
  const discard = async () => {
    discarded = true;
    await file.close().catch(() => {});
  };
  try {
    await run(tools.pgDump, ['-Fc', '-Z0', '-f', '/dev/fd/3', ...dumpArgs], { env: libpqEnv(source, database), secrets: [source.password].filter((s): s is string => !!s), fds: [file.fd] });
  } catch (e) {
    await discard();
    throw e;
  }
  return {
    async restore(target, opts) {
      if (discarded) throw new Error('dumpSection: restore after discard');
      await run(tools.pgRestore, ['--exit-on-error', '--no-owner', '-j', String(opts.jobs), ...(opts.clean ? ['--clean', '--if-exists'] : []), '-d', `dbname=${quoteConninfoValue(database)}`, '/dev/fd/3'], {
        env: libpqEnv(target, database, { PGOPTIONS: opts.targetOptions }),
        secrets: [target.password].filter((s): s is string => !!s),
        fds: [file.fd],
      });
    },
    discard,
  };
}
