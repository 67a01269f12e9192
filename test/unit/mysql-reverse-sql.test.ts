import { describe, expect, it } from 'vitest';
import { detectFlavor } from '../../adapters/mysql/mysql-flavor.js';
import { changeSourceSql, MYSQL_MISSING_GTIDS_SQL, readReplicaStatus, replicaFilterSql, replicaPasswordSql, resetReplicaAllSql, startPositionSql, stopReplicaSql } from '../../adapters/mysql/mysql-replication.js';
import { reverseRefusal, streamVerdict, switchPositionSql } from '../../adapters/mysql/mysql-reverse.js';
import { mysqlCapabilities } from '../../adapters/mysql/mysql-capabilities.js';

const maria = detectFlavor('10.11.19-MariaDB-0+deb12u1-log', 'Debian 12');
const mysql80 = detectFlavor('8.0.36', 'MySQL Community Server - GPL');
const mysql84 = detectFlavor('8.4.3', 'MySQL Community Server - GPL');
const mysql57 = detectFlavor('5.7.44-log', 'MySQL Community Server (GPL)');
const NAME = 'cutover_shop_0123456789ab_revert';

/** A replica status row as MySQL 8.0.22+ spells it (SHOW REPLICA STATUS). */
function mysqlRow(over: Record<string, unknown> = {}) {
  return readReplicaStatus({
    Channel_Name: NAME,
    Source_Host: '10.0.0.2',
    Replica_IO_Running: 'Yes',
    Replica_SQL_Running: 'Yes',
    Relay_Source_Log_File: 'binlog.000003',
    Exec_Source_Log_Pos: 1200,
    Seconds_Behind_Source: 2,
    Last_IO_Errno: 0,
    Last_IO_Error: '',
    Last_SQL_Errno: 0,
    Last_SQL_Error: '',
    Replicate_Do_DB: 'shop',
    ...over,
  });
}

const reading = (status: ReturnType<typeof readReplicaStatus> | undefined, over: Partial<Parameters<typeof streamVerdict>[0]> = {}) =>
  streamVerdict({ name: NAME, replica: mysql84, status, accountExists: true, account: 'cutover_repl_6789ab_revert', lagBytes: 512, database: 'shop', ...over });

describe('reverse path: where the old source starts following the new primary', () => {
  it('reads the target position from the variable of its engine, with log_bin', () => {
    expect(switchPositionSql(maria)).toBe('SELECT @@GLOBAL.log_bin AS b, @@GLOBAL.gtid_binlog_pos AS g');
    expect(switchPositionSql(mysql84)).toBe('SELECT @@GLOBAL.log_bin AS b, @@GLOBAL.gtid_executed AS g');
  });

  it('MariaDB: gtid_slave_pos is the switch position itself, as a parameter', () => {
    expect(startPositionSql(maria, '0-2-118,1-2-7')).toEqual([{ sql: 'SET GLOBAL gtid_slave_pos = ?', params: ['0-2-118,1-2-7'] }]);
  });

  it('MySQL 8: the target transactions the old source never had are added to gtid_purged (+), none when there are none', () => {
    expect(MYSQL_MISSING_GTIDS_SQL).toBe('SELECT GTID_SUBTRACT(?, @@GLOBAL.gtid_executed) AS g');
    expect(startPositionSql(mysql84, 'aaa:1-100,bbb:1-5', 'bbb:1-5\n')).toEqual([{ sql: 'SET GLOBAL gtid_purged = ?', params: ['+bbb:1-5'] }]);
    expect(startPositionSql(mysql84, 'aaa:1-100', '')).toEqual([]);
  });

  it('MySQL 8.4: the old source gets a channel by auto-position limited to the database, in the SOURCE/REPLICA spelling', () => {
    const link = { host: '10.0.0.2', port: 3306, user: 'cutover_repl_6789ab_revert', password: 'pw', tls: { mode: 'require' as const, verify: 'none' as const } };
    const c = changeSourceSql(mysql84, NAME, link);
    expect(c.sql).toMatch(new RegExp(`^CHANGE REPLICATION SOURCE TO SOURCE_HOST = \\?, .*SOURCE_AUTO_POSITION = 1, SOURCE_SSL = 1.* FOR CHANNEL '${NAME}'$`));
    expect(c.sql).not.toContain('pw');
    expect(replicaFilterSql(mysql84, NAME, 'shop')!.sql).toBe(`CHANGE REPLICATION FILTER REPLICATE_DO_DB = (\`shop\`) FOR CHANNEL '${NAME}'`);
    expect(stopReplicaSql(mysql84, NAME)).toBe(`STOP REPLICA FOR CHANNEL '${NAME}'`);
    expect(resetReplicaAllSql(mysql84, NAME)).toBe(`RESET REPLICA ALL FOR CHANNEL '${NAME}'`);
    expect(changeSourceSql(maria, NAME, link).sql).toMatch(new RegExp(`^CHANGE MASTER '${NAME}' TO .*MASTER_USE_GTID = slave_pos`));
  });

  it('the password reaches the connection after the lift as a parameter, in a statement that changes nothing else', () => {
    expect(replicaPasswordSql(maria, NAME, 'pw')).toEqual({ sql: `CHANGE MASTER '${NAME}' TO MASTER_PASSWORD = ?`, params: ['pw'] });
    expect(replicaPasswordSql(mysql84, NAME, 'pw')).toEqual({ sql: `CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = ? FOR CHANNEL '${NAME}'`, params: ['pw'] });
    expect(replicaPasswordSql(detectFlavor('8.0.21', 'MySQL'), NAME, 'pw').sql).toBe(`CHANGE MASTER TO MASTER_PASSWORD = ? FOR CHANNEL '${NAME}'`);
  });

  it('refuses an old source whose other MariaDB connections share gtid_slave_pos, and MySQL before 8.0', () => {
    expect(reverseRefusal(maria, [])).toBeUndefined();
    expect(reverseRefusal(maria, ['', 'feed'])).toMatch(/default connection, feed.*gtid_slave_pos/);
    expect(reverseRefusal(mysql80, ['feed'])).toBeUndefined();
    expect(reverseRefusal(mysql57, [])).toMatch(/MySQL 5\.7\.44.*8\.0/);
  });

  it('the mysql dialect offers the reverse path', () => {
    expect(mysqlCapabilities('mariadb').reverseReplication).toBe(true);
    expect(mysqlCapabilities('mysql').reverseReplication).toBe(true);
  });
});

describe('reverse path: how the stream stands', () => {
  it('following, with the lag in bytes and seconds', () => {
    expect(reading(mysqlRow())).toEqual({ name: NAME, state: 'following', lagBytes: 512, lagSeconds: 2 });
    expect(reading(mysqlRow({ Replica_IO_Running: 'Connecting' }))).toMatchObject({ state: 'following', why: /connecting/ });
  });

  it('absent when neither the connection nor the account exists (never made, or finalized)', () => {
    expect(reading(undefined, { accountExists: false })).toMatchObject({ state: 'absent' });
  });

  it('broken when the connection or the account is gone', () => {
    expect(reading(undefined)).toMatchObject({ state: 'broken', why: `the replica connection ${NAME} on the old source is gone` });
    expect(reading(mysqlRow(), { accountExists: false })).toMatchObject({ state: 'broken', why: /account cutover_repl_6789ab_revert on the new primary is gone/ });
  });

  it('broken when the new primary purged the binary log the old source needs (IO error 1236), with no START to suggest', () => {
    const v = reading(mysqlRow({ Replica_IO_Running: 'No', Last_IO_Errno: 1236, Last_IO_Error: 'Cannot replicate because the source purged required binary logs' }));
    expect(v).toMatchObject({ state: 'broken', why: /no longer has the binary log .*purged/ });
    expect(v.fix).toBeUndefined();
  });

  it('broken when the connection lost its database filter (MariaDB keeps it in memory: an old source restart drops it)', () => {
    const v = reading(mysqlRow({ Replicate_Do_DB: '' }), { replica: maria });
    expect(v).toMatchObject({ state: 'broken', why: /no longer limited to shop/ });
    expect(v.fix).toBe(`on the old source: STOP SLAVE '${NAME}'; SET GLOBAL \`${NAME}\`.replicate_do_db = 'shop'; START SLAVE '${NAME}'; check that nothing of another database was applied, then retry`);
  });

  it('broken on an applier error or a stopped thread, the fix in the replica engine spelling', () => {
    const err = reading(mysqlRow({ Replica_SQL_Running: 'No', Last_SQL_Errno: 1062, Last_SQL_Error: "Duplicate entry '7' for key 'PRIMARY'" }));
    expect(err).toMatchObject({ state: 'broken', why: /stopped: Duplicate entry/, fix: new RegExp(`START REPLICA FOR CHANNEL '${NAME}' on the old source`) });
    const stopped = reading(mysqlRow({ Replica_IO_Running: 'No', Replica_SQL_Running: 'No' }));
    expect(stopped).toMatchObject({ state: 'broken', why: /is stopped \(IO thread stopped, SQL thread stopped\)/ });
    expect(reading(mysqlRow({ Replica_SQL_Running: 'No' }), { replica: maria }).fix).toMatch(new RegExp(`START SLAVE '${NAME}'`));
  });
});
