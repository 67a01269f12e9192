import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { Workload } from '../../adapters/postgres/postgres-workload.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, missingOn, pg, seedDatabase, sleep, startCutoverEnv, workloadThroughBouncer, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { faultResult, onJournal, recordFault } from '../helpers/faults.js';
import { pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

async function edit(file: string, fn: (text: string) => string): Promise<void> {
  await writeFile(file, fn(await readFile(file, 'utf8')));
}

const journalSteps = (status: { journal: Array<{ step: string }> }) => new Set(status.journal.map((r) => r.step));

describe.skipIf(pg15Missing ?? pg17Missing ?? pgbouncerMissing)('router failures during a PostgreSQL cutover', () => {
  let e: PostgresEnv;
  let stateRoot: string;
  let adminLink: FaultProxy;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { bouncerDatabases: ['r_admin', 'r_admin_held', 'r_pause'] });
    stateRoot = await tempStateDir(e.src.dir);
    for (const db of ['r_admin', 'r_admin_held', 'r_pause', 'r_exec']) await seedDatabase(e.src, db, 500);
    adminLink = await FaultProxy.start({ target: { host: e.bouncer!.host, port: e.bouncer!.port } });
  });
  afterAll(async () => {
    await adminLink?.stop();
    await e?.stop();
  });

  it('PgBouncer admin console unreachable when the run starts: preflight stops it (exit 3), nothing fenced, nothing lost', async () => {
    const db = 'r_admin';
    const stateDir = join(stateRoot, db);
    const plan = await writePlan(e, { db, stateDir, router: true });
    // The tool reaches the admin console through the proxy; applications reach PgBouncer directly.
    await edit(plan, (t) => t.replace(`admin: "postgres://pgbouncer_admin@127.0.0.1:${e.bouncer!.port}/`, `admin: "postgres://pgbouncer_admin@127.0.0.1:${adminLink.port}/`));
    const workload = workloadThroughBouncer(e, db, 2);
    let run, status;
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      adminLink.drop({ refuseNew: true });
      run = await cli(['run', plan, '--yes'], e.env);
      status = (await cli(['status', plan, '--json'], e.env)).json();
      adminLink.resume();
      await sleep(300);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code).toBe(3);
    expect(run.err).toMatch(/cannot reach the PgBouncer admin console/);
    expect(journalSteps(status).has('hold')).toBe(false);
    expect(status).toMatchObject({ phase: 'synced', source: { readOnly: false } });
    expect(await canWrite(e.src, db)).toBe(true);
    expect(w.writeErrors).toBe(0);
    const lost = await missingOn(e.src, db, w);
    expect(lost).toEqual([]);
    await recordFault(faultResult('7. PgBouncer admin console unreachable at start', w, lost, run.code, 'exit 3 at preflight, never held or fenced'));
  });

  it('PgBouncer admin console lost while clients are held: the switch cannot be made (exit 5, past the point of no return); with the console back, resume switches and releases them', async () => {
    const db = 'r_admin_held';
    const stateDir = join(stateRoot, db);
    const plan = await writePlan(e, { db, stateDir, router: true });
    await edit(plan, (t) => t.replace(`admin: "postgres://pgbouncer_admin@127.0.0.1:${e.bouncer!.port}/`, `admin: "postgres://pgbouncer_admin@127.0.0.1:${adminLink.port}/`));
    const workload = workloadThroughBouncer(e, db, 2);
    let run, status, resume;
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      await sleep(300);
      // PAUSE is in place once the fence has begun; the run waits at the catch-up's begin, so the cut lands
      // before the switch.
      const cut = onJournal(stateDir, 'fence', 'ok', () => adminLink.drop({ refuseNew: true }));
      run = await cli(['run', plan, '--yes'], e.env, { testPause: { step: 'catch-up', delayMs: 400 } });
      expect(await cut.stop()).toBe(true);
      status = (await cli(['status', plan, '--json'], e.env)).json();
      adminLink.resume();
      resume = await cli(['resume', plan, '--yes'], e.env);
      await sleep(300);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code).toBe(5);
    expect(run.err).toMatch(/after its point of no return/);
    expect(run.err).toMatch(/cutover resume/);
    expect(status.phase).toBe('past-pnr');
    expect(resume.code, resume.err).toBe(0);
    const lost = await missingOn(e.dst, db, w);
    expect(lost).toEqual([]);
    expect(w.writeErrors, JSON.stringify(w.ops.filter((o) => o.outcome !== 'ok').slice(0, 3))).toBe(0);
    expect(await canWrite(e.dst, db)).toBe(true);
    await recordFault(faultResult('7. PgBouncer admin console lost while held', w, lost, run.code, 'exit 5 past PNR, clients held; resume switched and released'));
  });

  it('PAUSE stuck behind a long transaction: the hold times out, RESUME is issued, the source is never fenced, clients see no error', async () => {
    const db = 'r_pause';
    const stateDir = join(stateRoot, db);
    const plan = await writePlan(e, { db, stateDir, router: true, maxWriteBlocked: '1500ms' });
    const workload = workloadThroughBouncer(e, db, 2);
    const long = new pg.Client({ host: e.bouncer!.host, port: e.bouncer!.port, user: 'postgres', password: e.password, database: db });
    long.on('error', () => {});
    let run, longTx;
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      await long.connect();
      await long.query('BEGIN');
      longTx = long
        // Longer than everything the run does before its hold plus the hold's 1.5 s bound, even on a loaded machine
        // (preflight and the verify before the hold took 2-3.5 s at load 8): the PAUSE must time out, not outwait it.
        .query('SELECT pg_sleep(10)')
        .then(() => long.query('COMMIT'))
        .then(
          () => 'committed',
          (err: Error) => err.message,
        );
      run = await cli(['run', plan, '--yes'], e.env);
      await sleep(300);
    } finally {
      var w = await workload.stop();
    }
    expect(await longTx).toBe('committed');
    await long.end();
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/could not pause .* within 1\.50?s.*resumed it/);
    const status = (await cli(['status', plan, '--json'], e.env)).json();
    expect(journalSteps(status).has('fence')).toBe(false);
    expect(status).toMatchObject({ phase: 'synced', source: { readOnly: false } });
    // Resumed: a new transaction through PgBouncer goes straight through.
    const probe = new pg.Client({ host: e.bouncer!.host, port: e.bouncer!.port, user: 'postgres', password: e.password, database: db, query_timeout: 5000 });
    await probe.connect();
    const inserted = await probe.query(`INSERT INTO cutover_workload (client, seq) VALUES (-2, 1)`);
    await probe.end();
    expect(inserted.rowCount).toBe(1);
    expect(w.writeErrors).toBe(0);
    const lost = await missingOn(e.src, db, w);
    expect(lost).toEqual([]);
    await recordFault(faultResult('7. PgBouncer PAUSE stuck behind a long transaction', w, lost, run.code, 'hold timed out, RESUME issued, never fenced'));
  });

  it('exec router command exits non-zero at the switch (after the point of no return): release runs, exit 5, status says resume; resume finishes once the command works', async () => {
    const db = 'r_exec';
    const stateDir = join(stateRoot, db);
    const plan = await writePlan(e, { db, stateDir });
    const okFile = join(stateDir, 'switch-allowed');
    const released = join(stateDir, 'released');
    const sh = (script: string) => JSON.stringify(['/bin/sh', '-c', script]);
    await edit(plan, (t) =>
      t.replace(
        'router: { kind: none }',
        `router: { kind: exec, command: ${sh(`test -e '${okFile}' || { echo 'load balancer refused the switch' >&2; exit 3; }`)}, release: ${sh(`echo "$CUTOVER_PHASE" >> '${released}'`)} }`,
      ),
    );
    const workload = new Workload({ host: e.src.host, port: e.src.port, user: 'postgres', password: e.password, database: db, writers: 2 }).start();
    let run, status, resume;
    try {
      expect((await cli(['sync', plan], e.env)).code).toBe(0);
      await sleep(300);
      run = await cli(['run', plan, '--yes'], e.env);
      status = (await cli(['status', plan, '--json'], e.env)).json();
      await writeFile(okFile, '');
      resume = await cli(['resume', plan, '--yes'], e.env);
      await sleep(300);
    } finally {
      var w = await workload.stop();
    }
    expect(run.code).toBe(5);
    expect(run.err).toMatch(/after its point of no return.*exited 3: load balancer refused the switch/);
    expect(run.err).toMatch(/cutover resume/);
    expect(
      await access(released).then(
        () => true,
        () => false,
      ),
    ).toBe(true);
    expect(status.phase).toBe('past-pnr');
    expect(status.next).toMatch(/resume/);
    expect(resume.code, resume.err).toBe(0);
    const lost = await missingOn(e.dst, db, w);
    expect(lost).toEqual([]);
    expect(await canWrite(e.src, db)).toBe(false);
    expect(await canWrite(e.dst, db)).toBe(true);
    await recordFault(faultResult('7. exec router command fails at the switch', w, lost, run.code, 'exit 5 past PNR, release ran; resume finished on the target'));
  });
});
