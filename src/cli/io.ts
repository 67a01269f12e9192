/** Where the CLI writes: stdout carries only `--json` documents; everything for humans goes to stderr. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
  /** stderr is a terminal (live progress) rather than a pipe/CI log (plain lines). */
  isTTY: boolean;
  /**
   * Tests only: park a run at this journal step (and, in waves, this tenant) so a test can signal it there.
   * Set by the test harness's own entry point (test/helpers/paused-cli.mjs), never from the environment or argv
   * of the real `cutover` binary.
   */
  testPause?: { step?: string; tenant?: string };
}

export function processIO(): CliIO {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    env: process.env,
    isTTY: Boolean(process.stderr.isTTY) && !/^(1|true)$/i.test(process.env.CI ?? ''),
  };
}
