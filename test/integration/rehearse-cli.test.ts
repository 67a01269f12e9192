import { access, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateJson, type JsonSchema } from '../../src/report/json-schema.js';
import { findHaproxy } from '../../adapters/routers/haproxy-sandbox.js';
import { missing } from '../helpers/availability.js';
import { BUILT_CLI, ROOT, ensureBuilt, spawnCli } from '../helpers/built-cli.js';
import { chromiumMissing, openInChromium } from '../helpers/chromium.js';
import { mariadbMissing } from '../helpers/mariadb.js';
import { pg15Missing, pg18Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const unavailable = pg15Missing ?? pg18Missing ?? pgbouncerMissing;
const mariadbUnavailable = mariadbMissing ?? (await missing('HAProxy (haproxy)', () => findHaproxy()));

/** The sandbox dirs a run announced on stderr (`sandbox <label> in <dir>`). */
function sandboxDirs(stderr: string): string[] {
  return [...stderr.matchAll(/sandbox .* in (\/\S+)/g)].map((m) => m[1]!);
}

async function gone(dir: string): Promise<boolean> {
  return access(dir).then(
    () => false,
    () => true,
  );
}

describe.skipIf(unavailable)('cutover rehearse: PostgreSQL 15 → 18 through PgBouncer (built CLI, as a user runs it)', () => {
  let out: string;
  let run: Awaited<ReturnType<typeof spawnCli>>;
  let doc: any;
  const htmlFile = join(tmpdir(), `cutover-rehearse-test-${process.pid}.html`);

  beforeAll(async () => {
    await ensureBuilt();
    out = await mkdtemp(join(tmpdir(), 'cutover-rehearse-test-'));
    run = await spawnCli(['rehearse', '--rows', '20000', '--clients', '3', '--json', '--report', htmlFile]);
    doc = JSON.parse(run.stdout);
  }, 180_000);
  afterAll(async () => {
    await rm(out, { recursive: true, force: true });
    await rm(htmlFile, { force: true });
  });

  it('cuts over with zero client errors, every acknowledged write on the target, and tears every server down', async () => {
    expect(run.exitCode, run.stderr).toBe(0);
    expect(doc).toMatchObject({ ok: true, mode: 'sandbox', engine: 'postgres', clientErrors: 0, missingWrites: [], fence: { leakClean: true }, catchUp: { method: 'sentinel' } });
    expect(doc.acknowledgedWrites).toBeGreaterThan(100);
    expect(doc.verifiedWrites).toBe(doc.acknowledgedWrites);
    expect(doc.source.version).toMatch(/^15\./);
    expect(doc.target.version).toMatch(/^18\./);
    // The real run path: its steps, in order, on the rehearsal clock.
    const cutover = doc.steps.filter((s: { phase: string }) => s.phase === 'cutover').map((s: { name: string }) => s.name);
    expect(cutover).toEqual(['preflight', 'analyze', 'hold', 'fence', 'catch-up', 'sequences', 'verify', 'leak-read', 'point-of-no-return', 'repoint', 'lift', 'cleanup', 'report']);
    expect(doc.marks.map((m: { name: string }) => m.name)).toEqual(['hold', 'fence', 'point-of-no-return', 'lift']);
    expect(doc.writeBlockedMs).toBeGreaterThan(0);
    expect(doc.writeBlockedMs).toBeLessThan(doc.budgetMs);
    expect(doc.copy.rows).toBeGreaterThanOrEqual(20_000);
    expect(run.stderr).toMatch(/write-blocked window/);
    const dirs = sandboxDirs(run.stderr);
    expect(dirs).toHaveLength(3);
    for (const d of dirs) expect(await gone(d), d).toBe(true);
    console.log(`rehearse: write-blocked window ${doc.writeBlockedMs} ms (fence to lift ${doc.fenceToLiftMs} ms), read-blocked ${doc.readBlockedMs} ms, ${doc.acknowledgedWrites} acknowledged writes verified`);
  });

  it('prints a --json document that validates against schemas/rehearse-report.schema.json', async () => {
    const schema = JSON.parse(await readFile(join(ROOT, 'schemas/rehearse-report.schema.json'), 'utf8')) as JsonSchema;
    expect(validateJson(schema, doc)).toEqual([]);
    expect(validateJson(schema, { ...doc, writeBlockedMs: 'fast' })).not.toEqual([]);
  });

  it.skipIf(chromiumMissing)(
    'writes an HTML report that headless Chromium renders with the timeline, the step Gantt and a marker per fence and lift',
    async () => {
      const html = await readFile(htmlFile, 'utf8');
      expect(html).not.toMatch(/<script|<link|src="http|href="http/i);
      const shot = join(out, 'report.png');
      const { dom, screenshotBytes } = await openInChromium(htmlFile, shot);
      expect(dom).toMatch(/<svg[^>]*id="latency-timeline"/);
      expect(dom).toMatch(/<svg[^>]*id="step-gantt"/);
      expect(dom).toMatch(/<line[^>]*id="mark-fence"/);
      expect(dom).toMatch(/<line[^>]*id="mark-lift"/);
      expect(dom.match(/class="bar"/g)?.length).toBe(doc.steps.length);
      expect(screenshotBytes).toBeGreaterThan(30_000);
    },
    180_000,
  );
});

describe.skipIf(unavailable)('cutover rehearse --keep', () => {
  beforeAll(ensureBuilt);

  it('leaves the servers up, the passwords only in a 0600 passfile, and stop commands that remove everything', async () => {
    const r = await spawnCli(['rehearse', '--rows', '5000', '--clients', '2', '--keep', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const kept = JSON.parse(r.stdout).kept;
    const dirs = sandboxDirs(r.stderr);
    try {
      expect((await stat(kept.passfile)).mode & 0o777).toBe(0o600);
      const passwords = (await readFile(kept.passfile, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => l.split(':').at(-1)!);
      for (const p of passwords) {
        expect(r.stdout).not.toContain(p);
        expect(r.stderr).not.toContain(p);
      }
      const psql = await execa('sh', ['-c', `${kept.connect.router} -Atc 'SELECT count(*) > 0 FROM cutover_rehearsal_workload'`], { reject: false });
      expect(psql.stdout, psql.stderr).toBe('t');
    } finally {
      for (const c of kept?.stopCommands ?? []) await execa('sh', ['-c', c], { reject: false });
    }
    expect(dirs).toHaveLength(3);
    for (const d of dirs) expect(await gone(d), d).toBe(true);
  }, 180_000);
});

describe.skipIf(unavailable)('cutover rehearse: Ctrl-C', () => {
  beforeAll(ensureBuilt);

  it('SIGINT mid-cutover stops every server it started and removes their directories', async () => {
    const child = execa('node', [BUILT_CLI, 'rehearse', '--rows', '20000'], { cwd: ROOT, reject: false, env: { PATH: process.env.PATH ?? '' }, extendEnv: false });
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the sync never started: ${stderr}`)), 45_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/sync: copy schema/.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const dirs = sandboxDirs(stderr);
    expect(dirs).toHaveLength(3);
    child.kill('SIGINT');
    const done = await child;
    expect(done.exitCode).toBe(130);
    for (const d of dirs) expect(await gone(d), d).toBe(true);
    const ps = await execa('ps', ['-eo', 'args'], { reject: false });
    for (const d of dirs) expect(ps.stdout).not.toContain(d);
  }, 180_000);
});

describe.skipIf(mariadbUnavailable)('cutover rehearse --engine mariadb: MariaDB → MariaDB through HAProxy', () => {
  beforeAll(ensureBuilt);

  it('cuts over with zero client errors (clients wait in the HAProxy queue), every acknowledged write on the target, and tears every server down', async () => {
    const r = await spawnCli(['rehearse', '--engine', 'mariadb', '--rows', '20000', '--clients', '3', '--json']);
    const out = JSON.parse(r.stdout);
    // A rehearsal with client errors exits 1 and carries its report in the error document.
    const doc = r.exitCode === 0 ? out : out.report;
    expect(doc.errors).toEqual([]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(doc.clientErrors).toBe(0);
    expect(doc).toMatchObject({ mode: 'sandbox', engine: 'mariadb', missingWrites: [], catchUp: { method: 'gtid' }, verify: { mismatches: 0 } });
    expect(doc.acknowledgedWrites).toBeGreaterThan(100);
    expect(doc.verifiedWrites).toBe(doc.acknowledgedWrites);
    expect(doc.errors.length > 0).toBe(doc.clientErrors > 0);
    const schema = JSON.parse(await readFile(join(ROOT, 'schemas/rehearse-report.schema.json'), 'utf8')) as JsonSchema;
    expect(validateJson(schema, doc)).toEqual([]);
    const dirs = sandboxDirs(r.stderr);
    expect(dirs).toHaveLength(3);
    for (const d of dirs) expect(await gone(d), d).toBe(true);
    console.log(
      `rehearse --engine mariadb: write-blocked window ${doc.writeBlockedMs} ms (fence to lift ${doc.fenceToLiftMs} ms), ${doc.acknowledgedWrites} acknowledged writes verified, ${doc.clientErrors} client errors: ${doc.errors.join('; ')}`,
    );
  }, 180_000);
});

describe('cutover rehearse: usage', () => {
  beforeAll(ensureBuilt);

  it('--plan without --yes exits 2 and touches nothing', async () => {
    const r = await spawnCli(['rehearse', '--plan', 'staging.yaml']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/needs --yes/);
  });
});
