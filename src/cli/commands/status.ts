import type { Command } from 'commander';
import { status } from '../../index.js';
import type { CliContext, GlobalOpts } from '../context.js';
import { renderStatus } from '../render-cutover.js';
import { renderWavesStatus } from '../render-waves.js';

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .summary('journal, fence state, lag and leftovers of a plan')
    .argument('<plan>', 'plan file (YAML)')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const r = await status(file, ctx.planOptions());
      ctx.emit(g.json, { action: 'status', ...r }, 'kind' in r ? renderWavesStatus(r) : renderStatus(r));
    });
}
