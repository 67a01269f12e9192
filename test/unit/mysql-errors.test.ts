import { describe, expect, it } from 'vitest';
import { mapMysqlError } from '../../adapters/mysql/mysql-connection.js';
import { OperationError, PreflightError, UsageError } from '../../src/errors.js';
import { parseDbUrl } from '../../src/util/db-url.js';

const ep = parseDbUrl('mariadb://root@db.example:3307/shop', { password: 'S3cret-pw' });

describe('mysql2 errors map to the error hierarchy', () => {
  it('connection failures are unreachable preflight errors', () => {
    const e = mapMysqlError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), ep);
    expect(e).toBeInstanceOf(PreflightError);
    expect((e as PreflightError).code).toBe('unreachable');
    expect(e.message).toContain('db.example:3307');
  });

  it('1045 is auth, and the password never shows', () => {
    const e = mapMysqlError(Object.assign(new Error("Access denied for user 'root'@'x' (using password: YES) S3cret-pw"), { errno: 1045, code: 'ER_ACCESS_DENIED_ERROR' }), ep);
    expect((e as PreflightError).code).toBe('auth');
    expect(e.message + (e as PreflightError).hint).not.toContain('S3cret-pw');
  });

  it('1227 and other missing privileges are privilege errors', () => {
    for (const errno of [1227, 1044, 1142, 1095]) {
      const e = mapMysqlError(Object.assign(new Error('denied'), { errno }), ep, 'fencing');
      expect((e as PreflightError).code).toBe('privilege');
    }
  });

  it('a locked account (MariaDB 4151, MySQL 3118) is auth', () => {
    expect((mapMysqlError(Object.assign(new Error('locked'), { errno: 4151 }), ep) as PreflightError).code).toBe('auth');
    expect((mapMysqlError(Object.assign(new Error('locked'), { errno: 3118 }), ep) as PreflightError).code).toBe('auth');
  });

  it('1205 lock wait timeout is an operation error pointing at --lock-timeout', () => {
    const e = mapMysqlError(Object.assign(new Error('Lock wait timeout exceeded'), { errno: 1205 }), ep, 'fencing the server');
    expect(e).toBeInstanceOf(OperationError);
    expect(e.message).toMatch(/--lock-timeout/);
  });

  it('unknown database is a usage error', () => {
    expect(mapMysqlError(Object.assign(new Error("Unknown database 'x'"), { errno: 1049 }), ep)).toBeInstanceOf(UsageError);
  });
});
