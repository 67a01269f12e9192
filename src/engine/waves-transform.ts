import { readFile } from 'node:fs/promises';
import { connectPg, mapPgError } from '../../adapters/postgres/postgres-connection.js';
import { WRITABLE_GUC } from '../../adapters/postgres/postgres-schema-fence.js';
import { quoteIdent } from '../../adapters/postgres/postgres-sql.js';
import { BudgetExceededError, OperationError, UsageError } from '../errors.js';
import type { PlanTransform } from '../plan/index.js';
import { run as runCommand } from '../util/subprocess.js';
import { formatDuration } from '../util/units.js';
import type { PlanSession } from './session.js';

/**
 * Runs the plan's transform on the target's copy of one tenant, within what is left of its budget. A SQL file
 * runs as one transaction (PostgreSQL: all or nothing; MySQL/MariaDB: DDL commits implicitly); a command gets
 * the target through PG* / CUTOVER_* env, or a client option file on MySQL/MariaDB (never in argv).
 */
export async function runTransform(s: PlanSession, transform: PlanTransform, tenant: string, deadline: number): Promise<void> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) throw new BudgetExceededError(`no write-downtime budget left for the transform of tenant ${tenant}`, 'raise waves.maxWriteBlockedPerTenant or make the transform faster');
  if (transform.kind === 'sql') return s.plan.engine === 'postgres' ? runSqlTransform(s, transform.file, tenant, remaining) : runMysqlSql(s, transform.file, tenant, remaining);
  const [cmd, ...args] = transform.command;
  const t = s.target;
  const common = {
    CUTOVER_PLAN: s.plan.file,
    CUTOVER_HOOK: 'transform',
    CUTOVER_TENANT: tenant,
    CUTOVER_DATABASE: s.database,
    ...(s.schema !== undefined ? { CUTOVER_SCHEMA: s.schema } : {}),
    CUTOVER_TARGET_HOST: t.host,
    CUTOVER_TARGET_PORT: String(t.port),
    CUTOVER_TARGET_USER: t.user,
  };
  let optionFile: { path: string; remove(): Promise<void> } | undefined;
  let env: Record<string, string | undefined>;
  if (s.plan.engine === 'postgres') {
    env = {
      ...common,
      PGHOST: t.host,
      PGPORT: String(t.port),
      PGUSER: t.user,
      PGDATABASE: s.database,
      PGPASSWORD: t.password,
      // The copy is held read-only for applications until the switch (a database's read-only default or a
      // schema's hold trigger); the transform must write to it.
      PGOPTIONS: `-c default_transaction_read_only=off -c ${WRITABLE_GUC}=on`,
    };
  } else {
    // The mariadb/mysql clients take the password from an option file (0600), never from argv.
    const { clientOptionFile } = await import('../../adapters/mysql/mysql-transform.js');
    optionFile = await clientOptionFile(s.plan.stateDir, t, s.database);
    env = { ...common, CUTOVER_MYSQL_DEFAULTS_FILE: optionFile.path };
  }
  let r;
  try {
    r = await runCommand(cmd!, args, { env, reject: false, timeoutMs: remaining, secrets: s.secrets.all });
  } finally {
    await optionFile?.remove();
  }
  if (Date.now() >= deadline) throw new BudgetExceededError(`the transform of tenant ${tenant} ran out of the write-downtime budget (${formatDuration(remaining)} left when it started)`, 'raise waves.maxWriteBlockedPerTenant or make the transform faster');
  if (r.exitCode !== 0) throw new OperationError(`transform of tenant ${tenant} exited ${r.exitCode}: ${(r.stderr || r.stdout).split('\n').slice(-1)[0] ?? ''}`, 'the tenant was rolled back to its source; fix the transform and run `cutover waves` again');
}

async function readTransformFile(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read the transform ${file} (${e.code ?? e.message})`, 'check waves.transform.sql in the plan');
  });
}

async function runMysqlSql(s: PlanSession, file: string, tenant: string, remainingMs: number): Promise<void> {
  const sql = await readTransformFile(file);
  const { runMysqlSqlTransform } = await import('../../adapters/mysql/mysql-transform.js');
  try {
    await runMysqlSqlTransform(s.target, s.database, sql, remainingMs, `transform ${file} on tenant ${tenant}`);
  } catch (e) {
    throw new OperationError(e instanceof Error ? e.message : String(e), 'the tenant stays on its source (statements before a DDL one may have committed on its copy); fix the transform and run `cutover waves` again', { cause: e });
  }
}

async function runSqlTransform(s: PlanSession, file: string, tenant: string, remainingMs: number): Promise<void> {
  const sql = await readTransformFile(file);
  const c = await connectPg(s.target, { database: s.database, applicationName: 'cutover-transform' });
  try {
    await c.query(`SET default_transaction_read_only = off`);
    await c.query(`SET ${WRITABLE_GUC} = on`);
    // A schema tenant's transform is written once for all tenants: unqualified names are the tenant's.
    if (s.schema !== undefined) await c.query(`SET search_path TO ${quoteIdent(s.schema)}, public`);
    await c.query(`SET statement_timeout = ${Math.max(1, Math.floor(remainingMs))}`);
    // One simple-protocol query: PostgreSQL runs all its statements in one implicit transaction.
    await c.query(sql);
  } catch (e) {
    const err = mapPgError(e, s.target, `transform ${file} on tenant ${tenant}`);
    throw new OperationError(err.message, 'the transform was rolled back and the tenant stays on its source; fix it and run `cutover waves` again', { cause: e });
  } finally {
    await c.end().catch(() => {});
  }
}
