import { OperationError } from '../../src/errors.js';
import type { FenceOnResult, FenceOptions, FenceTarget, LeakCheck, PriorState, SessionInfo } from '../../src/readonly/types.js';
import { sleep } from '../../src/util/sleep.js';
import type { PgClient } from './postgres-connection.js';
import type { PgLeakWatch } from './postgres-leak-watch.js';
import type { PgPrior, PgReadOnlyContext } from './postgres-readonly-context.js';
import { lockRoles, unlockRoles } from './postgres-role-locks.js';
import { quoteIdent } from './postgres-sql.js';
import { terminateSessions } from './postgres-sessions.js';

/**
 * PostgreSQL has no per-schema read-only setting, and privileges do not bind table owners or superusers. The
 * schema fence is a statement trigger on every table of the schema that rejects INSERT, UPDATE, DELETE and
 * TRUNCATE with the read-only error (SQLSTATE 25006), for every role:
 *
 * - `fence` (the source): ENABLE ALWAYS, so it fires even under session_replication_role = replica; nothing
 *   but dropping or disabling the trigger (DDL, which the leak check looks for) gets past it.
 * - `hold` (the target until the switch): a plain trigger, so logical replication's apply worker and the
 *   tool's replica-role loads pass, and a session that sets `cutover.writable = on` (the transform) passes.
 *
 * Creating the trigger takes SHARE ROW EXCLUSIVE on the table: it waits for open write transactions (the
 * drain) and lets readers through. Once committed it binds sessions that predate it too, so no session has to
 * be ended for the fence to hold.
 */
export const FENCE_SCHEMA = '_cutover_fence';
export const FENCE_TRIGGER = '_cutover_fence';
export const WRITABLE_GUC = 'cutover.writable';
const REJECT_FN = `${quoteIdent(FENCE_SCHEMA)}.reject_write`;

export type SchemaFenceKind = 'fence' | 'hold';

/** Lock modes a writer (or DDL) holds that SHARE ROW EXCLUSIVE waits for; readers' locks are not among them. */
const WRITE_LOCKS = ['RowExclusiveLock', 'ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'];
const DUPLICATE_OBJECT_CODES = new Set(['23505', '42P06', '42723', 'XX000']);

export interface SchemaTable {
  oid: number;
  /** Quoted, schema-qualified. */
  name: string;
  /** pg_trigger.tgenabled of the fence trigger, or null when the table has none. */
  trigger: string | null;
  argument: SchemaFenceKind | null;
}

export async function schemaExists(c: PgClient, schema: string): Promise<boolean> {
  return (await c.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema])).rows.length > 0;
}

export async function schemaTables(c: PgClient, schema: string): Promise<SchemaTable[]> {
  const { rows } = await c.query<{ oid: number; t: string; enabled: string | null; arg: string | null }>(
    `SELECT c.oid::int AS oid, format('%I.%I', n.nspname, c.relname) AS t, tg.tgenabled::text AS enabled,
            CASE WHEN tg.tgnargs <> 1 THEN NULL ELSE convert_from(substring(tg.tgargs from 1 for length(tg.tgargs) - 1), 'UTF8') END AS arg
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_trigger tg ON tg.tgrelid = c.oid AND tg.tgname = $2
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
      ORDER BY 2`,
    [schema, FENCE_TRIGGER],
  );
  return rows.map((r) => ({ oid: r.oid, name: r.t, trigger: r.enabled, argument: r.arg === 'fence' || r.arg === 'hold' ? r.arg : null }));
}

/**
 * The trigger function, created once per database. Tenants of one database fence side by side: a creator
 * that loses the race on the schema or the function (unique violation, concurrent update) tries again.
 */
async function ensureRejectFunction(c: PgClient): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if ((await c.query(`SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = 'reject_write'`, [FENCE_SCHEMA])).rows.length > 0) return;
    try {
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(FENCE_SCHEMA)}`);
      await c.query(
        `CREATE OR REPLACE FUNCTION ${REJECT_FN}() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
         BEGIN
           IF TG_ARGV[0] = 'hold' AND current_setting('${WRITABLE_GUC}', true) = 'on' THEN RETURN NULL; END IF;
           RAISE EXCEPTION USING ERRCODE = 'read_only_sql_transaction',
             MESSAGE = format('cannot %s %I.%I: schema %I is read-only while it moves to a new server', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_TABLE_SCHEMA),
             HINT = 'retry through the application''s connection alias once the move is done';
         END $fn$`,
      );
      return;
    } catch (e) {
      if (!DUPLICATE_OBJECT_CODES.has((e as { code?: string }).code ?? '') || attempt >= 5) throw e;
      await sleep(20 * attempt);
    }
  }
}

/** Sessions (other than ours and the exempt ones) holding write locks on the tables. */
async function writeLockHolders(c: PgClient, oids: number[], exempt: readonly string[]): Promise<Array<SessionInfo & { pid: number }>> {
  const { rows } = await c.query<{ pid: number; u: string | null; app: string | null; age_ms: string | null }>(
    `SELECT DISTINCT a.pid, a.usename AS u, a.application_name AS app,
            (extract(epoch FROM clock_timestamp() - a.xact_start) * 1000)::bigint::text AS age_ms
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.relation = ANY($1::oid[]) AND l.granted AND l.mode = ANY($2::text[])
        AND l.pid <> pg_backend_pid() AND NOT (a.pid::text = ANY($3::text[]))`,
    [oids, WRITE_LOCKS, exempt],
  );
  return rows.map((r) => ({
    pid: r.pid,
    id: String(r.pid),
    user: r.u ?? '',
    ...(r.app ? { application: r.app } : {}),
    ...(r.age_ms !== null ? { transactionAgeMs: Number(r.age_ms) } : {}),
  }));
}

export interface SchemaFenceOptions {
  kind: SchemaFenceKind;
  /** How long open write transactions on the schema's tables may take to finish. */
  drainTimeoutMs: number;
  /** Bound on the second attempt, after the writers still open were ended. */
  lockTimeoutMs: number;
  /** End the sessions still holding writes after the drain; false: fail instead. */
  endWriters: boolean;
  exempt: readonly string[];
}

export interface SchemaFenceResult {
  tables: string[];
  drained: SessionInfo[];
  terminated: SessionInfo[];
}

const isTimeout = (e: unknown) => ['57014', '55P03'].includes((e as { code?: string }).code ?? '');

/** Puts the fence trigger on every table of the schema in one transaction: all tables or none. Repeatable. */
export async function fenceSchema(c: PgClient, schema: string, o: SchemaFenceOptions): Promise<SchemaFenceResult> {
  await ensureRejectFunction(c);
  const tables = await schemaTables(c, schema);
  const oids = tables.map((t) => t.oid);
  const first = oids.length ? await writeLockHolders(c, oids, o.exempt) : [];
  const terminated: SessionInfo[] = [];
  const attempt = async (timeoutMs: number) => {
    await c.query('BEGIN');
    try {
      await c.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
      if (tables.length) await c.query(`LOCK TABLE ${tables.map((t) => t.name).join(', ')} IN SHARE ROW EXCLUSIVE MODE`);
      // One round trip for every table's trigger (names come from the catalog, quoted by format('%I.%I')).
      const ddl = [`SET LOCAL statement_timeout = 0`, `SET LOCAL client_min_messages = warning`];
      for (const t of tables) {
        ddl.push(`DROP TRIGGER IF EXISTS ${quoteIdent(FENCE_TRIGGER)} ON ${t.name}`);
        ddl.push(`CREATE TRIGGER ${quoteIdent(FENCE_TRIGGER)} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${t.name} FOR EACH STATEMENT EXECUTE FUNCTION ${REJECT_FN}('${o.kind}')`);
        if (o.kind === 'fence') ddl.push(`ALTER TABLE ${t.name} ENABLE ALWAYS TRIGGER ${quoteIdent(FENCE_TRIGGER)}`);
      }
      await c.query(ddl.join(';\n'));
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      throw e;
    }
  };
  try {
    await attempt(o.drainTimeoutMs);
  } catch (e) {
    if (!isTimeout(e)) throw e;
    const holders = await writeLockHolders(c, oids, o.exempt);
    const who = holders.map((h) => `${h.pid} (user ${h.user})`).join(', ') || 'none seen';
    if (!o.endWriters)
      throw new OperationError(`could not fence schema ${schema} within ${o.drainTimeoutMs}ms: sessions hold writes on its tables: ${who}`, 'let them finish, or fence with readOnly.mode enforced (it ends them)');
    const ended = await terminateSessions(
      c,
      holders.map((h) => h.pid),
    );
    for (const h of holders) if (ended.has(h.pid)) terminated.push({ ...stripPid(h), reason: 'write transaction still open after the drain timeout' });
    try {
      await attempt(o.lockTimeoutMs);
    } catch (e2) {
      if (!isTimeout(e2)) throw e2;
      throw new OperationError(`could not fence schema ${schema}: its tables stayed locked after ending ${terminated.length} writer(s) (${who})`, 'find the lock holder in pg_locks and end it, then run again');
    }
  }
  const ended = new Set(terminated.map((t) => t.id));
  const drained = first.filter((h) => !ended.has(h.id)).map((h) => ({ ...stripPid(h), reason: 'write transaction finished within the drain timeout' }));
  return { tables: tables.map((t) => t.name), drained, terminated };
}

function stripPid<T extends { pid: number }>(s: T): Omit<T, 'pid'> {
  const { pid: _pid, ...rest } = s;
  return rest;
}

/** Drops the fence trigger from every table of the schema. Returns the tables it was on. */
export async function unfenceSchema(c: PgClient, schema: string, lockTimeoutMs: number): Promise<string[]> {
  const fenced = (await schemaTables(c, schema)).filter((t) => t.trigger !== null);
  if (fenced.length === 0) return [];
  await c.query('BEGIN');
  try {
    await c.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
    await c.query(fenced.map((t) => `DROP TRIGGER IF EXISTS ${quoteIdent(FENCE_TRIGGER)} ON ${t.name}`).join(';\n'));
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  }
  return fenced.map((t) => t.name);
}

/** The kind of fence the tables carry: a hold if any trigger is a hold's (the argument it was created with). */
export function fenceKindOf(tables: readonly SchemaTable[]): SchemaFenceKind {
  return tables.some((t) => t.argument === 'hold') ? 'hold' : 'fence';
}

/**
 * What would let a write through a fence of this kind: a table without the trigger (created after the
 * fence, or the trigger dropped) or with it disabled or not firing for every session.
 */
export function schemaFenceGaps(tables: readonly SchemaTable[], kind: SchemaFenceKind): SessionInfo[] {
  const want = kind === 'fence' ? 'A' : 'O';
  const gaps: SessionInfo[] = [];
  for (const t of tables) {
    if (t.trigger === null) gaps.push({ id: `table:${t.name}`, user: '', reason: `table ${t.name} has no fence trigger (created after the fence, or the trigger was dropped)` });
    else if (t.trigger !== want && !(kind === 'hold' && t.trigger === 'A'))
      gaps.push({ id: `table:${t.name}`, user: '', reason: `the fence trigger on ${t.name} is ${t.trigger === 'D' ? 'disabled' : `enabled as '${t.trigger}'`}` });
  }
  return gaps;
}

const SCHEMA_CHECK_MS = 100;

/**
 * The read-only adapter's schema scope: the fence trigger on every table (advisory: the `hold` kind that
 * replication and an explicit `cutover.writable` pass). Sessions that predate it are bound too, so none is
 * ended but open writers.
 */
export async function applySchemaScopeFence(c: PgReadOnlyContext, watch: PgLeakWatch, target: FenceTarget, opts: FenceOptions, prior: PriorState) {
  const lockedRoles = await lockRoles(c, prior);
  const kind = opts.mode === 'advisory' ? 'hold' : 'fence';
  const r = await c.on(`fencing schema "${target.name}"`, () =>
    fenceSchema(c.client, target.name!, { kind, drainTimeoutMs: opts.drainTimeoutMs, lockTimeoutMs: opts.lockTimeoutMs, endWriters: opts.mode !== 'advisory', exempt: opts.exemptSessions ?? [] }),
  );
  const warnings: string[] = [];
  if (r.tables.length === 0) warnings.push(`schema "${target.name}" has no tables: nothing to fence (tables created later are not fenced)`);
  if (kind === 'hold') warnings.push(`advisory schema fence: sessions with session_replication_role = replica or ${WRITABLE_GUC} = on still write (use --mode enforced)`);
  const leakCheck = await watch.watch(target, opts.exemptSessions ?? [], opts.probeMs, Promise.resolve());
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

export async function restoreSchemaScopeFence(c: PgReadOnlyContext, target: FenceTarget, prior: PriorState | undefined, lockTimeoutMs: number) {
  const lifted = await c.on(`lifting the fence of schema "${target.name}"`, () => unfenceSchema(c.client, target.name!, lockTimeoutMs));
  const unlockedRoles = prior ? await unlockRoles(c, prior as PgPrior) : [];
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

/**
 * The schema fence rejects every write synchronously, so what can leak is a gap in it: a table created
 * after the fence, or the trigger dropped or disabled. Checked through the watch and once more at its end.
 */
export async function watchSchemaFence(c: PgClient, schema: string, started: number, minMs: number, done: () => boolean): Promise<LeakCheck> {
  const gaps = new Map<string, SessionInfo>();
  const check = async () => {
    const tables = await schemaTables(c, schema);
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
