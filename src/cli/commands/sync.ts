import type { Command } from 'commander';
import { sync } from '../../index.js';
import type { CliContext, GlobalOpts } from '../context.js';
import { renderSync } from '../render-cutover.js';

export function registerSync(program: Command, ctx: CliContext): void {
  program
    .command('sync')
    .summary('copy schema and data to the target and keep it in sync (target stays read-only to apps)')
    .argument('<plan>', 'plan file (YAML)')
    .option('--force', 'take over the state dir lock of a process that cannot be checked (another host) once the plan lock on the source is free')
    .action(async (file: string, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const r = await ctx.withProgress((onEvent) => sync(file, { ...ctx.planOptions(), onEvent, force: Boolean(o.force) }));
      ctx.emit(g.json, { action: 'sync', ...r }, renderSync(r));
    });
}
