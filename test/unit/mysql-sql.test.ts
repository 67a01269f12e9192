import { describe, expect, it } from 'vitest';
import { detectFlavor } from '../../adapters/mysql/mysql-flavor.js';
import {
  accountLockSql,
  fenceServerSql,
  isOn,
  killSql,
  liftServerSql,
  parseAccountSpec,
  parseGrantee,
  quoteAccount,
  quoteIdent,
  quoteString,
  restoreServerSql,
  schemaReadOnlySql,
  sessionSetupSql,
} from '../../adapters/mysql/mysql-sql.js';
import { UsageError } from '../../src/errors.js';

const mysql84 = detectFlavor('8.4.3', 'MySQL Community Server - GPL');
const mysql57 = detectFlavor('5.7.44-log', 'MySQL Community Server (GPL)');
const maria = detectFlavor('10.11.19-MariaDB-0+deb12u1-log', 'Debian 12');

describe('quoting', () => {
  it('quotes identifiers with doubled backticks', () => {
    expect(quoteIdent('shop')).toBe('`shop`');
    expect(quoteIdent('we`ird')).toBe('`we``ird`');
    expect(() => quoteIdent('')).toThrow(UsageError);
    expect(() => quoteIdent('a\0b')).toThrow(UsageError);
  });

  it('quotes strings with doubled quotes and backslashes', () => {
    expect(quoteString("o'brien")).toBe("'o''brien'");
    expect(quoteString('a\\b')).toBe("'a\\\\b'");
  });

  it('quotes accounts as user@host literals', () => {
    expect(quoteAccount({ user: 'app', host: '%' })).toBe("'app'@'%'");
    expect(quoteAccount({ user: "x'y", host: '10.0.0.%' })).toBe("'x''y'@'10.0.0.%'");
    expect(accountLockSql({ user: 'app', host: '%' }, true)).toBe("ALTER USER 'app'@'%' ACCOUNT LOCK");
    expect(accountLockSql({ user: 'app', host: '%' }, false)).toBe("ALTER USER 'app'@'%' ACCOUNT UNLOCK");
  });

  it('parses --role account specs in the usual spellings', () => {
    expect(parseAccountSpec('app')).toEqual({ user: 'app' });
    expect(parseAccountSpec('app@%')).toEqual({ user: 'app', host: '%' });
    expect(parseAccountSpec("'app'@'10.0.0.%'")).toEqual({ user: 'app', host: '10.0.0.%' });
    expect(parseAccountSpec('`app`@`localhost`')).toEqual({ user: 'app', host: 'localhost' });
    expect(() => parseAccountSpec('@host')).toThrow(UsageError);
  });

  it('parses information_schema grantees', () => {
    expect(parseGrantee("'roa'@'%'")).toEqual({ user: 'roa', host: '%' });
    expect(parseGrantee("'o''b'@'localhost'")).toEqual({ user: "o'b", host: 'localhost' });
    expect(parseGrantee('nonsense')).toBeUndefined();
  });

  it('builds KILL only from numeric ids', () => {
    expect(killSql(42)).toBe('KILL CONNECTION 42');
    expect(() => killSql('1; DROP TABLE x')).toThrow(UsageError);
  });

  it('reads booleans in MySQL spellings', () => {
    expect([isOn('ON'), isOn('1'), isOn(1), isOn('OFF'), isOn(0), isOn(null)]).toEqual([true, true, true, false, false, false]);
  });
});

describe('server fence statements per flavor', () => {
  it('MySQL 8: SET PERSIST read_only first, then super_read_only', () => {
    expect(fenceServerSql(mysql84)).toEqual(['SET PERSIST read_only = ON', 'SET PERSIST super_read_only = ON']);
  });

  it('MySQL 5.7: SET GLOBAL with super_read_only (no PERSIST)', () => {
    expect(fenceServerSql(mysql57)).toEqual(['SET GLOBAL read_only = ON', 'SET GLOBAL super_read_only = ON']);
  });

  it('MariaDB: read_only only', () => {
    expect(fenceServerSql(maria)).toEqual(['SET GLOBAL read_only = ON']);
  });

  it('MySQL 8 restore: super_read_only before read_only, then persisted values put back or reset', () => {
    expect(restoreServerSql(mysql84, { readOnly: false, superReadOnly: false, persisted: { read_only: null, super_read_only: null } })).toEqual([
      'SET GLOBAL super_read_only = OFF',
      'SET GLOBAL read_only = OFF',
      'RESET PERSIST IF EXISTS super_read_only',
      'RESET PERSIST IF EXISTS read_only',
    ]);
    expect(restoreServerSql(mysql84, { readOnly: true, superReadOnly: false, persisted: { read_only: true, super_read_only: null } })).toEqual([
      'SET GLOBAL super_read_only = OFF',
      'SET GLOBAL read_only = ON',
      'RESET PERSIST IF EXISTS super_read_only',
      'SET PERSIST_ONLY read_only = ON',
    ]);
  });

  it('MariaDB restore and lift touch read_only only', () => {
    expect(restoreServerSql(maria, { readOnly: true, superReadOnly: null })).toEqual(['SET GLOBAL read_only = ON']);
    expect(liftServerSql(maria)).toEqual(['SET GLOBAL read_only = OFF']);
  });

  it('schema READ ONLY statement quotes the schema', () => {
    expect(schemaReadOnlySql('shop', true)).toBe('ALTER SCHEMA `shop` READ ONLY = 1');
    expect(schemaReadOnlySql('sh`op', false)).toBe('ALTER SCHEMA `sh``op` READ ONLY = 0');
  });

  it('session setup bounds lock waits in whole seconds, rounded up, and uses the flavor timeout variable', () => {
    expect(sessionSetupSql(maria, 2_000)).toBe("SET SESSION lock_wait_timeout = 2, SESSION max_statement_time = 0, SESSION sql_mode = '', SESSION wait_timeout = 31536000, SESSION interactive_timeout = 31536000");
    expect(sessionSetupSql(mysql84, 250)).toBe("SET SESSION lock_wait_timeout = 1, SESSION max_execution_time = 0, SESSION sql_mode = '', SESSION wait_timeout = 31536000, SESSION interactive_timeout = 31536000");
    expect(sessionSetupSql(mysql84, 2_500)).toMatch(/lock_wait_timeout = 3,/);
  });
});
