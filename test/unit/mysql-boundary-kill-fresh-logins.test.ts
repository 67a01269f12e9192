import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { endSessionsAtBoundaries, type Query } from '../../adapters/mysql/mysql-sessions.js';

interface Sighting {
  command: string;
  queryId: number;
  idleMs: number | null;
  /** INNODB_TRX's trx_rows_modified: the session has an open transaction. */
  rowsModified?: string;
}

/**
 * A process list of one app session until it is killed: `at(poll)` says how it looks at each read. `hasQueryId`:
 * MariaDB's columns, else MySQL's (the query naming QUERY_ID fails).
 */
function server(hasQueryId: boolean, at: (poll: number) => Sighting) {
  const asked: string[] = [];
  let killed = false;
  let polls = 0;
  const q: Query = async <R extends RowDataPacket>(sql: string) => {
    asked.push(sql);
    if (sql.startsWith('KILL')) {
      killed = true;
      return [] as R[];
    }
    if (sql.includes('QUERY_ID') && !hasQueryId) throw Object.assign(new Error("Unknown column 'p.QUERY_ID' in 'field list'"), { cause: { errno: 1054 } });
    if (sql.includes('PROCESSLIST p')) {
      if (killed) return [] as R[];
      const s = at(polls++);
      const activity = sql.includes('QUERY_ID') ? { query_id: s.queryId, idle_ms: s.idleMs } : {};
      return [{ id: 7, user: 'app', host: 'h', db: 'shop', command: s.command, state: '', rows_modified: s.rowsModified ?? null, trx_age_ms: null, ...activity }] as unknown as R[];
    }
    return [] as R[];
  };
  return { q, asked, polls: () => polls };
}

const idle = (queryId: number, idleMs: number): Sighting => ({ command: 'Sleep', queryId, idleMs });

describe('ending sessions at statement boundaries: a login that has sent no statement yet', () => {
  it('MariaDB: a session idle for longer than the grace is killed at the first look', async () => {
    const s = server(true, () => idle(41, 1000));
    expect((await endSessionsAtBoundaries(s.q, { exempt: [], timeoutMs: 1000 })).ended).toHaveLength(1);
    expect(s.asked.filter((x) => x.startsWith('KILL'))).toEqual(['KILL CONNECTION 7']);
    expect(s.polls()).toBe(1);
  });

  it('MariaDB: first seen idle for less than the grace, QUERY_ID not 0 (a cached thread keeps the old one): spared while it sends nothing', async () => {
    // Fresh for the whole drain timeout here (its idle time never grows): killed only once the timeout ran out.
    const s = server(true, () => idle(41, 3));
    const t0 = Date.now();
    const r = await endSessionsAtBoundaries(s.q, { exempt: [], timeoutMs: 60 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(60);
    expect(r.ended.map((e) => e.session.threadId)).toEqual(['7']);
  });

  it('MariaDB: ended at its boundary once its QUERY_ID moved (it sent its statement), long before the timeout', async () => {
    const s = server(true, (poll) => (poll < 2 ? idle(41, 3) : poll === 2 ? { command: 'Query', queryId: 90, idleMs: null } : idle(90, 1)));
    const r = await endSessionsAtBoundaries(s.q, { exempt: [], timeoutMs: 10_000 });
    expect(r.ended.map((e) => [e.session.threadId, e.idle])).toEqual([['7', true]]);
    expect(s.polls()).toBe(4);
  });

  it('MariaDB: a session first seen running a statement is no fresh login: killed at its next pause, however short', async () => {
    const s = server(true, (poll) => (poll === 0 ? { command: 'Query', queryId: 90, idleMs: null } : idle(90, 1)));
    const r = await endSessionsAtBoundaries(s.q, { exempt: [], timeoutMs: 10_000 });
    expect(r.ended.map((e) => [e.session.threadId, e.idle])).toEqual([['7', true]]);
    expect(s.polls()).toBe(2);
  });

  it('MariaDB: a login first seen in its connect phase (COMMAND Connect) is waited for, then gets the grace like any fresh login', async () => {
    const s = server(true, (poll) => (poll < 2 ? { command: 'Connect', queryId: 41, idleMs: null } : poll < 4 ? idle(41, 3) : poll === 4 ? { command: 'Query', queryId: 95, idleMs: null } : idle(95, 1)));
    const r = await endSessionsAtBoundaries(s.q, { exempt: [], timeoutMs: 10_000 });
    expect(r.ended.map((e) => [e.session.threadId, e.idle])).toEqual([['7', true]]);
    // Not killed while connecting (polls 0-1) nor in its first pause (2-3): at the pause after its statement.
    expect(s.polls()).toBe(6);
  });

  it('MariaDB: a session in an open transaction has sent statements: no grace, however short its pause', async () => {
    const s = server(true, () => ({ ...idle(41, 3), rowsModified: '0' }));
    const r = await endSessionsAtBoundaries(s.q, { exempt: [], timeoutMs: 10_000 });
    expect(r.ended.map((e) => [e.session.threadId, e.idle])).toEqual([['7', true]]);
    expect(s.polls()).toBe(1);
  });

  it('MySQL (no QUERY_ID in its process list): asks once, then kills idle sessions as before', async () => {
    const s = server(false, () => idle(0, 1));
    const r = await endSessionsAtBoundaries(s.q, { exempt: [], timeoutMs: 1000 });
    expect(r.ended.map((e) => [e.session.threadId, e.idle])).toEqual([['7', true]]);
    expect(s.asked.filter((x) => x.includes('QUERY_ID'))).toHaveLength(1);
  });
});
