import type { ReverseState } from '../../src/engine/cutover-adapter.js';
import { atLeast, type MysqlFlavor } from './mysql-flavor.js';
import { startReplicaSql, stopReplicaSql, type ReplicaStatus } from './mysql-replication.js';

/**
 * Reverse replication on MySQL/MariaDB: after the switch the old source becomes a replica of the new primary, so
 * `cutover revert` can go back without losing a write. Its replica connection is made on the old source between
 * the detach and the open, while nothing writes the target: the target's GTID position read then is exactly the
 * switch position, and the old source starts from it (MariaDB: gtid_slave_pos, MASTER_USE_GTID = slave_pos;
 * MySQL: the target's transactions before the switch added to gtid_purged, then auto-position). The replica's
 * applier writes through read_only (and through a schema fence, which revokes grants), so the old source stays
 * read-only to applications while it follows.
 */

/** The target's GTID position and whether it has a binary log at all, read at the switch. */
export function switchPositionSql(f: MysqlFlavor): string {
  return `SELECT @@GLOBAL.log_bin AS b, @@GLOBAL.${f.gtidVariable} AS g`;
}

/**
 * Why the old source cannot follow the new primary by this method, checked before anything is made; undefined
 * when it can. MariaDB keeps one gtid_slave_pos for every replica connection of a server: setting it for the
 * reverse path would move the position of the old source's other connections. MySQL adds to gtid_purged with
 * `+`, which arrived in 8.0.
 */
export function reverseRefusal(oldSource: MysqlFlavor, otherConnections: readonly string[]): string | undefined {
  if (oldSource.kind === 'mariadb' && otherConnections.length > 0)
    return `the old source has replica connection(s) of its own (${otherConnections.map((n) => n || 'default connection').join(', ')}): MariaDB keeps one gtid_slave_pos for all of them, and the reverse path would move theirs`;
  if (oldSource.kind === 'mysql' && !atLeast(triple(oldSource.version), [8, 0, 0])) return `the old source is MySQL ${oldSource.version}: the reverse path needs 8.0 (SET GLOBAL gtid_purged = '+...')`;
  return undefined;
}

function triple(v: string): readonly [number, number, number] {
  const [a = 0, b = 0, c = 0] = v.split('.').map(Number);
  return [a, b, c];
}

/** ER_MASTER_FATAL_ERROR_READING_BINLOG: the source no longer has (or never had) the position the replica asks for. */
const ER_SOURCE_BINLOG = 1236;

export interface StreamReading {
  /** The replica connection (MariaDB connection name / MySQL channel). */
  name: string;
  /** The replica side's flavor: the statement the fix names. */
  replica: MysqlFlavor;
  status: ReplicaStatus | undefined;
  /** The per-plan replication account on the primary (the replica logs in with it). */
  accountExists: boolean;
  account: string;
  lagBytes: number | null;
  /** The database the connection must be limited to. */
  database: string;
}

/**
 * How the stream stands, from the replica's status and the primary's account: `broken` names what the operator
 * sees (IO or SQL error, a stopped thread, the connection or account gone, the primary's binary log purged).
 */
export function streamVerdict(r: StreamReading): ReverseState {
  const base = { name: r.name, lagBytes: r.lagBytes, lagSeconds: r.status?.secondsBehind ?? null };
  const st = r.status;
  const start = `${startReplicaSql(r.replica, r.name)} on the old source`;
  if (!st && !r.accountExists) return { ...base, state: 'absent', why: `neither the replica connection ${r.name} on the old source nor its account ${r.account} on the new primary exists` };
  if (!st) return { ...base, state: 'broken', why: `the replica connection ${r.name} on the old source is gone` };
  if (!r.accountExists) return { ...base, state: 'broken', why: `the replication account ${r.account} on the new primary is gone (the old source cannot log in to it again)` };
  if (st.doDb !== r.database)
    // MariaDB keeps a connection's replicate_do_db in memory only: a restart of the old source drops it, and the
    // connection would then apply every database the new primary writes.
    return {
      ...base,
      state: 'broken',
      why: `the replica connection ${r.name} on the old source is no longer limited to ${r.database} (replicate_do_db is '${st.doDb}'; a restart of the old source drops it)`,
      fix: `on the old source: ${stopReplicaSql(r.replica, r.name)}; ${r.replica.kind === 'mariadb' ? `SET GLOBAL \`${r.name}\`.replicate_do_db = '${r.database}'` : `CHANGE REPLICATION FILTER REPLICATE_DO_DB = (\`${r.database}\`) FOR CHANNEL '${r.name}'`}; ${startReplicaSql(r.replica, r.name)}; check that nothing of another database was applied, then retry`,
    };
  if (st.ioErrno === ER_SOURCE_BINLOG) return { ...base, state: 'broken', why: `the new primary no longer has the binary log the old source needs (purged; ${st.lastError || `error ${ER_SOURCE_BINLOG}`})` };
  if (st.lastError && !(st.ioRunning && st.sqlRunning))
    return {
      ...base,
      state: 'broken',
      why: `the replica connection ${r.name} on the old source stopped: ${st.lastError}`,
      fix: `once the cause is fixed, ${start} and retry when \`cutover status\` shows it following`,
    };
  if (!st.sqlRunning || !(st.ioRunning || st.ioConnecting))
    return {
      ...base,
      state: 'broken',
      why: `the replica connection ${r.name} on the old source is stopped (IO thread ${st.ioRunning ? 'running' : 'stopped'}, SQL thread ${st.sqlRunning ? 'running' : 'stopped'})`,
      fix: `${start} and retry when \`cutover status\` shows it following`,
    };
  return { ...base, state: 'following', ...(st.ioConnecting ? { why: 'its IO thread is connecting to the new primary' } : {}) };
}
