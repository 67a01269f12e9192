import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { mapMysqlError } from '../../adapters/mysql/mysql-connection.js';
import { parseDbUrl } from '../../src/util/db-url.js';

const ep = parseDbUrl('mariadb://root@db.example:3307/shop', { password: 'Adm1n-pw' });
const REPL = 'Repl-9f3c2a7e';
const HASH = '*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4';

/** Every string reachable from the error: own properties (enumerable or not) and the cause chain. */
function everything(e: unknown, seen = new Set<unknown>()): string {
  if (e === null || typeof e !== 'object' || seen.has(e)) return String(e);
  seen.add(e);
  return (
    Object.getOwnPropertyNames(e)
      .map((k) => `${k}=${everything((e as Record<string, unknown>)[k], seen)}`)
      .join('\n') + inspect(e, { depth: 10 })
  );
}

function driverError(errno: number, code: string): Error {
  return Object.assign(new Error(`You have an error in your SQL syntax near 'MASTER_PASSWORD = '${REPL}''`), {
    errno,
    code,
    sqlState: '42000',
    sql: `CHANGE MASTER 'cutover_x' TO MASTER_HOST = 'src', MASTER_USER = 'cutover_repl_x', MASTER_PASSWORD = '${REPL}'; CREATE USER u IDENTIFIED BY PASSWORD '${HASH}' -- Adm1n-pw`,
    sqlMessage: `near 'MASTER_PASSWORD = '${REPL}'' -- Adm1n-pw`,
  });
}

describe('a failing statement that carries a password leaves no secret in the error', () => {
  for (const [errno, code] of [
    [1064, 'ER_PARSE_ERROR'],
    [1227, 'ER_SPECIFIC_ACCESS_DENIED_ERROR'],
    [1205, 'ER_LOCK_WAIT_TIMEOUT'],
    [1045, 'ER_ACCESS_DENIED_ERROR'],
  ] as const) {
    it(`errno ${errno}: not in the message, hint, own properties or cause chain; code and errno kept`, () => {
      const e = mapMysqlError(driverError(errno, code), ep, 'configuring replica connection', [REPL]);
      const all = everything(e);
      expect(all).not.toContain(REPL);
      expect(all).not.toContain(HASH);
      expect(all).not.toContain('Adm1n-pw');
      expect((e.cause as { errno?: number }).errno).toBe(errno);
      expect((e.cause as { code?: string }).code).toBe(code);
    });
  }
});
