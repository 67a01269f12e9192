import { randomUUID } from 'node:crypto';
import { BudgetExceededError } from '../../src/errors.js';
import type { Leftover, SyncProgress } from '../../src/engine/cutover-adapter.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { sleep } from '../../src/util/sleep.js';
import type { PgClient } from './postgres-connection.js';
import { withoutStatementLogging } from './postgres-statement-logging.js';
import { quoteIdent, quoteLiteral } from './postgres-sql.js';
import { conninfo } from './postgres-tools.js';

/** The tool's own schema on both sides: the sentinel table lives there and is part of the publication. */
export const TOOL_SCHEMA = '_cutover';

/**
 * What one plan moves: a whole database (one sentinel table, publication FOR ALL TABLES) or one schema of a
 * database that other schemas' plans share (a sentinel table per plan, a publication of the schema's tables):
 * a subscription must not receive another plan's sentinel rows.
 */
export interface PgMoveScope {
  schema?: string;
  /** Quoted, qualified sentinel table. */
  sentinel: string;
}

export function moveScope(name: string, schema?: string): PgMoveScope {
  return schema ? { schema, sentinel: `${quoteIdent(TOOL_SCHEMA)}.${quoteIdent(name)}` } : { sentinel: `${quoteIdent(TOOL_SCHEMA)}.sentinel` };
}

/** Concurrent plans of one database race to create the shared tool schema: losing that race is fine. */
const ALREADY_EXISTS = new Set(['23505', '42P06', '42P07']);

/** Names of the replication objects one plan creates (slot names allow [a-z0-9_] only). */
export function replicationName(planId: string): string {
  return `cutover_${planId.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

export async function createSentinel(c: PgClient, scope: PgMoveScope): Promise<void> {
  for (const sql of [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(TOOL_SCHEMA)}`,
    `CREATE TABLE IF NOT EXISTS ${scope.sentinel} (id int PRIMARY KEY, token text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  ]) {
    await c.query(sql).catch((e: { code?: string }) => {
      if (!ALREADY_EXISTS.has(e.code ?? '')) throw e;
    });
  }
}

export async function sentinelExists(c: PgClient, scope: PgMoveScope): Promise<boolean> {
  return (await c.query<{ r: string | null }>(`SELECT to_regclass($1)::text AS r`, [scope.sentinel])).rows[0]?.r != null;
}

/** Method dump builds indexes and constraints once, after the first data load; a row in the tool's table remembers it. */
const POST_DATA_MARKER_ID = 2;

export async function postDataApplied(dst: PgClient, scope: PgMoveScope): Promise<boolean> {
  return (await dst.query(`SELECT 1 FROM ${scope.sentinel} WHERE id = $1`, [POST_DATA_MARKER_ID])).rows.length > 0;
}

export async function markPostDataApplied(dst: PgClient, scope: PgMoveScope): Promise<void> {
  await dst.query(`INSERT INTO ${scope.sentinel} (id, token) VALUES ($1, 'post-data applied') ON CONFLICT (id) DO NOTHING`, [POST_DATA_MARKER_ID]);
}

/**
 * `tables`: the tables to publish (schema scope, or a database with tables left out); none: FOR ALL TABLES.
 * The sentinel's first row is committed before, so every copy of the data carries it.
 */
export async function ensurePublication(src: PgClient, name: string, scope: PgMoveScope, tables: readonly string[] = []): Promise<void> {
  await src.query(`INSERT INTO ${scope.sentinel} (id, token) VALUES (1, 'sync') ON CONFLICT (id) DO NOTHING`);
  const pub = await src.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [name]);
  if (pub.rows.length === 0) {
    // Table names come from the catalog already quoted by format('%I.%I').
    await src.query(`CREATE PUBLICATION ${quoteIdent(name)} FOR ${scope.schema || tables.length ? `TABLE ${[scope.sentinel, ...tables].join(', ')}` : 'ALL TABLES'}`);
  }
}

export async function subscriptionExists(dst: PgClient, name: string): Promise<boolean> {
  return (await dst.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [name])).rows.length > 0;
}

/**
 * The subscription `name` on the target, unless it exists. `link` gives the endpoint it connects with (its
 * replication account). `fromSlot`: the slot exists already and the data was copied under its snapshot, so the
 * subscription copies nothing and streams from the slot's consistent point; otherwise it makes the slot and
 * copies every table itself.
 */
export async function ensureSubscription(dst: PgClient, link: () => Promise<DbEndpoint>, database: string, name: string, fromSlot: boolean): Promise<void> {
  if (await subscriptionExists(dst, name)) return;
  const source = await link();
  const options = fromSlot ? 'create_slot = false, copy_data = false' : 'copy_data = true';
  await withoutStatementLogging(dst, () =>
    dst.query(
      `CREATE SUBSCRIPTION ${quoteIdent(name)} CONNECTION ${quoteLiteral(conninfo(source, database, true))}
         PUBLICATION ${quoteIdent(name)} WITH (slot_name = ${quoteLiteral(name)}, ${options})`,
    ),
  );
}

/** Publication, then a subscription that makes its slot and copies every table (PostgreSQL's own initial sync). */
export async function startReplication(src: PgClient, dst: PgClient, link: () => Promise<DbEndpoint>, database: string, name: string, scope: PgMoveScope, tables: readonly string[] = []): Promise<void> {
  await ensurePublication(src, name, scope, tables);
  await ensureSubscription(dst, link, database, name, false);
}

/** Whether the source has the logical slot `name`. */
export async function slotExists(src: PgClient, name: string): Promise<boolean> {
  return (await src.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [name])).rows.length > 0;
}

interface RelState {
  table: string;
  state: string;
  bytes: number;
}

/** Waits until the initial copy of every table is done (pg_subscription_rel 'r'): before that, lag means nothing. */
export async function waitTablesReady(src: PgClient, dst: PgClient, name: string, progress: SyncProgress, timeoutMs: number): Promise<{ tables: number; bytes: number }> {
  const sizes = new Map(
    (
      await src.query<{ t: string; b: string }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS t, pg_total_relation_size(c.oid)::text AS b
           FROM pg_publication_tables p JOIN pg_namespace n ON n.nspname = p.schemaname
           JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
          WHERE p.pubname = $1`,
        [name],
      )
    ).rows.map((r) => [r.t, Number(r.b)]),
  );
  const totalBytes = [...sizes.values()].reduce((a, b) => a + b, 0);
  const started = Date.now();
  let lastDone = -1;
  for (;;) {
    const { rows } = await dst.query<{ t: string; s: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS t, r.srsubstate AS s
         FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
         JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE s.subname = $1`,
      [name],
    );
    const rels: RelState[] = rows.map((r) => ({ table: r.t, state: r.s, bytes: sizes.get(r.t) ?? 0 }));
    const done = rels.filter((r) => r.state === 'r' || r.state === 's');
    const bytesDone = done.reduce((a, r) => a + r.bytes, 0);
    if (done.length !== lastDone) {
      lastDone = done.length;
      const elapsed = Date.now() - started;
      const etaMs = bytesDone > 0 && bytesDone < totalBytes ? Math.round((elapsed / bytesDone) * (totalBytes - bytesDone)) : undefined;
      const copying = rels.filter((r) => r.state === 'd' || r.state === 'i' || r.state === 'f').map((r) => r.table);
      progress({
        phase: 'copy',
        message: `initial copy ${done.length}/${rels.length} tables${copying.length ? ` (copying ${copying.slice(0, 3).join(', ')})` : ''}`,
        tablesDone: done.length,
        tablesTotal: rels.length,
        bytesDone,
        bytesTotal: totalBytes,
        ...(etaMs !== undefined ? { etaMs } : {}),
      });
    }
    if (rels.length > 0 && done.length === rels.length) return { tables: rels.length, bytes: totalBytes };
    if (Date.now() - started > timeoutMs) throw new Error(`initial copy not finished after ${Math.round(timeoutMs / 1000)}s (${done.length}/${rels.length} tables ready)`);
    await sleep(100);
  }
}

/** Bytes of WAL the subscriber has not confirmed. */
export async function slotLagBytes(src: PgClient, name: string): Promise<number | null> {
  const { rows } = await src.query<{ lag: string | null }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text AS lag FROM pg_replication_slots WHERE slot_name = $1`, [name]);
  return rows[0]?.lag == null ? null : Math.max(0, Number(rows[0].lag));
}

/**
 * Catch-up proof: capture the source's WAL position after the fence, then commit a sentinel from the tool's own
 * session. Logical replication applies commits in commit order, so once the target shows the sentinel it has
 * every transaction committed before it — all of them, up to and past the fence position.
 */
export async function proveCaughtUp(src: PgClient, dst: PgClient, deadline: number, scope: PgMoveScope): Promise<{ fencePosition: string; proofPosition: string; waitedMs: number }> {
  // The insert position, not the write position: a commit already in WAL buffers (asynchronous commit) is before it.
  // CDC consumers stop reading the source here, so every commit before the sentinel must be at or before it.
  const fencePosition = (await src.query<{ l: string }>(`SELECT pg_current_wal_insert_lsn()::text AS l`)).rows[0]!.l;
  const token = randomUUID();
  await src.query('BEGIN READ WRITE');
  await src.query(`UPDATE ${scope.sentinel} SET token = $1, at = clock_timestamp() WHERE id = 1`, [token]);
  await src.query('COMMIT');
  const proofPosition = (await src.query<{ l: string }>(`SELECT pg_current_wal_lsn()::text AS l`)).rows[0]!.l;
  const started = Date.now();
  for (;;) {
    const { rows } = await dst.query<{ token: string }>(`SELECT token FROM ${scope.sentinel} WHERE id = 1`);
    if (rows[0]?.token === token) return { fencePosition, proofPosition, waitedMs: Date.now() - started };
    if (Date.now() >= deadline) {
      throw new BudgetExceededError(
        `the target did not catch up to the fence position ${fencePosition} within the write-downtime budget (waited ${Date.now() - started}ms)`,
        'raise limits.maxWriteBlocked, or fence when the lag is lower (limits.maxLagBeforeFence)',
      );
    }
    await sleep(2);
  }
}

/**
 * Disables the subscription and waits for its apply worker to exit, then returns the source commit position it
 * applied through: the replication origin records the end of the last remote commit it applied, the same
 * position logical decoding reports for that commit. Undefined when the subscription or its origin is gone, or
 * the account may not read the origin's status.
 */
export async function stopApplying(dst: PgClient, name: string, timeoutMs: number): Promise<string | undefined> {
  const sub = await dst.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [name]);
  if (sub.rows.length === 0) return undefined;
  await dst.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} DISABLE`);
  const deadline = Date.now() + timeoutMs;
  // A disabled subscription's worker notices only when it next wakes: with a fenced source sending nothing, that
  // can be the end of its apply loop's 1 s nap. Ended now instead: everything committed
  // before the fence is applied (the catch-up proved it), so at most a late write after the fence is cut off, and
  // the origin's position read below says which ones made it. Not allowed (another owner): it is waited for.
  const workers = async () => (await dst.query<{ pid: number }>(`SELECT pid FROM pg_stat_subscription WHERE subname = $1 AND pid IS NOT NULL`, [name])).rows;
  let running = await workers();
  for (const w of running) await dst.query(`SELECT pg_terminate_backend($1)`, [w.pid]).catch(() => {});
  while (running.length > 0) {
    if (Date.now() > deadline) return undefined;
    await sleep(2);
    running = await workers();
  }
  // The origin's status is superuser-only by default: a managed admin gets undefined, and the late leak check
  // then tells replicated from source-only commits by the last sentinel instead.
  const allowed = await dst.query<{ ok: boolean }>(`SELECT has_function_privilege('pg_show_replication_origin_status()', 'EXECUTE') AS ok`);
  if (!allowed.rows[0]?.ok) return undefined;
  const { rows } = await dst.query<{ l: string | null }>(
    `SELECT o.remote_lsn::text AS l FROM pg_replication_origin_status o
       JOIN pg_replication_origin r ON r.roident = o.local_id
       JOIN pg_subscription s ON r.roname = 'pg_' || s.oid
      WHERE s.subname = $1`,
    [name],
  );
  return rows[0]?.l ?? undefined;
}

/** Stops the subscription without touching the source (the slot is dropped from the source side). */
export async function dropSubscription(dst: PgClient, name: string): Promise<boolean> {
  const sub = await dst.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [name]);
  if (sub.rows.length === 0) return false;
  await dst.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} DISABLE`);
  await dst.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} SET (slot_name = NONE)`);
  await dst.query(`DROP SUBSCRIPTION ${quoteIdent(name)}`);
  return true;
}

/** Drops the slot (once its walsender has let go) and the publication. */
export async function dropPublisherSide(src: PgClient, name: string): Promise<string[]> {
  const dropped: string[] = [];
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await src.query<{ active: boolean; pid: number | null }>(`SELECT active, active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1`, [name]);
    if (rows.length === 0) break;
    if (!rows[0]!.active) {
      await src.query(`SELECT pg_drop_replication_slot($1)`, [name]);
      dropped.push(`replication slot ${name}`);
      break;
    }
    if (Date.now() > deadline && rows[0]!.pid) await src.query(`SELECT pg_terminate_backend($1)`, [rows[0]!.pid]);
    await sleep(50);
  }
  const pub = await src.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [name]);
  if (pub.rows.length > 0) {
    await src.query(`DROP PUBLICATION ${quoteIdent(name)}`);
    dropped.push(`publication ${name}`);
  }
  return dropped;
}

/**
 * Drops what the plan keeps in the tool schema: the whole schema for a database move, only its sentinel table
 * for a schema move (other schemas' plans may still use theirs; the schema goes with the last one).
 */
export async function dropToolObjects(c: PgClient, scope: PgMoveScope): Promise<string | undefined> {
  const r = await c.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [TOOL_SCHEMA]);
  if (r.rows.length === 0) return undefined;
  if (!scope.schema) {
    await c.query(`DROP SCHEMA ${quoteIdent(TOOL_SCHEMA)} CASCADE`);
    return `schema ${TOOL_SCHEMA}`;
  }
  if (!(await sentinelExists(c, scope))) return undefined;
  await c.query(`DROP TABLE IF EXISTS ${scope.sentinel}`);
  const left = await c.query(`SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 LIMIT 1`, [TOOL_SCHEMA]);
  // DROP SCHEMA without CASCADE fails if a concurrent plan just created its table there: that plan keeps it.
  if (left.rows.length === 0) await c.query(`DROP SCHEMA IF EXISTS ${quoteIdent(TOOL_SCHEMA)}`).catch(() => {});
  return `table ${scope.sentinel}`;
}

export async function replicationLeftovers(src: PgClient, dst: PgClient, name: string): Promise<Leftover[]> {
  const out: Leftover[] = [];
  const slot = await src.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [name]);
  if (slot.rows.length) out.push({ where: 'source', kind: 'replication slot', name, drop: `SELECT pg_drop_replication_slot('${name}');`, retainsWal: true });
  const pub = await src.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [name]);
  if (pub.rows.length) out.push({ where: 'source', kind: 'publication', name, drop: `DROP PUBLICATION ${quoteIdent(name)};`, retainsWal: false });
  const sub = await dst.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [name]);
  if (sub.rows.length) {
    out.push({
      where: 'target',
      kind: 'subscription',
      name,
      drop: `ALTER SUBSCRIPTION ${quoteIdent(name)} DISABLE; ALTER SUBSCRIPTION ${quoteIdent(name)} SET (slot_name = NONE); DROP SUBSCRIPTION ${quoteIdent(name)};`,
      retainsWal: false,
    });
  }
  return out;
}
