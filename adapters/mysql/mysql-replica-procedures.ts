import type { RowDataPacket } from 'mysql2/promise';
import type { MysqlFlavor } from './mysql-flavor.js';
import { changeSourceSql, linkEncrypted, resetReplicaAllSql, startReplicaSql, stopReplicaSql, type ReplicaSource } from './mysql-replication.js';
import type { Query } from './mysql-sessions.js';

/**
 * The statements that set up, start, stop and remove the target's replica link. Self-managed servers and
 * MariaDB with REPLICATION SLAVE ADMIN use the SQL statements (mysql-replication.ts); Amazon RDS for MySQL /
 * MariaDB give the admin stored procedures instead (their docs: mysql.rds_set_external_master_gtid (MariaDB),
 * mysql.rds_set_external_master (MariaDB, MySQL 8.0 and lower), mysql.rds_set_external_source (MySQL 8.4),
 * mysql.rds_start_replication, mysql.rds_stop_replication, mysql.rds_reset_external_master / _source).
 * RDS procedures have one unnamed connection.
 */
export interface ReplicaLinkSql {
  readonly kind: 'statements' | 'rds-procedures';
  /** The connection's name as SHOW ALL SLAVES STATUS / SHOW REPLICA STATUS list it ('' : the provider's one unnamed connection). */
  readonly name: string;
  /** How messages name the link. */
  readonly label: string;
  /**
   * Where the link starts: `gtid` — from the copy's GTID position (set by the statements' caller, or handed to the
   * provider's GTID procedure); `binlog` — from the copy's binary log file and offset, and catch-up then waits for
   * the source's binary log position (SOURCE_POS_WAIT / MASTER_POS_WAIT) rather than its GTID set, which the
   * target never executed before the copy.
   */
  readonly startsBy: 'gtid' | 'binlog';
  configure(src: ReplicaSource, start?: CopyStart): { sql: string; params: unknown[] };
  start(): string;
  stop(): string;
  reset(): string;
}

/** The source position a copy was taken at: its GTID position and its binary log coordinates (when read). */
export interface CopyStart {
  gtid: string;
  file?: string | null;
  pos?: number | null;
}

export function statementLink(f: MysqlFlavor, name: string): ReplicaLinkSql {
  return {
    kind: 'statements',
    name,
    label: `replica connection ${name}`,
    startsBy: 'gtid',
    configure: (src) => changeSourceSql(f, name, src),
    start: () => startReplicaSql(f, name),
    stop: () => stopReplicaSql(f, name),
    reset: () => resetReplicaAllSql(f, name),
  };
}

/** The provider's replication procedures this module knows, as information_schema.ROUTINES names them in `mysql`. */
export const RDS_PROCEDURES = ['rds_set_external_master_gtid', 'rds_set_external_master', 'rds_set_external_source', 'rds_reset_external_master', 'rds_reset_external_source'] as const;

/**
 * The provider's link from the procedures the target has: on MariaDB `rds_set_external_master_gtid(host, port,
 * user, password, gtid, ssl_encryption)` where present; otherwise (RDS for MySQL, whose GTID procedure needs a
 * gtid_purged the admin cannot set) `rds_set_external_source` (8.4) or `rds_set_external_master` (8.0 and lower,
 * MariaDB) with `(host, port, user, password, binlog file, binlog offset, ssl_encryption)`. ssl_encryption is 1 when
 * the link would be encrypted with the statements too. Undefined when the target has none of them.
 */
export function rdsLink(f: MysqlFlavor, has: ReadonlySet<string>): ReplicaLinkSql | undefined {
  const byGtid = f.kind === 'mariadb' && has.has('rds_set_external_master_gtid');
  const setSource = byGtid ? 'rds_set_external_master_gtid' : has.has('rds_set_external_source') ? 'rds_set_external_source' : has.has('rds_set_external_master') ? 'rds_set_external_master' : undefined;
  if (!setSource) return undefined;
  const reset = has.has('rds_reset_external_source') && !has.has('rds_reset_external_master') ? 'rds_reset_external_source' : 'rds_reset_external_master';
  return {
    kind: 'rds-procedures',
    name: '',
    label: 'the target\u2019s replication (mysql.rds_* procedures)',
    startsBy: byGtid ? 'gtid' : 'binlog',
    configure: (src, start) => {
      const ssl = linkEncrypted(src) ? 1 : 0;
      const who = [src.host, src.port, src.user, src.password ?? ''];
      if (byGtid) {
        if (start === undefined) throw new Error('RDS for MariaDB replication needs the GTID position to start from');
        return { sql: `CALL mysql.${setSource}(?, ?, ?, ?, ?, ?)`, params: [...who, start.gtid, ssl] };
      }
      if (!start?.file || start.pos === undefined || start.pos === null) throw new Error('the provider\u2019s replication procedure needs the binary log file and offset to start from');
      return { sql: `CALL mysql.${setSource}(?, ?, ?, ?, ?, ?, ?)`, params: [...who, start.file, start.pos, ssl] };
    },
    start: () => 'CALL mysql.rds_start_replication',
    stop: () => 'CALL mysql.rds_stop_replication',
    reset: () => `CALL mysql.${reset}`,
  };
}

/** RDS procedures where the target has them, the statements otherwise. */
export async function replicaLinkFor(q: Query, f: MysqlFlavor, name: string): Promise<ReplicaLinkSql> {
  const rows = await q<RowDataPacket & { n: string }>(
    `SELECT ROUTINE_NAME AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME IN (${RDS_PROCEDURES.map(() => '?').join(', ')}) AND ROUTINE_TYPE = 'PROCEDURE'`,
    [...RDS_PROCEDURES],
    'looking for the provider\u2019s replication procedures',
  );
  return rdsLink(f, new Set(rows.map((r) => String(r.n)))) ?? statementLink(f, name);
}
