import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from './cli.js';
import { ensureBuilt } from './built-cli.js';
import { canWrite, missingOn, seedDatabase, sleep, startCutoverEnv, workloadThroughBouncer, writePlan, type CutoverEnv } from './cutover-env.js';
import { killAtStep } from './kill-at-step.js';
import { pg15Missing, pg17Missing } from './pg.js';
import { pgbouncerMissing } from './pgbouncer.js';

const PAST_PNR = new Set(['repoint', 'lift', 'cleanup', 'report']);
/** What `status` must say after a kill at a step: nothing fenced yet, fenced, or past the point of no return. */
function expectedPhase(step: string): { phase: string; next: RegExp } {
  if (step === 'preflight') return { phase: 'synced', next: /cutover run/ };
  if (PAST_PNR.has(step)) return { phase: 'past-pnr', next: /resume/ };
  return { phase: 'in-flight', next: /resume.*rollback/ };
}

/**
 * For each step: a cutover through PgBouncer under writers is SIGKILLed at that step; `status` must tell the
 * truth, then `resume` (or `rollback` where asked) must end consistent with no acknowledged write lost.
 */
export function killAtEveryStep(title: string, steps: Array<{ step: string; then: 'resume' | 'rollback' }>): void {
  const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing;
  describe.skipIf(unavailable)(title, () => {
    let e: CutoverEnv;
    let stateRoot: string;
    const dbs = steps.map((s) => `k_${s.step.replace(/-/g, '_')}`);

    beforeAll(async () => {
      await ensureBuilt();
      e = await startCutoverEnv({ bouncerDatabases: dbs });
      stateRoot = await tempStateDir(e.src.dir);
      for (const db of dbs) await seedDatabase(e.src, db, 500);
    });
    afterAll(async () => e?.stop());

    it.each(steps.map((s, i) => ({ ...s, db: dbs[i]! })))('killed at $step, then $then', async ({ step, then, db }) => {
      const stateDir = join(stateRoot, db);
      const plan = await writePlan(e, { db, stateDir, router: true, maxWriteBlocked: '10s' });
      const workload = workloadThroughBouncer(e, db, 2);
      let after;
      try {
        expect((await cli(['sync', plan], e.env)).code).toBe(0);
        await killAtStep(['run', plan, '--yes'], e.env, stateDir, step);
        await rm(join(stateDir, `paused-at-${step}`));

        const status = await cli(['status', plan, '--json'], e.env);
        expect(status.code, status.err).toBe(0);
        const st = status.json();
        expect(st.phase).toBe(expectedPhase(step).phase);
        expect(st.unfinished).toEqual([step]);
        expect(st.next).toMatch(expectedPhase(step).next);

        after = await cli([then, plan, ...(then === 'resume' ? ['--yes'] : [])], e.env);
        await sleep(300);
      } finally {
        var w = await workload.stop();
      }
      expect(after.code, after.err).toBe(0);
      expect(w.acknowledged.length).toBeGreaterThan(0);
      if (then === 'resume') {
        expect(await missingOn(e.dst, db, w)).toEqual([]);
        expect(await canWrite(e.src, db)).toBe(false);
        expect(await canWrite(e.dst, db)).toBe(true);
        expect((await cli(['status', plan, '--json'], e.env)).json()).toMatchObject({ phase: 'done', leftovers: [] });
      } else {
        expect(await missingOn(e.src, db, w)).toEqual([]);
        expect(await canWrite(e.src, db)).toBe(true);
        expect((await cli(['status', plan, '--json'], e.env)).json().phase).toBe('synced');
      }
    });
  });
}
