import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import { FRESH_LOGIN_GRACE_MS, endSessionsAtBoundaries, type Query } from '../../adapters/mysql/mysql-sessions.js';
import { MariadbSandbox, connect, createAppUser, exec, mariadbMissing, outcome } from '../helpers/mariadb.js';

// A client that connects for each operation (PHP, the rehearsal's writers) sends its statement right after its
// login. The fence ends idle sessions; ending this one between its login and that statement left the client a
// write in doubt (PROTOCOL_CONNECTION_LOST, seen three times in one CI rehearsal).
describe.skipIf(mariadbMissing)('MariaDB fence: a login that has not sent its first statement yet', () => {
  let sb: MariadbSandbox;
  let tool: mysql.Connection;
  let q: Query;

  beforeAll(async () => {
    sb = await MariadbSandbox.start();
    await exec(sb, 'CREATE DATABASE shop', 'CREATE TABLE shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB');
    await createAppUser(sb, 'app', 'app-pw', 'shop');
    tool = await connect(sb);
    q = async <R extends RowDataPacket>(sql: string, params: unknown[] = []) => (await tool.query(sql, params))[0] as R[];
  });
  afterAll(async () => {
    await tool?.end().catch(() => {});
    await sb?.stop();
  });

  /** A login served by a thread another connection left in the thread cache: its QUERY_ID is that connection's last. */
  async function loginOnACachedThread(): Promise<mysql.Connection> {
    const before = await connect(sb, { user: 'app', password: 'app-pw' });
    await before.query('SELECT 1');
    const id = before.threadId;
    await before.end();
    while ((await q('SELECT ID FROM information_schema.PROCESSLIST WHERE ID = ?', [id])).length > 0) await new Promise((r) => setTimeout(r, 5));
    const app = await connect(sb, { user: 'app', password: 'app-pw' });
    const [row] = await q<RowDataPacket & { qid: number }>('SELECT QUERY_ID AS qid FROM information_schema.PROCESSLIST WHERE ID = ?', [app.threadId]);
    // The case the fence met in CI: no statement sent, yet QUERY_ID is not 0.
    expect(Number(row?.qid)).toBeGreaterThan(0);
    return app;
  }

  it('sends it: the statement runs, and the session is ended at its next boundary, not before', async () => {
    const app = await loginOnACachedThread();
    // A longer grace than the default keeps a loaded machine's timer delays out of the result.
    const ending = endSessionsAtBoundaries(q, { exempt: [], timeoutMs: 5000, freshLoginGraceMs: 1000 });
    await new Promise((r) => setTimeout(r, 30));
    expect(await outcome(app.query('INSERT INTO shop.t (v) VALUES (1)'))).toBe('ok');
    const r = await ending;
    expect(r.ended.map((e) => [e.session.user, e.idle])).toEqual([['app', true]]);
    expect(await outcome(app.query('SELECT 1'))).not.toBe('ok');
    app.destroy();
  });

  it('sends nothing (a pool’s idle login): ended once the grace has passed, long before the drain timeout', async () => {
    const app = await loginOnACachedThread();
    const t0 = Date.now();
    const r = await endSessionsAtBoundaries(q, { exempt: [], timeoutMs: 10_000, freshLoginGraceMs: FRESH_LOGIN_GRACE_MS });
    expect(r.ended.map((e) => [e.session.user, e.idle])).toEqual([['app', true]]);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await outcome(app.query('SELECT 1'))).not.toBe('ok');
    app.destroy();
  });
});
