import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMysql } from '../../adapters/mysql/mysql-connection.js';
import { parseDbUrl } from '../../src/util/db-url.js';
import { ensureBuilt } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { appWritable, ENGINES, envMissing, seed, startCutoverEnv, writeEnvPlan, type CutoverEnv } from '../helpers/cutover-env.js';
import { killAtStep, parkAtStep } from '../helpers/kill-at-step.js';

/** What differs per engine: the databases its tests use, and how the lock on the source names its holder. */
const ENGINE = {
  postgres: {
    dbs: ['duo', 'stale', 'apart', 'remote'],
    rows: 500,
    refusedBy: /locked on the source: session \d+ \("cutover pid \d+@[^"]+"/,
    forcedPast: /source is writable again.*locked on the source by session \d+ \("cutover pid \d+@[^"]+".*journal and cleanup were skipped/,
  },
  mariadb: {
    dbs: ['apart'],
    rows: 300,
    refusedBy: /locked on the source: session \d+ \(user root, from 127\.0\.0\.1:\d+\)/,
    forcedPast: /source is writable again.*locked on the source by session \d+ \(user root, from 127\.0\.0\.1:\d+\)/,
  },
} as const;

describe.each(ENGINES)('%s', (engine) => {
  const { refusedBy, forcedPast } = ENGINE[engine];

  describe.skipIf(envMissing(engine))('two operators run the same plan', () => {
    let e: CutoverEnv;
    let stateRoot: string;

    beforeAll(async () => {
      await ensureBuilt();
      // The plans route nowhere: MariaDB needs no HAProxy here.
      e = await startCutoverEnv(engine, { haproxy: false });
      stateRoot = await tempStateDir(e.src.dir);
      for (const db of ENGINE[engine].dbs) await seed(e, db, ENGINE[engine].rows);
    });
    afterAll(async () => e?.stop());

    if (engine === 'postgres') {
      it('at once: exactly one proceeds, the other exits 5 naming the holder and changes nothing', async () => {
        const plan = await writeEnvPlan(e, { db: 'duo', stateDir: join(stateRoot, 'duo') });
        expect((await cli(['sync', plan], e.env)).code).toBe(0);
        const [a, b] = await Promise.all([cli(['run', plan, '--yes'], e.env), cli(['run', plan, '--yes'], e.env)]);
        const codes = [a.code, b.code].sort();
        expect(codes, a.err + b.err).toEqual([0, 5]);
        const loser = a.code === 5 ? a : b;
        expect(loser.err).toMatch(/lock|held by|already cut over/);
        expect(await appWritable(e, 'src', 'duo')).toBe(false);
        expect(await appWritable(e, 'dst', 'duo')).toBe(true);
      });

      it('a stale lock left by a killed run is taken over with a higher fencing token', async () => {
        const stateDir = join(stateRoot, 'stale');
        const plan = await writeEnvPlan(e, { db: 'stale', stateDir });
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
        expect(await appWritable(e, 'dst', 'stale')).toBe(true);
        const journalFile = (await readdir(stateDir)).find((f) => f.endsWith('.journal'))!;
        const records = (await readFile(join(stateDir, journalFile), 'utf8'))
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        expect(records.at(-1).token).toBeGreaterThan(staleToken);
      });
    }

    if (engine === 'mariadb') {
      it("the tool's sessions (which hold GET_LOCK) are not closed by the server's idle timeouts", async () => {
        const { conn } = await connectMysql(parseDbUrl(e.src.url('apart'), { password: e.src.password }));
        try {
          const [rows] = await conn.query<import('mysql2/promise').RowDataPacket[]>('SELECT @@session.wait_timeout AS w, @@session.interactive_timeout AS i');
          expect({ w: Number(rows[0]!.w), i: Number(rows[0]!.i) }).toEqual({ w: 31536000, i: 31536000 });
        } finally {
          await conn.end();
        }
      });
    }

    it('with separate state dirs: the second runner is refused by the plan lock on the source, naming the holder; it is let in once the first is gone', async () => {
      const dirA = join(stateRoot, 'apart-a');
      const dirB = join(stateRoot, 'apart-b');
      await Promise.all([mkdir(dirA), mkdir(dirB)]);
      const planA = await writeEnvPlan(e, { db: 'apart', stateDir: dirA, router: false });
      const planB = await writeEnvPlan(e, { db: 'apart', stateDir: dirB, router: false });
      expect((await cli(['sync', planA], e.env)).code).toBe(0);
      const a = await parkAtStep(['run', planA, '--yes'], e.env, dirA, 'verify');
      const byA = `cutover pid ${a.child.pid}@`;
      try {
        const refused =
          engine === 'postgres'
            ? [
                ['run', planB, '--yes'],
                ['sync', planB],
                ['resume', planB, '--yes'],
              ]
            : [['run', planB, '--yes']];
        for (const args of refused) {
          const b = await cli(args, e.env);
          expect(b.code, `${args[0]}: ${b.err}`).toBe(5);
          expect(b.err).toMatch(refusedBy);
          if (engine === 'postgres') expect(b.err).toContain(byA);
        }
        // The second runner changed nothing: the source is still fenced by the first, which still holds its lock.
        expect(await appWritable(e, 'src', 'apart')).toBe(false);
        // A rollback from elsewhere cannot know the holder is gone: refused, nothing changed, the holder named.
        const refusedRb = await cli(['rollback', planB], e.env);
        expect(refusedRb.code, refusedRb.err).toBe(5);
        expect(refusedRb.err).toMatch(/locked on the source by .*nothing was changed/);
        if (engine === 'postgres') expect(refusedRb.err).toContain('--force');
        expect(await appWritable(e, 'src', 'apart')).toBe(false);
        // --force (the operator says the holder is gone) unfences anyway and names the holder.
        const rb = await cli(['rollback', planB, '--force'], e.env);
        expect(rb.code, rb.err).toBe(5);
        expect(rb.err).toMatch(forcedPast);
        if (engine === 'postgres') expect(rb.err).toContain(byA);
        expect(await appWritable(e, 'src', 'apart')).toBe(true);
      } finally {
        var stopped = await a.stop('SIGINT');
      }
      expect(stopped.exitCode, stopped.stderr).toBe(1);
      expect(await appWritable(e, 'src', 'apart')).toBe(true);
      // Once the first runner is gone its server lock is free: the other state dir is let in.
      const b = await cli(['rollback', planB], e.env);
      expect(b.code, b.err).toBe(0);
      if (engine === 'mariadb') {
        // The run checks with IS_USED_LOCK that its session still holds GET_LOCK before the hold and at the point of no return.
        const done = await cli(['run', planB, '--yes'], e.env);
        expect(done.code, done.err).toBe(0);
      }
    });

    if (engine === 'postgres') {
      it('--force takes over a file lock of a holder on another host only once the server lock shows it is gone', async () => {
        const stateDir = join(stateRoot, 'remote');
        const plan = await writeEnvPlan(e, { db: 'remote', stateDir });
        expect((await cli(['sync', plan], e.env)).code).toBe(0);
        const planId = (await cli(['status', plan, '--json'], e.env)).json().planId as string;
        await writeFile(join(stateDir, `${planId}.lock`), JSON.stringify({ planId, token: 99, pid: 4242, hostname: 'elsewhere.example', startedAt: new Date().toISOString() }) + '\n');
        const refused = await cli(['run', plan, '--yes'], e.env);
        expect(refused.code).toBe(5);
        expect(refused.err).toMatch(/pid 4242 on elsewhere\.example/);
        expect(refused.err).toMatch(/--force/);
        expect(await appWritable(e, 'src', 'remote')).toBe(true);
        const forced = await cli(['run', plan, '--yes', '--force'], e.env);
        expect(forced.code, forced.err).toBe(0);
        expect(await appWritable(e, 'dst', 'remote')).toBe(true);
      });
    }
  });
});
