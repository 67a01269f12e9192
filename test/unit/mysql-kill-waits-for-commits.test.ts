import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { killSessions, type Query } from '../../adapters/mysql/mysql-sessions.js';

/** A process list in which session 7, once killed, shows `Killed` for `killedReads` reads, then is gone. */
function server(killedReads: number) {
  let killed = false;
  let reads = 0;
  const q: Query = async <R extends RowDataPacket>(sql: string) => {
    if (sql.startsWith('KILL')) {
      killed = true;
      return [] as R[];
    }
    if (!killed) return [{ id: 7, killed: 0 }] as unknown as R[];
    reads++;
    // A query that leaves Killed sessions out sees none (what the fence asked before).
    if (sql.includes("COMMAND <> 'Killed'")) return [] as R[];
    return (reads <= killedReads ? [{ id: 7, killed: 1 }] : []) as unknown as R[];
  };
  return { q, reads: () => reads };
}

describe('killing sessions: a session marked Killed may still be writing its commit', () => {
  it('waits until the session has left the process list, not only until it shows Killed', async () => {
    const s = server(4);
    expect([...(await killSessions(s.q, ['7']))]).toEqual(['7']);
    expect(s.reads()).toBe(5);
  });

  it('a session still Killed after the settle time is rolling back: counted as ended, without waiting for it any longer', async () => {
    const s = server(Number.POSITIVE_INFINITY);
    const t0 = Date.now();
    expect([...(await killSessions(s.q, ['7'], 5000))]).toEqual(['7']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    expect(Date.now() - t0).toBeLessThan(4000);
  });
});
