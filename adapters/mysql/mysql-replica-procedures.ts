import type { RowDataPacket } from 'mysql2/promise';
import type { MysqlFlavor } from './mysql-flavor.js';
import { changeSourceSql, linkEncrypted, resetReplicaAllSql, startReplicaSql, stopReplicaSql, type ReplicaSource } from './mysql-replication.js';
import type { Query } from './mysql-sessions.js';

/**
 * The statements that set up, start, stop and remove the target's replica link. Self-managed servers and
 * MariaDB with REPLICATION SLAVE ADMIN use the SQL statements (mysql-replication.ts); Amazon RDS for MySQL /
 * MariaDB give the admin stored procedures instead (their docs: mysql.rds_set_external_master_with_auto_position,
 * mysql.rds_set_external_master_gtid, mysql.rds_start_replication, mysql.rds_stop_replication,
 * mysql.rds_reset_external_master). RDS procedures have one unnamed connection.
 */
export interface ReplicaLinkSql {
  readonly kind: 'statements' | 'rds-procedures';
  /** The connection's name as SHOW ALL SLAVES STATUS / SHOW REPLICA STATUS list it ('' : the provider's one unnamed connection). */
  readonly name: string;
  /** How messages name the link. */
  readonly label: string;
  configure(src: ReplicaSource, gtid?: string): { sql: string; params: unknown[] };
  start(): string;
  stop(): string;
  reset(): string;
}

export function statementLink(f: MysqlFlavor, name: string): ReplicaLinkSql {
  return {
    kind: 'statements',
    name,
    label: `replica connection ${name}`,
    configure: (src) => changeSourceSql(f, name, src),
    start: () => startReplicaSql(f, name),
    stop: () => stopReplicaSql(f, name),
    reset: () => resetReplicaAllSql(f, name),
  };
}

/**
 * RDS for MySQL 8.0: `rds_set_external_master_with_auto_position(host, port, user, password, ssl_encryption,
 * delay)`; RDS for MariaDB: `rds_set_external_master_gtid(host, port, user, password, gtid, ssl_encryption)`,
 * which needs the GTID to start from. ssl_encryption is 1 when the
 * link would be encrypted with the statements too.
 */
export function rdsLink(f: MysqlFlavor): ReplicaLinkSql {
  return {
    kind: 'rds-procedures',
    name: '',
    label: 'the target\u2019s replication (mysql.rds_* procedures)',
    configure: (src, gtid) => {
      const ssl = linkEncrypted(src) ? 1 : 0;
      if (f.kind === 'mariadb') {
        if (gtid === undefined) throw new Error('RDS for MariaDB replication needs the GTID position to start from');
        return { sql: 'CALL mysql.rds_set_external_master_gtid(?, ?, ?, ?, ?, ?)', params: [src.host, src.port, src.user, src.password ?? '', gtid, ssl] };
      }
      return { sql: 'CALL mysql.rds_set_external_master_with_auto_position(?, ?, ?, ?, ?, ?)', params: [src.host, src.port, src.user, src.password ?? '', ssl, 0] };
    },
    start: () => 'CALL mysql.rds_start_replication',
    stop: () => 'CALL mysql.rds_stop_replication',
    reset: () => 'CALL mysql.rds_reset_external_master',
  };
}

/** RDS procedures where the target has them, the statements otherwise. */
export async function replicaLinkFor(q: Query, f: MysqlFlavor, name: string): Promise<ReplicaLinkSql> {
  const rows = await q<RowDataPacket>(
    `SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'mysql' AND ROUTINE_NAME IN ('rds_set_external_master_with_auto_position', 'rds_set_external_master_gtid') AND ROUTINE_TYPE = 'PROCEDURE'`,
    [],
    'looking for the provider\u2019s replication procedures',
  );
  return rows.length > 0 ? rdsLink(f) : statementLink(f, name);
}
