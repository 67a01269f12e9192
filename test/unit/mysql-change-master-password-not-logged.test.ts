import { describe, expect, it } from 'vitest';
import { withoutStatementLog } from '../../adapters/mysql/mysql-replication-user.js';
import type { Query } from '../../adapters/mysql/mysql-sessions.js';
import { PreflightError } from '../../src/errors.js';

function target(canSet: boolean, generalLog: 0 | 1): { q: Query; seen: string[] } {
  const seen: string[] = [];
  const q = (async (sql: string) => {
    seen.push(sql);
    if (sql.startsWith('SET SESSION sql_log_off') && !canSet) throw Object.assign(new Error('Access denied; you need (at least one of) the SUPER privilege(s)'), { errno: 1227 });
    if (sql.includes('general_log')) return [{ g: generalLog }];
    if (sql.startsWith('SELECT @@SESSION.long_query_time')) return [{ t: 0 }];
    return [];
  }) as Query;
  return { q, seen };
}

describe('CHANGE MASTER never runs where the target general or slow log would print its password', () => {
  it('refuses (exit 3) naming general_log when sql_log_off cannot be set and the general log is on', async () => {
    const { q } = target(false, 1);
    let ran = false;
    const err = await withoutStatementLog(q, async () => void (ran = true)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreflightError);
    expect((err as PreflightError).exitCode).toBe(3);
    expect((err as Error).message).toContain('general_log');
    expect(ran).toBe(false);
  });

  it('runs it when sql_log_off cannot be set but the general log is off', async () => {
    const { q } = target(false, 0);
    let ran = false;
    await withoutStatementLog(q, async () => void (ran = true));
    expect(ran).toBe(true);
  });

  it('runs it with sql_log_off = 1 and puts the session back after', async () => {
    const { q, seen } = target(true, 1);
    await withoutStatementLog(q, async () => void seen.push('CHANGE MASTER'));
    // long_query_time = 0 (every statement slow-logged) is raised for the statement and put back.
    expect(seen).toEqual([
      'SET SESSION sql_log_off = 1',
      'SELECT @@SESSION.long_query_time AS t',
      'SET SESSION long_query_time = 31536000',
      'CHANGE MASTER',
      'SET SESSION long_query_time = 0',
      'SET SESSION sql_log_off = 0',
    ]);
  });
});
