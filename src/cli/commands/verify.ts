import type { Command } from 'commander';
import { verify } from '../../index.js';
import type { CliContext, GlobalOpts } from '../context.js';
import { interruptSignal } from '../interrupt.js';
import { renderVerify } from '../render-cutover.js';

export function registerVerify(program: Command, ctx: CliContext): void {
  program
    .command('verify')
    .summary('online, before the cutover: compare source and target in key chunks at one replication point (resumable)')
    .argument('<plan>', 'plan file (YAML)')
    .option('--restart', 'start a new pass instead of continuing or reusing the last one')
    .action(async (file: string, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const sig = interruptSignal(ctx.io);
      try {
        const work = verify(file, { ...ctx.planOptions(), restart: Boolean(o.restart), onProgress: (m) => ctx.print([`· verify: ${m}`]) });
        const r = await Promise.race([work, sig.abort]);
        ctx.emit(g.json, { action: 'verify', ...r }, renderVerify(r));
      } finally {
        sig.dispose();
      }
    });
}
