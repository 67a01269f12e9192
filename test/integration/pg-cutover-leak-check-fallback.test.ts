import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { pg15Missing, pg17Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing ?? pg17Missing)('a source without logical decoding: the run falls back to a sampled leak check and says so', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    // Method dump needs no logical replication, so such a source can be moved; the decoding slot cannot exist.
    e = await startCutoverEnv('postgres', { srcSettings: { wal_level: 'replica' } });
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'plain', 500);
  });
  afterAll(async () => e?.stop());

  it('check warns, run completes with method sampled and the reason, and the late check says it did not run', async () => {
    const plan = await writePlan(e, { db: 'plain', stateDir, method: 'dump', maxWriteBlocked: '20s' });
    const check = await cli(['check', plan, '--json'], e.env);
    expect(check.json().findings).toContainEqual(expect.objectContaining({ severity: 'warning', check: 'leak check', message: expect.stringMatching(/wal_level is replica/) }));
    const run = await cli(['run', plan, '--yes', '--json'], e.env);
    expect(run.code, run.err).toBe(0);
    const r = run.json();
    expect(r.leakCheck).toMatchObject({ method: 'sampled', fallback: expect.stringMatching(/logical decoding is not available.*wal_level = logical/), late: { checked: false } });
    expect(r.fence.leakClean).toBe(true);
    expect(r.warnings.join('\n')).toMatch(/leak check sampled sessions only, so a very short write could go unseen: logical decoding is not available/);
    expect(r.warnings.join('\n')).toMatch(/leak check after the point of no return not run/);
    expect(await canWrite(e.dst, 'plain')).toBe(true);
  });
});
