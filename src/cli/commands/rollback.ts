import type { Command } from 'commander';
import { rollback } from '../../index.js';
import type { CliContext, GlobalOpts } from '../context.js';
import { renderRollback } from '../render-cutover.js';

export function registerRollback(program: Command, ctx: CliContext): void {
  program
    .command('rollback')
    .summary('before the point of no return: source writable, routing back to it')
    .argument('<plan>', 'plan file (YAML)')
    .option('--cleanup', 'also drop the replication objects (a later run syncs again)')
    .option('--force', 'take over the state dir lock of a process that cannot be checked (another host) once the plan lock on the source is free')
    .action(async (file: string, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const r = await rollback(file, { ...ctx.planOptions(), cleanup: Boolean(o.cleanup), force: Boolean(o.force), onEvent: ctx.eventPrinter() });
      ctx.emit(g.json, { action: 'rollback', ...r }, renderRollback(r));
    });
}
