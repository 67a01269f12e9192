import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, seedDatabase, startCutoverEnv, writePlan, type CutoverEnv } from '../helpers/cutover-env.js';
import { killAtStep } from '../helpers/kill-at-step.js';
import { pg15Missing, pg17Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing ?? pg17Missing)('two operators run the same plan', () => {
  let e: CutoverEnv;
  let stateRoot: string;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startCutoverEnv();
    stateRoot = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'duo', 500);
    await seedDatabase(e.src, 'stale', 500);
  });
  afterAll(async () => e?.stop());

  it('at once: exactly one proceeds, the other exits 5 naming the holder and changes nothing', async () => {
    const plan = await writePlan(e, { db: 'duo', stateDir: join(stateRoot, 'duo') });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    const [a, b] = await Promise.all([cli(['run', plan, '--yes'], e.env), cli(['run', plan, '--yes'], e.env)]);
    const codes = [a.code, b.code].sort();
    expect(codes, a.err + b.err).toEqual([0, 5]);
    const loser = a.code === 5 ? a : b;
    expect(loser.err).toMatch(/lock|held by|already cut over/);
    expect(await canWrite(e.src, 'duo')).toBe(false);
    expect(await canWrite(e.dst, 'duo')).toBe(true);
  });

  it('a stale lock left by a killed run is taken over with a higher fencing token', async () => {
    const stateDir = join(stateRoot, 'stale');
    const plan = await writePlan(e, { db: 'stale', stateDir });
    expect((await cli(['sync', plan], e.env)).code).toBe(0);
    await killAtStep(['run', plan, '--yes'], e.env, stateDir, 'verify');
    const st = (await cli(['status', plan, '--json'], e.env)).json();
    expect(st.phase).toBe('in-flight');
    const staleToken = st.lock.token;
    const resumed = await cli(['resume', plan, '--yes', '--json'], e.env);
    expect(resumed.code, resumed.err).toBe(0);
    const after = (await cli(['status', plan, '--json'], e.env)).json();
    expect(after.phase).toBe('done');
    expect(after.lock).toBeUndefined();
    expect(await canWrite(e.dst, 'stale')).toBe(true);
    const journalFile = (await readdir(stateDir)).find((f) => f.endsWith('.journal'))!;
    const records = (await readFile(join(stateDir, journalFile), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(records.at(-1).token).toBeGreaterThan(staleToken);
  });
});
