import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCutoverEnv, type MariadbEnv } from '../helpers/cutover-env.js';
import { exec, mariadbMissing } from '../helpers/mariadb.js';
import { connectMysql, mappedQuery } from '../../adapters/mysql/mysql-connection.js';
import { copyAtOnePosition, copyUnits, readCopyTables } from '../../adapters/mysql/mysql-snapshot-copy.js';
import type { SyncProgressEvent } from '../../src/engine/cutover-adapter.js';
import { parseDbUrl } from '../../src/util/db-url.js';

const ROWS = 60_000;

describe.skipIf(mariadbMissing)('MariaDB parallel copy: a table loading as one part reports what it has streamed', () => {
  let e: MariadbEnv;

  beforeAll(async () => {
    e = await startCutoverEnv('mariadb');
    const table = 'CREATE TABLE slowload.nokey_big (n INT NOT NULL, pad VARCHAR(200) NOT NULL)';
    await exec(e.src, 'CREATE DATABASE slowload', table, `INSERT INTO slowload.nokey_big SELECT seq, REPEAT(MD5(seq), 4) FROM slowload.seq_1_to_${ROWS}`);
    await exec(e.dst, 'CREATE DATABASE slowload', table);
  }, 120_000);
  afterAll(async () => e?.stop());

  it('progress events before the table is in carry its streamed rows (0 < rows ≤ all, bytes below the total); the last one has every row', async () => {
    const ep = (sb: MariadbEnv['src']) => parseDbUrl(`mysql://root@127.0.0.1:${sb.port}/slowload`, { password: sb.password });
    const [src, dst] = await Promise.all([connectMysql(ep(e.src)), connectMysql(ep(e.dst))]);
    try {
      const q = mappedQuery(src.conn, ep(e.src));
      const found = await readCopyTables(q, 'slowload');
      if (!('tables' in found)) throw new Error(found.unsupported);
      // No integer key: one part, whatever its size.
      const units = await copyUnits(q, 'slowload', found.tables, 256 * 1024 * 1024, 2);
      expect(units).toHaveLength(1);
      const events: SyncProgressEvent[] = [];
      const r = await copyAtOnePosition(
        { source: ep(e.src), target: ep(e.dst), database: 'slowload', jobs: 2, lockTimeoutMs: 5000, secrets: [e.src.password, e.dst.password], flavor: src.flavor, progressEveryMs: 5 },
        units,
        q,
        mappedQuery(dst.conn, ep(e.dst)),
        (ev) => events.push(ev),
      );
      expect(r.rows).toBe(ROWS);
      const done = events.findIndex((ev) => ev.tableRows !== undefined);
      expect(done).toBeGreaterThan(0);
      const midway = events.slice(0, done).filter((ev) => (ev.rowsDone ?? 0) > 0);
      expect(midway.length).toBeGreaterThan(0);
      for (const ev of midway) {
        expect(ev.table).toBeUndefined();
        expect(ev.rowsDone).toBeLessThanOrEqual(ROWS);
        expect(ev.bytesDone).toBeLessThan(ev.bytesTotal!);
      }
      // Never backwards.
      const rows = events.map((ev) => ev.rowsDone ?? 0);
      for (let i = 1; i < rows.length; i++) expect(rows[i]).toBeGreaterThanOrEqual(rows[i - 1]!);
      expect(events[done]).toMatchObject({ tableRows: ROWS, rowsDone: ROWS });
    } finally {
      await Promise.all([src.conn.end(), dst.conn.end()]);
    }
  }, 120_000);
});
