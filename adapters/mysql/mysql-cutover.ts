import type { RowDataPacket } from 'mysql2/promise';
import { BudgetExceededError, OperationError } from '../../src/errors.js';
import type { CatchUpProof, CutoverAdapter, Finding, Leftover, OnlineVerifyHooks, SourceLockResult, SyncProgress, SyncSummary, VerifyReport } from '../../src/engine/cutover-adapter.js';
import type { CopyMethod } from '../../src/plan/types.js';
import type { DbEndpoint, Engine } from '../../src/util/db-url.js';
import { randomReplicationPassword, replicationAccountName } from '../../src/util/replication-account.js';
import { sleep } from '../../src/util/sleep.js';
import { formatBytes } from '../../src/util/units.js';
import { applyAccounts, planAccounts, type AccountsMode } from './mysql-account-copy.js';
import { mysqlPreflight, type BypassFenceOptions } from './mysql-checks.js';
import { connectMysql, mapMysqlError, type MysqlConnection } from './mysql-connection.js';
import { clientKind, dumpCommand, dumpInto, loadCommand, plaintextFallbackFinding } from './mysql-dump.js';
import type { MysqlFlavor } from './mysql-flavor.js';
import { serverIdentity } from './mysql-identity.js';
import { holdsPlanLock, releasePlanLock, tryPlanLock } from './mysql-plan-lock.js';
import { normalizeGtidSet } from './mysql-position.js';
import {
  allReplicasStatusSql,
  binlogBytesBehind,
  changeSourceSql,
  gtidWaitReached,
  gtidWaitSql,
  plaintextLinkFinding,
  readReplicaStatus,
  replicaFilterSql,
  resetReplicaAllSql,
  startReplicaSql,
  stopReplicaSql,
  type ReplicaStatus,
} from './mysql-replication.js';
import { createReplicationUserSql, dropReplicationUserSql, withSessionLog, withoutGeneralLog, replicationUserExists, replicationUserLeftover } from './mysql-replication-user.js';
import type { Query } from './mysql-sessions.js';
import { resolveProfile, type PrivilegesSetting } from './mysql-privilege-profile.js';
import { copyAtOnePosition, MYSQL_SPLIT_BYTES, mysqlCopyJobs, readCopyTables, type CopyTable } from './mysql-snapshot-copy.js';
import { accountLabel, accountLockSql, isOn, parseAccountSpec } from './mysql-sql.js';
import { autoIncrementFixes, autoIncrements, setAutoIncrementSql, verifyTables } from './mysql-verify.js';
import { mysqlVerifyChunks } from './mysql-verify-chunks.js';

export interface MysqlCutoverConfig {
  source: DbEndpoint;
  target: DbEndpoint;
  /** The database that moves (same name on both sides). */
  database: string;
  method: CopyMethod;
  /** The target's replica connection (MariaDB connection name / MySQL channel). */
  name: string;
  verify: VerifyReport['mode'];
  lockTimeoutMs: number;
  /**
   * The account the replica connection logs in with (plan source.replication). Absent: an account the tool
   * creates per plan with a random password and drops at cleanup; the admin account never reaches the target.
   */
  replicationAccount?: { user: string; password: string };
  /** Bound on the dump and load of `sync`. */
  copyTimeoutMs?: number;
  /** How often `sync` reports load progress. */
  progressEveryMs?: number;
  /** What `sync` does with the accounts that have privileges on the database (default copy). */
  accounts?: AccountsMode;
  /** Accounts the plan names (readOnly.roles): copied or checked even without grants on the database. */
  namedAccounts?: readonly string[];
  /** The source fence, for the preflight's read_only bypass finding. */
  fence?: BypassFenceOptions;
  /** The plan's `privileges`: the target hold of the managed profile locks namedAccounts instead of read_only. */
  privileges?: PrivilegesSetting;
  /** Workers of the parallel initial copy (MariaDB to MariaDB; default: mysqlCopyJobs()). */
  copyJobs?: number;
  /** Tables above this size are copied as several primary-key ranges (default MYSQL_SPLIT_BYTES). */
  copySplitBytes?: number;
}

/** How long `sync` waits for the new replica connection to report both threads running. */
const REPLICA_START_MS = 15_000;

function query(conn: MysqlConnection, ep: DbEndpoint, secrets: readonly string[]): Query {
  return async <R extends RowDataPacket>(sql: string, params: unknown[] = [], doing?: string): Promise<R[]> => {
    try {
      const [rows] = await conn.query(sql, params);
      return Array.isArray(rows) ? (rows as R[]) : [];
    } catch (e) {
      // The replica statement carries the replication password: keep it out of the error and its cause.
      throw mapMysqlError(e, ep, doing ?? 'running a query', secrets);
    }
  };
}

/**
 * Moves one MySQL/MariaDB database: a consistent dump loaded into the target, then the target replicates from
 * the source by GTID; after the fence, the target's replica proves it applied the source's GTID set.
 */
/** Bound on the last GTID wait before replication stops (after the point of no return: a timeout means resume). */
const FINAL_CATCH_UP_MS = 10_000;

/** Bound on the target reaching the source's position during the online verify (the table is locked meanwhile). */
const VERIFY_WAIT_MS = 5_000;
/** The online verify renews its snapshot pair this often (old snapshots hold back InnoDB's purge). */
const VERIFY_SNAPSHOT_MS = 30_000;

/** How long the lag reading waits for a just-started replica to report its first position. */
const REPLICA_START_WAIT_MS = 10_000;

export class MysqlCutover implements CutoverAdapter {
  readonly engine: Engine;
  private readonly src: Query;
  private readonly dst: Query;
  /** Scrubbed from every error message; a created replication password joins it. */
  private readonly secrets: string[];

  private constructor(
    private readonly cfg: MysqlCutoverConfig,
    private readonly srcConn: MysqlConnection,
    readonly sourceFlavor: MysqlFlavor,
    private readonly dstConn: MysqlConnection,
    readonly targetFlavor: MysqlFlavor,
  ) {
    this.engine = sourceFlavor.kind;
    this.secrets = [cfg.source.password, cfg.target.password, cfg.replicationAccount?.password].filter((p): p is string => p !== undefined);
    this.src = query(srcConn, cfg.source, this.secrets);
    this.dst = query(dstConn, cfg.target, this.secrets);
  }

  static async connect(cfg: MysqlCutoverConfig): Promise<MysqlCutover> {
    const s = await connectMysql(cfg.source, { lockTimeoutMs: cfg.lockTimeoutMs });
    try {
      const d = await connectMysql(cfg.target, { lockTimeoutMs: cfg.lockTimeoutMs });
      return new MysqlCutover(cfg, s.conn, s.flavor, d.conn, d.flavor);
    } catch (e) {
      s.conn.destroy();
      throw e;
    }
  }

  async identities(): Promise<{ source: string; target: string }> {
    const [source, target] = await Promise.all([serverIdentity(this.src, this.sourceFlavor), serverIdentity(this.dst, this.targetFlavor)]);
    return { source, target };
  }

  private async replicas(): Promise<ReplicaStatus[]> {
    const rows = await this.dst<RowDataPacket>(allReplicasStatusSql(this.targetFlavor), [], 'reading replica status');
    return rows.map((r) => readReplicaStatus(r));
  }

  private async ours(): Promise<ReplicaStatus | undefined> {
    return (await this.replicas()).find((r) => r.name === this.cfg.name);
  }

  async preflight(ctx: { synced?: boolean; syncing?: boolean } = {}): Promise<Finding[]> {
    const replicas = await this.replicas();
    // method dump has no replica connection to recognise its copy by: the journal's finished sync says it.
    const syncedByUs = this.cfg.method === 'dump' ? ctx.synced === true : replicas.some((r) => r.name === this.cfg.name);
    const findings = await mysqlPreflight({
      source: { q: this.src, flavor: this.sourceFlavor },
      target: { q: this.dst, flavor: this.targetFlavor },
      database: this.cfg.database,
      method: this.cfg.method,
      sourceHost: this.cfg.source.host,
      syncedByUs,
      otherReplicas: replicas.filter((r) => r.name !== this.cfg.name).map((r) => r.name),
      ...(this.cfg.fence ? { fence: this.cfg.fence } : {}),
    });
    // Before a sync, missing accounts are what it creates; after one, a missing account is a blocker.
    findings.push(...(await this.accountPlan(syncedByUs && ctx.syncing !== true)).findings);
    for (const [side, ep, cmd] of [
      ['source', this.cfg.source, dumpCommand(this.sourceFlavor)],
      ['target', this.cfg.target, loadCommand(this.targetFlavor)],
    ] as const) {
      // A client that cannot run here is reported when the copy starts; this check only concerns its TLS options.
      const kind = await clientKind(cmd).catch(() => undefined);
      const warning = kind && plaintextFallbackFinding(ep, kind, cmd, side);
      if (warning) findings.push(warning);
    }
    if (this.cfg.method === 'replication' && !syncedByUs) {
      const link = plaintextLinkFinding(this.sourceFlavor, { tls: this.cfg.source.tls, tlsNegotiated: await this.sourceTlsNegotiated() }, this.cfg.replicationAccount !== undefined);
      if (link) findings.push(link);
    }
    return findings;
  }

  /** Whether the tool's own session to the source runs over TLS (with PREFERRED: whether the source offers it). */
  private async sourceTlsNegotiated(): Promise<boolean> {
    const rows = await this.src<RowDataPacket>(`SHOW SESSION STATUS LIKE 'Ssl_cipher'`, [], 'reading the session TLS cipher');
    return String(rows[0]?.['Value'] ?? '') !== '';
  }

  private accountPlan(synced: boolean) {
    return planAccounts({ q: this.src, flavor: this.sourceFlavor }, { q: this.dst, flavor: this.targetFlavor }, this.cfg.database, {
      mode: this.cfg.accounts ?? 'copy',
      named: this.cfg.namedAccounts ?? [],
      synced,
    });
  }

  /**
   * Creates the database's accounts (and MariaDB roles) the target lacks, with the source's authentication and
   * their grants on the database; after the load, because table and routine grants need their objects.
   */
  private async copyAccounts(progress: SyncProgress): Promise<number> {
    if ((this.cfg.accounts ?? 'copy') !== 'copy') return 0;
    const plan = await this.accountPlan(false);
    const blockers = plan.findings.filter((f) => f.severity === 'blocker');
    if (blockers.length > 0) throw new OperationError(`accounts: ${blockers.map((b) => b.message).join('; ')}`, blockers[0]!.fix);
    const created = await applyAccounts(this.dst, plan);
    if (plan.statements.length > 0)
      progress({ phase: 'roles', message: `${created} account(s)/role(s) created on the target${plan.created.length ? ` (${plan.created.join(', ')})` : ''}, grants on ${this.cfg.database} given` });
    return created;
  }

  private async tableSizes(q: Query): Promise<Map<string, number>> {
    const rows = await q<RowDataPacket & { t: string; b: string | null }>(
      `SELECT TABLE_NAME AS t, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) AS b FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'`,
      [this.cfg.database],
      'reading table sizes',
    );
    return new Map(rows.map((r) => [r.t, Number(r.b ?? 0)]));
  }

  /**
   * Reports the load as it lands on the target: tables created so far (the dump goes table by table, so the
   * newest one is the one loading) and bytes against the source's size, with an ETA from the rate so far.
   */
  private watchLoad(progress: SyncProgress, totals: Map<string, number>): { stop(): Promise<void> } {
    const bytesTotal = [...totals.values()].reduce((a, b) => a + b, 0);
    const started = Date.now();
    let stopped = false;
    let seen = new Set<string>();
    const loop = (async () => {
      while (!stopped) {
        await sleep(this.cfg.progressEveryMs ?? 1000);
        if (stopped) break;
        const now = await this.tableSizes(this.dst).catch(() => undefined);
        if (!now) continue;
        const fresh = [...now.keys()].filter((t) => !seen.has(t));
        seen = new Set(now.keys());
        const bytesDone = Math.min(
          bytesTotal,
          [...now.values()].reduce((a, b) => a + b, 0),
        );
        const elapsed = Date.now() - started;
        const etaMs = bytesDone > 0 ? Math.round((elapsed * (bytesTotal - bytesDone)) / bytesDone) : undefined;
        const table = fresh.at(-1);
        progress({
          phase: 'copy',
          message: `loading ${table ?? 'data'}: ${now.size}/${totals.size} tables`,
          ...(table ? { table } : {}),
          tablesDone: Math.max(0, now.size - 1),
          tablesTotal: totals.size,
          bytesDone,
          bytesTotal,
          ...(etaMs !== undefined ? { etaMs } : {}),
        });
      }
    })();
    return {
      async stop() {
        stopped = true;
        await loop;
      },
    };
  }

  async sync(progress: SyncProgress): Promise<SyncSummary> {
    const started = Date.now();
    const totals = await this.tableSizes(this.src);
    const bytes = [...totals.values()].reduce((a, b) => a + b, 0);
    if (this.cfg.method === 'dump') {
      // The rows move inside the fence window (catchUp); loading the schema now finds what the target would
      // refuse (definers, engines, versions) while the source is still writable.
      progress({ phase: 'schema', message: `creating ${totals.size} table(s) of ${this.cfg.database} on the target without rows (the rows are copied inside the fence window)`, tablesDone: 0, tablesTotal: totals.size });
      await dumpInto({ source: this.sourceFlavor, target: this.targetFlavor }, this.cfg.source, this.cfg.target, this.cfg.database, this.cfg.copyTimeoutMs ?? 6 * 3_600_000, 'schema');
      const rolesCreated = await this.copyAccounts(progress);
      progress({ phase: 'ready', message: `schema of ${totals.size} table(s) in place; ${formatBytes(bytes)} to copy in the window` });
      return { method: 'dump', tables: totals.size, bytes, rolesCreated, durationMs: Date.now() - started };
    }
    const existing = await this.ours();
    if (existing) {
      // Accounts added on the source since the earlier sync are created now.
      const rolesCreated = await this.copyAccounts(progress);
      progress({ phase: 'ready', message: `the target already replicates through ${this.cfg.name} (an earlier sync of this plan)` });
      return { method: 'replication', tables: totals.size, bytes, rolesCreated, durationMs: Date.now() - started };
    }
    const present = await this.tableSizes(this.dst);
    if (present.size > 0) throw new OperationError(`target database ${this.cfg.database} already holds ${present.size} table(s)`, `drop it on the target or point target.url at an empty server`);

    const parallel = await this.parallelCopyTables();
    if ('tables' in parallel) await this.copyInParallel(parallel.tables, progress);
    else {
      progress({
        phase: 'copy',
        message: `dumping ${totals.size} table(s) of ${this.cfg.database} with one stream (consistent snapshot with its GTID position): ${parallel.unsupported}`,
        tablesDone: 0,
        tablesTotal: totals.size,
        bytesDone: 0,
        bytesTotal: bytes,
      });
      const watch = this.watchLoad(progress, totals);
      try {
        await dumpInto({ source: this.sourceFlavor, target: this.targetFlavor }, this.cfg.source, this.cfg.target, this.cfg.database, this.cfg.copyTimeoutMs ?? 6 * 3_600_000);
      } finally {
        await watch.stop();
      }
      await this.dropDumpDefaultConnection();
    }
    const rolesCreated = await this.copyAccounts(progress);
    await this.startReplica();
    progress({ phase: 'replication', message: `replica connection ${this.cfg.name} on the target follows the source by GTID` });
    await this.waitReplicaRunning();
    progress({ phase: 'ready', message: `initial copy done: ${totals.size} table(s)` });
    return { method: 'replication', tables: totals.size, bytes, rolesCreated, durationMs: Date.now() - started };
  }

  /** The tables the parallel copy moves, or why the one-stream dump moves them instead. */
  private async parallelCopyTables(): Promise<{ tables: CopyTable[] } | { unsupported: string }> {
    if (this.sourceFlavor.kind !== 'mariadb' || this.targetFlavor.kind !== 'mariadb') return { unsupported: 'the parallel copy is for MariaDB to MariaDB' };
    const [li] = await this.dst<RowDataPacket & { v: unknown }>(`SELECT @@GLOBAL.local_infile AS v`, [], 'reading local_infile on the target');
    if (!isOn(li?.v)) return { unsupported: 'the target has local_infile = OFF (the parallel copy loads with LOAD DATA LOCAL INFILE)' };
    return readCopyTables(this.src, this.cfg.database);
  }

  /**
   * The parallel copy (mysql-snapshot-copy.ts): the schema without triggers, the rows of every table at one GTID
   * position, the triggers, then the target's gtid_slave_pos set to that position for the replica to start from.
   */
  private async copyInParallel(tables: CopyTable[], progress: SyncProgress): Promise<void> {
    const timeoutMs = this.cfg.copyTimeoutMs ?? 6 * 3_600_000;
    const f = { source: this.sourceFlavor, target: this.targetFlavor };
    progress({ phase: 'schema', message: `creating ${tables.length} table(s), views, routines and events of ${this.cfg.database} on the target`, tablesDone: 0, tablesTotal: tables.length });
    await dumpInto(f, this.cfg.source, this.cfg.target, this.cfg.database, timeoutMs, 'tables');
    const copied = await copyAtOnePosition(
      {
        source: this.cfg.source,
        target: this.cfg.target,
        database: this.cfg.database,
        jobs: this.cfg.copyJobs ?? mysqlCopyJobs(),
        splitBytes: this.cfg.copySplitBytes ?? MYSQL_SPLIT_BYTES,
        lockTimeoutMs: this.cfg.lockTimeoutMs,
        secrets: this.secrets,
      },
      tables,
      this.src,
      this.dst,
      progress,
    );
    const [trg] = await this.src<RowDataPacket & { n: string }>(`SELECT CAST(COUNT(*) AS CHAR) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?`, [this.cfg.database], 'counting triggers');
    const triggers = Number(trg?.n ?? 0);
    progress({ phase: 'schema', message: `${copied.rows} row(s) copied in ${copied.units} stream(s)${triggers > 0 ? `; creating ${triggers} trigger(s) of ${this.cfg.database} on the target` : ''}` });
    if (triggers > 0) await dumpInto(f, this.cfg.source, this.cfg.target, this.cfg.database, timeoutMs, 'triggers');
    await this.dst(`SET GLOBAL gtid_slave_pos = ?`, [copied.gtid], `setting the target's gtid_slave_pos to the copy's position ${copied.gtid}`);
  }

  /**
   * mariadb-dump --master-data writes `CHANGE MASTER TO MASTER_USE_GTID=slave_pos` for the default connection;
   * loading it leaves an empty default connection behind (preflight refused a target that had a real one).
   */
  private async dropDumpDefaultConnection(): Promise<void> {
    if (this.targetFlavor.kind !== 'mariadb') return;
    const stray = (await this.replicas()).find((r) => r.name === '' && r.sourceHost === '');
    if (stray) await this.dst(`RESET SLAVE '' ALL`, [], 'removing the empty default replica connection the dump created');
  }

  private get replicationUser(): string {
    return replicationAccountName(this.cfg.name);
  }

  /** The plan's replication account, or a fresh one with a random password (created outside the binary log). */
  private async replicationLogin(): Promise<{ user: string; password?: string }> {
    const own = this.cfg.replicationAccount;
    if (own) return own;
    const password = randomReplicationPassword();
    this.secrets.push(password);
    await withSessionLog(this.src, 'sql_log_bin', 0, async () => {
      for (const st of createReplicationUserSql(this.sourceFlavor, this.replicationUser, password)) await this.src(st.sql, st.params, 'creating the replication account');
    });
    return { user: this.replicationUser, password };
  }

  private async startReplica(): Promise<void> {
    const ep = this.cfg.source;
    const login = await this.replicationLogin();
    const change = changeSourceSql(this.targetFlavor, this.cfg.name, { host: ep.host, port: ep.port, ...login, tls: ep.tls, tlsNegotiated: await this.sourceTlsNegotiated() });
    await withoutGeneralLog(this.dst, async () => {
      await this.dst(change.sql, change.params, `configuring replica connection ${this.cfg.name}`);
    });
    const filter = replicaFilterSql(this.targetFlavor, this.cfg.name, this.cfg.database);
    if (filter) await this.dst(filter.sql, filter.params, `limiting replica connection ${this.cfg.name} to ${this.cfg.database}`);
    await this.dst(startReplicaSql(this.targetFlavor, this.cfg.name), [], `starting replica connection ${this.cfg.name}`);
  }

  private async waitReplicaRunning(): Promise<void> {
    const deadline = Date.now() + REPLICA_START_MS;
    for (;;) {
      const r = await this.ours();
      if (r?.ioRunning && r.sqlRunning) return;
      if (Date.now() > deadline || (r && r.lastError && (!r.ioRunning || !r.sqlRunning))) {
        throw new OperationError(
          `replica connection ${this.cfg.name} did not start: ${r?.lastError || `IO thread ${r?.ioRunning ? 'running' : 'stopped'}, SQL thread ${r?.sqlRunning ? 'running' : 'stopped'}`}`,
          `check that the target can reach ${this.cfg.source.host}:${this.cfg.source.port} as ${this.cfg.source.user} (REPLICATION SLAVE); \`cutover rollback --cleanup\` removes the copy`,
        );
      }
      await sleep(100);
    }
  }

  /**
   * method dump holds nothing: the window's copy drops and recreates every table, so nothing written to the
   * target before it survives, and a server-wide read_only would also stop the databases (tenants) already
   * moved to this target.
   */
  async holdTarget(): Promise<void> {
    if (this.cfg.method === 'dump') return;
    if ((await resolveProfile(this.dst, this.targetFlavor, this.cfg.privileges)) === 'managed') return this.lockAppAccountsOnTarget(true);
    // The replica's applier is exempt from read_only; application sessions get error 1290.
    await this.dst(`SET GLOBAL read_only = ON`, [], 'making the target read-only for applications');
  }

  async openTarget(): Promise<void> {
    if (this.cfg.method === 'dump') return;
    if ((await resolveProfile(this.dst, this.targetFlavor, this.cfg.privileges)) === 'managed') return this.lockAppAccountsOnTarget(false);
    await this.dst(`SET GLOBAL read_only = OFF`, [], 'opening the target for writes');
  }

  /**
   * The managed profile's target hold (its admin may not set read_only): the plan's application accounts
   * (readOnly.roles) cannot log in to the target from the end of sync until the switch unlocks them. The
   * replica's applier is not an account login, so it keeps applying.
   */
  private async lockAppAccountsOnTarget(lock: boolean): Promise<void> {
    for (const spec of this.cfg.namedAccounts ?? []) {
      const { user, host } = parseAccountSpec(spec);
      const rows = await this.dst<RowDataPacket & { user: string; host: string }>(
        `SELECT User AS user, Host AS host FROM mysql.user WHERE User = ?${host !== undefined ? ' AND Host = ?' : ''}`,
        host !== undefined ? [user, host] : [user],
        'looking up the application accounts on the target',
      );
      for (const a of rows) await this.dst(accountLockSql(a, lock), [], `${lock ? 'locking' : 'unlocking'} account ${accountLabel(a)} on the target`);
    }
  }

  /**
   * Unit: bytes of the source's binary log not yet executed by the target's applier (source position minus the
   * applier's executed position, across files). null before sync (no replica connection).
   */
  async lagBytes(): Promise<number | null> {
    let r = await this.ours();
    if (!r) return null;
    // Right after START SLAVE the applier has no position until its IO thread has connected: give it a moment.
    for (const deadline = Date.now() + REPLICA_START_WAIT_MS; !r.execFile && !r.lastError && Date.now() < deadline;) {
      await new Promise((res) => setTimeout(res, 50));
      r = (await this.ours()) ?? r;
    }
    if (r.lastError && (!r.ioRunning || !r.sqlRunning)) {
      throw new OperationError(
        `replication into the target stopped: ${r.lastError}`,
        `fix the cause on the target, then START SLAVE '${this.cfg.name}' (MySQL: START REPLICA FOR CHANNEL); or \`cutover rollback --cleanup\` and sync again`,
      );
    }
    if (!r.execFile) throw new OperationError(`replica connection ${this.cfg.name} has not applied anything from the source yet`, 'wait for it to connect; `cutover status` shows the replica state');
    const logs = await this.src<RowDataPacket & { Log_name: string; File_size: string }>(`SHOW BINARY LOGS`, [], 'listing binary logs');
    const cur = await this.src<RowDataPacket & { File: string; Position: string }>(this.sourceFlavor.binlogStatusSql, [], 'reading the binary log position');
    if (!cur[0]) return null;
    return binlogBytesBehind(
      logs.map((l) => ({ name: l.Log_name, size: Number(l.File_size) })),
      { file: cur[0].File, pos: Number(cur[0].Position) },
      { file: r.execFile, pos: r.execPos },
    );
  }

  /** MySQL shows no client-chosen session name, so `owner` is not visible to others; the holder is named by connection. */
  async lockSource(key: string): Promise<SourceLockResult> {
    return tryPlanLock(this.src, key);
  }

  async unlockSource(key: string): Promise<void> {
    await releasePlanLock(this.src, key);
  }

  async assertSourceLock(key: string): Promise<void> {
    if (!(await holdsPlanLock(this.src, key))) throw new OperationError('the source session no longer holds the plan lock (IS_USED_LOCK is not its CONNECTION_ID)');
  }

  async ownSourceSessions(): Promise<string[]> {
    return [String(this.srcConn.threadId)];
  }

  async catchUp(deadline: number): Promise<CatchUpProof> {
    const started = Date.now();
    const g = await this.src<RowDataPacket & { g: string | null }>(`SELECT @@GLOBAL.${this.sourceFlavor.gtidVariable} AS g`, [], 'reading the source GTID position');
    const fencePosition = normalizeGtidSet(g[0]?.g);
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new BudgetExceededError('no write-downtime budget left to wait for the target', 'raise limits.maxWriteBlocked or lower limits.maxLagBeforeFence');
    if (this.cfg.method === 'dump') return this.copyWhileFenced(fencePosition, remaining, started);
    const wait = gtidWaitSql(this.targetFlavor, fencePosition, remaining);
    const rows = await this.dst<RowDataPacket & { r: unknown }>(wait.sql, wait.params, 'waiting for the target to apply the source GTID set');
    const waitedMs = Date.now() - started;
    if (gtidWaitReached(rows[0]?.r)) return { method: 'gtid', fencePosition, proofPosition: fencePosition, waitedMs };
    // A timeout leaves gtid_slave_pos alone (resetting it after a timeout lost data: mariadb-operator#277).
    const r = await this.ours();
    const state = r ? `IO thread ${r.ioRunning ? 'running' : 'stopped'}, SQL thread ${r.sqlRunning ? 'running' : 'stopped'}${r.lastError ? `, ${r.lastError}` : ''}` : 'no replica connection';
    if (rows[0]?.r === null || rows[0]?.r === undefined) throw new OperationError(`the target could not wait for GTID ${fencePosition} (${state})`, 'check replication on the target; the source was restored');
    throw new BudgetExceededError(
      `the target did not apply the source's writes up to GTID ${fencePosition} within the write-downtime budget (waited ${waitedMs}ms; replica: ${state})`,
      'check replication on the target, then raise limits.maxWriteBlocked or run again when lag is low',
    );
  }

  /**
   * method dump: the database is fenced, so a plain `--single-transaction` dump taken now holds every write
   * the source acknowledged; loaded over the schema-only pre-copy it replaces each table whole. Bounded by the
   * budget left: a database too big to copy within it fails here and the run unfences the source.
   */
  private async copyWhileFenced(fencePosition: string, remainingMs: number, started: number): Promise<CatchUpProof> {
    try {
      await dumpInto({ source: this.sourceFlavor, target: this.targetFlavor }, this.cfg.source, this.cfg.target, this.cfg.database, remainingMs, 'copy');
    } catch (e) {
      if (Date.now() - started >= remainingMs) {
        throw new BudgetExceededError(
          `copying ${this.cfg.database} while fenced did not finish within the write-downtime budget (${remainingMs}ms left at the fence)`,
          'raise the budget (waves.maxWriteBlockedPerTenant / limits.maxWriteBlocked) or move this database with method: replication',
          { cause: e },
        );
      }
      throw e;
    }
    return { method: 'copy', fencePosition, waitedMs: Date.now() - started };
  }

  async copySequences(): Promise<number> {
    const [s, t] = await Promise.all([autoIncrements(this.src, this.cfg.database), autoIncrements(this.dst, this.cfg.database)]);
    const fixes = autoIncrementFixes(s, t);
    for (const f of fixes) await this.dst(setAutoIncrementSql(this.cfg.database, f.table, f.value), [], `raising AUTO_INCREMENT of ${f.table}`);
    return fixes.length;
  }

  async verify(deadline: number): Promise<VerifyReport> {
    return verifyTables(this.src, this.dst, this.cfg.database, this.cfg.verify, deadline);
  }

  async movedTablesSize(): Promise<{ tables: number; bytes: number }> {
    const rows = await this.src<RowDataPacket & { n: string; b: string | null }>(
      `SELECT CAST(COUNT(*) AS CHAR) AS n, CAST(SUM(DATA_LENGTH + INDEX_LENGTH) AS CHAR) AS b FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'`,
      [this.cfg.database],
      'reading table sizes',
    );
    return { tables: Number(rows[0]?.n ?? 0), bytes: Number(rows[0]?.b ?? 0) };
  }

  async verifyOnline(hooks: OnlineVerifyHooks): Promise<'done' | null> {
    if (this.cfg.method !== 'replication') return null;
    const secrets = [this.cfg.source.password, this.cfg.target.password].filter((p): p is string => p !== undefined);
    const opened: MysqlConnection[] = [];
    const open = async (ep: DbEndpoint): Promise<Query> => {
      const { conn } = await connectMysql(ep, { lockTimeoutMs: this.cfg.lockTimeoutMs });
      opened.push(conn);
      const q = query(conn, ep, secrets);
      // A consistent snapshot means one only under REPEATABLE READ, whatever the server's default.
      await q('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      return q;
    };
    try {
      const [srcLock, srcSnap, dstSnap] = [await open(this.cfg.source), await open(this.cfg.source), await open(this.cfg.target)];
      await mysqlVerifyChunks(
        {
          database: this.cfg.database,
          src: this.src,
          dst: this.dst,
          srcLock,
          srcSnap,
          dstSnap,
          positionSql: `SELECT @@GLOBAL.${this.sourceFlavor.gtidVariable} AS g`,
          waitFor: async (position) => {
            const wait = gtidWaitSql(this.targetFlavor, normalizeGtidSet(position), VERIFY_WAIT_MS);
            const rows = await this.dst<RowDataPacket & { r: unknown }>(wait.sql, wait.params, 'waiting for the target to reach the verify position');
            return gtidWaitReached(rows[0]?.r);
          },
          snapshotMaxMs: VERIFY_SNAPSHOT_MS,
        },
        hooks,
      );
      return 'done';
    } finally {
      await Promise.all(opened.map((c) => c.end().catch(() => c.destroy())));
    }
  }

  /** Stops and forgets the replica connection; returns whether there was one. */
  private async dropReplica(): Promise<boolean> {
    if (!(await this.ours())) return false;
    await this.dst(stopReplicaSql(this.targetFlavor, this.cfg.name), [], `stopping replica connection ${this.cfg.name}`);
    await this.dst(resetReplicaAllSql(this.targetFlavor, this.cfg.name), [], `removing replica connection ${this.cfg.name}`);
    return true;
  }

  /**
   * One more wait for the source's GTID position before replication stops: whatever a bypassing session
   * (READ ONLY ADMIN) committed since the catch-up reaches the target instead of staying on the old source.
   */
  async detachTarget(): Promise<void> {
    const r = await this.ours();
    if (r?.ioRunning && r.sqlRunning) await this.catchUp(Date.now() + FINAL_CATCH_UP_MS);
    await this.dropReplica();
  }

  async cleanup(): Promise<string[]> {
    const dropped = (await this.dropReplica()) ? [`replica connection ${this.cfg.name} (target)`] : [];
    if (!this.cfg.replicationAccount && (await replicationUserExists(this.src, this.replicationUser))) {
      await withSessionLog(this.src, 'sql_log_bin', 0, async () => {
        await this.src(dropReplicationUserSql(this.replicationUser), [], 'dropping the replication account');
      });
      dropped.push(`replication account ${this.replicationUser} (source)`);
    }
    return dropped;
  }

  async leftovers(): Promise<Leftover[]> {
    const f = this.targetFlavor;
    const replica: Leftover[] = (await this.ours())
      ? [{ where: 'target', kind: 'replica connection', name: this.cfg.name, drop: `${stopReplicaSql(f, this.cfg.name)}; ${resetReplicaAllSql(f, this.cfg.name)}`, retainsWal: false }]
      : [];
    return this.cfg.replicationAccount ? replica : [...replica, ...(await replicationUserLeftover(this.src, this.replicationUser))];
  }

  async close(): Promise<void> {
    await Promise.all([this.srcConn, this.dstConn].map((c) => c.end().catch(() => c.destroy())));
  }
}
