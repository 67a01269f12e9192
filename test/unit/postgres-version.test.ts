import { describe, expect, it } from 'vitest';
import { assertSupportedVersion, pgSessionSetupSql } from '../../adapters/postgres/postgres-connection.js';
import { PreflightError } from '../../src/errors.js';

describe('PostgreSQL version gate', () => {
  it('refuses servers older than 12 with exit 3, naming the version and server', () => {
    try {
      assertSupportedVersion(110022, 'db1:5432');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PreflightError);
      expect((e as PreflightError).exitCode).toBe(3);
      expect((e as PreflightError).code).toBe('version');
      expect((e as Error).message).toBe('PostgreSQL 11 at db1:5432 is not supported');
    }
  });

  it('accepts 12 and newer', () => {
    expect(() => assertSupportedVersion(120000, 'x')).not.toThrow();
    expect(() => assertSupportedVersion(170010, 'x')).not.toThrow();
  });
});

describe('pgSessionSetupSql', () => {
  it('turns idle_session_timeout off where the server has it (14+), with statement and idle-in-transaction timeouts off', () => {
    expect(pgSessionSetupSql(140000)).toMatch(/set_config\('idle_session_timeout', '0', false\)/);
    expect(pgSessionSetupSql(150004)).toMatch(/set_config\('statement_timeout', '0', false\)[\s\S]*idle_in_transaction_session_timeout', '0'[\s\S]*idle_session_timeout', '0'/);
    expect(pgSessionSetupSql(130015)).not.toMatch(/idle_session_timeout/);
    expect(pgSessionSetupSql(130015)).toMatch(/idle_in_transaction_session_timeout', '0'/);
  });
});
