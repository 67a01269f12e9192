import { describe, expect, it } from 'vitest';
import { fenceSettingSql, loginSql, quoteIdent, quoteLiteral } from '../../adapters/postgres/postgres-sql.js';

describe('PostgreSQL quoting', () => {
  it.each([
    ['shop', '"shop"'],
    ['my db', '"my db"'],
    ['we"ird', '"we""ird"'],
    ['select', '"select"'],
    ['tenant-42', '"tenant-42"'],
    ['Ünïcödé', '"Ünïcödé"'],
  ])('quoteIdent(%j) = %s', (name, quoted) => expect(quoteIdent(name)).toBe(quoted));

  it('rejects empty names and NUL bytes', () => {
    expect(() => quoteIdent('')).toThrow(/empty/);
    expect(() => quoteIdent('a\0b')).toThrow(/NUL/);
  });

  it('quotes literals, switching to E-strings for backslashes', () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteLiteral('a\\b')).toBe("E'a\\\\b'");
  });
});

describe('fence SQL', () => {
  it('builds SET and RESET per scope', () => {
    expect(fenceSettingSql('server', undefined, 'on')).toBe("ALTER SYSTEM SET default_transaction_read_only = 'on'");
    expect(fenceSettingSql('database', 'my "db"', 'on')).toBe(`ALTER DATABASE "my ""db""" SET default_transaction_read_only = 'on'`);
    expect(fenceSettingSql('role', 'app', null)).toBe('ALTER ROLE "app" RESET default_transaction_read_only');
    expect(loginSql('app', false)).toBe('ALTER ROLE "app" NOLOGIN');
  });

  it('needs a name for database and role scope', () => {
    expect(() => fenceSettingSql('database', undefined, 'on')).toThrow(/needs a name/);
  });
});
