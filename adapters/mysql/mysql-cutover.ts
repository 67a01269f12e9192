import type { RowDataPacket } from 'mysql2/promise';
import { BudgetExceededError, OperationError } from '../../src/errors.js';
import type { CatchUpProof, CutoverAdapter, Finding, Leftover, OnlineVerifyHooks, ReverseState, SourceLockResult, SwitchCompare, SyncProgress, SyncSummary, VerifyReport } from '../../src/engine/cutover-adapter.js';
import type { CopyMethod } from '../../src/plan/types.js';
import type { DbEndpoint, Engine } from '../../src/util/db-url.js';
import { randomReplicationPassword, replicationAccountName } from '../../src/util/replication-account.js';
import { sleep } from '../../src/util/sleep.js';
import { openAll } from '../../src/util/open-all.js';
import { formatBytes } from '../../src/util/units.js';
import { applyAccounts, planAccounts, type AccountsMode } from './mysql-account-copy.js';
import { databasePrivileges, globalPrivileges, hasAny, mysqlPreflight, type BypassFenceOptions } from './mysql-checks.js';
import { connectMysql, mappedQuery, type MysqlConnection } from './mysql-connection.js';
import { clientKind, dumpCommand, dumpInto, loadCommand, plaintextFallbackFinding, type DumpKind } from './mysql-dump.js';
import { flavorLabel, type MysqlFlavor } from './mysql-flavor.js';
import { serverIdentity } from './mysql-identity.js';
import { holdsPlanLock, releasePlanLock, tryPlanLock } from './mysql-plan-lock.js';
import { binlogCoordinates, normalizeGtidSet } from './mysql-position.js';
import {
  allReplicasStatusSql,
  binlogBytesBehind,
  changeSourceSql,
  gtidWaitReached,
  gtidWaitSql,
  MYSQL_MISSING_GTIDS_SQL,
  parallelCopyRefusal,
  positionWaitReached,
  positionWaitSql,
  plaintextLinkFinding,
  readReplicaStatus,
  replicaFilterSql,
  replicaPasswordSql,
  resetReplicaAllSql,
  startPositionSql,
  startReplicaSql,
  startReplicaUntilSql,
  stopReplicaSql,
  untilReached,
  waveStreamRefusal,
  type ReplicaSource,
  type ReplicaStatus,
} from './mysql-replication.js';
import { replicaLinkFor, type CopyStart, type ReplicaLinkSql } from './mysql-replica-procedures.js';
import { reverseRefusal, streamVerdict, switchPositionSql } from './mysql-reverse.js';
import { createReplicationUserSql, dropReplicationUserSql, withSessionLog, withoutStatementLog, replicationUserExists, replicationUserLeftover } from './mysql-replication-user.js';
import type { Query } from './mysql-sessions.js';
import { resolveProfile, type PrivilegesSetting } from './mysql-privilege-profile.js';
import { copyAtOnePosition, copyUnits, readCopyTables, recordCopyUnits, restoreDeferredIndexes, type CopyTable, type CopyUnit, type SnapshotCopyOptions } from './mysql-snapshot-copy.js';
import { dropRecord, forgetTables, nextStage, readRecord, RECORD_DATABASE, resumeState, startRecord, type RecordedUnit } from './mysql-copy-record.js';
import { COPY_SPLIT_BYTES, defaultCopyJobs } from '../../src/util/copy-split.js';
import { accountLabel, accountLockSql, isOn, parseAccountSpec, quoteIdent } from './mysql-sql.js';
import { autoIncrementFixes, autoIncrements, setAutoIncrementSql, verifyTables } from './mysql-verify.js';
import { mysqlVerifyChunks, REPEATABLE_READ_SQL, SWITCH_SNAPSHOT_SQL } from './mysql-verify-chunks.js';

export interface MysqlCutoverConfig {
  source: DbEndpoint;
  target: DbEndpoint;
  /** The database that moves (same name on both sides). */
  database: string;
  method: CopyMethod;
  /** The target's replica connection (MariaDB connection name / MySQL channel). */
  name: string;
  /**
   * Names the reverse path's replica connection on the source and its account on the target (plan `reverse`);
   * absent: none is made.
   */
  reverseName?: string;
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
  /** Workers of the parallel initial copy (MariaDB to MariaDB, MySQL to MySQL 8.0+; default: defaultCopyJobs()). */
  copyJobs?: number;
  /** Tables above this size are copied as several primary-key ranges (default COPY_SPLIT_BYTES). */
  copySplitBytes?: number;
  /**
   * A tenant of a wave by replication: `name` is the wave's one replica connection (MySQL: channel), which carries
   * every joined tenant database (its database filter) and the wave's replication account.
   */
  sharedStream?: boolean;
}

/** How long a tenant waits for another one's change to the wave's stream (the target's named lock). */
const STREAM_LOCK_S = 600;

/** How long `sync` waits for the new replica connection to report both threads running. */
const REPLICA_START_MS = 15_000;

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
    this.src = mappedQuery(srcConn, cfg.source, this.secrets);
    this.dst = mappedQuery(dstConn, cfg.target, this.secrets);
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

  private async replicas(q: Query = this.dst, f: MysqlFlavor = this.targetFlavor): Promise<ReplicaStatus[]> {
    const rows = await q<RowDataPacket>(allReplicasStatusSql(f), [], 'reading replica status');
    return rows.map((r) => readReplicaStatus(r));
  }

  private linkFound?: Promise<ReplicaLinkSql>;

  /** How the target's replica link is made: statements on the plan's named connection, or the provider's procedures (RDS). */
  private link(): Promise<ReplicaLinkSql> {
    return (this.linkFound ??= replicaLinkFor(this.dst, this.targetFlavor, this.cfg.name));
  }

  /** This plan's link: its name, and on the provider's one unnamed connection also this plan's replication account. */
  private isOurs(r: ReplicaStatus, link: ReplicaLinkSql): boolean {
    return r.name === link.name && (link.kind === 'statements' || r.sourceUser === (this.cfg.replicationAccount?.user ?? this.replicationUser));
  }

  private async ours(): Promise<ReplicaStatus | undefined> {
    const link = await this.link();
    return (await this.replicas()).find((r) => this.isOurs(r, link));
  }

  async preflight(ctx: { synced?: boolean; syncing?: boolean } = {}): Promise<Finding[]> {
    const replicas = await this.replicas();
    const link = await this.link();
    // method dump has no replica connection to recognise its copy by: the journal's finished sync says it.
    const syncedByUs = this.cfg.method === 'dump' ? ctx.synced === true : this.cfg.sharedStream ? this.inStream(replicas.find((r) => this.isOurs(r, link))) : replicas.some((r) => this.isOurs(r, link));
    const findings = await mysqlPreflight({
      source: { q: this.src, flavor: this.sourceFlavor },
      target: { q: this.dst, flavor: this.targetFlavor },
      database: this.cfg.database,
      method: this.cfg.method,
      sourceHost: this.cfg.source.host,
      syncedByUs,
      resumesCopy: this.cfg.method === 'replication' && !this.cfg.sharedStream && link.kind === 'statements' && (await readRecord(this.dst, this.cfg.name)).length > 0,
      otherReplicas: replicas.filter((r) => !this.isOurs(r, link)).map((r) => r.name),
      replicaLink: link.kind,
      ...(this.cfg.fence ? { fence: this.cfg.fence } : {}),
    });
    if (this.cfg.sharedStream && !syncedByUs) findings.push(...(await this.streamJoinFindings()));
    if (this.cfg.method === 'replication' && !syncedByUs && !this.cfg.sharedStream && link.kind === 'statements') findings.push(await this.initialCopyFinding(link));
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
  private async sourceTlsNegotiated(q: Query = this.src): Promise<boolean> {
    const rows = await q<RowDataPacket>(`SHOW SESSION STATUS LIKE 'Ssl_cipher'`, [], 'reading the session TLS cipher');
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
      await this.dumpDatabase('schema');
      const rolesCreated = await this.copyAccounts(progress);
      progress({ phase: 'ready', message: `schema of ${totals.size} table(s) in place; ${formatBytes(bytes)} to copy in the window` });
      return { method: 'dump', tables: totals.size, bytes, rolesCreated, durationMs: Date.now() - started };
    }
    if (this.cfg.sharedStream) return this.joinStream(progress, totals, started);
    const existing = await this.ours();
    const link = await this.link();
    // A record left by a copy cut short (the replica's staged start too): the copy resumes.
    const recorded = link.kind === 'statements' ? await readRecord(this.dst, this.cfg.name) : [];
    if (existing && recorded.length === 0) {
      // Accounts added on the source since the earlier sync are created now.
      const rolesCreated = await this.copyAccounts(progress);
      progress({ phase: 'ready', message: `the target already replicates through ${link.label} (an earlier sync of this plan)` });
      return { method: 'replication', tables: totals.size, bytes, rolesCreated, durationMs: Date.now() - started };
    }
    const present = await this.tableSizes(this.dst);
    if (present.size > 0 && recorded.length === 0) throw new OperationError(`target database ${this.cfg.database} already holds ${present.size} table(s)`, `drop it on the target or point target.url at an empty server`);

    const parallel = await this.parallelCopyTables(link);
    let start: CopyStart | undefined;
    // MariaDB's copy resumes table by table (its staged start is MariaDB's UNTIL master_gtid_pos); a MySQL copy cut
    // short is not resumed: its tables stay, and the next sync refuses them until the target database is emptied.
    if ('tables' in parallel && link.kind === 'statements' && this.targetFlavor.kind === 'mariadb') {
      const positions = await this.copyResumable(parallel.tables, progress, recorded, present);
      const rolesCreated = await this.copyAccounts(progress);
      await this.startInStages(link, positions, progress);
      await this.waitReplicaRunning();
      await dropRecord(this.dst, this.cfg.name);
      progress({ phase: 'ready', message: `initial copy done: ${totals.size} table(s)` });
      return { method: 'replication', tables: totals.size, bytes, rolesCreated, durationMs: Date.now() - started };
    }
    if ('tables' in parallel) start = await this.copyInParallel(parallel.tables, progress, link);
    else if (link.kind === 'rds-procedures') {
      throw new OperationError(
        `the provider\u2019s replication procedures need the parallel copy: ${parallel.unsupported}`,
        parallel.localInfile ? 'set local_infile = 1 in the target\u2019s parameter group, or use method: dump' : 'use method: dump',
      );
    } else {
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
        await this.dumpDatabase('snapshot');
      } finally {
        await watch.stop();
      }
      await this.dropDumpDefaultConnection();
    }
    const rolesCreated = await this.copyAccounts(progress);
    await this.startReplica(link, start);
    progress({ phase: 'replication', message: `${link.label} on the target follows the source ${link.startsBy === 'binlog' ? `from its binary log at ${start?.file}:${start?.pos}` : 'by GTID'}` });
    await this.waitReplicaRunning();
    progress({ phase: 'ready', message: `initial copy done: ${totals.size} table(s)` });
    return { method: 'replication', tables: totals.size, bytes, rolesCreated, durationMs: Date.now() - started };
  }

  /** What a tenant's join of the wave's stream needs, said at `check` rather than halfway through its sync. */
  private async streamJoinFindings(): Promise<Finding[]> {
    const plan = await this.streamJoinPlan();
    if ('tables' in plan) return [];
    return [
      {
        severity: 'blocker',
        check: 'method',
        object: plan.object,
        message: plan.message,
        why: "the wave's tenants share one replica connection on the target, each joining it at its own copy's GTID position",
        fix: plan.fix,
      },
    ];
  }

  /**
   * The tables this tenant's parallel copy moves into the wave's stream, or what stops it from joining: servers of
   * two kinds or MySQL < 8.0, the provider's procedures (one unnamed connection, no filter of the tool's own), or a
   * database the parallel copy cannot move (the join needs its one GTID position).
   */
  private async streamJoinPlan(): Promise<{ tables: CopyTable[] } | { message: string; object: string; fix: string }> {
    const dump = 'use method: dump for this wave';
    const refusal = waveStreamRefusal(this.sourceFlavor, this.targetFlavor);
    if (refusal) return { message: refusal, object: 'servers', fix: dump };
    if ((await this.link()).kind !== 'statements')
      return { message: "the target replicates through the provider's procedures, whose one unnamed connection cannot carry a wave's tenants", object: 'target replication', fix: dump };
    const parallel = await this.parallelCopyTables();
    if ('tables' in parallel) return parallel;
    const message = `a tenant joins the wave's stream at its copy's GTID position, which needs the parallel copy: ${parallel.unsupported}`;
    return parallel.localInfile ? { message, object: 'target local_infile', fix: 'set local_infile = 1 on the target, or use method: dump' } : { message, object: `database ${this.cfg.database}`, fix: dump };
  }

  /** The databases the wave's stream applies (its replicate_do_db). */
  private streamFilter(r: ReplicaStatus | undefined): string[] {
    return (r?.doDb ?? '')
      .split(',')
      .map((d) => d.trim())
      .filter(Boolean);
  }

  /** Whether this tenant's database has joined the wave's stream. */
  private inStream(r: ReplicaStatus | undefined): boolean {
    return this.streamFilter(r).includes(this.cfg.database);
  }

  /**
   * Every change to the wave's stream (create, join, leave) under one named lock on the target: tenants copying
   * or leaving side by side, in this runner or another, never interleave a STOP with another one's START.
   */
  private async withStreamLock<T>(fn: () => Promise<T>): Promise<T> {
    const key = `cutover-stream-${this.cfg.name}`;
    const [got] = await this.dst<RowDataPacket & { l: number | null }>(`SELECT GET_LOCK(?, ?) AS l`, [key, STREAM_LOCK_S], 'taking the lock of the wave\u2019s stream');
    if (Number(got?.l) !== 1) throw new OperationError(`another tenant held the wave's stream ${this.cfg.name} for ${STREAM_LOCK_S}s`, 'run the wave again once that tenant has finished');
    try {
      return await fn();
    } finally {
      await this.dst(`SELECT RELEASE_LOCK(?)`, [key], 'releasing the lock of the wave\u2019s stream').catch(() => {});
    }
  }

  /** With the stream's applier stopped (both engines want it so). */
  private async setStreamFilter(databases: readonly string[]): Promise<void> {
    if (databases.some((d) => d.includes(',')))
      throw new OperationError(`a tenant database name contains a comma (${databases.join(' ')})`, 'replication filters are comma-separated lists: rename the database or use method: dump');
    const filter = replicaFilterSql(this.targetFlavor, this.cfg.name, databases);
    if (!filter) throw new OperationError(`${flavorLabel(this.targetFlavor)} cannot limit a replication channel to some databases`, 'use method: dump for this wave');
    await this.dst(filter.sql, filter.params, `limiting the wave's replica connection to ${databases.length} tenant database(s)`);
  }

  /**
   * A tenant of a wave by replication joins the wave's one stream: with the stream stopped (at P), its database
   * is copied at one GTID position G ≥ P; the stream then runs to exactly G (startReplicaUntilSql: MariaDB
   * `UNTIL master_gtid_pos`, MySQL `UNTIL SQL_AFTER_GTIDS`) without this database, so its events up to G — in
   * the copy already — are skipped, and from G on with it. The first tenant creates the stream from its copy's
   * position (MariaDB gtid_slave_pos; MySQL: G's transactions added to the target's gtid_purged). MySQL records
   * the transactions a filter skips as executed, so a tenant's catch-up waits on the source's GTID set as usual.
   */
  private async joinStream(progress: SyncProgress, totals: Map<string, number>, started: number): Promise<SyncSummary> {
    const bytes = [...totals.values()].reduce((a, b) => a + b, 0);
    const db = this.cfg.database;
    const name = this.cfg.name;
    const f = this.targetFlavor;
    if (this.inStream(await this.ours())) {
      const rolesCreated = await this.copyAccounts(progress);
      progress({ phase: 'ready', message: `${db} already follows the source through the wave's replica connection ${name}` });
      return { method: 'replication', tables: totals.size, bytes, rolesCreated, durationMs: Date.now() - started };
    }
    const parallel = await this.streamJoinPlan();
    if (!('tables' in parallel)) throw new OperationError(parallel.message, parallel.fix);
    const present = await this.tableSizes(this.dst);
    if (present.size > 0) throw new OperationError(`target database ${db} already holds ${present.size} table(s)`, `drop it on the target (a copy cut short) and run the wave again`);
    const link = await this.link();
    let rolesCreated = 0;
    await this.withStreamLock(async () => {
      const before = await this.ours();
      if (before && (before.ioRunning || before.sqlRunning)) await this.dst(stopReplicaSql(f, name), [], `stopping the wave's replica connection ${name} for ${db} to join`);
      const start = await this.copyInParallel(parallel.tables, progress, link, !before);
      const gtid = start.gtid;
      rolesCreated = await this.copyAccounts(progress);
      if (!before) {
        await this.startReplica(link, start);
        progress({ phase: 'replication', message: `the wave's replica connection ${name} follows the source by GTID, ${db} first` });
        return;
      }
      await this.dst(startReplicaUntilSql(f, name), [gtid], `running the wave's stream to ${db}'s copy position ${gtid}`);
      await this.waitStopped(name, gtid);
      await this.setStreamFilter([...this.streamFilter(before), db]);
      await this.dst(startReplicaSql(f, name), [], `starting the wave's replica connection ${name} with ${db}`);
      progress({ phase: 'replication', message: `${db} joined the wave's replica connection ${name} at GTID ${gtid}` });
    });
    await this.waitReplicaRunning();
    progress({ phase: 'ready', message: `initial copy done: ${totals.size} table(s)` });
    return { method: 'replication', tables: totals.size, bytes, rolesCreated, durationMs: Date.now() - started };
  }

  /** Until the connection stopped at its UNTIL position; an error (or a stop elsewhere) fails with the replica's own words. */
  private async waitStopped(name: string, gtid: string): Promise<void> {
    const deadline = Date.now() + this.copyTimeoutMs;
    const again = this.cfg.sharedStream ? 'run the wave again' : 'run sync again (it goes on from where the connection stopped)';
    for (;;) {
      const r = await this.ours();
      if (!r) throw new OperationError(`replica connection ${name} disappeared on its way to GTID ${gtid}`, again);
      if (r.lastError) throw new OperationError(`replica connection ${name} stopped on an error before GTID ${gtid}: ${r.lastError}`, `fix the cause on the target, then ${again}`);
      if (untilReached(this.targetFlavor, r)) return;
      if (Date.now() > deadline) throw new OperationError(`replica connection ${name} did not reach GTID ${gtid}`, `check replication on the target, then ${again}`);
      await sleep(50);
    }
  }

  /**
   * After the switch (or at rollback --cleanup) the tenant leaves the wave's stream: its database comes off the
   * filter with only the SQL thread stopped for a moment (the IO thread keeps reading for the other tenants);
   * the last one to leave drops the stream and the wave's replication account.
   */
  private async leaveStream(): Promise<string[]> {
    const db = this.cfg.database;
    const name = this.cfg.name;
    const f = this.targetFlavor;
    return this.withStreamLock(async () => {
      const r = await this.ours();
      if (!r) return this.dropStreamAccount();
      if (!this.inStream(r)) return [];
      const rest = this.streamFilter(r).filter((d) => d !== db);
      if (rest.length === 0) {
        await this.dropReplica();
        return [`the wave's replica connection ${name} (target)`, ...(await this.dropStreamAccount())];
      }
      const running = r.sqlRunning;
      if (running) await this.dst(stopReplicaSql(f, name, 'SQL_THREAD'), [], `pausing the wave's applier for ${db} to leave`);
      await this.setStreamFilter(rest);
      if (running) await this.dst(startReplicaSql(f, name, 'SQL_THREAD'), [], `resuming the wave's applier without ${db}`);
      return [`${db} in the wave's replica connection ${name} (target)`];
    });
  }

  private async dropStreamAccount(): Promise<string[]> {
    if (this.cfg.replicationAccount || !(await replicationUserExists(this.src, this.replicationUser))) return [];
    await withSessionLog(this.src, 'sql_log_bin', 0, async () => {
      await this.src(dropReplicationUserSql(this.replicationUser), [], 'dropping the wave\u2019s replication account');
    });
    return [`replication account ${this.replicationUser} (source)`];
  }

  private async streamLeftovers(): Promise<Leftover[]> {
    const r = await this.ours();
    if (!r) return this.cfg.replicationAccount ? [] : replicationUserLeftover(this.src, this.replicationUser);
    if (!this.inStream(r)) return [];
    const rest = this.streamFilter(r).filter((d) => d !== this.cfg.database);
    const f = this.targetFlavor;
    const filter = rest.length ? replicaFilterSql(f, this.cfg.name, rest) : null;
    const drop = filter
      ? `${stopReplicaSql(f, this.cfg.name, 'SQL_THREAD')}; ${filter.params.length ? filter.sql.replace('?', `'${rest.join(',')}'`) : filter.sql}; ${startReplicaSql(f, this.cfg.name, 'SQL_THREAD')}`
      : `${stopReplicaSql(f, this.cfg.name)}; ${resetReplicaAllSql(f, this.cfg.name)}`;
    return [{ where: 'target', kind: 'replica connection', name: `${this.cfg.name} (${this.cfg.database})`, drop, retainsWal: false }];
  }

  /** Which initial copy `sync` will take, said at `check` (the one-stream dump is much slower on a big database). */
  private async initialCopyFinding(link: ReplicaLinkSql): Promise<Finding> {
    const parallel = await this.parallelCopyTables(link);
    if ('tables' in parallel)
      return {
        severity: 'info',
        check: 'initial copy',
        message: `sync copies ${parallel.tables.length} table(s) in parallel (${this.copyJobs} workers) at one GTID position`,
        why: 'the parallel copy loads every table at once, big ones in key ranges',
        fix: '—',
      };
    return {
      severity: 'info',
      check: 'initial copy',
      message: `sync copies with one dump stream: ${parallel.unsupported}`,
      why: 'one mysqldump/mariadb-dump stream loads one table after another: much slower on a big database than the parallel copy',
      fix: parallel.localInfile ? 'set local_infile = 1 on the target for the parallel copy' : 'nothing is needed (the dump copies the same rows); the reason says what the parallel copy would need',
    };
  }

  /** The tables the parallel copy moves, or why the one-stream dump moves them instead (parallelCopyRefusal). */
  private async parallelCopyTables(link?: ReplicaLinkSql): Promise<{ tables: CopyTable[] } | { unsupported: string; localInfile?: true }> {
    const refusal = parallelCopyRefusal(this.sourceFlavor, this.targetFlavor, link?.kind === 'rds-procedures' || !!this.cfg.sharedStream);
    if (refusal) return { unsupported: refusal };
    const [li] = await this.dst<RowDataPacket & { v: unknown }>(`SELECT @@GLOBAL.local_infile AS v`, [], 'reading local_infile on the target');
    if (!isOn(li?.v)) return { unsupported: 'the target has local_infile = OFF (the parallel copy loads with LOAD DATA LOCAL INFILE)', localInfile: true };
    // Said before anything is copied, not after the copy (the one-stream dump needs neither).
    if (!hasAny(await databasePrivileges(this.src, this.cfg.database), ['LOCK TABLES']))
      return { unsupported: `the source account cannot LOCK TABLES on ${this.cfg.database} (the parallel copy locks the tables for a moment to start its snapshots at one GTID position)` };
    if (this.targetFlavor.kind === 'mysql' && link?.kind !== 'rds-procedures' && !hasAny(await globalPrivileges(this.dst), ['SYSTEM_VARIABLES_ADMIN', 'SUPER']))
      return { unsupported: "the target account lacks SYSTEM_VARIABLES_ADMIN (the replica starts at the parallel copy's position through SET GLOBAL gtid_purged)" };
    return readCopyTables(this.src, this.cfg.database);
  }

  /**
   * The parallel copy (mysql-snapshot-copy.ts): the schema without triggers, the rows of every table at one GTID
   * position, the triggers, then the target's replica position set to it (startPositionSql) for the replica to start from.
   */
  private async copyInParallel(tables: CopyTable[], progress: SyncProgress, link: ReplicaLinkSql, setSlavePos = true): Promise<CopyStart> {
    await this.createTables(tables, progress);
    const copied = await copyAtOnePosition(this.copyOptions(link), await this.copyUnitsOf(tables), this.src, this.dst, progress);
    await restoreDeferredIndexes(this.cfg.database, copied.split, this.src, this.dst, progress);
    await this.copyTriggers(`${copied.rows} row(s) copied in ${copied.units} stream(s)`, progress);
    // The provider's procedure takes the position itself (its admin may not SET GLOBAL gtid_slave_pos).
    if (link.kind === 'statements' && setSlavePos) await this.setStartPosition(this.dst, this.targetFlavor, copied.position.gtid, `setting the target's replica position to the copy's position ${copied.position.gtid}`);
    return copied.position;
  }

  private copyOptions(link?: ReplicaLinkSql): SnapshotCopyOptions {
    return {
      source: this.cfg.source,
      target: this.cfg.target,
      database: this.cfg.database,
      jobs: this.copyJobs,
      lockTimeoutMs: this.cfg.lockTimeoutMs,
      secrets: this.secrets,
      flavor: this.sourceFlavor,
      coordinates: link?.startsBy === 'binlog',
    };
  }

  /** Bound on the dump and load of `sync` (plan copy timeout; 6 h by default). */
  private get copyTimeoutMs(): number {
    return this.cfg.copyTimeoutMs ?? 6 * 3_600_000;
  }

  private get copyJobs(): number {
    return this.cfg.copyJobs ?? defaultCopyJobs();
  }

  private copyUnitsOf(tables: readonly CopyTable[]): Promise<CopyUnit[]> {
    return copyUnits(this.src, this.cfg.database, tables, this.cfg.copySplitBytes ?? COPY_SPLIT_BYTES, this.copyJobs);
  }

  /** The triggers, after the rows (present during the load, they would fire for every copied row); a reload replaces them. */
  private async copyTriggers(copied: string, progress: SyncProgress): Promise<void> {
    const [trg] = await this.src<RowDataPacket & { n: string }>(`SELECT CAST(COUNT(*) AS CHAR) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?`, [this.cfg.database], 'counting triggers');
    const triggers = Number(trg?.n ?? 0);
    progress({ phase: 'schema', message: `${copied}${triggers > 0 ? `; creating ${triggers} trigger(s) of ${this.cfg.database} on the target` : ''}` });
    if (triggers > 0) await this.dumpDatabase('triggers');
  }

  /** The tables (no rows, no triggers), views, routines and events of the database, created on the target. */
  private async createTables(tables: readonly CopyTable[], progress: SyncProgress): Promise<void> {
    progress({ phase: 'schema', message: `creating ${tables.length} table(s), views, routines and events of ${this.cfg.database} on the target`, tablesDone: 0, tablesTotal: tables.length });
    await this.dumpDatabase('tables');
  }

  /** `dump | load` of the moved database (mysql-dump.ts), bounded by the copy timeout unless told otherwise. */
  private dumpDatabase(kind: DumpKind, timeoutMs = this.copyTimeoutMs): Promise<void> {
    return dumpInto({ source: this.sourceFlavor, target: this.targetFlavor }, this.cfg.source, this.cfg.target, this.cfg.database, timeoutMs, kind);
  }

  /**
   * The parallel copy into the plan's own replica connection, recorded on the target (mysql-copy-record.ts) so that
   * a sync killed mid-copy goes on table by table: the tables complete at an earlier copy's position stay, every
   * other one is emptied and copied again at a new position. Returns each copy's position with its tables, oldest
   * first. Units are recorded before the schema is loaded: a kill at any later point leaves a record to resume from.
   */
  private async copyResumable(tables: CopyTable[], progress: SyncProgress, recorded: RecordedUnit[], present: ReadonlyMap<string, number>): Promise<Array<{ gtid: string; tables: string[] }>> {
    const plan = this.cfg.name;
    const db = this.cfg.database;
    let state = resumeState(recorded.filter((u) => tables.some((t) => t.name === u.table)));
    // Nothing to keep, or tables gone from the target since: a fresh copy, from the schema on.
    const fresh = state.complete.size === 0 || tables.some((t) => !present.has(t.name));
    if (fresh) state = resumeState([]);
    const todo = tables.filter((t) => !state.complete.has(t.name));
    const units = await this.copyUnitsOf(todo);
    if (fresh) {
      await startRecord(this.dst, plan);
      await recordCopyUnits(this.dst, plan, units, 1);
      await this.createTables(tables, progress);
    } else {
      // Marks go first: a kill between the two leaves unmarked tables, which the next resume empties again.
      await forgetTables(
        this.dst,
        plan,
        todo.map((t) => t.name),
      );
      // foreign_key_checks off: InnoDB refuses to TRUNCATE a table other tables reference.
      await this.dst('SET SESSION foreign_key_checks = 0', [], 'preparing to empty tables');
      try {
        for (const t of todo) await this.dst(`TRUNCATE TABLE ${quoteIdent(db)}.${quoteIdent(t.name)}`, [], `emptying ${t.name} on the target to copy it again`);
      } finally {
        await this.dst('SET SESSION foreign_key_checks = 1', [], 'resetting foreign_key_checks');
      }
      await recordCopyUnits(this.dst, plan, units, 1 + Math.max(0, ...recorded.map((u) => u.id)));
      const at = [...new Set([...state.complete.values()].map((c) => c.gtid || '(empty)'))].join(', ');
      progress({
        phase: 'copy',
        message: `resuming the copy cut short: ${state.complete.size} of ${tables.length} table(s) already copied (at GTID ${at}), ${todo.length} to copy`,
        tablesDone: state.complete.size,
        tablesTotal: tables.length,
      });
    }
    const positions = new Map<number, { gtid: string; tables: string[] }>();
    for (const [table, c] of state.complete) positions.set(c.attempt, { gtid: c.gtid, tables: [...(positions.get(c.attempt)?.tables ?? []), table] });
    let copied = '';
    if (units.length) {
      const r = await copyAtOnePosition(this.copyOptions(), units, this.src, this.dst, progress, { plan, attempt: state.nextAttempt });
      positions.set(state.nextAttempt, { gtid: r.position.gtid, tables: todo.map((t) => t.name) });
      copied = `${r.rows} row(s) copied in ${r.units} stream(s)`;
    }
    // A split table's secondary indexes, also those of one whose earlier copy was killed before building them.
    const split = new Set([...recorded.filter((u) => u.from !== undefined || u.to !== undefined).map((u) => u.table), ...units.filter((u) => u.range).map((u) => u.table.name)]);
    await restoreDeferredIndexes(db, [...split], this.src, this.dst, progress);
    await this.copyTriggers(copied || 'every table was copied before', progress);
    return [...positions.entries()].sort(([a], [b]) => a - b).map(([, p]) => p);
  }

  /**
   * Starts the plan's replica connection from the oldest copy position and runs it in stages through the later ones
   * (START SLAVE UNTIL master_gtid_pos), each stage ignoring the tables copied at a position not reached yet
   * (replicate_ignore_table); then unfiltered. An existing connection (a staged start cut short) goes on from
   * where its applier stands: gtid_slave_pos is written with every applied transaction.
   */
  private async startInStages(link: ReplicaLinkSql, positions: ReadonlyArray<{ gtid: string; tables: string[] }>, progress: SyncProgress): Promise<void> {
    const f = this.targetFlavor;
    const name = link.name;
    const db = this.cfg.database;
    // Only tables of a later copy's position are ever in the filter; checked before anything changes.
    if (positions.slice(1).some((p) => p.tables.some((t) => t.includes(','))))
      throw new OperationError(`a table name of ${db} contains a comma`, 'replication filters are comma-separated lists: rename the table, or run `cutover rollback --cleanup`, drop the target database and sync again');
    const existing = await this.ours();
    if (existing && (existing.ioRunning || existing.sqlRunning)) await this.dst(stopReplicaSql(f, name), [], `stopping ${link.label} to go on with its staged start`);
    if (!existing) {
      await this.dst(`SET GLOBAL gtid_slave_pos = ?`, [positions[0]?.gtid ?? ''], `setting the target's gtid_slave_pos to the copy's position ${positions[0]?.gtid ?? ''}`);
      await this.configureReplica(link);
    }
    for (;;) {
      const [cur] = await this.dst<RowDataPacket & { p: string | null }>(`SELECT @@GLOBAL.gtid_slave_pos AS p`, [], 'reading the target’s applied GTID position');
      const stage = nextStage(positions, String(cur?.p ?? ''));
      await this.dst(`SET GLOBAL ${quoteIdent(name)}.replicate_ignore_table = ?`, [(stage?.ignore ?? []).map((t) => `${db}.${t}`).join(',')], `setting the tables ${link.label} skips for now`);
      if (!stage) break;
      progress({ phase: 'replication', message: `${link.label} runs to GTID ${stage.until} without ${stage.ignore.length} table(s) copied at that position or later` });
      await this.dst(`${startReplicaSql(f, name)} UNTIL master_gtid_pos = ?`, [stage.until], `running ${link.label} to GTID ${stage.until}`);
      await this.waitStopped(name, stage.until);
    }
    await this.dst(link.start(), [], `starting ${link.label}`);
    progress({ phase: 'replication', message: `${link.label} on the target follows the source by GTID` });
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

  /**
   * Configures and starts the link from `gtid` (the parallel copy's position; the one-stream dump loaded its own).
   * The provider's procedures keep the filter of their parameter group, which preflight checked.
   */
  private async startReplica(link: ReplicaLinkSql, start: CopyStart | undefined): Promise<void> {
    await this.configureReplica(link, start);
    await this.dst(link.start(), [], `starting ${link.label}`);
  }

  private async configureReplica(link: ReplicaLinkSql, start?: CopyStart): Promise<void> {
    const ep = this.cfg.source;
    const login = await this.replicationLogin();
    const change = link.configure({ host: ep.host, port: ep.port, ...login, tls: ep.tls, tlsNegotiated: await this.sourceTlsNegotiated() }, start);
    await withoutStatementLog(this.dst, async () => {
      await this.dst(change.sql, change.params, `configuring ${link.label}`);
    });
    if (link.kind === 'statements') {
      const filter = replicaFilterSql(this.targetFlavor, link.name, this.cfg.database);
      if (filter) await this.dst(filter.sql, filter.params, `limiting ${link.label} to ${this.cfg.database}`);
    }
  }

  private async waitReplicaRunning(): Promise<void> {
    const link = await this.link();
    await this.waitRunning(this.dst, this.targetFlavor, link.name, (why) => {
      throw new OperationError(
        `${link.label} did not start: ${why}`,
        `check that the target can reach ${this.cfg.source.host}:${this.cfg.source.port} as ${this.cfg.source.user} (REPLICATION SLAVE); \`cutover rollback --cleanup\` removes the copy`,
      );
    });
  }

  /** Until the named connection on `q`'s server reports both threads running; `fail` says why it did not. */
  private async waitRunning(q: Query, f: MysqlFlavor, name: string, fail: (why: string) => never): Promise<void> {
    const deadline = Date.now() + REPLICA_START_MS;
    for (;;) {
      const r = (await this.replicas(q, f)).find((x) => x.name === name);
      if (r?.ioRunning && r.sqlRunning) return;
      if (Date.now() > deadline || (r && r.lastError && (!r.ioRunning || !r.sqlRunning))) fail(r?.lastError || `IO thread ${r?.ioRunning ? 'running' : 'stopped'}, SQL thread ${r?.sqlRunning ? 'running' : 'stopped'}`);
      await sleep(100);
    }
  }

  /**
   * method dump holds nothing: the window's copy drops and recreates every table, so nothing written to the
   * target before it survives, and a server-wide read_only would also stop the databases (tenants) already
   * moved to this target.
   */
  async holdTarget(): Promise<void> {
    // A wave's stream: the target already serves the tenants moved before this one.
    if (this.cfg.method === 'dump' || this.cfg.sharedStream) return;
    if ((await resolveProfile(this.dst, this.targetFlavor, this.cfg.privileges)) === 'managed') return this.lockAppAccountsOnTarget(true);
    // The replica's applier is exempt from read_only; application sessions get error 1290.
    await this.dst(`SET GLOBAL read_only = ON`, [], 'making the target read-only for applications');
  }

  async openTarget(): Promise<void> {
    if (this.cfg.method === 'dump' || this.cfg.sharedStream) return;
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
    if (this.cfg.sharedStream && !r.sqlRunning && !r.lastError) {
      // A join or leave killed between its STOP and START leaves the wave's stream (MySQL: its applier) stopped.
      await this.withStreamLock(async () => {
        const now = await this.ours();
        if (now && !now.sqlRunning && !now.lastError) await this.dst(startReplicaSql(this.targetFlavor, this.cfg.name), [], `starting the wave's replica connection ${this.cfg.name}`);
      });
      r = (await this.ours()) ?? r;
    }
    // Right after START SLAVE the applier has no position until its IO thread has connected: give it a moment.
    for (const deadline = Date.now() + REPLICA_START_WAIT_MS; !r.execFile && !r.lastError && Date.now() < deadline;) {
      await new Promise((res) => setTimeout(res, 50));
      r = (await this.ours()) ?? r;
    }
    if (r.lastError && (!r.ioRunning || !r.sqlRunning)) {
      const link = await this.link();
      throw new OperationError(
        `replication into the target stopped: ${r.lastError}`,
        `fix the cause on the target, then ${link.kind === 'statements' ? `START SLAVE '${link.name}' (MySQL: START REPLICA FOR CHANNEL)` : link.start()}; or \`cutover rollback --cleanup\` and sync again`,
      );
    }
    if (!r.execFile) throw new OperationError(`${(await this.link()).label} has not applied anything from the source yet`, 'wait for it to connect; `cutover status` shows the replica state');
    const logs = await this.src<RowDataPacket & { Log_name: string; File_size: string }>(`SHOW BINARY LOGS`, [], 'listing binary logs');
    const cur = await binlogCoordinates(this.src, this.sourceFlavor);
    if (!cur) return null;
    return binlogBytesBehind(
      logs.map((l) => ({ name: l.Log_name, size: Number(l.File_size) })),
      cur,
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
    const link = this.cfg.method === 'dump' ? undefined : await this.link();
    const fencePosition = link ? await this.sourcePosition(link) : await this.sourceGtid();
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new BudgetExceededError('no write-downtime budget left to wait for the target', 'raise limits.maxWriteBlocked or lower limits.maxLagBeforeFence');
    if (!link) return this.copyWhileFenced(fencePosition, remaining, started);
    const what = link.startsBy === 'binlog' ? `binary log position ${fencePosition}` : `GTID ${fencePosition}`;
    const outcome = await this.waitOnTarget(link, fencePosition, remaining);
    const waitedMs = Date.now() - started;
    if (outcome === 'reached') return { method: link.startsBy, fencePosition, proofPosition: fencePosition, waitedMs };
    // A timeout leaves gtid_slave_pos alone (resetting it after a timeout lost data: mariadb-operator#277).
    const r = await this.ours();
    const state = r ? `IO thread ${r.ioRunning ? 'running' : 'stopped'}, SQL thread ${r.sqlRunning ? 'running' : 'stopped'}${r.lastError ? `, ${r.lastError}` : ''}` : 'no replica connection';
    if (outcome === 'failed') throw new OperationError(`the target could not wait for the source's ${what} (${state})`, 'check replication on the target; the source was restored');
    throw new BudgetExceededError(
      `the target did not apply the source's writes up to ${what} within the write-downtime budget (waited ${waitedMs}ms; replica: ${state})`,
      'check replication on the target, then raise limits.maxWriteBlocked or run again when lag is low',
    );
  }

  private async sourceGtid(): Promise<string> {
    const g = await this.src<RowDataPacket & { g: string | null }>(`SELECT @@GLOBAL.${this.sourceFlavor.gtidVariable} AS g`, [], 'reading the source GTID position');
    return normalizeGtidSet(g[0]?.g);
  }

  /**
   * The source's position the link's proof waits for: its GTID set, or `file:offset` for a link started from binary
   * log coordinates (the provider's file-and-offset procedure: the target never executed the source's GTIDs before
   * the copy, so a wait for the whole set would never end).
   */
  private async sourcePosition(link: ReplicaLinkSql): Promise<string> {
    if (link.startsBy === 'gtid') return this.sourceGtid();
    const b = await binlogCoordinates(this.src, this.sourceFlavor, 'reading the source binary log position');
    if (!b) throw new OperationError(`the source has no binary log position (${this.sourceFlavor.binlogStatusSql} is empty)`, 'enable the binary log on the source');
    return `${b.file}:${b.pos}`;
  }

  /** Waits on the target until the link applied `position` (sourcePosition's), at most `timeoutMs`. */
  private async waitOnTarget(link: ReplicaLinkSql, position: string, timeoutMs: number): Promise<'reached' | 'timeout' | 'failed'> {
    const at = position.lastIndexOf(':');
    const wait =
      link.startsBy === 'binlog' ? positionWaitSql(this.targetFlavor, position.slice(0, at), Number(position.slice(at + 1)), timeoutMs, link.name) : gtidWaitSql(this.targetFlavor, normalizeGtidSet(position), timeoutMs);
    const rows = await this.dst<RowDataPacket & { r: unknown }>(wait.sql, wait.params, `waiting for the target to apply the source's writes up to ${position}`);
    const r = rows[0]?.r;
    if (r === null || r === undefined) return 'failed';
    return (link.startsBy === 'binlog' ? positionWaitReached(r) : gtidWaitReached(r)) ? 'reached' : 'timeout';
  }

  /**
   * method dump: the database is fenced, so a plain `--single-transaction` dump taken now holds every write
   * the source acknowledged; loaded over the schema-only pre-copy it replaces each table whole. Bounded by the
   * budget left: a database too big to copy within it fails here and the run unfences the source.
   */
  private async copyWhileFenced(fencePosition: string, remainingMs: number, started: number): Promise<CatchUpProof> {
    try {
      await this.dumpDatabase('copy', remainingMs);
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

  /** A session of the verify's own, in REPEATABLE READ, bound by the plan's lock timeout like the tool's others. */
  private async snapshotSession(ep: DbEndpoint): Promise<{ conn: MysqlConnection; q: Query }> {
    const { conn } = await connectMysql(ep, { lockTimeoutMs: this.cfg.lockTimeoutMs });
    const q = mappedQuery(conn, ep, this.secrets);
    await q(REPEATABLE_READ_SQL).catch((e: unknown) => {
      conn.destroy();
      throw e;
    });
    return { conn, q };
  }

  async verifyOnline(hooks: OnlineVerifyHooks): Promise<'done' | null> {
    if (this.cfg.method !== 'replication') return null;
    const opened: MysqlConnection[] = [];
    const open = async (ep: DbEndpoint): Promise<Query> => {
      const s = await this.snapshotSession(ep);
      opened.push(s.conn);
      return s.q;
    };
    try {
      const [srcLock, srcSnap, dstSnap] = [await open(this.cfg.source), await open(this.cfg.source), await open(this.cfg.target)];
      await mysqlVerifyChunks(
        {
          database: this.cfg.database,
          src: this.src,
          srcSnap,
          dstSnap,
          renew: {
            dst: this.dst,
            srcLock,
            readPosition: async () => this.sourcePosition(await this.link()),
            waitFor: async (position) => (await this.waitOnTarget(await this.link(), position, VERIFY_WAIT_MS)) === 'reached',
            snapshotMaxMs: VERIFY_SNAPSHOT_MS,
          },
        },
        hooks,
      );
      return 'done';
    } finally {
      await Promise.all(opened.map((c) => c.end().catch(() => c.destroy())));
    }
  }

  /**
   * The compare after the switch: a source and a target session, connected now (before the hold, so the window
   * pays no login), each starting a consistent-snapshot READ ONLY transaction at the point of no return. The
   * source is fenced and the catch-up proved the target applied every GTID up to the fence (and nothing else
   * writes it before it opens), so the two snapshots show the same rows. Both transactions stay open for the
   * whole compare: InnoDB keeps old row versions for them (purge waits) and each compared table's metadata lock
   * (an ALTER TABLE on the target waits) until it ends.
   */
  async openSwitchCompare(): Promise<SwitchCompare> {
    const [source, target] = await openAll([() => this.snapshotSession(this.cfg.source), () => this.snapshotSession(this.cfg.target)], (s) => s.conn.end());
    let snapped = false;
    return {
      sourceSessions: [String(source!.conn.threadId)],
      snapshot: async () => {
        await Promise.all([
          source!.q(SWITCH_SNAPSHOT_SQL, [], 'taking the source snapshot of the compare after the switch'),
          target!.q(SWITCH_SNAPSHOT_SQL, [], 'taking the target snapshot of the compare after the switch'),
        ]);
        snapped = true;
      },
      compare: async (hooks) => {
        if (!snapped) throw new OperationError('the compare after the switch has no snapshots (the switch did not take them)', 'compare the tables by hand (`cutover verify` needs a replica)');
        await mysqlVerifyChunks({ database: this.cfg.database, src: this.src, srcSnap: source!.q, dstSnap: target!.q }, hooks);
      },
      close: async () => {
        await Promise.all([source!.conn, target!.conn].map((c) => c.end().catch(() => c.destroy())));
      },
    };
  }

  /** Stops and forgets the replica connection; returns whether there was one. */
  private async dropReplica(): Promise<boolean> {
    const link = await this.link();
    if (!(await this.ours())) return false;
    await this.dst(link.stop(), [], `stopping ${link.label}`);
    await this.dst(link.reset(), [], `removing ${link.label}`);
    return true;
  }

  /** Stops and forgets the replica connection `name` on `q`'s server, if it is there; returns whether it was. */
  private async dropConnection(q: Query, f: MysqlFlavor, name: string, label: string): Promise<boolean> {
    if (!(await this.replicas(q, f)).some((r) => r.name === name)) return false;
    await q(stopReplicaSql(f, name), [], `stopping ${label}`);
    await q(resetReplicaAllSql(f, name), [], `removing ${label}`);
    return true;
  }

  /**
   * One more wait for the source's GTID position before replication stops: whatever a bypassing session
   * (READ ONLY ADMIN) committed since the catch-up reaches the target instead of staying on the old source.
   */
  async detachTarget(): Promise<void> {
    const r = await this.ours();
    if (r?.ioRunning && r.sqlRunning) await this.catchUp(Date.now() + FINAL_CATCH_UP_MS);
    // The wave's stream goes on for the other tenants; this one leaves it at cleanup, after the lift.
    if (!this.cfg.sharedStream) await this.dropReplica();
  }

  async cleanup(): Promise<string[]> {
    if (this.cfg.sharedStream) return this.leaveStream();
    const dropped = (await this.dropReplica()) ? [`${(await this.link()).label} (target)`] : [];
    if (!this.cfg.replicationAccount && (await replicationUserExists(this.src, this.replicationUser))) {
      await withSessionLog(this.src, 'sql_log_bin', 0, async () => {
        await this.src(dropReplicationUserSql(this.replicationUser), [], 'dropping the replication account');
      });
      dropped.push(`replication account ${this.replicationUser} (source)`);
    }
    if (await dropRecord(this.dst, this.cfg.name)) dropped.push(`the record of a copy cut short, ${RECORD_DATABASE}.copy_unit (target)`);
    return dropped;
  }

  async leftovers(): Promise<Leftover[]> {
    if (this.cfg.sharedStream) return this.streamLeftovers();
    const link = await this.link();
    const replica: Leftover[] = (await this.ours()) ? [{ where: 'target', kind: 'replica connection', name: link.name, drop: `${link.stop()}; ${link.reset()}`, retainsWal: false }] : [];
    if ((await readRecord(this.dst, this.cfg.name)).length > 0)
      replica.push({
        where: 'target',
        kind: 'copy record',
        name: `${RECORD_DATABASE}.copy_unit (plan ${this.cfg.name})`,
        drop: `DELETE FROM ${RECORD_DATABASE}.copy_unit WHERE plan = '${this.cfg.name.replace(/'/g, "''")}'`,
        retainsWal: false,
      });
    return this.cfg.replicationAccount ? replica : [...replica, ...(await replicationUserLeftover(this.src, this.replicationUser))];
  }

  private reverseName(): string {
    if (this.cfg.reverseName === undefined) throw new OperationError('the plan keeps no reverse path (reverse: false)');
    return this.cfg.reverseName;
  }

  /**
   * At the switch (the target detached and not yet open, so nothing writes it): reads the target's GTID position,
   * the switch position, and configures from it on the old source a stopped replica connection of the target.
   * Only the read must precede the open: the old source's side (position, CHANGE MASTER, filter: file writes on
   * the old source) runs on beside the open and the router switch and reverseStart waits for it. A crash before
   * it is done leaves no connection, so a resumed run reports the reverse path unavailable; an existing
   * connection was made at this switch and is kept. The account and its password come after the lift.
   */
  async reverseBegin(): Promise<void> {
    const name = this.reverseName();
    const [pos] = await this.dst<RowDataPacket & { b: unknown; g: string | null }>(switchPositionSql(this.targetFlavor), [], 'reading the target GTID position at the switch');
    if (!isOn(pos?.b)) throw new OperationError('the target has no binary log (log_bin OFF): the old source has nothing to follow', 'start the target with log_bin and binlog_format=ROW');
    const position = normalizeGtidSet(pos?.g);
    this.reverseMade = this.followFrom(name, position).then(
      () => undefined,
      async (e: unknown) => {
        // Half a reverse path would show as broken in `status`: take down what was made.
        await this.reverseEnd().catch(() => {});
        return e;
      },
    );
  }

  /** The old source's side of reverseBegin, still running (resolves to its error, if any). */
  private reverseMade?: Promise<unknown>;

  /** How the old source reaches the target: the target URL's host, port and TLS settings, the per-plan account. */
  private reverseLink(name: string, tlsNegotiated: boolean, password?: string): ReplicaSource {
    const t = this.cfg.target;
    return { host: t.host, port: t.port, user: replicationAccountName(name), ...(password !== undefined ? { password } : {}), tls: t.tls, tlsNegotiated };
  }

  /** Where `q`'s replica connections start reading (startPositionSql): MySQL adds only the GTIDs it lacks. */
  private async setStartPosition(q: Query, f: MysqlFlavor, position: string, label: string): Promise<void> {
    const missing = f.kind === 'mysql' && position ? ((await q<RowDataPacket & { g: string | null }>(MYSQL_MISSING_GTIDS_SQL, [position], 'comparing GTID sets'))[0]?.g ?? '') : undefined;
    for (const st of startPositionSql(f, position, missing)) await q(st.sql, st.params, label);
  }

  /** The old source's replica connection of the target, configured (not started, no password yet) at `position`. */
  private async followFrom(name: string, position: string): Promise<void> {
    const f = this.sourceFlavor;
    const onOldSource = await this.replicas(this.src, f);
    if (onOldSource.some((r) => r.name === name)) return;
    const refusal = reverseRefusal(
      f,
      onOldSource.map((r) => r.name),
    );
    if (refusal) throw new OperationError(refusal);
    const link = this.reverseLink(name, await this.sourceTlsNegotiated(this.dst));
    const plaintext = plaintextLinkFinding(this.targetFlavor, link, false);
    if (plaintext) throw new OperationError(plaintext.message, plaintext.fix);
    await this.setStartPosition(this.src, f, position, 'setting where the old source starts following the target');
    const change = changeSourceSql(f, name, link);
    await this.src(change.sql, change.params, `configuring the reverse replica connection ${name} on the old source`);
    const filter = replicaFilterSql(f, name, this.cfg.database);
    if (filter) await this.src(filter.sql, filter.params, `limiting the reverse replica connection ${name} to ${this.cfg.database}`);
  }

  /**
   * After the lift: the per-plan account on the target with a fresh random password (outside its binary log, so it
   * neither replicates to the old source nor to the target's replicas), the password given to the old source's
   * connection (outside its general log), and the connection started from the switch position reverseBegin set.
   */
  async reverseStart(): Promise<void> {
    const name = this.reverseName();
    const f = this.sourceFlavor;
    if (this.reverseMade) {
      const failed = await this.reverseMade;
      this.reverseMade = undefined;
      if (failed) throw failed;
    }
    const r = (await this.replicas(this.src, f)).find((x) => x.name === name);
    if (!r) throw new OperationError(`no reverse replica connection ${name} on the old source: it is made at the switch only, before the target opens (a resumed run cannot know what the target took since)`);
    if (!(r.ioRunning && r.sqlRunning)) {
      const password = randomReplicationPassword();
      this.secrets.push(password);
      const user = replicationAccountName(name);
      await withSessionLog(this.dst, 'sql_log_bin', 0, async () => {
        for (const st of createReplicationUserSql(this.targetFlavor, user, password)) await this.dst(st.sql, st.params, 'creating the reverse replication account on the target');
      });
      const set = replicaPasswordSql(f, name, password);
      await withoutStatementLog(this.src, async () => {
        await this.src(set.sql, set.params, `giving the reverse replica connection ${name} its password`);
      });
      await this.src(startReplicaSql(f, name), [], `starting the reverse replica connection ${name} on the old source`);
    }
    await this.waitRunning(this.src, f, name, (why) => {
      throw new OperationError(
        `the reverse replica connection ${name} on the old source did not start: ${why}`,
        `check that the old source can reach ${this.cfg.target.host}:${this.cfg.target.port}; \`cutover status\` shows the reverse path`,
      );
    });
  }

  /** The reverse path: the old source's replica connection of the new primary. */
  async reverseState(): Promise<ReverseState> {
    const name = this.reverseName();
    return this.stream({ replica: this.src, replicaFlavor: this.sourceFlavor, primary: this.dst, primaryFlavor: this.targetFlavor, name, account: replicationAccountName(name) });
  }

  /** The stream into the target (a revert's session: the reverse path, its account on this session's source). */
  async streamState(): Promise<ReverseState> {
    return this.stream({ replica: this.dst, replicaFlavor: this.targetFlavor, primary: this.src, primaryFlavor: this.sourceFlavor, name: (await this.link()).name, account: this.replicationUser });
  }

  private async stream(s: { replica: Query; replicaFlavor: MysqlFlavor; primary: Query; primaryFlavor: MysqlFlavor; name: string; account: string }): Promise<ReverseState> {
    const status = (await this.replicas(s.replica, s.replicaFlavor)).find((r) => r.name === s.name);
    const accountExists = this.cfg.replicationAccount !== undefined && s.replica === this.dst ? true : await replicationUserExists(s.primary, s.account);
    let lagBytes: number | null = null;
    if (status?.execFile) {
      const logs = await s.primary<RowDataPacket & { Log_name: string; File_size: string }>(`SHOW BINARY LOGS`, [], 'listing binary logs');
      const cur = await binlogCoordinates(s.primary, s.primaryFlavor);
      if (cur)
        lagBytes = binlogBytesBehind(
          logs.map((l) => ({ name: l.Log_name, size: Number(l.File_size) })),
          cur,
          { file: status.execFile, pos: status.execPos },
        );
    }
    return streamVerdict({ name: s.name, replica: s.replicaFlavor, status, accountExists, account: s.account, lagBytes, database: this.cfg.database });
  }

  /** `cutover finalize`: the old source stops following and forgets the connection; the account on the target goes. */
  async reverseEnd(): Promise<string[]> {
    const name = this.reverseName();
    const f = this.sourceFlavor;
    const dropped: string[] = [];
    if (await this.dropConnection(this.src, f, name, `the reverse replica connection ${name} on the old source`)) dropped.push(`replica connection ${name} (old source)`);
    const user = replicationAccountName(name);
    if (await replicationUserExists(this.dst, user)) {
      await withSessionLog(this.dst, 'sql_log_bin', 0, async () => {
        await this.dst(dropReplicationUserSql(user), [], 'dropping the reverse replication account on the target');
      });
      dropped.push(`replication account ${user} (target)`);
    }
    return dropped;
  }

  async close(): Promise<void> {
    await this.reverseMade;
    await Promise.all([this.srcConn, this.dstConn].map((c) => c.end().catch(() => c.destroy())));
  }
}
