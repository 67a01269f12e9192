import type { Command } from 'commander';
import { finalize, parseDuration, revert, UsageError } from '../../index.js';
import type { CliContext, GlobalOpts } from '../context.js';
import { interruptSignal } from '../interrupt.js';
import { renderFinalize, renderRollback, renderRun } from '../render-cutover.js';
import { runPause } from '../test-hooks.js';

/** `cutover revert`: back to the old source over the reverse path; `--resume` / `--rollback` as for a run. */
export function registerRevert(program: Command, ctx: CliContext): void {
  program
    .command('revert')
    .summary('after a cutover: go back to the old source (it followed the new primary), losing no write')
    .argument('<plan>', 'plan file (YAML) of the cutover to revert')
    .option('--yes', 'do not ask for confirmation')
    .option('--dry-run', 'run the preflight of the revert and show what would happen; change nothing')
    .option('--resume', 'continue a revert that stopped (forward past its point of no return, else restore and revert again)')
    .option('--rollback', 'before the revert’s point of no return: the new primary writable again, routing back on it')
    .option('--tenant <name>', 'a waves plan: move this tenant back (the other tenants stay on the target)')
    .option('--max-write-blocked <duration>', 'override limits.maxWriteBlocked')
    .option('--force', 'take over the state dir lock of a process that cannot be checked (another host) once the plan lock is free')
    .action(async (file: string, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      if (o.resume && o.rollback) throw new UsageError('--resume and --rollback exclude each other', 'choose one');
      if (!o.yes && !o.dryRun && !o.rollback) throw new UsageError('revert changes production servers and needs --yes', `cutover revert ${file} --yes (or --dry-run first)`);
      const sig = interruptSignal(ctx.io);
      try {
        const r = await revert(file, {
          ...ctx.planOptions(),
          onEvent: ctx.eventPrinter(),
          abort: sig.abort,
          dryRun: Boolean(o.dryRun),
          force: Boolean(o.force),
          resume: Boolean(o.resume),
          rollback: Boolean(o.rollback),
          ...(o.tenant !== undefined ? { tenant: o.tenant as string } : {}),
          ...(o.maxWriteBlocked ? { maxWriteBlockedMs: parseDuration(o.maxWriteBlocked as string, '--max-write-blocked') } : {}),
          ...runPause(ctx.io.testPause),
        });
        if ('action' in r) ctx.emit(g.json, { ...r }, renderRollback(r));
        else ctx.emit(g.json, { action: 'revert', ...r }, renderRun(r));
      } finally {
        sig.dispose();
      }
    });
}

/** `cutover finalize`: keep the cutover for good; the reverse path ends. */
export function registerFinalize(program: Command, ctx: CliContext): void {
  program
    .command('finalize')
    .summary('keep the cutover for good: end the reverse path and drop its objects')
    .argument('<plan>', 'plan file (YAML)')
    .option('--yes', 'do not ask for confirmation')
    .option('--tenant <name>', 'a waves plan: end this tenant’s reverse path')
    .option('--force', 'take over the state dir lock of a process that cannot be checked (another host) once the plan lock is free')
    .action(async (file: string, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      if (!o.yes) throw new UsageError('finalize ends the way back (cutover revert) and needs --yes', `cutover finalize ${file} --yes`);
      const r = await finalize(file, { ...ctx.planOptions(), force: Boolean(o.force), ...(o.tenant !== undefined ? { tenant: o.tenant as string } : {}) });
      ctx.emit(g.json, { action: 'finalize', ...r }, renderFinalize(r));
    });
}
