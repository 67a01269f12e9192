import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/built-cli.js';
import { pg15Missing, pg17Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

/** The first command of README's quick start, exactly as a newcomer copies it. */
async function quickStartCommand(): Promise<string> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## Quick start/m)[1] ?? '';
  const block = /```sh\n([^\n]+)\n/.exec(section);
  if (!block) throw new Error('README has no ```sh block under "## Quick start"');
  return block[1]!.trim();
}

const unavailable = pg15Missing ?? pg17Missing ?? pgbouncerMissing;

// A clean clone of the committed tree (uncommitted changes are not in it): npm ci, build and a whole rehearsal,
// from a 0700 directory as a checkout under root's home would be.
describe.skipIf(unavailable)("README's quick start from a clean clone", () => {
  let dir: string;
  let command: string;
  let run: Awaited<ReturnType<typeof execa>>;

  beforeAll(async () => {
    command = await quickStartCommand();
    dir = await mkdtemp(join(tmpdir(), 'cutover-quickstart-'));
    await execa('git', ['clone', '--quiet', ROOT, dir]);
    run = await execa('bash', ['-c', command], { cwd: dir, reject: false, all: true });
  }, 600_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is one command that sets up and runs the rehearsal', () => {
    expect(command).toBe('bash scripts/quickstart.sh');
  });

  it('installs, builds and rehearses a cutover with every acknowledged write on the target', () => {
    expect(run.exitCode, String(run.all).slice(-3000)).toBe(0);
    const out = String(run.all); // the human summary goes to stderr beside the progress
    expect(out).toMatch(/cutover rehearsal \(sandbox\): PostgreSQL 15\.\S+ → \d+\.\S+ through PgBouncer .*: OK/);
    const verified = /acknowledged writes verified\s+(\d+) of (\d+) on the target/.exec(out);
    expect(verified, out).not.toBeNull();
    expect(Number(verified![1])).toBeGreaterThan(0);
    expect(verified![1]).toBe(verified![2]);
    expect(out).toMatch(/client errors\s+0 \(expected 0\)/);
  });
});
