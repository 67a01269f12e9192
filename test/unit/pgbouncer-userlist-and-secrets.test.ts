import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scramVerifier, secretMatches } from '../../adapters/postgres/postgres-scram.js';
import { readEntryLogin } from '../../adapters/routers/pgbouncer-ini.js';
import { parseUserlist } from '../../adapters/routers/pgbouncer-userlist.js';

describe('PgBouncer userlist', () => {
  it('reads quoted names and secrets, "" as a quote, and skips comments and odd lines', () => {
    const list = parseUserlist(['; a comment', '"app" "pw with space"', '  "we""ird" "p""w"  extra', 'bare line', '"only-name"', '"" "x"', ''].join('\n'));
    expect([...list]).toEqual([
      ['app', 'pw with space'],
      ['we"ird', 'p"w'],
    ]);
  });
});

describe('whether a pooler secret logs in against a stored verifier', () => {
  const salt = Buffer.from('0123456789abcdef');
  const stored = scramVerifier('s3cret', salt);

  it('a plain password is checked as the server would: SCRAM with the stored salt, md5 with the role name', async () => {
    expect(await secretMatches('s3cret', 'app', stored)).toBe(true);
    expect(await secretMatches('other', 'app', stored)).toBe(false);
    const md5 = `md5${createHash('md5').update('s3cretapp').digest('hex')}`;
    expect(await secretMatches('s3cret', 'app', md5)).toBe(true);
    expect(await secretMatches('s3cret', 'bob', md5)).toBe(false);
  });

  it('a SCRAM secret or an md5 hash logs in only where it is the stored verifier itself', async () => {
    expect(await secretMatches(stored, 'app', stored)).toBe(true);
    expect(await secretMatches(scramVerifier('s3cret'), 'app', stored)).toBe(false);
    const md5 = `md5${createHash('md5').update('s3cretapp').digest('hex')}`;
    expect(await secretMatches(md5, 'app', md5)).toBe(true);
    expect(await secretMatches(md5, 'app', stored)).toBe(false);
  });
});

describe('a [databases] entry’s own login', () => {
  it('user= and password= of the entry (PgBouncer logs in with them instead of the auth_file’s)', () => {
    const ini = ['[databases]', "shop = host=db1 port=5432 user=app password='p w''x'", 'other = host=db2', ''].join('\n');
    expect(readEntryLogin(ini, 'shop')).toEqual({ user: 'app', password: "p w'x" });
    expect(readEntryLogin(ini, 'other')).toEqual({});
  });
});
