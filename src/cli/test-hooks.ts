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
  /**
   * In-process tests only: awaited at the step (after its begin, before its work) instead of parking there, so a
   * test does something at an exact point of the run (e.g. after the point of no return, before replication into
   * the target stops) without racing a journal watcher against the run.
   */
  hold?: () => Promise<void>;
}

/** The `run`/`resume` options a test pause sets; none without one. */
export function runPause(pause: TestPause | undefined): { pauseAt?: string; pauseMs?: number; pauseHold?: () => Promise<void> } {
  return pause?.step ? { pauseAt: pause.step, ...(pause.delayMs !== undefined ? { pauseMs: pause.delayMs } : {}), ...(pause.hold ? { pauseHold: pause.hold } : {}) } : {};
}

/** The `waves` options a test pause sets; none without one. */
export function wavesPause(pause: TestPause | undefined): { pauseAt?: string; pauseTenant?: string } {
  return { ...(pause?.step ? { pauseAt: pause.step } : {}), ...(pause?.tenant ? { pauseTenant: pause.tenant } : {}) };
}
