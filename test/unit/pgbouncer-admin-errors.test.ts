import { describe, expect, it } from 'vitest';
import { mapAdminError } from '../../adapters/routers/pgbouncer-admin.js';
import { OperationError, PreflightError } from '../../src/errors.js';
import { parseDbUrl, type DbEndpoint } from '../../src/util/db-url.js';

const ep: DbEndpoint = parseDbUrl('postgres://pgbouncer_admin@127.0.0.1:6432/pgbouncer', { password: 's3cret' });
const pgError = (message: string, code = '08P01') => Object.assign(new Error(message), { code });

describe('PgBouncer admin console errors', () => {
  it('a refused admin user is a privilege error naming the fix', () => {
    const e = mapAdminError(pgError('not allowed'), ep);
    expect(e).toBeInstanceOf(PreflightError);
    expect((e as PreflightError).code).toBe('privilege');
    expect((e as PreflightError).hint).toMatch(/admin_users/);
  });

  it('a command error about a database whose name contains "admin" stays a command error', () => {
    const e = mapAdminError(pgError('database r_admin_held is not paused'), ep);
    expect(e).not.toBeInstanceOf(PreflightError);
    expect(e).toBeInstanceOf(OperationError);
    expect(e.message).toMatch(/is not paused$/);
  });

  it('never carries the password', () => {
    const e = mapAdminError(pgError('password authentication failed for user "pgbouncer_admin" (s3cret)', '28P01'), ep);
    expect((e as PreflightError).code).toBe('auth');
    expect(e.message).not.toContain('s3cret');
  });

  it('an unreachable console is named with its address', () => {
    const e = mapAdminError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), ep);
    expect(e.message).toBe('cannot reach the PgBouncer admin console at 127.0.0.1:6432 (ECONNREFUSED)');
  });
});
