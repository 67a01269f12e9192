import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayJournal } from '../../src/engine/journal.js';
import { tenantPlan } from '../../src/engine/waves-plan.js';
import { loadPlan, planId } from '../../src/plan/index.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { exec, mariadbMissing } from '../helpers/mariadb.js';
import { startWavesEnv, type MariadbEnv } from '../helpers/cutover-env.js';
import { appCanWriteTenant, appPrivileges, routerEntries, seedMysqlTenants, writeMysqlWavesPlan } from '../helpers/waves-env.js';

const TENANTS = ['lk_leaky', 'lk_big', 'lk_late', 'lk_fine'];

/** Resolves when the tenant's journal records `step` begun (polled). */
async function stepReached(planFile: string, tenant: string, step: string, status: 'begin' | 'ok', stop: () => boolean): Promise<boolean> {
  const tp = tenantPlan(await loadPlan(planFile), tenant);
  while (!stop()) {
    const { records } = await replayJournal(tp.stateDir, planId(tp)).catch(() => ({ records: [] as Array<{ step: string; status: string }> }));
    if (records.some((r) => r.step === step && r.status === status)) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

describe.skipIf(mariadbMissing)('MariaDB waves: a tenant whose fence leaks or whose copy outgrows the budget is rolled back alone; a SQL transform reshapes the others', () => {
  let e: MariadbEnv;
  let stateDir: string;

  beforeAll(async () => {
    e = await startWavesEnv('mariadb');
    stateDir = await tempStateDir(e.src.dir);
    await seedMysqlTenants(e, TENANTS);
    // Too big to dump and load within the budget on any machine this runs on.
    await exec(e.src, 'USE lk_big', "INSERT INTO lk_big.items (name, price) SELECT CONCAT('bulk ', seq, REPEAT('x', 40)), seq % 100 FROM seq_1_to_1500000");
    // An account the per-database fence cannot stop: its INSERT is granted on every database.
    await exec(e.src, `CREATE USER 'batch'@'%' IDENTIFIED BY 'batch-pw'`, `GRANT SELECT, INSERT ON *.* TO 'batch'@'%'`);
  });
  afterAll(async () => e?.stop());

  it('leak → rolled back (a write after the copy began is never lost on the source); too big → budget exit, unfenced; the others move', async () => {
    const routerFile = join(stateDir, 'tenants.json');
    // A SQL transform of two statements, run in one transaction on each copy that passes verify.
    const sql = join(stateDir, 'reshape.sql');
    await writeFile(sql, "UPDATE items SET name = UPPER(name) WHERE id <= 10;\nINSERT INTO items (name, price) VALUES ('transformed', 0);\n");
    const plan = await writeMysqlWavesPlan(e, { name: 'lk', tenants: TENANTS, stateDir, routerFile, waves: `waves: { maxWriteBlockedPerTenant: 4s, transform: { sql: "${sql}" } }` });
    const grants = Object.fromEntries(await Promise.all(TENANTS.map(async (t) => [t, await appPrivileges(e.src, t)] as const)));

    let stop = false;
    let batchRows = 0;
    const batch = (async () => {
      const c = await mysql.createConnection({ host: '127.0.0.1', port: e.src.port, user: 'batch', password: 'batch-pw' });
      c.on('error', () => {});
      try {
        for (let i = 1; !stop; i++) {
          await c.query('INSERT INTO lk_leaky.cutover_workload (client, seq) VALUES (99, ?)', [i]);
          batchRows++;
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        await c.end().catch(() => {});
      }
    })();
    // One write by the unfenced account once lk_late is fenced (its fence's ok is durable in the journal; the
    // copy inside the window follows at once — the records in between are written with the next durable one):
    // it lands before the copy's snapshot (then it is copied) or after it (then verify or the leak watch must
    // stop the switch); never lost.
    let late: 'written' | 'not reached' = 'not reached';
    const lateWrite = (async () => {
      if (!(await stepReached(plan, 'lk_late', 'fence', 'ok', () => stop))) return;
      const c = await mysql.createConnection({ host: '127.0.0.1', port: e.src.port, user: 'batch', password: 'batch-pw' });
      try {
        await c.query('INSERT INTO lk_late.cutover_workload (client, seq) VALUES (98, 1)');
        late = 'written';
      } finally {
        await c.end().catch(() => {});
      }
    })();
    let r;
    try {
      r = await cli(['waves', plan, '--yes', '--json'], e.env);
    } finally {
      stop = true;
      await batch;
      await lateWrite;
    }
    expect(r.code, r.err).toBe(1);
    const tenants = Object.fromEntries(r.json().result.tenants.map((t: { tenant: string; state: string; error?: { exitCode: number; message: string } }) => [t.tenant, t]));
    console.log(`lk_leaky: ${tenants.lk_leaky.error?.message}\nlk_big: ${tenants.lk_big.error?.message}`);
    expect(tenants.lk_fine.state).toBe('done');
    expect(tenants.lk_leaky).toMatchObject({ state: 'rolled-back', error: { message: expect.stringMatching(/leak check failed|verify found/) } });
    expect(tenants.lk_big).toMatchObject({ state: 'rolled-back', error: { exitCode: 4, message: expect.stringMatching(/budget/) } });

    // The rolled-back tenants are whole on their source, writable with exactly their old grants, routed there.
    const entries = await routerEntries(routerFile);
    for (const t of ['lk_leaky', 'lk_big']) {
      expect(await appPrivileges(e.src, t)).toEqual(grants[t]);
      expect(await appCanWriteTenant(e.src, t)).toBe(true);
      expect(entries[t]).toMatchObject({ port: e.src.port });
    }
    expect(entries.lk_fine).toMatchObject({ port: e.dst.port });
    const t = await mysql.createConnection({ host: '127.0.0.1', port: e.dst.port, user: 'root', password: e.env.DST_PW });
    try {
      const [rows] = await t.query<mysql.RowDataPacket[]>("SELECT SUM(name = 'transformed') AS added, SUM(BINARY name = 'ITEM 1') AS upper FROM lk_fine.items");
      expect({ added: Number(rows[0]!.added), upper: Number(rows[0]!.upper) }).toEqual({ added: 1, upper: 1 });
    } finally {
      await t.end();
    }
    expect(batchRows).toBeGreaterThan(0);

    expect(late).toBe('written');
    const lateOn = entries.lk_late!.port === e.dst.port ? e.dst : e.src;
    console.log(`lk_late: ${tenants.lk_late.state}${tenants.lk_late.error ? ` (${tenants.lk_late.error.message})` : ''}`);
    expect(tenants.lk_late.state === 'done' ? e.dst : e.src).toBe(lateOn);
    const l = await mysql.createConnection({ host: '127.0.0.1', port: lateOn.port, user: 'root', password: e.env.SRC_PW });
    try {
      const [rows] = await l.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM lk_late.cutover_workload WHERE client = 98');
      expect(Number(rows[0]!.n)).toBe(1);
    } finally {
      await l.end();
    }
    const c = await mysql.createConnection({ host: '127.0.0.1', port: e.src.port, user: 'root', password: e.env.SRC_PW });
    try {
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM lk_leaky.cutover_workload WHERE client = 99');
      expect(Number(rows[0]!.n)).toBe(batchRows);
    } finally {
      await c.end();
    }
  });
});
