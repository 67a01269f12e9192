import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, sleep, startCutoverEnv, type PostgresEnv } from '../helpers/cutover-env.js';
import { pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';
import { bouncerRoute, missingTenantWrites, seedTenants, TenantWorkload, writeWavesPlan } from '../helpers/waves-env.js';

const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing;
if (unavailable && process.env.CI === 'true') throw new Error(`waves-pg-revert-one-tenant needs ${unavailable}`);
if (unavailable) console.log(`skipped: ${unavailable}`);

const TENANTS = ['rv_a', 'rv_b'];

describe.skipIf(unavailable)('waves with reverse: true: one tenant database reverted alone after its point of no return (PgBouncer, writers to both)', () => {
  let e: PostgresEnv;
  let plan: string;

  beforeAll(async () => {
    e = await startCutoverEnv('postgres', { bouncerDatabases: TENANTS });
    await seedTenants(e, TENANTS);
    plan = await writeWavesPlan(e, { name: 'rv', tenants: TENANTS, stateDir: join(await tempStateDir(e.src.dir), 'rv'), waves: 'reverse: true' });
  });
  afterAll(async () => e?.stop());

  it('revert --tenant rv_a: every acknowledged rv_a write on the old source, rv_b stays on the target untouched; finalize --tenant rv_b ends its path', async () => {
    const workload = new TenantWorkload(e, TENANTS, 3).start();
    let wave, refused, revert;
    let revertedAt = 0;
    try {
      await sleep(200);
      wave = await cli(['waves', plan, '--yes', '--json'], e.env);
      await sleep(1000);
      refused = await cli(['revert', plan, '--yes'], e.env);
      revert = await cli(['revert', plan, '--tenant', 'rv_a', '--yes', '--json'], e.env);
      revertedAt = Date.now();
      await sleep(700);
    } finally {
      var writes = await workload.stop();
    }
    expect(wave.code, wave.err).toBe(0);
    expect(wave.json().counts.done).toBe(2);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/revert of a waves plan acts on one tenant: name it/);
    expect(revert.code, revert.err).toBe(0);
    expect(revert.json().catchUp.method).toBe('sentinel');
    console.log(`waves revert of one tenant: rv_a window back ${revert.json().writeBlockedMs} ms; ${writes.length} writes to both tenants`);

    expect(writes.filter((w) => !w.ok).slice(0, 3)).toEqual([]);
    // The reverted tenant: every acknowledged write (before the wave, on the new primary, after the revert) on the old source.
    expect(await missingTenantWrites(e, 'src', writes, ['rv_a'])).toEqual([]);
    expect(await canWrite(e.src, 'rv_a')).toBe(true);
    expect(await canWrite(e.dst, 'rv_a')).toBe(false);
    expect(await bouncerRoute(e, 'rv_a')).toBe(`${e.src.port}/rv_a`);
    // The other tenant never moved back: its writes are on the target, which it still runs on.
    expect(await missingTenantWrites(e, 'dst', writes, ['rv_b'])).toEqual([]);
    expect(await canWrite(e.dst, 'rv_b')).toBe(true);
    expect(await canWrite(e.src, 'rv_b')).toBe(false);
    expect(await bouncerRoute(e, 'rv_b')).toBe(`${e.dst.port}/rv_b`);
    expect(writes.filter((w) => w.tenant === 'rv_b' && w.ok && w.start > revertedAt).length).toBeGreaterThan(0);

    const status = await cli(['waves', plan, '--status'], e.env);
    expect(status.err).toMatch(/rv_a +done .*reverted: runs on the old source again/);
    expect(status.err).not.toMatch(/rv_b .*revert/);

    const fin = await cli(['finalize', plan, '--tenant', 'rv_b', '--yes', '--json'], e.env);
    expect(fin.code, fin.err).toBe(0);
    expect(fin.json().dropped.join(', ')).toMatch(/replication slot/);
    const after = (await cli(['waves', plan, '--status', '--json'], e.env)).json();
    expect(Object.fromEntries(after.tenants.map((t: { tenant: string; revert?: string }) => [t.tenant, t.revert]))).toEqual({ rv_a: 'reverted', rv_b: 'finalized' });
    const late = await cli(['revert', plan, '--tenant', 'rv_b', '--yes'], e.env);
    expect(late.code).toBe(3);
    expect(late.err).toMatch(/`cutover finalize` ended its reverse path/);
    const stranger = await cli(['revert', plan, '--tenant', 'nobody', '--yes'], e.env);
    expect(stranger.code).toBe(2);
    expect(stranger.err).toMatch(/"nobody" is not a tenant of this plan/);
  }, 240_000);
});
