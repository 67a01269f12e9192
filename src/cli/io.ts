import type { TestPause } from './test-hooks.js';

/** Where the CLI writes: stdout carries only `--json` documents; everything for humans goes to stderr. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
  /** stderr is a terminal (live progress) rather than a pipe/CI log (plain lines). */
  isTTY: boolean;
  /** Tests only, see test-hooks.ts. */
  testPause?: TestPause;
}

export function processIO(): CliIO {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    env: process.env,
    isTTY: Boolean(process.stderr.isTTY) && !/^(1|true)$/i.test(process.env.CI ?? ''),
  };
}
