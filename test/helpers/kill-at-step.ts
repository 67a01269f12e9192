import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { ROOT } from './built-cli.js';

/** The built CLI behind the test-only entry point that can park it (the real binary ignores CUTOVER_TEST_*). */
const PAUSED_CLI = `${ROOT}test/helpers/paused-cli.mjs`;

export interface ParkedRun {
  child: ResultPromise;
  stderr(): string;
  /** Signals the parked process and waits for it to end. */
  stop(signal?: NodeJS.Signals): Promise<{ stderr: string; exitCode: number | undefined }>;
}

/** Starts the built CLI with the test hook that parks it at `step` (after journaling `begin`) and waits until it is parked. */
export async function parkAtStep(args: string[], env: Record<string, string>, stateDir: string, step: string): Promise<ParkedRun> {
  const child = execa('node', [PAUSED_CLI, ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env, CUTOVER_TEST_PAUSE_AT: step }, extendEnv: false, reject: false });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const marker = join(stateDir, `paused-at-${step}`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (
      await access(marker).then(
        () => true,
        () => false,
      )
    )
      break;
    if (child.exitCode !== null) throw new Error(`the run ended (exit ${child.exitCode}) before reaching ${step}: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`the run did not reach ${step} within 60s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    child,
    stderr: () => stderr,
    async stop(signal = 'SIGKILL') {
      child.kill(signal);
      const done = await child;
      return { stderr, exitCode: done.exitCode };
    },
  };
}

/**
 * Starts the built CLI parked at `step`, then signals it (SIGKILL by default: a crash at exactly that step).
 */
export async function killAtStep(args: string[], env: Record<string, string>, stateDir: string, step: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<{ stderr: string; exitCode: number | undefined }> {
  return (await parkAtStep(args, env, stateDir, step)).stop(signal);
}
