import { readFile } from 'node:fs/promises';
import { dialectFor } from '../../adapters/registry.js';
import { BudgetExceededError, OperationError, UsageError } from '../errors.js';
import type { PlanTransform } from '../plan/index.js';
import { run as runCommand } from '../util/subprocess.js';
import { formatDuration } from '../util/units.js';
import type { PlanSession } from './session.js';

/**
 * Runs the plan's transform on the target's copy of one tenant, within what is left of its budget. A SQL file
 * runs as one transaction (PostgreSQL: all or nothing; MySQL/MariaDB: DDL commits implicitly); a command gets
 * the target through CUTOVER_* env plus the engine's own way of connecting (PG* env, a client option file on
 * MySQL/MariaDB), never in argv.
 */
export async function runTransform(s: PlanSession, transform: PlanTransform, tenant: string, deadline: number): Promise<void> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) throw new BudgetExceededError(`no write-downtime budget left for the transform of tenant ${tenant}`, 'raise waves.maxWriteBlockedPerTenant or make the transform faster');
  const dialect = await dialectFor(s.plan.engine);
  const at = { target: s.target, database: s.database, ...(s.schema !== undefined ? { schema: s.schema } : {}) };
  if (transform.kind === 'sql') {
    const sql = await readTransformFile(transform.file);
    return dialect.runSqlTransform({ ...at, sql, timeoutMs: remaining, doing: `transform ${transform.file} on tenant ${tenant}` });
  }
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
  const connection = await dialect.transformCommandConnection({ ...at, dir: s.plan.stateDir });
  let r;
  try {
    r = await runCommand(cmd!, args, { env: { ...common, ...connection.env }, reject: false, timeoutMs: remaining, secrets: s.secrets.all });
  } finally {
    await connection.dispose();
  }
  if (Date.now() >= deadline)
    throw new BudgetExceededError(
      `the transform of tenant ${tenant} ran out of the write-downtime budget (${formatDuration(remaining)} left when it started)`,
      'raise waves.maxWriteBlockedPerTenant or make the transform faster',
    );
  if (r.exitCode !== 0)
    throw new OperationError(
      `transform of tenant ${tenant} exited ${r.exitCode}: ${(r.stderr || r.stdout).split('\n').slice(-1)[0] ?? ''}`,
      'the tenant was rolled back to its source; fix the transform and run `cutover waves` again',
    );
}

async function readTransformFile(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read the transform ${file} (${e.code ?? e.message})`, 'check waves.transform.sql in the plan');
  });
}
