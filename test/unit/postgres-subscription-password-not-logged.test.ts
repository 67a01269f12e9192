import { describe, expect, it } from 'vitest';
import { statementLoggingRisk, withoutStatementLogging, type StatementTextSettings } from '../../adapters/postgres/postgres-statement-logging.js';
import { PreflightError } from '../../src/errors.js';

const QUIET: StatementTextSettings = {
  log_statement: 'none',
  log_min_error_statement: 'panic',
  log_min_duration_statement: '-1',
  log_min_duration_sample: '-1',
  log_statement_sample_rate: '1',
  log_transaction_sample_rate: '0',
};

/** A client that may change only the settings in `settable` for its session, with the given server settings. */
function client(server: StatementTextSettings, settable: string[] = []) {
  const seen: string[] = [];
  const session: Record<string, string | undefined> = { ...server };
  const c = {
    query: async (sql: string, params: unknown[] = []) => {
      seen.push(sql);
      if (sql.startsWith('SELECT name, setting FROM pg_settings')) {
        const names = params[0] as string[];
        return { rows: names.filter((n) => session[n] !== undefined).map((n) => ({ name: n, setting: session[n] })) };
      }
      if (sql.startsWith('SELECT set_config')) {
        const [name, value] = params as [string, string];
        if (!settable.includes(name)) throw Object.assign(new Error('permission denied to set parameter'), { code: '42501' });
        session[name] = value;
        return { rows: [] };
      }
      if (sql.startsWith('RESET ')) {
        const name = sql.slice(6);
        session[name] = (server as Record<string, string>)[name];
      }
      return { rows: [] };
    },
  };
  return { client: c as never, seen, session };
}

describe('CREATE SUBSCRIPTION never runs where the target would keep its password', () => {
  it('names the setting that would keep the statement text (mod logs DDL too; durations; sampling; pg_stat_statements)', () => {
    expect(statementLoggingRisk({ ...QUIET, log_statement: 'ddl' })).toBe('log_statement = ddl');
    expect(statementLoggingRisk({ ...QUIET, log_statement: 'mod' })).toBe('log_statement = mod');
    expect(statementLoggingRisk({ ...QUIET, log_statement: 'all' })).toBe('log_statement = all');
    expect(statementLoggingRisk({ ...QUIET, log_min_error_statement: 'error' })).toBe('log_min_error_statement = error');
    expect(statementLoggingRisk({ ...QUIET, log_min_duration_statement: '0' })).toBe('log_min_duration_statement = 0');
    expect(statementLoggingRisk({ ...QUIET, log_min_duration_sample: '100' })).toBe('log_min_duration_sample = 100');
    expect(statementLoggingRisk({ ...QUIET, log_min_duration_sample: '100', log_statement_sample_rate: '0' })).toBeUndefined();
    expect(statementLoggingRisk({ ...QUIET, log_transaction_sample_rate: '0.01' })).toBe('log_transaction_sample_rate = 0.01');
    expect(statementLoggingRisk({ ...QUIET, 'pg_stat_statements.track_utility': 'on', 'pg_stat_statements.track': 'top' })).toBe('pg_stat_statements.track_utility = on');
    expect(statementLoggingRisk({ ...QUIET, 'pg_stat_statements.track_utility': 'on', 'pg_stat_statements.track': 'none' })).toBeUndefined();
    expect(statementLoggingRisk({ ...QUIET, log_min_error_statement: 'log' })).toBeUndefined();
    expect(statementLoggingRisk(QUIET)).toBeUndefined();
  });

  it('refuses (exit 3) without running the statement when a setting cannot be changed and would keep it', async () => {
    const { client: c } = client({ ...QUIET, log_min_duration_statement: '0' }, ['log_statement', 'log_min_error_statement']);
    let ran = false;
    const err = await withoutStatementLogging(c, async () => (ran = true)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreflightError);
    expect((err as PreflightError).exitCode).toBe(3);
    expect((err as Error).message).toContain('log_min_duration_statement = 0');
    expect(ran).toBe(false);
  });

  it('quiets every setting it may for the statement, then resets exactly those', async () => {
    const server = { ...QUIET, log_statement: 'all', log_min_duration_statement: '0', 'pg_stat_statements.track_utility': 'on', 'pg_stat_statements.track': 'top' };
    const all = ['log_statement', 'log_min_error_statement', 'log_min_duration_statement', 'log_min_duration_sample', 'log_transaction_sample_rate', 'pg_stat_statements.track_utility'];
    const { client: c, seen, session } = client(server, all);
    let during: Record<string, string | undefined> = {};
    await withoutStatementLogging(c, async () => (during = { ...session }));
    expect(statementLoggingRisk(during)).toBeUndefined();
    expect(during).toMatchObject({ log_statement: 'none', log_min_duration_statement: '-1', 'pg_stat_statements.track_utility': 'off' });
    expect(seen.filter((q) => q.startsWith('RESET ')).sort()).toEqual(all.map((n) => `RESET ${n}`).sort());
    expect(session).toMatchObject({ log_statement: 'all', log_min_duration_statement: '0', 'pg_stat_statements.track_utility': 'on' });
  });

  it('runs it when nothing can be changed but nothing would keep the text (pg_stat_statements not loaded)', async () => {
    const { client: c } = client(QUIET);
    let ran = false;
    await withoutStatementLogging(c, async () => (ran = true));
    expect(ran).toBe(true);
  });
});
