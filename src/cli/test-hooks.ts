/**
 * Tests only: park a run at this journal step (and, in waves, this tenant) so a test can signal it there.
 * Set by the test harness's own entry point (test/helpers/paused-cli.mjs, which reads it from its environment),
 * never from the environment or argv of the real `cutover` binary.
 */
export interface TestPause {
  step?: string;
  tenant?: string;
  /** Wait this long at the step and go on, instead of parking there (a slow step, e.g. a catch-up under load). */
  delayMs?: number;
}

/** The `run`/`resume` options a test pause sets; none without one. */
export function runPause(pause: TestPause | undefined): { pauseAt?: string; pauseMs?: number } {
  return pause?.step ? { pauseAt: pause.step, ...(pause.delayMs !== undefined ? { pauseMs: pause.delayMs } : {}) } : {};
}

/** The `waves` options a test pause sets; none without one. */
export function wavesPause(pause: TestPause | undefined): { pauseAt?: string; pauseTenant?: string } {
  return { ...(pause?.step ? { pauseAt: pause.step } : {}), ...(pause?.tenant ? { pauseTenant: pause.tenant } : {}) };
}
