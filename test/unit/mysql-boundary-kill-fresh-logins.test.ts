import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { endSessionsAtBoundaries, type Query } from '../../adapters/mysql/mysql-sessions.js';

/** A process list of one idle app session until it is killed; `hasQueryId`: MariaDB's columns, else MySQL's. */
function server(hasQueryId: boolean, fresh: boolean) {
  const asked: string[] = [];
  let killed = false;
  const q: Query = async <R extends RowDataPacket>(sql: string) => {
    asked.push(sql);
    if (sql.startsWith('KILL')) {
      killed = true;
      return [] as R[];
    }
    if (sql.includes('QUERY_ID') && !hasQueryId) throw Object.assign(new Error("Unknown column 'p.QUERY_ID' in 'field list'"), { cause: { errno: 1054 } });
    if (sql.includes('PROCESSLIST p')) {
      if (killed) return [] as R[];
      return [{ id: 7, user: 'app', host: 'h', db: 'shop', command: 'Sleep', state: '', rows_modified: null, trx_age_ms: null, ...(sql.includes('QUERY_ID') ? { fresh: fresh ? 1 : 0 } : {}) }] as unknown as R[];
    }
    return [] as R[];
  };
  return { q, asked };
}

describe('ending sessions at statement boundaries: a login that has sent no statement yet', () => {
  it('MariaDB: an idle session is killed unless the process list marks it a fresh login', async () => {
    const idle = server(true, false);
    expect((await endSessionsAtBoundaries(idle.q, { exempt: [], timeoutMs: 1000 })).ended).toHaveLength(1);
    expect(idle.asked.filter((s) => s.startsWith('KILL'))).toEqual(['KILL CONNECTION 7']);
    // Fresh for the whole drain timeout (it never stops being fresh here): killed only once the timeout ran out.
    const fresh = server(true, true);
    const t0 = Date.now();
    const r = await endSessionsAtBoundaries(fresh.q, { exempt: [], timeoutMs: 60 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(60);
    expect(r.ended.map((e) => e.session.threadId)).toEqual(['7']);
  });

  it('MySQL (no QUERY_ID in its process list): asks once, then kills idle sessions as before', async () => {
    const s = server(false, true);
    const r = await endSessionsAtBoundaries(s.q, { exempt: [], timeoutMs: 1000 });
    expect(r.ended.map((e) => [e.session.threadId, e.idle])).toEqual([['7', true]]);
    expect(s.asked.filter((x) => x.includes('QUERY_ID'))).toHaveLength(1);
  });
});
