import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { killAtStep, parkAtStep } from '../helpers/kill-at-step.js';
import { pg15Missing, pg17Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing ?? pg17Missing)('two operators run the same plan', () => {
  let e: PostgresEnv;
  let stateRoot: string;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startCutoverEnv('postgres');
    stateRoot = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'duo', 500);
    await seedDatabase(e.src, 'stale', 500);
    await seedDatabase(e.src, 'apart', 500);
    await seedDatabase(e.src, 'remote', 500);
  });
  afterAll(async () => e?.stop());

  it('at once: exactly one proceeds, the other exits 5 naming the holder and changes nothing', async () => {
    const plan = await writePlan(e, { db: 'duo', stateDir: join(stateRoot, 'duo') });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    const [a, b] = await Promise.all([cli(['run', plan, '--yes'], e.env), cli(['run', plan, '--yes'], e.env)]);
    const codes = [a.code, b.code].sort();
    expect(codes, a.err + b.err).toEqual([0, 5]);
    const loser = a.code === 5 ? a : b;
    expect(loser.err).toMatch(/lock|held by|already cut over/);
    expect(await canWrite(e.src, 'duo')).toBe(false);
    expect(await canWrite(e.dst, 'duo')).toBe(true);
  });

  it('a stale lock left by a killed run is taken over with a higher fencing token', async () => {
    const stateDir = join(stateRoot, 'stale');
    const plan = await writePlan(e, { db: 'stale', stateDir });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    await killAtStep(['run', plan, '--yes'], e.env, stateDir, 'verify');
    const st = (await cli(['status', plan, '--json'], e.env)).json();
    expect(st.phase).toBe('in-flight');
    const staleToken = st.lock.token;
    const resumed = await cli(['resume', plan, '--yes', '--json'], e.env);
    expect(resumed.code, resumed.err).toBe(0);
    const after = (await cli(['status', plan, '--json'], e.env)).json();
    expect(after.phase).toBe('done');
    expect(after.lock).toBeUndefined();
    expect(await canWrite(e.dst, 'stale')).toBe(true);
    const journalFile = (await readdir(stateDir)).find((f) => f.endsWith('.journal'))!;
    const records = (await readFile(join(stateDir, journalFile), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(records.at(-1).token).toBeGreaterThan(staleToken);
  });

  it('with separate state dirs: the second runner is refused by the plan lock on the source, naming the holder', async () => {
    const dirA = join(stateRoot, 'apart-a');
    const dirB = join(stateRoot, 'apart-b');
    const planA = await writePlan(e, { db: 'apart', stateDir: dirA });
    const planB = await writePlan(e, { db: 'apart', stateDir: dirB });
    expect((await cli(['sync', planA], e.env)).code).toBe(0);
    const a = await parkAtStep(['run', planA, '--yes'], e.env, dirA, 'verify');
    try {
      for (const args of [['run', planB, '--yes'], ['sync', planB], ['resume', planB, '--yes']]) {
        const b = await cli(args, e.env);
        expect(b.code, `${args[0]}: ${b.err}`).toBe(5);
        expect(b.err).toMatch(/locked on the source: session \d+ \("cutover pid \d+@[^"]+"/);
        expect(b.err).toContain(`cutover pid ${a.child.pid}@`);
      }
      // The second runner changed nothing: the source is still fenced by the first, which still holds its lock.
      expect(await canWrite(e.src, 'apart')).toBe(false);
      // A rollback from elsewhere cannot know the holder is gone: refused, nothing changed, the holder named.
      const refusedRb = await cli(['rollback', planB], e.env);
      expect(refusedRb.code, refusedRb.err).toBe(5);
      expect(refusedRb.err).toMatch(/locked on the source by .*nothing was changed/);
      expect(refusedRb.err).toContain('--force');
      expect(await canWrite(e.src, 'apart')).toBe(false);
      // --force (the operator says the holder is gone) unfences anyway and names the holder.
      const rb = await cli(['rollback', planB, '--force'], e.env);
      expect(rb.code, rb.err).toBe(5);
      expect(rb.err).toMatch(/source is writable again.*locked on the source by session \d+ \("cutover pid \d+@[^"]+".*journal and cleanup were skipped/);
      expect(rb.err).toContain(`cutover pid ${a.child.pid}@`);
      expect(await canWrite(e.src, 'apart')).toBe(true);
    } finally {
      var stopped = await a.stop('SIGINT');
    }
    expect(stopped.exitCode, stopped.stderr).toBe(1);
    expect(await canWrite(e.src, 'apart')).toBe(true);
    // Once the first runner is gone its server lock is free: the other state dir is let in.
    const b = await cli(['rollback', planB], e.env);
    expect(b.code, b.err).toBe(0);
  });

  it('--force takes over a file lock of a holder on another host only once the server lock shows it is gone', async () => {
    const stateDir = join(stateRoot, 'remote');
    const plan = await writePlan(e, { db: 'remote', stateDir });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    const planId = (await cli(['status', plan, '--json'], e.env)).json().planId as string;
    await writeFile(join(stateDir, `${planId}.lock`), JSON.stringify({ planId, token: 99, pid: 4242, hostname: 'elsewhere.example', startedAt: new Date().toISOString() }) + '\n');
    const refused = await cli(['run', plan, '--yes'], e.env);
    expect(refused.code).toBe(5);
    expect(refused.err).toMatch(/pid 4242 on elsewhere\.example/);
    expect(refused.err).toMatch(/--force/);
    expect(await canWrite(e.src, 'remote')).toBe(true);
    const forced = await cli(['run', plan, '--yes', '--force'], e.env);
    expect(forced.code, forced.err).toBe(0);
    expect(await canWrite(e.dst, 'remote')).toBe(true);
  });
});
