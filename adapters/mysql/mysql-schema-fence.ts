import type { RowDataPacket } from 'mysql2/promise';
import { UsageError } from '../../src/errors.js';
import type { FenceOptions, LeakCheck, SessionInfo } from '../../src/readonly/types.js';
import { sleep } from '../../src/util/sleep.js';
import { formatDuration } from '../../src/util/units.js';
import { currentAccount, resolveAccounts } from './mysql-accounts.js';
import { flavorLabel, type MysqlFlavor } from './mysql-flavor.js';
import { binlogCoordinates, encodePosition } from './mysql-position.js';
import type { MysqlPrior, MysqlReadOnlyContext } from './mysql-readonly-context.js';
import { INNODB_TRX_CACHE_MS, clientSessions, killSessions, publicSession, runningStatements, waitStatementsEnd, type MysqlSession, type Query } from './mysql-sessions.js';
import {
  COLUMN_WRITE_PRIVILEGES,
  SCHEMA_WRITE_PRIVILEGES,
  TABLE_WRITE_PRIVILEGES,
  binlogEventTouchesSchema,
  grantName,
  granteeLabel,
  informationSchemaGrantee,
  namesSchemaExactly,
  restoreGrantSql,
  revokeGrantSql,
  type Grantee,
  type HeldGrant,
} from './mysql-schema-fence-sql.js';
import { accountLabel, quoteString, type Account } from './mysql-sql.js';
import { mysqlErrno } from './mysql-connection.js';

/** What one named account held on the schema before the fence: `off` grants back exactly this. */
export interface RevokedGrants {
  grantee: Grantee;
  held: HeldGrant[];
}

/** Keyed by account label (`app@%`, or `wr@` for a MariaDB role). */
export type SchemaFencePrior = Record<string, RevokedGrants>;

const POLL_MS = INNODB_TRX_CACHE_MS;
const BINLOG_PAGE = 5000;
const ER_NONEXISTING_GRANT = 1141;
const ER_NONEXISTING_TABLE_GRANT = 1147;

const isWrite = (list: readonly string[]) => (p: string) => list.includes(grantName(p) as never);

/** A --role account resolved from mysql.user: MariaDB roles are the rows with an empty host. */
export function granteeOf(a: Account, f: MysqlFlavor): Grantee {
  return f.kind === 'mariadb' && a.host === '' ? { kind: 'role', name: a.user } : { kind: 'account', ...a };
}

/** Reads the write grants one account holds on the schema: schema-level rows naming it exactly, tables, columns. */
export async function heldWriteGrants(q: Query, g: Grantee, schema: string): Promise<HeldGrant[]> {
  const grantee = informationSchemaGrantee(g);
  const held: HeldGrant[] = [];
  const sp = await q<RowDataPacket & { s: string; p: string }>(
    `SELECT TABLE_SCHEMA AS s, PRIVILEGE_TYPE AS p FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? ORDER BY TABLE_SCHEMA, PRIVILEGE_TYPE`,
    [grantee],
    `reading schema privileges of ${granteeLabel(g)}`,
  );
  const byPattern = new Map<string, string[]>();
  for (const r of sp) {
    if (!namesSchemaExactly(r.s, schema) || !isWrite(SCHEMA_WRITE_PRIVILEGES)(r.p)) continue;
    byPattern.set(r.s, [...(byPattern.get(r.s) ?? []), grantName(r.p)]);
  }
  for (const [pattern, privileges] of byPattern) held.push({ level: 'schema', pattern, privileges });

  const tp = await q<RowDataPacket & { t: string; p: string }>(
    `SELECT TABLE_NAME AS t, PRIVILEGE_TYPE AS p FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ? ORDER BY TABLE_NAME, PRIVILEGE_TYPE`,
    [grantee, schema],
    `reading table privileges of ${granteeLabel(g)}`,
  );
  const byTable = new Map<string, string[]>();
  for (const r of tp) if (isWrite(TABLE_WRITE_PRIVILEGES)(r.p)) byTable.set(r.t, [...(byTable.get(r.t) ?? []), grantName(r.p)]);
  for (const [table, privileges] of byTable) held.push({ level: 'table', schema, table, privileges });

  const cp = await q<RowDataPacket & { t: string; c: string; p: string }>(
    `SELECT TABLE_NAME AS t, COLUMN_NAME AS c, PRIVILEGE_TYPE AS p FROM information_schema.COLUMN_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ? ORDER BY TABLE_NAME, PRIVILEGE_TYPE, COLUMN_NAME`,
    [grantee, schema],
    `reading column privileges of ${granteeLabel(g)}`,
  );
  const byColumn = new Map<string, { table: string; privilege: string; columns: string[] }>();
  for (const r of cp) {
    if (!isWrite(COLUMN_WRITE_PRIVILEGES)(r.p)) continue;
    const key = JSON.stringify([r.t, grantName(r.p)]);
    const entry = byColumn.get(key) ?? { table: r.t, privilege: grantName(r.p), columns: [] };
    entry.columns.push(r.c);
    byColumn.set(key, entry);
  }
  for (const e of byColumn.values()) held.push({ level: 'column', schema, ...e });
  return held;
}

/** Write privileges on `*.*`, or on a wildcard pattern covering the schema: no schema-level revoke removes them. */
async function writesBeyondSchema(q: Query, g: Grantee, schema: string): Promise<string[]> {
  const grantee = informationSchemaGrantee(g);
  const out: string[] = [];
  const global = await q<RowDataPacket & { p: string }>(`SELECT PRIVILEGE_TYPE AS p FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?`, [grantee], `reading global privileges of ${granteeLabel(g)}`);
  const globalWrites = global.map((r) => grantName(r.p)).filter(isWrite(SCHEMA_WRITE_PRIVILEGES));
  if (globalWrites.length > 0) out.push(`${globalWrites.join(', ')} ON *.*`);
  const wild = await q<RowDataPacket & { s: string; p: string }>(
    `SELECT TABLE_SCHEMA AS s, PRIVILEGE_TYPE AS p FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND ? LIKE TABLE_SCHEMA`,
    [grantee, schema],
    `reading wildcard schema privileges of ${granteeLabel(g)}`,
  );
  const byPattern = new Map<string, string[]>();
  for (const r of wild) if (!namesSchemaExactly(r.s, schema) && isWrite(SCHEMA_WRITE_PRIVILEGES)(r.p)) byPattern.set(r.s, [...(byPattern.get(r.s) ?? []), grantName(r.p)]);
  for (const [pattern, privileges] of byPattern) out.push(`${privileges.join(', ')} ON \`${pattern}\`.*`);
  return out;
}

/** MariaDB roles an account can SET ROLE to, directly or through other roles. */
async function rolesOf(q: Query, a: Account, f: MysqlFlavor): Promise<string[]> {
  if (f.kind !== 'mariadb') return [];
  const mapping = await q<RowDataPacket & { user: string; host: string; role: string }>(`SELECT User AS user, Host AS host, Role AS role FROM mysql.roles_mapping`, [], 'reading role grants');
  const found = new Set<string>();
  const queue = mapping.filter((m) => m.user === a.user && m.host === a.host).map((m) => m.role);
  while (queue.length > 0) {
    const role = queue.shift()!;
    if (found.has(role)) continue;
    found.add(role);
    for (const m of mapping) if (m.host === '' && m.user === role) queue.push(m.role);
  }
  return [...found];
}

/** Accounts that will still be able to write to the schema after the revoke, and why. */
export interface StillWriting {
  label: string;
  user: string;
  why: string;
}

/**
 * For each named account: what it holds on the schema (to revoke), and whatever the revoke cannot take away
 * (global or wildcard grants, roles that carry writes). Roles are reported, not changed: other accounts share
 * them; naming the role itself with --role revokes from the role.
 */
export async function captureSchemaFence(q: Query, f: MysqlFlavor, schema: string, accounts: Account[]): Promise<{ prior: SchemaFencePrior; stillWriting: StillWriting[] }> {
  const prior: SchemaFencePrior = {};
  const stillWriting: StillWriting[] = [];
  for (const a of accounts) {
    const grantee = granteeOf(a, f);
    prior[accountLabel(a)] = { grantee, held: await heldWriteGrants(q, grantee, schema) };
    for (const beyond of await writesBeyondSchema(q, grantee, schema)) {
      stillWriting.push({ label: granteeLabel(grantee), user: a.user, why: `holds ${beyond}` });
    }
    if (grantee.kind === 'role') continue;
    for (const role of await rolesOf(q, a, f)) {
      const viaRole: Grantee = { kind: 'role', name: role };
      const carries = [...(await heldWriteGrants(q, viaRole, schema)).map(describeHeld), ...(await writesBeyondSchema(q, viaRole, schema))];
      if (carries.length > 0)
        stillWriting.push({ label: granteeLabel(grantee), user: a.user, why: `can SET ROLE ${role}, which holds ${carries.join('; ')} (pass --role ${role} to revoke from the role, for every account that has it)` });
    }
  }
  return { prior, stillWriting };
}

/**
 * Schema scope on a server without ALTER SCHEMA ... READ ONLY: only strict mode can fence it, by revoking the
 * named accounts' write privileges on the schema until `off`.
 */
export async function captureSchemaGrants(c: MysqlReadOnlyContext, name: string, opts: FenceOptions): Promise<MysqlPrior> {
  if (opts.mode !== 'strict' || opts.roles.length === 0) {
    throw new UsageError(
      `${flavorLabel(c.flavor)} has no schema-level read-only (ALTER SCHEMA ... READ ONLY needs MySQL 8.0.22+)`,
      `use mode strict with the app accounts as roles (readOnly.mode/roles in the plan, or --mode strict --role <app account>, repeatable) to revoke their write privileges on schema ${name} until \`off\`, or fence the whole server (readOnly.scope: server, or --scope server)`,
    );
  }
  const rows = await c.q(`SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, [name], 'looking up the schema');
  if (rows.length === 0) throw new UsageError(`schema "${name}" does not exist at ${c.where}`, 'check readOnly.name in the plan (or --name)');
  const me = accountLabel(await currentAccount(c.q));
  const accounts = await resolveAccounts(c.q, opts.roles, c.where);
  if (accounts.some((a) => accountLabel(a) === me))
    throw new UsageError(`refusing to revoke privileges of account ${me}: the tool itself connects as it`, 'connect as another administrative account or drop it from readOnly.roles (or --role)');
  const { prior, stillWriting } = await captureSchemaFence(c.q, c.flavor, name, accounts);
  return { flavor: c.flavor.kind, roles: {}, schemaGrants: prior, stillWriting };
}

export function describeHeld(g: HeldGrant): string {
  if (g.level === 'global') return `${g.privileges.join(', ')} ON *.*`;
  if (g.level === 'schema') return `${g.privileges.join(', ')} ON \`${g.pattern}\`.*`;
  if (g.level === 'table') return `${g.privileges.join(', ')} ON \`${g.schema}\`.\`${g.table}\``;
  return `${g.privilege} (${g.columns.join(', ')}) ON \`${g.schema}\`.\`${g.table}\``;
}

export interface SchemaFenceOptions {
  schema: string;
  drainTimeoutMs: number;
  probeMs: number;
  exempt: readonly string[];
  /** Where the binary log position is read (8.4 has only SHOW BINARY LOG STATUS). */
  flavor: Pick<MysqlFlavor, 'binlogStatusSql'>;
}

export interface SchemaFenceApplied {
  /** The binary log position once the fence was in place (encodePosition), where a leak check starts reading. */
  fencePosition?: string;
  revoked: string[];
  drained: SessionInfo[];
  terminated: SessionInfo[];
  warnings: string[];
  leakCheck: LeakCheck;
}

/**
 * Revokes, then ends the named accounts' sessions that could still write: a session whose current database is
 * the schema keeps the privileges it had at `USE` time (measured on MariaDB 10.11: it inserted after the
 * REVOKE, while a new session got error 1142), and a transaction that already changed rows can still commit.
 */
export async function applySchemaFence(q: Query, prior: SchemaFencePrior, stillWriting: StillWriting[], o: SchemaFenceOptions): Promise<SchemaFenceApplied> {
  const warnings = stillWriting.map((s) => `${s.label} can still write to schema ${o.schema} after the revoke: it ${s.why}; the leak check fails if it does`);
  const revoked: string[] = [];
  for (const [label, r] of Object.entries(prior)) {
    for (const g of r.held) {
      try {
        await q(revokeGrantSql(r.grantee, g), [], `revoking ${describeHeld(g)} from ${label}`);
      } catch (e) {
        // A second `on` finds the recorded grants already revoked: that is the state it wants.
        const errno = mysqlErrno(e);
        if (errno !== ER_NONEXISTING_GRANT && errno !== ER_NONEXISTING_TABLE_GRANT) throw e;
      }
    }
    if (r.held.length > 0) revoked.push(label);
    else warnings.push(`${label} held no write privileges on schema ${o.schema}: nothing revoked`);
  }
  const users = [...new Set(Object.values(prior).flatMap((r) => (r.grantee.kind === 'account' ? [r.grantee.user] : [])))];
  const exempt = o.exempt;
  // Statements already past their privilege check can still write after the revoke (a CI run caught one
  // committing after the fence position); the position is read only once each has ended.
  const inFlight = await runningStatements(q, users, exempt);
  await sleep(POLL_MS);
  const first = await clientSessions(q, { writingOnly: true, users, exempt });
  let writers = first;
  const deadline = Date.now() + o.drainTimeoutMs;
  while (writers.length > 0 && Date.now() < deadline) {
    await sleep(POLL_MS);
    writers = await clientSessions(q, { writingOnly: true, users, exempt });
  }
  const drained: SessionInfo[] = [];
  const still = new Set(writers.map((w) => w.threadId));
  for (const w of first) if (!still.has(w.threadId)) drained.push(publicSession(w, 'write transaction ended within the drain timeout'));
  const toEnd = new Map<string, { s: MysqlSession; reason: string }>();
  const sessions = await clientSessions(q, { users, exempt });
  for (const s of sessions) {
    if (s.database === o.schema) toEnd.set(s.threadId, { s, reason: `current database is ${o.schema}: keeps the privileges it had before the revoke` });
  }
  for (const s of writers) toEnd.set(s.threadId, { s, reason: `write transaction (${s.rowsModified} row(s) changed) still open after the ${formatDuration(o.drainTimeoutMs)} drain timeout: it could commit` });
  // A statement still running was running when the sessions above were listed: it is among them.
  const stuck = new Set(await waitStatementsEnd(q, inFlight, deadline));
  for (const s of sessions)
    if (stuck.has(s.threadId) && !toEnd.has(s.threadId))
      toEnd.set(s.threadId, { s, reason: `statement begun before the revoke still running after the ${formatDuration(o.drainTimeoutMs)} drain timeout: it could write` });
  const ended = await killSessions(q, [...toEnd.keys()]);
  const terminated: SessionInfo[] = [];
  for (const { s, reason } of toEnd.values()) {
    if (ended.has(s.threadId)) terminated.push(publicSession(s, reason));
    else warnings.push(`session ${s.threadId} (user ${s.user}) could not be killed`);
  }
  const at = await binlogCoordinates(q, o.flavor);
  const leakCheck = await schemaLeakCheck(q, o.flavor, o.schema, o.probeMs, [...new Set(stillWriting.map((s) => s.user))], exempt, warnings, Promise.resolve(), at);
  return { ...(at ? { fencePosition: encodePosition({ gtid: '', ...at }) } : {}), revoked, drained, terminated, warnings, leakCheck };
}

/** Grants back exactly what was recorded; accounts or roles dropped meanwhile are reported, not recreated. */
export async function restoreSchemaFence(q: Query, prior: SchemaFencePrior): Promise<{ regranted: string[]; warnings: string[] }> {
  const regranted: string[] = [];
  const warnings: string[] = [];
  for (const [label, r] of Object.entries(prior)) {
    try {
      for (const g of r.held) await q(restoreGrantSql(r.grantee, g), [], `granting ${describeHeld(g)} back to ${label}`);
      if (r.held.length > 0) regranted.push(label);
    } catch (e) {
      const errno = mysqlErrno(e);
      // 1133: no such user, 1146: table gone, 1959: no such role.
      if (errno !== 1133 && errno !== 1146 && errno !== 1959) throw e;
      warnings.push(`could not give ${label} its privileges back: ${(e as Error).message}`);
    }
  }
  return { regranted, warnings };
}

interface TableRow extends RowDataPacket {
  t: string;
  type: string;
  engine: string | null;
  created: string | null;
  updated: string | null;
}

/**
 * A cheap fingerprint of the schema's tables: the table list with engine, CREATE_TIME (moves on DDL) and
 * UPDATE_TIME (moves on commit, whole seconds). No table data is read.
 */
async function tableFingerprint(q: Query, schema: string): Promise<Map<string, string>> {
  const rows = await q<TableRow>(
    `SELECT TABLE_NAME AS t, TABLE_TYPE AS type, ENGINE AS engine, CREATE_TIME AS created, UPDATE_TIME AS updated FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`,
    [schema],
    'reading table metadata',
  );
  return new Map(rows.map((r) => [r.t, JSON.stringify([r.type, r.engine, r.created, r.updated])]));
}

function changedTables(before: Map<string, string>, after: Map<string, string>): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((n) => before.get(n) !== after.get(n)).sort();
}

interface BinlogPos {
  file: string;
  pos: number;
}

/** Counts binary log events between two positions that wrote to the schema (one file, or across a rotation). */
async function schemaEventsBetween(q: Query, from: BinlogPos, to: BinlogPos, schema: string): Promise<number> {
  const logs = await q<RowDataPacket & { Log_name: string }>(`SHOW BINARY LOGS`, [], 'listing binary logs');
  const names = logs.map((l) => l.Log_name);
  const files = names.slice(Math.max(0, names.indexOf(from.file)), names.indexOf(to.file) + 1);
  let hits = 0;
  for (const file of files.length > 0 ? files : [from.file]) {
    const start = file === from.file ? from.pos : 4;
    for (let offset = 0; ; offset += BINLOG_PAGE) {
      // SHOW BINLOG EVENTS takes no parameters: the file name is quoted, the numbers are integers.
      const events = await q<RowDataPacket & { Event_type: string; Info: string; End_log_pos: number }>(
        `SHOW BINLOG EVENTS IN ${quoteString(file)} FROM ${Math.trunc(start)} LIMIT ${offset}, ${BINLOG_PAGE}`,
        [],
        'reading the binary log',
      );
      for (const e of events) if (binlogEventTouchesSchema(e.Event_type, String(e.Info ?? ''), schema)) hits++;
      const last = events[events.length - 1];
      if (events.length < BINLOG_PAGE || (file === to.file && last && Number(last.End_log_pos) >= to.pos)) break;
    }
  }
  return hits;
}

/**
 * The binary log position is server-wide and other schemas keep writing, so the check is about this schema:
 * the binary log events written during the probe must not touch it, its table fingerprint must not change,
 * and sessions of accounts that can still write (global, wildcard or role grants) must not hold changed rows
 * in it. The tool's exempt sessions are not sampled, but their writes to the schema would show in the log.
 */
export async function schemaLeakCheck(
  q: Query,
  flavor: Pick<MysqlFlavor, 'binlogStatusSql'>,
  schema: string,
  probeMs: number,
  suspectUsers: string[] | 'all',
  exempt: readonly string[],
  warnings: string[],
  until: Promise<unknown> = Promise.resolve(),
  from?: BinlogPos,
): Promise<LeakCheck> {
  const started = Date.now();
  let settled = false;
  void until.then(
    () => (settled = true),
    () => (settled = true),
  );
  // From the fence's own position when it is known: nothing committed between the fence and this check escapes it.
  const startPos = from ?? (await binlogCoordinates(q, flavor));
  const before = await tableFingerprint(q, schema);
  const seen = new Map<string, MysqlSession>();
  const present = new Map<string, MysqlSession>();
  for (;;) {
    if (suspectUsers === 'all' || suspectUsers.length > 0) {
      for (const s of await clientSessions(q, { ...(suspectUsers === 'all' ? {} : { users: suspectUsers }), exempt })) {
        if (s.database === schema) present.set(s.threadId, s);
        if (s.database === schema && s.rowsModified > 0) seen.set(s.threadId, s);
      }
    }
    // probeMs 0 (the cutover watches separately until its point of no return): one sample, no wait.
    if (Date.now() - started >= probeMs && settled) break;
    // Woken early when `until` settles: writers wait on this check at the end of the window.
    await Promise.race([sleep(POLL_MS), ...(Date.now() - started >= probeMs ? [until.catch(() => {})] : [])]);
  }
  probeMs = Date.now() - started;
  const after = await tableFingerprint(q, schema);
  const endPos = await binlogCoordinates(q, flavor);
  const changed = changedTables(before, after);
  const events = startPos && endPos ? await schemaEventsBetween(q, startPos, endPos, schema) : 0;
  if (!startPos) warnings.push('the binary log is off: the schema leak check compared table metadata only (UPDATE_TIME has whole-second resolution)');
  const moved = events > 0 || changed.length > 0;
  const writers: SessionInfo[] = [];
  for (const s of seen.values()) writers.push(publicSession(s, `can still write to ${schema} and changed ${s.rowsModified} row(s) after the revoke`));
  const what = [events > 0 ? `${events} binary log event(s) wrote to it` : '', changed.length > 0 ? `table(s) changed: ${changed.join(', ')}` : ''].filter(Boolean).join('; ');
  if (moved && writers.length === 0) {
    for (const s of present.values()) writers.push(publicSession(s, `session in ${schema} of an account that can still write to it, while the schema changed (${what})`));
  }
  if (moved && writers.length === 0) writers.push({ id: `schema:${schema}`, user: '', reason: `schema ${schema} changed during the probe (${what}); no session was caught in the act (look at the binary log)` });
  return { probeMs, clean: writers.length === 0, writers, ...(startPos && endPos ? { method: 'binlog' as const } : { method: 'sampled' as const, fallback: 'the binary log is off' }) };
}

/** Accounts (other than the tool's own) with write privileges on the schema itself, for `status`. */
export async function schemaWriters(q: Query, schema: string): Promise<string[]> {
  const rows = await q<RowDataPacket & { g: string; p: string; s: string }>(
    `SELECT GRANTEE AS g, PRIVILEGE_TYPE AS p, TABLE_SCHEMA AS s FROM information_schema.SCHEMA_PRIVILEGES WHERE ? LIKE TABLE_SCHEMA
      UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE, TABLE_SCHEMA FROM information_schema.TABLE_PRIVILEGES WHERE TABLE_SCHEMA = ?`,
    [schema, schema],
    'listing schema privileges',
  );
  return [...new Set(rows.filter((r) => isWrite(SCHEMA_WRITE_PRIVILEGES)(r.p)).map((r) => r.g))].sort();
}
