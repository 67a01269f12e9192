import type { RowDataPacket } from 'mysql2/promise';
import { UsageError } from '../../src/errors.js';
import type {
  FenceOnResult,
  FenceOptions,
  FenceTarget,
  LeakCheck,
  LeakWatchSetup,
  PriorState,
  ReadOnlyAdapter,
  ReadOnlyStatusResult,
  ScopeStatus,
  SessionInfo,
} from '../../src/readonly/types.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { sleep } from '../../src/util/sleep.js';
import { formatDuration } from '../../src/util/units.js';
import { bypassAccounts, currentAccount, isLocked, resolveAccounts, type BypassAccount } from './mysql-accounts.js';
import { connectMysql, mapMysqlError, type MysqlConnection } from './mysql-connection.js';
import { flavorLabel, type MysqlFlavor } from './mysql-flavor.js';
import { serverIdentity } from './mysql-identity.js';
import { applySchemaFence, captureSchemaFence, restoreSchemaFence, schemaLeakCheck, schemaWriters, type SchemaFencePrior, type StillWriting } from './mysql-schema-fence.js';
import { canTrackWrites, decodePosition, describePosition, encodePosition, normalizeGtidSet, positionMoved, type WritePosition } from './mysql-position.js';
import { clientSessions, endSessionsAtBoundaries, killSessions, publicSession, type EndedSession, type MysqlSession, type Query } from './mysql-sessions.js';
import {
  accountLabel,
  accountLockSql,
  fenceServerSql,
  isOn,
  liftServerSql,
  restoreServerSql,
  schemaReadOnlySql,
  sessionSetupSql,
  type Account,
  type ServerReadOnlyState,
} from './mysql-sql.js';

/** What `on` changes, so `off` can put back exactly that. */
interface MysqlPrior extends PriorState {
  flavor: 'mysql' | 'mariadb';
  server?: ServerReadOnlyState;
  /** schema scope: READ ONLY before the fence. */
  schemaReadOnly?: boolean;
  /** strict mode: `user@host` → the account, whether it was locked before the fence, and whether it bypasses read_only (lockBypass). */
  roles: Record<string, Account & { locked: boolean; bypass?: boolean }>;
  /** schema scope without ALTER SCHEMA READ ONLY: the write grants revoked from each --role account. */
  schemaGrants?: SchemaFencePrior;
  /** ... and the named accounts the revoke cannot stop (global, wildcard or role grants). */
  stillWriting?: StillWriting[];
}

/** `schema-grants`: schema scope on servers without ALTER SCHEMA READ ONLY, by revoking write privileges. */
type MysqlScope = 'server' | 'schema' | 'schema-grants';

/**
 * information_schema.INNODB_TRX is served from a cache that InnoDB refreshes only when nobody read it in the
 * last 100 ms (measured on MariaDB 10.11: polling every 25 ms kept showing a transaction long gone). Every
 * poll of open transactions waits longer than that, and the first read waits that long after the fence.
 */
const INNODB_TRX_CACHE_MS = 110;
const LEAK_SAMPLE_MS = INNODB_TRX_CACHE_MS;
const DRAIN_POLL_MS = INNODB_TRX_CACHE_MS;

const ER_LOCK_WAIT_TIMEOUT = 1205;
/** Pause between two attempts at the server fence when clients are held. */
const FENCE_RETRY_MS = 10;

export class MysqlReadOnlyAdapter implements ReadOnlyAdapter {
  readonly engine: 'mysql' | 'mariadb';

  private constructor(
    private readonly ep: DbEndpoint,
    private readonly conn: MysqlConnection,
    readonly flavor: MysqlFlavor,
  ) {
    this.engine = flavor.kind;
  }

  static async connect(ep: DbEndpoint, lockTimeoutMs: number): Promise<MysqlReadOnlyAdapter> {
    const { conn, flavor } = await connectMysql(ep, { lockTimeoutMs });
    return new MysqlReadOnlyAdapter(ep, conn, flavor);
  }

  async close(): Promise<void> {
    await this.conn.end().catch(() => this.conn.destroy());
  }

  private get where(): string {
    return `${this.ep.host}:${this.ep.port}`;
  }

  private readonly q: Query = async <R extends RowDataPacket>(sql: string, params: unknown[] = [], doing?: string): Promise<R[]> => {
    try {
      const [rows] = await this.conn.query(sql, params);
      return Array.isArray(rows) ? (rows as R[]) : [];
    } catch (e) {
      throw mapMysqlError(e, this.ep, doing ?? 'running a query');
    }
  };

  async serverId(): Promise<string> {
    return serverIdentity(this.q, this.flavor);
  }

  defaultStatusTargets(): FenceTarget[] {
    return this.flavor.schemaReadOnly && this.ep.database ? [{ scope: 'server' }, { scope: 'schema', name: this.ep.database }] : [{ scope: 'server' }];
  }

  /** `database` is a synonym of `schema` here; per-account read-only does not exist. */
  private scopeOf(target: FenceTarget): MysqlScope {
    if (target.scope === 'server') return 'server';
    if (target.scope === 'role') {
      throw new UsageError(`${flavorLabel(this.flavor)} has no per-account read-only setting`, 'use --scope server --mode strict --role <account> to keep that account out while the server is read-only');
    }
    if (!target.name) throw new UsageError(`--scope ${target.scope} needs --name`, 'pass --name <schema> (or put the database in the URL)');
    return this.flavor.schemaReadOnly ? 'schema' : 'schema-grants';
  }

  private async assertSchemaExists(name: string): Promise<void> {
    const rows = await this.q(`SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, [name], 'looking up the schema');
    if (rows.length === 0) throw new UsageError(`schema "${name}" does not exist at ${this.where}`, 'check --name');
  }

  private async captureSchemaGrants(name: string, opts: FenceOptions): Promise<MysqlPrior> {
    if (opts.mode !== 'strict' || opts.roles.length === 0) {
      throw new UsageError(
        `${flavorLabel(this.flavor)} has no schema-level read-only (ALTER SCHEMA ... READ ONLY needs MySQL 8.0.22+)`,
        `use --mode strict --role <app account> (repeatable) to revoke those accounts' write privileges on schema ${name} until \`off\`, or fence the whole server with --scope server`,
      );
    }
    await this.assertSchemaExists(name);
    const me = accountLabel(await currentAccount(this.q));
    const accounts = await resolveAccounts(this.q, opts.roles, this.where);
    if (accounts.some((a) => accountLabel(a) === me)) throw new UsageError(`refusing to revoke privileges of account ${me}: the tool itself connects as it`, 'connect as another administrative account or drop it from --role');
    const { prior, stillWriting } = await captureSchemaFence(this.q, this.flavor, name, accounts);
    return { flavor: this.flavor.kind, roles: {}, schemaGrants: prior, stillWriting };
  }

  private async serverState(): Promise<ServerReadOnlyState> {
    const f = this.flavor;
    const rows = await this.q<RowDataPacket & { ro: unknown; sro: unknown }>(
      `SELECT @@GLOBAL.read_only AS ro${f.superReadOnly ? ', @@GLOBAL.super_read_only AS sro' : ''}`,
    );
    const state: ServerReadOnlyState = { readOnly: isOn(rows[0]?.ro), superReadOnly: f.superReadOnly ? isOn(rows[0]?.sro) : null };
    if (f.persist) {
      const persisted = await this.q<RowDataPacket & { n: string; v: string }>(
        `SELECT VARIABLE_NAME AS n, VARIABLE_VALUE AS v FROM performance_schema.persisted_variables WHERE VARIABLE_NAME IN ('read_only', 'super_read_only')`,
        [],
        'reading persisted variables',
      );
      const get = (name: string): boolean | null => {
        const row = persisted.find((p) => p.n === name);
        return row ? isOn(row.v) : null;
      };
      state.persisted = { read_only: get('read_only'), super_read_only: get('super_read_only') };
    }
    return state;
  }

  private async schemaState(name: string): Promise<boolean> {
    const rows = await this.q<RowDataPacket & { o: string | null }>(
      `SELECT s.SCHEMA_NAME, e.OPTIONS AS o FROM information_schema.SCHEMATA s
         LEFT JOIN information_schema.SCHEMATA_EXTENSIONS e ON e.SCHEMA_NAME = s.SCHEMA_NAME
        WHERE s.SCHEMA_NAME = ?`,
      [name],
      'reading schema options',
    );
    if (rows.length === 0) throw new UsageError(`schema "${name}" does not exist at ${this.where}`, 'check --name');
    return /READ ONLY\s*=\s*1/i.test(rows[0]!.o ?? '');
  }

  async capturePrior(target: FenceTarget, opts: FenceOptions): Promise<PriorState> {
    const scope = this.scopeOf(target);
    if (scope === 'schema-grants') return this.captureSchemaGrants(target.name!, opts);
    const roles: MysqlPrior['roles'] = {};
    if (opts.mode === 'strict') {
      if (opts.roles.length === 0) throw new UsageError('strict mode needs the app accounts to lock', 'pass --role <user> or --role <user@host> (repeatable)');
      const me = accountLabel(await currentAccount(this.q));
      for (const a of await resolveAccounts(this.q, opts.roles, this.where)) {
        if (accountLabel(a) === me) throw new UsageError(`refusing to lock account ${me}: the tool itself connects as it`, 'connect as another administrative account or drop it from --role');
        roles[accountLabel(a)] = { ...a, locked: await isLocked(this.q, a) };
      }
      // Accounts that write through read_only are locked too (the cutover asks for it): the tool's own is kept.
      if (opts.lockBypass && scope === 'server' && !this.flavor.superReadOnly) {
        for (const b of await bypassAccounts(this.q, this.flavor)) {
          const label = accountLabel(b);
          if (label !== me && !roles[label]) roles[label] = { user: b.user, host: b.host, locked: b.locked, bypass: true };
        }
      }
    } else if (opts.roles.length > 0) {
      throw new UsageError('--role only applies to --mode strict', 'add --mode strict or drop --role');
    }
    const prior: MysqlPrior =
      scope === 'server'
        ? { flavor: this.flavor.kind, server: await this.serverState(), roles }
        : { flavor: this.flavor.kind, schemaReadOnly: await this.schemaState(target.name!), roles };
    return prior;
  }

  mergePrior(recorded: PriorState, fresh: PriorState): PriorState {
    const r = recorded as MysqlPrior;
    const f = fresh as MysqlPrior;
    // The first record's values win: a second `on` would otherwise record the fence itself as "previous".
    const grants = r.schemaGrants || f.schemaGrants ? { schemaGrants: { ...f.schemaGrants, ...r.schemaGrants } } : {};
    return { ...f, ...r, roles: { ...f.roles, ...r.roles }, ...grants } satisfies MysqlPrior;
  }

  async apply(target: FenceTarget, opts: FenceOptions, prior: PriorState) {
    const scope = this.scopeOf(target);
    const p = prior as MysqlPrior;
    const warnings: string[] = [];
    const exempt = opts.exemptSessions ?? [];
    if (scope === 'schema-grants') {
      const done = await applySchemaFence(this.q, p.schemaGrants ?? {}, p.stillWriting ?? [], { schema: target.name!, drainTimeoutMs: opts.drainTimeoutMs, probeMs: opts.probeMs, exempt });
      const { revoked, ...rest } = done;
      return { scope: target.scope, name: target.name!, mode: opts.mode, persistent: true, untouched: [], lockedRoles: revoked, ...rest };
    }

    // Sessions ended before the fence because a router holds new connections (see FenceOptions.clientsHeld).
    const quiesce = scope === 'server' && opts.clientsHeld === true && opts.mode !== 'advisory';
    const lockedRoles: string[] = [];
    const lockRoles = async () => {
      for (const [label, a] of Object.entries(p.roles)) {
        if (!a.locked) await this.q(accountLockSql(a, true), [], `locking account ${label}`);
        lockedRoles.push(label);
      }
    };
    const ended: EndedSession[] = [];
    if (quiesce) {
      // Locked first, so a client of a locked account that reconnects around the router is refused.
      await lockRoles();
      ended.push(...(await this.quiescedFence(opts, exempt, warnings)));
    } else {
      if (scope === 'server') {
        for (const sql of fenceServerSql(this.flavor)) await this.q(sql, [], `fencing the server (${sql})`);
      } else {
        await this.q(schemaReadOnlySql(target.name!, true), [], `making schema ${target.name} read-only`);
      }
      await lockRoles();
    }

    // Schema READ ONLY binds every account; server read_only lets the bypass accounts through (MariaDB, or
    // MySQL without super_read_only).
    const bypass = scope === 'server' && !this.flavor.superReadOnly ? reachable(await bypassAccounts(this.q, this.flavor), await clientSessions(this.q)) : [];
    const bypassUsers = new Set(bypass.map((b) => b.user));
    if (bypass.length > 0) warnings.push(bypassWarning(bypass, this.flavor));
    const lockedBypass = Object.entries(p.roles).filter(([, a]) => a.bypass && !a.locked).map(([label]) => label);
    if (lockedBypass.length > 0) warnings.push(`strict mode locked ${lockedBypass.length} account(s) that write despite read_only until \`off\` (their sessions were ended): ${lockedBypass.join(', ')}`);

    const drained: SessionInfo[] = [];
    const terminated: SessionInfo[] = ended.map((e) => publicSession(e.session, endedReason(e)));
    let untouched: SessionInfo[] = [];
    // After a quiesced fence no session that predates it is left, so there is no open transaction to look for.
    if (scope === 'server' && !quiesce) await sleep(INNODB_TRX_CACHE_MS);
    if (opts.mode === 'advisory') {
      const open = scope === 'server' ? await clientSessions(this.q, { writingOnly: true, exempt }) : [];
      untouched = open.map((s) =>
        publicSession(s, bypassUsers.has(s.user) ? 'privileged write transaction: can still commit' : 'write transaction opened before the fence: its COMMIT fails (error 1290)'),
      );
      if (bypass.length > 0) warnings.push('advisory mode: sessions of the accounts above keep writing (use --mode enforced to end them, or strict to lock app accounts)');
    } else if (scope === 'server') {
      // ALTER SCHEMA ... READ ONLY waits for every transaction holding a lock in the schema: nothing to drain.
      const first = quiesce ? [] : await clientSessions(this.q, { writingOnly: true, exempt });
      let writers = first;
      const deadline = Date.now() + opts.drainTimeoutMs;
      while (writers.length > 0 && Date.now() < deadline) {
        await sleep(DRAIN_POLL_MS);
        writers = await clientSessions(this.q, { writingOnly: true, exempt });
      }
      const still = new Set(writers.map((w) => w.threadId));
      for (const w of first) if (!still.has(w.threadId)) drained.push(publicSession(w, 'write transaction ended within the drain timeout'));
      const lockedUsers = Object.values(p.roles).map((a) => a.user);
      const privileged = await clientSessions(this.q, { users: [...bypassUsers], exempt });
      const ofLocked = opts.mode === 'strict' ? await clientSessions(this.q, { users: lockedUsers, exempt }) : [];
      const toEnd = new Map<string, { s: MysqlSession; reason: string }>();
      for (const s of ofLocked) toEnd.set(s.threadId, { s, reason: 'account locked by strict mode: connected before the lock' });
      for (const s of privileged) toEnd.set(s.threadId, { s, reason: `account bypasses read_only (${this.flavor.bypassPrivileges.join('/')}): could still commit writes` });
      for (const s of writers) toEnd.set(s.threadId, { s, reason: `write transaction (${s.rowsModified} row(s) changed) still open after the ${formatDuration(opts.drainTimeoutMs)} drain timeout` });
      const ended = await killSessions(this.q, [...toEnd.keys()]);
      for (const { s, reason } of toEnd.values()) {
        if (ended.has(s.threadId)) terminated.push(publicSession(s, reason));
        else warnings.push(`session ${s.threadId} (user ${s.user}) could not be killed`);
      }
    }

    const persistent = scope === 'schema' || this.flavor.persist;
    if (!persistent) {
      warnings.push(
        this.flavor.kind === 'mariadb'
          ? 'MariaDB has no SET PERSIST: a server restart drops this fence (read_only comes back from the config files); run `cutover readonly on` again after any restart'
          : `${flavorLabel(this.flavor)} has no SET PERSIST: a server restart drops this fence; run \`cutover readonly on\` again after any restart`,
      );
    }
    // The position every later write would move: a caller watching with its own LeakWatcher (probeMs 0) starts there.
    const fencedAt = scope === 'server' ? await this.position() : undefined;
    const leakCheck =
      scope !== 'server'
        ? await this.schemaLeakCheck(target.name!, opts.probeMs, warnings)
        : opts.probeMs === 0
          ? { probeMs: 0, clean: true, writers: [], method: 'position' as const }
          : await this.leakCheck(opts.probeMs, bypassUsers, exempt, warnings, Promise.resolve(), fencedAt);
    return {
      ...(fencedAt && canTrackWrites(fencedAt) ? { fencePosition: encodePosition(fencedAt) } : {}),
      scope: target.scope,
      ...(target.name ? { name: target.name } : {}),
      mode: opts.mode,
      persistent,
      drained,
      terminated,
      untouched,
      lockedRoles,
      warnings,
      leakCheck,
    } satisfies Omit<FenceOnResult, 'action' | 'engine' | 'server' | 'alreadyOn' | 'durationMs'>;
  }

  /**
   * The server fence while a router holds new connections: every client session is ended at a statement
   * boundary first (within the drain timeout), so `SET GLOBAL read_only` meets a quiet server instead of
   * queueing behind a stream of commits (under sysbench it timed out in 1 of 2 runs). It then tries without
   * waiting for locks and, until --lock-timeout, ends whoever connected around the router and tries again.
   */
  private async quiescedFence(opts: FenceOptions, exempt: readonly string[], warnings: string[]): Promise<EndedSession[]> {
    const first = await endSessionsAtBoundaries(this.q, { exempt, timeoutMs: opts.drainTimeoutMs });
    const ended = [...first.ended];
    for (const s of first.failed) warnings.push(`session ${s.threadId} (user ${s.user}) could not be killed`);
    const until = Date.now() + opts.lockTimeoutMs;
    // MariaDB takes 0 as "do not wait"; MySQL's minimum is 1 s.
    await this.q(`SET SESSION lock_wait_timeout = ${this.flavor.kind === 'mariadb' ? 0 : 1}`);
    try {
      for (;;) {
        try {
          for (const sql of fenceServerSql(this.flavor)) await this.q(sql, [], `fencing the server (${sql})`);
          return ended;
        } catch (e) {
          if ((e as { cause?: { errno?: number } }).cause?.errno !== ER_LOCK_WAIT_TIMEOUT || Date.now() >= until) throw e;
          ended.push(...(await endSessionsAtBoundaries(this.q, { exempt, timeoutMs: 0 })).ended);
          await sleep(FENCE_RETRY_MS);
        }
      }
    } finally {
      await this.q(sessionSetupSql(this.flavor, opts.lockTimeoutMs));
    }
  }

  private async position(): Promise<WritePosition> {
    const g = await this.q<RowDataPacket & { g: string | null }>(`SELECT @@GLOBAL.${this.flavor.gtidVariable} AS g`);
    const b = await this.q<RowDataPacket & { File?: string; Position?: string | number }>(this.flavor.binlogStatusSql, [], 'reading the binary log position');
    const file = b[0]?.File ?? null;
    return { gtid: normalizeGtidSet(g[0]?.g), file, pos: file === null ? null : Number(b[0]!.Position) };
  }

  /**
   * The write position must not move during the probe. Open write transactions are sampled meanwhile so a
   * move can be pinned on a session; a privileged session holding changed rows is a leak even before it
   * commits, since it can.
   */
  private async leakCheck(probeMs: number, bypassUsers: Set<string>, exempt: readonly string[], warnings: string[], until: Promise<unknown> = Promise.resolve(), from?: WritePosition): Promise<LeakCheck> {
    const settled = settledFlag(until);
    const started = Date.now();
    const start = from ?? (await this.position());
    const seen = new Map<string, MysqlSession>();
    const activePrivileged = new Map<string, MysqlSession>();
    do {
      for (const s of await clientSessions(this.q, { writingOnly: true, exempt })) seen.set(s.threadId, s);
      if (bypassUsers.size > 0) {
        for (const s of await clientSessions(this.q, { users: [...bypassUsers], exempt })) {
          if (s.command !== 'Sleep' || !activePrivileged.has(s.threadId)) activePrivileged.set(s.threadId, s);
        }
      }
      // Past the minimum, the end of `until` ends the wait at once: the caller's window waits for this check.
      const left = probeMs - (Date.now() - started);
      await (left > 0 ? sleep(Math.min(LEAK_SAMPLE_MS, left)) : Promise.race([sleep(LEAK_SAMPLE_MS), until.catch(() => {})]));
    } while (Date.now() - started < probeMs || !settled.now);
    probeMs = Date.now() - started;
    const after = await this.position();
    const moved = positionMoved(start, after);
    if (!canTrackWrites(start)) warnings.push('the binary log is off: the leak check could only watch open transactions, not committed writes');
    const writers: SessionInfo[] = [];
    for (const s of seen.values()) {
      if (bypassUsers.has(s.user)) writers.push(publicSession(s, `privileged session changed ${s.rowsModified} row(s) after the fence and can commit them`));
      else if (moved) writers.push(publicSession(s, `held changed rows while the write position moved`));
    }
    if (moved && writers.length === 0) {
      // Autocommit writes are too short to catch in INNODB_TRX: name every privileged session that was there.
      for (const s of activePrivileged.values()) {
        writers.push(publicSession(s, s.command === 'Sleep' ? 'privileged session connected while the write position moved' : 'privileged session running statements while the write position moved'));
      }
    }
    if (moved && writers.length === 0) {
      writers.push({ id: 'binlog', user: '', reason: `write position moved from ${describePosition(start)} to ${describePosition(after)}; no session was caught in the act (look at the binary log)` });
    }
    writers.push(...(await this.preparedXa()));
    return { probeMs, clean: !moved && writers.length === 0, writers, method: 'position' };
  }

  /** The watch's own session must survive a fence that ends every client session (FenceOptions.clientsHeld). */
  async prepareLeakWatch(target: FenceTarget): Promise<LeakWatchSetup> {
    return { method: this.scopeOf(target) === 'server' ? 'position' : 'sampled', sessions: [String(this.conn.threadId)] };
  }

  /**
   * The leak check of a fence already in place, for at least `minMs` and until `until` settles: the cutover
   * runs it beside the catch-up and verify instead of before them. Sessions are those of the moment (the fence
   * ended older ones); the schema-grants check suspects every session in the schema, since the accounts that
   * kept write privileges were worked out by `on`.
   */
  async watchLeaks(target: FenceTarget, exempt: readonly string[], minMs: number, until: Promise<unknown>, fencePosition?: string): Promise<LeakCheck> {
    const scope = this.scopeOf(target);
    const warnings: string[] = [];
    if (scope === 'schema-grants') return schemaLeakCheck(this.q, target.name!, minMs, 'all', exempt, warnings, until);
    if (scope === 'schema') return this.schemaLeakCheck(target.name!, minMs, warnings, until);
    const bypass = this.flavor.superReadOnly ? [] : reachable(await bypassAccounts(this.q, this.flavor), await clientSessions(this.q));
    return this.leakCheck(minMs, new Set(bypass.map((b) => b.user)), exempt, warnings, until, fencePosition ? decodePosition(fencePosition) : undefined);
  }

  /** Schema READ ONLY is enforced by the server for every account; the binary log position is server-wide. */
  private async schemaLeakCheck(name: string, probeMs: number, warnings: string[], until: Promise<unknown> = Promise.resolve()): Promise<LeakCheck> {
    const started = Date.now();
    const settled = settledFlag(until);
    do await sleep(Math.min(LEAK_SAMPLE_MS, Math.max(1, probeMs))); while (Date.now() - started < probeMs || !settled.now);
    probeMs = Date.now() - started;
    const stillOn = await this.schemaState(name);
    warnings.push('schema scope: the leak check confirms the READ ONLY option only (the write position is server-wide)');
    const writers: SessionInfo[] = stillOn ? [] : [{ id: `schema:${name}`, user: '', reason: 'the READ ONLY option was turned off again during the probe' }];
    return { probeMs, clean: writers.length === 0, writers };
  }

  /** XA transactions prepared before the fence can still be committed by a privileged session. */
  private async preparedXa(): Promise<SessionInfo[]> {
    const rows = await this.q<RowDataPacket & { formatID: number; gtrid_length: number; bqual_length: number; data: Buffer | string }>(`XA RECOVER`, [], 'listing prepared XA transactions');
    return rows.map((r) => {
      const data = Buffer.isBuffer(r.data) ? r.data.toString('utf8') : String(r.data);
      const gtrid = data.slice(0, Number(r.gtrid_length));
      return { id: `xa:${gtrid}`, user: '', reason: `prepared XA transaction "${gtrid}" can still be committed (XA COMMIT or XA ROLLBACK it)` };
    });
  }

  async restore(target: FenceTarget, prior: PriorState | undefined, lockTimeoutMs: number) {
    void lockTimeoutMs; // applied to the session at connect
    const scope = this.scopeOf(target);
    const p = prior as MysqlPrior | undefined;
    const warnings: string[] = [];
    const unlockedRoles: string[] = [];
    let wasOn = true;
    let restored: string;
    if (scope === 'schema-grants') {
      if (!p?.schemaGrants) {
        return { scope: target.scope, name: target.name!, wasOn: false, restored: 'unchanged: no record of revoked privileges was found in the state dir', unlockedRoles, warnings };
      }
      const back = await restoreSchemaFence(this.q, p.schemaGrants);
      return { scope: target.scope, name: target.name!, wasOn: true, restored: `granted back the write privileges recorded for ${Object.keys(p.schemaGrants).length} account(s)`, unlockedRoles: back.regranted, warnings: back.warnings };
    }
    if (scope === 'server') {
      const current = await this.serverState();
      if (p?.server) {
        for (const sql of restoreServerSql(this.flavor, p.server)) await this.q(sql, [], `restoring the server (${sql})`);
        restored = p.server.readOnly
          ? `read_only stays ON: it was ON before the fence${p.server.superReadOnly ? ' (super_read_only too)' : ''}`
          : 'restored read_only = OFF as it was before the fence';
      } else if (current.readOnly || current.superReadOnly) {
        for (const sql of liftServerSql(this.flavor)) await this.q(sql, [], `lifting the fence (${sql})`);
        restored = 'read_only set OFF: no record of the value before the fence was found in the state dir';
        warnings.push('no fence record found in the state dir: read_only was turned off; accounts locked by strict mode (if any) were not unlocked');
      } else {
        wasOn = false;
        restored = 'unchanged: read_only is OFF';
      }
    } else {
      const current = await this.schemaState(target.name!);
      if (p && p.schemaReadOnly !== undefined) {
        await this.q(schemaReadOnlySql(target.name!, p.schemaReadOnly), [], `restoring schema ${target.name}`);
        restored = p.schemaReadOnly ? 'READ ONLY stays on: it was on before the fence' : 'restored READ ONLY = 0 as it was before the fence';
      } else if (current) {
        await this.q(schemaReadOnlySql(target.name!, false), [], `lifting READ ONLY on schema ${target.name}`);
        restored = 'READ ONLY = 0: no record of the value before the fence was found in the state dir';
      } else {
        wasOn = false;
        restored = 'unchanged: the schema is writable';
      }
    }
    for (const [label, a] of Object.entries(p?.roles ?? {})) {
      if (a.locked) continue;
      try {
        await this.q(accountLockSql(a, false), [], `unlocking account ${label}`);
        unlockedRoles.push(label);
      } catch (e) {
        if ((e as { cause?: { errno?: number } }).cause?.errno !== 1396) throw e;
        warnings.push(`account ${label} no longer exists: nothing to unlock`);
      }
    }
    return { scope: target.scope, ...(target.name ? { name: target.name } : {}), wasOn, restored, unlockedRoles, warnings };
  }

  async status(targets: Array<FenceTarget & { fencedAt?: string }>): Promise<Omit<ReadOnlyStatusResult, 'action' | 'engine' | 'server'>> {
    const warnings: string[] = [];
    const scopes: ScopeStatus[] = [];
    const sessions = await clientSessions(this.q);
    for (const target of targets) {
      const scope = this.scopeOf(target);
      const couldWrite: SessionInfo[] = [];
      if (scope === 'server') {
        const s = await this.serverState();
        const setting = `read_only=${s.readOnly ? 'ON' : 'OFF'}${s.superReadOnly !== null ? `, super_read_only=${s.superReadOnly ? 'ON' : 'OFF'}` : ''}`;
        const bypass = s.superReadOnly ? [] : reachable(await bypassAccounts(this.q, this.flavor), sessions);
        const bypassUsers = new Set(bypass.map((b) => b.user));
        for (const w of sessions.filter((x) => x.rowsModified > 0)) {
          couldWrite.push(publicSession(w, bypassUsers.has(w.user) || !s.readOnly ? 'inside a write transaction' : 'inside a write transaction opened before read_only: its COMMIT fails'));
        }
        for (const b of bypass) couldWrite.push(bypassInfo(b, sessions));
        if (bypass.length > 0) warnings.push(bypassWarning(bypass, this.flavor));
        const persistent = s.readOnly && this.flavor.persist && s.persisted?.read_only === true;
        if (s.readOnly && !this.flavor.persist) warnings.push(`${flavorLabel(this.flavor)} has no SET PERSIST: read_only=ON is lost on a server restart`);
        scopes.push({ scope: target.scope, setting, readOnly: s.readOnly, persistent, sessions: sessions.length, couldWrite });
      } else if (scope === 'schema-grants') {
        const inSchema = sessions.filter((x) => x.database === target.name);
        const writers = await schemaWriters(this.q, target.name!);
        if (writers.length > 0) warnings.push(`accounts with write privileges on schema ${target.name}: ${writers.join(', ')}`);
        scopes.push({
          scope: target.scope,
          name: target.name!,
          setting: target.fencedAt ? 'write privileges revoked from the --role accounts (no native schema read-only)' : null,
          readOnly: target.fencedAt !== undefined,
          persistent: true,
          sessions: inSchema.length,
          couldWrite: inSchema.filter((x) => x.rowsModified > 0).map((x) => publicSession(x, 'inside a write transaction')),
        });
      } else {
        const ro = await this.schemaState(target.name!);
        const inSchema = sessions.filter((x) => x.database === target.name);
        scopes.push({
          scope: target.scope,
          name: target.name!,
          setting: ro ? 'READ ONLY=1' : 'READ ONLY=0',
          readOnly: ro,
          persistent: true,
          sessions: inSchema.length,
          couldWrite: ro ? [] : inSchema.filter((x) => x.rowsModified > 0).map((x) => publicSession(x, 'inside a write transaction')),
        });
      }
    }
    return { version: this.flavor.full, scopes, warnings };
  }
}

/** Accounts that are connected or able to connect: a locked account without sessions cannot write. */
function reachable(bypass: BypassAccount[], sessions: MysqlSession[]): BypassAccount[] {
  return bypass.filter((b) => !b.locked || sessions.some((s) => s.user === b.user));
}

function bypassInfo(b: BypassAccount, sessions: MysqlSession[]): SessionInfo {
  const n = sessions.filter((s) => s.user === b.user).length;
  return {
    id: accountLabel(b),
    user: b.user,
    client: b.host,
    reason: `holds ${b.privilege}${b.viaRole ? ` via role ${b.viaRole}` : ''}: writes despite read_only${b.locked ? ' (locked)' : ''}; ${n} session(s) of user ${b.user} connected`,
  };
}

function bypassWarning(bypass: BypassAccount[], f: MysqlFlavor): string {
  const names = bypass.map((b) => `${accountLabel(b)}${b.viaRole ? ` (via role ${b.viaRole})` : ''}${b.locked ? ' (locked)' : ''}`).join(', ');
  return `${bypass.length} account(s) with ${f.bypassPrivileges.join(' or ')} write despite read_only on ${flavorLabel(f)}: ${names}; apps must not use them (enforced mode kills their sessions; they can reconnect)`;
}

/** Whether `p` has settled yet, readable synchronously by a polling loop. */
function settledFlag(p: Promise<unknown>): { now: boolean } {
  const flag = { now: false };
  void p.then(
    () => (flag.now = true),
    () => (flag.now = true),
  );
  return flag;
}

/** Why the quiesced fence ended a session, as the report says it. */
function endedReason(e: EndedSession): string {
  if (!e.idle) return 'still inside a statement when the drain timeout ran out: killed before the fence, that statement rolled back';
  if (e.session.rowsModified > 0) return `ended between statements before the fence; its open write transaction (${e.session.rowsModified} row(s)) rolled back, so its COMMIT fails`;
  return 'ended between statements before the fence (new connections are held by the router: the client reconnects into the hold)';
}
