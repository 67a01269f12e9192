import type { Command } from 'commander';
import { check, PreflightError } from '../../index.js';
import type { CliContext, GlobalOpts } from '../context.js';
import { renderFindings } from '../render-cutover.js';

export function registerCheck(program: Command, ctx: CliContext): void {
  program
    .command('check')
    .summary('preflight checks, no changes')
    .argument('<plan>', 'plan file (YAML)')
    .option('--schema', 'also compare the schemas of source and target (tables, columns, constraints, indexes, sequences)')
    .action(async (file: string, o: { schema?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const r = await check(file, { ...ctx.planOptions(), ...(o.schema ? { schema: true } : {}) });
      ctx.emit(g.json, { action: 'check', findings: r.findings, blockers: r.blockers }, renderFindings(r.findings));
      if (r.blockers > 0) throw new PreflightError('preflight', `preflight found ${r.blockers} blocker(s)`, 'fix each BLOCKER above, then run check again');
    });
}
