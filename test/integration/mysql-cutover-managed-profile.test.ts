import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManagedAdmin, MANAGED_ADMIN_USER } from '../../adapters/mysql/mariadb-managed-profile.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { writeManagedAdminPlan } from '../helpers/managed-plan.js';
import { APP_PASSWORD, APP_USER, envMissing, haproxyPort, mysqlKeysOn, mysqlMissingOn, seedMysqlDatabase, sleep, startCutoverEnv, workloadThroughHaproxy, type MariadbEnv } from '../helpers/cutover-env.js';
import { connect, exec, outcome, readOnly } from '../helpers/mariadb.js';

const ADMIN_PW = 'Mgd:adm/7%';

/** Grants and lock state of the app account on one server, as the server prints them. */
async function appState(sb: MariadbEnv['src']): Promise<string[]> {
  const c = await connect(sb);
  try {
    const [grants] = await c.query<mysql.RowDataPacket[]>(`SHOW GRANTS FOR '${APP_USER}'@'%'`);
    const [create] = await c.query<mysql.RowDataPacket[]>(`SHOW CREATE USER '${APP_USER}'@'%'`);
    return [...grants.map((r) => String(Object.values(r)[0])).sort(), /ACCOUNT LOCK/.test(String(Object.values(create[0]!)[0])) ? 'LOCKED' : 'UNLOCKED'];
  } finally {
    await c.end();
  }
}

/** A fresh app login's INSERT: false when the managed fence stops it (account locked 4151, or no INSERT privilege 1142). */
async function appCanWriteManaged(sb: MariadbEnv['src'], db: string): Promise<boolean> {
  let c: mysql.Connection;
  try {
    c = await connect(sb, { user: APP_USER, password: APP_PASSWORD });
  } catch (e) {
    if ((e as { errno?: number }).errno === 4151) return false;
    throw e;
  }
  try {
    const r = await outcome(c.query(`INSERT INTO \`${db}\`.cutover_workload (client, seq) SELECT -1, COALESCE(MAX(seq), 0) + 1 FROM \`${db}\`.cutover_workload WHERE client = -1`));
    if (r === 'ok') return true;
    if (r === 1142 || r === 1290) return false;
    throw new Error(`unexpected outcome ${r}`);
  } finally {
    await c.end();
  }
}

describe.skipIf(envMissing('mariadb', { router: true }))('MariaDB 10.11 cutover through HAProxy as a managed admin (no SUPER / READ_ONLY ADMIN)', () => {
  let e: MariadbEnv;

  const env = () => ({ ...e.env, ADMIN_PW });

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
    for (const sb of [e.src, e.dst]) await createManagedAdmin(sb, ADMIN_PW);
    await seedMysqlDatabase(e, 'shop', 20_000);
    await seedMysqlDatabase(e, 'slow', 1_000);
  }, 180_000);
  afterAll(async () => e?.stop());

  it('preflight: a server fence without application accounts is a blocker naming READ_ONLY ADMIN and the fix (exit 3), nothing touched', async () => {
    const dir = await tempStateDir(e.src.dir);
    const before = await appState(e.src);
    const p = await writeManagedAdminPlan(e, 'shop', dir, { readOnly: 'readOnly: { scope: server, mode: enforced }' });
    const r = await cli(['check', p, '--json'], env());
    expect(r.code, r.err).toBe(3);
    expect(r.out + r.err).toMatch(/lacks READ_ONLY ADMIN/);
    expect(r.out + r.err).toMatch(/mode: strict, roles/);
    expect(await appState(e.src)).toEqual(before);
    expect(await readOnly(e.src)).toBe(0);
  }, 120_000);

  it('preflight: each privilege the managed fence needs and the source account lacks is a blocker naming it (exit 3)', async () => {
    const dir = await tempStateDir(e.src.dir);
    await exec(e.src, `CREATE USER 'thin'@'%' IDENTIFIED BY 'thin-pw'`, `GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR, SHOW VIEW, EVENT, TRIGGER ON *.* TO 'thin'@'%'`);
    const p = join(dir, 'thin.plan.yaml');
    const text = await readFile(await writeManagedAdminPlan(e, 'shop', dir), 'utf8');
    await writeFile(p, text.replace(`mariadb://${MANAGED_ADMIN_USER}@127.0.0.1:${e.src.port}`, `mariadb://thin@127.0.0.1:${e.src.port}`).replace('passwordEnv: ADMIN_PW }', 'passwordEnv: THIN_PW }'));
    const r = await cli(['check', p, '--json'], { ...env(), THIN_PW: 'thin-pw' });
    expect(r.code, r.err).toBe(3);
    const objects = (r.json().findings as Array<{ severity: string; object?: string }>).filter((f) => f.severity === 'blocker').map((f) => f.object);
    expect(objects).toEqual(expect.arrayContaining(['source CREATE USER', 'source GRANT OPTION', 'source PROCESS', 'source CONNECTION ADMIN']));
  }, 120_000);

  it('budget exceeded (replica stopped): exit 4, the app account gets back exactly its grants and lock state, HAProxy on the source, nothing lost', async () => {
    const dir = await tempStateDir(e.src.dir);
    const before = await appState(e.src);
    // The verify before the hold would stop at the stalled replica with nothing fenced: this test is about the budget.
    const p = await writeManagedAdminPlan(e, 'slow', dir, { extra: 'verify: { before: none }', limits: 'limits: { maxWriteBlocked: 1500ms, maxLagBeforeFence: 1GB }' });
    const check = await cli(['check', p, '--json'], env());
    expect(check.code, check.out + check.err).toBe(0);
    const workload = workloadThroughHaproxy(e, 'slow', 2);
    let run;
    try {
      const sync = await cli(['sync', p], env());
      expect(sync.code, sync.err).toBe(0);
      // The managed target hold: the app account cannot log in to the target until the switch.
      expect((await appState(e.dst)).at(-1)).toBe('LOCKED');
      expect(await readOnly(e.dst)).toBe(0);
      const st = (await cli(['status', p, '--json'], env())).json();
      await exec(e.dst, `STOP SLAVE '${(st.leftovers as Array<{ name: string }>)[0]!.name}'`);
      run = await cli(['run', p, '--yes'], env());
      await sleep(500);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code, run.err).toBe(4);
    expect(run.err).toMatch(/write-downtime budget/);
    expect(await appState(e.src)).toEqual(before);
    expect(await appCanWriteManaged(e.src, 'slow')).toBe(true);
    expect(await haproxyPort(e)).toBe(e.src.port);
    expect(await mysqlMissingOn(e.src, 'slow', w)).toEqual([]);
    // The next test's target must not replicate already: this plan's replica connection goes.
    const rollback = await cli(['rollback', p, '--cleanup'], env());
    expect(rollback.code, rollback.err).toBe(0);
  }, 240_000);

  it('moves every acknowledged write under 4 writers; the source stays fenced by locks and revokes, the target opens', async () => {
    const dir = await tempStateDir(e.src.dir);
    // No reverse path: the old source must not get the later writes back, which proves they went to the target only.
    const p = await writeManagedAdminPlan(e, 'shop', dir, { extra: 'reverse: false' });
    const check = await cli(['check', p, '--json'], env());
    expect(check.code, check.out + check.err).toBe(0);
    const workload = workloadThroughHaproxy(e, 'shop');
    let run;
    try {
      await sleep(300);
      const sync = await cli(['sync', p, '--json'], env());
      expect(sync.code, sync.err).toBe(0);
      await sleep(300);
      run = await cli(['run', p, '--yes', '--json'], env());
      await sleep(800);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code, run.err).toBe(0);
    const report = run.json();
    console.log(
      `MariaDB managed-profile cutover through HAProxy: write-blocked window ${report.writeBlockedMs} ms, max gap between acknowledged writes ${w.maxWriteGapMs} ms, ${w.acknowledged.length} acknowledged, ${w.writeErrors} refused or in doubt`,
    );
    expect(report.catchUp.method).toBe('gtid');
    expect(await mysqlMissingOn(e.dst, 'shop', w)).toEqual([]);
    const onSource = await mysqlKeysOn(e.src, 'shop');
    expect(w.acknowledged.filter((k) => !onSource.has(k)).length).toBeGreaterThan(0);
    for (const op of w.ops.filter((o) => o.outcome === 'fail')) expect(op.error).toMatch(/4151|locked|1142|denied|1290|ECONNRESET|PROTOCOL_CONNECTION_LOST|closed|ETIMEDOUT/i);
    // read_only was never touched on either side.
    expect(await readOnly(e.src)).toBe(0);
    expect(await readOnly(e.dst)).toBe(0);
    expect(await appCanWriteManaged(e.src, 'shop')).toBe(false);
    expect(await appCanWriteManaged(e.dst, 'shop')).toBe(true);
    expect(await haproxyPort(e)).toBe(e.dst.port);
  }, 300_000);
});
