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
