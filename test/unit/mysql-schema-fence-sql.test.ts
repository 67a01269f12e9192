import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { detectFlavor } from '../../adapters/mysql/mysql-flavor.js';
import { schemaLeakCheck } from '../../adapters/mysql/mysql-schema-fence.js';
import type { Query } from '../../adapters/mysql/mysql-sessions.js';
import { binlogEventTouchesSchema, grantName, informationSchemaGrantee, namesSchemaExactly, restoreGrantSql, revokeGrantSql, type Grantee } from '../../adapters/mysql/mysql-schema-fence-sql.js';

const odd: Grantee = { kind: 'account', user: "o'dd`us\\er", host: '10.0.0.%' };

describe('schema fence SQL (MariaDB / MySQL < 8.0.22)', () => {
  it('quotes the account as a string literal and the schema as an identifier, with backticks and quotes doubled', () => {
    expect(revokeGrantSql(odd, { level: 'schema', pattern: "sh'o`p", privileges: ['INSERT', 'UPDATE', 'DELETE'] })).toBe("REVOKE INSERT, UPDATE, DELETE ON `sh'o``p`.* FROM 'o''dd`us\\\\er'@'10.0.0.%'");
    expect(restoreGrantSql(odd, { level: 'schema', pattern: "sh'o`p", privileges: ['INSERT', 'CREATE VIEW', 'DELETE HISTORY'] })).toBe(
      "GRANT INSERT, CREATE VIEW, DELETE HISTORY ON `sh'o``p`.* TO 'o''dd`us\\\\er'@'10.0.0.%'",
    );
  });

  it('keeps an escaped wildcard in the schema pattern as stored, so the revoke hits the same mysql.db row', () => {
    expect(revokeGrantSql({ kind: 'account', user: 'app', host: '%' }, { level: 'schema', pattern: 'my\\_db', privileges: ['INSERT'] })).toBe("REVOKE INSERT ON `my\\_db`.* FROM 'app'@'%'");
  });

  it('table- and column-level grants quote schema, table and every column', () => {
    const app: Grantee = { kind: 'account', user: 'app', host: '%' };
    expect(revokeGrantSql(app, { level: 'table', schema: 'shop', table: "t'`1", privileges: ['INSERT', 'DELETE'] })).toBe("REVOKE INSERT, DELETE ON `shop`.`t'``1` FROM 'app'@'%'");
    expect(restoreGrantSql(app, { level: 'column', schema: 'shop', table: 't', privilege: 'UPDATE', columns: ['v', 'we`ird'] })).toBe("GRANT UPDATE (`v`, `we``ird`) ON `shop`.`t` TO 'app'@'%'");
  });

  it('a MariaDB role is named without a host part', () => {
    expect(revokeGrantSql({ kind: 'role', name: "wr'x" }, { level: 'schema', pattern: 'shop', privileges: ['INSERT'] })).toBe("REVOKE INSERT ON `shop`.* FROM 'wr''x'");
    expect(informationSchemaGrantee({ kind: 'role', name: "wr'x" })).toBe("'wr'x'@''");
    // information_schema prints names without doubling quotes (measured on MariaDB 10.11).
    expect(informationSchemaGrantee(odd)).toBe("'o'dd`us\\er'@'10.0.0.%'");
  });

  it('refuses privilege names outside the write list and empty lists, so nothing unquoted reaches the SQL', () => {
    const app: Grantee = { kind: 'account', user: 'app', host: '%' };
    expect(() => revokeGrantSql(app, { level: 'schema', pattern: 'shop', privileges: ['INSERT; DROP DATABASE shop'] })).toThrow(/not a write privilege/);
    expect(() => revokeGrantSql(app, { level: 'schema', pattern: 'shop', privileges: [] })).toThrow(/no privileges/);
    expect(() => revokeGrantSql(app, { level: 'schema', pattern: '', privileges: ['INSERT'] })).toThrow(/empty SQL identifier/);
  });

  it('maps the information_schema spelling of DELETE HISTORY', () => {
    expect(grantName('DELETE VERSIONING ROWS')).toBe('DELETE HISTORY');
    expect(grantName('insert')).toBe('INSERT');
  });

  it('tells exact schema grants from wildcard patterns that also cover other schemas', () => {
    expect(namesSchemaExactly('shop', 'shop')).toBe(true);
    expect(namesSchemaExactly('my\\_db', 'my_db')).toBe(true);
    expect(namesSchemaExactly('my_db', 'my_db')).toBe(true);
    expect(namesSchemaExactly('sho%', 'shop')).toBe(false);
    expect(namesSchemaExactly('%', 'shop')).toBe(false);
    expect(namesSchemaExactly('sho_', 'shop')).toBe(false);
  });

  it('recognises binary log events that wrote to the schema', () => {
    expect(binlogEventTouchesSchema('Table_map', 'table_id: 18 (shop.t)', 'shop')).toBe(true);
    expect(binlogEventTouchesSchema('Table_map', 'table_id: 18 (shopping.t)', 'shop')).toBe(false);
    expect(binlogEventTouchesSchema('Table_map', 'table_id: 18 (other.t)', 'shop')).toBe(false);
    expect(binlogEventTouchesSchema('Query', 'use `shop`; CREATE TABLE x (id int)', 'shop')).toBe(true);
    expect(binlogEventTouchesSchema('Query', 'use `sh``op`; DROP TABLE x', 'sh`op')).toBe(true);
    expect(binlogEventTouchesSchema('Query', 'BEGIN', 'shop')).toBe(false);
    expect(binlogEventTouchesSchema('Annotate_rows', 'INSERT INTO shop.t VALUES (1)', 'shop')).toBe(false);
  });
});

describe('schema leak check reads the binary log position the way the server spells it', () => {
  it('MySQL 8.4 (no SHOW MASTER STATUS): SHOW BINARY LOG STATUS at both ends; MariaDB: SHOW MASTER STATUS', async () => {
    for (const [version, comment, expected] of [
      ['8.4.3', 'MySQL Community Server - GPL', 'SHOW BINARY LOG STATUS'],
      ['10.11.6-MariaDB', 'Debian', 'SHOW MASTER STATUS'],
    ] as const) {
      const asked: string[] = [];
      const q: Query = async <R extends RowDataPacket>(sql: string) => {
        asked.push(sql);
        if (/^SHOW (MASTER|BINARY LOG) STATUS$/.test(sql)) return [{ File: 'binlog.000001', Position: 157 }] as unknown as R[];
        return [] as R[];
      };
      const leak = await schemaLeakCheck(q, detectFlavor(version, comment), 'shop', 0, [], [], []);
      expect(leak).toMatchObject({ clean: true, method: 'binlog' });
      expect(asked.filter((s) => /STATUS$/.test(s))).toEqual([expected, expected]);
    }
  });
});
