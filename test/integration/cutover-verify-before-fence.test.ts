import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Workload } from '../../adapters/postgres/postgres-workload.js';
import { BUILT_CLI, ROOT } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { adminSession, appWritable, ENGINES, envMissing, seed, sleep, startCutoverEnv, workloadThroughHaproxy, writeEnvPlan, type CutoverEnv } from '../helpers/cutover-env.js';

const DB = 'vshop';
/** A row the planted-difference test changes on the target; the updater stays away from it. */
const PLANTED = 4242;

/** What differs per engine: table size, the updater's and the planter's SQL, the table name verify reports. */
const ENGINE = {
  postgres: {
    rows: 60_000,
    touch: `UPDATE items SET price = price + 1, name = name || '.' WHERE id = $1`,
    nameOf: 'SELECT name FROM items WHERE id = $1',
    rename: 'UPDATE items SET name = $1 WHERE id = $2',
    // The target database stays read-only for sessions until the switch.
    writableSession: ['SET default_transaction_read_only = off'],
    table: 'public.items',
  },
  mariadb: {
    rows: 30_000,
    touch: `UPDATE items SET price = price + 1, name = CONCAT(name, '.') WHERE id = ?`,
    nameOf: 'SELECT name FROM items WHERE id = ?',
    rename: 'UPDATE items SET name = ? WHERE id = ?',
    writableSession: [],
    table: 'items',
  },
} as const;

/** Keeps changing rows of items on the source (ids above the planted one), as an app would. */
function updater(e: CutoverEnv, rows: number): { stop(): Promise<number> } {
  let running = true;
  let updates = 0;
  const done = (async () => {
    const c = await adminSession(e, 'src', DB);
    try {
      while (running) {
        await c.query(ENGINE[e.engine].touch, [10_000 + Math.floor(Math.random() * (rows - 10_000))]);
        updates++;
      }
    } finally {
      await c.end();
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return updates;
    },
  };
}

async function ledgerChunks(stateDir: string): Promise<number> {
  const file = (await readdir(stateDir)).find((f) => f.endsWith('.verify.json'));
  if (!file) return 0;
  return (JSON.parse(await readFile(join(stateDir, file), 'utf8').catch(() => '{}')) as { chunks?: number }).chunks ?? 0;
}

describe.each(ENGINES)('%s', (engine) => {
  const { rows: ROWS, table } = ENGINE[engine];

  // MariaDB's writers go through HAProxy.
  describe.skipIf(envMissing(engine, { router: engine === 'mariadb' }))('online chunked verify before the fence', () => {
    let e: CutoverEnv;
    let stateDir: string;
    let plan: string;

    beforeAll(async () => {
      e = await startCutoverEnv(engine);
      stateDir = await tempStateDir(e.src.dir);
      await seed(e, DB, ROWS);
      plan = await writeEnvPlan(e, { db: DB, stateDir, extra: 'verify: { before: chunks, chunkRows: 100 }' });
      const sync = await cli(['sync', plan, '--json'], e.env);
      expect(sync.code, sync.err).toBe(0);
    });
    afterAll(async () => e?.stop());

    it('passes under concurrent inserts and updates: no false mismatch', async () => {
      const writers = e.engine === 'postgres' ? new Workload({ host: '127.0.0.1', port: e.src.port, user: 'postgres', password: e.password, database: DB, writers: 4, readers: 0 }).start() : workloadThroughHaproxy(e, DB);
      const upd = updater(e, ROWS);
      await sleep(300);
      const r = await cli(['verify', plan, '--json', '--restart'], e.env);
      const updates = await upd.stop();
      const w = await writers.stop();
      expect(r.code, r.err + r.out).toBe(0);
      const doc = r.json();
      console.log(`${engine} verify under ${w.acknowledged.length} inserts and ${updates} updates: ${doc.chunks} chunks, ${doc.rows} rows, ${doc.durationMs} ms, longest table lock ${doc.maxLockedMs} ms`);
      expect(doc).toMatchObject({ ok: true, action: 'verify', outcome: 'verified', reused: false, mismatchCount: 0, mismatches: [] });
      expect(doc.tables).toBe(2);
      expect(doc.chunks).toBeGreaterThanOrEqual(ROWS / 100);
      expect(doc.rows).toBeGreaterThanOrEqual(ROWS);
      expect(updates).toBeGreaterThan(0);
      expect(w.writeErrors).toBe(0);
      // PostgreSQL names the consistent point as an LSN.
      if (engine === 'postgres') expect(r.err).toMatch(/consistent point at [0-9A-F]+\/[0-9A-F]+/);
    });

    it('resumes after a kill: a re-run continues after the chunks the killed one recorded', async () => {
      await rm(join(stateDir, (await readdir(stateDir)).find((f) => f.endsWith('.verify.json')) ?? 'none'), { force: true });
      const child = execa('node', [BUILT_CLI, 'verify', plan, '--restart'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...e.env }, extendEnv: false, reject: false });
      const deadline = Date.now() + 60_000;
      while ((await ledgerChunks(stateDir)) < 5) {
        if (child.exitCode !== null) throw new Error(`verify ended (exit ${child.exitCode}) before it was killed`);
        if (Date.now() > deadline) throw new Error('verify recorded no chunks within 60s');
        await sleep(10);
      }
      child.kill('SIGKILL');
      await child;
      const recorded = await ledgerChunks(stateDir);
      const again = await cli(['verify', plan, '--json'], e.env);
      expect(again.code, again.err + again.out).toBe(0);
      const doc = again.json();
      expect(doc.resumedChunks).toBe(recorded);
      expect(doc.chunks).toBeGreaterThan(recorded);
      expect(doc.mismatchCount).toBe(0);
      expect(again.err).toContain(`continuing an interrupted verify: ${recorded} chunk(s)`);
      // A finished clean pass is reused, not redone, unless --restart.
      const third = await cli(['verify', plan, '--json'], e.env);
      expect(third.json()).toMatchObject({ reused: true, chunks: doc.chunks });
    });

    it('finds a row changed on the target, names its key range, and run then fences nothing', async () => {
      const t = await adminSession(e, 'dst', DB);
      try {
        for (const sql of ENGINE[engine].writableSession) await t.query(sql);
        const before = String((await t.query(ENGINE[engine].nameOf, [PLANTED]))[0]!.name);
        await t.query(ENGINE[engine].rename, ['tampered', PLANTED]);

        const r = await cli(['verify', plan, '--json', '--restart'], e.env);
        expect(r.code).toBe(1);
        const doc = r.json();
        expect(doc.error.message).toMatch(new RegExp(`verify found 1 chunk\\(s\\) that differ .*${table.replace('.', '\\.')} keys \\(\\d+, \\d+\\]`));
        const m = doc.result.mismatches[0];
        expect(m.table).toBe(table);
        expect(Number(m.lo[0])).toBeLessThan(PLANTED);
        expect(Number(m.hi[0])).toBeGreaterThanOrEqual(PLANTED);
        expect(m.source.split(':')[0]).toBe(m.target.split(':')[0]);

        const run = await cli(['run', plan, '--yes'], e.env);
        expect(run.code).toBe(1);
        expect(run.err).toMatch(/verify found 1 chunk\(s\) that differ/);
        expect(run.err).not.toMatch(/✔ (hold|fence):/);
        expect(await appWritable(e, 'src', DB)).toBe(true);

        // Once the difference is repaired the run goes through (PostgreSQL only: one full cutover per file is enough).
        if (engine !== 'postgres') return;
        await t.query(ENGINE[engine].rename, [before, PLANTED]);
        const fixed = await cli(['run', plan, '--yes', '--json'], e.env);
        expect(fixed.code, fixed.err).toBe(0);
        expect(fixed.json().verifyBefore).toMatchObject({ outcome: 'verified', reused: false, mismatchCount: 0 });
        expect(fixed.json().verify.mode).toBe('none');
        expect(fixed.json().steps.map((s: { step: string }) => s.step)).toContain('verify-before');
      } finally {
        await t.end();
      }
    });
  });
});
