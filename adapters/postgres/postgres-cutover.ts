import { BudgetExceededError, OperationError, PreflightError } from '../../src/errors.js';
import type {
  CatchUpProof,
  CdcSlotHandover,
  CutoverAdapter,
  DetachResult,
  Finding,
  Leftover,
  OnlineVerifyHooks,
  ReverseState,
  SourceLockResult,
  SwitchCompare,
  SyncProgress,
  SyncSummary,
  VerifyReport,
} from '../../src/engine/cutover-adapter.js';
import type { CopyMethod } from '../../src/plan/types.js';
import type { ReadOnlyMode, ReadOnlyScope } from '../../src/readonly/types.js';
import type { PrivilegeProfile } from './postgres-privileges.js';
import { isManaged } from './postgres-managed-checks.js';
import { readPrivileges } from './postgres-privileges.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { openAll } from '../../src/util/open-all.js';
import { randomReplicationPassword, replicationAccountName } from '../../src/util/replication-account.js';
import { ANALYZE_JOBS, analyzableRelations, analyzeInParallel, changedSinceAnalyze, neverAnalyzed, populatedMatviews, refreshMatviews } from './postgres-analyze.js';
import { cdcFindings, createTargetSlots, dropTargetSlots, sourceSlotPositions, targetSlotsPresent, type CdcPolicy } from './postgres-cdc.js';
import { pgPreflight, publishableTables, userTableCount, userTables } from './postgres-checks.js';
import { createExtensions, extensionFindings } from './postgres-extensions.js';
import { copySettingsAndGrants, settingsFindings } from './postgres-settings.js';
import { ALL_KINDS, driftFindings, schemaDifferences, schemaFingerprint, type SchemaObjectKind } from './postgres-schema-fingerprint.js';
import { choiceFor, keylessFindings, keylessTables, restoreReplicaIdentity, setReplicaIdentityFull, type KeylessPolicy } from './postgres-keyless.js';
import { connectPg, endAll, mapPgError, serverMajor, type PgClient } from './postgres-connection.js';
import { dropLeakSlot, ensureLeakSlot } from './postgres-leak-decoding.js';
import {
  createSentinel,
  dropPublisherSide,
  ensurePublication,
  ensureSubscription,
  dropSubscription,
  dropToolObjects,
  markPostDataApplied,
  moveScope,
  postDataApplied,
  proveCaughtUp,
  replicationLeftovers,
  sentinelExists,
  slotExists,
  slotLagBytes,
  startReplication,
  stopApplying,
  subscriptionExists,
  waitTablesReady,
  TOOL_SCHEMA,
  type PgMoveScope,
} from './postgres-replication.js';
import { dropReversePublication, EarlyReverseSlot, openReversePublisher, prepareReversePublication, restoreTargetIdentities, reverseSlotExists, startReverseSubscription, streamState } from './postgres-reverse.js';
import { holdsPlanLock, releasePlanLock, tryPlanLock } from './postgres-plan-lock.js';
import { ensureReplicationRole, dropReplicationRole, replicationRoleLeftover } from './postgres-replication-role.js';
import { copyMissingRoles } from './postgres-roles.js';
import { routerLoginFindings } from './postgres-role-drift.js';
import type { RouterLogin } from '../../src/engine/router.js';
import { quoteIdent } from './postgres-sql.js';
import {
  CopyPairs,
  copyTables,
  copyUnderSnapshot,
  copyUnits,
  createSlotWithSnapshot,
  dropCopyRecord,
  endOrphanCopies,
  holdSnapshot,
  readCopyRecord,
  releaseSnapshot,
  saveCopyRecord,
  snapshotAlive,
  type CopyUnit,
} from './postgres-snapshot-copy.js';
import { clientTools, dumpInto, dumpSection, type ClientTools } from './postgres-tools.js';
import { copySequences, verifyTables } from './postgres-verify.js';
import { verifyChunks } from './postgres-verify-chunks.js';
import { copyStreamsPerTable, defaultCopyJobs } from '../../src/util/copy-split.js';
import { endpointOnThisMachine } from '../../src/util/this-machine.js';

/** Bound on one sentinel's trip during the online verify (the table it checks is locked meanwhile). */
const VERIFY_SENTINEL_MS = 5_000;
/** The online verify renews its snapshot pair this often: old snapshots keep dead rows from being vacuumed. */
const VERIFY_SNAPSHOT_MS = 30_000;

/** Bound on the last sentinel's trip before detaching (after the point of no return: a timeout means resume). */
const FINAL_CATCH_UP_MS = 10_000;

/** The target is held read-only to applications; the tool's own child sessions write anyway. */
const TARGET_SESSION_WRITABLE = '-c default_transaction_read_only=off';

/** What readyForQueries needs, started ahead of it (analyzeAhead). */
interface AnalyzeAhead {
  views: Promise<string[]>;
  sessions: Promise<PgClient[]>;
  /** When the sessions were opened. */
  since: number;
  /** Ends the sessions (once opened). */
  discard(): Promise<void>;
}

/** How long sessions opened ahead stay usable as they are (see readyForQueries). */
const AHEAD_FRESH_MS = 60_000;

/** The initial copy's sessions: a crash of the target mid-copy means copying again anyway. */
const COPY_TARGET_OPTIONS = `${TARGET_SESSION_WRITABLE} -c synchronous_commit=off`;

export interface PgCutoverConfig {
  source: DbEndpoint;
  target: DbEndpoint;
  /** The database that moves (same name on both sides), or that holds the schema that moves. */
  database: string;
  /** Moves only this schema of the database (schema tenants); other schemas stay where they are. */
  schema?: string;
  method: CopyMethod;
  /** Base name of the publication, slot and subscription. */
  name: string;
  sequenceGap: number;
  verify: VerifyReport['mode'];
  lockTimeoutMs: number;
  /** Bound on the initial copy of `sync`. */
  copyTimeoutMs?: number;
  /** Workers of the initial copy and of the index builds after it (default: defaultCopyJobs()). */
  copyJobs?: number;
  /** Tables bigger than this are copied in page ranges side by side (default COPY_SPLIT_BYTES). */
  copySplitBytes?: number;
  /**
   * The account the subscription logs in with (plan source.replication). Absent: a role the tool creates per
   * plan with a random password and drops at cleanup; the admin account's password never reaches the target.
   */
  replicationAccount?: { user: string; password: string };
  /** Passwords of login roles sync creates (plan roles.passwordEnv), by role; only their SCRAM verifiers reach the target. */
  rolePasswords?: Record<string, string>;
  /** The plan's choice for tables without a key (absent: each one is a blocker). */
  keyless?: KeylessPolicy;
  /** The leak check decodes the source's WAL through this persistent slot (database-scope fence). */
  leakSlot?: string;
  /** CDC consumers' slots handed over to the target at the switch (plan `cdc`). */
  cdc?: CdcPolicy;
  /** Names the reverse path's publication, slot, subscription and role (plan `reverse`); absent: none is made. */
  reverseName?: string;
  /** The plan's privilege profile (default auto: managed unless both accounts are superusers). */
  privileges?: PrivilegeProfile;
  /** The plan's source fence, for the privilege checks. */
  fence?: { scope: ReadOnlyScope; mode: ReadOnlyMode; roles?: readonly string[] };
}

/**
 * Moves one PostgreSQL database, or one schema of it: schema by pg_dump, data by logical replication (or
 * pg_dump while fenced).
 */
export class PostgresCutover implements CutoverAdapter {
  readonly engine = 'postgres' as const;
  readonly leakSlot: string | undefined;
  private dstDb: PgClient | undefined;
  /** Keyless tables moved by a copy inside the window, listed before the fence (no catalog query inside it). */
  private dumped: string[] | undefined;
  private readonly scope: PgMoveScope;
  private managedProfile: boolean | undefined;
  /** This sync loaded the pre-data schema itself: no post-data object (index, constraint) is on the target yet. */
  private preDataFresh = false;

  private constructor(
    private readonly cfg: PgCutoverConfig,
    private readonly src: PgClient,
    private readonly dstAdmin: PgClient,
  ) {
    this.scope = moveScope(cfg.name, cfg.schema);
    this.leakSlot = cfg.leakSlot;
  }

  /** What moves, for messages: `database shop` or `schema t1 of database app`. */
  private get what(): string {
    return this.cfg.schema ? `schema ${this.cfg.schema} of database ${this.cfg.database}` : `database ${this.cfg.database}`;
  }

  /** pg_dump arguments that select what moves (a pattern in double quotes matches the name literally). */
  private get dumpSelection(): string[] {
    return this.cfg.schema ? ['-n', quoteIdent(this.cfg.schema)] : [];
  }

  static async connect(cfg: PgCutoverConfig): Promise<PostgresCutover> {
    const src = await connectPg(cfg.source, { database: cfg.database, applicationName: 'cutover', lockTimeoutMs: cfg.lockTimeoutMs });
    try {
      const dst = await connectPg(cfg.target, { database: cfg.target.database ?? 'postgres', applicationName: 'cutover', lockTimeoutMs: cfg.lockTimeoutMs });
      return new PostgresCutover(cfg, src, dst);
    } catch (e) {
      await src.end().catch(() => {});
      throw e;
    }
  }

  /** Runs `fn`, turning driver errors into the tool's errors with the server named. */
  private async on<T>(side: 'source' | 'target', doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw mapPgError(e, side === 'source' ? this.cfg.source : this.cfg.target, doing);
    }
  }

  /** Managed profile: no FOR ALL TABLES publication, roles read from pg_roles (without passwords). */
  private async managed(): Promise<boolean> {
    if (this.managedProfile === undefined) {
      const [s, t] = await Promise.all([readPrivileges(this.src), readPrivileges(this.dstAdmin)]);
      this.managedProfile = isManaged(this.cfg.privileges ?? 'auto', s, t);
    }
    return this.managedProfile;
  }

  private async targetDb(): Promise<PgClient> {
    if (!this.dstDb) this.dstDb = await connectPg(this.cfg.target, { database: this.cfg.database, applicationName: 'cutover', lockTimeoutMs: this.cfg.lockTimeoutMs });
    return this.dstDb;
  }

  private async targetDbExists(): Promise<boolean> {
    return (await this.dstAdmin.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [this.cfg.database])).rows.length > 0;
  }

  private toolsFound?: Promise<ClientTools>;

  /** pg_dump, pg_restore and psql of one installation, pg_dump at least the source's major. */
  private tools(): Promise<ClientTools> {
    return (this.toolsFound ??= serverMajor(this.src).then((major) => clientTools(major)));
  }

  async identities(): Promise<{ source: string; target: string }> {
    const q = `SELECT system_identifier::text AS id FROM pg_control_system()`;
    const [a, b] = await Promise.all([this.src.query<{ id: string }>(q), this.dstAdmin.query<{ id: string }>(q)]);
    return { source: `pg:${a.rows[0]!.id}`, target: `pg:${b.rows[0]!.id}` };
  }

  routerLoginFindings(logins: readonly RouterLogin[]): Promise<Finding[]> {
    return this.on('target', 'checking the router\u2019s logins', () => routerLoginFindings(this.src, this.dstAdmin, logins, this.cfg.rolePasswords));
  }

  async preflight(): Promise<Finding[]> {
    const synced = (await this.targetDbExists()) && (await this.syncedOnTarget());
    const schema = this.cfg.schema;
    const findings = await this.on('source', 'preflight', async () =>
      pgPreflight(this.src, this.dstAdmin, this.cfg.database, {
        method: this.cfg.method,
        pgDumpMajor: (await this.tools()).major,
        targetSyncedByUs: synced,
        ...(schema ? { schema } : {}),
        privileges: this.cfg.privileges ?? 'auto',
        ...(this.cfg.fence ? { fence: this.cfg.fence } : {}),
        ownReplicationAccount: this.cfg.replicationAccount !== undefined,
        ...(this.cfg.replicationAccount ? { replicationUser: this.cfg.replicationAccount.user } : {}),
        ...(this.cfg.rolePasswords ? { rolePasswords: this.cfg.rolePasswords } : {}),
      }),
    );
    const keyless = await this.on('source', 'listing tables without a key', () => keylessTables(this.src, schema));
    findings.push(...keylessFindings(keyless, this.cfg.keyless, this.cfg.method));
    this.dumped = this.cfg.method === 'replication' ? keyless.filter((t) => choiceFor(t.table, this.cfg.keyless) === 'dump').map((t) => t.table) : [];
    findings.push(...(await this.on('target', 'checking extensions', () => extensionFindings(this.src, this.dstAdmin))));
    if (!schema) findings.push(...(await this.on('target', 'comparing settings and privileges', async () => settingsFindings(this.src, synced ? await this.targetDb() : undefined, this.cfg.database))));
    if (this.cfg.cdc) {
      const cdc = this.cfg.cdc;
      findings.push(...(await this.on('target', 'checking the CDC slots', () => cdcFindings(this.src, this.dstAdmin, this.cfg.database, cdc))));
    }
    if (schema && !(await this.src.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema])).rows.length) {
      findings.push({
        severity: 'blocker',
        check: 'schema',
        object: schema,
        message: `schema ${schema} does not exist in database ${this.cfg.database} on the source`,
        why: 'there is nothing to move',
        fix: 'check scope.tenants (or scope.schemas) and the database in source.url',
      });
    }
    if (synced) {
      const stale = await this.on('target', 'reading statistics', async () => neverAnalyzed(await this.targetDb(), schema));
      if (stale.length)
        findings.push({
          severity: 'warning',
          check: 'statistics',
          object: stale.slice(0, 5).join(', '),
          message: `${stale.length} table(s) on the target have never been analyzed`,
          why: 'without statistics the first queries after the switch get poor plans',
          fix: `ANALYZE them on the target before the cutover (cutover sync does it after the initial copy): ${stale
            .slice(0, 3)
            .map((t) => `ANALYZE ${t};`)
            .join(' ')}`,
        });
    }
    if ((await this.targetDbExists()) && !synced) {
      const n = await userTableCount(await this.targetDb(), schema);
      if (n > 0)
        findings.push({
          severity: 'blocker',
          check: schema ? 'target schema' : 'target database',
          object: schema ?? this.cfg.database,
          message: `target ${this.what} already holds ${n} table(s)`,
          why: 'sync would mix the copy with what is there',
          fix: `drop or rename ${this.what} on the target, or point target.url elsewhere`,
        });
    }
    return findings;
  }

  /** An earlier sync of this plan prepared the target: the tool schema (database) or this plan's sentinel (schema). */
  private async syncedOnTarget(): Promise<boolean> {
    const c = await this.targetDb();
    if (this.cfg.schema) return sentinelExists(c, this.scope);
    return (await c.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [TOOL_SCHEMA])).rows.length > 0;
  }

  /** Roles, the database and its schema on the target. Repeatable: a target this plan already prepared is kept. */
  async prepareTarget(progress: SyncProgress): Promise<{ rolesCreated: number; schemaCopied: boolean }> {
    this.preDataFresh = false;
    const managed = await this.managed();
    const roles = await this.on('target', 'copying roles', () => copyMissingRoles(this.src, this.dstAdmin, { managed, ...(this.cfg.rolePasswords ? { passwords: this.cfg.rolePasswords } : {}) }));
    const rolesCreated = roles.created;
    progress({ phase: 'roles', message: `${rolesCreated} role(s) created on the target` });
    for (const note of roles.notes) progress({ phase: 'roles', message: note });
    if (!(await this.targetDbExists())) {
      const owner = (await this.src.query<{ o: string }>(`SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = current_database()`)).rows[0]!.o;
      await this.on('target', 'creating the database', () =>
        this.dstAdmin.query(`CREATE DATABASE ${quoteIdent(this.cfg.database)} OWNER ${quoteIdent(owner)}`).catch(async (e: { code?: string }) => {
          // Schema tenants of one database sync side by side: another one may have just created it.
          if (!['42P04', '23505'].includes(e.code ?? '') || !this.cfg.schema) throw e;
        }),
      );
    }
    if (await this.syncedOnTarget()) {
      progress({ phase: 'schema', message: 'schema already copied by an earlier sync of this plan' });
      return { rolesCreated, schemaCopied: false };
    }
    const existing = await userTableCount(await this.targetDb(), this.cfg.schema);
    if (existing > 0) throw new OperationError(`target ${this.what} already holds ${existing} table(s)`, `drop it on the target or point target.url at an empty database`);
    // The sentinel table is created before the schema dump so the dump carries it to the target (a schema
    // dump does not: its plan creates its own sentinel on the target once the schema is there).
    await this.on('source', 'creating the sentinel table', () => createSentinel(this.src, this.scope));
    if (!this.cfg.schema) {
      const created = await this.on('target', 'creating extensions', async () => createExtensions(this.src, await this.targetDb()));
      if (created.length) progress({ phase: 'schema', message: `extension(s) created on the target: ${created.join(', ')}` });
    }
    // Method dump and the snapshot copy load data into bare tables and build indexes and constraints afterwards
    // (post-data), as pg_restore does: much faster than loading into indexed tables. The subscription's own copy
    // needs the keys up front. A schema keeps everything up front: its post-data, dumped while fenced, would carry
    // the fence trigger.
    const section = (this.cfg.method === 'dump' || this.copiesUnderSnapshot) && !this.cfg.schema ? ['--section=pre-data'] : ['--schema-only'];
    await dumpInto(await this.tools(), this.cfg.source, this.cfg.database, this.cfg.target, this.cfg.database, [...section, ...this.dumpSelection, '--no-publications', '--no-subscriptions'], TARGET_SESSION_WRITABLE);
    if (this.cfg.schema) await this.on('target', 'creating the sentinel table', async () => createSentinel(await this.targetDb(), this.scope));
    else {
      // After the schema load: a database-level setting must not change how the load itself runs.
      const carried = await this.on('target', 'copying settings and privileges', () => copySettingsAndGrants(this.src, this.dstAdmin, this.cfg.database));
      progress({ phase: 'schema', message: `${carried.settings} database/role setting(s) and ${carried.grants} database grant(s) carried over, owner set` });
    }
    progress({ phase: 'schema', message: `schema copied (${(await userTables(await this.targetDb(), this.cfg.schema)).length} tables)` });
    this.preDataFresh = !this.cfg.schema && section[0] === '--section=pre-data';
    return { rolesCreated, schemaCopied: true };
  }

  /** Replication: publication + slot + subscription, then the initial copy. Dump: nothing until the fence. */
  async startCopy(progress: SyncProgress): Promise<Omit<SyncSummary, 'rolesCreated' | 'durationMs'>> {
    if (this.cfg.method === 'dump') {
      progress({ phase: 'ready', message: 'method dump: data is copied while the source is fenced' });
      return { method: 'dump', tables: (await userTables(this.src, this.cfg.schema)).length, bytes: 0 };
    }
    const dst = await this.targetDb();
    const keyless = await this.on('source', 'listing tables without a key', () => keylessTables(this.src, this.cfg.schema));
    const full = keyless.filter((t) => choiceFor(t.table, this.cfg.keyless) === 'full');
    if (full.length) {
      await this.on('source', 'setting REPLICA IDENTITY FULL', () => setReplicaIdentityFull(this.src, this.scope, full));
      progress({ phase: 'replication', message: `REPLICA IDENTITY FULL set on ${full.map((t) => t.table).join(', ')} (cleanup restores it)` });
    }
    const dumped = keyless.filter((t) => choiceFor(t.table, this.cfg.keyless) === 'dump').map((t) => t.table);
    // FOR ALL TABLES would publish the tables copied inside the window, and their UPDATEs/DELETEs would then fail.
    // A managed admin cannot publish FOR ALL TABLES (superuser only): it lists the tables it owns.
    const tables = this.cfg.schema || dumped.length || (await this.managed()) ? (await publishableTables(this.src, this.cfg.schema)).filter((t) => !dumped.includes(t)) : [];
    if (dumped.length) progress({ phase: 'replication', message: `left out of replication, copied inside the window: ${dumped.join(', ')}` });
    // The snapshot copy has every row in once its indexes are built: the statistics are gathered from then on, beside
    // the subscription's start (their own sessions; ANALYZE does not conflict with the apply worker's writes).
    let ready: Promise<void> | undefined;
    if (this.copiesUnderSnapshot && !(await this.on('target', 'reading the subscription', () => subscriptionExists(dst, this.cfg.name)))) {
      ({ ready } = await this.copyUnderSnapshot(dst, tables, dumped, progress));
    } else {
      await this.on('target', 'starting replication', () => startReplication(this.src, dst, () => this.replicationLink(), this.cfg.database, this.cfg.name, this.scope, tables));
      progress({ phase: 'replication', message: `publication, slot and subscription ${this.cfg.name} in place` });
    }
    try {
      const done = await this.on('target', 'initial copy', () => waitTablesReady(this.src, dst, this.cfg.name, progress, this.cfg.copyTimeoutMs ?? 6 * 3_600_000));
      progress({ phase: 'ready', message: `initial copy done: ${done.tables} tables` });
      ready ??= this.readyForQueries(progress);
      await ready;
      return { method: 'replication', tables: done.tables, bytes: done.bytes };
    } finally {
      // A failure above leaves no ANALYZE running behind it.
      await ready?.catch(() => {});
    }
  }

  /** A whole database moved by replication: copied under the slot's snapshot, indexes after (see postgres-snapshot-copy.ts). */
  private get copiesUnderSnapshot(): boolean {
    return this.cfg.method === 'replication' && !this.cfg.schema;
  }

  /**
   * Slot first (its snapshot), COPY of every table under it in parallel, indexes and constraints in parallel, then
   * the subscription from the slot. A copy cut short earlier resumes unit by unit under the same snapshot while its
   * keeper holds it, else starts again from a new slot (see postgres-snapshot-copy.ts for why this is exact).
   * `ready`: the statistics (readyForQueries), gathered from the moment the indexes are built.
   */
  private async copyUnderSnapshot(dst: PgClient, published: readonly string[], leftOut: readonly string[], progress: SyncProgress): Promise<{ ready: Promise<void> }> {
    const started = Date.now();
    const jobs = this.cfg.copyJobs ?? defaultCopyJobs();
    const sentinel = this.scope.sentinel;
    const leaves = [...(await userTables(this.src)).filter((t) => !leftOut.includes(t)), sentinel];
    // Started after the schema and its database/role settings are in: a session takes those at login.
    const majors = { source: await serverMajor(this.src), target: await serverMajor(dst) };
    const pairs = await this.startCopyPairs(progress, Math.min(jobs, leaves.length), majors);
    try {
      return await this.copyWithPairs(dst, published, leaves, pairs, { started, jobs, majors }, progress);
    } finally {
      await pairs.discard();
    }
  }

  /**
   * The copy's psql pairs, the first `ahead` of them started at once: they log in while the slot and the copy record
   * are made. Copy sessions an interrupted sync left on the target are ended first (they share the pairs'
   * application_name).
   */
  private async startCopyPairs(progress: SyncProgress, ahead: number, majors: { source: number; target: number }): Promise<CopyPairs> {
    const dst = await this.targetDb();
    const encoding = (await this.src.query<{ e: string }>(`SELECT pg_encoding_to_char(encoding) AS e FROM pg_database WHERE datname = current_database()`)).rows[0]!.e;
    const orphans = await this.on('target', 'ending copies of an interrupted sync', () => endOrphanCopies(dst));
    if (orphans) progress({ phase: 'copy', message: `${orphans} copy session(s) of an interrupted sync ended on the target (none had committed)` });
    const { psql } = await this.tools();
    return new CopyPairs({ psql, source: this.cfg.source, target: this.cfg.target, database: this.cfg.database, targetOptions: COPY_TARGET_OPTIONS, encoding, majors }, ahead);
  }

  /** copyUnderSnapshot's slot, copy, indexes and subscription, its psql pairs already logging in. */
  private async copyWithPairs(
    dst: PgClient,
    published: readonly string[],
    leaves: readonly string[],
    pairs: CopyPairs,
    { started, jobs, majors }: { started: number; jobs: number; majors: { source: number; target: number } },
    progress: SyncProgress,
  ): Promise<{ ready: Promise<void> }> {
    let resumed = await this.resumableCopy(dst, progress);
    if (!resumed) {
      const slotLeft = await this.on('source', 'reading replication slots', () => slotExists(this.src, this.cfg.name));
      // Units are committed only once recorded, and recorded only after the slot is made: no record and no slot, nothing copied.
      if (slotLeft || (await this.on('target', 'reading the copy record', () => readCopyRecord(dst)))) {
        if (slotLeft) await this.on('source', 'dropping the slot of an interrupted copy', () => this.src.query(`SELECT pg_drop_replication_slot($1)`, [this.cfg.name]));
        await this.on('target', 'emptying the tables of an interrupted copy', () => dst.query(`TRUNCATE ${leaves.join(', ')} CASCADE`));
        progress({ phase: 'copy', message: 'an earlier copy was cut short and cannot resume: copying again under a new snapshot' });
      }
      await this.on('source', 'ending an earlier snapshot keeper', () => releaseSnapshot(this.src, this.cfg.name));
      await this.on('target', 'clearing an earlier copy record', () => dropCopyRecord(dst));
      await this.on('source', 'creating the publication', () => ensurePublication(this.src, this.cfg.name, this.scope, published));
      // Binary COPY only into a major that is not older (a built-in type's binary form is kept or extended, not narrowed).
      const binaryAllowed = majors.target >= majors.source;
      const tables = await this.on('source', 'listing tables to copy', () => copyTables(this.src, leaves, binaryAllowed));
      // A plan's own split size is taken as it is; by default a table is split no further than the cores its streams share.
      const here = [this.cfg.source, this.cfg.target].filter(endpointOnThisMachine).length;
      const streams = this.cfg.copySplitBytes === undefined ? copyStreamsPerTable(jobs, here) : undefined;
      const slot = await this.on('source', 'creating the replication slot', () => createSlotWithSnapshot(this.cfg.source, this.cfg.database, this.cfg.name));
      try {
        const keeper = await this.on('source', 'holding the snapshot', () => holdSnapshot(this.cfg.source, this.cfg.database, slot.snapshot, this.cfg.name, this.cfg.copyTimeoutMs ?? 6 * 3_600_000, majors.source));
        const units = await this.on('target', 'recording the copy', () =>
          saveCopyRecord(dst, { slot: this.cfg.name, consistentPoint: slot.consistentPoint, snapshot: keeper.snapshot, keeperPid: keeper.pid, units: copyUnits(tables, this.cfg.copySplitBytes, jobs, streams) }),
        );
        resumed = { consistentPoint: slot.consistentPoint, snapshot: keeper.snapshot, keeperPid: keeper.pid, units };
      } finally {
        // The keeper holds the snapshot from here on.
        await slot.close();
      }
      progress({
        phase: 'copy',
        message: `slot ${this.cfg.name} at ${resumed.consistentPoint}: copying ${tables.length} tables (${resumed.units.length} parts) under its snapshot with ${jobs} workers${streams !== undefined && streams < jobs ? ` (at most ${streams} range(s) per table: ${here === 2 ? 'both servers share' : 'a server shares'} this machine's cores)` : ''}; ${tables.filter((t) => t.binary).length} of ${tables.length} tables in COPY's binary format`,
      });
    }
    const { consistentPoint, snapshot, keeperPid, units } = resumed;
    // The indexes' and constraints' definitions are dumped while the rows copy (the dump reads only the catalog).
    const postData = dumpSection(await this.tools(), this.cfg.source, this.cfg.database, ['--section=post-data', '--no-publications', '--no-subscriptions']);
    postData.catch(() => {});
    let copiedMs: number;
    let ahead: AnalyzeAhead | undefined;
    try {
      if (units.some((u) => !u.done)) {
        await copyUnderSnapshot(units, { snapshot, jobs, pairs, freeze: !(await this.managed()), watch: dst }, progress);
      }
      // Pairs started ahead for parts an earlier run had copied are not kept through the index build.
      await pairs.discard();
      await this.on('source', 'ending the snapshot keeper', () => releaseSnapshot(this.src, this.cfg.name, keeperPid));
      copiedMs = Date.now() - started;
      // What the statistics need is gathered while the indexes build, so ANALYZE begins the moment they are built.
      ahead = this.analyzeAhead();
      // --clean (a DROP ... IF EXISTS of each object first, one statement at a time) only for a restore an earlier
      // sync may have cut short: a schema this sync loaded has none of them yet.
      await (await postData).restore(this.cfg.target, { jobs, targetOptions: TARGET_SESSION_WRITABLE, clean: !this.preDataFresh });
      // The source session is shared: its listing is done before the subscription's start uses it (in a transaction).
      await ahead.views;
    } catch (e) {
      await ahead?.discard();
      throw e;
    } finally {
      await postData.then((d) => d.discard()).catch(() => {});
    }
    progress({ phase: 'copy', message: `copied in ${copiedMs}ms, indexes and constraints built in ${Date.now() - started - copiedMs}ms (${jobs} jobs)` });
    const ready = this.readyForQueries(progress, ahead);
    // Awaited only after the subscription's start: a failure meanwhile must not surface as an unhandled rejection.
    ready.catch(() => {});
    try {
      await this.on('target', 'creating the subscription', () => ensureSubscription(dst, () => this.replicationLink(), this.cfg.database, this.cfg.name, true));
      await this.on('target', 'clearing the copy record', () => dropCopyRecord(dst));
    } catch (e) {
      await ready.catch(() => {});
      throw e;
    }
    progress({ phase: 'replication', message: `subscription ${this.cfg.name} streams from the slot's consistent point ${consistentPoint}` });
    // In an object: an async function's returned promise would be awaited with it.
    return { ready };
  }

  /**
   * The record of a copy cut short, if it can go on: its slot is still at the recorded consistent point (nothing
   * consumed it) and its snapshot can still be imported, or every unit is done already (no snapshot needed).
   */
  private async resumableCopy(dst: PgClient, progress: SyncProgress): Promise<{ consistentPoint: string; snapshot: string; keeperPid: number; units: CopyUnit[] } | undefined> {
    const record = await this.on('target', 'reading the copy record', () => readCopyRecord(dst));
    if (!record || record.slot !== this.cfg.name) return undefined;
    const slot = await this.on('source', 'reading the replication slot', () =>
      this.src.query<{ at: boolean }>(`SELECT confirmed_flush_lsn = $2::pg_lsn AS at FROM pg_replication_slots WHERE slot_name = $1`, [this.cfg.name, record.consistentPoint]),
    );
    if (slot.rows[0]?.at !== true) return undefined;
    const left = record.units.filter((u) => !u.done);
    if (left.length && !(await this.on('source', 'importing the snapshot', () => snapshotAlive(this.src, record.snapshot)))) return undefined;
    progress({
      phase: 'copy',
      message: `resuming the copy cut short under slot ${this.cfg.name} at ${record.consistentPoint}: ${record.units.length - left.length} of ${record.units.length} parts already copied, ${left.length} left under the same snapshot`,
    });
    return record;
  }

  /**
   * Materialized views the source has populated are refreshed (the schema copy made them WITH NO DATA), then every
   * table and materialized view is analyzed, so the first queries after the switch get plans from statistics.
   * Runs after the initial copy, long before the fence.
   */
  private async readyForQueries(progress: SyncProgress, gathered?: AnalyzeAhead): Promise<void> {
    const started = Date.now();
    let ahead = gathered ?? this.analyzeAhead();
    // Sessions idle through a long index build may have been dropped on the way (an idle cutoff between here and
    // the target): only a recent gathering is used as it is.
    if (Date.now() - ahead.since > AHEAD_FRESH_MS) {
      await ahead.discard();
      ahead = this.analyzeAhead(ahead.views);
    }
    // Only sessions of its own: it runs beside other work on the run's shared sessions (the subscription's start).
    const [views, sessions] = await Promise.all([ahead.views, ahead.sessions]).catch(async (e: unknown) => {
      await ahead.discard();
      throw e;
    });
    try {
      await this.on('target', 'refreshing materialized views and analyzing', async () => {
        await refreshMatviews(sessions[0]!, views);
        const relations = await analyzableRelations(sessions[0]!, this.cfg.schema);
        await analyzeInParallel(sessions.slice(0, Math.max(1, relations.length)), relations);
        progress({
          phase: 'analyze',
          message: `${views.length} materialized view(s) refreshed, ${relations.length} relation(s) analyzed in ${Date.now() - started}ms (${Math.min(ANALYZE_JOBS, relations.length)} sessions)`,
        });
      });
    } finally {
      await endAll(sessions);
    }
  }

  /**
   * Starts what readyForQueries needs: the source's populated materialized views (unless listed already) and
   * ANALYZE_JOBS target sessions.
   */
  private analyzeAhead(listed?: Promise<string[]>): AnalyzeAhead {
    const views = listed ?? this.on('source', 'listing materialized views', () => populatedMatviews(this.src, this.cfg.schema));
    const sessions = this.on('target', 'opening sessions to analyze', () => this.analyzeSessions(ANALYZE_JOBS));
    views.catch(() => {});
    sessions.catch(() => {});
    return { views, sessions, since: Date.now(), discard: () => sessions.then(endAll).catch(() => {}) };
  }

  /** `n` target sessions for ANALYZE (the caller ends them). */
  private analyzeSessions(n: number): Promise<PgClient[]> {
    return openAll(
      Array.from({ length: n }, () => () => connectPg(this.cfg.target, { database: this.cfg.database, applicationName: 'cutover analyze', lockTimeoutMs: this.cfg.lockTimeoutMs })),
      (c) => c.end(),
    );
  }

  /** ANALYZE the relations on the target with up to ANALYZE_JOBS sessions side by side. */
  private async analyzeOnTarget(relations: readonly string[]): Promise<void> {
    const dst = await this.targetDb();
    const extra = await this.analyzeSessions(Math.max(0, Math.min(ANALYZE_JOBS, relations.length) - 1));
    try {
      await analyzeInParallel([dst, ...extra], relations);
    } finally {
      await endAll(extra);
    }
  }

  /**
   * After the lag gate, before the hold: the tables the catch-up changed a lot since sync's ANALYZE (autovacuum's own
   * rule with its default settings), analyzed again so the plans after the switch see today's row counts.
   */
  async refreshStatistics(): Promise<string[]> {
    if (this.cfg.method !== 'replication' || !(await this.targetDbExists())) return [];
    const dst = await this.targetDb();
    const changed = await this.on('target', 'reading table statistics', () => changedSinceAnalyze(dst, this.cfg.schema));
    if (changed.length) await this.on('target', 'analyzing changed tables', () => this.analyzeOnTarget(changed));
    return changed;
  }

  /** The keyless tables left out of replication and copied inside the window (`tables.keyless: dump`). */
  private async dumpedTables(): Promise<string[]> {
    // Listed by preflight, which every run does before the fence; listed here only if it was not.
    if (this.cfg.method !== 'replication') return [];
    return this.dumped ?? (await keylessTables(this.src, this.cfg.schema)).filter((t) => choiceFor(t.table, this.cfg.keyless) === 'dump').map((t) => t.table);
  }

  /** Inside the window, after the catch-up proof: the tables left out of replication, copied whole. */
  private async copyDumpedTables(deadline: number): Promise<number> {
    const tables = await this.dumpedTables();
    if (tables.length === 0) return 0;
    const dst = await this.targetDb();
    await this.on('target', 'emptying tables copied inside the window', () => dst.query(`TRUNCATE ${tables.join(', ')}`));
    try {
      await dumpInto(
        await this.tools(),
        this.cfg.source,
        this.cfg.database,
        this.cfg.target,
        this.cfg.database,
        ['--data-only', ...tables.flatMap((t) => ['-t', t])],
        `${TARGET_SESSION_WRITABLE} -c session_replication_role=replica`,
        'custom',
      );
    } catch (e) {
      if (Date.now() >= deadline)
        throw new BudgetExceededError(`copying ${tables.join(', ')} did not finish within the write-downtime budget`, 'raise limits.maxWriteBlocked, or choose tables.keyless: full for big tables');
      throw e;
    }
    if (Date.now() > deadline)
      throw new BudgetExceededError(`copying ${tables.join(', ')} inside the window went beyond the write-downtime budget`, 'raise limits.maxWriteBlocked, or choose tables.keyless: full for big tables');
    return tables.length;
  }

  async sync(progress: SyncProgress): Promise<SyncSummary> {
    const started = Date.now();
    const { rolesCreated } = await this.prepareTarget(progress);
    const copy = await this.startCopy(progress);
    if (this.leakSlot !== undefined) {
      // Made now, while waiting is harmless: at the run it only moves up, so an open transaction then cannot
      // make the leak check fall back to sampling.
      const made = await this.on('source', 'creating the leak check slot', () => ensureLeakSlot(this.src, this.leakSlot!));
      progress({
        phase: 'ready',
        message:
          'fallback' in made
            ? `no decoding slot for the leak check yet (${made.fallback}); run makes one before the hold`
            : `decoding slot ${this.leakSlot} for the leak check in place (it keeps WAL until the run or rollback drops it)`,
      });
    }
    // The first fingerprint: `run` compares again at the lag gate, and refuses to fence on any difference.
    const drift = await this.schemaDrift();
    progress({ phase: 'ready', message: `schema fingerprint: ${drift.map((f) => f.message).join('; ')}` });
    return { ...copy, rolesCreated, durationMs: Date.now() - started };
  }

  /**
   * Tables, columns, constraints, indexes and sequences of what moves, compared between source and target: DDL is
   * not replicated, so a difference would break apply (or leave data out) once the fence is up.
   */
  async schemaDrift(): Promise<Finding[]> {
    if (!(await this.targetDbExists()) || !(await this.syncedOnTarget())) {
      return [{ severity: 'info', check: 'schema drift', message: 'the target holds no copy yet: nothing to compare', why: 'sync copies the schema', fix: '—' }];
    }
    const dst = await this.targetDb();
    // Method dump builds constraints and indexes on the target inside the window, from the source as it is then.
    const kinds: readonly SchemaObjectKind[] = this.cfg.method === 'dump' && !this.cfg.schema && !(await postDataApplied(dst, this.scope)) ? ['table', 'column', 'sequence'] : ALL_KINDS;
    const [src, tgt] = await Promise.all([
      this.on('source', 'reading the schema', () => schemaFingerprint(this.src, this.cfg.schema, kinds)),
      this.on('target', 'reading the schema', () => schemaFingerprint(dst, this.cfg.schema, kinds)),
    ]);
    return driftFindings(schemaDifferences(src, tgt), src.size);
  }

  async lagBytes(): Promise<number | null> {
    if (this.cfg.method === 'dump') return null;
    return this.on('source', 'reading replication lag', () => slotLagBytes(this.src, this.cfg.name));
  }

  async lockSource(key: string, owner: string): Promise<SourceLockResult> {
    return this.on('source', 'taking the plan lock', () => tryPlanLock(this.src, key, owner));
  }

  async unlockSource(key: string): Promise<void> {
    await this.on('source', 'releasing the plan lock', () => releasePlanLock(this.src, key));
  }

  async assertSourceLock(key: string): Promise<void> {
    const held = await this.on('source', 'checking the plan lock', () => holdsPlanLock(this.src, key));
    if (!held) throw new OperationError('the source session no longer holds the plan lock (pg_locks shows no advisory lock of this plan for it)');
  }

  async ownSourceSessions(): Promise<string[]> {
    return [String((await this.src.query<{ p: number }>(`SELECT pg_backend_pid() AS p`)).rows[0]!.p)];
  }

  async catchUp(deadline: number): Promise<CatchUpProof> {
    const dst = await this.targetDb();
    const started = Date.now();
    if (this.cfg.method === 'replication') {
      const proof = await this.on('target', 'catch-up', () => proveCaughtUp(this.src, dst, deadline, this.scope));
      // The copy inside the window counts in the catch-up time the report shows.
      const copied = await this.copyDumpedTables(deadline);
      return { method: 'sentinel', ...proof, ...(copied ? { waitedMs: Date.now() - started } : {}) };
    }
    const fencePosition = (await this.src.query<{ l: string }>(`SELECT pg_current_wal_insert_lsn()::text AS l`)).rows[0]!.l;
    const tables = await userTables(dst, this.cfg.schema);
    if (tables.length) await this.on('target', 'emptying target tables', () => dst.query(`TRUNCATE ${tables.join(', ')}`));
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new BudgetExceededError('no write-downtime budget left for the data copy', 'raise limits.maxWriteBlocked');
    try {
      // Triggers and FK checks off (replica role): the dump already holds consistent data.
      const selection = this.cfg.schema ? this.dumpSelection : [`--exclude-schema=${TOOL_SCHEMA}`];
      await dumpInto(await this.tools(), this.cfg.source, this.cfg.database, this.cfg.target, this.cfg.database, ['--data-only', ...selection], `${TARGET_SESSION_WRITABLE} -c session_replication_role=replica`, 'custom');
      if (!this.cfg.schema && !(await postDataApplied(dst, this.scope))) {
        await dumpInto(await this.tools(), this.cfg.source, this.cfg.database, this.cfg.target, this.cfg.database, ['--section=post-data', '--no-publications', '--no-subscriptions'], TARGET_SESSION_WRITABLE);
        await markPostDataApplied(dst, this.scope);
      }
    } catch (e) {
      if (Date.now() >= deadline) throw new BudgetExceededError(`the data copy did not finish within the write-downtime budget`, 'raise limits.maxWriteBlocked or use method: replication');
      throw e;
    }
    if (Date.now() > deadline) throw new BudgetExceededError(`the data copy took ${Date.now() - started}ms, beyond the write-downtime budget`, 'raise limits.maxWriteBlocked or use method: replication');
    return { method: 'copy', fencePosition, waitedMs: Date.now() - started };
  }

  async copySequences(): Promise<number> {
    return this.on('target', 'setting sequences', async () => copySequences(this.src, await this.targetDb(), this.cfg.sequenceGap, this.cfg.schema));
  }

  async verify(deadline: number): Promise<VerifyReport> {
    return this.on('target', 'verify', async () => verifyTables(this.src, await this.targetDb(), this.cfg.verify, deadline, this.cfg.schema));
  }

  async movedTablesSize(): Promise<{ tables: number; bytes: number }> {
    const tables = await userTables(this.src, this.cfg.schema);
    const { rows } = await this.src.query<{ b: string }>(`SELECT coalesce(sum(pg_table_size(t::regclass)), 0)::text AS b FROM unnest($1::text[]) AS t`, [tables]);
    return { tables: tables.length, bytes: Number(rows[0]!.b) };
  }

  async verifyOnline(hooks: OnlineVerifyHooks): Promise<'done' | null> {
    if (this.cfg.method !== 'replication') return null;
    const dst = await this.targetDb();
    const opts = { applicationName: 'cutover verify', lockTimeoutMs: this.cfg.lockTimeoutMs };
    const srcSnap = await connectPg(this.cfg.source, { ...opts, database: this.cfg.database });
    try {
      const dstSnap = await connectPg(this.cfg.target, { ...opts, database: this.cfg.database });
      try {
        // Tables copied inside the window have no copy on the target yet: nothing to compare before it.
        const dumped = new Set(await this.dumpedTables());
        const tables = (await userTables(this.src, this.cfg.schema)).filter((t) => !dumped.has(t));
        const sentinel = async () => {
          await proveCaughtUp(this.src, dst, Date.now() + VERIFY_SENTINEL_MS, this.scope).catch((e: unknown) => {
            if (e instanceof BudgetExceededError)
              throw new OperationError(`verify: the target did not apply a sentinel within ${VERIFY_SENTINEL_MS}ms (replication stalled or far behind)`, 'check `cutover status` for the lag and run verify again');
            throw e;
          });
        };
        await this.on('target', 'verify before the fence', () =>
          verifyChunks({ src: this.src, dst, srcSnap, dstSnap, tables, sentinel, lockTimeoutMs: Math.max(this.cfg.lockTimeoutMs, 100), snapshotMaxMs: VERIFY_SNAPSHOT_MS }, hooks),
        );
        return 'done';
      } finally {
        await dstSnap.end().catch(() => {});
      }
    } finally {
      await srcSnap.end().catch(() => {});
    }
  }

  /**
   * The compare after the switch: a source and a target session, connected now (before the hold, so the window
   * pays no login), each opening a REPEATABLE READ READ ONLY transaction at the point of no return. The source is
   * fenced and the catch-up proved the target holds every commit before the fence, so the two snapshots show the
   * same rows. Both transactions stay open for the whole compare: the target keeps old row versions (vacuum)
   * and its tables' ACCESS SHARE locks (an ALTER TABLE waits) until it ends.
   */
  async openSwitchCompare(): Promise<SwitchCompare> {
    const opts = { applicationName: 'cutover verify after', lockTimeoutMs: this.cfg.lockTimeoutMs, database: this.cfg.database };
    const opened = await openAll([() => connectPg(this.cfg.source, opts), () => connectPg(this.cfg.target, opts)], (c) => c.end());
    const srcSnap = opened[0]!;
    const dstSnap = opened[1]!;
    const pid = String((await srcSnap.query<{ p: number }>(`SELECT pg_backend_pid() AS p`)).rows[0]!.p);
    let snapped = false;
    const begin = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1';
    return {
      sourceSessions: [pid],
      snapshot: async () => {
        await this.on('target', 'taking the snapshots of the compare after the switch', () => Promise.all([srcSnap.query(begin), dstSnap.query(begin)]));
        snapped = true;
      },
      compare: async (hooks) => {
        if (!snapped) throw new OperationError('the compare after the switch has no snapshots (the switch did not take them)', 'run `cutover verify` style checks by hand');
        const tables = await userTables(this.src, this.cfg.schema);
        const noSentinel = async () => {};
        await this.on('target', 'compare after the switch', () =>
          verifyChunks({ src: this.src, dst: dstSnap, srcSnap, dstSnap, tables, sentinel: noSentinel, lockTimeoutMs: this.cfg.lockTimeoutMs, snapshotMaxMs: 0, fixedSnapshots: true }, hooks),
        );
      },
      close: async () => {
        await Promise.all([srcSnap.end().catch(() => {}), dstSnap.end().catch(() => {})]);
      },
    };
  }

  /**
   * One more sentinel before the subscription goes: a session that slipped past the leak probe (a superuser's
   * sub-millisecond autocommit writes can fall between its samples) still had its commits replicated, so they
   * reach the target instead of staying behind on the old source.
   */
  async detachTarget(): Promise<DetachResult> {
    if (this.cfg.method !== 'replication' || !(await this.targetDbExists())) return {};
    const dst = await this.targetDb();
    if ((await dst.query(`SELECT 1 FROM pg_subscription WHERE subname = $1 AND subenabled`, [this.cfg.name])).rows.length > 0) {
      await this.on('target', 'final catch-up before detaching', () => proveCaughtUp(this.src, dst, Date.now() + FINAL_CATCH_UP_MS, this.scope));
    }
    // Replication goes on between the sentinel and the stop: where it stopped tells which late writes made it.
    // A disabled subscription applies nothing: cleanup drops it after the lift, out of the window.
    const appliedThrough = await this.on('target', 'stopping the subscription', () => stopApplying(dst, this.cfg.name, FINAL_CATCH_UP_MS));
    return appliedThrough ? { appliedThrough } : {};
  }

  private get replicationRole(): string {
    return replicationAccountName(this.cfg.name);
  }

  /** The source as the subscription reaches it: the plan's replication account, or the tool's own role. */
  private async replicationLink(): Promise<DbEndpoint> {
    const own = this.cfg.replicationAccount;
    if (own) return { ...this.cfg.source, user: own.user, password: own.password };
    const password = randomReplicationPassword();
    await this.on('source', 'creating the replication role', () => ensureReplicationRole(this.src, this.replicationRole, password, this.cfg.database, this.cfg.name)).catch((e: unknown) => {
      if (e instanceof PreflightError && e.code === 'privilege') {
        throw new PreflightError('privilege', e.message, 'connect as a role that may create LOGIN REPLICATION roles, or name an existing one in source.replication: { user, passwordEnv }', { cause: e });
      }
      throw e;
    });
    return { ...this.cfg.source, user: this.replicationRole, password };
  }

  /** A reverse path was made at the switch: the sentinel table on both sides stays for `cutover revert`. */
  private async keepsReversePath(): Promise<boolean> {
    const name = this.cfg.reverseName;
    if (name === undefined || !(await this.targetDbExists())) return false;
    await this.reverseSettled();
    return this.on('target', 'looking for the reverse slot', async () => reverseSlotExists(await this.targetDb(), name));
  }

  async cleanup(): Promise<string[]> {
    const dropped: string[] = [];
    const keepTools = await this.keepsReversePath();
    if (await this.targetDbExists()) {
      const dst = await this.targetDb();
      if (await this.on('target', 'dropping the subscription', () => dropSubscription(dst, this.cfg.name))) dropped.push(`subscription ${this.cfg.name} (target)`);
      const gone = keepTools ? undefined : await this.on('target', 'dropping the tool objects', () => dropToolObjects(dst, this.scope));
      if (gone) dropped.push(`${gone} (target)`);
    }
    // A copy cut short may have left its snapshot keeper running: it holds back vacuum on the source.
    await this.on('source', 'ending the snapshot keeper', () => releaseSnapshot(this.src, this.cfg.name));
    dropped.push(...(await this.on('source', 'dropping the publication and slot', () => dropPublisherSide(this.src, this.cfg.name))));
    if (await sentinelExists(this.src, this.scope)) {
      const restored = await this.on('source', 'restoring replica identities', () => restoreReplicaIdentity(this.src, this.scope));
      dropped.push(...restored.map((t) => `REPLICA IDENTITY FULL on ${t} (source, restored)`));
    }
    if (await this.dropLeakSlot()) dropped.push(`replication slot ${this.leakSlot!}`);
    const gone = keepTools ? undefined : await this.on('source', 'dropping the tool objects', () => dropToolObjects(this.src, this.scope));
    if (gone) dropped.push(`${gone} (source)`);
    if (!this.cfg.replicationAccount && (await this.on('source', 'dropping the replication role', () => dropReplicationRole(this.src, this.replicationRole)))) {
      dropped.push(`replication role ${this.replicationRole} (source)`);
    }
    return dropped;
  }

  async handOverCdcSlots(sourceStop: string, deadline: number): Promise<CdcSlotHandover[]> {
    const cdc = this.cfg.cdc;
    if (!cdc) return [];
    const dst = await this.targetDb();
    return this.on('target', 'creating the CDC slots', async () => {
      try {
        return await createTargetSlots(this.src, dst, cdc, sourceStop, deadline, this.scope.sentinel);
      } catch (e) {
        if ((e as { code?: string }).code === '57014')
          throw new BudgetExceededError(
            `creating the CDC slots on the target did not finish within the write-downtime budget (it waits for transactions running on the target)`,
            'end long transactions on the target (autovacuum ANALYZE, idle sessions in a transaction) before the run, or raise limits.maxWriteBlocked',
          );
        throw e;
      }
    });
  }

  async dropCdcSlots(): Promise<string[]> {
    const cdc = this.cfg.cdc;
    if (!cdc || !(await this.targetDbExists())) return [];
    const dst = await this.targetDb();
    return (await this.on('target', 'dropping the CDC slots', () => dropTargetSlots(dst, cdc))).map((n) => `replication slot ${n} (target, CDC)`);
  }

  async cdcTargetLeftovers(): Promise<Leftover[]> {
    const cdc = this.cfg.cdc;
    if (!cdc || !(await this.targetDbExists())) return [];
    const names = await targetSlotsPresent(await this.targetDb(), cdc);
    return names.map((name) => ({ where: 'target', kind: 'replication slot (CDC handover of a run rolled back)', name, drop: `SELECT pg_drop_replication_slot('${name}');`, retainsWal: true }));
  }

  async cdcSourcePositions(): Promise<Record<string, string | null>> {
    const cdc = this.cfg.cdc;
    return cdc ? this.on('source', 'reading the CDC slots', () => sourceSlotPositions(this.src, cdc)) : {};
  }

  /** Keyless tables the plan replicates with REPLICA IDENTITY FULL (the reverse path does the same on the target). */
  private readonly identityFull = (table: string): boolean => choiceFor(table, this.cfg.keyless) === 'full';

  private reverseName(): string {
    if (this.cfg.reverseName === undefined) throw new OperationError('the plan keeps no reverse path (reverse: false)');
    return this.cfg.reverseName;
  }

  private earlyReverse?: EarlyReverseSlot;

  async reversePrepare(): Promise<void> {
    const name = this.reverseName();
    if (this.earlyReverse) return;
    await this.on('target', 'making the reverse publication', async () => prepareReversePublication(await this.targetDb(), name, this.scope, this.identityFull));
    const c = await connectPg(this.cfg.target, { database: this.cfg.database, applicationName: 'cutover reverse', lockTimeoutMs: this.cfg.lockTimeoutMs });
    try {
      this.earlyReverse = await this.on('target', "making the reverse path's early slot", () => EarlyReverseSlot.make(c, name));
    } catch (e) {
      await c.end().catch(() => {});
      throw e;
    }
  }

  async reverseUnprepare(): Promise<string[]> {
    const name = this.reverseName();
    await this.earlyReverse?.close();
    this.earlyReverse = undefined;
    if (!(await this.targetDbExists())) return [];
    const dst = await this.targetDb();
    // A reverse slot exists only once a switch made it: then the publication is the reverse path's, and stays.
    if (await reverseSlotExists(dst, name)) return [];
    return (await this.on('target', 'dropping the reverse publication', () => dropReversePublication(dst, name))) ? [`publication ${name} (target)`] : [];
  }

  /** The early slot's settle after the release (advance to the switch position, copy): awaited before cleanup. */
  private reverseSettle?: Promise<Error | undefined>;

  async reverseBegin(): Promise<void> {
    const name = this.reverseName();
    const early = this.earlyReverse;
    this.earlyReverse = undefined;
    let opened: Awaited<ReturnType<typeof openReversePublisher>>;
    try {
      opened = await this.on('target', 'making the reverse publication and slot', async () => openReversePublisher(await this.targetDb(), name, this.scope, this.identityFull, early));
    } catch (e) {
      await early?.close();
      throw e;
    }
    if (!opened.settle) {
      await early?.close();
      return;
    }
    // The position is fixed; the slot's making runs on the early slot's own session, beside the rest of the window.
    this.reverseSettle = opened
      .settle()
      .then(
        () => undefined,
        (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
      )
      .finally(() => early?.close());
  }

  /** Waits for the early slot's settle; its error, if any (the reverse path is then unavailable). */
  private async reverseSettled(): Promise<Error | undefined> {
    return this.reverseSettle;
  }

  async reverseStart(): Promise<void> {
    const name = this.reverseName();
    const settleError = await this.reverseSettled();
    if (settleError) throw new OperationError(`the reverse slot could not be made from the early slot: ${settleError.message}`);
    const dst = await this.targetDb();
    if (!(await reverseSlotExists(dst, name)))
      throw new OperationError(`no reverse slot ${name} on the target: it is made at the switch only, before the target opens (a resumed run cannot know what the target took since)`);
    const role = replicationAccountName(name);
    const link = async (): Promise<DbEndpoint> => {
      const password = randomReplicationPassword();
      await this.on('target', 'creating the reverse replication role', () => ensureReplicationRole(dst, role, password, this.cfg.database, name));
      return { ...this.cfg.target, user: role, password };
    };
    await this.on('source', 'creating the reverse subscription', () => startReverseSubscription(this.src, link, this.cfg.database, name));
  }

  async reverseState(): Promise<ReverseState> {
    const name = this.reverseName();
    if (!(await this.targetDbExists())) return { name, state: 'absent', lagBytes: null, why: 'the target database does not exist' };
    const dst = await this.targetDb();
    return this.on('target', 'reading the reverse path', () => streamState(dst, this.src, name));
  }

  async reverseEnd(): Promise<string[]> {
    const name = this.reverseName();
    const dropped: string[] = [];
    if (await this.on('source', 'dropping the reverse subscription', () => dropSubscription(this.src, name))) dropped.push(`subscription ${name} (old source)`);
    if (await this.targetDbExists()) {
      const dst = await this.targetDb();
      dropped.push(...(await this.on('target', 'dropping the reverse publication and slot', () => dropPublisherSide(dst, name))).map((d) => `${d} (target)`));
      if (await this.on('target', 'dropping the reverse replication role', () => dropReplicationRole(dst, replicationAccountName(name)))) dropped.push(`replication role ${replicationAccountName(name)} (target)`);
      const restored = await this.on('target', 'restoring replica identities', () => restoreTargetIdentities(dst, this.scope, this.identityFull));
      dropped.push(...restored.map((t) => `REPLICA IDENTITY FULL on ${t} (target, restored)`));
      const gone = await this.on('target', 'dropping the tool objects', () => dropToolObjects(dst, this.scope));
      if (gone) dropped.push(`${gone} (target)`);
    }
    const gone = await this.on('source', 'dropping the tool objects', () => dropToolObjects(this.src, this.scope));
    if (gone) dropped.push(`${gone} (old source)`);
    return dropped;
  }

  /** The stream into the target, from this adapter's source: the subscription on the target and the slot on the source. */
  async streamState(): Promise<ReverseState> {
    if (!(await this.targetDbExists())) return { name: this.cfg.name, state: 'absent', lagBytes: null, why: 'the target database does not exist' };
    const dst = await this.targetDb();
    return this.on('target', 'reading the replication stream', () => streamState(this.src, dst, this.cfg.name));
  }

  async dropLeakSlot(): Promise<boolean> {
    if (this.leakSlot === undefined) return false;
    return this.on('source', 'dropping the leak check slot', () => dropLeakSlot(this.src, this.leakSlot!));
  }

  async leftovers(): Promise<Leftover[]> {
    const out = await replicationLeftovers(this.src, (await this.targetDbExists()) ? await this.targetDb() : this.dstAdmin, this.cfg.name);
    if (this.leakSlot !== undefined && (await this.src.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [this.leakSlot])).rows.length) {
      out.push({ where: 'source', kind: 'replication slot (leak check)', name: this.leakSlot, drop: `SELECT pg_drop_replication_slot('${this.leakSlot}');`, retainsWal: true });
    }
    return this.cfg.replicationAccount ? out : [...out, ...(await replicationRoleLeftover(this.src, this.replicationRole))];
  }

  async close(): Promise<void> {
    await this.reverseSettled();
    await Promise.all([this.src.end(), this.dstAdmin.end(), this.dstDb?.end(), this.earlyReverse?.close()].map((p) => p?.catch(() => {})));
  }
}
