import { access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BUILT_CLI = `${ROOT}dist/src/cli/main.js`;

/** The spawned end-to-end tests run the built CLI; `npm test` builds first, a bare vitest run may not have. */
export async function ensureBuilt(): Promise<void> {
  try {
    await access(BUILT_CLI);
  } catch {
    await execa('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT });
  }
}

/** Runs the built `cutover` binary as a separate process; env replaces the inherited credentials. */
export function spawnCli(args: string[], env: Record<string, string> = {}, cwd = ROOT) {
  return execa('node', [BUILT_CLI, ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, extendEnv: false, reject: false });
}

/** Runs `cutover sync <plan>` and kills it (SIGKILL) as soon as its output matches `when`; returns what it printed. */
export async function syncKilledWhen(plan: string, env: Record<string, string>, when: RegExp): Promise<string> {
  const p = spawnCli(['sync', plan], env);
  let err = '';
  await new Promise<void>((resolve, reject) => {
    p.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (when.test(err)) resolve();
    });
    void p.then((r) => reject(new Error(`sync ended (exit ${r.exitCode}) before ${when}: ${err}`)));
  });
  p.kill('SIGKILL');
  await p;
  return err;
}
