import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseDbUrl, urlHasPassword } from '../../src/util/db-url.js';

describe('parseDbUrl', () => {
  it('parses a postgres URL with defaults', () => {
    const ep = parseDbUrl('postgres://app@db1/shop');
    expect(ep).toMatchObject({ engine: 'postgres', host: 'db1', port: 5432, user: 'app', database: 'shop' });
    expect(ep.password).toBeUndefined();
  });

  it('maps every scheme to its engine and default port', () => {
    expect(parseDbUrl('postgresql://u@h/d').engine).toBe('postgres');
    expect(parseDbUrl('mysql://u@h/d')).toMatchObject({ engine: 'mysql', port: 3306 });
    expect(parseDbUrl('mariadb://u@h:3307/d')).toMatchObject({ engine: 'mariadb', port: 3307 });
  });

  it('decodes percent-encoded passwords with @:/% and keeps them out of display', () => {
    const ep = parseDbUrl('postgres://app:p%40ss%3Aw%2Fo%25rd@db1:6543/shop');
    expect(ep.password).toBe('p@ss:w/o%rd');
    expect(ep.port).toBe(6543);
    expect(ep.display).not.toContain('p%40ss');
    expect(ep.display).toContain('***');
  });

  it('lets an explicit password override the URL one', () => {
    expect(parseDbUrl('postgres://app:old@h/d', { password: 'new' }).password).toBe('new');
  });

  it('decodes odd database names', () => {
    expect(parseDbUrl('postgres://u@h/my%20db%2Dx%C3%A9').database).toBe('my db-xé');
  });

  it('takes a socket directory from ?host=', () => {
    expect(parseDbUrl('postgres://u@localhost/d?host=/var/run/postgresql').host).toBe('/var/run/postgresql');
  });

  it.each([
    ['not a url', /not a database URL/],
    ['http://u@h/d', /unsupported URL scheme "http"/],
    ['postgres://h/d', /no user/],
    ['postgres://u:%zz@h/d', /bad password encoding/],
    ['postgres://u@h:99999/d', /not a database URL|bad port/],
  ])('rejects %s with a UsageError', (url, msg) => {
    expect(() => parseDbUrl(url)).toThrow(UsageError);
    expect(() => parseDbUrl(url)).toThrow(msg);
  });

  it('never echoes a password in an error', () => {
    try {
      parseDbUrl('http://u:hunter2@h/d');
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2');
    }
  });

  it('refuses a password with an unencoded @ or # without echoing any part of it', () => {
    for (const url of ['postgres://app:pa@ss@db1:5x/shop', 'postgres://app:se@cr#et@db1/shop', 'postgres://app:x#y@db1/shop']) {
      const e = (() => {
        try {
          parseDbUrl(url);
        } catch (err) {
          return err as Error;
        }
      })();
      expect(e, url).toBeInstanceOf(UsageError);
      for (const part of ['pa@ss', 'ss@', 'se@cr', 'cr#et', 'x#y', '#y']) expect(e!.message).not.toContain(part);
    }
  });

  it('urlHasPassword', () => {
    expect(urlHasPassword('postgres://u:p@h/d')).toBe(true);
    expect(urlHasPassword('postgres://u@h/d')).toBe(false);
  });
});

describe('TLS parameters: libpq and MySQL meaning, nothing silently weaker', () => {
  const usage = (url: string) => {
    try {
      parseDbUrl(url);
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      expect((e as UsageError).exitCode).toBe(2);
      return `${(e as Error).message} | ${(e as UsageError).hint}`;
    }
    throw new Error(`accepted ${url}`);
  };

  it('rejects an unknown sslmode such as verify_full, naming the allowed values', () => {
    expect(usage('postgres://u@h/d?sslmode=verify_full')).toMatch(/unknown sslmode "verify_full".*disable, allow, prefer, require, verify-ca, verify-full/);
    expect(usage('mysql://u@h/d?ssl-mode=VERIFY_FULL')).toMatch(/unknown ssl-mode "VERIFY_FULL".*VERIFY_IDENTITY/);
  });

  it("rejects the other engine's spelling instead of ignoring it", () => {
    expect(usage('postgres://u@h/d?ssl-mode=REQUIRED')).toMatch(/ssl-mode is MySQL's parameter/);
    expect(usage('mysql://u@h/d?sslmode=require')).toMatch(/sslmode is libpq's parameter/);
  });

  it('verifying modes need the CA file, so the tool and its child tools trust the same roots', () => {
    expect(usage('postgres://u@h/d?sslmode=verify-ca')).toMatch(/needs sslrootcert/);
    expect(usage('mariadb://u@h/d?ssl-mode=VERIFY_IDENTITY')).toMatch(/needs ssl-ca/);
  });

  it('maps modes to what is verified: libpq default prefer; require + sslrootcert verifies the chain', () => {
    expect(parseDbUrl('postgres://u@h/d').tls).toMatchObject({ mode: 'prefer', verify: 'none' });
    expect(parseDbUrl('postgres://u@h/d?sslmode=require').tls).toMatchObject({ mode: 'require', verify: 'none' });
    expect(parseDbUrl('postgres://u@h/d?sslmode=require&sslrootcert=/ca.pem').tls).toMatchObject({ mode: 'require', verify: 'chain', ca: '/ca.pem' });
    expect(parseDbUrl('postgres://u@h/d?sslmode=verify-ca&sslrootcert=/ca.pem').tls.verify).toBe('chain');
    expect(parseDbUrl('postgres://u@h/d?sslmode=verify-full&sslrootcert=/ca.pem&sslcert=/c&sslkey=/k&sslcrl=/crl').tls).toMatchObject({ verify: 'full', cert: '/c', key: '/k', crl: '/crl' });
  });

  it('MySQL: PREFERRED by default, VERIFY_CA when only ssl-ca is given, values case-insensitive', () => {
    expect(parseDbUrl('mysql://u@h/d').tls).toMatchObject({ mode: 'prefer', verify: 'none' });
    expect(parseDbUrl('mysql://u@h/d?ssl-ca=/ca.pem').tls).toMatchObject({ mode: 'verify-ca', verify: 'chain' });
    expect(parseDbUrl('mariadb://u@h/d?ssl-mode=verify_identity&ssl-ca=/ca.pem').tls).toMatchObject({ mode: 'verify-full', verify: 'full' });
    expect(parseDbUrl('mariadb://u@h/d?ssl-mode=REQUIRED').tls).toMatchObject({ mode: 'require', verify: 'none' });
  });
});
