import { describe, expect, it } from 'vitest';
import { redactDeep, redactText, redactUrl } from '../../src/util/redact.js';

describe('redaction', () => {
  it('redacts the password of a URL and keeps the rest', () => {
    expect(redactUrl('postgres://app:s3cret@db1:5432/shop?sslmode=require')).toBe('postgres://app:***@db1:5432/shop?sslmode=require');
    expect(redactUrl('postgres://app@db1/shop')).toBe('postgres://app@db1/shop');
  });

  it('redacts URLs inside free text', () => {
    expect(redactText('connect postgres://a:b%40c@h/d failed; mysql://x:y@z/w too')).toBe('connect postgres://a:***@h/d failed; mysql://x:***@z/w too');
  });

  it('redacts key=value and JSON password fields but not prose', () => {
    expect(redactText('PGPASSWORD=abc psql')).toBe('PGPASSWORD=*** psql');
    expect(redactText('host=h password=abc user=u')).toBe('host=h password=*** user=u');
    expect(redactText('{"password": "a\\"b", "user": "u"}')).toBe('{"password": "***", "user": "u"}');
    expect(redactText('check the password: set PGPASSWORD')).toBe('check the password: set PGPASSWORD');
  });

  it('redacts all of a password with an unencoded @, in a URL that does not parse and in one that parses wrongly', () => {
    expect(redactUrl('postgres://app:pa@ss@db1:5x/shop')).toBe('postgres://app:***@db1:5x/shop');
    expect(redactUrl('postgres://app:se@cr#et@db1/x')).toBe('postgres://app:***@db1/x');
    expect(redactText('bad URL postgres://app:p@s@s@db1/shop here')).toBe('bad URL postgres://app:***@db1/shop here');
  });

  it('redacts known secrets, raw and percent-encoded', () => {
    expect(redactText('got p@ss and p%40ss', ['p@ss'])).toBe('got *** and ***');
  });

  it('redactDeep walks objects and blanks password keys', () => {
    const out = redactDeep({ url: 'postgres://u:pw@h/d', nested: [{ password: 'x', note: 'pw' }] }, ['pw']);
    expect(out).toEqual({ url: 'postgres://u:***@h/d', nested: [{ password: '***', note: '***' }] });
  });
});
