import { describe, expect, it } from 'vitest';
import { resolveUrlPassword, UsageError } from '../../src/index.js';

describe('a URL password (readonly) resolves in one order: the named variable, the URL, the engine variable', () => {
  it('the variable named by passwordEnv wins over the URL and PGPASSWORD', () => {
    const r = resolveUrlPassword('postgres://u:inurl@h/db', { PW: 'named', PGPASSWORD: 'engine' }, { name: 'PW', key: '--password-env' });
    expect(r).toEqual({ password: 'named', secret: 'named', inUrl: false, engineEnv: 'PGPASSWORD' });
  });

  it('a named variable that is not set is a usage error naming the setting', () => {
    expect(() => resolveUrlPassword('postgres://u@h/db', {}, { name: 'PW', key: '--password-env' })).toThrow(UsageError);
    expect(() => resolveUrlPassword('postgres://u@h/db', {}, { name: 'PW', key: '--password-env' })).toThrow(/^--password-env: environment variable PW is not set/);
  });

  it("the URL's own password stays in the URL (nothing passed beside it) but is still a secret to scrub", () => {
    expect(resolveUrlPassword('postgres://u:inurl@h/db', { PGPASSWORD: 'engine' })).toEqual({ secret: 'inurl', inUrl: true, engineEnv: 'PGPASSWORD' });
  });

  it("else the engine's usual variable: PGPASSWORD for PostgreSQL, MYSQL_PWD for MySQL and MariaDB", () => {
    expect(resolveUrlPassword('postgres://u@h/db', { PGPASSWORD: 'pg' }).password).toBe('pg');
    expect(resolveUrlPassword('mysql://u@h/db', { MYSQL_PWD: 'my' }).password).toBe('my');
    expect(resolveUrlPassword('mariadb://u@h/db', { MYSQL_PWD: 'maria', PGPASSWORD: 'pg' })).toEqual({ password: 'maria', secret: 'maria', inUrl: false, engineEnv: 'MYSQL_PWD' });
    expect(resolveUrlPassword('postgres://u@h/db', {})).toEqual({ inUrl: false, engineEnv: 'PGPASSWORD' });
  });
});
