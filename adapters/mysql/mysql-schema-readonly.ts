import type { RowDataPacket } from 'mysql2/promise';
import { UsageError } from '../../src/errors.js';
import type { FenceOnResult, FenceOptions, FenceTarget, LeakCheck, SessionInfo } from '../../src/readonly/types.js';
import { sleep } from '../../src/util/sleep.js';
import { lockAccounts, lockedBypassWarning } from './mysql-account-locks.js';
import { LEAK_SAMPLE_MS, settledFlag } from './mysql-leak-watch.js';
import type { MysqlPrior, MysqlReadOnlyContext } from './mysql-readonly-context.js';
import { schemaReadOnlySql } from './mysql-sql.js';

/**
 * Schema scope where the server has ALTER SCHEMA ... READ ONLY (MySQL 8.0.22+): the server enforces it for every
 * account, and it waits for every transaction holding a lock in the schema, so there is nothing to drain.
 */

/** Whether the schema has the READ ONLY option on. */
export async function schemaState(c: MysqlReadOnlyContext, name: string): Promise<boolean> {
  const rows = await c.q<RowDataPacket & { o: string | null }>(
    `SELECT s.SCHEMA_NAME, e.OPTIONS AS o FROM information_schema.SCHEMATA s
       LEFT JOIN information_schema.SCHEMATA_EXTENSIONS e ON e.SCHEMA_NAME = s.SCHEMA_NAME
      WHERE s.SCHEMA_NAME = ?`,
    [name],
    'reading schema options',
  );
  if (rows.length === 0) throw new UsageError(`schema "${name}" does not exist at ${c.where}`, 'check readOnly.name in the plan (or --name)');
  return /READ ONLY\s*=\s*1/i.test(rows[0]!.o ?? '');
}

export async function applySchemaReadOnly(c: MysqlReadOnlyContext, target: FenceTarget, opts: FenceOptions, p: MysqlPrior) {
  const warnings: string[] = [];
  await c.q(schemaReadOnlySql(target.name!, true), [], `making schema ${target.name} read-only`);
  const lockedRoles = await lockAccounts(c, p);
  warnings.push(...lockedBypassWarning(p));
  const leakCheck = await watchSchemaReadOnly(c, target.name!, opts.probeMs, warnings);
  return {
    scope: target.scope,
    ...(target.name ? { name: target.name } : {}),
    mode: opts.mode,
    persistent: true,
    drained: [],
    terminated: [],
    untouched: [],
    lockedRoles,
    warnings,
    leakCheck,
  } satisfies Omit<FenceOnResult, 'action' | 'engine' | 'server' | 'alreadyOn' | 'durationMs'>;
}

/** Schema READ ONLY is enforced by the server for every account; the binary log position is server-wide. */
export async function watchSchemaReadOnly(c: MysqlReadOnlyContext, name: string, probeMs: number, warnings: string[], until: Promise<unknown> = Promise.resolve()): Promise<LeakCheck> {
  const started = Date.now();
  const settled = settledFlag(until);
  do await sleep(Math.min(LEAK_SAMPLE_MS, Math.max(1, probeMs)));
  while (Date.now() - started < probeMs || !settled.now);
  probeMs = Date.now() - started;
  const stillOn = await schemaState(c, name);
  warnings.push('schema scope: the leak check confirms the READ ONLY option only (the write position is server-wide)');
  const writers: SessionInfo[] = stillOn ? [] : [{ id: `schema:${name}`, user: '', reason: 'the READ ONLY option was turned off again during the probe' }];
  return { probeMs, clean: writers.length === 0, writers };
}

/** Puts back the READ ONLY option `p` recorded; without a record, lifts it if it is on. */
export async function restoreSchemaReadOnly(c: MysqlReadOnlyContext, name: string, p: MysqlPrior | undefined): Promise<{ wasOn: boolean; restored: string }> {
  const current = await schemaState(c, name);
  if (p && p.schemaReadOnly !== undefined) {
    await c.q(schemaReadOnlySql(name, p.schemaReadOnly), [], `restoring schema ${name}`);
    return { wasOn: true, restored: p.schemaReadOnly ? 'READ ONLY stays on: it was on before the fence' : 'restored READ ONLY = 0 as it was before the fence' };
  }
  if (current) {
    await c.q(schemaReadOnlySql(name, false), [], `lifting READ ONLY on schema ${name}`);
    return { wasOn: true, restored: 'READ ONLY = 0: no record of the value before the fence was found in the state dir' };
  }
  return { wasOn: false, restored: 'unchanged: the schema is writable' };
}
