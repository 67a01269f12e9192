import { describe, expect, it } from 'vitest';
import { deferrableIndexes, escapeField, isGeneratedColumn, keyRanges, loadSql, partsFor, rowLine, selectSql, type CopyTable } from '../../adapters/mysql/mysql-snapshot-copy.js';

const big: CopyTable = {
  name: 'big',
  bytes: 600 * 1024 * 1024,
  intKey: 'id',
  columns: [
    { name: 'id', bit: false },
    { name: 'f', bit: true },
  ],
};

describe('MariaDB parallel copy units', () => {
  it('cuts a key span into ranges whose first and last are open, with no gap or overlap', () => {
    const r = keyRanges(1n, 1000n, 4);
    expect(r).toEqual([{ to: 251n }, { from: 251n, to: 501n }, { from: 501n, to: 751n }, { from: 751n }]);
    expect(keyRanges(5n, 5n, 8)).toEqual([{}]);
    expect(keyRanges(-10n, -7n, 16)).toHaveLength(4);
  });

  it('splits only tables with one integer key, above the split size or one worker share', () => {
    expect(partsFor(big, big.bytes, 256 * 1024 * 1024, 3)).toBe(3);
    expect(partsFor({ bytes: big.bytes }, big.bytes, 256 * 1024 * 1024, 3)).toBe(1);
    expect(partsFor({ bytes: 10 * 1024 * 1024, intKey: 'id' }, 20 * 1024 * 1024, 256 * 1024 * 1024, 3)).toBe(1);
  });

  it('reads a range with the key bounds and BIT as a number; loads BIT through variables', () => {
    expect(selectSql('d', { table: big, bytes: 1, range: { from: 10n, to: 20n } })).toBe('SELECT `id`, `f` + 0 FROM `d`.`big` WHERE `id` >= 10 AND `id` < 20');
    expect(selectSql('d', { table: big, bytes: 1, range: { to: 20n } })).toBe('SELECT `id`, `f` + 0 FROM `d`.`big` WHERE `id` < 20');
    expect(loadSql('d', big)).toMatch(/CHARACTER SET binary .*\(@c0, @c1\) SET `id` = @c0, `f` = CAST\(@c1 AS UNSIGNED\)$/);
    expect(loadSql('d', { ...big, columns: [{ name: 'a`b', bit: false }] })).toMatch(/\(`a``b`\)$/);
    // MySQL 8 refuses JSON from a binary string: the bytes are read as utf8mb4 (MySQL cannot run here: SQL only).
    expect(
      loadSql('d', {
        ...big,
        columns: [
          { name: 'id', bit: false },
          { name: 'doc', bit: false, json: true },
        ],
      }),
    ).toMatch(/\(@c0, @c1\) SET `id` = @c0, `doc` = CONVERT\(@c1 USING utf8mb4\)$/);
  });

  it('escapes exactly the bytes LOAD DATA reads specially, and NULL as \\N', () => {
    expect(escapeField(null).toString()).toBe('\\N');
    expect(escapeField(Buffer.from('plain')).toString()).toBe('plain');
    expect(escapeField(Buffer.from('a\tb\nc\\d\re\0')).toString()).toBe('a\\tb\\nc\\\\d\\re\\0');
    expect(escapeField(Buffer.from('\\N')).toString()).toBe('\\\\N');
    expect(Buffer.concat(rowLine([Buffer.from('x'), null, Buffer.from([0xff])]))).toEqual(Buffer.from([0x78, 0x09, 0x5c, 0x4e, 0x09, 0xff, 0x0a]));
  });

  it('defers plain secondary keys only, and none of a table with a foreign key', () => {
    const ddl = [
      'CREATE TABLE `t` (',
      '  `id` bigint(20) NOT NULL AUTO_INCREMENT,',
      '  `k` int(11) NOT NULL,',
      '  `pad` varchar(1024) NOT NULL,',
      '  PRIMARY KEY (`id`),',
      '  UNIQUE KEY `u` (`pad`(10)),',
      '  KEY `k` (`k`),',
      '  KEY `odd``name` (`k`,`pad`(20)),',
      '  FULLTEXT KEY `f` (`pad`)',
      ') ENGINE=InnoDB',
    ].join('\n');
    expect(deferrableIndexes(ddl)).toEqual([
      { name: 'k', definition: 'KEY `k` (`k`)' },
      { name: 'odd`name', definition: 'KEY `odd``name` (`k`,`pad`(20))' },
    ]);
    expect(deferrableIndexes(ddl.replace(') ENGINE', '  CONSTRAINT `fk` FOREIGN KEY (`k`) REFERENCES `p` (`id`)\n) ENGINE'))).toEqual([]);
  });
});

describe('generated columns are left to the target, MySQL 8 expression defaults are copied', () => {
  it('reads information_schema.COLUMNS.EXTRA of both engines', () => {
    // MariaDB 10.11 (measured here) and MySQL 8 spell generated columns the same way.
    expect(['VIRTUAL GENERATED', 'STORED GENERATED', 'stored generated'].map(isGeneratedColumn)).toEqual([true, true, true]);
    // MySQL 8: DEFAULT CURRENT_TIMESTAMP [ON UPDATE ...] columns hold data.
    expect(['DEFAULT_GENERATED', 'DEFAULT_GENERATED on update CURRENT_TIMESTAMP', 'on update current_timestamp()', 'auto_increment', ''].map(isGeneratedColumn)).toEqual([false, false, false, false, false]);
  });
});
