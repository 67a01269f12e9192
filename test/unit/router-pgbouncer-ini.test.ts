import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseConnstr, quoteConnValue, readDatabaseEntry, rewriteDatabaseEntry } from '../../adapters/routers/pgbouncer-ini.js';

const INI = [
  ';; managed by ops — do not reorder',
  '[databases]',
  '# the shop, moving soon',
  'shop = host=10.0.0.1   port=5432 dbname=shop pool_size=20 user=app',
  'other=host=10.0.0.9 dbname=other',
  '"odd ""name""" = host=10.0.0.7 dbname=\'my db\'',
  '',
  '[pgbouncer]',
  'listen_port = 6432',
  'shop = not-a-database-entry',
  '',
].join('\n');

describe('PgBouncer ini rewrite', () => {
  it('changes only host and port of the entry, keeping every other byte', () => {
    const out = rewriteDatabaseEntry(INI, 'shop', { host: '10.0.0.2', port: 6543 });
    const before = INI.split('\n');
    const after = out.split('\n');
    expect(after).toHaveLength(before.length);
    after.forEach((l, i) => {
      if (i === 3) expect(l).toBe('shop = host=10.0.0.2   port=6543 dbname=shop pool_size=20 user=app');
      else expect(l).toBe(before[i]);
    });
  });

  it('adds keys the entry did not have and quotes values that need it', () => {
    const out = rewriteDatabaseEntry(INI, 'other', { host: '/var/run/pg sock', port: 5433, database: "o'brien" });
    expect(out.split('\n')[4]).toBe("other=host='/var/run/pg sock' dbname='o''brien' port=5433");
  });

  it('finds a double-quoted entry name and rewrites a quoted value', () => {
    const out = rewriteDatabaseEntry(INI, 'odd "name"', { host: 'h2', port: 1, database: 'new db' });
    expect(out.split('\n')[5]).toBe('"odd ""name""" = host=h2 dbname=\'new db\' port=1');
    expect(readDatabaseEntry(out, 'odd "name"')).toEqual({ host: 'h2', port: 1, database: 'new db' });
  });

  it('keeps CRLF line endings', () => {
    const crlf = INI.replace(/\n/g, '\r\n');
    const out = rewriteDatabaseEntry(crlf, 'shop', { host: 'x', port: 2 });
    expect(out.split('\r\n')[3]).toBe('shop = host=x   port=2 dbname=shop pool_size=20 user=app');
    expect(out.replace(/\r\n/g, '').length).toBe(out.split('\r\n').join('').length);
  });

  it('reads where an entry points, with PgBouncer defaults', () => {
    expect(readDatabaseEntry(INI, 'shop')).toEqual({ host: '10.0.0.1', port: 5432, database: 'shop' });
    expect(readDatabaseEntry(INI, 'other')).toEqual({ host: '10.0.0.9', port: 5432, database: 'other' });
  });

  it('refuses a missing, duplicated or wildcard-only entry with the file name', () => {
    expect(() => rewriteDatabaseEntry(INI, 'nope', { host: 'h', port: 1 })).toThrow(/pgbouncer.ini: no \[databases\] entry "nope"/);
    expect(() => readDatabaseEntry('[databases]\na = host=x\na = host=y\n', 'a', '/etc/p.ini')).toThrow(/\/etc\/p.ini: \[databases\] defines "a" twice \(lines 2 and 3\)/);
    const e = (() => {
      try {
        readDatabaseEntry('[databases]\n* = host=x\n', 'shop');
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).hint).toContain('"*" fallback');
  });

  it('parses connection strings like PgBouncer', () => {
    expect(parseConnstr("host=a  port = 5 dbname='x y' password='it''s'").map((p) => [p.key, p.value])).toEqual([
      ['host', 'a'],
      ['port', '5'],
      ['dbname', 'x y'],
      ['password', "it's"],
    ]);
    expect(() => parseConnstr("host='a")).toThrow(/unterminated quote/);
    expect(() => parseConnstr('host')).toThrow(/bad PgBouncer connection string/);
    expect(quoteConnValue('plain')).toBe('plain');
    expect(quoteConnValue('')).toBe("''");
  });
});
