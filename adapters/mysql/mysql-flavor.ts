import { PreflightError } from '../../src/errors.js';

/**
 * What one server can do, as flags: the adapter asks these instead of comparing engine names and versions
 * all over the place.
 */
export interface MysqlFlavor {
  kind: 'mysql' | 'mariadb';
  /** `major.minor.patch`. */
  version: string;
  /** VERSION() as the server reports it. */
  full: string;
  /** MySQL 5.7.8+: super_read_only fences SUPER accounts too. */
  superReadOnly: boolean;
  /** MySQL 8.0+: SET PERSIST keeps the fence across a restart. */
  persist: boolean;
  /** MySQL 8.0.22+: ALTER SCHEMA ... READ ONLY. */
  schemaReadOnly: boolean;
  /**
   * Global privileges whose holders still write while read_only is ON (as information_schema.USER_PRIVILEGES
   * spells them). On MySQL this only matters while super_read_only is OFF.
   */
  bypassPrivileges: string[];
  /** The variable that holds the server's executed GTIDs. */
  gtidVariable: 'gtid_executed' | 'gtid_binlog_pos';
  binlogStatusSql: 'SHOW MASTER STATUS' | 'SHOW BINARY LOG STATUS';
  /** Session variable for a server-side statement timeout, switched off for the tool's own session. */
  statementTimeoutVariable: 'max_execution_time' | 'max_statement_time';
}

export const MIN_MYSQL = [5, 7, 8] as const;
/** ACCOUNT LOCK (strict mode) arrived in MariaDB 10.4.2. */
export const MIN_MARIADB = [10, 4, 2] as const;

type Triple = readonly [number, number, number];

export function atLeast(v: Triple, min: Triple): boolean {
  for (let i = 0; i < 3; i++) if (v[i]! !== min[i]!) return v[i]! > min[i]!;
  return true;
}

function triple(version: string): Triple | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/**
 * Reads the flavor from `SELECT VERSION(), @@version_comment`. MariaDB says so in one of them
 * (`10.11.19-MariaDB-0+deb12u1-log`; old replication-compatible builds put `5.5.5-` in front).
 */
export function detectFlavor(versionText: string, comment: string): MysqlFlavor {
  const isMaria = /mariadb/i.test(versionText) || /mariadb/i.test(comment);
  const cleaned = versionText.replace(/^5\.5\.5-(?=\d+\.\d+\.\d+-MariaDB)/i, '');
  const v = triple(cleaned);
  if (!v) throw new PreflightError('version', `cannot read the server version from "${versionText}"`, 'connect to a MySQL 5.7.8+ or MariaDB 10.4.2+ server');
  const version = v.join('.');
  if (isMaria) {
    return {
      kind: 'mariadb',
      version,
      full: versionText,
      superReadOnly: false,
      persist: false,
      schemaReadOnly: false,
      // 10.11 took READ_ONLY ADMIN out of SUPER; 10.5.2-10.10 had both; before 10.5.2 SUPER alone.
      bypassPrivileges: atLeast(v, [10, 11, 0]) ? ['READ_ONLY ADMIN'] : atLeast(v, [10, 5, 2]) ? ['READ_ONLY ADMIN', 'SUPER'] : ['SUPER'],
      gtidVariable: 'gtid_binlog_pos',
      binlogStatusSql: 'SHOW MASTER STATUS',
      statementTimeoutVariable: 'max_statement_time',
    };
  }
  return {
    kind: 'mysql',
    version,
    full: versionText,
    superReadOnly: atLeast(v, [5, 7, 8]),
    persist: atLeast(v, [8, 0, 0]),
    schemaReadOnly: atLeast(v, [8, 0, 22]),
    bypassPrivileges: atLeast(v, [8, 0, 0]) ? ['SUPER', 'CONNECTION_ADMIN'] : ['SUPER'],
    gtidVariable: 'gtid_executed',
    // 8.4 removed SHOW MASTER STATUS; 8.2 introduced the new name.
    binlogStatusSql: atLeast(v, [8, 2, 0]) ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS',
    statementTimeoutVariable: 'max_execution_time',
  };
}

/** Throws PreflightError('version') for servers the tool cannot fence safely. */
export function assertSupported(f: MysqlFlavor, where: string): void {
  const v = triple(f.version)!;
  if (f.kind === 'mariadb' && !atLeast(v, MIN_MARIADB)) {
    throw new PreflightError('version', `MariaDB ${f.version} at ${where} is not supported`, `cutover needs MariaDB ${MIN_MARIADB.join('.')} or newer`);
  }
  if (f.kind === 'mysql' && !atLeast(v, MIN_MYSQL)) {
    throw new PreflightError('version', `MySQL ${f.version} at ${where} is not supported`, `cutover needs MySQL ${MIN_MYSQL.join('.')} or newer (super_read_only)`);
  }
}

export function flavorLabel(f: MysqlFlavor): string {
  return `${f.kind === 'mariadb' ? 'MariaDB' : 'MySQL'} ${f.version}`;
}
