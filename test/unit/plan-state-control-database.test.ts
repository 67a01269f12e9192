import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPlan, resolvePlanSecrets } from '../../src/plan/index.js';

async function planFile(state: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'state-db-'));
  const file = join(dir, 'plan.yaml');
  await writeFile(file, ['source: { url: "postgres://a@h1/shop" }', 'target: { url: "postgres://a@h2/shop" }', 'scope: { tenants: [t1, t2] }', state].join('\n') + '\n');
  return file;
}

describe('state: a PostgreSQL control database', () => {
  it('a URL: journals go to the control database, the local dir stays the default', async () => {
    const plan = await loadPlan(await planFile('state: postgres://ctl@ctl-host:5433/cutover'));
    expect(plan.stateDb).toEqual({ url: 'postgres://ctl@ctl-host:5433/cutover' });
    expect(plan.stateDir.endsWith('.cutover')).toBe(true);
  });

  it('a map: url, passwordEnv and a local dir; the password only in the secrets', async () => {
    const plan = await loadPlan(await planFile('state: { url: "postgres://ctl@ctl-host/cutover", passwordEnv: CTL_PW, dir: ./local }'));
    expect(plan.stateDb).toEqual({ url: 'postgres://ctl@ctl-host/cutover', passwordEnv: 'CTL_PW' });
    expect(plan.stateDir.endsWith('/local')).toBe(true);
    const secrets = resolvePlanSecrets(plan, { CTL_PW: 's3cret' });
    expect(secrets.state).toBe('s3cret');
    expect(secrets.all).toContain('s3cret');
    expect(JSON.stringify(plan)).not.toContain('s3cret');
  });

  it('a password inside the URL is taken out of the plan, with a warning', async () => {
    const plan = await loadPlan(await planFile('state: postgres://ctl:pw1@ctl-host/cutover'));
    expect(plan.stateDb?.url).toBe('postgres://ctl@ctl-host/cutover');
    expect(plan.warnings.join('\n')).toMatch(/state holds a password/);
    expect(resolvePlanSecrets(plan, {}).state).toBe('pw1');
  });

  it('a directory stays a directory (no control database)', async () => {
    const plan = await loadPlan(await planFile('state: ./st'));
    expect(plan.stateDb).toBeUndefined();
    expect(plan.stateDir.endsWith('/st')).toBe(true);
  });
});
