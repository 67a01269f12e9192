import { PreflightError, UsageError } from '../../src/errors.js';
import type {
  LateLeakCheck,
  LeakCheck,
  LeakWatchSetup,
  LeakedTransaction,
  FenceOnResult,
  FenceOptions,
  FenceTarget,
  PriorState,
  ReadOnlyAdapter,
  ReadOnlyStatusResult,
  ScopeStatus,
  SessionInfo,
} from '../../src/readonly/types.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { sleep } from '../../src/util/sleep.js';
import { connectPg, mapPgError, type PgClient } from './postgres-connection.js';
import { PgLeakDecoder, compareLsn } from './postgres-leak-decoding.js';
import { READ_ONLY_GUC, fenceSettingSql, loginSql } from './postgres-sql.js';
import { WRITABLE_GUC, fenceKindOf, fenceSchema, schemaExists, schemaFenceGaps, schemaTables, unfenceSchema } from './postgres-schema-fence.js';
import { publicSession, sessionsInScope, terminateSessions, type PgSession } from './postgres-sessions.js';

/** What `on` changes, so `off` can put back exactly that. */
interface PgPrior extends PriorState {
  /** The explicit value at the fenced level before the fence (null: none was set). */
  setting: string | null;
  /** strict mode: role → could it log in before the fence. */
  roles: Record<string, boolean>;
}

type PgScope = 'server' | 'database' | 'role';

const TRUE_VALUES = new Set(['on', 'true', 'yes', '1', 't', 'y']);
const isOn = (v: string | null | undefined): boolean => v != null && TRUE_VALUES.has(v.trim().toLowerCase().replace(/^'|'$/g, ''));
const LEAK_SAMPLE_MS = 20;
const DRAIN_POLL_MS = 25;
const SCHEMA_CHECK_MS = 100;

export class PostgresReadOnlyAdapter implements ReadOnlyAdapter {
  readonly engine = 'postgres' as const;
  /** The decoding slot's session, from prepareLeakWatch until close. */
  private decoder: PgLeakDecoder | undefined;
  /** Why the leak check samples only (set by prepareLeakWatch, or when decoding failed). */
  private decodeFallback: string | undefined;
  /** The fence position the decoded watch read from; lateLeaks continues from there. */
  private decodedFrom: string | undefined;
  /** Transaction ids the samplers caught, with their sessions, to name the sessions of decoded leaks. */
  private readonly xidSessions = new Map<string, PgSession>();

  private constructor(
    private readonly ep: DbEndpoint,
    private readonly client: PgClient,
  ) {}

  static async connect(ep: DbEndpoint, lockTimeoutMs: number): Promise<PostgresReadOnlyAdapter> {
    return new PostgresReadOnlyAdapter(ep, await connectPg(ep, { applicationName: 'cutover readonly', lockTimeoutMs }));
  }

  async close(): Promise<void> {
    await this.closeDecoder();
    await this.client.end().catch(() => {});
  }

  private async closeDecoder(): Promise<void> {
    await this.decoder?.close();
    this.decoder = undefined;
  }

  private async q<R extends object = Record<string, unknown>>(sql: string, params: unknown[] = [], doing?: string): Promise<R[]> {
    try {
      return (await this.client.query<R>(sql, params)).rows;
    } catch (e) {
      throw mapPgError(e, this.ep, doing);
    }
  }

  async serverId(): Promise<string> {
    try {
      const rows = await this.q<{ id: string }>(`SELECT system_identifier::text AS id FROM pg_control_system()`);
      if (rows[0]?.id) return `pg:${rows[0].id}`;
    } catch {
      // pg_control_system() may be revoked; host:port still keys the record.
    }
    return `pg:${this.ep.host}:${this.ep.port}`;
  }

  defaultStatusTargets(): FenceTarget[] {
    return this.ep.database ? [{ scope: 'server' }, { scope: 'database', name: this.ep.database }] : [{ scope: 'server' }];
  }

  private async requireSuperuser(doing: string): Promise<void> {
    const rows = await this.q<{ su: boolean }>(`SELECT rolsuper AS su FROM pg_roles WHERE rolname = current_user`);
    if (!rows[0]?.su) {
      throw new PreflightError(
        'privilege',
        `role "${this.ep.user}" is not a superuser on ${this.ep.host}:${this.ep.port}: ${doing} needs one (to change ${READ_ONLY_GUC} and end sessions)`,
        'connect as a superuser, e.g. postgres://postgres@host/db',
      );
    }
  }

  /** Scopes fenced by the read-only setting; a schema is fenced by triggers instead (postgres-schema-fence.ts). */
  private scopeOf(target: FenceTarget): PgScope {
    if (target.scope === 'schema') throw new Error('schema scope is handled by the schema fence');
    if (target.scope !== 'server' && !target.name) {
      throw new UsageError(`--scope ${target.scope} needs --name`, `pass --name <${target.scope}> (the URL's database is used for database scope when it has one)`);
    }
    return target.scope;
  }

  private async assertExists(target: FenceTarget): Promise<void> {
    if (target.scope === 'schema') {
      if (!target.name) throw new UsageError('--scope schema needs --name', 'pass --name <schema> (the URL names its database)');
      if (!(await schemaExists(this.client, target.name))) throw new UsageError(`schema "${target.name}" does not exist in database "${this.ep.database ?? '?'}" on ${this.ep.host}:${this.ep.port}`, 'check --name and the database in the URL');
    } else if (target.scope === 'database') {
      const rows = await this.q(`SELECT 1 FROM pg_database WHERE datname = $1`, [target.name]);
      if (rows.length === 0) throw new UsageError(`database "${target.name}" does not exist on ${this.ep.host}:${this.ep.port}`, 'check --name');
    } else if (target.scope === 'role') {
      const rows = await this.q(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [target.name]);
      if (rows.length === 0) throw new UsageError(`role "${target.name}" does not exist on ${this.ep.host}:${this.ep.port}`, 'check --name');
    }
  }

  /** The explicit value set at exactly this level (postgresql.auto.conf, the database, or the role). */
  private async explicitSetting(scope: PgScope, name?: string): Promise<string | null> {
    if (scope === 'server') {
      const rows = await this.q<{ setting: string }>(
        `SELECT setting FROM pg_file_settings WHERE name = $1 AND sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1`,
        [READ_ONLY_GUC],
      );
      return rows[0]?.setting ?? null;
    }
    const rows = await this.q<{ cfg: string }>(
      `SELECT cfg FROM pg_db_role_setting s, unnest(s.setconfig) AS cfg
        WHERE s.setdatabase = ${scope === 'database' ? '(SELECT oid FROM pg_database WHERE datname = $1)' : '0'}
          AND s.setrole = ${scope === 'role' ? '(SELECT oid FROM pg_roles WHERE rolname = $1)' : '0'}
          AND cfg LIKE $2`,
      [name, `${READ_ONLY_GUC}=%`],
    );
    const cfg = rows[0]?.cfg;
    return cfg === undefined ? null : cfg.slice(READ_ONLY_GUC.length + 1);
  }

  /** The server-wide value new sessions get from the configuration files. */
  private async serverEffective(): Promise<string> {
    const rows = await this.q<{ setting: string }>(
      `SELECT setting FROM pg_file_settings WHERE name = $1 AND applied ORDER BY seqno DESC LIMIT 1`,
      [READ_ONLY_GUC],
    );
    return rows[0]?.setting ?? 'off';
  }

  async capturePrior(target: FenceTarget, opts: FenceOptions): Promise<PriorState> {
    const scope = target.scope === 'schema' ? undefined : this.scopeOf(target);
    await this.requireSuperuser('readonly on');
    await this.assertExists(target);
    const roles: Record<string, boolean> = {};
    if (opts.mode === 'strict') {
      if (opts.roles.length === 0) throw new UsageError('strict mode needs the app roles to lock', 'pass --role <name> (repeatable)');
      const rows = await this.q<{ rolname: string; rolcanlogin: boolean; me: boolean }>(
        `SELECT rolname, rolcanlogin, rolname = current_user AS me FROM pg_roles WHERE rolname = ANY($1::text[])`,
        [opts.roles],
      );
      for (const want of opts.roles) {
        const row = rows.find((r) => r.rolname === want);
        if (!row) throw new UsageError(`role "${want}" does not exist on ${this.ep.host}:${this.ep.port}`, 'check --role');
        if (row.me) throw new UsageError(`refusing to lock out role "${want}": the tool itself connects as it`, 'connect as another superuser or drop it from --role');
        roles[want] = row.rolcanlogin;
      }
    } else if (opts.roles.length > 0) {
      throw new UsageError('--role only applies to --mode strict', 'add --mode strict or drop --role');
    }
    const prior: PgPrior = { setting: scope ? await this.explicitSetting(scope, target.name) : null, roles };
    return prior;
  }

  mergePrior(recorded: PriorState, fresh: PriorState): PriorState {
    const r = recorded as PgPrior;
    const f = fresh as PgPrior;
    // The first record's setting wins: a second `on` would otherwise record the fence as "previous".
    return { setting: r.setting, roles: { ...f.roles, ...r.roles } } satisfies PgPrior;
  }

  private async lockRoles(prior: PriorState): Promise<string[]> {
    const lockedRoles: string[] = [];
    for (const role of Object.keys((prior as PgPrior).roles)) {
      await this.q(loginSql(role, false), [], `locking role "${role}"`);
      lockedRoles.push(role);
    }
    return lockedRoles;
  }

  async apply(target: FenceTarget, opts: FenceOptions, prior: PriorState) {
    // A schema fence rejects writes synchronously (a trigger): its leak check looks for gaps in it, not commits.
    if (target.scope === 'schema') return this.applySchemaFence(target, opts, prior);
    const scope = this.scopeOf(target);
    // Before anything changes: the slot must exist before the first commit that could leak, and creating it waits
    // (bounded) for the server's running transactions, so it is done while nobody is fenced yet.
    const setup = opts.decodeLeaks === false ? undefined : await this.prepareLeakWatch(target);
    try {
      return await this.applyFence(target, scope, { ...opts, exemptSessions: [...(opts.exemptSessions ?? []), ...(setup?.sessions ?? [])] }, prior);
    } finally {
      await this.closeDecoder();
    }
  }

  private async applyFence(target: FenceTarget, scope: PgScope, opts: FenceOptions, prior: PriorState) {
    const warnings: string[] = [];
    const cutoff = await this.setReadOnlyDefault(scope, target.name);
    const lockedRoles = await this.lockRoles(prior);

    const drained: SessionInfo[] = [];
    const terminated: SessionInfo[] = [];
    let untouched: SessionInfo[] = [];
    if (opts.mode === 'advisory') {
      const before = await sessionsInScope(this.client, target, { startedBefore: cutoff, exempt: opts.exemptSessions });
      untouched = before
        .filter((s) => scope !== 'server' || s.transactionAgeMs !== undefined)
        .map((s) => publicSession(s, scope === 'server' ? 'transaction opened before the fence keeps its read-write mode' : 'connected before the fence'));
      if (scope !== 'server') {
        warnings.push(`advisory ${scope} scope reaches new sessions only: ${untouched.length} session(s) connected before the fence can still write until they reconnect (use --mode enforced)`);
      }
      warnings.push('advisory mode: any session can still write with BEGIN READ WRITE or SET default_transaction_read_only = off');
    } else {
      const firstWriters = await sessionsInScope(this.client, target, { startedBefore: cutoff, writingOnly: true, exempt: opts.exemptSessions });
      const deadline = Date.now() + opts.drainTimeoutMs;
      let writers = firstWriters;
      while (writers.length > 0 && Date.now() < deadline) {
        await sleep(DRAIN_POLL_MS);
        writers = await sessionsInScope(this.client, target, { startedBefore: cutoff, writingOnly: true, exempt: opts.exemptSessions });
      }
      const stillWriting = new Set(writers.map((w) => w.pid));
      for (const w of firstWriters) if (!stillWriting.has(w.pid)) drained.push(publicSession(w, 'write transaction finished within the drain timeout'));
      // Every session that predates the fence may hold a read-write transaction or a session-level override;
      // the policy may spare some, but never one still holding writes.
      const policy = opts.terminate ?? 'all';
      const predating = await sessionsInScope(this.client, target, { startedBefore: cutoff, exempt: opts.exemptSessions });
      const toEnd = predating.filter((s) => policy === 'all' || s.hasWriteXid || (policy === 'idle-in-transaction' && s.transactionAgeMs !== undefined));
      const spared = predating.length - toEnd.length;
      if (spared > 0) {
        warnings.push(`terminate ${policy}: ${spared} session(s) connected before the fence were left running${scope === 'server' ? '' : ` and do not see the ${scope} setting`}; the leak check watches them`);
      }
      const ended = await terminateSessions(this.client, toEnd.map((s) => s.pid));
      for (const s of toEnd) {
        if (!ended.has(s.pid)) {
          warnings.push(`session ${s.pid} (user ${s.user}) could not be terminated`);
          continue;
        }
        terminated.push(publicSession(s, s.hasWriteXid ? 'write transaction still open after the drain timeout' : 'connected before the fence'));
      }
      if (opts.mode === 'enforced') {
        warnings.push('enforced mode: a new session can still write with BEGIN READ WRITE; use --mode strict --role <app role> to stop that');
      }
    }
    const fencePosition = await this.walInsertPosition();
    const leakCheck = await this.watchLeaks(target, opts.exemptSessions ?? [], opts.probeMs, Promise.resolve(), fencePosition);
    if (leakCheck.fallback) warnings.push(`leak check sampled sessions only (a write shorter than ${LEAK_SAMPLE_MS}ms can fall between samples): ${leakCheck.fallback}`);
    return {
      scope: target.scope,
      ...(target.name ? { name: target.name } : {}),
      mode: opts.mode,
      persistent: true,
      drained,
      terminated,
      untouched,
      lockedRoles,
      warnings,
      leakCheck,
      fencePosition,
    } satisfies Omit<FenceOnResult, 'action' | 'engine' | 'server' | 'alreadyOn' | 'durationMs'>;
  }

  /**
   * Schema scope: the fence trigger on every table (advisory: the `hold` kind that replication and an explicit
   * `cutover.writable` pass). Sessions that predate it are bound too, so none is ended but open writers.
   */
  private async applySchemaFence(target: FenceTarget, opts: FenceOptions, prior: PriorState) {
    const lockedRoles = await this.lockRoles(prior);
    const kind = opts.mode === 'advisory' ? 'hold' : 'fence';
    const r = await this.on(`fencing schema "${target.name}"`, () =>
      fenceSchema(this.client, target.name!, { kind, drainTimeoutMs: opts.drainTimeoutMs, lockTimeoutMs: opts.lockTimeoutMs, endWriters: opts.mode !== 'advisory', exempt: opts.exemptSessions ?? [] }),
    );
    const warnings: string[] = [];
    if (r.tables.length === 0) warnings.push(`schema "${target.name}" has no tables: nothing to fence (tables created later are not fenced)`);
    if (kind === 'hold') warnings.push(`advisory schema fence: sessions with session_replication_role = replica or ${WRITABLE_GUC} = on still write (use --mode enforced)`);
    const leakCheck = await this.watchLeaks(target, opts.exemptSessions ?? [], opts.probeMs, Promise.resolve());
    return {
      scope: target.scope,
      name: target.name!,
      mode: opts.mode,
      persistent: true,
      drained: r.drained,
      terminated: r.terminated,
      untouched: [],
      lockedRoles,
      warnings,
      leakCheck,
    } satisfies Omit<FenceOnResult, 'action' | 'engine' | 'server' | 'alreadyOn' | 'durationMs'>;
  }

  private async on<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw mapPgError(e, this.ep, doing);
    }
  }

  /**
   * Sets the read-only default and returns the server time after which every new session gets it.
   * Sessions that started earlier may run without it.
   */
  private async setReadOnlyDefault(scope: PgScope, name: string | undefined): Promise<Date> {
    if (scope !== 'server') {
      await this.q(fenceSettingSql(scope, name, 'on'), [], `setting ${READ_ONLY_GUC} on ${scope} "${name}"`);
      const rows = await this.q<{ now: Date }>(`SELECT clock_timestamp() AS now`);
      return rows[0]!.now;
    }
    const before = await this.q<{ t: Date }>(`SELECT pg_conf_load_time() AS t`);
    await this.q(fenceSettingSql('server', undefined, 'on'), [], `ALTER SYSTEM SET ${READ_ONLY_GUC}`);
    await this.q(`SELECT pg_reload_conf()`);
    return this.waitForReload(before[0]!.t);
  }

  /**
   * The postmaster re-reads its configuration before it signals its children, so once our own backend has
   * reloaded, every backend forked afterwards starts with the new default.
   */
  private async waitForReload(previousLoad: Date): Promise<Date> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const rows = await this.q<{ t: Date; now: Date }>(`SELECT pg_conf_load_time() AS t, clock_timestamp() AS now`);
      if (rows[0]!.t.getTime() > previousLoad.getTime()) return rows[0]!.now;
      if (Date.now() > deadline) throw new PreflightError('preflight', `the server did not reload its configuration within 10s`, 'check the server log for configuration errors');
      await sleep(10);
    }
  }

  /**
   * Insert position, not pg_current_wal_lsn (the write position): an asynchronous commit that happened before
   * the fence may not be written yet, and must not count as a leak.
   */
  private async walInsertPosition(): Promise<string> {
    return (await this.q<{ l: string }>(`SELECT pg_current_wal_insert_lsn()::text AS l`))[0]!.l;
  }

  async prepareLeakWatch(target: FenceTarget, opts: { slot?: string } = {}): Promise<LeakWatchSetup> {
    const own = String((await this.q<{ p: number }>(`SELECT pg_backend_pid() AS p`))[0]!.p);
    if (target.scope === 'schema') return { method: 'trigger', sessions: [own] };
    if (target.scope !== 'database' || !target.name) {
      this.decodeFallback = `a decoding slot reads one database; the ${target.scope} scope is sampled`;
      return { method: 'sampled', fallback: this.decodeFallback, sessions: [own] };
    }
    const opened = await PgLeakDecoder.open(this.ep, target.name, opts.slot);
    if ('fallback' in opened) {
      this.decodeFallback = opened.fallback;
      return { method: 'sampled', fallback: opened.fallback, sessions: [own] };
    }
    this.decoder = opened;
    return { method: 'decoded', sessions: [own, String(opened.pid)] };
  }

  private withDecoder(exempt: readonly string[]): string[] {
    return this.decoder ? [...exempt, String(this.decoder.pid)] : [...exempt];
  }

  /** The session of a decoded transaction, when a sample caught it. */
  private named(t: LeakedTransaction): LeakedTransaction {
    const s = this.xidSessions.get(t.xid);
    return s ? { ...t, session: publicSession(s) } : t;
  }

  /**
   * Samples the scope for sessions that hold a write transaction id after the fence (names who writes), and
   * with a prepared decoding slot reads every commit after `fencePosition` (catches what samples miss).
   */
  async watchLeaks(target: FenceTarget, exempt: readonly string[], minMs: number, until: Promise<unknown>, fencePosition?: string): Promise<LeakCheck> {
    const started = Date.now();
    let done = false;
    void until.finally(() => (done = true));
    if (target.scope === 'schema') return this.watchSchemaFence(target.name!, started, minMs, () => done);
    const seen = new Map<number, PgSession>();
    const skip = this.withDecoder(exempt);
    const decoder = fencePosition ? this.decoder : undefined;
    const decoded: LeakedTransaction[] = [];
    let decodeError: unknown;
    const drain = async (): Promise<void> => {
      if (!decoder || !fencePosition || decodeError) return;
      try {
        decoded.push(...(await decoder.drain(fencePosition)).leaks);
      } catch (e) {
        decodeError = e;
      }
    };
    // A first read right away moves the slot past the fence position while the caller's other work runs, so the
    // last read (inside the caller's write-blocked window) only decodes what came since.
    await drain();
    do {
      for (const s of await sessionsInScope(this.client, target, { writingOnly: true, exempt: skip })) {
        seen.set(s.pid, s);
        if (s.xid) this.xidSessions.set(s.xid, s);
      }
      await sleep(LEAK_SAMPLE_MS);
    } while (Date.now() - started < minMs || !done);
    await drain();
    const writers: SessionInfo[] = [...seen.values()].map((s) => publicSession(s, 'acquired a write transaction after the fence'));
    writers.push(...(await this.preparedInScope(target)));
    const probeMs = Date.now() - started;
    if (decoder && !decodeError) {
      this.decodedFrom = fencePosition;
      const transactions = decoded.map((t) => this.named(t));
      return { probeMs, clean: writers.length === 0 && transactions.length === 0, writers, method: 'decoded', transactions };
    }
    if (decodeError) {
      this.decodeFallback = `reading the decoding slot failed: ${mapPgError(decodeError, this.ep).message}`;
      await this.closeDecoder();
    } else if (this.decoder) {
      this.decodeFallback = 'no fence position was given to decode from';
    }
    return { probeMs, clean: writers.length === 0, writers, method: 'sampled', ...(this.decodeFallback ? { fallback: this.decodeFallback } : {}) };
  }

  /**
   * After a decoded watch: what committed since. Replication applies in commit order, so a commit at or before
   * `appliedThrough` (where the target stopped applying) is on the target and one after it is not; without that
   * position, the tool's last sentinel (committed and seen on the target right before the detach) is a lower
   * bound. Never throws: a check that cannot run says so.
   */
  async lateLeaks(target: FenceTarget, exempt: readonly string[], appliedThrough?: string): Promise<LateLeakCheck> {
    const none = { splitBy: 'none' as const, replicated: [], sourceOnly: [], openWriters: [] };
    if (!this.decoder || !this.decodedFrom) return { checked: false, note: this.decodeFallback ?? 'no decoded leak check ran before', ...none };
    try {
      const d = await this.decoder.drain(this.decodedFrom);
      const leaks = d.leaks.map((t) => this.named(t));
      const openWriters = (await sessionsInScope(this.client, target, { writingOnly: true, exempt: this.withDecoder(exempt) })).map((s) =>
        publicSession(s, 'inside a write transaction: may still commit on the old source'),
      );
      const bound = appliedThrough ?? d.lastSentinelLsn;
      const reached = (t: LeakedTransaction) => bound !== undefined && compareLsn(t.commitPosition, bound) <= 0;
      return {
        checked: true,
        splitBy: appliedThrough ? 'applied' : d.lastSentinelLsn ? 'sentinel' : 'none',
        replicated: leaks.filter(reached),
        sourceOnly: leaks.filter((t) => !reached(t)),
        openWriters,
      };
    } catch (e) {
      return { checked: false, note: `reading the decoding slot failed: ${mapPgError(e, this.ep).message}`, ...none };
    }
  }

  /**
   * The schema fence rejects every write synchronously, so what can leak is a gap in it: a table created
   * after the fence, or the trigger dropped or disabled. Checked through the watch and once more at its end.
   */
  private async watchSchemaFence(schema: string, started: number, minMs: number, done: () => boolean): Promise<LeakCheck> {
    const gaps = new Map<string, SessionInfo>();
    const check = async () => {
      const tables = await schemaTables(this.client, schema);
      for (const g of schemaFenceGaps(tables, fenceKindOf(tables))) gaps.set(g.id, g);
    };
    for (;;) {
      await check();
      if (Date.now() - started >= minMs && done()) break;
      await sleep(SCHEMA_CHECK_MS);
    }
    const writers = [...gaps.values()];
    return { probeMs: Date.now() - started, clean: writers.length === 0, writers, method: 'trigger' };
  }

  /** Prepared transactions hold writes that COMMIT PREPARED can still make durable after the fence. */
  private async preparedInScope(target: FenceTarget): Promise<SessionInfo[]> {
    const params: unknown[] = [];
    let cond = 'true';
    if (target.scope === 'database') {
      params.push(target.name);
      cond = 'database = $1';
    } else if (target.scope === 'role') {
      params.push(target.name);
      cond = 'owner = $1';
    }
    const rows = await this.q<{ gid: string; owner: string; database: string; age_ms: string }>(
      `SELECT gid, owner, database, (extract(epoch FROM clock_timestamp() - prepared) * 1000)::bigint::text AS age_ms
         FROM pg_prepared_xacts WHERE ${cond} ORDER BY prepared`,
      params,
    );
    return rows.map((r) => ({
      id: `prepared:${r.gid}`,
      user: r.owner,
      database: r.database,
      transactionAgeMs: Number(r.age_ms),
      reason: `prepared transaction "${r.gid}" can still be committed (COMMIT PREPARED or ROLLBACK PREPARED it)`,
    }));
  }

  async restore(target: FenceTarget, prior: PriorState | undefined, lockTimeoutMs: number) {
    if (target.scope === 'schema') return this.restoreSchema(target, prior, lockTimeoutMs);
    const scope = this.scopeOf(target);
    await this.requireSuperuser('readonly off');
    await this.assertExists(target);
    const warnings: string[] = [];
    const current = await this.explicitSetting(scope, target.name);
    const p = prior as PgPrior | undefined;
    const unlockedRoles: string[] = [];
    let restored: string;
    let wasOn = true;
    if (p) {
      await this.q(fenceSettingSql(scope, target.name, p.setting), [], `restoring ${READ_ONLY_GUC}`);
      restored = p.setting === null ? 'reset: no explicit value was set before the fence' : `restored to '${p.setting}' as it was before the fence`;
      unlockedRoles.push(...(await this.unlockRoles(p)));
    } else if (isOn(current)) {
      await this.q(fenceSettingSql(scope, target.name, null), [], `resetting ${READ_ONLY_GUC}`);
      restored = 'reset: no record of the value before the fence was found in the state dir';
      warnings.push('no fence record found in the state dir: the setting was reset to the default; roles locked by strict mode (if any) were not unlocked');
    } else {
      wasOn = false;
      restored = current === null ? 'unchanged: no read-only setting at this level' : `unchanged: '${current}'`;
    }
    if (scope === 'server') {
      const before = await this.q<{ t: Date }>(`SELECT pg_conf_load_time() AS t`);
      await this.q(`SELECT pg_reload_conf()`);
      await this.waitForReload(before[0]!.t);
      if (isOn(await this.serverEffective())) warnings.push(`${READ_ONLY_GUC} is still on from postgresql.conf (not set by cutover): the server stays read-only`);
    }
    return { scope: target.scope, ...(target.name ? { name: target.name } : {}), wasOn, restored, unlockedRoles, warnings };
  }

  private async unlockRoles(p: PgPrior): Promise<string[]> {
    const unlocked: string[] = [];
    for (const [role, couldLogin] of Object.entries(p.roles)) {
      if (!couldLogin) continue;
      await this.q(loginSql(role, true), [], `unlocking role "${role}"`);
      unlocked.push(role);
    }
    return unlocked;
  }

  private async restoreSchema(target: FenceTarget, prior: PriorState | undefined, lockTimeoutMs: number) {
    await this.requireSuperuser('readonly off');
    await this.assertExists(target);
    const lifted = await this.on(`lifting the fence of schema "${target.name}"`, () => unfenceSchema(this.client, target.name!, lockTimeoutMs));
    const unlockedRoles = prior ? await this.unlockRoles(prior as PgPrior) : [];
    const warnings = prior ? [] : ['no fence record found in the state dir: the fence triggers were removed; roles locked by strict mode (if any) were not unlocked'];
    return {
      scope: target.scope,
      name: target.name!,
      wasOn: lifted.length > 0,
      restored: lifted.length > 0 ? `fence trigger removed from ${lifted.length} table(s)` : 'unchanged: no table of the schema had the fence trigger',
      unlockedRoles,
      warnings,
    };
  }

  private async schemaStatus(target: FenceTarget): Promise<ScopeStatus> {
    const tables = await schemaTables(this.client, target.name!);
    const fenced = tables.filter((t) => t.trigger !== null);
    const kind = fenceKindOf(fenced);
    const sessions = await sessionsInScope(this.client, { scope: 'database', name: this.ep.database! });
    return {
      scope: 'schema',
      name: target.name!,
      setting: fenced.length ? `fence trigger (${kind === 'hold' ? 'advisory' : 'always'}) on ${fenced.length}/${tables.length} table(s)` : null,
      readOnly: tables.length > 0 && fenced.length === tables.length,
      persistent: true,
      sessions: sessions.length,
      couldWrite: fenced.length ? schemaFenceGaps(tables, kind) : [],
    };
  }

  async status(targets: Array<FenceTarget & { fencedAt?: string }>): Promise<Omit<ReadOnlyStatusResult, 'action' | 'engine' | 'server'>> {
    const version = (await this.q<{ v: string }>(`SELECT current_setting('server_version') AS v`))[0]!.v;
    const su = (await this.q<{ su: boolean }>(`SELECT rolsuper AS su FROM pg_roles WHERE rolname = current_user`))[0]?.su ?? false;
    const warnings: string[] = [];
    if (!su) warnings.push(`role "${this.ep.user}" is not a superuser: the server-level setting and other users' sessions may be hidden`);
    const serverValue = su ? await this.serverEffective() : (await this.q<{ v: string }>(`SELECT boot_val AS v FROM pg_settings WHERE name = $1`, [READ_ONLY_GUC]))[0]!.v;
    const scopes: ScopeStatus[] = [];
    for (const target of targets) {
      if (target.scope === 'schema') {
        await this.assertExists(target);
        scopes.push(await this.schemaStatus(target));
        continue;
      }
      const scope = this.scopeOf(target);
      await this.assertExists(target);
      const setting = scope === 'server' ? (su ? await this.explicitSetting('server') : null) : await this.explicitSetting(scope, target.name);
      const effective = scope === 'server' ? serverValue : (setting ?? serverValue);
      const sessions = await sessionsInScope(this.client, target);
      const couldWrite: SessionInfo[] = [];
      const fencedAt = target.fencedAt ? new Date(target.fencedAt) : undefined;
      const supers = new Set((await this.q<{ rolname: string }>(`SELECT rolname FROM pg_roles WHERE rolsuper`)).map((r) => r.rolname));
      for (const s of sessions) {
        if (s.hasWriteXid) couldWrite.push(publicSession(s, 'inside a write transaction'));
        else if (scope !== 'server' && fencedAt && s.backendStart < fencedAt) couldWrite.push(publicSession(s, 'connected before the fence: the setting reaches new sessions only'));
        else if (supers.has(s.user)) couldWrite.push(publicSession(s, 'superuser: can override the read-only default'));
      }
      couldWrite.push(...(await this.overridingRoles(target)));
      couldWrite.push(...(await this.preparedInScope(target)));
      scopes.push({
        scope: target.scope,
        ...(target.name ? { name: target.name } : {}),
        setting: setting ?? (scope === 'server' ? serverValue : null),
        readOnly: isOn(effective),
        persistent: true,
        sessions: sessions.length,
        couldWrite,
      });
    }
    return { version, scopes, warnings };
  }

  /** Role settings that turn the read-only default back off; they take precedence over database and server. */
  private async overridingRoles(target: FenceTarget): Promise<SessionInfo[]> {
    const rows = await this.q<{ rolname: string; datname: string | null }>(
      `SELECT r.rolname, d.datname
         FROM pg_db_role_setting s
         JOIN pg_roles r ON r.oid = s.setrole
         LEFT JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) AS cfg
        WHERE cfg ~* $1
          AND ($2::text IS NULL OR s.setdatabase = 0 OR d.datname = $2)
          AND ($3::text IS NULL OR r.rolname = $3)`,
      [
        `^${READ_ONLY_GUC}=(off|false|no|0|f|n)$`,
        target.scope === 'database' ? target.name : null,
        target.scope === 'role' ? target.name : null,
      ],
    );
    return rows.map((r) => ({
      id: `role:${r.rolname}`,
      user: r.rolname,
      ...(r.datname ? { database: r.datname } : {}),
      reason: `role setting ${READ_ONLY_GUC}=off${r.datname ? ` in database ${r.datname}` : ''} overrides the fence`,
    }));
  }
}
