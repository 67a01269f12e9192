import { describe, expect, it } from 'vitest';
import { clientConnArgs, clientTlsArgs, dumpArgs, loadArgs } from '../../adapters/mysql/mysql-dump.js';
import { hasAny, privilegesOnDatabase } from '../../adapters/mysql/mysql-checks.js';
import { detectFlavor } from '../../adapters/mysql/mysql-flavor.js';
import {
  binlogBytesBehind,
  changeSourceSql,
  gtidWaitReached,
  gtidWaitSql,
  parallelCopyRefusal,
  readReplicaStatus,
  replicaConnectionName,
  replicaFilterSql,
  resetReplicaAllSql,
  startReplicaSql,
  startReplicaUntilSql,
  stopReplicaSql,
  untilReached,
  waveStreamRefusal,
} from '../../adapters/mysql/mysql-replication.js';
import { autoIncrementFixes, checksumSql, setAutoIncrementSql } from '../../adapters/mysql/mysql-verify.js';
import { parseDbUrl } from '../../src/util/db-url.js';

const maria = detectFlavor('10.11.19-MariaDB-0+deb12u1-log', 'Debian 12');
const mysql84 = detectFlavor('8.4.3', 'MySQL Community Server - GPL');
const mysql57 = detectFlavor('5.7.44-log', 'MySQL Community Server (GPL)');
const mysql8021 = detectFlavor('8.0.21', 'MySQL Community Server - GPL');
const src = { host: '10.0.0.1', port: 3306, user: 'repl', password: 's3cret', tls: { mode: 'prefer' as const, verify: 'none' as const } };
const verified = { mode: 'verify-full' as const, verify: 'full' as const, ca: '/etc/mysql/ca.pem' };

describe('replica statements per engine', () => {
  it('MariaDB: a named connection following slave_pos; the password is a parameter, never in the text', () => {
    const c = changeSourceSql(maria, 'cutover_shop', src);
    expect(c.sql).toBe("CHANGE MASTER 'cutover_shop' TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos, MASTER_SSL = 0");
    expect(c.params).toEqual(['10.0.0.1', 3306, 'repl', 's3cret']);
    expect(startReplicaSql(maria, 'cutover_shop')).toBe("START SLAVE 'cutover_shop'");
    expect(resetReplicaAllSql(maria, 'cutover_shop')).toBe("RESET SLAVE 'cutover_shop' ALL");
    expect(replicaFilterSql(maria, 'cutover_shop', 'shop')).toEqual({ sql: 'SET GLOBAL `cutover_shop`.replicate_do_db = ?', params: ['shop'] });
  });

  it('MySQL 8.4: CHANGE REPLICATION SOURCE with auto-position on a channel; 5.7: the MASTER spelling', () => {
    expect(changeSourceSql(mysql84, 'c1', { ...src, tls: { mode: 'require', verify: 'none' } }).sql).toBe(
      "CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = ?, SOURCE_USER = ?, SOURCE_PASSWORD = ?, SOURCE_AUTO_POSITION = 1, SOURCE_SSL = 1, SOURCE_SSL_VERIFY_SERVER_CERT = 0 FOR CHANNEL 'c1'",
    );
    expect(startReplicaSql(mysql84, 'c1')).toBe("START REPLICA FOR CHANNEL 'c1'");
    expect(resetReplicaAllSql(mysql84, 'c1')).toBe("RESET REPLICA ALL FOR CHANNEL 'c1'");
    expect(replicaFilterSql(mysql84, 'c1', 'shop')!.sql).toBe("CHANGE REPLICATION FILTER REPLICATE_DO_DB = (`shop`) FOR CHANNEL 'c1'");
    expect(changeSourceSql(mysql57, 'c1', src).sql).toMatch(/^CHANGE MASTER TO .*MASTER_AUTO_POSITION = 1.* FOR CHANNEL 'c1'$/);
    expect(startReplicaSql(mysql57, 'c1')).toBe("START SLAVE FOR CHANNEL 'c1'");
    expect(replicaFilterSql(mysql57, 'c1', 'shop')).toBeNull();
  });

  it('TLS on the replica link: CA and host name verified as the source URL asks; never GET_SOURCE_PUBLIC_KEY', () => {
    const m = changeSourceSql(maria, 'c', { ...src, tls: verified });
    expect(m.sql).toMatch(/MASTER_SSL = 1, MASTER_SSL_CA = \?, MASTER_SSL_VERIFY_SERVER_CERT = 1$/);
    expect(m.params).toEqual(['10.0.0.1', 3306, 'repl', 's3cret', '/etc/mysql/ca.pem']);
    expect(changeSourceSql(maria, 'c', { ...src, tls: { ...verified, mode: 'verify-ca', verify: 'chain' } }).sql).toMatch(/MASTER_SSL_CA = \?, MASTER_SSL_VERIFY_SERVER_CERT = 0$/);
    const my = changeSourceSql(mysql84, 'c', { ...src, tls: verified });
    expect(my.sql).toMatch(/SOURCE_SSL = 1, SOURCE_SSL_CA = \?, SOURCE_SSL_VERIFY_SERVER_CERT = 1 FOR CHANNEL 'c'$/);
    for (const tls of [src.tls, verified]) expect(changeSourceSql(mysql84, 'c', { ...src, tls }).sql).not.toMatch(/PUBLIC_KEY/);
  });

  it('TLS for the command-line clients: MariaDB client options, or --ssl-mode for MySQL clients', () => {
    const ep = parseDbUrl('mariadb://root@db:3306/shop?ssl-mode=VERIFY_IDENTITY&ssl-ca=/ca.pem&ssl-cert=/c.pem&ssl-key=/k.pem');
    expect(clientTlsArgs(ep, 'mariadb')).toEqual(['--ssl', '--ssl-ca=/ca.pem', '--ssl-cert=/c.pem', '--ssl-key=/k.pem', '--ssl-verify-server-cert']);
    expect(clientTlsArgs(ep, 'mysql')).toEqual(['--ssl-mode=VERIFY_IDENTITY', '--ssl-ca=/ca.pem', '--ssl-cert=/c.pem', '--ssl-key=/k.pem']);
    expect(clientTlsArgs(parseDbUrl('mysql://root@db/shop?ssl-ca=/ca.pem'), 'mariadb')).toEqual(['--ssl', '--ssl-ca=/ca.pem']);
    expect(clientTlsArgs(parseDbUrl('mysql://root@db/shop?ssl-mode=disabled'), 'mariadb')).toEqual(['--skip-ssl']);
    expect(clientTlsArgs(parseDbUrl('mysql://root@db/shop'), 'mariadb')).toEqual([]);
  });

  it('refuses names that could smuggle SQL', () => {
    expect(() => startReplicaSql(maria, "x'; DROP TABLE t; --")).toThrow(/bad replica connection name/);
    expect(() => replicaFilterSql(maria, 'c', 'a,b')).toThrow(/comma/);
    expect(replicaConnectionName('shop-8d4d11f89973')).toBe('cutover_shop_8d4d11f89973');
  });

  it('GTID wait: MariaDB -1 and MySQL 1 are timeouts, NULL is an error, 0 is caught up', () => {
    expect(gtidWaitSql(maria, '0-1-7', 1500)).toEqual({ sql: 'SELECT MASTER_GTID_WAIT(?, ?) AS r', params: ['0-1-7', 1.5] });
    expect(gtidWaitSql(mysql84, 'uuid:1-5', 250).sql).toBe('SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?) AS r');
    expect([0, '0', -1, 1, null].map(gtidWaitReached)).toEqual([true, true, false, false, false]);
  });

  it('reads replica status in both spellings', () => {
    expect(
      readReplicaStatus({
        Connection_name: 'c',
        Master_User: 'cutover_repl',
        Master_Host: 'h',
        Slave_IO_Running: 'Yes',
        Slave_SQL_Running: 'No',
        Relay_Master_Log_File: 'binlog.000002',
        Exec_Master_Log_Pos: '120',
        Seconds_Behind_Master: null,
        Last_IO_Error: '',
        Last_SQL_Error: 'Error 1146',
      }),
    ).toEqual({
      name: 'c',
      sourceHost: 'h',
      sourceUser: 'cutover_repl',
      ioRunning: true,
      sqlRunning: false,
      execFile: 'binlog.000002',
      execPos: 120,
      secondsBehind: null,
      lastError: 'Error 1146',
      ioErrno: 0,
      sqlErrno: 0,
      ioConnecting: false,
      doDb: '',
    });
    expect(readReplicaStatus({ Channel_Name: 'c', Replica_IO_Running: 'Yes', Replica_SQL_Running: 'Yes', Relay_Source_Log_File: 'b.1', Exec_Source_Log_Pos: 4, Seconds_Behind_Source: 3 })).toMatchObject({
      ioRunning: true,
      sqlRunning: true,
      execFile: 'b.1',
      secondsBehind: 3,
    });
  });

  it('lag in bytes across binary log files', () => {
    const logs = [
      { name: 'b.1', size: 1000 },
      { name: 'b.2', size: 500 },
      { name: 'b.3', size: 300 },
    ];
    expect(binlogBytesBehind(logs, { file: 'b.3', pos: 300 }, { file: 'b.3', pos: 100 })).toBe(200);
    expect(binlogBytesBehind(logs, { file: 'b.3', pos: 300 }, { file: 'b.1', pos: 900 })).toBe(100 + 500 + 300);
    expect(binlogBytesBehind(logs, { file: 'b.3', pos: 300 }, { file: 'b.0', pos: 5 })).toBe(1000 + 500 + 300);
  });
});

// MySQL 8 cannot run here (no package): these statements of a MySQL wave's shared channel are checked as text only;
// the same code path runs against real MariaDB servers in test/integration/waves-mariadb-one-stream.test.ts.
describe("a wave's one stream per engine", () => {
  it('the filter lists every joined tenant: MariaDB SET GLOBAL with the list as a parameter, MySQL a channel filter of quoted names', () => {
    expect(replicaFilterSql(maria, 'cutover_w', ['acme', 'globex'])).toEqual({ sql: 'SET GLOBAL `cutover_w`.replicate_do_db = ?', params: ['acme,globex'] });
    expect(replicaFilterSql(mysql84, 'cutover_w', ['acme', 'glo`bex'])).toEqual({ sql: "CHANGE REPLICATION FILTER REPLICATE_DO_DB = (`acme`, `glo``bex`) FOR CHANNEL 'cutover_w'", params: [] });
    expect(() => replicaFilterSql(mysql84, 'cutover_w', ['acme', 'a,b'])).toThrow(/"a,b" contains a comma/);
    expect(replicaFilterSql(mysql57, 'cutover_w', ['acme'])).toBeNull();
  });

  it('runs to a copy position: MariaDB UNTIL master_gtid_pos stops both threads, MySQL UNTIL SQL_AFTER_GTIDS only the applier', () => {
    expect(startReplicaUntilSql(maria, 'cutover_w')).toBe("START SLAVE 'cutover_w' UNTIL master_gtid_pos = ?");
    expect(startReplicaUntilSql(mysql84, 'cutover_w')).toBe("START REPLICA UNTIL SQL_AFTER_GTIDS = ? FOR CHANNEL 'cutover_w'");
    expect(startReplicaUntilSql(mysql8021, 'cutover_w')).toBe("START SLAVE UNTIL SQL_AFTER_GTIDS = ? FOR CHANNEL 'cutover_w'");
    const stopped = { ioRunning: false, sqlRunning: false, ioConnecting: false };
    const readerOn = { ioRunning: true, sqlRunning: false, ioConnecting: false };
    expect([untilReached(maria, stopped), untilReached(maria, readerOn), untilReached(maria, { ...stopped, ioConnecting: true })]).toEqual([true, false, false]);
    expect([untilReached(mysql84, stopped), untilReached(mysql84, readerOn), untilReached(mysql84, { ...readerOn, sqlRunning: true })]).toEqual([true, true, false]);
  });

  it('a tenant leaves with only the applier paused: the thread after the connection name (MariaDB), before the channel (MySQL)', () => {
    expect(stopReplicaSql(maria, 'cutover_w', 'SQL_THREAD')).toBe("STOP SLAVE 'cutover_w' SQL_THREAD");
    expect(startReplicaSql(maria, 'cutover_w', 'SQL_THREAD')).toBe("START SLAVE 'cutover_w' SQL_THREAD");
    expect(stopReplicaSql(mysql84, 'cutover_w', 'SQL_THREAD')).toBe("STOP REPLICA SQL_THREAD FOR CHANNEL 'cutover_w'");
    expect(startReplicaSql(mysql84, 'cutover_w', 'SQL_THREAD')).toBe("START REPLICA SQL_THREAD FOR CHANNEL 'cutover_w'");
    expect(stopReplicaSql(mysql8021, 'cutover_w', 'SQL_THREAD')).toBe("STOP SLAVE SQL_THREAD FOR CHANNEL 'cutover_w'");
    expect(stopReplicaSql(mysql84, 'cutover_w')).toBe("STOP REPLICA FOR CHANNEL 'cutover_w'");
  });

  it('servers of one kind only, MySQL from 8.0 (channel filters, gtid_purged +)', () => {
    expect(waveStreamRefusal(maria, maria)).toBeUndefined();
    expect(waveStreamRefusal(mysql84, mysql8021)).toBeUndefined();
    expect(waveStreamRefusal(maria, mysql84)).toMatch(/only between servers of one kind \(the source is MariaDB 10\.11\.19, the target MySQL 8\.4\.3\)/);
    expect(waveStreamRefusal(mysql57, mysql84)).toMatch(/needs MySQL 8\.0 .* a server is MySQL 5\.7\.44/);
  });

  it('the parallel copy: MariaDB to MariaDB, MySQL to MySQL 8.0+ (gtid_purged +), a 5.7 target only through the provider or not at all', () => {
    expect(parallelCopyRefusal(maria, maria, false)).toBeUndefined();
    expect(parallelCopyRefusal(mysql57, mysql84, false)).toBeUndefined();
    expect(parallelCopyRefusal(mysql8021, mysql8021, false)).toBeUndefined();
    // A 5.7 target cannot take gtid_purged '+...': the one-stream dump moves it, unless the provider's procedures start the link.
    expect(parallelCopyRefusal(mysql57, mysql57, false)).toMatch(/MySQL to MySQL 8\.0\+/);
    expect(parallelCopyRefusal(mysql57, mysql57, true)).toBeUndefined();
    expect(parallelCopyRefusal(maria, mysql84, false)).toMatch(/MariaDB to MariaDB/);
    expect(parallelCopyRefusal(mysql84, maria, true)).toMatch(/MariaDB to MariaDB/);
  });

  it('what the parallel copy needs of the accounts is read from SHOW GRANTS: LOCK TABLES on *.* or on the database, SYSTEM_VARIABLES_ADMIN on *.*', () => {
    const grants = ['GRANT USAGE ON *.* TO `app`@`%`', 'GRANT SELECT, LOCK TABLES ON `shop`.* TO `app`@`%`', 'GRANT ALL PRIVILEGES ON `we``ird`.* TO `app`@`%`'];
    expect(hasAny(privilegesOnDatabase(grants, 'shop'), ['LOCK TABLES'])).toBe(true);
    expect(hasAny(privilegesOnDatabase(grants, 'other'), ['LOCK TABLES'])).toBe(false);
    expect(hasAny(privilegesOnDatabase(grants, 'we`ird'), ['LOCK TABLES'])).toBe(true);
    // Without a database only the *.* lines count (globalPrivileges).
    expect(hasAny(privilegesOnDatabase(grants), ['LOCK TABLES'])).toBe(false);
    const admin = ['GRANT RELOAD, REPLICATION SLAVE ON *.* TO `repl`@`%`', 'GRANT REPLICATION_SLAVE_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `repl`@`%`'];
    expect(hasAny(privilegesOnDatabase(admin), ['SYSTEM_VARIABLES_ADMIN', 'SUPER'])).toBe(true);
    expect(hasAny(privilegesOnDatabase(admin, 'shop'), ['LOCK TABLES'])).toBe(false);
    expect(hasAny(privilegesOnDatabase(['GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION'], 'shop'), ['LOCK TABLES'])).toBe(true);
  });
});

describe('dump and load commands', () => {
  it('credentials never in argv; GTID options per engine', () => {
    const ep = parseDbUrl('mariadb://root:pw@127.0.0.1:3307/shop');
    const args = dumpArgs(maria, ep, 'shop');
    expect(args.join(' ')).not.toMatch(/pw/);
    expect(args).toEqual(expect.arrayContaining(['--host=127.0.0.1', '--port=3307', '--user=root', '--single-transaction', '--gtid', '--master-data=1', '--databases', 'shop']));
    expect(dumpArgs(mysql84, ep, 'shop')).toEqual(expect.arrayContaining(['--set-gtid-purged=ON', '--single-transaction']));
    expect(loadArgs(ep)).toEqual(['--host=127.0.0.1', '--port=3307', '--protocol=TCP', '--user=root', '--binary-mode', '--default-character-set=utf8mb4']);
    expect(clientConnArgs(parseDbUrl('mysql://root@localhost/shop?socket=/run/mysqld/mysqld.sock'))).toEqual(['--socket=/run/mysqld/mysqld.sock', '--protocol=SOCKET', '--user=root']);
  });

  it('method dump: a schema pre-copy without rows and a fenced copy, neither with a GTID position nor a global lock', () => {
    const ep = parseDbUrl('mariadb://root@127.0.0.1:3307/shop');
    for (const kind of ['schema', 'copy'] as const) {
      const args = dumpArgs(maria, ep, 'shop', kind);
      expect(args).toEqual(expect.arrayContaining(['--single-transaction', '--routines', '--triggers', '--databases', 'shop']));
      // --master-data takes FLUSH TABLES WITH READ LOCK: a stall for every other tenant on the server.
      expect(args.filter((a) => /^--(gtid|master-data|lock-all-tables|flush-logs)/.test(a))).toEqual([]);
      expect(dumpArgs(mysql84, ep, 'shop', kind)).toContain('--set-gtid-purged=OFF');
    }
    expect(dumpArgs(maria, ep, 'shop', 'schema')).toContain('--no-data');
    expect(dumpArgs(maria, ep, 'shop', 'copy')).not.toContain('--no-data');
  });
});

describe('auto-increment and verify statements', () => {
  it('raises only counters that are behind the source', () => {
    const fixes = autoIncrementFixes(
      new Map([
        ['a', 100n],
        ['b', 50n],
        ['c', 7n],
      ]),
      new Map([
        ['a', 90n],
        ['b', 60n],
      ]),
    );
    expect(fixes).toEqual([{ table: 'a', value: 100n }]);
    expect(setAutoIncrementSql('shop', 'we`ird', 100n)).toBe('ALTER TABLE `shop`.`we``ird` AUTO_INCREMENT = 100');
    expect(checksumSql('shop', ['a', 'b'])).toBe('CHECKSUM TABLE `shop`.`a`, `shop`.`b` EXTENDED');
  });
});
