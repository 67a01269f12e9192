import type { DbEndpoint } from '../../src/util/db-url.js';
import { findClientBinary } from '../../src/sandbox/binaries.js';
import { pipeline, run, type PipeSide } from '../../src/util/subprocess.js';

/** Connection for libpq child tools entirely through env: nothing about the server, least of all the password, in argv. */
export function libpqEnv(ep: DbEndpoint, database: string, extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    PGHOST: ep.host,
    PGPORT: String(ep.port),
    PGUSER: ep.user,
    PGDATABASE: database,
    PGPASSWORD: ep.password,
    PGAPPNAME: 'cutover',
    PGCONNECT_TIMEOUT: '10',
    ...(ep.params.sslmode ? { PGSSLMODE: ep.params.sslmode } : {}),
    ...extra,
  };
}

/** Keyword/value conninfo (for CREATE SUBSCRIPTION). Values are quoted per libpq rules. */
export function conninfo(ep: DbEndpoint, database: string, withPassword: boolean): string {
  const q = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const parts = [`host=${q(ep.host)}`, `port=${ep.port}`, `user=${q(ep.user)}`, `dbname=${q(database)}`, `application_name='cutover'`];
  if (withPassword && ep.password) parts.push(`password=${q(ep.password)}`);
  if (ep.params.sslmode) parts.push(`sslmode=${q(ep.params.sslmode)}`);
  return parts.join(' ');
}

export async function pgDumpMajor(): Promise<number> {
  const r = await run(await findClientBinary('pg_dump'), ['--version']);
  return Number(/(\d+)/.exec(r.stdout)?.[1] ?? 0);
}

/** `pg_dump <args> | psql` from one server's database into another's, stopping at the first error. */
export async function dumpInto(
  source: DbEndpoint,
  sourceDb: string,
  target: DbEndpoint,
  targetDb: string,
  dumpArgs: string[],
  targetOptions = '',
): Promise<void> {
  const producer: PipeSide = { cmd: await findClientBinary('pg_dump'), args: dumpArgs, env: libpqEnv(source, sourceDb) };
  const consumer: PipeSide = {
    cmd: await findClientBinary('psql'),
    args: ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', '-'],
    env: libpqEnv(target, targetDb, targetOptions ? { PGOPTIONS: targetOptions } : {}),
  };
  await pipeline(producer, consumer, { secrets: [source.password, target.password].filter((s): s is string => !!s) });
}
