import { describe, expect, it } from 'vitest';
import { assertSupported, detectFlavor } from '../../adapters/mysql/mysql-flavor.js';
import { PreflightError } from '../../src/errors.js';

describe('flavor detection', () => {
  it('MariaDB 10.11 from VERSION(): no super_read_only, no PERSIST, READ_ONLY ADMIN bypasses', () => {
    const f = detectFlavor('10.11.19-MariaDB-0+deb12u1-log', 'Debian 12');
    expect(f).toMatchObject({ kind: 'mariadb', version: '10.11.19', superReadOnly: false, persist: false, schemaReadOnly: false, gtidVariable: 'gtid_binlog_pos' });
    expect(f.bypassPrivileges).toEqual(['READ_ONLY ADMIN']);
  });

  it('MariaDB from @@version_comment and the 5.5.5- prefix', () => {
    expect(detectFlavor('10.6.18', 'mariadb.org binary distribution').kind).toBe('mariadb');
    expect(detectFlavor('5.5.5-10.5.2-MariaDB', '').version).toBe('10.5.2');
  });

  it('MariaDB 10.5-10.10 bypass with READ_ONLY ADMIN or SUPER; older with SUPER', () => {
    expect(detectFlavor('10.6.18-MariaDB', '').bypassPrivileges).toEqual(['READ_ONLY ADMIN', 'SUPER']);
    expect(detectFlavor('10.4.30-MariaDB', '').bypassPrivileges).toEqual(['SUPER']);
  });

  it('MySQL capabilities by version', () => {
    expect(detectFlavor('8.4.3', 'MySQL Community Server - GPL')).toMatchObject({
      kind: 'mysql',
      superReadOnly: true,
      persist: true,
      schemaReadOnly: true,
      gtidVariable: 'gtid_executed',
      binlogStatusSql: 'SHOW BINARY LOG STATUS',
    });
    expect(detectFlavor('8.0.21', 'MySQL Community Server - GPL')).toMatchObject({ persist: true, schemaReadOnly: false, binlogStatusSql: 'SHOW MASTER STATUS' });
    expect(detectFlavor('8.0.22', '')).toMatchObject({ schemaReadOnly: true });
    expect(detectFlavor('5.7.44-log', '')).toMatchObject({ superReadOnly: true, persist: false, schemaReadOnly: false });
  });

  it('refuses versions that are too old with PreflightError("version")', () => {
    expect(() => assertSupported(detectFlavor('5.6.51', ''), 'db:3306')).toThrow(PreflightError);
    expect(() => assertSupported(detectFlavor('10.3.39-MariaDB', ''), 'db:3306')).toThrow(/MariaDB 10\.3\.39 .* not supported/);
    try {
      assertSupported(detectFlavor('5.7.7', ''), 'db:3306');
    } catch (e) {
      expect((e as PreflightError).code).toBe('version');
    }
    expect(() => assertSupported(detectFlavor('10.4.2-MariaDB', ''), 'db')).not.toThrow();
    expect(() => detectFlavor('garbage', '')).toThrow(PreflightError);
  });
});
