import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManagedAdmin, MANAGED_ADMIN_USER } from '../../adapters/mysql/mariadb-managed-profile.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { writeManagedAdminPlan } from '../helpers/managed-plan.js';
import { envMissing, haproxyPort, mysqlMissingOn, seedMysqlDatabase, sleep, startCutoverEnv, workloadThroughHaproxy, type MariadbEnv } from '../helpers/cutover-env.js';
import { connect, exec, outcome } from '../helpers/mariadb.js';

const ADMIN_PW = 'Rds:adm/9%';

/**
 * What RDS for MariaDB gives its master user instead of REPLICATION SLAVE ADMIN: definer procedures on the one
 * unnamed connection (signatures from the RDS docs), and a replication filter set in the parameter group.
 */
const change = (start: string, first = '') => `
   BEGIN${first}
     SET @rds_change = CONCAT('CHANGE MASTER TO MASTER_HOST = ', QUOTE(host), ', MASTER_PORT = ', port, ', MASTER_USER = ', QUOTE(usr), ', MASTER_PASSWORD = ', QUOTE(pw), ${start}, ', MASTER_SSL = ', ssl_encryption);
     PREPARE rds_stmt FROM @rds_change;
     EXECUTE rds_stmt;
     DEALLOCATE PREPARE rds_stmt;
     SET @rds_change = NULL;
   END`;
const WHO = 'IN host VARCHAR(255), IN port INT, IN usr VARCHAR(255), IN pw VARCHAR(255)';
/** RDS for MariaDB: from a GTID. */
const SET_FROM_GTID = `CREATE DEFINER = 'root'@'localhost' PROCEDURE mysql.rds_set_external_master_gtid(${WHO}, IN gtid VARCHAR(1024), IN ssl_encryption TINYINT) SQL SECURITY DEFINER
   ${change(`', MASTER_USE_GTID = slave_pos'`, ' SET GLOBAL gtid_slave_pos = gtid;')}`;
/** RDS for MySQL 8.0 (and MariaDB): from a binary log file and offset, the only way into RDS for MySQL without gtid_purged. */
const SET_FROM_BINLOG = `CREATE DEFINER = 'root'@'localhost' PROCEDURE mysql.rds_set_external_master(${WHO}, IN log_file VARCHAR(255), IN log_pos BIGINT, IN ssl_encryption TINYINT) SQL SECURITY DEFINER
   ${change(`', MASTER_LOG_FILE = ', QUOTE(log_file), ', MASTER_LOG_POS = ', log_pos, ', MASTER_USE_GTID = no'`)}`;
const RDS_PROCEDURES = [
  `CREATE DEFINER = 'root'@'localhost' PROCEDURE mysql.rds_start_replication() SQL SECURITY DEFINER START SLAVE`,
  `CREATE DEFINER = 'root'@'localhost' PROCEDURE mysql.rds_stop_replication() SQL SECURITY DEFINER STOP SLAVE`,
  `CREATE DEFINER = 'root'@'localhost' PROCEDURE mysql.rds_reset_external_master() SQL SECURITY DEFINER BEGIN STOP SLAVE; RESET SLAVE ALL; END`,
];

async function replicaConnections(sb: MariadbEnv['dst']): Promise<Array<{ name: string; user: string; doDb: string; usingGtid: string }>> {
  const c = await connect(sb);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>('SHOW ALL SLAVES STATUS');
    return rows.map((r) => ({ name: String(r['Connection_name']), user: String(r['Master_User']), doDb: String(r['Replicate_Do_DB']), usingGtid: String(r['Using_Gtid']) }));
  } finally {
    await c.end();
  }
}

/** The old source must not get the later writes back: they are on the target only. */
const plan = (e: MariadbEnv, db: string, stateDir: string) => writeManagedAdminPlan(e, db, stateDir, { extra: 'reverse: false' });

describe.skipIf(envMissing('mariadb', { router: true }))('MariaDB cutover into an RDS-like target: replication through the provider procedures, no REPLICATION SLAVE ADMIN', () => {
  let e: MariadbEnv;

  const env = () => ({ ...e.env, ADMIN_PW });

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
    for (const sb of [e.src, e.dst]) await createManagedAdmin(sb, ADMIN_PW);
    await exec(e.dst, `REVOKE REPLICATION SLAVE ADMIN ON *.* FROM '${MANAGED_ADMIN_USER}'@'%'`, SET_FROM_GTID, ...RDS_PROCEDURES);
    await seedMysqlDatabase(e, 'shop', 20_000);
  }, 180_000);
  afterAll(async () => e?.stop());

  it('the target admin cannot run CHANGE MASTER itself; without the parameter group filter, check is a blocker naming replicate-do-db (exit 3)', async () => {
    const admin = await connect(e.dst, { user: MANAGED_ADMIN_USER, password: ADMIN_PW });
    try {
      expect(await outcome(admin.query(`CHANGE MASTER 'x' TO MASTER_HOST = '127.0.0.1'`))).toBe(1227);
    } finally {
      await admin.end();
    }
    const p = await plan(e, 'shop', await tempStateDir(e.src.dir));
    const r = await cli(['check', p, '--json'], env());
    expect(r.code, r.err).toBe(3);
    const blockers = (r.json().findings as Array<{ severity: string; object?: string; fix: string }>).filter((f) => f.severity === 'blocker');
    expect(blockers.map((b) => b.object)).toEqual(['target replicate_do_db']);
    expect(blockers[0]!.fix).toMatch(/replicate-do-db = shop in the target.s parameter group/);
  }, 120_000);

  it('with the filter set: sync configures the unnamed connection through the procedures, run moves every acknowledged write under 4 writers and removes it', async () => {
    // What the provider does when the parameter group sets replicate-do-db.
    await exec(e.dst, `SET GLOBAL replicate_do_db = 'shop'`);
    const p = await plan(e, 'shop', await tempStateDir(e.src.dir));
    const check = await cli(['check', p, '--json'], env());
    expect(check.code, check.out + check.err).toBe(0);
    const workload = workloadThroughHaproxy(e, 'shop');
    let run;
    try {
      await sleep(300);
      const sync = await cli(['sync', p, '--json'], env());
      expect(sync.code, sync.err).toBe(0);
      const links = await replicaConnections(e.dst);
      expect(links).toHaveLength(1);
      expect(links[0]).toMatchObject({ name: '', doDb: 'shop', usingGtid: 'Slave_Pos' });
      expect(links[0]!.user).toMatch(/^cutover_/);
      const status = (await cli(['status', p, '--json'], env())).json();
      expect((status.leftovers as Array<{ drop: string }>).map((l) => l.drop)).toContain('CALL mysql.rds_stop_replication; CALL mysql.rds_reset_external_master');
      // A second sync finds the link it made instead of copying again.
      const again = await cli(['sync', p], env());
      expect(again.code, again.err).toBe(0);
      expect(again.err).toMatch(/already replicates through the target.s replication \(mysql\.rds_\* procedures\)/);
      await sleep(300);
      run = await cli(['run', p, '--yes', '--json'], env());
      await sleep(800);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code, run.err).toBe(0);
    expect(run.json().catchUp.method).toBe('gtid');
    expect(await mysqlMissingOn(e.dst, 'shop', w)).toEqual([]);
    expect(await haproxyPort(e)).toBe(e.dst.port);
    expect(await replicaConnections(e.dst)).toEqual([]);
  }, 300_000);
});

describe.skipIf(envMissing('mariadb', { router: true }))(
  'into a target whose procedure starts from a binary log file and offset (RDS for MySQL 8.0 has only that one: its GTID procedure needs a gtid_purged the admin cannot set)',
  () => {
    let e: MariadbEnv;
    const env = () => ({ ...e.env, ADMIN_PW });

    beforeAll(async () => {
      e = await startCutoverEnv('mariadb');
      for (const sb of [e.src, e.dst]) await createManagedAdmin(sb, ADMIN_PW);
      await exec(e.dst, `REVOKE REPLICATION SLAVE ADMIN ON *.* FROM '${MANAGED_ADMIN_USER}'@'%'`, SET_FROM_BINLOG, ...RDS_PROCEDURES, `SET GLOBAL replicate_do_db = 'shop'`);
      await seedMysqlDatabase(e, 'shop', 5_000);
    }, 180_000);
    afterAll(async () => e?.stop());

    it('sync hands the procedure the copy’s binary log coordinates; run proves catch-up by the source’s binary log position under 4 writers and removes the link', async () => {
      const p = await plan(e, 'shop', await tempStateDir(e.src.dir));
      const workload = workloadThroughHaproxy(e, 'shop');
      let run;
      try {
        await sleep(300);
        const sync = await cli(['sync', p, '--json'], env());
        expect(sync.code, sync.err).toBe(0);
        expect(sync.err).toMatch(/follows the source from its binary log at .+:\d+/);
        expect(await replicaConnections(e.dst)).toMatchObject([{ name: '', doDb: 'shop', usingGtid: 'No' }]);
        await sleep(300);
        run = await cli(['run', p, '--yes', '--json'], env());
        await sleep(800);
      } finally {
        var w = await workload.stop();
      }
      expect(run.code, run.err).toBe(0);
      const proof = run.json().catchUp;
      expect(proof.method).toBe('binlog');
      // The chunked verify before the hold waited for the target the same way (by position, not by GTID set).
      expect(run.json().verifyBefore).toMatchObject({ outcome: 'verified', mismatchCount: 0 });
      expect(proof.fencePosition).toMatch(/^[\w.-]+\.\d+:\d+$/);
      expect(w.acknowledged.length).toBeGreaterThan(0);
      expect(await mysqlMissingOn(e.dst, 'shop', w)).toEqual([]);
      expect(await haproxyPort(e)).toBe(e.dst.port);
      expect(await replicaConnections(e.dst)).toEqual([]);
    }, 300_000);
  },
);
