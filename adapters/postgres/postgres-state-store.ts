import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { NeedsOperatorError, OperationError } from '../../src/errors.js';
import { nextRecord, replayRecords, JOURNAL_STEPS, type AppendOptions, type JournalRecord, type JournalReplay, type JournalStep, type StepStatus } from '../../src/engine/journal.js';
import type { AcquireOptions, LockInfo } from '../../src/engine/lock.js';
import { Gate } from '../../src/engine/waves-pool.js';
import type { StateJournal, StateLock, StateStore, WaveClaim, WaveCoordinator, WaveRunnerRow, WaveTenantRow } from '../../src/engine/state-store.js';
import type { FenceTarget } from '../../src/readonly/types.js';
import { fenceRecordKey, type FenceRecord, type FenceRecords } from '../../src/state/fence-store.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { sleep } from '../../src/util/sleep.js';
import { connectPg, mapPgError, type PgClient } from './postgres-connection.js';

/**
 * The schema the tool creates and migrates in the control database, one entry per version, applied in order in
 * one transaction under an advisory lock (two runners starting at once migrate once).
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE cutover.plan_locks (
     plan_id text PRIMARY KEY,
     token bigint NOT NULL,
     holder jsonb,
     backend_pid int
   );
   CREATE TABLE cutover.journal (
     plan_id text NOT NULL,
     seq int NOT NULL,
     step text NOT NULL,
     status text NOT NULL,
     at text NOT NULL,
     token bigint NOT NULL,
     data jsonb,
     PRIMARY KEY (plan_id, seq)
   );
   CREATE TABLE cutover.waves (
     wave_id text PRIMARY KEY,
     concurrency int NOT NULL,
     round int NOT NULL DEFAULT 1,
     started_at timestamptz NOT NULL DEFAULT now()
   );
   CREATE TABLE cutover.wave_tenants (
     wave_id text NOT NULL REFERENCES cutover.waves ON DELETE CASCADE,
     tenant text NOT NULL,
     ord int NOT NULL,
     plan_id text NOT NULL,
     state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'claimed', 'done', 'failed', 'rolled-back')),
     runner text,
     attempts int NOT NULL DEFAULT 0,
     window_ms int,
     error text,
     claimed_at timestamptz,
     finished_at timestamptz,
     PRIMARY KEY (wave_id, tenant)
   );
   CREATE TABLE cutover.wave_runners (
     runner text PRIMARY KEY,
     wave_id text NOT NULL,
     host text NOT NULL,
     pid int NOT NULL,
     backend_pid int NOT NULL,
     started_at timestamptz NOT NULL DEFAULT now(),
     finished_at timestamptz
   );`,
  `CREATE TABLE cutover.fences (
     fence_key text PRIMARY KEY,
     record jsonb NOT NULL,
     saved_at timestamptz NOT NULL DEFAULT now()
   );`,
];

const POLL_MS = 50;
/** The longest a quiet wait waits for turns (RunOptions.quiet orders work; it never holds a tenant for good). */
const QUIET_WAIT_MS = 30_000;

/** A bigint advisory-lock key of a name (sha256, first 8 bytes, signed): one key space for plans, waves and slots. */
function lockKey(...parts: Array<string | number>): string {
  return createHash('sha256')
    .update(JSON.stringify(['cutover', ...parts]))
    .digest()
    .readBigInt64BE(0)
    .toString();
}

async function connectControl(ep: DbEndpoint, doing: string): Promise<PgClient> {
  try {
    const c = await connectPg(ep, { applicationName: 'cutover state' });
    // Each journal append is durable before the step it orders: never let a role default weaken the commit.
    await c.query('SET synchronous_commit = on');
    return c;
  } catch (e) {
    throw mapPgError(e, ep, `${doing} (control database)`);
  }
}

/** The control database of `state: postgres://...`: journals, plan locks and shared waves in schema `cutover`. */
export class PostgresStateStore implements StateStore {
  readonly kind = 'database' as const;
  /** Sections on the main session one at a time: pg queues queries, but a transaction must not interleave. */
  private readonly serial = new Gate();

  private constructor(
    readonly ep: DbEndpoint,
    /** Reads, and every lease of this process's waves: they die with this session. */
    private readonly main: PgClient,
  ) {}

  static async open(ep: DbEndpoint): Promise<PostgresStateStore> {
    const main = await connectControl(ep, 'connecting');
    try {
      await migrate(main);
    } catch (e) {
      await main.end().catch(() => {});
      throw mapPgError(e, ep, 'creating the cutover schema in the control database');
    }
    return new PostgresStateStore(ep, main);
  }

  describe(): string {
    return `control database ${this.ep.display}`;
  }

  /** A query on the main session, serialised with the wave's own use of it. */
  q<R extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
    return this.serial.run(async () => (await this.main.query<R>(sql, params)).rows);
  }

  /** Several statements on the main session with nothing interleaved (a transaction). */
  session<T>(fn: (c: PgClient) => Promise<T>): Promise<T> {
    return this.serial.run(() => fn(this.main));
  }

  async acquire(_stateDir: string, planId: string, _opts: AcquireOptions = {}): Promise<StateLock> {
    // A holder's lease is its session: alive or gone, the server knows, so there is nothing to force.
    const c = await connectControl(this.ep, `locking plan ${planId}`);
    try {
      const key = lockKey('plan', planId);
      const got = (await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [key])).rows[0]!.ok;
      if (!got) {
        const holder = await readHolder(c, planId);
        throw new NeedsOperatorError(
          'locked',
          `plan ${planId} is locked by ${holder ? `pid ${holder.pid} on ${holder.hostname} (token ${holder.token}, since ${holder.startedAt})` : 'another session'}, connected to the control database`,
          'wait for it to finish, or stop it: a holder that dies loses the lock with its control-database session',
        );
      }
      const info: Omit<LockInfo, 'token'> = { planId, pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString() };
      const { rows } = await c.query<{ token: string }>(
        `INSERT INTO cutover.plan_locks (plan_id, token, holder, backend_pid) VALUES ($1, 1, $2, pg_backend_pid())
         ON CONFLICT (plan_id) DO UPDATE SET token = cutover.plan_locks.token + 1, holder = EXCLUDED.holder, backend_pid = EXCLUDED.backend_pid
         RETURNING token`,
        [planId, JSON.stringify(info)],
      );
      const token = Number(rows[0]!.token);
      return new PgLock(this, c, key, { ...info, token });
    } catch (e) {
      await c.end().catch(() => {});
      throw mapPgError(e, this.ep, `locking plan ${planId}`);
    }
  }

  async openJournal(lock: StateLock, opts: { secrets?: readonly string[] } = {}): Promise<StateJournal> {
    if (!(lock instanceof PgLock)) throw new TypeError('the control database journals under its own lock');
    await lock.assertCurrent();
    const replay = await this.replay('', lock.planId);
    if (replay.maxToken > lock.token) {
      throw new NeedsOperatorError(
        'locked',
        `the journal of plan ${lock.planId} holds records of token ${replay.maxToken}, newer than this process's lock token ${lock.token}`,
        `cutover.plan_locks was edited; set its token for ${lock.planId} to at least ${replay.maxToken}`,
      );
    }
    return new PgJournal(lock, replay.records, opts.secrets ?? []);
  }

  async replay(_stateDir: string, planId: string): Promise<JournalReplay> {
    const rows = await this.q<{ seq: number; step: string; status: string; at: string; token: string; data: Record<string, unknown> | null }>(
      'SELECT seq, step, status, at, token, data FROM cutover.journal WHERE plan_id = $1 ORDER BY seq',
      [planId],
    ).catch((e: unknown) => {
      throw mapPgError(e, this.ep, `reading the journal of ${planId}`);
    });
    const records: JournalRecord[] = rows.map((r, i) => {
      if (r.seq !== i + 1 || !JOURNAL_STEPS.has(r.step) || !['begin', 'ok', 'fail'].includes(r.status)) {
        throw new NeedsOperatorError('needs-operator', `cutover.journal of plan ${planId} has a bad record at seq ${r.seq} (expected ${i + 1})`, 'the journal was edited; inspect it before running resume or rollback');
      }
      return { seq: r.seq, step: r.step as JournalStep, status: r.status as StepStatus, at: r.at, token: Number(r.token), ...(r.data ? { data: r.data } : {}) };
    });
    return { ...replayRecords(records), tornTail: false, intactBytes: 0 };
  }

  async readLock(_stateDir: string, planId: string): Promise<LockInfo | undefined> {
    return this.session((c) => readHolder(c, planId));
  }

  wave(waveId: string): WaveCoordinator {
    return new PgWave(this, waveId);
  }

  fences(): FenceRecords {
    return new PgFenceRecords(this);
  }

  async close(): Promise<void> {
    await this.serial.run(() => this.main.end()).catch(() => {});
  }
}

async function migrate(c: PgClient): Promise<void> {
  await c.query('BEGIN');
  try {
    await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [lockKey('migrate')]);
    await c.query('CREATE SCHEMA IF NOT EXISTS cutover');
    await c.query('CREATE TABLE IF NOT EXISTS cutover.schema_version (version int NOT NULL)');
    const have = Number((await c.query<{ v: number | null }>('SELECT max(version) AS v FROM cutover.schema_version')).rows[0]?.v ?? 0);
    if (have > MIGRATIONS.length) {
      throw new NeedsOperatorError(
        'needs-operator',
        `the control database's cutover schema is at version ${have}, newer than this cutover knows (${MIGRATIONS.length})`,
        'run the same or a newer cutover on every runner',
      );
    }
    for (let v = have + 1; v <= MIGRATIONS.length; v++) {
      await c.query(MIGRATIONS[v - 1]!);
      await c.query('INSERT INTO cutover.schema_version (version) VALUES ($1)', [v]);
    }
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  }
}

/** The lock's holder while its session lives; a holder whose session ended holds nothing. */
async function readHolder(c: PgClient, planId: string): Promise<LockInfo | undefined> {
  const { rows } = await c.query<{ holder: Omit<LockInfo, 'token'>; token: string }>(
    `SELECT l.holder, l.token FROM cutover.plan_locks l
      WHERE l.plan_id = $1 AND l.holder IS NOT NULL AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.backend_pid)`,
    [planId],
  );
  return rows[0] ? { ...rows[0].holder, token: Number(rows[0].token) } : undefined;
}

/** A plan lock: a session-level advisory lock on a session of its own, plus a token that grows with every holder. */
class PgLock implements StateLock {
  private released = false;

  constructor(
    readonly store: PostgresStateStore,
    readonly client: PgClient,
    private readonly key: string,
    readonly info: LockInfo,
  ) {}

  get planId(): string {
    return this.info.planId;
  }
  get token(): number {
    return this.info.token;
  }

  lost(why: string): NeedsOperatorError {
    return new NeedsOperatorError(
      'locked',
      `this process (token ${this.token}) no longer holds the lock of plan ${this.planId}: ${why}`,
      'another cutover process may own this plan now; check `cutover status` before doing anything',
    );
  }

  async assertCurrent(): Promise<void> {
    if (this.released) throw this.lost('it was released');
    let token: string | undefined;
    try {
      token = (await this.client.query<{ token: string }>('SELECT token FROM cutover.plan_locks WHERE plan_id = $1', [this.planId])).rows[0]?.token;
    } catch (e) {
      throw this.lost(`its control-database session failed (${e instanceof Error ? e.message : String(e)})`);
    }
    if (Number(token) !== this.token) throw this.lost(`the control database has token ${token ?? 'none'}`);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      await this.client.query('UPDATE cutover.plan_locks SET holder = NULL, backend_pid = NULL WHERE plan_id = $1 AND token = $2', [this.planId, this.token]);
      await this.client.query('SELECT pg_advisory_unlock($1::bigint)', [this.key]);
    } finally {
      await this.client.end().catch(() => {});
    }
  }
}

/**
 * The journal in `cutover.journal`. Each durable append is one INSERT of the queued records, committed with
 * synchronous_commit on, and only while the lock row still has this holder's token (FOR SHARE: a takeover's
 * UPDATE waits for it or makes it insert nothing), so a superseded holder cannot add a record.
 */
class PgJournal implements StateJournal {
  private queued: JournalRecord[] = [];

  constructor(
    private readonly lock: PgLock,
    private readonly records: JournalRecord[],
    private readonly secrets: readonly string[],
  ) {}

  get state(): JournalReplay {
    return { ...replayRecords([...this.records]), tornTail: false, intactBytes: 0 };
  }

  begin(step: JournalStep, data?: Record<string, unknown>, opts: AppendOptions = {}): Promise<JournalRecord> {
    return this.append(step, 'begin', data, opts);
  }
  ok(step: JournalStep, data?: Record<string, unknown>, opts: AppendOptions = {}): Promise<JournalRecord> {
    return this.append(step, 'ok', data, opts);
  }
  fail(step: JournalStep, data?: Record<string, unknown>): Promise<JournalRecord> {
    return this.append(step, 'fail', data);
  }

  async append(step: JournalStep, status: StepStatus, data?: Record<string, unknown>, opts: AppendOptions = {}): Promise<JournalRecord> {
    const record = nextRecord(this.records, this.lock.token, step, status, data, this.secrets);
    this.records.push(record);
    this.queued.push(record);
    if (opts.durable !== false) await this.write();
    return record;
  }

  async flush(): Promise<void> {
    if (this.queued.length) await this.write();
  }

  private async write(): Promise<void> {
    const batch = this.queued.splice(0);
    let inserted: number;
    try {
      const r = await this.lock.client.query(
        `WITH l AS (SELECT 1 FROM cutover.plan_locks WHERE plan_id = $1 AND token = $2 FOR SHARE)
         INSERT INTO cutover.journal (plan_id, seq, step, status, at, token, data)
         SELECT $1, r.seq, r.step, r.status, r.at, r.token, r.data
           FROM l, jsonb_to_recordset($3::jsonb) AS r(seq int, step text, status text, at text, token bigint, data jsonb)`,
        [this.lock.planId, this.lock.token, JSON.stringify(batch)],
      );
      inserted = r.rowCount ?? 0;
    } catch (e) {
      // Not written: the next durable append must not claim records that never reached the control database.
      this.records.splice(this.records.length - batch.length - this.queued.length, batch.length);
      throw new OperationError(
        `the journal of plan ${this.lock.planId} could not be written to the control database: ${e instanceof Error ? e.message : String(e)}`,
        'check the control database; `cutover status` shows what was journaled',
        {
          cause: e,
        },
      );
    }
    if (inserted !== batch.length) throw this.lock.lost("its token is no longer the plan lock's");
  }

  async close(): Promise<void> {
    await this.flush();
  }
}

/**
 * Fence records in `cutover.fences`, one row per fenced object, on the main session (synchronous_commit on: the
 * record is durable before the fence changes the server).
 */
class PgFenceRecords implements FenceRecords {
  constructor(private readonly store: PostgresStateStore) {}

  private async run<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw mapPgError(e, this.store.ep, `${doing} (control database)`);
    }
  }

  async load(serverId: string, target: FenceTarget): Promise<FenceRecord | undefined> {
    const rows = await this.run('reading a fence record', () => this.store.q<{ record: FenceRecord }>('SELECT record FROM cutover.fences WHERE fence_key = $1', [fenceRecordKey(serverId, target)]));
    return rows[0]?.record;
  }

  async save(record: FenceRecord): Promise<void> {
    await this.run('saving a fence record', () =>
      this.store.q('INSERT INTO cutover.fences (fence_key, record) VALUES ($1, $2) ON CONFLICT (fence_key) DO UPDATE SET record = EXCLUDED.record, saved_at = now()', [
        fenceRecordKey(record.serverId, record),
        JSON.stringify(record),
      ]),
    );
  }

  async remove(serverId: string, target: FenceTarget): Promise<void> {
    await this.run('removing a fence record', () => this.store.q('DELETE FROM cutover.fences WHERE fence_key = $1', [fenceRecordKey(serverId, target)]));
  }
}

/** A wave shared by runner processes through the control database (see WaveCoordinator). */
class PgWave implements WaveCoordinator {
  readonly runner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private concurrency = 1;
  /** Slots and leases this process holds (advisory locks are re-entrant within a session: ours would look free). */
  private readonly slots = new Set<number>();
  private readonly leases = new Map<string, number>();
  /** Where this runner waits for window turns: a blocking lock wait on the main session would stall its every query. */
  private turnSession: PgClient | undefined;
  private readonly turns = new Gate();
  /** Where this runner's lanes wait, one after the other, for the turns of other tenants to end (quiet). */
  private quietSession: PgClient | undefined;
  private readonly quietWaits = new Gate();
  /** After leave(): quiet opens no session (lanes still finishing must not leave one open). */
  private left = false;

  constructor(
    private readonly store: PostgresStateStore,
    readonly waveId: string,
  ) {}

  private key(...parts: Array<string | number>): string {
    return lockKey('wave', this.waveId, ...parts);
  }

  private async tryLock(key: string, shared = false): Promise<boolean> {
    const rows = await this.store.q<{ ok: boolean }>(`SELECT ${shared ? 'pg_try_advisory_lock_shared' : 'pg_try_advisory_lock'}($1::bigint) AS ok`, [key]);
    return rows[0]!.ok;
  }

  private async unlock(key: string, shared = false): Promise<void> {
    await this.store.q(`SELECT ${shared ? 'pg_advisory_unlock_shared' : 'pg_advisory_unlock'}($1::bigint)`, [key]);
  }

  async join(tenants: ReadonlyArray<{ tenant: string; planId: string }>, concurrency: number): Promise<{ runner: string; tenants: string[]; concurrency: number; first: boolean }> {
    const waveKey = this.key('runners');
    const first = await this.store.session(async (c) => {
      // Exclusive only when no runner holds it shared: the first runner of a round sets the wave up; runners
      // joining meanwhile wait on their shared request until it is done.
      const first = (await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [waveKey])).rows[0]!.ok;
      if (first) {
        try {
          await c.query('BEGIN');
          await c.query(
            `INSERT INTO cutover.waves (wave_id, concurrency) VALUES ($1, $2)
             ON CONFLICT (wave_id) DO UPDATE SET concurrency = EXCLUDED.concurrency, round = cutover.waves.round + 1, started_at = now()`,
            [this.waveId, concurrency],
          );
          await c.query(
            `INSERT INTO cutover.wave_tenants (wave_id, tenant, ord, plan_id)
             SELECT $1, t.tenant, t.ord, t.plan_id FROM jsonb_to_recordset($2::jsonb) AS t(tenant text, ord int, plan_id text)
             ON CONFLICT (wave_id, tenant) DO UPDATE SET ord = EXCLUDED.ord, plan_id = EXCLUDED.plan_id`,
            [this.waveId, JSON.stringify(tenants.map((t, ord) => ({ tenant: t.tenant, ord, plan_id: t.planId })))],
          );
          await c.query('DELETE FROM cutover.wave_tenants WHERE wave_id = $1 AND NOT (tenant = ANY($2::text[]))', [this.waveId, tenants.map((t) => t.tenant)]);
          // A new round: what failed is tried again; a claim of a runner that is gone is picked up like any pending tenant.
          await c.query(`UPDATE cutover.wave_tenants SET state = 'pending', runner = NULL WHERE wave_id = $1 AND state IN ('failed', 'rolled-back', 'claimed')`, [this.waveId]);
          await c.query('COMMIT');
          await c.query('SELECT pg_advisory_lock_shared($1::bigint)', [waveKey]);
        } catch (e) {
          await c.query('ROLLBACK').catch(() => {});
          throw e;
        } finally {
          await c.query('SELECT pg_advisory_unlock($1::bigint)', [waveKey]);
        }
      } else {
        await c.query('SELECT pg_advisory_lock_shared($1::bigint)', [waveKey]);
      }
      await c.query('INSERT INTO cutover.wave_runners (runner, wave_id, host, pid, backend_pid) VALUES ($1, $2, $3, $4, pg_backend_pid())', [this.runner, this.waveId, hostname(), process.pid]);
      return first;
    });
    const wave = await this.store.q<{ concurrency: number }>('SELECT concurrency FROM cutover.waves WHERE wave_id = $1', [this.waveId]);
    this.concurrency = wave[0]!.concurrency;
    const rows = await this.store.q<{ tenant: string }>('SELECT tenant FROM cutover.wave_tenants WHERE wave_id = $1 ORDER BY ord', [this.waveId]);
    return { runner: this.runner, tenants: rows.map((r) => r.tenant), concurrency: this.concurrency, first };
  }

  /** Tenants the wave has not finished this round (pending, or claimed by a live or dead runner). */
  private async open(): Promise<number> {
    const rows = await this.store.q<{ n: string }>(`SELECT count(*) AS n FROM cutover.wave_tenants WHERE wave_id = $1 AND state IN ('pending', 'claimed')`, [this.waveId]);
    return Number(rows[0]!.n);
  }

  async claim(): Promise<WaveClaim | 'wait' | 'none'> {
    let slot: number | undefined;
    for (let i = 0; i < this.concurrency && slot === undefined; i++) {
      if (!this.slots.has(i) && (await this.tryLock(this.key('slot', i)))) slot = i;
    }
    if (slot === undefined) return (await this.open()) > 0 ? 'wait' : 'none';
    this.slots.add(slot);
    const claimed = await this.store
      .session(async (c) => {
        await c.query('BEGIN');
        try {
          // Orphans first: a tenant whose runner died may be fenced right now.
          const { rows } = await c.query<{ tenant: string; state: string; runner: string | null }>(
            `SELECT tenant, state, runner FROM cutover.wave_tenants WHERE wave_id = $1 AND state IN ('pending', 'claimed')
              ORDER BY state = 'claimed' DESC, ord FOR UPDATE SKIP LOCKED`,
            [this.waveId],
          );
          for (const r of rows) {
            if (r.runner === this.runner) continue;
            const lease = (await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [this.key('lease', r.tenant)])).rows[0]!.ok;
            if (!lease) continue;
            await c.query(`UPDATE cutover.wave_tenants SET state = 'claimed', runner = $3, attempts = attempts + 1, claimed_at = now() WHERE wave_id = $1 AND tenant = $2`, [this.waveId, r.tenant, this.runner]);
            await c.query('COMMIT');
            return { tenant: r.tenant, ...(r.state === 'claimed' && r.runner ? { takenOver: r.runner } : {}) };
          }
          await c.query('COMMIT');
          return undefined;
        } catch (e) {
          await c.query('ROLLBACK').catch(() => {});
          throw e;
        }
      })
      .catch(async (e: unknown) => {
        this.slots.delete(slot);
        await this.unlock(this.key('slot', slot)).catch(() => {});
        throw e;
      });
    if (!claimed) {
      this.slots.delete(slot);
      await this.unlock(this.key('slot', slot));
      return (await this.open()) > 0 ? 'wait' : 'none';
    }
    this.leases.set(claimed.tenant, slot);
    return claimed;
  }

  async finish(tenant: string, outcome: { state: 'done' | 'failed' | 'rolled-back' | 'pending'; windowMs?: number; error?: string }): Promise<void> {
    const slot = this.leases.get(tenant);
    try {
      await this.store.q(
        `UPDATE cutover.wave_tenants SET state = $3, window_ms = COALESCE($4, window_ms), error = $5, finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END,
                runner = CASE WHEN $3 = 'pending' THEN NULL ELSE runner END
          WHERE wave_id = $1 AND tenant = $2 AND runner = $6`,
        [this.waveId, tenant, outcome.state, outcome.windowMs ?? null, outcome.error ?? null, this.runner],
      );
    } finally {
      this.leases.delete(tenant);
      await this.unlock(this.key('lease', tenant)).catch(() => {});
      if (slot !== undefined) {
        this.slots.delete(slot);
        await this.unlock(this.key('slot', slot)).catch(() => {});
      }
    }
  }

  async rollback<T>(tenant: string, fn: () => Promise<T>, errorText: (e: unknown) => string = (e) => (e instanceof Error ? e.message : String(e))): Promise<T> {
    const lease = this.key('lease', tenant);
    if (this.leases.has(tenant) || !(await this.tryLock(lease))) {
      const rows = await this.store.q<{ runner: string | null }>('SELECT runner FROM cutover.wave_tenants WHERE wave_id = $1 AND tenant = $2', [this.waveId, tenant]);
      throw new NeedsOperatorError(
        'locked',
        `tenant ${tenant} is being worked by runner ${rows[0]?.runner ?? '(unknown)'}, whose control-database session holds its lease`,
        'wait for that runner to finish the tenant (a failure rolls it back by itself), or stop that runner; then run --rollback again',
      );
    }
    try {
      let r: T;
      try {
        r = await fn();
      } catch (e) {
        await this.store.q('UPDATE cutover.wave_tenants SET error = $3 WHERE wave_id = $1 AND tenant = $2', [this.waveId, tenant, `rollback: ${errorText(e)}`]).catch(() => {});
        throw e;
      }
      // Not claimed again this round (claims take pending tenants); the next round's first runner makes it pending.
      await this.store.q(`UPDATE cutover.wave_tenants SET state = 'rolled-back', runner = NULL, error = NULL, finished_at = now() WHERE wave_id = $1 AND tenant = $2`, [this.waveId, tenant]);
      return r;
    } finally {
      await this.unlock(lease).catch(() => {});
    }
  }

  async failures(): Promise<number> {
    const rows = await this.store.q<{ n: string }>(`SELECT count(*) AS n FROM cutover.wave_tenants WHERE wave_id = $1 AND state = 'failed'`, [this.waveId]);
    return Number(rows[0]!.n);
  }

  /**
   * Copies of one source server hold its copy key shared; a window holds its window key shared and waits until
   * it can take the copy key exclusively (no copy running). A copy that finds the window key taken (a window
   * running or waiting) steps back, so windows are not starved. Both poll: the main session is shared.
   */
  async copy<T>(server: string, fn: () => Promise<T>): Promise<T> {
    const copyKey = this.key('copy', server);
    const winKey = this.key('window', server);
    for (;;) {
      if (await this.tryLock(copyKey, true)) {
        if (await this.tryLock(winKey)) {
          await this.unlock(winKey);
          break;
        }
        await this.unlock(copyKey, true);
      }
      await sleep(POLL_MS);
    }
    try {
      return await fn();
    } finally {
      await this.unlock(copyKey, true).catch(() => {});
    }
  }

  async window<T>(server: string, fn: () => Promise<T>): Promise<T> {
    const copyKey = this.key('copy', server);
    const winKey = this.key('window', server);
    while (!(await this.tryLock(winKey, true))) await sleep(POLL_MS);
    try {
      while (!(await this.tryLock(copyKey))) await sleep(POLL_MS);
      await this.unlock(copyKey);
      return await fn();
    } finally {
      await this.unlock(winKey, true).catch(() => {});
    }
  }

  /**
   * One window of `server` at a time over every runner, its own turns in call order. The wait blocks in the server
   * (pg_advisory_lock on a session of its own) instead of polling: a waiter costs nothing and enters the moment
   * the turn before it ends. A turn session that breaks is replaced on the next turn; its lock died with it.
   */
  windowTurn<T>(server: string, fn: () => Promise<T>): Promise<T> {
    return this.turns.run(async () => {
      const key = this.key('window-turn', server);
      const c = await this.lockTurn(key);
      try {
        return await fn();
      } finally {
        await c.query('SELECT pg_advisory_unlock($1::bigint)', [key]).catch(() => this.dropTurnSession());
      }
    });
  }

  /**
   * A turn holds its key exclusively; waiting for it shared queues behind the turn on and the turns that reached the
   * server before (PostgreSQL grants a request after the conflicting ones queued before it). The common case, no
   * turn, is one round trip on the main session; a wait blocks on a kept session of its own, at most QUIET_WAIT_MS.
   * Any failure only ends the wait.
   */
  async quiet(server: string): Promise<void> {
    if (this.left) return;
    const key = this.key('window-turn', server);
    const free = await this.store.q<{ ok: boolean }>('SELECT CASE WHEN pg_try_advisory_lock_shared($1::bigint) THEN pg_advisory_unlock_shared($1::bigint) ELSE false END AS ok', [key]).then(
      (rows) => rows[0]!.ok,
      () => true,
    );
    if (free) return;
    await this.quietWaits.run(async () => {
      if (this.left) return;
      let c: PgClient | undefined;
      try {
        if (!this.quietSession) {
          c = await connectControl(this.store.ep, 'waiting for a quiet window');
          // A turn that never ends (its runner stopped, its session half-open) must not stall every other tenant.
          await c.query(`SET lock_timeout = ${QUIET_WAIT_MS}`);
          this.quietSession = c;
        }
        c = this.quietSession;
        await c.query('SELECT pg_advisory_lock_shared($1::bigint)', [key]);
        await c.query('SELECT pg_advisory_unlock_shared($1::bigint)', [key]);
      } catch {
        if (c && this.quietSession === c) this.quietSession = undefined;
        await c?.end().catch(() => {});
      }
    });
  }

  /** The turn's lock on the kept session; a kept session that died since the last turn is replaced once. */
  private async lockTurn(key: string): Promise<PgClient> {
    for (let attempt = 0; ; attempt++) {
      const reused = this.turnSession !== undefined;
      const c = (this.turnSession ??= await connectControl(this.store.ep, 'waiting for a window turn'));
      try {
        await c.query('SELECT pg_advisory_lock($1::bigint)', [key]);
        return c;
      } catch (e) {
        await this.dropTurnSession();
        if (!reused || attempt > 0) throw mapPgError(e, this.store.ep, 'waiting for a window turn (control database)');
      }
    }
  }

  private dropTurnSession(): Promise<void> {
    const c = this.turnSession;
    this.turnSession = undefined;
    return c ? c.end().catch(() => {}) : Promise.resolve();
  }

  async exclusive<T>(resource: string, fn: () => Promise<T>): Promise<T> {
    const key = lockKey('resource', resource);
    while (!(await this.tryLock(key))) await sleep(POLL_MS / 5);
    try {
      return await fn();
    } finally {
      await this.unlock(key).catch(() => {});
    }
  }

  async tenants(): Promise<WaveTenantRow[]> {
    const rows = await this.store.q<{
      tenant: string;
      plan_id: string;
      state: WaveTenantRow['state'];
      runner: string | null;
      window_ms: number | null;
      error: string | null;
      attempts: number;
      claimed_at: Date | null;
      finished_at: Date | null;
    }>('SELECT tenant, plan_id, state, runner, window_ms, error, attempts, claimed_at, finished_at FROM cutover.wave_tenants WHERE wave_id = $1 ORDER BY ord', [this.waveId]);
    return rows.map((r) => ({
      tenant: r.tenant,
      planId: r.plan_id,
      state: r.state,
      attempts: r.attempts,
      ...(r.runner ? { runner: r.runner } : {}),
      ...(r.window_ms !== null ? { windowMs: r.window_ms } : {}),
      ...(r.error ? { error: r.error } : {}),
      ...(r.claimed_at ? { claimedAt: r.claimed_at.toISOString() } : {}),
      ...(r.finished_at ? { finishedAt: r.finished_at.toISOString() } : {}),
    }));
  }

  async runners(): Promise<WaveRunnerRow[]> {
    const rows = await this.store.q<{ runner: string; host: string; pid: number; started_at: Date; finished_at: Date | null; alive: boolean }>(
      `SELECT r.runner, r.host, r.pid, r.started_at, r.finished_at,
              r.finished_at IS NULL AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.backend_pid) AS alive
         FROM cutover.wave_runners r JOIN cutover.waves w USING (wave_id)
        WHERE r.wave_id = $1 AND r.started_at >= w.started_at
        ORDER BY r.started_at`,
      [this.waveId],
    );
    return rows.map((r) => ({ runner: r.runner, host: r.host, pid: r.pid, startedAt: r.started_at.toISOString(), alive: r.alive, ...(r.finished_at ? { finishedAt: r.finished_at.toISOString() } : {}) }));
  }

  async leave(): Promise<void> {
    await this.store.q('UPDATE cutover.wave_runners SET finished_at = now() WHERE runner = $1', [this.runner]).catch(() => {});
    this.left = true;
    await this.unlock(this.key('runners'), true).catch(() => {});
    await this.dropTurnSession();
    const c = this.quietSession;
    this.quietSession = undefined;
    await c?.end().catch(() => {});
  }
}
