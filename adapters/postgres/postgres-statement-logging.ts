import { PreflightError } from '../../src/errors.js';
import type { PgClient } from './postgres-connection.js';

/**
 * Every server setting that can put a statement's text where others read it (the server log, pg_stat_statements),
 * with the session value that keeps it out. All are superuser-only (or GRANT SET ON PARAMETER, PostgreSQL 15+).
 * `log_statement = mod` logs DDL too; `log_min_duration_statement = 0` (common for pgBadger) logs everything.
 */
export const STATEMENT_TEXT_SETTINGS = [
  { name: 'log_statement', quiet: 'none' },
  { name: 'log_min_error_statement', quiet: 'panic' },
  { name: 'log_min_duration_statement', quiet: '-1' },
  { name: 'log_min_duration_sample', quiet: '-1' },
  { name: 'log_transaction_sample_rate', quiet: '0' },
  { name: 'pg_stat_statements.track_utility', quiet: 'off' },
] as const;

/** The values of STATEMENT_TEXT_SETTINGS (absent: the server has no such setting, e.g. pg_stat_statements not loaded). */
export type StatementTextSettings = Partial<Record<(typeof STATEMENT_TEXT_SETTINGS)[number]['name'] | 'log_statement_sample_rate' | 'pg_stat_statements.track', string>>;

/** Levels at or below ERROR: with one of these, a failing statement is printed to the server log. */
const LOGS_FAILING_STATEMENT = new Set(['debug5', 'debug4', 'debug3', 'debug2', 'debug1', 'info', 'notice', 'warning', 'error']);

const enabled = (duration: string | undefined) => duration !== undefined && duration !== '-1';
const positive = (rate: string | undefined) => rate !== undefined && Number(rate) > 0;

/**
 * Why the server would keep a statement's text (undefined: it would not), given its settings. A statement that
 * carries a password must not run then.
 */
export function statementLoggingRisk(s: StatementTextSettings): string | undefined {
  const ls = s.log_statement;
  if (ls === 'ddl' || ls === 'mod' || ls === 'all') return `log_statement = ${ls}`;
  if (s.log_min_error_statement !== undefined && LOGS_FAILING_STATEMENT.has(s.log_min_error_statement)) return `log_min_error_statement = ${s.log_min_error_statement}`;
  if (enabled(s.log_min_duration_statement)) return `log_min_duration_statement = ${s.log_min_duration_statement}`;
  if (enabled(s.log_min_duration_sample) && positive(s.log_statement_sample_rate)) return `log_min_duration_sample = ${s.log_min_duration_sample}`;
  if (positive(s.log_transaction_sample_rate)) return `log_transaction_sample_rate = ${s.log_transaction_sample_rate}`;
  // pg_stat_statements keeps utility statements' text as sent (nothing to normalise in them).
  if (s['pg_stat_statements.track_utility'] === 'on' && s['pg_stat_statements.track'] !== 'none') return 'pg_stat_statements.track_utility = on';
  return undefined;
}

const READ_SQL = `SELECT name, setting FROM pg_settings WHERE name = ANY($1)`;
const READ_NAMES = [...STATEMENT_TEXT_SETTINGS.map((s) => s.name), 'log_statement_sample_rate', 'pg_stat_statements.track'];

/** The session's values; with `settable`, the ones this account may change are taken as already quiet. */
export async function statementTextSettings(c: Pick<PgClient, 'query'>, opts: { settable?: ReadonlySet<string> } = {}): Promise<StatementTextSettings> {
  const { rows } = await c.query<{ name: string; setting: string }>(READ_SQL, [READ_NAMES]);
  const out: Record<string, string> = {};
  for (const r of rows) out[r.name] = r.setting;
  for (const s of STATEMENT_TEXT_SETTINGS) if (opts.settable?.has(s.name) && out[s.name] !== undefined) out[s.name] = s.quiet;
  return out;
}

/** The settings of STATEMENT_TEXT_SETTINGS this account may change for its session (superuser, or GRANT SET ON PARAMETER on 15+). */
export async function settableStatementTextSettings(c: Pick<PgClient, 'query'>, major: number): Promise<Set<string>> {
  const names = STATEMENT_TEXT_SETTINGS.map((s) => s.name);
  // has_parameter_privilege exists from PostgreSQL 15; before, only a superuser may.
  const may = major >= 15 ? `has_parameter_privilege(name, 'SET')` : `(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)`;
  const { rows } = await c.query<{ name: string }>(`SELECT name FROM pg_settings WHERE name = ANY($1) AND ${may}`, [names]);
  return new Set(rows.map((r) => r.name));
}

/**
 * Runs `fn` (a statement carrying a password: CREATE SUBSCRIPTION's conninfo) with every setting that would keep
 * its text quieted for this session. Where one cannot be changed and would keep the text, refuses before running
 * it (exit 3) naming the setting; what was changed is reset afterwards.
 */
export async function withoutStatementLogging<T>(c: Pick<PgClient, 'query'>, fn: () => Promise<T>): Promise<T> {
  const { rows } = await c.query<{ name: string }>(READ_SQL, [STATEMENT_TEXT_SETTINGS.map((s) => s.name)]);
  const present = new Set(rows.map((r) => r.name));
  const quieted: string[] = [];
  try {
    for (const s of STATEMENT_TEXT_SETTINGS) {
      if (!present.has(s.name)) continue;
      const ok = await c.query(`SELECT set_config($1, $2, false)`, [s.name, s.quiet]).then(
        () => true,
        (e: { code?: string }) => {
          if (e.code !== '42501') throw e;
          return false;
        },
      );
      if (ok) quieted.push(s.name);
    }
    const risk = statementLoggingRisk(await statementTextSettings(c));
    if (risk) {
      throw new PreflightError(
        'privilege',
        `the target has ${risk} and this account cannot change it for its session: CREATE SUBSCRIPTION would write the replication password where others read it`,
        `run as a superuser, GRANT SET ON PARAMETER ${STATEMENT_TEXT_SETTINGS.map((s) => s.name).join(', ')} to this account, or set ${risk.split(' = ')[0]} to ${STATEMENT_TEXT_SETTINGS.find((s) => risk.startsWith(s.name))?.quiet ?? 'its default'} on the target for the sync (its parameter group, database flags or server parameters)`,
      );
    }
    return await fn();
  } finally {
    // Names from the fixed list above, never input.
    for (const name of quieted) await c.query(`RESET ${name}`).catch(() => {});
  }
}
