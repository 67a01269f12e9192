import type { Finding } from '../../src/engine/cutover-adapter.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { pipeline, run } from '../../src/util/subprocess.js';
import type { MysqlFlavor } from './mysql-flavor.js';

/**
 * Which TLS options a command-line client takes: MySQL's take --ssl-mode; MariaDB's (Debian's mysqldump and
 * mysql are MariaDB's too) take --ssl, --ssl-verify-server-cert and reject --ssl-mode.
 */
export type ClientKind = 'mariadb' | 'mysql';

const kinds = new Map<string, Promise<ClientKind>>();

/** Asks the binary itself: the name says nothing (Debian links mysqldump to mariadb-dump). */
export function clientKind(cmd: string): Promise<ClientKind> {
  let k = kinds.get(cmd);
  if (!k) {
    k = run(cmd, ['--version']).then((r) => (/MariaDB/i.test(r.stdout) ? 'mariadb' : 'mysql'));
    kinds.set(cmd, k);
  }
  return k;
}

/**
 * The URL's ssl-mode as client options (measured with MariaDB 10.11's client, see docs/tls.md): --ssl-ca alone
 * verifies the chain but not the host name (VERIFY_CA); --ssl-verify-server-cert adds the host name and is the
 * only option that refuses a server without TLS. --ssl alone falls back to plaintext silently.
 */
export function clientTlsArgs(ep: DbEndpoint, kind: ClientKind): string[] {
  const t = ep.tls;
  if (ep.host.startsWith('/') || ep.params.socket) return [];
  const files = [...(t.ca ? [`--ssl-ca=${t.ca}`] : []), ...(t.cert ? [`--ssl-cert=${t.cert}`] : []), ...(t.key ? [`--ssl-key=${t.key}`] : [])];
  if (kind === 'mysql') {
    const mode = { disable: 'DISABLED', allow: 'PREFERRED', prefer: 'PREFERRED', require: 'REQUIRED', 'verify-ca': 'VERIFY_CA', 'verify-full': 'VERIFY_IDENTITY' }[t.mode];
    return t.mode === 'prefer' ? [] : [`--ssl-mode=${mode}`, ...(t.mode === 'disable' ? [] : files)];
  }
  switch (t.mode) {
    case 'disable':
      return ['--skip-ssl'];
    case 'verify-full':
      return ['--ssl', ...files, '--ssl-verify-server-cert'];
    case 'verify-ca':
    case 'require':
      return ['--ssl', ...files];
    default:
      return [];
  }
}

/**
 * A MariaDB client given REQUIRED or VERIFY_CA has only --ssl, which silently falls back to plaintext when the
 * server offers no TLS: the tool's own connection refuses that, the dump or load client does not.
 */
export function plaintextFallbackFinding(ep: DbEndpoint, kind: ClientKind, cmd: string, side: 'source' | 'target'): Finding | undefined {
  if (kind !== 'mariadb' || ep.host.startsWith('/') || ep.params.socket) return undefined;
  if (ep.tls.mode !== 'require' && ep.tls.mode !== 'verify-ca') return undefined;
  return {
    severity: 'warning',
    check: 'tls',
    object: `${side} (${cmd})`,
    message: `${cmd} is a MariaDB client: with ${ep.tls.spelled} it gets --ssl, which falls back to plaintext if the ${side} stops offering TLS`,
    why: 'the copy would then travel unencrypted although the URL asks for TLS',
    fix: 'use ssl-mode=VERIFY_IDENTITY (the client then adds --ssl-verify-server-cert, which refuses plaintext), or put a MySQL client first on PATH',
  };
}

/** Connection flags for the command-line clients. The password never goes here: it travels in MYSQL_PWD. */
export function clientConnArgs(ep: DbEndpoint, kind: ClientKind = 'mariadb'): string[] {
  const socket = ep.host.startsWith('/') ? ep.host : ep.params.socket;
  const where = socket ? [`--socket=${socket}`, '--protocol=SOCKET'] : [`--host=${ep.host}`, `--port=${ep.port}`, '--protocol=TCP'];
  return [...where, `--user=${ep.user}`, ...clientTlsArgs(ep, kind)];
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
export type DumpKind = 'snapshot' | 'schema' | 'copy' | 'tables' | 'triggers';

/**
 * snapshot, MariaDB: `--gtid --master-data=1` ends the dump with `SET GLOBAL gtid_slave_pos='<snapshot>'`
 * (measured, see FACTS.md) and starts it with `CHANGE MASTER TO MASTER_USE_GTID=slave_pos` for the default
 * connection. MySQL: `--set-gtid-purged=ON` puts the snapshot's GTID set into the target's gtid_purged, which
 * SOURCE_AUTO_POSITION then starts from. schema and copy carry no position: `--master-data` would take
 * FLUSH TABLES WITH READ LOCK, a server-wide stall for every other tenant, and on MySQL a second load's
 * gtid_purged would fail once the target has executed anything. Routines, events and triggers travel with the
 * schema; every table is dropped and created again, so a copy can be loaded over an earlier one. `tables` and
 * `triggers` are the two halves of the schema around the parallel copy (mysql-snapshot-copy.ts): tables, views,
 * routines and events before the rows, triggers after them (a trigger present during the load would fire for
 * every copied row).
 */
export function dumpArgs(f: MysqlFlavor, ep: DbEndpoint, database: string, kind: DumpKind = 'snapshot', client: ClientKind = 'mariadb'): string[] {
  const objects = {
    tables: ['--no-data', '--routines', '--events', '--skip-triggers'],
    triggers: ['--no-data', '--no-create-info', '--no-create-db', '--skip-routines', '--skip-events', '--triggers', '--add-drop-trigger'],
  };
  const what = kind === 'tables' || kind === 'triggers' ? objects[kind] : ['--routines', '--events', '--triggers', ...(kind === 'schema' ? ['--no-data'] : [])];
  const common = ['--single-transaction', '--quick', ...what, '--hex-blob', '--default-character-set=utf8mb4', '--databases', database];
  const conn = clientConnArgs(ep, client);
  if (kind !== 'snapshot') return [...conn, ...(f.kind === 'mysql' ? ['--set-gtid-purged=OFF'] : []), ...common];
  if (f.kind === 'mariadb') return [...conn, '--gtid', '--master-data=1', ...common];
  return [...conn, '--set-gtid-purged=ON', ...common];
}

/** Loads a dump; binary-safe, and a failing statement stops the load (no --force). */
export function loadArgs(ep: DbEndpoint, client: ClientKind = 'mariadb'): string[] {
  return [...clientConnArgs(ep, client), '--binary-mode', '--default-character-set=utf8mb4'];
}

function pwdEnv(ep: DbEndpoint): Record<string, string | undefined> {
  // An explicit empty value: no password must not fall back to one inherited from the environment.
  return { MYSQL_PWD: ep.password ?? '' };
}

/** `dump | load` with no shell and no credential in argv; both exit codes checked. */
export async function dumpInto(f: { source: MysqlFlavor; target: MysqlFlavor }, source: DbEndpoint, target: DbEndpoint, database: string, timeoutMs: number, kind: DumpKind = 'snapshot'): Promise<void> {
  const dump = dumpCommand(f.source);
  const load = loadCommand(f.target);
  await pipeline(
    { cmd: dump, args: dumpArgs(f.source, source, database, kind, await clientKind(dump)), env: pwdEnv(source) },
    { cmd: load, args: loadArgs(target, await clientKind(load)), env: pwdEnv(target) },
    { secrets: [source.password, target.password].filter((p): p is string => p !== undefined), timeoutMs },
  );
}
