import type { Finding } from '../../src/engine/cutover-adapter.js';
import type { CopyMethod } from '../../src/plan/types.js';
import { formatBytes } from '../../src/util/units.js';
import type { PgClient } from './postgres-connection.js';
import { USER_NAMESPACE } from './postgres-namespace.js';
import { TOOL_SCHEMA } from './postgres-replication.js';
import { STATEMENT_TEXT_SETTINGS, settableStatementTextSettings, statementLoggingRisk, statementTextSettings } from './postgres-statement-logging.js';
import type { ReadOnlyMode, ReadOnlyScope } from '../../src/readonly/types.js';
import type { PrivilegeProfile } from './postgres-privileges.js';
import { REPLICATION_ACCOUNT_PREFIX } from '../../src/util/replication-account.js';
import { isManaged, missingPasswordFindings, privilegeFindings, protectedSessionFindings } from './postgres-managed-checks.js';
import { superuserSessions } from './postgres-sessions.js';
import { PROVIDER_WAYS, readPrivileges } from './postgres-privileges.js';
import { plannedPasswordFindings, readLoginRoles, roleDriftFindings, roleNames } from './postgres-role-drift.js';

export interface PreflightContext {
  method: CopyMethod;
  pgDumpMajor: number;
  /** The target was filled by an earlier `sync` of this plan: a non-empty target is expected. */
  targetSyncedByUs: boolean;
  /** The one schema that moves (schema tenants); undefined: the whole database. */
  schema?: string;
  /** The plan's privilege profile (default auto), its source fence, and whether it names its replication account. */
  privileges?: PrivilegeProfile;
  fence?: { scope: ReadOnlyScope; mode: ReadOnlyMode; roles?: readonly string[] };
  ownReplicationAccount?: boolean;
  /** That account's name: the job's own login, not an application's, so left out of the role comparison. */
  replicationUser?: string;
  /** Passwords the plan gives (roles.passwordEnv), by role: sync creates those roles with them, an existing target role must accept its own. Never printed. */
  rolePasswords?: Readonly<Record<string, string>>;
}

/** User tables, of one schema when $1 is not null. */
const USER_TABLES = `
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND ${USER_NAMESPACE}`;

async function one<T>(c: PgClient, sql: string, params: unknown[] = []): Promise<T> {
  return (await c.query(sql, params)).rows[0] as T;
}

/** Every check of `cutover check` for PostgreSQL. Read-only on both servers. */
export async function pgPreflight(src: PgClient, dst: PgClient, database: string, ctx: PreflightContext): Promise<Finding[]> {
  const f: Finding[] = [];
  const add = (x: Finding) => f.push(x);
  const repl = ctx.method === 'replication';
  const blockIfRepl = repl ? 'blocker' : 'warning';
  const inScope = [ctx.schema ?? null];

  const sv = await one<{ n: number; v: string; wal: string; slots: number; used: number; senders: number; sid: string }>(
    src,
    `SELECT current_setting('server_version_num')::int AS n, current_setting('server_version') AS v, current_setting('wal_level') AS wal,
            current_setting('max_replication_slots')::int AS slots, (SELECT count(*)::int FROM pg_replication_slots) AS used,
            current_setting('max_wal_senders')::int AS senders, (SELECT system_identifier::text FROM pg_control_system()) AS sid`,
  );
  const tv = await one<{ n: number; v: string; workers: number; sid: string }>(
    dst,
    `SELECT current_setting('server_version_num')::int AS n, current_setting('server_version') AS v,
            current_setting('max_logical_replication_workers')::int AS workers, (SELECT system_identifier::text FROM pg_control_system()) AS sid`,
  );
  const srcMajor = Math.floor(sv.n / 10000);
  const dstMajor = Math.floor(tv.n / 10000);
  add({ severity: 'info', check: 'versions', message: `source PostgreSQL ${sv.v} → target PostgreSQL ${tv.v}`, why: 'a newer target major is an upgrade', fix: '—' });
  // A target this plan already prepared has its schema loaded (a revert's old source follows by replication).
  if (dstMajor < srcMajor)
    add({
      severity: ctx.targetSyncedByUs ? 'info' : 'blocker',
      check: 'versions',
      message: `target major ${dstMajor} is older than source major ${srcMajor}`,
      why: 'a schema dumped from a newer server may not load into an older one',
      fix: 'use a target of the same or a newer major version',
    });
  // A replica this plan prepared needs pg_dump only for keyless tables copied in the window (a revert: none).
  if (ctx.pgDumpMajor < srcMajor)
    add({
      severity: ctx.targetSyncedByUs && repl ? 'warning' : 'blocker',
      check: 'pg_dump',
      message: `pg_dump ${ctx.pgDumpMajor} cannot dump a PostgreSQL ${srcMajor} server`,
      why: 'pg_dump refuses servers newer than itself',
      fix: `install postgresql-client-${srcMajor} or newer`,
    });
  if (sv.sid === tv.sid)
    add({
      severity: 'blocker',
      check: 'identity',
      message: `source and target are the same server (system_identifier ${sv.sid})`,
      why: 'a cutover onto itself would fence the only copy',
      fix: 'point target.url at the new server',
    });
  const [srcPriv, dstPriv] = await Promise.all([readPrivileges(src), readPrivileges(dst)]);
  const privFindings = privilegeFindings({
    requested: ctx.privileges ?? 'auto',
    source: srcPriv,
    target: dstPriv,
    replication: repl,
    ownReplicationAccount: ctx.ownReplicationAccount ?? false,
    fence: ctx.fence ?? { scope: 'database', mode: 'enforced' },
  });
  f.push(...privFindings);
  const managed = isManaged(ctx.privileges ?? 'auto', srcPriv, dstPriv);
  const walFix = managed ? PROVIDER_WAYS.logicalDecoding : 'ALTER SYSTEM SET wal_level = logical; then restart the source';
  const planPasswords = new Set(Object.keys(ctx.rolePasswords ?? {}));
  const dstRoleNames = await roleNames(dst);
  if (managed) f.push(...missingPasswordFindings((await rolesWithoutPassword(src, dstRoleNames)).filter((r) => !planPasswords.has(r))));
  if (planPasswords.size > 0) f.push(...(await unknownPlanRoleFindings(src, [...planPasswords])));
  // Roles the target already has are left alone by sync: one that would refuse today's login is named here.
  const [srcRoles, dstRoles] = await Promise.all([readLoginRoles(src, srcPriv.superuser), readLoginRoles(dst, dstPriv.superuser)]);
  const apps = (r: { name: string }) => r.name !== ctx.replicationUser;
  // A revert's target is the old source, whose app roles this plan's strict fence locked: NOLOGIN there is ours.
  const lockedByFence = new Set(ctx.targetSyncedByUs && ctx.fence?.mode === 'strict' ? (ctx.fence.roles ?? []) : []);
  f.push(...roleDriftFindings(srcRoles.filter(apps), dstRoles, { targetRoleNames: dstRoleNames, passwordsFromPlan: planPasswords, lockedByFence }));
  if (ctx.rolePasswords) f.push(...(await plannedPasswordFindings(dstRoles, ctx.rolePasswords)));
  if (managed && (ctx.fence?.scope ?? 'database') === 'database' && !ctx.schema) {
    // The sessions the managed fence will leave running and name.
    f.push(...protectedSessionFindings(await superuserSessions(src, { scope: 'database', name: database }), database, ctx.fence?.mode ?? 'enforced'));
  }
  if (managed && !srcPriv.superuser && (ctx.fence?.scope ?? 'database') === 'database') {
    const own = await one<{ ok: boolean; o: string }>(src, `SELECT pg_has_role(current_user, datdba, 'USAGE') AS ok, pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = $1`, [database]);
    if (own && !own.ok)
      add({
        severity: 'blocker',
        check: 'privileges',
        object: 'source',
        message: `${srcPriv.user} does not own database ${database} (owner: ${own.o})`,
        why: 'the database-scope fence is ALTER DATABASE ... SET default_transaction_read_only, which needs ownership',
        fix: PROVIDER_WAYS.databaseOwner,
      });
  }
  if (repl && !dstPriv.superuser) {
    const risk = await subscriptionLogRisk(dst, dstPriv.major);
    if (risk)
      add({
        severity: 'blocker',
        check: 'privileges',
        object: 'target',
        message: `the target has ${risk} and ${dstPriv.user} cannot change it for its session`,
        why: "CREATE SUBSCRIPTION's text carries the replication password: the target would write it to its server log (or keep it in pg_stat_statements)",
        fix: `in the target's parameters (parameter group, database flags, server parameters) for the sync: log_statement none, log_min_error_statement log or higher, log_min_duration_statement -1 (and no sampling), pg_stat_statements.track_utility off; or GRANT SET ON PARAMETER ${STATEMENT_TEXT_SETTINGS.map((x) => x.name).join(', ')} to the admin`,
      });
  }
  if (!repl && sv.wal !== 'logical') {
    add({
      severity: 'warning',
      check: 'leak check',
      message: `source wal_level is ${sv.wal}: the leak check can only sample sessions`,
      why: 'without logical decoding a write shorter than the 20 ms sampling interval can slip past the check',
      fix: walFix,
    });
  }
  if (repl) {
    if (sv.wal !== 'logical') add({ severity: 'blocker', check: 'wal_level', message: `source wal_level is ${sv.wal}`, why: 'logical replication needs wal_level=logical', fix: walFix });
    if (sv.slots - sv.used < 1)
      add({
        severity: 'blocker',
        check: 'replication slots',
        message: `no free replication slot on the source (${sv.used}/${sv.slots} used)`,
        why: 'the subscription needs one slot',
        fix: 'raise max_replication_slots (restart) or drop an unused slot',
      });
    if (sv.senders < 1) add({ severity: 'blocker', check: 'wal senders', message: 'max_wal_senders is 0 on the source', why: 'the subscription connects through a walsender', fix: 'raise max_wal_senders (restart)' });
    if (tv.workers < 2)
      add({
        severity: 'warning',
        check: 'replication workers',
        message: `max_logical_replication_workers is ${tv.workers} on the target`,
        why: 'the initial copy runs table sync workers beside the apply worker',
        fix: 'raise max_logical_replication_workers to 4 or more',
      });
  }

  const lo = await one<{ n: number; bytes: string }>(src, `SELECT count(*)::int AS n, pg_total_relation_size('pg_largeobject')::text AS bytes FROM pg_largeobject_metadata`);
  // Large objects belong to the database, not a schema: a schema move leaves them out either way.
  if (lo.n > 0 && !ctx.schema)
    add({
      severity: blockIfRepl,
      check: 'large objects',
      message: `${lo.n} large object(s) (${formatBytes(Number(lo.bytes))} in pg_largeobject) in the source database`,
      why: 'logical replication does not carry large objects',
      fix: `use method: dump (it copies them inside the write-blocked window: ${formatBytes(Number(lo.bytes))} more to copy there), or move the large objects into bytea columns first`,
    });
  const unlogged = await src.query<{ t: string }>(`SELECT format('%I.%I', n.nspname, c.relname) AS t ${USER_TABLES} AND c.relpersistence = 'u' ORDER BY 1`, inScope);
  for (const r of unlogged.rows)
    add({
      severity: blockIfRepl,
      check: 'unlogged tables',
      object: r.t,
      message: `table ${r.t} is unlogged`,
      why: 'unlogged tables are not replicated: the target copy would be empty',
      fix: `ALTER TABLE ${r.t} SET LOGGED, or use method: dump`,
    });
  const seqs = await one<{ n: number }>(src, `SELECT count(*)::int AS n FROM pg_sequences WHERE schemaname <> '${TOOL_SCHEMA}' AND ($1::text IS NULL OR schemaname = $1)`, inScope);
  if (seqs.n > 0)
    add({
      severity: 'info',
      check: 'sequences',
      message: `${seqs.n} sequence(s) will be set on the target from the source's last_value plus the gap`,
      why: 'logical replication does not carry sequence values',
      fix: '—',
    });
  const longTx = await src.query<{ pid: number; u: string; age: number }>(
    `SELECT pid, usename AS u, extract(epoch FROM now() - xact_start)::int AS age FROM pg_stat_activity
      WHERE datname = $1 AND xact_start < now() - interval '1 minute' AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
    [database],
  );
  for (const r of longTx.rows)
    add({
      severity: 'warning',
      check: 'long transactions',
      object: `pid ${r.pid}`,
      message: `session ${r.pid} (user ${r.u}) has a transaction open for ${r.age}s`,
      why: 'the fence ends it after the drain timeout; a long transaction also holds back the initial copy snapshot',
      fix: 'let it finish or end it before the cutover',
    });
  const prepared = await src.query<{ gid: string }>(`SELECT gid FROM pg_prepared_xacts WHERE database = $1`, [database]);
  for (const r of prepared.rows)
    add({
      severity: 'blocker',
      check: 'prepared transactions',
      object: r.gid,
      message: `prepared transaction "${r.gid}" is pending`,
      why: 'COMMIT PREPARED could write after the fence: a lost or extra write',
      fix: `COMMIT PREPARED '${r.gid}' or ROLLBACK PREPARED '${r.gid}'`,
    });

  const targetDb = await dst.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [database]);
  if (targetDb.rows.length > 0 && !ctx.targetSyncedByUs) {
    add({ severity: 'info', check: 'target database', message: `database ${database} already exists on the target`, why: 'sync loads the schema into it; it must hold no tables', fix: '—' });
  }
  return f;
}

/** What would keep the subscription's statement text on the target, after this account quiets what it may for its session. */
async function subscriptionLogRisk(dst: PgClient, major: number): Promise<string | undefined> {
  return statementLoggingRisk(await statementTextSettings(dst, { settable: await settableStatementTextSettings(dst, major) }));
}

/** Roles named in roles.passwordEnv that are not login roles of the source: nothing would use that password. */
async function unknownPlanRoleFindings(src: PgClient, named: string[]): Promise<Finding[]> {
  const { rows } = await src.query<{ r: string }>(`SELECT rolname AS r FROM pg_roles WHERE rolcanlogin AND rolname = ANY($1)`, [named]);
  const login = new Set(rows.map((x) => x.r));
  return named
    .filter((r) => !login.has(r))
    .map((r) => ({
      severity: 'warning' as const,
      check: 'role passwords',
      object: r,
      message: `roles.passwordEnv names ${r}, which is not a login role of the source`,
      why: 'sync creates only the source\u2019s roles: this password is never used',
      fix: 'check the role name in roles.passwordEnv, or remove it',
    }));
}

/** Login roles of the source the target lacks: a managed sync creates them without their (unreadable) password. */
async function rolesWithoutPassword(src: PgClient, targetRoleNames: ReadonlySet<string>): Promise<string[]> {
  const { rows } = await src.query<{ r: string }>(`SELECT rolname AS r FROM pg_roles WHERE rolcanlogin AND NOT rolsuper AND rolname !~ '^pg_' AND NOT starts_with(rolname, $1) ORDER BY 1`, [REPLICATION_ACCOUNT_PREFIX]);
  return rows.map((x) => x.r).filter((r) => !targetRoleNames.has(r));
}

/** Tables of the target database or schema (excluding the tool's own): a fresh sync needs none. */
export async function userTableCount(c: PgClient, schema?: string): Promise<number> {
  return (await one<{ n: number }>(c, `SELECT count(*)::int AS n ${USER_TABLES}`, [schema ?? null])).n;
}

/** Quoted names of the plain tables of the database, or of one schema. */
export async function userTables(c: PgClient, schema?: string): Promise<string[]> {
  const { rows } = await c.query<{ t: string }>(`SELECT format('%I.%I', n.nspname, c.relname) AS t ${USER_TABLES} AND c.relkind = 'r' ORDER BY 1`, [schema ?? null]);
  return rows.map((r) => r.t);
}

/** Quoted names of the tables a publication lists (of one schema, or all): partitioned roots carry their partitions. */
export async function publishableTables(c: PgClient, schema?: string): Promise<string[]> {
  const { rows } = await c.query<{ t: string }>(`SELECT format('%I.%I', n.nspname, c.relname) AS t ${USER_TABLES} AND NOT c.relispartition ORDER BY 1`, [schema ?? null]);
  return rows.map((r) => r.t);
}
