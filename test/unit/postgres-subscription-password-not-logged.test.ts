import { describe, expect, it } from 'vitest';
import { statementLoggingRisk, withoutStatementLogging } from '../../adapters/postgres/postgres-replication.js';
import { PreflightError } from '../../src/errors.js';

/** A client whose session settings cannot be changed (42501), with the given server settings. */
function lockedClient(ls: string, mes: string, pgss = false) {
  const seen: string[] = [];
  const client = {
    query: async (sql: string) => {
      seen.push(sql);
      if (sql.includes("set_config('log_min_error_statement'")) throw Object.assign(new Error('permission denied to set parameter'), { code: '42501' });
      if (sql.includes('current_setting')) return { rows: [{ ls, mes }] };
      if (sql.includes('pg_stat_statements.track_utility')) return { rows: pgss ? [{}] : [] };
      return { rows: [] };
    },
  };
  return { client: client as never, seen };
}

describe('CREATE SUBSCRIPTION never runs where the target would log its password', () => {
  it('names the setting that would log the statement', () => {
    expect(statementLoggingRisk({ logStatement: 'ddl', logMinErrorStatement: 'panic' })).toBe('log_statement = ddl');
    expect(statementLoggingRisk({ logStatement: 'all', logMinErrorStatement: 'panic' })).toBe('log_statement = all');
    expect(statementLoggingRisk({ logStatement: 'none', logMinErrorStatement: 'error' })).toBe('log_min_error_statement = error');
    expect(statementLoggingRisk({ logStatement: 'mod', logMinErrorStatement: 'log' })).toBeUndefined();
    expect(statementLoggingRisk({ logStatement: 'none', logMinErrorStatement: 'panic' })).toBeUndefined();
  });

  it('refuses (exit 3) without running the statement when the settings cannot be changed and would log it', async () => {
    const { client } = lockedClient('ddl', 'panic');
    let ran = false;
    const err = await withoutStatementLogging(client, async () => (ran = true)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreflightError);
    expect((err as PreflightError).exitCode).toBe(3);
    expect((err as Error).message).toContain('log_statement = ddl');
    expect(ran).toBe(false);
  });

  it('runs it when the settings cannot be changed but would not log it, with pg_stat_statements utility tracking off', async () => {
    const { client, seen } = lockedClient('none', 'fatal', true);
    let ran = false;
    await withoutStatementLogging(client, async () => (ran = true));
    expect(ran).toBe(true);
    expect(seen.some((q) => q.includes("set_config('pg_stat_statements.track_utility', 'off'"))).toBe(true);
    expect(seen).toContain('RESET pg_stat_statements.track_utility');
  });
});
