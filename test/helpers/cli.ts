import type { TestPause } from '../../src/cli/test-hooks.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../src/cli/program.js';

export interface CliRun {
  code: number;
  out: string;
  err: string;
  json: () => any;
}

/** Runs the CLI in-process, capturing stdout/stderr; `env` replaces the process environment for it. */
export async function cli(argv: string[], env: Record<string, string | undefined> = {}, hooks: { testPause?: TestPause } = {}): Promise<CliRun> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (t) => (out += t), err: (t) => (err += t), env, isTTY: false, ...hooks });
  return { code, out, err, json: () => JSON.parse(out) };
}

/** A state dir inside `parent` (a sandbox dir, removed with the sandbox) or the OS temp dir. */
export async function tempStateDir(parent = tmpdir()): Promise<string> {
  return mkdtemp(join(parent, 'cutover-state-'));
}
