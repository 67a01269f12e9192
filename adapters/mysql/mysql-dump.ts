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
 * A consistent snapshot of one database with its GTID position.
 * MariaDB: `--gtid --master-data=1` ends the dump with `SET GLOBAL gtid_slave_pos='<snapshot>'` (measured, see
 * FACTS.md) and starts it with `CHANGE MASTER TO MASTER_USE_GTID=slave_pos` for the default connection.
 * MySQL: `--set-gtid-purged=ON` puts the snapshot's GTID set into the target's gtid_purged, which
 * SOURCE_AUTO_POSITION then starts from. Routines, events and triggers travel with the schema.
 */
export function dumpArgs(f: MysqlFlavor, ep: DbEndpoint, database: string): string[] {
  const common = ['--single-transaction', '--quick', '--routines', '--events', '--triggers', '--hex-blob', '--default-character-set=utf8mb4', '--databases', database];
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
export async function dumpInto(f: { source: MysqlFlavor; target: MysqlFlavor }, source: DbEndpoint, target: DbEndpoint, database: string, timeoutMs: number): Promise<void> {
  await pipeline(
    { cmd: dumpCommand(f.source), args: dumpArgs(f.source, source, database), env: pwdEnv(source) },
    { cmd: loadCommand(f.target), args: loadArgs(target), env: pwdEnv(target) },
    { secrets: [source.password, target.password].filter((p): p is string => p !== undefined), timeoutMs },
  );
}
