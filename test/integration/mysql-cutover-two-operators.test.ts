import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { parkAtStep } from '../helpers/kill-at-step.js';
import { findHaproxy } from '../../src/sandbox/haproxy-sandbox.js';
import { connectMysql } from '../../adapters/mysql/mysql-connection.js';
import { parseDbUrl } from '../../src/util/db-url.js';
import { missing } from '../helpers/availability.js';
import { mariadbMissing } from '../helpers/mariadb.js';
import { appCanWrite, seedMysqlDatabase, startCutoverEnv, writeMysqlPlan, type MariadbEnv } from '../helpers/cutover-env.js';

const haproxyMissing = await missing('HAProxy (haproxy)', () => findHaproxy());

describe.skipIf(mariadbMissing ?? haproxyMissing)('two operators with separate state dirs run the same MariaDB plan', () => {
  let e: MariadbEnv;
  let stateRoot: string;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startCutoverEnv('mariadb');
    stateRoot = await tempStateDir(e.src.dir);
    await seedMysqlDatabase(e, 'apart', 300);
  });
  afterAll(async () => e?.stop());

  it("the tool's sessions (which hold GET_LOCK) are not closed by the server's idle timeouts", async () => {
    const { conn } = await connectMysql(parseDbUrl(e.src.url('apart'), { password: e.src.password }));
    try {
      const [rows] = await conn.query<import('mysql2/promise').RowDataPacket[]>('SELECT @@session.wait_timeout AS w, @@session.interactive_timeout AS i');
      expect({ w: Number(rows[0]!.w), i: Number(rows[0]!.i) }).toEqual({ w: 31536000, i: 31536000 });
    } finally {
      await conn.end();
    }
  });

  it('the second is refused by GET_LOCK on the source, naming the holder connection; it is let in once the first is gone', async () => {
    const dirA = join(stateRoot, 'a');
    const dirB = join(stateRoot, 'b');
    await Promise.all([mkdir(dirA), mkdir(dirB)]);
    const planA = await writeMysqlPlan(e, { db: 'apart', stateDir: dirA, router: false });
    const planB = await writeMysqlPlan(e, { db: 'apart', stateDir: dirB, router: false });
    expect((await cli(['sync', planA], e.env)).code).toBe(0);
    const a = await parkAtStep(['run', planA, '--yes'], e.env, dirA, 'verify');
    try {
      const b = await cli(['run', planB, '--yes'], e.env);
      expect(b.code, b.err).toBe(5);
      expect(b.err).toMatch(/locked on the source: session \d+ \(user root, from 127\.0\.0\.1:\d+\)/);
      expect(await appCanWrite(e.src, 'apart')).toBe(false);
      // A rollback from elsewhere cannot know the holder is gone: refused, nothing changed, the holder named.
      const refusedRb = await cli(['rollback', planB], e.env);
      expect(refusedRb.code, refusedRb.err).toBe(5);
      expect(refusedRb.err).toMatch(/locked on the source by .*nothing was changed/);
      expect(await appCanWrite(e.src, 'apart')).toBe(false);
      // --force (the operator says the holder is gone) unfences anyway and names the holder.
      const rb = await cli(['rollback', planB, '--force'], e.env);
      expect(rb.code, rb.err).toBe(5);
      expect(rb.err).toMatch(/source is writable again.*locked on the source by session \d+ \(user root, from 127\.0\.0\.1:\d+\)/);
      expect(await appCanWrite(e.src, 'apart')).toBe(true);
    } finally {
      var stopped = await a.stop('SIGINT');
    }
    expect(stopped.exitCode, stopped.stderr).toBe(1);
    expect(await appCanWrite(e.src, 'apart')).toBe(true);
    const b = await cli(['rollback', planB], e.env);
    expect(b.code, b.err).toBe(0);
    // The run checks with IS_USED_LOCK that its session still holds GET_LOCK before the hold and at the point of no return.
    const done = await cli(['run', planB, '--yes'], e.env);
    expect(done.code, done.err).toBe(0);
  });
});
