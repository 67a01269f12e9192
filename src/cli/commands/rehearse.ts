import { DEFAULT_ENGINE } from '../../../adapters/registry.js';
import { REHEARSAL_ENGINES } from '../../rehearse/kits.js';
import type { Engine } from '../../util/db-url.js';
import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { installSandboxCleanup, parseDuration, rehearse, RehearsalFailed, renderHtmlReport, UsageError, type RehearsalPrivileges } from '../../index.js';
import type { CliContext, GlobalOpts } from '../context.js';
import { positiveInt } from '../flags.js';
import { interruptSignal } from '../interrupt.js';
import { renderRehearse } from '../render-rehearse.js';
import { withRehearseTasks } from '../rehearse-tasks.js';

export function registerRehearse(program: Command, ctx: CliContext): void {
  program
    .command('rehearse')
    .summary("a full cutover on throw-away servers under a live workload, measured (or on a plan's servers)")
    .description(
      'Starts a sandbox PostgreSQL 15 (source), PostgreSQL 18 (target) and PgBouncer (transaction pooling) -\n' +
        'or with --engine mariadb two MariaDB servers and HAProxy - loads sample data, runs writer and reader\n' +
        'clients through the router, performs the cutover with the same code as `cutover sync` + `cutover run`,\n' +
        'then checks every acknowledged write is on the target and tears everything down. Nothing of yours is touched.\n' +
        "With --plan it rehearses on the plan's servers instead: a real cutover of that database (use a staging\n" +
        'copy); the workload writes to a table cutover_rehearsal_workload it creates on the source.',
    )
    .addOption(new Option('--engine <engine>', 'sandbox engine: postgres (15 → 18, PgBouncer) or mariadb (HAProxy)').choices([...REHEARSAL_ENGINES]).default(DEFAULT_ENGINE))
    .addOption(new Option('--privileges <profile>', 'sandbox privilege profile: managed runs the cutover as an admin without superuser (docs/managed.md)').choices(['superuser', 'managed']).default('superuser'))
    .option('--rows <n>', 'rows of sample data (with --tenants: spread over the tenants)', (v) => positiveInt(v, '--rows'), 1_000_000)
    .option('--tenants <n>', 'rehearse a wave (`cutover waves`) of N tenant databases, one PgBouncer entry each, clients writing to random tenants', (v) => positiveInt(v, '--tenants'))
    .option('--revert', 'after the cutover and writes on the new primary, `cutover revert` back to the old source; reports both windows')
    .option('--clients <n>', 'concurrent writers (plus half as many readers)', (v) => positiveInt(v, '--clients'), 4)
    .option('--report <file>', 'also write a self-contained HTML report (latency timeline, step timeline, summary)')
    .option('--keep', 'leave the sandbox servers running and print how to connect')
    .option('--plan <file>', "rehearse on a plan's servers instead of sandboxes (needs --yes)")
    .option('--yes', "with --plan: the plan's source will be fenced and its database cut over")
    .option('--max-write-blocked <duration>', 'override limits.maxWriteBlocked')
    .addHelpText(
      'after',
      '\nExamples:\n  cutover rehearse\n  cutover rehearse --privileges managed --engine mariadb\n  cutover rehearse --rows 50000 --clients 8 --report rehearsal.html\n  cutover rehearse --json > rehearsal.json\n  cutover rehearse --revert --rows 50000 --report there-and-back.html\n  cutover rehearse --tenants 20 --rows 20000 --report wave.html\n  cutover rehearse --plan staging.yaml --yes',
    )
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const plan = o.plan as string | undefined;
      if (plan && !o.yes) throw new UsageError('rehearse --plan cuts over the servers of the plan and needs --yes', `cutover rehearse --plan ${plan} --yes (or \`cutover run ${plan} --dry-run\` first)`);
      if (plan && o.engine !== DEFAULT_ENGINE) throw new UsageError("--engine chooses the sandboxes; with --plan the engine is the plan's", 'drop --engine');
      if (o.tenants !== undefined && (plan || o.engine !== DEFAULT_ENGINE || o.keep)) throw new UsageError('--tenants rehearses a wave on PostgreSQL sandboxes', 'drop --plan, --engine and --keep');
      if (o.revert && (plan || o.tenants !== undefined)) throw new UsageError('--revert rehearses one cutover and its revert on sandboxes', 'drop --plan and --tenants');
      if (plan && o.privileges !== 'superuser') throw new UsageError("--privileges chooses the sandboxes' profile; with --plan the plan's `privileges` key decides", 'drop --privileges');
      if (plan && o.keep) throw new UsageError('--keep applies to sandboxes; with --plan the servers are yours and stay up anyway', 'drop --keep');
      // Sandboxes: an interrupt stops every server started and exits. A plan's servers: the run restores the source first.
      const sig = plan ? interruptSignal(ctx.io) : undefined;
      if (!plan) installSandboxCleanup(() => ctx.io.err('\ninterrupted: stopping the sandbox servers\n'));
      try {
        const r = await withRehearseTasks(
          ctx.io,
          (t) => ctx.scrub(t),
          (onEvent) =>
            rehearse({
              engine: o.engine as Engine,
              privileges: o.privileges as RehearsalPrivileges,
              rows: o.rows as number,
              clients: o.clients as number,
              keep: Boolean(o.keep),
              revert: Boolean(o.revert),
              ...(o.tenants !== undefined ? { tenants: o.tenants as number } : {}),
              env: ctx.io.env,
              onEvent,
              ...(plan ? { plan } : {}),
              ...(sig ? { abort: sig.abort } : {}),
              ...(o.maxWriteBlocked ? { maxWriteBlockedMs: parseDuration(o.maxWriteBlocked as string, '--max-write-blocked') } : {}),
            }),
        );
        if (o.report) await writeFile(o.report as string, ctx.scrub(renderHtmlReport(r)));
        if (r.ok) return ctx.emit(g.json, r, renderRehearse(r, o.report as string | undefined));
        if (!g.json) ctx.print(renderRehearse(r, o.report as string | undefined));
        throw new RehearsalFailed(
          r.missingWrites.length > 0
            ? `${r.missingWrites.length} acknowledged write(s) missing on the ${r.revert ? 'old source after the revert' : 'target after the rehearsal'}`
            : r.clientErrors === 0 && r.tenants
              ? `${r.tenants.count - r.tenants.done} of ${r.tenants.count} tenant(s) not moved (see the warnings)`
              : `${r.clientErrors} client operation(s) failed during the rehearsal (expected 0)`,
          r,
        );
      } finally {
        sig?.dispose();
      }
    });
}
