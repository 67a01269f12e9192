import type { RowDataPacket } from 'mysql2/promise';
import type { Finding } from '../../src/engine/cutover-adapter.js';
import { currentAccount, resolveAccounts } from './mysql-accounts.js';
import type { BypassFenceOptions, MysqlSide } from './mysql-checks.js';
import { grantableByMe, heldPrivileges, heldWritesAnywhere } from './mysql-managed-fence.js';
import { readOnlyPrivileges } from './mysql-privilege-profile.js';
import { schemaWriters } from './mysql-schema-fence.js';
import { hasRdsKill } from './mysql-session-killer.js';
import { accountLabel, isOn, parseAccountSpec } from './mysql-sql.js';

/** The global privileges of the current account (information_schema), and which of them it may grant. */
async function ownPrivileges(side: MysqlSide): Promise<{ held: Set<string>; grantable: boolean }> {
  const me = await currentAccount(side.q);
  const rows = await side.q<RowDataPacket & { p: string; g: string }>(
    `SELECT PRIVILEGE_TYPE AS p, IS_GRANTABLE AS g FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?`,
    [`'${me.user}'@'${me.host}'`],
    'reading the account privileges',
  );
  return { held: new Set(rows.map((r) => r.p.toUpperCase().replace(/_/g, ' '))), grantable: rows.some((r) => r.g === 'YES') };
}

const has = (held: Set<string>, ...names: string[]) => names.some((n) => held.has(n.toUpperCase().replace(/_/g, ' ')));

/**
 * Preflight of the managed profile's source fence (mysql-managed-fence.ts) and target hold: every step the
 * account cannot do is a blocker naming the exact privilege, found before anything is touched.
 */
export async function managedSourceFindings(src: MysqlSide, fence: BypassFenceOptions, database: string): Promise<Finding[]> {
  const out: Finding[] = [];
  const ro = readOnlyPrivileges(src.flavor).join(' or ');
  if (fence.scope === 'server' && (fence.mode !== 'strict' || fence.roles.length === 0)) {
    out.push({
      severity: 'blocker',
      check: 'privileges',
      object: `source ${ro}`,
      message: `the source account lacks ${ro}: it cannot set read_only (managed profile)`,
      why: 'without it the fence locks the application accounts and revokes their write privileges instead, so it needs them named',
      fix: 'set readOnly: { mode: strict, roles: [<application accounts>] } in the plan (or, where you may, GRANT READ_ONLY ADMIN ON *.* to the admin and set privileges: superuser)',
    });
  }
  const mine = await ownPrivileges(src);
  const kill = src.flavor.kind === 'mariadb' ? 'CONNECTION ADMIN' : 'CONNECTION_ADMIN';
  const needs: Array<{ ok: boolean; what: string; why: string }> = [
    { ok: has(mine.held, 'CREATE USER'), what: 'CREATE USER', why: 'the fence locks the application accounts (ALTER USER ... ACCOUNT LOCK) and unlocks them on rollback' },
    { ok: mine.grantable, what: 'GRANT OPTION', why: 'the fence revokes the application accounts\u2019 write privileges and grants them back on rollback' },
    { ok: has(mine.held, 'PROCESS'), what: 'PROCESS', why: 'the fence must see the application accounts\u2019 sessions to end them' },
    { ok: has(mine.held, kill, 'SUPER') || (await hasRdsKill(src.q)), what: kill, why: 'the fence ends the application accounts\u2019 sessions (KILL, or mysql.rds_kill where the provider has it)' },
  ];
  for (const n of needs) {
    if (!n.ok)
      out.push({
        severity: 'blocker',
        check: 'privileges',
        object: `source ${n.what}`,
        message: `the source account lacks ${n.what} (managed profile)`,
        why: n.why,
        fix: `GRANT ${n.what} ON *.* TO <source account>${n.what === 'GRANT OPTION' ? ' (or re-grant its privileges WITH GRANT OPTION)' : ''}`,
      });
  }
  if (fence.mode !== 'strict' || fence.roles.length === 0) return out;
  const me = await currentAccount(src.q);
  const canGrant = await grantableByMe(src.q, me);
  const missing = new Set<string>();
  const named = await resolveAccounts(src.q, fence.roles, 'the source').catch(() => []);
  for (const a of named) for (const g of await heldWritesAnywhere(src.q, { kind: 'account', ...a })) for (const p of heldPrivileges(g)) if (!canGrant.has(p)) missing.add(p);
  if (missing.size > 0) {
    const list = [...missing].sort().join(', ');
    out.push({
      severity: 'blocker',
      check: 'privileges',
      object: `source ${list} WITH GRANT OPTION`,
      message: `the source account could revoke but not grant back ${list} of the application accounts`,
      why: 'nothing is fenced that the same account cannot unfence',
      fix: `GRANT ${list} ON *.* TO <source account> WITH GRANT OPTION (on a managed service: use its master/admin user)`,
    });
  }
  // Accounts the fence does not lock keep writing: the leak check would fail the run.
  const isNamed = (grantee: string) =>
    fence.roles.some((spec) => {
      const { user, host } = parseAccountSpec(spec);
      return grantee.startsWith(`'${user}'@`) && (host === undefined || grantee === `'${user}'@'${host}'`);
    });
  const others = (await schemaWriters(src.q, database)).filter((g) => !isNamed(g) && g !== `'${me.user}'@'${me.host}'`);
  if (others.length > 0) {
    out.push({
      severity: 'warning',
      check: 'managed fence',
      object: others.join(', '),
      message: `${others.length} account(s) with write privileges on ${database} are not in readOnly.roles: ${others.join(', ')}`,
      why: `the managed fence locks and revokes only the named accounts (read_only is not available to ${accountLabel(me)}); a write of these during the window fails the leak check and the run`,
      fix: 'add the application accounts among them to readOnly.roles',
    });
  }
  return out;
}

/** The managed target hold locks the plan's application accounts on the target until the switch. */
export async function managedTargetFindings(dst: MysqlSide): Promise<Finding[]> {
  const mine = await ownPrivileges(dst);
  if (has(mine.held, 'CREATE USER')) return [];
  return [
    {
      severity: 'blocker',
      check: 'privileges',
      object: 'target CREATE USER',
      message: 'the target account lacks CREATE USER (managed profile)',
      why: 'without read_only, the target is held for applications by locking their accounts there until the switch',
      fix: 'GRANT CREATE USER ON *.* TO <target account>',
    },
  ];
}

/**
 * A target replicated into through the provider's procedures (RDS): the one unnamed connection applies what its
 * parameter group's replicate_do_db lets through (its admin may not SET GLOBAL a filter), and the copy must be
 * the parallel one, which hands the procedure its start (a GTID on MariaDB, a binary log file and offset on MySQL):
 * the one-stream dump would itself run CHANGE MASTER and SET GLOBAL gtid_slave_pos or gtid_purged, which that admin
 * may not.
 */
export async function providerLinkFindings(src: MysqlSide, dst: MysqlSide, database: string): Promise<Finding[]> {
  const out: Finding[] = [];
  const [v] = await dst.q<RowDataPacket & { d: string | null; li: unknown }>(`SELECT @@GLOBAL.replicate_do_db AS d, @@GLOBAL.local_infile AS li`, [], 'reading the target\u2019s replication filter');
  const filter = String(v?.d ?? '')
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
  if (filter.length !== 1 || filter[0] !== database) {
    out.push({
      severity: 'blocker',
      check: 'replication',
      object: 'target replicate_do_db',
      message: `the target\u2019s replication filter replicate_do_db is ${filter.length ? `'${filter.join(',')}'` : 'empty'}, not ${database}`,
      why: 'the provider\u2019s one replication connection applies every database its filter lets through, and this account cannot set the filter (SET GLOBAL needs SUPER)',
      fix: `set replicate-do-db = ${database} in the target\u2019s parameter group (RDS: the DB parameter group of the instance), apply it, then check again`,
    });
  }
  const sameEngine = src.flavor.kind === dst.flavor.kind;
  if (!sameEngine || !isOn(v?.li)) {
    out.push({
      severity: 'blocker',
      check: 'replication',
      object: 'target local_infile',
      message: sameEngine ? 'the target has local_infile = OFF' : 'replication into a target with the provider\u2019s procedures is done from the same engine only (MariaDB to MariaDB, MySQL to MySQL)',
      why: 'the copy must be the parallel one (LOAD DATA LOCAL INFILE), which hands the procedure its start position (GTID, or binary log file and offset); the one-stream dump runs CHANGE MASTER and sets gtid_slave_pos or gtid_purged, which the provider\u2019s admin may not',
      fix: 'set local_infile = 1 in the target\u2019s parameter group, or use method: dump',
    });
  }
  return out;
}
