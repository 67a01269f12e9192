import type { Command } from 'commander';
import { UsageError, waves, wavesRollback, wavesStatus, WavesIncomplete, WavesNeedOperator, type WaveEvent } from '../../index.js';
import type { CliContext, GlobalOpts } from '../context.js';
import { positiveInt } from '../flags.js';
import { interruptSignal } from '../interrupt.js';
import { renderTenantRollback, renderWaves, renderWavesStatus } from '../render-waves.js';
import { wavesPause } from '../test-hooks.js';

export function registerWaves(program: Command, ctx: CliContext): void {
  program
    .command('waves')
    .summary('move every tenant database of a plan, each with its own short fence window')
    .description(
      'For each tenant of scope.tenants (a list, or a query on the source): its own sync and cutover with its own\n' +
        'journal, lock, router entry and budget (waves.maxWriteBlockedPerTenant), waves.concurrency at a time.\n' +
        'A tenant that fails is rolled back alone. Run it again after a crash: done tenants are skipped, in-flight\n' +
        'ones resumed, the rest moved.',
    )
    .argument('<plan>', 'plan file (YAML) with scope.tenants')
    .option('--yes', 'do not ask for confirmation')
    .option('--concurrency <n>', 'override waves.concurrency', (v) => positiveInt(v, '--concurrency'))
    .option('--status', 'show the tenants table (same as `cutover status <plan>`)')
    .option('--rollback <tenant>', 'put one tenant back on its source (before its point of no return)')
    .addHelpText('after', '\nExamples:\n  cutover waves tenants.yaml --yes\n  cutover waves tenants.yaml --yes --concurrency 4 --json\n  cutover waves tenants.yaml --status\n  cutover waves tenants.yaml --rollback acme')
    .action(async (file: string, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      if (o.status) {
        const st = await wavesStatus(file, ctx.planOptions());
        return ctx.emit(g.json, { action: 'status', kind: 'waves', ...st }, renderWavesStatus(st));
      }
      const onEvent = ctx.eventPrinter();
      const tenantEvent = (e: WaveEvent) => onEvent({ ...e, step: e.tenant !== undefined ? `${e.tenant} ${e.step}` : e.step });
      if (o.rollback) {
        const r = await wavesRollback(file, o.rollback as string, { ...ctx.planOptions(), onEvent: tenantEvent });
        return ctx.emit(g.json, { action: 'rollback', ...r }, renderTenantRollback(r));
      }
      if (!o.yes) throw new UsageError('waves changes production servers and needs --yes', `cutover waves ${file} --yes`);
      const sig = interruptSignal(ctx.io);
      try {
        const r = await waves(file, {
          ...ctx.planOptions(),
          onEvent: tenantEvent,
          abort: sig.abort,
          ...(o.concurrency ? { concurrency: o.concurrency as number } : {}),
          ...wavesPause(ctx.io.testPause),
        });
        const unfinished = r.tenants.length - r.counts.done;
        if (unfinished === 0) return ctx.emit(g.json, { action: 'waves', ...r }, renderWaves(r));
        if (!g.json) ctx.print(renderWaves(r));
        const message = `${unfinished} of ${r.tenants.length} tenant(s) not done: ${Object.entries(r.counts)
          .filter(([k, n]) => k !== 'done' && n > 0)
          .map(([k, n]) => `${n} ${k}`)
          .join(', ')}`;
        throw r.counts['in-flight'] > 0 ? new WavesNeedOperator(message, r) : new WavesIncomplete(message, r);
      } finally {
        sig.dispose();
      }
    });
}
