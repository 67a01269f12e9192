import { describe, expect, it } from 'vitest';
import { parseAclItem, settingSql, splitList } from '../../adapters/postgres/postgres-settings.js';

describe('carrying ALTER DATABASE/ROLE ... SET and database privileges', () => {
  it('splits a stored list value the way the server stores it', () => {
    expect(splitList('"$user", public, "Odd ""Q"" Schema"')).toEqual(['$user', 'public', 'Odd "Q" Schema']);
  });

  it('quotes list settings element by element, others as one literal', () => {
    expect(settingSql({ database: false, name: 'search_path', value: '"$user", public' }, 'shop')).toBe(`ALTER DATABASE "shop" SET "search_path" = '$user', 'public'`);
    expect(settingSql({ role: 'app', database: true, name: 'app.tenant', value: "o'brien" }, 'shop')).toBe(`ALTER ROLE "app" IN DATABASE "shop" SET "app.tenant" = 'o''brien'`);
    expect(settingSql({ role: 'app', database: false, name: 'work_mem', value: '8MB' }, 'shop')).toBe(`ALTER ROLE "app" SET "work_mem" = '8MB'`);
  });

  it('reads database aclitems: PUBLIC, quoted grantees, grant options', () => {
    expect(parseAclItem('=Tc/postgres')).toEqual({ grantee: '', privileges: ['TEMPORARY', 'CONNECT'], grantable: [] });
    expect(parseAclItem('"odd=role"=C*c/postgres')).toEqual({ grantee: 'odd=role', privileges: ['CONNECT'], grantable: ['CREATE'] });
  });
});
