import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runPlan } from '../../src/engine/run.js';
import { planStatus } from '../../src/engine/status.js';
import { crashedSession, fakeSession, journalRecords } from '../helpers/fake-session.js';

describe('planStatus reads the source fence through the session', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'cutover-orchestrator-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('a run that died while fenced: in flight, the unfinished step named, the source shown read-only', async () => {
    const f = fakeSession(await mkdtemp(join(root, 'full-')));
    await runPlan(f.session);
    const full = await journalRecords(f.session);
    const crashed = await crashedSession(await mkdtemp(join(root, 'crash-')), full.slice(0, full.findIndex((r) => r.step === 'catch-up' && r.status === 'begin') + 1));
    const st = await planStatus(crashed.session);
    expect(st).toMatchObject({ phase: 'in-flight', unfinished: ['catch-up'], source: { scope: 'database', name: 'shop', readOnly: true }, lagBytes: 0, errors: [] });
    expect(st.next).toMatch(/cutover resume/);
  });

  it('a source fence that cannot be read is an error line; the journal part still answers', async () => {
    const f = fakeSession(root);
    f.world.fail('fence.status', new Error('connection refused'));
    const st = await planStatus(f.session);
    expect(st).toMatchObject({ phase: 'fresh', errors: ['source fence: connection refused'] });
    expect(st.source).toBeUndefined();
  });
});
