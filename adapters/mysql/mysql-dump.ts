import type { DbEndpoint } from '../../src/util/db-url.js';
import { pipeline } from '../../src/util/subprocess.js';
import type { MysqlFlavor } from './mysql-flavor.js';

/** Connection flags for the command-line clients. The password never goes here: it travels in MYSQL_PWD. */
export function clientConnArgs(ep: DbEndpoint): string[] {
  const socket = ep.host.startsWith('/') ? ep.host : ep.params.socket;
  const where = socket ? [`--socket=${socket}`, '--protocol=SOCKET'] : [`--host=${ep.host}`, `--port=${ep.port}`, '--protocol=TCP'];
  return [...where, `--user=${ep.user}`];
}

/** The dump tool that matches the source: its GTID options differ between the two engines. */
export function dumpCommand(f: MysqlFlavor): string {
  return f.kind === 'mariadb' ? 'mariadb-dump' : 'mysqldump';
}

export function loadCommand(f: MysqlFlavor): string {
  return f.kind === 'mariadb' ? 'mariadb' : 'mysql';
}

/**
 * What a dump is for: `snapshot` — the initial copy of `method: replication`, a consistent snapshot with its
 * GTID position for the replica to start from; `schema` — tables, routines, events and triggers without rows
 * (the pre-copy of `method: dump`, outside the fence window); `copy` — the whole database while the source is
 * fenced (`method: dump`), with no replication position and no global lock.
 */
export type DumpKind = 'snapshot' | 'schema' | 'copy';

/**
 * snapshot, MariaDB: `--gtid --master-data=1` ends the dump with `SET GLOBAL gtid_slave_pos='<snapshot>'`
 * (measured, see FACTS.md) and starts it with `CHANGE MASTER TO MASTER_USE_GTID=slave_pos` for the default
 * connection. MySQL: `--set-gtid-purged=ON` puts the snapshot's GTID set into the target's gtid_purged, which
 * SOURCE_AUTO_POSITION then starts from. schema and copy carry no position: `--master-data` would take
 * FLUSH TABLES WITH READ LOCK, a server-wide stall for every other tenant, and on MySQL a second load's
 * gtid_purged would fail once the target has executed anything. Routines, events and triggers travel with the
 * schema; every table is dropped and created again, so a copy can be loaded over an earlier one.
 */
export function dumpArgs(f: MysqlFlavor, ep: DbEndpoint, database: string, kind: DumpKind = 'snapshot'): string[] {
  const common = ['--single-transaction', '--quick', '--routines', '--events', '--triggers', '--hex-blob', '--default-character-set=utf8mb4', ...(kind === 'schema' ? ['--no-data'] : []), '--databases', database];
  if (kind !== 'snapshot') return [...clientConnArgs(ep), ...(f.kind === 'mysql' ? ['--set-gtid-purged=OFF'] : []), ...common];
  if (f.kind === 'mariadb') return [...clientConnArgs(ep), '--gtid', '--master-data=1', ...common];
  return [...clientConnArgs(ep), '--set-gtid-purged=ON', ...common];
}

/** Loads a dump; binary-safe, and a failing statement stops the load (no --force). */
export function loadArgs(ep: DbEndpoint): string[] {
  return [...clientConnArgs(ep), '--binary-mode', '--default-character-set=utf8mb4'];
}

function pwdEnv(ep: DbEndpoint): Record<string, string | undefined> {
  // An explicit empty value: no password must not fall back to one inherited from the environment.
  return { MYSQL_PWD: ep.password ?? '' };
}

/** `dump | load` with no shell and no credential in argv; both exit codes checked. */
export async function dumpInto(f: { source: MysqlFlavor; target: MysqlFlavor }, source: DbEndpoint, target: DbEndpoint, database: string, timeoutMs: number, kind: DumpKind = 'snapshot'): Promise<void> {
  await pipeline(
    { cmd: dumpCommand(f.source), args: dumpArgs(f.source, source, database, kind), env: pwdEnv(source) },
    { cmd: loadCommand(f.target), args: loadArgs(target), env: pwdEnv(target) },
    { secrets: [source.password, target.password].filter((p): p is string => p !== undefined), timeoutMs },
  );
}
