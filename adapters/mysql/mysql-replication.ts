import type { Finding } from '../../src/engine/cutover-adapter.js';
import { UsageError } from '../../src/errors.js';
import type { TlsSettings } from '../../src/util/tls.js';
import { atLeast, flavorLabel, type MysqlFlavor } from './mysql-flavor.js';
import { quoteIdent, quoteString } from './mysql-sql.js';

/** Where the target's replica connection reads from: the source as the target reaches it. */
export interface ReplicaSource {
  host: string;
  port: number;
  user: string;
  password?: string;
  /** The source URL's TLS settings; the files are read by the target server, on its host. */
  tls: Pick<TlsSettings, 'mode' | 'verify' | 'ca' | 'cert' | 'key'>;
  /** The tool's own session to the source negotiated TLS: with PREFERRED the link then asks for it too. */
  tlsNegotiated?: boolean;
}

export function linkEncrypted(src: Pick<ReplicaSource, 'tls' | 'tlsNegotiated'>): boolean {
  const m = src.tls.mode;
  return m === 'require' || m === 'verify-ca' || m === 'verify-full' || ((m === 'prefer' || m === 'allow') && src.tlsNegotiated === true);
}

/**
 * MySQL 8 creates the per-plan account with caching_sha2_password, whose first login needs TLS or the source's
 * RSA key; the link asks for neither without TLS (see tlsClauses), so the replica would stop with error 2061 —
 * only after the whole dump. Refused before: undefined when the link will be encrypted or the plan brings its
 * own replication account.
 */
export function plaintextLinkFinding(source: MysqlFlavor, src: Pick<ReplicaSource, 'tls' | 'tlsNegotiated'>, ownAccount: boolean): Finding | undefined {
  if (source.kind !== 'mysql' || !atLeast(version(source), [8, 0, 0]) || ownAccount || linkEncrypted(src)) return undefined;
  return {
    severity: 'blocker',
    check: 'tls',
    object: 'replica link',
    message: `the source is MySQL ${source.version} and its ssl-mode (${src.tls.mode}) leaves the replica link in plaintext${src.tls.mode === 'disable' ? '' : ' (the source offered no TLS)'}: the job's caching_sha2_password account cannot log in over it`,
    why: 'the replica would stop with error 2061 after the whole initial copy',
    fix: 'turn on TLS on the source and use ssl-mode=REQUIRED (or stronger), or give source.replication an account (user, passwordEnv) that can log in over plaintext',
  };
}

function version(f: MysqlFlavor): readonly [number, number, number] {
  const [a = 0, b = 0, c = 0] = f.version.split('.').map(Number);
  return [a, b, c];
}

/** MySQL 8.0.23 renamed MASTER to SOURCE (CHANGE REPLICATION SOURCE TO); 8.4 removed the old spelling. */
function sourceSyntax(f: MysqlFlavor): boolean {
  return f.kind === 'mysql' && atLeast(version(f), [8, 0, 23]);
}

/** MySQL 8.0.22 renamed SLAVE to REPLICA in START/STOP/RESET/SHOW. */
function replicaSyntax(f: MysqlFlavor): boolean {
  return f.kind === 'mysql' && atLeast(version(f), [8, 0, 22]);
}

/**
 * The replica connection is named (MariaDB multi-source connection, MySQL channel) so the tool never touches a
 * replication the target already had, and cleanup removes exactly what the tool created.
 */
export function replicaConnectionName(planId: string): string {
  return `cutover_${planId.replace(/[^A-Za-z0-9_]/g, '_')}`.slice(0, 64);
}

function checkName(name: string): string {
  if (!/^[A-Za-z0-9_]{1,64}$/.test(name)) throw new UsageError(`bad replica connection name "${name}"`, 'use letters, digits and _ only (at most 64)');
  return name;
}

/** MariaDB: `'name'` before the verb's object; MySQL: `FOR CHANNEL 'name'` at the end. */
function channel(f: MysqlFlavor, name: string): { pre: string; post: string } {
  const q = quoteString(checkName(name));
  return f.kind === 'mariadb' ? { pre: ` ${q}`, post: '' } : { pre: '', post: ` FOR CHANNEL ${q}` };
}

/**
 * The TLS part of CHANGE MASTER / CHANGE REPLICATION SOURCE, with the source URL's ssl-mode meaning. REQUIRED and
 * stronger encrypt the link; a CA makes the replica verify the chain (measured on MariaDB 10.11: a wrong
 * MASTER_SSL_CA is refused with VERIFY_SERVER_CERT = 0), VERIFY_IDENTITY adds the host name. PREFERRED encrypts
 * it when the tool's own session found TLS, else leaves it in plaintext, as DISABLED does. Never GET_SOURCE_PUBLIC_KEY: over plaintext a man in the middle could
 * hand over his own key and read the password; over TLS it is not needed.
 */
function tlsClauses(prefix: 'MASTER' | 'SOURCE', src: ReplicaSource): { sql: string; params: unknown[] } {
  const t = src.tls;
  if (!linkEncrypted(src)) return { sql: `, ${prefix}_SSL = 0`, params: [] };
  // PREFERRED checks nothing: encrypted, unverified, as the tool's own session.
  if (t.mode === 'prefer' || t.mode === 'allow') return { sql: `, ${prefix}_SSL = 1, ${prefix}_SSL_VERIFY_SERVER_CERT = 0`, params: [] };
  const parts = [`${prefix}_SSL = 1`];
  const params: unknown[] = [];
  for (const [k, v] of [
    ['CA', t.ca],
    ['CERT', t.cert],
    ['KEY', t.key],
  ] as const) {
    if (v) {
      parts.push(`${prefix}_SSL_${k} = ?`);
      params.push(v);
    }
  }
  parts.push(`${prefix}_SSL_VERIFY_SERVER_CERT = ${t.verify === 'full' ? 1 : 0}`);
  return { sql: `, ${parts.join(', ')}`, params };
}

/**
 * Points the target's replica connection at the source, starting from the GTID position the dump loaded
 * (MariaDB gtid_slave_pos; MySQL gtid_executed/GTID_PURGED). The password is a parameter: mysql2 inlines it
 * client-side, so it reaches the server (and its replica config, unavoidably) but never argv, logs or errors.
 */
export function changeSourceSql(f: MysqlFlavor, name: string, src: ReplicaSource): { sql: string; params: unknown[] } {
  const ch = channel(f, name);
  const base: unknown[] = [src.host, src.port, src.user, src.password ?? ''];
  if (f.kind === 'mariadb') {
    const tls = tlsClauses('MASTER', src);
    return { sql: `CHANGE MASTER${ch.pre} TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos${tls.sql}`, params: [...base, ...tls.params] };
  }
  if (sourceSyntax(f)) {
    const tls = tlsClauses('SOURCE', src);
    return {
      sql: `CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = ?, SOURCE_USER = ?, SOURCE_PASSWORD = ?, SOURCE_AUTO_POSITION = 1${tls.sql}${ch.post}`,
      params: [...base, ...tls.params],
    };
  }
  const tls = tlsClauses('MASTER', src);
  return { sql: `CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_AUTO_POSITION = 1${tls.sql}${ch.post}`, params: [...base, ...tls.params] };
}

/**
 * Gives an existing connection a new password, nothing else: the position (MariaDB gtid_slave_pos, MySQL
 * auto-position) and every other setting stay. The password is a parameter, as in changeSourceSql.
 */
export function replicaPasswordSql(f: MysqlFlavor, name: string, password: string): { sql: string; params: unknown[] } {
  const ch = channel(f, name);
  if (f.kind === 'mariadb') return { sql: `CHANGE MASTER${ch.pre} TO MASTER_PASSWORD = ?`, params: [password] };
  if (sourceSyntax(f)) return { sql: `CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = ?${ch.post}`, params: [password] };
  return { sql: `CHANGE MASTER TO MASTER_PASSWORD = ?${ch.post}`, params: [password] };
}

/**
 * Limits the connection to the moved database(s) (a wave's stream: every joined tenant): a replica otherwise
 * applies the source's whole binary log, and events of databases the target does not have would stop it. With
 * ROW events the filter goes by the table's database, whatever the default database of the writing session was.
 * Both engines want the connection's applier stopped for it. null where channels cannot filter (MySQL before 8.0).
 */
export function replicaFilterSql(f: MysqlFlavor, name: string, databases: string | readonly string[]): { sql: string; params: unknown[] } | null {
  const list = typeof databases === 'string' ? [databases] : databases;
  const comma = list.find((d) => d.includes(','));
  if (comma !== undefined) throw new UsageError(`database name "${comma}" contains a comma`, 'replication filters are comma-separated lists: rename the database');
  if (f.kind === 'mariadb') return { sql: `SET GLOBAL ${quoteIdent(checkName(name))}.replicate_do_db = ?`, params: [list.join(',')] };
  if (!atLeast(version(f), [8, 0, 0])) return null;
  return { sql: `CHANGE REPLICATION FILTER REPLICATE_DO_DB = (${list.map(quoteIdent).join(', ')}) FOR CHANNEL ${quoteString(checkName(name))}`, params: [] };
}

/** Only the applier (SQL_THREAD) or both threads; MariaDB names the connection first, MySQL the channel last. */
export function startReplicaSql(f: MysqlFlavor, name: string, thread?: 'SQL_THREAD'): string {
  const ch = channel(f, name);
  return `START ${replicaSyntax(f) ? 'REPLICA' : 'SLAVE'}${ch.pre}${thread ? ` ${thread}` : ''}${ch.post}`;
}

export function stopReplicaSql(f: MysqlFlavor, name: string, thread?: 'SQL_THREAD'): string {
  const ch = channel(f, name);
  return `STOP ${replicaSyntax(f) ? 'REPLICA' : 'SLAVE'}${ch.pre}${thread ? ` ${thread}` : ''}${ch.post}`;
}

/**
 * Starts the connection so that its applier stops right after the GTID position given as the one parameter has
 * been applied. MariaDB `UNTIL master_gtid_pos` stops both threads there; MySQL `UNTIL SQL_AFTER_GTIDS` stops only
 * the applier (the receiver keeps reading; a multithreaded applier runs this one stretch single-threaded before
 * 8.3, with warning 1753): see untilReached.
 */
export function startReplicaUntilSql(f: MysqlFlavor, name: string): string {
  const ch = channel(f, name);
  return f.kind === 'mariadb' ? `START SLAVE${ch.pre} UNTIL master_gtid_pos = ?` : `START ${replicaSyntax(f) ? 'REPLICA' : 'SLAVE'} UNTIL SQL_AFTER_GTIDS = ?${ch.post}`;
}

/** Whether a connection started with startReplicaUntilSql has stopped at its position (errors are the caller's to read first). */
export function untilReached(f: MysqlFlavor, r: Pick<ReplicaStatus, 'ioRunning' | 'sqlRunning' | 'ioConnecting'>): boolean {
  return f.kind === 'mariadb' ? !r.ioRunning && !r.sqlRunning && !r.ioConnecting : !r.sqlRunning;
}

/**
 * Why the parallel copy cannot move a database between these servers (undefined: it can). MariaDB to MariaDB; MySQL
 * to MySQL when the replica can start at the copy's GTID position: 8.0+ targets add it to gtid_purged with `+`
 * (startPositionSql), the provider's procedures take binary log coordinates, and a wave's stream is 8.0+ only.
 * Elsewhere the one-stream dump sets gtid_purged itself.
 */
export function parallelCopyRefusal(source: MysqlFlavor, target: MysqlFlavor, providerOrWaveStream: boolean): string | undefined {
  if (source.kind === 'mariadb' && target.kind === 'mariadb') return undefined;
  if (source.kind === 'mysql' && target.kind === 'mysql' && (providerOrWaveStream || atLeast(version(target), [8, 0, 0]))) return undefined;
  return 'the parallel copy is for MariaDB to MariaDB and MySQL to MySQL 8.0+ (or into the provider\u2019s replication procedures)';
}

/**
 * Why a wave's tenants cannot share one replica connection between these servers; undefined when they can. The
 * GTIDs of the two engines do not mix, and MySQL needs 8.0 for a channel's own REPLICATE_DO_DB and gtid_purged '+'.
 */
export function waveStreamRefusal(source: MysqlFlavor, target: MysqlFlavor): string | undefined {
  if (source.kind !== target.kind) return `a wave's tenants share one replica connection only between servers of one kind (the source is ${flavorLabel(source)}, the target ${flavorLabel(target)})`;
  const old = [source, target].find((f) => f.kind === 'mysql' && !atLeast(version(f), [8, 0, 0]));
  if (old) return `a wave's shared replica connection needs MySQL 8.0 (a channel's own REPLICATE_DO_DB, gtid_purged '+'); a server is ${flavorLabel(old)}`;
  return undefined;
}

/** MySQL: the GTIDs of a set the server has not executed yet (what startPositionSql adds to gtid_purged). */
export const MYSQL_MISSING_GTIDS_SQL = 'SELECT GTID_SUBTRACT(?, @@GLOBAL.gtid_executed) AS g';

/**
 * Before a replica connection first starts: where it starts reading its source's binary log (the events after
 * `position`). MariaDB: gtid_slave_pos is the position itself (the connection asks for the events after it; one
 * gtid_slave_pos serves every connection of the server). MySQL (auto-position asks for every transaction the
 * replica has not executed): the position's transactions the replica never executed (`missing`, from
 * MYSQL_MISSING_GTIDS_SQL) are added to gtid_purged with `+` (8.0+), so only the later ones are sent.
 */
export function startPositionSql(f: MysqlFlavor, position: string, missing?: string): { sql: string; params: unknown[] }[] {
  if (f.kind === 'mariadb') return [{ sql: 'SET GLOBAL gtid_slave_pos = ?', params: [position] }];
  const add = (missing ?? '').replace(/\s+/g, '');
  return add ? [{ sql: 'SET GLOBAL gtid_purged = ?', params: [`+${add}`] }] : [];
}

/** Forgets the connection entirely (RESET ... ALL), relay logs included. */
export function resetReplicaAllSql(f: MysqlFlavor, name: string): string {
  const ch = channel(f, name);
  return f.kind === 'mariadb' ? `RESET SLAVE${ch.pre} ALL` : `RESET ${replicaSyntax(f) ? 'REPLICA' : 'SLAVE'} ALL${ch.post}`;
}

/** Every replica connection of the server, one row each (filter by name with readReplicaStatus). */
export function allReplicasStatusSql(f: MysqlFlavor): string {
  if (f.kind === 'mariadb') return 'SHOW ALL SLAVES STATUS';
  return replicaSyntax(f) ? 'SHOW REPLICA STATUS' : 'SHOW SLAVE STATUS';
}

/**
 * Waits on the target until it has applied `gtids`, at most `timeoutMs`. MariaDB MASTER_GTID_WAIT returns 0 or
 * -1 on timeout; MySQL WAIT_FOR_EXECUTED_GTID_SET returns 0 or 1 on timeout (vitess#14739). Both NULL on error.
 */
export function gtidWaitSql(f: MysqlFlavor, gtids: string, timeoutMs: number): { sql: string; params: unknown[] } {
  const seconds = Math.max(0.001, timeoutMs / 1000);
  return f.kind === 'mariadb' ? { sql: 'SELECT MASTER_GTID_WAIT(?, ?) AS r', params: [gtids, seconds] } : { sql: 'SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS r', params: [gtids, seconds] };
}

export function gtidWaitReached(v: unknown): boolean {
  return v !== null && v !== undefined && Number(v) === 0;
}

/**
 * Waits on the target until its replica connection `name` has executed the source's binary log up to `file:pos`, at
 * most `timeoutMs` (whole seconds, at least one: the functions take an integer timeout). MariaDB
 * MASTER_POS_WAIT(file, pos, timeout, connection); MySQL 8.0.26+ SOURCE_POS_WAIT, MASTER_POS_WAIT before (the
 * default channel ''). They return the events waited for (≥ 0), -1 on timeout, NULL when the applier is stopped.
 */
export function positionWaitSql(f: MysqlFlavor, file: string, pos: number, timeoutMs: number, name: string): { sql: string; params: unknown[] } {
  const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  if (f.kind === 'mariadb') return { sql: 'SELECT MASTER_POS_WAIT(?, ?, ?, ?) AS r', params: [file, pos, seconds, name] };
  return { sql: `SELECT ${atLeast(version(f), [8, 0, 26]) ? 'SOURCE_POS_WAIT' : 'MASTER_POS_WAIT'}(?, ?, ?, ?) AS r`, params: [file, pos, seconds, name] };
}

export function positionWaitReached(v: unknown): boolean {
  return v !== null && v !== undefined && Number(v) >= 0;
}

/** One replica connection as both engines report it (MariaDB/old MySQL say Master/Slave, MySQL 8.0.22+ Source/Replica). */
export interface ReplicaStatus {
  name: string;
  sourceHost: string;
  /** Master_User / Source_User: the account the connection replicates with. */
  sourceUser: string;
  ioRunning: boolean;
  sqlRunning: boolean;
  /** The source's binary log file and offset the applier has executed up to; '' before the first event. */
  execFile: string;
  execPos: number;
  secondsBehind: number | null;
  lastError: string;
  /** Last_IO_Errno / Last_SQL_Errno (0: none); 1236 on the IO side is the source's binary log lacking the position asked for. */
  ioErrno: number;
  sqlErrno: number;
  /** The IO thread is (re)connecting: `Connecting`, neither running nor stopped. */
  ioConnecting: boolean;
  /** Replicate_Do_DB: the databases the connection applies ('' : all). */
  doDb: string;
}

function pick(row: Record<string, unknown>, ...keys: string[]): unknown {
  for (const k of keys) if (row[k] !== undefined) return row[k];
  return undefined;
}

export function readReplicaStatus(row: Record<string, unknown>): ReplicaStatus {
  const str = (...keys: string[]) => String(pick(row, ...keys) ?? '');
  const behind = pick(row, 'Seconds_Behind_Master', 'Seconds_Behind_Source');
  return {
    name: str('Connection_name', 'Channel_Name', 'Channel_name'),
    sourceHost: str('Master_Host', 'Source_Host'),
    sourceUser: str('Master_User', 'Source_User'),
    ioRunning: /^yes$/i.test(str('Slave_IO_Running', 'Replica_IO_Running')),
    sqlRunning: /^yes$/i.test(str('Slave_SQL_Running', 'Replica_SQL_Running')),
    execFile: str('Relay_Master_Log_File', 'Relay_Source_Log_File'),
    execPos: Number(pick(row, 'Exec_Master_Log_Pos', 'Exec_Source_Log_Pos') ?? 0),
    secondsBehind: behind === null || behind === undefined || behind === '' ? null : Number(behind),
    lastError: [str('Last_IO_Error'), str('Last_SQL_Error')].filter(Boolean).join('; '),
    ioErrno: Number(pick(row, 'Last_IO_Errno') ?? 0) || 0,
    sqlErrno: Number(pick(row, 'Last_SQL_Errno') ?? 0) || 0,
    ioConnecting: /^connecting$/i.test(str('Slave_IO_Running', 'Replica_IO_Running')),
    doDb: str('Replicate_Do_DB'),
  };
}

export interface BinlogFile {
  name: string;
  size: number;
}

/**
 * Bytes of the source's binary log the target has not applied yet: from the applier's file and offset to the
 * source's current file and offset, summing the sizes of the files in between (SHOW BINARY LOGS).
 */
export function binlogBytesBehind(logs: readonly BinlogFile[], current: { file: string; pos: number }, exec: { file: string; pos: number }): number {
  if (exec.file === current.file) return Math.max(0, current.pos - exec.pos);
  const from = logs.findIndex((l) => l.name === exec.file);
  const to = logs.findIndex((l) => l.name === current.file);
  // The applier's file was purged or the list is stale: everything listed is behind.
  if (from < 0 || to < 0 || from > to) return logs.slice(0, Math.max(0, to)).reduce((n, l) => n + l.size, 0) + current.pos;
  let bytes = Math.max(0, logs[from]!.size - exec.pos);
  for (let i = from + 1; i < to; i++) bytes += logs[i]!.size;
  return bytes + current.pos;
}
