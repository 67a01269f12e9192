import { describe, expect, it } from 'vitest';
import { detectFlavor } from '../../adapters/mysql/mysql-flavor.js';
import { globalPrivilegesFromGrants, profileFromGrants, readOnlyPrivileges, resolveProfile } from '../../adapters/mysql/mysql-privilege-profile.js';
import { rdsLink, statementLink } from '../../adapters/mysql/mysql-replica-procedures.js';
import { positionWaitReached, positionWaitSql } from '../../adapters/mysql/mysql-replication.js';
import { KILL_CONNECTION, RDS_KILL, sessionKiller } from '../../adapters/mysql/mysql-session-killer.js';
import { restoreGrantSql, revokeGrantSql } from '../../adapters/mysql/mysql-schema-fence-sql.js';
import { UsageError } from '../../src/errors.js';

const mariadb1011 = detectFlavor('10.11.19-MariaDB-0+deb12u1-log', 'Debian 12');
const mariadb106 = detectFlavor('10.6.18-MariaDB', '');
const mysql80 = detectFlavor('8.0.39', 'Source distribution');
const mysql84 = detectFlavor('8.4.3', 'MySQL Community Server - GPL');

describe('privilege profile from SHOW GRANTS (auto)', () => {
  it('MariaDB 10.11: READ_ONLY ADMIN (or ALL PRIVILEGES) is superuser; SUPER alone no longer sets read_only', () => {
    expect(readOnlyPrivileges(mariadb1011)).toEqual(['READ_ONLY ADMIN']);
    expect(profileFromGrants(["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED BY PASSWORD '*AB' WITH GRANT OPTION"], mariadb1011)).toBe('superuser');
    expect(profileFromGrants(['GRANT READ_ONLY ADMIN, PROCESS ON *.* TO `ops`@`%`'], mariadb1011)).toBe('superuser');
    expect(profileFromGrants(['GRANT SUPER, PROCESS ON *.* TO `ops`@`%`'], mariadb1011)).toBe('managed');
  });

  it('MariaDB 10.6: SUPER still sets read_only', () => {
    expect(profileFromGrants(['GRANT SUPER ON *.* TO `ops`@`%`'], mariadb106)).toBe('superuser');
  });

  it('a managed master user (RDS-like grants, schema-level ALL) is managed', () => {
    const rdsLike = [
      'GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, BINLOG MONITOR, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER ON *.* TO `admin`@`%` WITH GRANT OPTION',
      'GRANT ALL PRIVILEGES ON `shop`.* TO `admin`@`%`',
    ];
    expect(profileFromGrants(rdsLike, mariadb1011)).toBe('managed');
    expect(globalPrivilegesFromGrants(rdsLike).has('ALL PRIVILEGES')).toBe(false);
  });

  it('MySQL 8: SUPER or SYSTEM_VARIABLES_ADMIN (dynamic privileges come on their own line) is superuser', () => {
    expect(profileFromGrants(['GRANT SELECT, PROCESS ON *.* TO `admin`@`%`', 'GRANT SYSTEM_VARIABLES_ADMIN,CONNECTION_ADMIN ON *.* TO `admin`@`%`'], mysql80)).toBe('superuser');
    expect(profileFromGrants(['GRANT SELECT, PROCESS ON *.* TO `admin`@`%`', 'GRANT CONNECTION_ADMIN,REPLICATION_SLAVE_ADMIN ON *.* TO `admin`@`%`'], mysql84)).toBe('managed');
  });

  it('a forced profile is taken as given without asking the server', async () => {
    const q = (() => {
      throw new Error('must not query');
    }) as never;
    expect(await resolveProfile(q, mariadb1011, 'managed')).toBe('managed');
    expect(await resolveProfile(q, mariadb1011, 'superuser')).toBe('superuser');
  });
});

describe('ending sessions: KILL or the provider procedure', () => {
  it('KILL CONNECTION and CALL mysql.rds_kill take only plain integer ids', () => {
    expect(KILL_CONNECTION.sql(42)).toBe('KILL CONNECTION 42');
    expect(RDS_KILL.sql('4243')).toBe('CALL mysql.rds_kill(4243)');
    expect(() => RDS_KILL.sql('1; DROP TABLE x')).toThrow(UsageError);
  });

  it('uses mysql.rds_kill when the server has it', async () => {
    const q = async (sql: string) => (/rds_kill/.test(sql) ? [{ 1: 1 }] : []);
    expect((await sessionKiller(q as never)).how).toBe('CALL mysql.rds_kill');
    expect((await sessionKiller((async () => []) as never)).how).toBe('KILL CONNECTION');
  });
});

describe('replica link: statements or RDS procedures (MySQL 8 / RDS cannot run here: SQL only)', () => {
  const src = { host: '10.0.0.1', port: 3306, user: 'repl', password: 's3cret', tls: { mode: 'require' as const, verify: 'none' as const } };

  const rds80 = new Set(['rds_set_external_master', 'rds_set_external_master_with_auto_position', 'rds_reset_external_master']);
  const rds84 = new Set(['rds_set_external_source', 'rds_set_external_source_with_auto_position', 'rds_reset_external_source']);
  const rdsMaria = new Set(['rds_set_external_master', 'rds_set_external_master_gtid', 'rds_reset_external_master']);
  const at = { gtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77', file: 'mysql-bin-changelog.000031', pos: 107 };

  it('RDS for MySQL 8.0: rds_set_external_master from the copy’s binary log file and offset, the password as a parameter', () => {
    const link = rdsLink(mysql80, rds80)!;
    expect(link.startsBy).toBe('binlog');
    const c = link.configure(src, at);
    expect(c.sql).toBe('CALL mysql.rds_set_external_master(?, ?, ?, ?, ?, ?, ?)');
    expect(c.params).toEqual(['10.0.0.1', 3306, 'repl', 's3cret', 'mysql-bin-changelog.000031', 107, 1]);
    expect(c.sql).not.toContain('s3cret');
    expect([link.start(), link.stop(), link.reset()]).toEqual(['CALL mysql.rds_start_replication', 'CALL mysql.rds_stop_replication', 'CALL mysql.rds_reset_external_master']);
    expect(() => link.configure(src, { gtid: at.gtid })).toThrow(/binary log file and offset/);
  });

  it('RDS for MySQL 8.4: the _source names', () => {
    const link = rdsLink(mysql84, rds84)!;
    expect(link.configure(src, at).sql).toBe('CALL mysql.rds_set_external_source(?, ?, ?, ?, ?, ?, ?)');
    expect(link.reset()).toBe('CALL mysql.rds_reset_external_source');
  });

  it('RDS for MariaDB: rds_set_external_master_gtid from the copy’s GTID; TLS off gives ssl_encryption 0', () => {
    const link = rdsLink(mariadb1011, rdsMaria)!;
    expect(link.startsBy).toBe('gtid');
    expect(link.configure({ ...src, tls: { mode: 'disable', verify: 'none' } }, { gtid: '0-1-42' })).toEqual({
      sql: 'CALL mysql.rds_set_external_master_gtid(?, ?, ?, ?, ?, ?)',
      params: ['10.0.0.1', 3306, 'repl', 's3cret', '0-1-42', 0],
    });
    expect(() => link.configure(src)).toThrow(/GTID/);
    // RDS has one unnamed connection: SHOW ALL SLAVES STATUS lists it as ''.
    expect(link.name).toBe('');
    // Without the GTID procedure, MariaDB goes by file and offset too.
    expect(rdsLink(mariadb1011, new Set(['rds_set_external_master']))!.startsBy).toBe('binlog');
    expect(rdsLink(mariadb1011, new Set())).toBeUndefined();
  });

  it('a link started from binary log coordinates waits for the source position: MASTER_POS_WAIT with the connection (MariaDB), SOURCE_POS_WAIT from MySQL 8.0.26', () => {
    expect(positionWaitSql(mariadb1011, 'mariadb-bin.000002', 3456, 1500, '')).toEqual({ sql: 'SELECT MASTER_POS_WAIT(?, ?, ?, ?) AS r', params: ['mariadb-bin.000002', 3456, 2, ''] });
    expect(positionWaitSql(mysql80, 'mysql-bin.000002', 3456, 200, '').sql).toBe('SELECT SOURCE_POS_WAIT(?, ?, ?, ?) AS r');
    expect(positionWaitSql(detectFlavor('8.0.20', 'MySQL Community Server - GPL'), 'b.1', 4, 0, '').sql).toBe('SELECT MASTER_POS_WAIT(?, ?, ?, ?) AS r');
    expect([0, 12, -1, null].map(positionWaitReached)).toEqual([true, true, false, false]);
  });

  it('self-managed and MariaDB with REPLICATION SLAVE ADMIN: the SQL statements', () => {
    const link = statementLink(mariadb1011, 'cutover_x');
    expect(link.configure(src).sql).toMatch(/^CHANGE MASTER 'cutover_x' TO .*MASTER_USE_GTID = slave_pos/);
    expect(link.start()).toBe("START SLAVE 'cutover_x'");
    expect(link.name).toBe('cutover_x');
    expect(statementLink(mysql84, 'cutover_x').start()).toBe("START REPLICA FOR CHANNEL 'cutover_x'");
  });
});

describe('the managed fence revokes and grants back at every level, global included', () => {
  const app = { kind: 'account' as const, user: 'app', host: '%' };
  it('ON *.* for global write privileges', () => {
    expect(revokeGrantSql(app, { level: 'global', privileges: ['INSERT', 'UPDATE'] })).toBe("REVOKE INSERT, UPDATE ON *.* FROM 'app'@'%'");
    expect(restoreGrantSql(app, { level: 'global', privileges: ['INSERT', 'UPDATE'] })).toBe("GRANT INSERT, UPDATE ON *.* TO 'app'@'%'");
  });
  it('refuses a privilege that is not a write privilege', () => {
    expect(() => revokeGrantSql(app, { level: 'global', privileges: ['SUPER'] })).toThrow(UsageError);
  });
});
