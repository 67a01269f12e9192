import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missing } from '../helpers/availability.js';
import { BUILT_CLI, ROOT } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { connect, mariadbMissing } from '../helpers/mariadb.js';
import { appCanWrite, seedMysqlDatabase, sleep, startCutoverEnv, workloadThroughHaproxy, writeMysqlPlan, type MariadbEnv } from '../helpers/cutover-env.js';
import { findHaproxy } from '../../src/sandbox/haproxy-sandbox.js';

const haproxyMissing = await missing('HAProxy (haproxy)', () => findHaproxy());
const DB = 'vshop';
const ROWS = 30_000;
const PLANTED = 4242;

/** Keeps changing rows of items on the source (ids above the planted one). */
function updater(e: MariadbEnv): { stop(): Promise<number> } {
  let running = true;
  let updates = 0;
  const done = (async () => {
    const c = await connect(e.src);
    try {
      while (running) {
        await c.query(`UPDATE \`${DB}\`.items SET price = price + 1, name = CONCAT(name, '.') WHERE id = ?`, [10_000 + Math.floor(Math.random() * (ROWS - 10_000))]);
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

describe.skipIf(mariadbMissing ?? haproxyMissing)('online chunked verify before the fence (MariaDB 10.11)', () => {
  let e: MariadbEnv;
  let stateDir: string;
  let plan: string;

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
    stateDir = await tempStateDir(e.src.dir);
    await seedMysqlDatabase(e, DB, ROWS);
    plan = await writeMysqlPlan(e, { db: DB, stateDir, extra: 'verify: { before: chunks, chunkRows: 100 }' });
    const sync = await cli(['sync', plan, '--json'], e.env);
    expect(sync.code, sync.err).toBe(0);
  });
  afterAll(async () => e?.stop());

  it('passes under concurrent inserts and updates: no false mismatch', async () => {
    const writers = workloadThroughHaproxy(e, DB);
    const upd = updater(e);
    await sleep(300);
    const r = await cli(['verify', plan, '--json', '--restart'], e.env);
    const updates = await upd.stop();
    const w = await writers.stop();
    expect(r.code, r.err + r.out).toBe(0);
    const doc = r.json();
    console.log(`MariaDB verify under ${w.acknowledged.length} inserts and ${updates} updates: ${doc.chunks} chunks, ${doc.rows} rows, ${doc.durationMs} ms, longest table lock ${doc.maxLockedMs} ms`);
    expect(doc).toMatchObject({ ok: true, outcome: 'verified', mismatchCount: 0 });
    expect(doc.tables).toBe(2);
    expect(doc.rows).toBeGreaterThanOrEqual(ROWS);
    expect(updates).toBeGreaterThan(0);
    expect(w.writeErrors).toBe(0);
  });

  it('resumes after a kill', async () => {
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
    expect(again.json().resumedChunks).toBe(recorded);
    expect(again.json().chunks).toBeGreaterThan(recorded);
  });

  it('finds a row changed on the target, and run then fences nothing', async () => {
    const t = await connect(e.dst);
    try {
      await t.query(`UPDATE \`${DB}\`.items SET name = 'tampered' WHERE id = ?`, [PLANTED]);
      const r = await cli(['verify', plan, '--json', '--restart'], e.env);
      expect(r.code).toBe(1);
      const m = r.json().result.mismatches[0];
      expect(m.table).toBe('items');
      expect(Number(m.lo[0])).toBeLessThan(PLANTED);
      expect(Number(m.hi[0])).toBeGreaterThanOrEqual(PLANTED);
      const run = await cli(['run', plan, '--yes'], e.env);
      expect(run.code).toBe(1);
      expect(run.err).toMatch(/verify found 1 chunk\(s\) that differ/);
      expect(await appCanWrite(e.src, DB)).toBe(true);
    } finally {
      await t.end();
    }
  });
});
