import { access } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { PostgresSandbox, client, pg15Missing, pg17Missing } from '../helpers/pg.js';

describe.each([
  [15, pg15Missing],
  [17, pg17Missing],
])('sandbox PostgreSQL %i', (major, unavailable) => {
  it.skipIf(unavailable)('starts on its own port with wal_level=logical, password auth over TCP, and is removed by stop()', async () => {
    const sb = await PostgresSandbox.start({ major });
    let dirGone = false;
    try {
      expect(sb.port).not.toBe(5432);
      const c = await client(sb);
      const { rows } = await c.query(`SELECT current_setting('server_version_num')::int / 10000 AS major, current_setting('wal_level') AS wal`);
      expect(rows[0]).toEqual({ major, wal: 'logical' });
      const who = await c.query(`SELECT usename FROM pg_stat_activity WHERE pid = pg_backend_pid()`);
      expect(who.rows[0].usename).toBe('postgres');
      await c.end();
      await expect(client(sb, { password: 'wrong' })).rejects.toMatchObject({ code: '28P01' });
    } finally {
      await sb.stop();
      dirGone = await access(sb.dir).then(
        () => false,
        () => true,
      );
    }
    expect(dirGone).toBe(true);
  });
});
