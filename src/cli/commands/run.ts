import type { Command } from 'commander';
import { DifferAfterSwitchError, LeakedAfterSwitchError, parseDuration, resume, run, UsageError } from '../../index.js';
import type { CliContext, GlobalOpts } from '../context.js';
import { interruptSignal } from '../interrupt.js';
import { renderRun } from '../render-cutover.js';
import { runPause } from '../test-hooks.js';

/** `run` and `resume` take the same flags and print the same result; only the library call differs. */
export function registerRunLike(program: Command, ctx: CliContext, name: 'run' | 'resume', summary: string): void {
  program
    .command(name)
    .summary(summary)
    .argument('<plan>', 'plan file (YAML)')
    .option('--yes', 'do not ask for confirmation')
    .option('--dry-run', 'run the preflight and show what would happen; change nothing')
    .option('--max-write-blocked <duration>', 'override limits.maxWriteBlocked')
    .option('--force', 'take over the state dir lock of a process that cannot be checked (another host) once the plan lock on the source is free')
    .action(async (file: string, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      if (!o.yes && !o.dryRun) throw new UsageError(`${name} changes production servers and needs --yes`, `cutover ${name} ${file} --yes (or --dry-run first)`);
      const sig = interruptSignal(ctx.io);
      try {
        const opts = {
          ...ctx.planOptions(),
          onEvent: ctx.eventPrinter(),
          abort: sig.abort,
          dryRun: Boolean(o.dryRun),
          force: Boolean(o.force),
          ...(o.maxWriteBlocked ? { maxWriteBlockedMs: parseDuration(o.maxWriteBlocked as string, '--max-write-blocked') } : {}),
          ...runPause(ctx.io.testPause),
        };
        const r = await (name === 'run' ? run(file, opts) : resume(file, opts));
        ctx.emit(g.json, { action: name, ...r }, renderRun(r));
      } catch (e) {
        if ((e instanceof LeakedAfterSwitchError || e instanceof DifferAfterSwitchError) && !g.json) ctx.print(renderRun(e.result));
        throw e;
      } finally {
        sig.dispose();
      }
    });
}

export function registerRun(program: Command, ctx: CliContext): void {
  registerRunLike(program, ctx, 'run', 'the cutover: hold, fence, catch up, verify, switch, lift');
}
