import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scramVerifier, secretMatches } from '../../adapters/postgres/postgres-scram.js';
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

  it('a plain password is checked as the server would: SCRAM with the stored salt, md5 with the role name', () => {
    expect(secretMatches('s3cret', 'app', stored)).toBe(true);
    expect(secretMatches('other', 'app', stored)).toBe(false);
    const md5 = `md5${createHash('md5').update('s3cretapp').digest('hex')}`;
    expect(secretMatches('s3cret', 'app', md5)).toBe(true);
    expect(secretMatches('s3cret', 'bob', md5)).toBe(false);
  });

  it('a SCRAM secret or an md5 hash logs in only where it is the stored verifier itself', () => {
    expect(secretMatches(stored, 'app', stored)).toBe(true);
    expect(secretMatches(scramVerifier('s3cret'), 'app', stored)).toBe(false);
    const md5 = `md5${createHash('md5').update('s3cretapp').digest('hex')}`;
    expect(secretMatches(md5, 'app', md5)).toBe(true);
    expect(secretMatches(md5, 'app', stored)).toBe(false);
  });
});
