import type { RowDataPacket } from 'mysql2/promise';
import type { Finding } from '../../src/engine/cutover-adapter.js';
import type { CopyMethod } from '../../src/plan/types.js';
import { atLeast, flavorLabel, type MysqlFlavor } from './mysql-flavor.js';
import { bypassAccounts, currentAccount } from './mysql-accounts.js';
import type { Query } from './mysql-sessions.js';
import { accountLabel, isOn, parseAccountSpec, type Account } from './mysql-sql.js';
import { managedSourceFindings, managedTargetFindings, providerLinkFindings } from './mysql-managed-checks.js';
import { resolveProfile, type PrivilegesSetting } from './mysql-privilege-profile.js';

export interface MysqlSide {
  q: Query;
  flavor: MysqlFlavor;
}

export interface MysqlPreflightInput {
  source: MysqlSide;
  target: MysqlSide;
  database: string;
  method: CopyMethod;
  /** The source as the target's replica connection reaches it; a socket path cannot be replicated from. */
  sourceHost: string;
  /** The target replicates from the source through this plan's connection: sync already ran. */
  syncedByUs: boolean;
  /** This plan's copy was cut short and left its record on the target (mysql-copy-record.ts): sync resumes it. */
  resumesCopy?: boolean;
  /** Replica connections on the target that are not this plan's. */
  otherReplicas: string[];
  /** How the target's replica link is made: statements, or the provider's procedures (RDS: mysql.rds_set_external_master_gtid ...). */
  replicaLink?: 'statements' | 'rds-procedures';
  /** How `run` fences the source; absent: no read_only bypass finding. */
  fence?: BypassFenceOptions;
}

export interface BypassFenceOptions {
  scope: string;
  mode: 'advisory' | 'enforced' | 'strict';
  /** Accounts strict mode locks for the window (user or user@host). */
  roles: readonly string[];
  /** The plan's `privileges`: managed (or auto on an account that may not set read_only) fences by account locks. */
  privileges?: PrivilegesSetting;
}

/** A managed service sets server variables in its parameter groups, never with SET GLOBAL. */
const PARAMETER_GROUP = 'on a managed service set it in the instance\u2019s parameter group (RDS for MySQL/MariaDB: DB parameter group; Aurora MySQL: DB cluster parameter group) and reboot if it is static';
function serverSetting(fix: string, managed: boolean): string {
  return managed ? `${fix}; ${PARAMETER_GROUP}` : fix;
}

type Vars = Record<string, string>;

async function variables(q: Query, names: string[]): Promise<Vars> {
  const rows = await q<RowDataPacket & { n: string; v: string | null }>(
    `SELECT VARIABLE_NAME AS n, VARIABLE_VALUE AS v FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME IN (?)`,
    [names.map((n) => n.toUpperCase())],
    'reading server variables',
  );
  const out: Vars = {};
  for (const r of rows) out[r.n.toLowerCase()] = r.v ?? '';
  return out;
}

/** MySQL 8 serves these from performance_schema only; MariaDB from information_schema. */
async function readVars(side: MysqlSide, names: string[]): Promise<Vars> {
  if (side.flavor.kind === 'mariadb') return variables(side.q, names);
  const rows = await side.q<RowDataPacket & { n: string; v: string | null }>(
    `SELECT VARIABLE_NAME AS n, VARIABLE_VALUE AS v FROM performance_schema.global_variables WHERE VARIABLE_NAME IN (?)`,
    [names],
    'reading server variables',
  );
  const out: Vars = {};
  for (const r of rows) out[r.n.toLowerCase()] = r.v ?? '';
  return out;
}

function triple(v: string): [number, number, number] {
  const [a = 0, b = 0, c = 0] = v.split('.').map(Number);
  return [a, b, c];
}

/** Global privileges of the current account, from SHOW GRANTS (covers MySQL dynamic privileges too). */
export async function globalPrivileges(q: Query): Promise<{ all: boolean; names: Set<string> }> {
  return databasePrivileges(q);
}

/** Privileges the current account holds on every database, or on `database` itself too (SHOW GRANTS; not through roles). */
export async function databasePrivileges(q: Query, database?: string): Promise<{ all: boolean; names: Set<string> }> {
  const rows = await q<RowDataPacket>(`SHOW GRANTS FOR CURRENT_USER()`, [], 'reading the account privileges');
  return privilegesOnDatabase(
    rows.map((r) => String(Object.values(r)[0] ?? '')),
    database,
  );
}

/** The privileges SHOW GRANTS lines give on `*.*`, or on `database`.* too (a pattern such as `shop\_%` is not read). */
export function privilegesOnDatabase(lines: readonly string[], database?: string): { all: boolean; names: Set<string> } {
  const names = new Set<string>();
  let all = false;
  for (const line of lines) {
    const m = /^GRANT (.+?) ON (\*|`((?:[^`]|``)*)`)\.\* TO /i.exec(line);
    if (!m || (m[2] !== '*' && (database === undefined || m[3]!.replace(/``/g, '`') !== database))) continue;
    if (/^ALL( PRIVILEGES)?$/i.test(m[1]!.trim())) all = true;
    for (const p of m[1]!.split(',')) names.add(p.trim().toUpperCase().replace(/_/g, ' '));
  }
  return { all, names };
}

export function hasAny(p: { all: boolean; names: Set<string> }, wanted: string[]): boolean {
  return p.all || wanted.some((w) => p.names.has(w.toUpperCase().replace(/_/g, ' ')));
}

/**
 * What must hold before `sync` and `run` touch anything: each finding says why it matters and how to fix it.
 * Blockers stop the cutover; warnings are risks the operator accepts knowingly.
 */
export async function mysqlPreflight(i: MysqlPreflightInput): Promise<Finding[]> {
  const out: Finding[] = [];
  const add = (f: Finding) => out.push(f);
  const { source: src, target: dst, database } = i;

  if (i.method === 'dump') {
    add({
      severity: 'info',
      check: 'method',
      message: `method dump: ${database} is copied whole while the source is fenced`,
      why: 'writers wait for the whole copy, so it suits small databases (per-tenant waves); the budget ends a copy that takes too long and unfences the source',
      fix: 'use method: replication for a database whose dump and load do not fit the write-downtime budget',
    });
  }

  if (src.flavor.kind !== dst.flavor.kind) {
    add({
      severity: 'blocker',
      check: 'version',
      message: `${flavorLabel(src.flavor)} → ${flavorLabel(dst.flavor)}: replication between MySQL and MariaDB is not supported`,
      why: 'their GTID formats differ, so the target cannot follow the source by GTID',
      fix: 'move to the same engine, then upgrade or switch engines separately',
    });
  } else if (!atLeast(triple(dst.flavor.version), triple(src.flavor.version))) {
    add({
      severity: 'blocker',
      check: 'version',
      message: `target ${flavorLabel(dst.flavor)} is older than source ${flavorLabel(src.flavor)}`,
      why: 'replication from a newer server to an older one is unsupported and can fail on new binary log events',
      fix: 'use a target of the same or a newer version',
    });
  }

  const srcProfile = await resolveProfile(src.q, src.flavor, i.fence?.privileges);
  const dstProfile = await resolveProfile(dst.q, dst.flavor, i.fence?.privileges);
  const srcManaged = srcProfile === 'managed';
  const names = ['log_bin', 'binlog_format', 'binlog_row_image', 'server_id', 'log_slave_updates', 'gtid_mode', 'enforce_gtid_consistency', 'gtid_domain_id', 'gtid_strict_mode', 'event_scheduler', 'read_only'];
  const [sv, dv] = await Promise.all([readVars(src, names), readVars(dst, names)]);

  // A copy made while fenced (method dump) needs no binary log, GTIDs, replica or replication privileges.
  if (i.method === 'replication') {
    if (!isOn(sv.log_bin)) {
      add({
        severity: 'blocker',
        check: 'binlog',
        object: 'log_bin',
        message: 'the source has no binary log',
        why: 'the target follows the source through its binary log',
        fix: serverSetting('start the source with log_bin (needs a restart) and binlog_format=ROW', srcManaged),
      });
    }
    if ((sv.binlog_format ?? '').toUpperCase() !== 'ROW') {
      add({
        severity: 'blocker',
        check: 'binlog',
        object: 'binlog_format',
        message: `source binlog_format is ${sv.binlog_format || 'unknown'}, not ROW`,
        why: 'statement-based events can apply differently on the target (non-deterministic functions, triggers)',
        fix: srcManaged
          ? `binlog_format = ROW: ${PARAMETER_GROUP}; existing sessions keep their format until they reconnect`
          : 'SET GLOBAL binlog_format = ROW (and in the config file); existing sessions keep their format until they reconnect',
      });
    }
    if (sv.binlog_row_image && sv.binlog_row_image.toUpperCase() !== 'FULL') {
      add({
        severity: 'warning',
        check: 'binlog',
        object: 'binlog_row_image',
        message: `source binlog_row_image is ${sv.binlog_row_image}`,
        why: 'partial row images apply correctly only when both sides have the same primary keys',
        fix: srcManaged ? `binlog_row_image = FULL: ${PARAMETER_GROUP}` : 'SET GLOBAL binlog_row_image = FULL',
      });
    }
    if (src.flavor.kind === 'mysql') {
      for (const [side, v] of [
        ['source', sv],
        ['target', dv],
      ] as const) {
        if ((v.gtid_mode ?? '').toUpperCase() !== 'ON' || !isOn(v.enforce_gtid_consistency)) {
          add({
            severity: 'blocker',
            check: 'gtid',
            object: side,
            message: `${side} gtid_mode=${v.gtid_mode || 'OFF'}, enforce_gtid_consistency=${v.enforce_gtid_consistency || 'OFF'}`,
            why: 'catch-up is proven with WAIT_FOR_EXECUTED_GTID_SET and replication starts by auto-position',
            fix: serverSetting('enable GTIDs online: enforce_gtid_consistency=ON, then gtid_mode OFF_PERMISSIVE → ON_PERMISSIVE → ON', srcManaged),
          });
        }
      }
    } else if (sv.gtid_domain_id !== undefined && sv.gtid_domain_id === dv.gtid_domain_id && isOn(dv.log_bin) && sv.server_id !== dv.server_id) {
      add({
        severity: 'info',
        check: 'gtid',
        object: 'gtid_domain_id',
        message: `source and target share GTID domain ${sv.gtid_domain_id}`,
        why: 'writes made on the target before the switch would interleave with the source in one domain',
        fix: 'nothing to do while applications stay off the target; set a distinct gtid_domain_id on the target if anything else writes there',
      });
    }
    if (sv.server_id === dv.server_id) {
      add({
        severity: 'blocker',
        check: 'server id',
        message: `source and target both have server_id ${sv.server_id}`,
        why: 'a replica skips events carrying its own server_id: every write would be silently dropped',
        fix: 'give the target a distinct server_id (SET GLOBAL server_id = N, and in its config file)',
      });
    } else if (sv.server_id === '0') {
      add({ severity: 'blocker', check: 'server id', message: 'source server_id is 0', why: 'a server with server_id 0 refuses replica connections', fix: 'set a non-zero server_id on the source' });
    }
    if (!isOn(dv.log_bin)) {
      add({
        severity: 'warning',
        check: 'binlog',
        object: 'target',
        message: 'the target has no binary log',
        why: 'after the switch nothing can replicate from the new primary, and a reverse cutover is impossible',
        fix: 'start the target with log_bin and binlog_format=ROW',
      });
    } else if (!isOn(dv.log_slave_updates)) {
      add({
        severity: 'info',
        check: 'binlog',
        object: 'log_slave_updates',
        message: 'target log_slave_updates is OFF',
        why: 'replicas of the target will only see writes made after the switch, not the replicated history',
        fix: 'set log_slave_updates=ON on the target if it has replicas of its own',
      });
    }
    if (i.sourceHost.startsWith('/')) {
      add({
        severity: 'blocker',
        check: 'replication',
        object: i.sourceHost,
        message: 'the source URL is a unix socket',
        why: 'the target connects to the source over TCP to replicate',
        fix: 'use the source host name and port in source.url',
      });
    }
    if (i.otherReplicas.length > 0) {
      add({
        severity: 'blocker',
        check: 'replication',
        object: i.otherReplicas.join(', '),
        message: `the target already replicates (${i.otherReplicas.map((n) => n || 'default connection').join(', ')})`,
        why: 'the dump resets the default connection to GTID mode and a second source would write into the copy',
        fix: 'stop and remove that replication on the target (STOP SLAVE; RESET SLAVE ALL) or use another target',
      });
    }

    // The account the target replicates with is the source URL's account.
    const sp = await globalPrivileges(src.q);
    const need = [
      { names: ['REPLICATION SLAVE'], what: 'REPLICATION SLAVE', why: 'the target replicates with the source URL account' },
      { names: ['RELOAD'], what: 'RELOAD', why: 'the dump takes a brief global read lock to read a consistent GTID position' },
      {
        names: src.flavor.kind === 'mariadb' ? ['BINLOG MONITOR', 'REPLICATION CLIENT', 'SUPER'] : ['REPLICATION CLIENT', 'SUPER'],
        what: src.flavor.kind === 'mariadb' ? 'BINLOG MONITOR' : 'REPLICATION CLIENT',
        why: 'lag is measured from SHOW MASTER STATUS / SHOW BINARY LOGS',
      },
    ];
    for (const n of need) {
      if (!hasAny(sp, n.names)) add({ severity: 'blocker', check: 'privileges', object: `source ${n.what}`, message: `the source account lacks ${n.what}`, why: n.why, fix: `GRANT ${n.what} ON *.* TO <source account>` });
    }
    const tp = await globalPrivileges(dst.q);
    const adminNames = dst.flavor.kind === 'mariadb' ? ['REPLICATION SLAVE ADMIN', 'SUPER'] : ['REPLICATION_SLAVE_ADMIN', 'SUPER'];
    if (i.replicaLink === 'rds-procedures') for (const f of await providerLinkFindings(src, dst, database)) add(f);
    else if (!hasAny(tp, adminNames)) {
      add({
        severity: 'blocker',
        check: 'privileges',
        object: `target ${adminNames[0]}`,
        message: `the target account lacks ${adminNames[0]}`,
        why: 'it configures, starts and removes the replica connection',
        fix: `GRANT ${adminNames[0]} ON *.* TO <target account>`,
      });
    }
  }

  const tables = await src.q<RowDataPacket & { t: string; engine: string | null; pk: number }>(
    `SELECT t.TABLE_NAME AS t, t.ENGINE AS engine,
            EXISTS(SELECT 1 FROM information_schema.TABLE_CONSTRAINTS c
                    WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME AND c.CONSTRAINT_TYPE = 'PRIMARY KEY') AS pk
       FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = ? AND t.TABLE_TYPE = 'BASE TABLE' ORDER BY t.TABLE_NAME`,
    [database],
    'listing tables',
  );
  const dbRows = await src.q<RowDataPacket>(`SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, [database], 'looking up the database');
  if (dbRows.length === 0) {
    add({ severity: 'blocker', check: 'source database', object: database, message: `database ${database} does not exist on the source`, why: 'there is nothing to move', fix: 'check scope.databases and source.url' });
  }
  const noPk = tables.filter((t) => Number(t.pk) === 0).map((t) => t.t);
  if (noPk.length > 0 && i.method === 'replication') {
    add({
      severity: 'warning',
      check: 'primary keys',
      object: noPk.slice(0, 10).join(', '),
      message: `${noPk.length} table(s) without a primary key`,
      why: 'row events on them are applied with a table scan per row: the target can fall far behind',
      fix: 'add a primary key (or a unique NOT NULL key) to each',
    });
  }
  const nonTx = tables.filter((t) => t.engine && !/^(InnoDB|Aria)$/i.test(t.engine) && !/^(SEQUENCE)$/i.test(t.engine)).map((t) => `${t.t} (${t.engine})`);
  if (nonTx.length > 0) {
    add({
      severity: 'warning',
      check: 'storage engine',
      object: nonTx.slice(0, 10).join(', '),
      message: `${nonTx.length} non-transactional table(s)`,
      why: '--single-transaction does not give them a consistent snapshot: writes during the dump can be copied twice or missed',
      fix: 'convert them to InnoDB, or keep them unwritten during sync',
    });
  }

  const definers = await src.q<RowDataPacket & { kind: string; name: string; definer: string }>(
    `SELECT 'routine' AS kind, ROUTINE_NAME AS name, DEFINER AS definer FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
     UNION ALL SELECT 'view', TABLE_NAME, DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?
     UNION ALL SELECT 'trigger', TRIGGER_NAME, DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
     UNION ALL SELECT 'event', EVENT_NAME, DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?`,
    [database, database, database, database],
    'listing definers',
  );
  const accounts = new Set((await dst.q<RowDataPacket & { a: string }>(`SELECT CONCAT(User, '@', Host) AS a FROM mysql.user`, [], 'listing target accounts')).map((r) => r.a));
  const missingDefiner = definers.filter((d) => d.definer && !accounts.has(d.definer.replace(/`/g, '')));
  if (missingDefiner.length > 0) {
    add({
      severity: 'warning',
      check: 'definers',
      object: missingDefiner
        .slice(0, 10)
        .map((d) => `${d.kind} ${d.name} (${d.definer})`)
        .join(', '),
      message: `${missingDefiner.length} view(s)/routine(s)/trigger(s)/event(s) whose definer account does not exist on the target`,
      why: 'they fail on the target with "the user specified as a definer does not exist"',
      fix: 'create those accounts on the target (with the same grants) before the switch',
    });
  }
  const events = definers.filter((d) => d.kind === 'event');
  if (events.length > 0) {
    add({
      severity: 'warning',
      check: 'events',
      object: events.map((e) => e.name).join(', '),
      message: `${events.length} scheduled event(s) in ${database}`,
      why: `the dump creates them enabled on the target, where they run as soon as event_scheduler is ON (now ${dv.event_scheduler || 'unknown'}) and can write there before the switch`,
      fix: 'keep event_scheduler OFF on the target until the switch, or ALTER EVENT ... DISABLE there',
    });
  }
  const triggers = definers.filter((d) => d.kind === 'trigger');
  if (triggers.length > 0) {
    add({
      severity: 'info',
      check: 'triggers',
      object: triggers.map((t) => t.name).join(', '),
      message: `${triggers.length} trigger(s) in ${database}`,
      why: 'row-based replication does not fire them on the target (their effects arrive as rows), so they only act again after the switch',
      fix: 'nothing to do',
    });
  }

  if (i.fence) {
    if (srcManaged) out.push(...(await managedSourceFindings(src, i.fence, database)));
    else {
      const f = await bypassFinding(src, i.fence);
      if (f) add(f);
    }
  }
  if (dstProfile === 'managed' && i.method === 'replication') out.push(...(await managedTargetFindings(dst)));

  if (i.resumesCopy) {
    add({
      severity: 'info',
      check: 'target database',
      object: database,
      message: `a copy of ${database} by this plan was cut short: sync goes on from the tables it completed`,
      why: 'its record on the target (_cutover.copy_unit) says which tables are complete and at which GTID position',
      fix: 'run sync again; `cutover rollback --cleanup` removes the record, then drop the target database to start over',
    });
  } else if (!i.syncedByUs) {
    const existing = await dst.q<RowDataPacket & { n: number }>(`SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`, [database], 'looking at the target database');
    const n = Number(existing[0]?.n ?? 0);
    if (n > 0) {
      add({
        severity: 'blocker',
        check: 'target database',
        object: database,
        message: `target database ${database} already holds ${n} table(s)`,
        why: 'sync would mix the copy with what is there',
        fix: `drop database ${database} on the target, or point target.url elsewhere`,
      });
    }
  }
  return out;
}

function named(roles: readonly string[], a: Account): boolean {
  return roles.some((spec) => {
    const { user, host } = parseAccountSpec(spec);
    return user === a.user && (host === undefined || host === a.host);
  });
}

/**
 * Accounts that keep writing through the source's read_only (MariaDB READ ONLY ADMIN / SUPER, which ALL ON
 * *.* includes; MySQL without super_read_only), listed whether or not they are connected now: a session can
 * log in at any moment of the window. Strict mode's locked accounts (readOnly.roles) are covered; the tool's
 * own account must stay unlocked and is named apart.
 */
async function bypassFinding(src: MysqlSide, fence: BypassFenceOptions): Promise<Finding | undefined> {
  if (fence.scope !== 'server' || src.flavor.superReadOnly) return undefined;
  const me = accountLabel(await currentAccount(src.q));
  const all = await bypassAccounts(src.q, src.flavor);
  const locked = fence.mode === 'strict' ? all.filter((b) => named(fence.roles, b)) : [];
  const open = all.filter((b) => !b.locked && !locked.includes(b) && accountLabel(b) !== me);
  if (open.length === 0) return undefined;
  const names = open.map((b) => `${accountLabel(b)} (${b.privilege}${b.viaRole ? ` via role ${b.viaRole}` : ''})`).join(', ');
  return {
    severity: 'warning',
    check: 'read_only bypass',
    object: open.map(accountLabel).join(', '),
    message: `${open.length} account(s) can write through read_only on the source (${flavorLabel(src.flavor)}): ${names}`,
    why: `read_only does not stop ${src.flavor.bypassPrivileges.join('/')}: a session of these accounts can commit on the old source during the window or after the switch (the leak check then fails or the run exits 5); the fence ends their open sessions (enforced), but they can log in again${me ? `; the tool's own account ${me} is exempt` : ''}`,
    fix: `keep applications off these accounts (grant them what they need on the database only), or set readOnly.mode: strict and list them in readOnly.roles: strict locks them (ACCOUNT LOCK) at the fence, so they cannot log in to the old source; a rollback unlocks exactly those it locked, after the switch they stay locked there`,
  };
}
