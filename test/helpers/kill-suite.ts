import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HaproxyRuntime, setAddrCmd } from '../../adapters/routers/haproxy-runtime.js';
import { findHaproxy } from '../../adapters/routers/haproxy-sandbox.js';
import type { WorkloadResult } from '../../src/sandbox/workload.js';
import { missing } from './availability.js';
import { cli, tempStateDir } from './cli.js';
import { ensureBuilt } from './built-cli.js';
import {
  appCanWrite,
  canWrite,
  haproxyPort,
  missingOn,
  mysqlMissingOn,
  seedDatabase,
  seedMysqlDatabase,
  sleep,
  startCutoverEnv,
  workloadThroughBouncer,
  workloadThroughHaproxy,
  writeMysqlPlan,
  writePlan,
  type MariadbEnv,
  type PostgresEnv,
} from './cutover-env.js';
import { faultResult, recordFault } from './faults.js';
import { killAtStep } from './kill-at-step.js';
import { exec, mariadbMissing } from './mariadb.js';
import { pg15Missing, pg17Missing } from './pg.js';
import { pgbouncerMissing } from './pgbouncer.js';

const PAST_PNR = new Set(['repoint', 'lift', 'cleanup', 'reverse', 'report']);
/** What `status` must say after a kill at a step: nothing fenced yet, fenced, or past the point of no return. */
function expectedPhase(step: string): { phase: string; next: RegExp } {
  if (step === 'preflight') return { phase: 'synced', next: /cutover run/ };
  if (PAST_PNR.has(step)) return { phase: 'past-pnr', next: /resume/ };
  return { phase: 'in-flight', next: /resume.*rollback/ };
}

/** What the suite needs from one engine's sandbox: servers, a router in front of the source, a workload through it. */
interface KillEngine {
  label: string;
  unavailable: string | undefined;
  start(dbs: string[]): Promise<void>;
  stop(): Promise<void>;
  stateBase(): string;
  env(): Record<string, string>;
  seed(db: string): Promise<void>;
  /** Before each case: the source writable and the router on it (servers are shared between cases). */
  reset(): Promise<void>;
  plan(db: string, stateDir: string): Promise<string>;
  workload(db: string): { stop(): Promise<WorkloadResult> };
  rollbackArgs: string[];
  missingOn(where: 'src' | 'dst', db: string, w: WorkloadResult): Promise<string[]>;
  canWrite(where: 'src' | 'dst', db: string): Promise<boolean>;
  /** Where the router points at the end, or undefined when the engine's check does not look. */
  routedTo(): Promise<'src' | 'dst' | 'other' | undefined>;
}

function postgresEngine(): KillEngine {
  let e: PostgresEnv;
  return {
    label: 'PG',
    unavailable: pg15Missing ?? pg17Missing ?? pgbouncerMissing,
    async start(dbs) {
      e = await startCutoverEnv('postgres', { bouncerDatabases: dbs });
    },
    stop: async () => e?.stop(),
    stateBase: () => e.src.dir,
    env: () => e.env,
    seed: (db) => seedDatabase(e.src, db, 500),
    async reset() {},
    plan: (db, stateDir) => writePlan(e, { db, stateDir, router: true, maxWriteBlocked: '10s' }),
    workload: (db) => workloadThroughBouncer(e, db, 2),
    rollbackArgs: [],
    missingOn: (where, db, w) => missingOn(e[where], db, w),
    canWrite: (where, db) => canWrite(e[where], db),
    routedTo: async () => undefined,
  };
}

/** Probed lazily: PostgreSQL-only suites do not need HAProxy. */
let haproxyMissing: string | undefined;

function mariadbEngine(): KillEngine {
  let e: MariadbEnv;
  return {
    label: 'MariaDB',
    unavailable: mariadbMissing ?? haproxyMissing,
    async start() {
      e = await startCutoverEnv('mariadb');
    },
    stop: async () => e?.stop(),
    stateBase: () => e.src.dir,
    env: () => e.env,
    seed: (db) => seedMysqlDatabase(e, db, 500),
    async reset() {
      // A case that ended on the target left the source read-only and HAProxy on the target.
      await exec(e.src, 'SET GLOBAL read_only = OFF');
      // A revert leaves the old target fenced (server-wide read_only): the next forward cutover needs it writable.
      await exec(e.dst, 'SET GLOBAL read_only = OFF');
      await new HaproxyRuntime(e.haproxy!.socket).command(setAddrCmd(e.haproxy!.backend, e.haproxy!.serverName, '127.0.0.1', e.src.port));
    },
    async plan(db, stateDir) {
      await mkdir(stateDir, { recursive: true });
      return writeMysqlPlan(e, { db, stateDir, maxWriteBlocked: '10s' });
    },
    workload: (db) => workloadThroughHaproxy(e, db, 2),
    // --cleanup also removes the replica connection: the next case's dump needs a target with none.
    rollbackArgs: ['--cleanup'],
    missingOn: (where, db, w) => mysqlMissingOn(e[where], db, w),
    canWrite: (where, db) => appCanWrite(e[where], db),
    async routedTo() {
      const port = await haproxyPort(e);
      return port === e.src.port ? 'src' : port === e.dst.port ? 'dst' : 'other';
    },
  };
}

/**
 * For each step: a cutover through the engine's router (PgBouncer / HAProxy) under writers is SIGKILLed at that
 * step; `status` must tell the truth, then `resume` (or `rollback` where asked) must end consistent with no
 * acknowledged write lost. Each case's writes are recorded for scripts/faults-report.mjs under `scenario`.
 */
export function killAtEveryStep(title: string, steps: Array<{ step: string; then: 'resume' | 'rollback' }>, opts: { engine?: 'postgres' | 'mariadb'; scenario?: string } = {}): void {
  const engine = opts.engine === 'mariadb' ? mariadbEngine() : postgresEngine();
  const scenario = opts.scenario ?? `1. ${title}`;
  describe.skipIf(engine.unavailable)(title, () => {
    let stateRoot: string;
    const dbs = steps.map((s) => `k_${s.step.replace(/-/g, '_')}`);

    beforeAll(async () => {
      await ensureBuilt();
      await engine.start(dbs);
      stateRoot = await tempStateDir(engine.stateBase());
      for (const db of dbs) await engine.seed(db);
    });
    afterAll(async () => engine.stop());

    it.each(steps.map((s, i) => ({ ...s, db: dbs[i]! })))('killed at $step, then $then', async ({ step, then, db }) => {
      await engine.reset();
      const stateDir = join(stateRoot, db);
      const plan = await engine.plan(db, stateDir);
      const env = engine.env();
      const workload = engine.workload(db);
      let after;
      try {
        const sync = await cli(['sync', plan], env);
        expect(sync.code, sync.err).toBe(0);
        await killAtStep(['run', plan, '--yes'], env, stateDir, step);
        await rm(join(stateDir, `paused-at-${step}`));

        const status = await cli(['status', plan, '--json'], env);
        expect(status.code, status.err).toBe(0);
        const st = status.json();
        expect(st.phase).toBe(expectedPhase(step).phase);
        expect(st.unfinished).toEqual([step]);
        expect(st.next).toMatch(expectedPhase(step).next);

        after = await cli([then, plan, ...(then === 'resume' ? ['--yes'] : engine.rollbackArgs)], env);
        await sleep(300);
      } finally {
        var w = await workload.stop();
      }
      expect(after.code, after.err).toBe(0);
      expect(w.acknowledged.length).toBeGreaterThan(0);
      const owner = then === 'resume' ? 'dst' : 'src';
      const lost = await engine.missingOn(owner, db, w);
      expect(lost).toEqual([]);
      if (then === 'resume') {
        expect(await engine.canWrite('src', db)).toBe(false);
        expect(await engine.canWrite('dst', db)).toBe(true);
        expect(await engine.routedTo()).toBeOneOf(['dst', undefined]);
        expect((await cli(['status', plan, '--json'], env)).json()).toMatchObject({ phase: 'done', leftovers: [] });
      } else {
        expect(await engine.canWrite('src', db)).toBe(true);
        expect(await engine.routedTo()).toBeOneOf(['src', undefined]);
        expect((await cli(['status', plan, '--json'], env)).json().phase).toBe('synced');
      }
      // SIGKILL has no exit code: 137 is what a shell reports for it.
      await recordFault(faultResult(scenario, w, lost, 137, then === 'resume' ? '`status` truthful, `resume` → done on the target' : '`status` truthful, `rollback` → source restored'));
    });
  });
}

/** The same suite for MariaDB through HAProxy (await it at the top of the test file: HAProxy is probed first). */
export async function killMariadbAtEveryStep(title: string, steps: Array<{ step: string; then: 'resume' | 'rollback' }>, scenario?: string): Promise<void> {
  haproxyMissing = await missing('HAProxy (haproxy)', () => findHaproxy());
  killAtEveryStep(title, steps, { engine: 'mariadb', ...(scenario ? { scenario } : {}) });
}

/** Steps of a revert before its point of no return, in order (a kill at `point-of-no-return` is still before it). */
const REVERT_BEFORE_PNR = ['preflight', 'hold', 'fence', 'catch-up', 'sequences', 'verify', 'point-of-no-return'];
/** Steps of a revert after its point of no return. */
const REVERT_AFTER_PNR = ['repoint', 'lift', 'cleanup', 'report'];

/**
 * `cutover revert` SIGKILLed at every journal step, under writers through the engine's router. Two chains, each on
 * one database cut over once: before the revert's point of no return each kill is followed by `status` and
 * `revert --rollback` (the new primary writable and routed again; a kill at preflight leaves nothing to roll back),
 * the next revert is killed one step later, and the kill at the point of no return ends with `revert --resume`
 * (restores, reverts again); after it, `revert --resume` is itself killed at the next step until one finishes.
 * Every acknowledged write of every phase must end on the old source, primary again.
 */
export async function killRevertAtEveryStep(engineName: 'postgres' | 'mariadb'): Promise<void> {
  if (engineName === 'mariadb') haproxyMissing = await missing('HAProxy (haproxy)', () => findHaproxy());
  const engine = engineName === 'mariadb' ? mariadbEngine() : postgresEngine();
  const scenario = `1. SIGKILL at each step of a revert (${engine.label})`;
  const dbs = ['rk_before', 'rk_after'];
  describe.skipIf(engine.unavailable)(`${engine.label}: revert SIGKILLed at every step`, () => {
    let stateRoot: string;

    beforeAll(async () => {
      await ensureBuilt();
      await engine.start(dbs);
      stateRoot = await tempStateDir(engine.stateBase());
      for (const db of dbs) await engine.seed(db);
    });
    afterAll(async () => engine.stop());

    /** Forward cutover of `db` (sync + run, the reverse path following); returns its plan and state dir. */
    async function cutOver(db: string): Promise<{ plan: string; stateDir: string }> {
      await engine.reset();
      const stateDir = join(stateRoot, db);
      const plan = await engine.plan(db, stateDir);
      const sync = await cli(['sync', plan], engine.env());
      expect(sync.code, sync.err).toBe(0);
      const run = await cli(['run', plan, '--yes', '--json'], engine.env());
      expect(run.code, run.err).toBe(0);
      expect(run.json().reverse).toEqual({ state: 'following' });
      return { plan, stateDir };
    }

    /** Kills `args` at `step` and returns what `status` says of the revert then. */
    async function killAt(args: string[], stateDir: string, plan: string, step: string): Promise<{ phase: string; next: string }> {
      const killed = await killAtStep(args, engine.env(), stateDir, step);
      expect(killed.exitCode, `killed at ${step}`).not.toBe(0);
      await rm(join(stateDir, `paused-at-${step}`));
      const status = await cli(['status', plan, '--json'], engine.env());
      expect(status.code, status.err).toBe(0);
      return { phase: status.json().revert?.phase, next: status.json().next };
    }

    async function expectReverted(db: string, plan: string, w: WorkloadResult): Promise<string[]> {
      expect(w.acknowledged.length).toBeGreaterThan(0);
      const lost = await engine.missingOn('src', db, w);
      expect(lost).toEqual([]);
      expect(await engine.canWrite('src', db)).toBe(true);
      expect(await engine.canWrite('dst', db)).toBe(false);
      expect(await engine.routedTo()).toBeOneOf(['src', undefined]);
      const status = (await cli(['status', plan, '--json'], engine.env())).json();
      expect(status.revert.phase).toBe('done');
      expect(status.next).toMatch(/reverted/);
      return lost;
    }

    it(`before the revert's point of no return: ${REVERT_BEFORE_PNR.join(', ')}`, async () => {
      const db = 'rk_before';
      const workload = engine.workload(db);
      let plan = '';
      try {
        await sleep(300);
        const fwd = await cutOver(db);
        plan = fwd.plan;
        for (const step of REVERT_BEFORE_PNR) {
          const st = await killAt(['revert', plan, '--yes'], fwd.stateDir, plan, step);
          if (step === 'preflight') {
            // Nothing was held or fenced: the new primary still takes writes and the next revert may start.
            expect(st.phase, `status after a kill at ${step}`).not.toBe('in-flight');
            expect(await engine.canWrite('dst', db)).toBe(true);
            continue;
          }
          expect(st.phase, `status after a kill at ${step}`).toBe('in-flight');
          expect(st.next).toMatch(/revert --resume.*revert --rollback|--rollback/);
          if (step === 'point-of-no-return') {
            const resumed = await cli(['revert', plan, '--resume', '--yes'], engine.env());
            expect(resumed.code, resumed.err).toBe(0);
            break;
          }
          const rolledBack = await cli(['revert', plan, '--rollback'], engine.env());
          expect(rolledBack.code, `rollback after a kill at ${step}: ${rolledBack.err}`).toBe(0);
          expect(await engine.canWrite('dst', db)).toBe(true);
          expect(await engine.canWrite('src', db)).toBe(false);
          expect(await engine.routedTo()).toBeOneOf(['dst', undefined]);
          await sleep(200);
        }
        await sleep(300);
      } finally {
        var w = await workload.stop();
      }
      const lost = await expectReverted(db, plan, w);
      await recordFault(faultResult(scenario, w, lost, 137, '`status` truthful, `revert --rollback` → new primary restored each time; `revert --resume` → reverted'));
    });

    it(`after the revert's point of no return: ${REVERT_AFTER_PNR.join(', ')}`, async () => {
      const db = 'rk_after';
      const workload = engine.workload(db);
      let plan = '';
      try {
        await sleep(300);
        const fwd = await cutOver(db);
        plan = fwd.plan;
        let args = ['revert', plan, '--yes'];
        for (const step of REVERT_AFTER_PNR) {
          const st = await killAt(args, fwd.stateDir, plan, step);
          expect(st.phase, `status after a kill at ${step}`).toBe('past-pnr');
          const plain = await cli(['revert', plan, '--yes'], engine.env());
          expect(plain.code).toBe(5);
          expect(plain.err).toMatch(/revert --resume/);
          args = ['revert', plan, '--resume', '--yes'];
        }
        const resumed = await cli(args, engine.env());
        expect(resumed.code, resumed.err).toBe(0);
        await sleep(300);
      } finally {
        var w = await workload.stop();
      }
      const lost = await expectReverted(db, plan, w);
      await recordFault(faultResult(scenario, w, lost, 137, '`status` truthful, `revert --resume` (itself killed at each later step) → reverted'));
    });
  });
}
