import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateJson, type JsonSchema } from '../../src/report/json-schema.js';
import { ROOT } from '../helpers/built-cli.js';
import { cli, type CliRun } from '../helpers/cli.js';
import { pg15Missing, pg18Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const unavailable = pg15Missing ?? pg18Missing ?? pgbouncerMissing;
const env = { PATH: process.env.PATH };

describe('cutover rehearse --revert: refused where it cannot run, before any server starts', () => {
  it('refuses waves and plans (exit 2, one line)', async () => {
    const r = await cli(['rehearse', '--revert', '--tenants', '2'], env);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--revert rehearses one cutover and its revert on sandboxes/);
  });
});

describe.skipIf(unavailable)('cutover rehearse --revert: PostgreSQL 15 → 18 → 15 through PgBouncer, writers throughout', () => {
  let run: CliRun;
  let doc: any;
  const htmlFile = join(tmpdir(), `cutover-rehearse-revert-${process.pid}.html`);

  beforeAll(async () => {
    run = await cli(['rehearse', '--revert', '--rows', '5000', '--clients', '3', '--json', '--report', htmlFile], env);
    doc = JSON.parse(run.out);
  }, 180_000);
  afterAll(() => rm(htmlFile, { force: true }));

  it('reverts with zero client errors, every acknowledged write of both phases on the old source, and reports both windows per step', () => {
    expect(run.code, run.err).toBe(0);
    expect(doc).toMatchObject({ ok: true, clientErrors: 0, missingWrites: [], revert: { catchUp: { method: 'sentinel' } } });
    expect(doc.verifiedWrites).toBe(doc.acknowledgedWrites);
    // Writes made while the new primary was the primary are among those found on the old source.
    expect(doc.revert.writesOnNewPrimary).toBeGreaterThan(20);
    const names = (phase: string) => doc.steps.filter((s: { phase: string }) => s.phase === phase).map((s: { name: string }) => s.name);
    expect(names('cutover')).toEqual(expect.arrayContaining(['hold', 'fence', 'catch-up', 'point-of-no-return', 'lift', 'reverse']));
    // The revert is the same sequence in the other direction, and never syncs.
    expect(names('revert')).toEqual(expect.arrayContaining(['hold', 'fence', 'catch-up', 'sequences', 'point-of-no-return', 'repoint', 'lift', 'workload after revert']));
    expect(names('revert')).not.toContain('sync');
    const revertFence = doc.steps.find((s: { phase: string; name: string }) => s.phase === 'revert' && s.name === 'fence');
    const forwardLift = doc.steps.find((s: { phase: string; name: string }) => s.phase === 'cutover' && s.name === 'lift');
    expect(revertFence.startMs).toBeGreaterThan(forwardLift.endMs);
    expect(doc.revert.holdAtMs).toBeLessThan(doc.revert.liftAtMs);
    expect(doc.revert.fenceToLiftMs).toBeGreaterThan(0);
    expect(doc.revert.fenceToLiftMs).toBeLessThan(doc.revert.budgetMs);
    expect(doc.revert.writeBlockedMs).toBeGreaterThan(0);
    expect(run.err).toMatch(/look up \d+ acknowledged writes on the old source/);
    console.log(
      `rehearse --revert: forward window ${doc.writeBlockedMs} ms (fence to lift ${doc.fenceToLiftMs} ms), revert window ${doc.revert.writeBlockedMs} ms (fence to lift ${doc.revert.fenceToLiftMs} ms), ${doc.revert.writesOnNewPrimary} writes on the new primary, ${doc.acknowledgedWrites} verified on the old source`,
    );
  });

  it('prints a --json document that validates against the report schema, and an HTML report with the revert window', async () => {
    const schema = JSON.parse(await readFile(join(ROOT, 'schemas/rehearse-report.schema.json'), 'utf8')) as JsonSchema;
    expect(validateJson(schema, doc)).toEqual([]);
    expect(validateJson(schema, { ...doc, revert: { ...doc.revert, writesOnNewPrimary: -1 } })).not.toEqual([]);
    const html = await readFile(htmlFile, 'utf8');
    expect(html).toMatch(/<rect[^>]*id="revert-window"/);
    expect(html).toMatch(/revert write-blocked window/);
    expect(html).toMatch(/on the old source \(both phases\)/);
  });
});
