import { writeFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import {
  check,
  ExitCode,
  FenceLeakError,
  LeakedAfterSwitchError,
  installSandboxCleanup,
  isCutoverError,
  isWavesPlan,
  NeedsOperatorError,
  OperationError,
  parseDbUrl,
  parseDuration,
  PreflightError,
  readOnlyOff,
  readOnlyOn,
  readOnlyStatus,
  redactDeep,
  redactText,
  rehearse,
  renderHtmlReport,
  resume,
  rollback,
  run,
  status,
  sync,
  passwordFromEnv,
  urlHasPassword,
  UsageError,
  verify,
  VerifyMismatchError,
  waves,
  wavesRollback,
  wavesStatus,
  type CutoverEvent,
  type PlanCommandOptions,
  type ReadOnlyMode,
  type ReadOnlyOptions,
  type ReadOnlyScope,
  type RehearseReport,
  type WaveEvent,
  type WavesResult,
} from '../index.js';
import { processIO, type CliIO } from './io.js';
import { renderFindings, renderRollback, renderRun, renderStatus, renderSync, renderVerify } from './render-cutover.js';
import { renderReadOnlyOff, renderReadOnlyOn, renderReadOnlyStatus } from './render-readonly.js';
import { renderRehearse } from './render-rehearse.js';
import { renderTenantRollback, renderWaves, renderWavesStatus } from './render-waves.js';
import { withRehearseTasks } from './rehearse-tasks.js';

/** A rehearsal that ran to the end but lost a write or saw a client error: exit 1, its report still printed once. */
class RehearsalFailed extends OperationError {
  constructor(
    message: string,
    readonly report: RehearseReport,
  ) {
    super(message, 'see the summary above; the --json document carries the full report');
  }
}

/** A wave that ended with tenants failed, rolled back or left in flight: its result still goes out once. */
class WavesIncomplete extends OperationError {
  constructor(
    message: string,
    readonly result: WavesResult,
  ) {
    super(message, 'the table above says which tenants; fix the cause and run `cutover waves` again (done tenants are skipped)');
  }
}

/** The same, when a tenant needs the operator (left in flight): exit 5. */
class WavesNeedOperator extends NeedsOperatorError {
  constructor(
    message: string,
    readonly result: WavesResult,
  ) {
    super('needs-operator', message, 'run `cutover waves` again: in-flight tenants are resumed first; `cutover status` shows each tenant');
  }
}

interface GlobalOpts {
  json?: boolean;
  debug?: boolean;
  stateDir?: string;
}

const PASSWORD_ENV: Record<string, string> = { postgres: 'PGPASSWORD', mysql: 'MYSQL_PWD', mariadb: 'MYSQL_PWD' };

/** Secrets this invocation knows about, so every printed line can be scrubbed of them. */
class Secrets {
  readonly values: string[] = [];
  /** stdout already carries this invocation's one JSON document (e.g. `check` findings before exit 3). */
  jsonEmitted = false;
  add(v: string | undefined): void {
    if (v) this.values.push(v);
  }
}

function emit(io: CliIO, json: boolean | undefined, secrets: Secrets, result: object, lines: string[]): void {
  if (json) {
    io.out(JSON.stringify(redactDeep({ ok: true, ...result }, secrets.values), null, 2) + '\n');
    secrets.jsonEmitted = true;
  }
  else io.err(redactText(lines.join('\n'), secrets.values) + '\n');
}

/** Password for a URL: --password-env NAME, else the engine's usual variable (PGPASSWORD / MYSQL_PWD), else the URL's. */
function resolvePassword(url: string, passwordEnv: string | undefined, io: CliIO, secrets: Secrets): string | undefined {
  const engine = parseDbUrl(url).engine;
  if (passwordEnv) {
    const v = passwordFromEnv(io.env, passwordEnv, '--password-env');
    secrets.add(v);
    return v;
  }
  if (urlHasPassword(url)) {
    io.err(`note: the URL carries a password, which shows in the process list and shell history; prefer ${PASSWORD_ENV[engine]} or --password-env\n`);
    const fromUrl = parseDbUrl(url).password;
    secrets.add(fromUrl);
    return undefined;
  }
  const v = io.env[PASSWORD_ENV[engine]!];
  secrets.add(v);
  return v;
}

function addReadOnly(program: Command, io: CliIO, secrets: Secrets): void {
  program
    .command('readonly')
    .summary('put a database into its native read-only mode, prove it holds, lift it again')
    .description(
      'Fence a server, database or role read-only (PostgreSQL default_transaction_read_only; MySQL/MariaDB read_only).\n' +
        'on: set it, drain open write transactions, end sessions that could still write, then watch for leaks.\n' +
        'off: put back exactly what `on` changed (recorded in the state dir).\nstatus: the setting per scope and who could still write.',
    )
    .argument('<action>', 'on | off | status')
    .argument('<url>', 'postgres://user@host:port/db or mysql://user@host:port/db (password via PGPASSWORD/MYSQL_PWD or --password-env)')
    .addOption(new Option('--scope <scope>', 'what to fence (default: the URL database on PostgreSQL, else server)').choices(['server', 'database', 'role', 'schema']))
    .option('--name <name>', 'database, role or schema name for that scope')
    .addOption(new Option('--mode <mode>', 'advisory: setting only; enforced: + drain and end sessions; strict: + lock --role accounts').choices(['advisory', 'enforced', 'strict']).default('enforced'))
    .option('--role <name>', 'strict mode: app role/account that may not log in while fenced (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--drain-timeout <duration>', 'how long open write transactions may finish before their sessions are ended', '10s')
    .option('--lock-timeout <duration>', 'bound on every lock the tool waits for', '2s')
    .option('--probe <duration>', 'leak check window after the fence', '500ms')
    .option('--password-env <NAME>', 'read the password from this environment variable')
    .addHelpText(
      'after',
      '\nExamples:\n  PGPASSWORD=... cutover readonly on postgres://postgres@db1/shop\n  cutover readonly on postgres://postgres@db1/postgres --scope server --mode advisory\n  cutover readonly on postgres://postgres@db1/shop --mode strict --role app\n  cutover readonly status postgres://postgres@db1/shop --json\n  cutover readonly off postgres://postgres@db1/shop',
    )
    .action(async (action: string, url: string, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      if (!['on', 'off', 'status'].includes(action)) throw new UsageError(`unknown action "${action}"`, 'use: cutover readonly on|off|status <url>');
      const password = resolvePassword(url, o.passwordEnv as string | undefined, io, secrets);
      const opts: ReadOnlyOptions = {
        url,
        ...(password !== undefined ? { password } : {}),
        ...(o.scope ? { scope: o.scope as ReadOnlyScope } : {}),
        ...(o.name ? { name: o.name as string } : {}),
        mode: o.mode as ReadOnlyMode,
        roles: o.role as string[],
        drainTimeoutMs: parseDuration(o.drainTimeout as string, '--drain-timeout'),
        lockTimeoutMs: parseDuration(o.lockTimeout as string, '--lock-timeout'),
        probeMs: parseDuration(o.probe as string, '--probe'),
        ...(g.stateDir ? { stateDir: g.stateDir } : {}),
      };
      if (action === 'on') {
        try {
          const r = await readOnlyOn(opts);
          emit(io, g.json, secrets, r, renderReadOnlyOn(r));
        } catch (e) {
          if (e instanceof FenceLeakError && !g.json) io.err(redactText(renderReadOnlyOn(e.result).join('\n'), secrets.values) + '\n');
          throw e;
        }
      } else if (action === 'off') {
        const r = await readOnlyOff(opts);
        emit(io, g.json, secrets, r, renderReadOnlyOff(r));
      } else {
        const r = await readOnlyStatus(opts);
        emit(io, g.json, secrets, r, renderReadOnlyStatus(r));
      }
    });
}

function addRehearse(program: Command, io: CliIO, secrets: Secrets): void {
  program
    .command('rehearse')
    .summary('a full cutover on throw-away servers under a live workload, measured (or on a plan\'s servers)')
    .description(
      'Starts a sandbox PostgreSQL 15 (source), PostgreSQL 18 (target) and PgBouncer (transaction pooling) -\n' +
        'or with --engine mariadb two MariaDB servers and HAProxy - loads sample data, runs writer and reader\n' +
        'clients through the router, performs the cutover with the same code as `cutover sync` + `cutover run`,\n' +
        'then checks every acknowledged write is on the target and tears everything down. Nothing of yours is touched.\n' +
        'With --plan it rehearses on the plan\'s servers instead: a real cutover of that database (use a staging\n' +
        'copy); the workload writes to a table cutover_rehearsal_workload it creates on the source.',
    )
    .addOption(new Option('--engine <engine>', 'sandbox engine: postgres (15 → 18, PgBouncer) or mariadb (HAProxy)').choices(['postgres', 'mariadb']).default('postgres'))
    .option('--rows <n>', 'rows of sample data (with --tenants: spread over the tenants)', (v) => positiveInt(v, '--rows'), 1_000_000)
    .option('--tenants <n>', 'rehearse a wave (`cutover waves`) of N tenant databases, one PgBouncer entry each, clients writing to random tenants', (v) => positiveInt(v, '--tenants'))
    .option('--clients <n>', 'concurrent writers (plus half as many readers)', (v) => positiveInt(v, '--clients'), 4)
    .option('--report <file>', 'also write a self-contained HTML report (latency timeline, step timeline, summary)')
    .option('--keep', 'leave the sandbox servers running and print how to connect')
    .option('--plan <file>', "rehearse on a plan's servers instead of sandboxes (needs --yes)")
    .option('--yes', 'with --plan: the plan\'s source will be fenced and its database cut over')
    .option('--max-write-blocked <duration>', 'override limits.maxWriteBlocked')
    .addHelpText('after', '\nExamples:\n  cutover rehearse\n  cutover rehearse --rows 50000 --clients 8 --report rehearsal.html\n  cutover rehearse --json > rehearsal.json\n  cutover rehearse --tenants 20 --rows 20000 --report wave.html\n  cutover rehearse --plan staging.yaml --yes')
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const plan = o.plan as string | undefined;
      if (plan && !o.yes) throw new UsageError('rehearse --plan cuts over the servers of the plan and needs --yes', `cutover rehearse --plan ${plan} --yes (or \`cutover run ${plan} --dry-run\` first)`);
      if (plan && o.engine !== 'postgres') throw new UsageError('--engine chooses the sandboxes; with --plan the engine is the plan\'s', 'drop --engine');
      if (o.tenants !== undefined && (plan || o.engine !== 'postgres' || o.keep)) throw new UsageError('--tenants rehearses a wave on PostgreSQL sandboxes', 'drop --plan, --engine and --keep');
      if (plan && o.keep) throw new UsageError('--keep applies to sandboxes; with --plan the servers are yours and stay up anyway', 'drop --keep');
      // Sandboxes: an interrupt stops every server started and exits. A plan's servers: the run restores the source first.
      const sig = plan ? interruptSignal(io) : undefined;
      if (!plan) installSandboxCleanup(() => io.err('\ninterrupted: stopping the sandbox servers\n'));
      try {
        const scrub = (t: string) => redactText(t, secrets.values);
        const r = await withRehearseTasks(io, scrub, (onEvent) =>
          rehearse({
            engine: o.engine as 'postgres' | 'mariadb',
            rows: o.rows as number,
            clients: o.clients as number,
            keep: Boolean(o.keep),
            ...(o.tenants !== undefined ? { tenants: o.tenants as number } : {}),
            env: io.env,
            onEvent,
            ...(plan ? { plan } : {}),
            ...(sig ? { abort: sig.abort } : {}),
            ...(o.maxWriteBlocked ? { maxWriteBlockedMs: parseDuration(o.maxWriteBlocked as string, '--max-write-blocked') } : {}),
          }),
        );
        if (o.report) await writeFile(o.report as string, redactText(renderHtmlReport(r), secrets.values));
        if (r.ok) return emit(io, g.json, secrets, r, renderRehearse(r, o.report as string | undefined));
        if (!g.json) io.err(redactText(renderRehearse(r, o.report as string | undefined).join('\n'), secrets.values) + '\n');
        throw new RehearsalFailed(
          r.missingWrites.length > 0
            ? `${r.missingWrites.length} acknowledged write(s) missing on the target after the rehearsal`
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

/** Rejects when the operator interrupts; a second interrupt exits at once. The run restores the safe state first. */
function interruptSignal(io: CliIO): { abort: Promise<never>; dispose(): void } {
  let reject!: (e: Error) => void;
  const abort = new Promise<never>((_, r) => (reject = r));
  abort.catch(() => {});
  let count = 0;
  const handler = (signal: NodeJS.Signals) => {
    if (++count > 1) process.exit(130);
    io.err(`\n${signal}: stopping; the source is being restored\n`);
    reject(new OperationError(`interrupted by ${signal}`, 'the run restored the safe state; run it again when ready'));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return { abort, dispose: () => (process.off('SIGINT', handler), process.off('SIGTERM', handler)) };
}

function eventPrinter(io: CliIO, secrets: Secrets) {
  return (e: CutoverEvent) => {
    if (e.status === 'begin') return;
    const mark = e.status === 'ok' ? '✔' : e.status === 'fail' ? '✖' : '·';
    io.err(redactText(`${mark} ${e.step}: ${e.message}`, secrets.values) + '\n');
  };
}

function addCutoverCommands(program: Command, io: CliIO, secrets: Secrets): void {
  const planOpts = (): PlanCommandOptions => ({
    env: io.env,
    onOpen: (p) => {
      p.secrets.forEach((v) => secrets.add(v));
      for (const w of p.warnings) io.err(`note: ${w}\n`);
    },
  });

  program
    .command('check')
    .summary('preflight checks, no changes')
    .argument('<plan>', 'plan file (YAML)')
    .option('--schema', 'also compare the schemas of source and target (tables, columns, constraints, indexes, sequences)')
    .action(async (file: string, o: { schema?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const r = await check(file, { ...planOpts(), ...(o.schema ? { schema: true } : {}) });
      emit(io, g.json, secrets, { action: 'check', findings: r.findings, blockers: r.blockers }, renderFindings(r.findings));
      if (r.blockers > 0) throw new PreflightError('preflight', `preflight found ${r.blockers} blocker(s)`, 'fix each BLOCKER above, then run check again');
    });

  program
    .command('sync')
    .summary('copy schema and data to the target and keep it in sync (target stays read-only to apps)')
    .argument('<plan>', 'plan file (YAML)')
    .option('--force', 'take over the state dir lock of a process that cannot be checked (another host) once the plan lock on the source is free')
    .action(async (file: string, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const r = await sync(file, { ...planOpts(), onEvent: eventPrinter(io, secrets), force: Boolean(o.force) });
      emit(io, g.json, secrets, { action: 'sync', ...r }, renderSync(r));
    });

  program
    .command('verify')
    .summary('online, before the cutover: compare source and target in key chunks at one replication point (resumable)')
    .argument('<plan>', 'plan file (YAML)')
    .option('--restart', 'start a new pass instead of continuing or reusing the last one')
    .action(async (file: string, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const sig = interruptSignal(io);
      try {
        const work = verify(file, { ...planOpts(), restart: Boolean(o.restart), onProgress: (m) => io.err(redactText(`· verify: ${m}`, secrets.values) + '\n') });
        const r = await Promise.race([work, sig.abort]);
        emit(io, g.json, secrets, { action: 'verify', ...r }, renderVerify(r));
      } finally {
        sig.dispose();
      }
    });

  const runLike = (name: 'run' | 'resume', summary: string) =>
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
        const sig = interruptSignal(io);
        try {
          const opts = {
            ...planOpts(),
            onEvent: eventPrinter(io, secrets),
            abort: sig.abort,
            dryRun: Boolean(o.dryRun),
            force: Boolean(o.force),
            ...(o.maxWriteBlocked ? { maxWriteBlockedMs: parseDuration(o.maxWriteBlocked as string, '--max-write-blocked') } : {}),
            ...(io.testPause?.step ? { pauseAt: io.testPause.step } : {}),
          };
          const r = await (name === 'run' ? run(file, opts) : resume(file, opts));
          emit(io, g.json, secrets, { action: name, ...r }, renderRun(r));
        } catch (e) {
          if (e instanceof LeakedAfterSwitchError && !g.json) io.err(redactText(renderRun(e.result).join('\n'), secrets.values) + '\n');
          throw e;
        } finally {
          sig.dispose();
        }
      });
  runLike('run', 'the cutover: hold, fence, catch up, verify, switch, lift');
  runLike('resume', 'continue after a crash: forward past the point of no return, else restore and run again');

  program
    .command('status')
    .summary('journal, fence state, lag and leftovers of a plan')
    .argument('<plan>', 'plan file (YAML)')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      if (await isWavesPlan(file, { env: io.env })) {
        const w = await wavesStatus(file, planOpts());
        return emit(io, g.json, secrets, { action: 'status', kind: 'waves', ...w }, renderWavesStatus(w));
      }
      const r = await status(file, planOpts());
      emit(io, g.json, secrets, { action: 'status', ...r }, renderStatus(r));
    });

  program
    .command('rollback')
    .summary('before the point of no return: source writable, routing back to it')
    .argument('<plan>', 'plan file (YAML)')
    .option('--cleanup', 'also drop the replication objects (a later run syncs again)')
    .option('--force', 'take over the state dir lock of a process that cannot be checked (another host) once the plan lock on the source is free')
    .action(async (file: string, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      const r = await rollback(file, { ...planOpts(), cleanup: Boolean(o.cleanup), force: Boolean(o.force), onEvent: eventPrinter(io, secrets) });
      emit(io, g.json, secrets, { action: 'rollback', ...r }, renderRollback(r));
    });

  addWaves(program, io, secrets, planOpts);
}

function addWaves(program: Command, io: CliIO, secrets: Secrets, planOpts: () => PlanCommandOptions): void {
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
        const st = await wavesStatus(file, planOpts());
        return emit(io, g.json, secrets, { action: 'status', kind: 'waves', ...st }, renderWavesStatus(st));
      }
      const onEvent = eventPrinter(io, secrets);
      const tenantEvent = (e: WaveEvent) => onEvent({ ...e, step: e.tenant !== undefined ? `${e.tenant} ${e.step}` : e.step });
      if (o.rollback) {
        const r = await wavesRollback(file, o.rollback as string, { ...planOpts(), onEvent: tenantEvent });
        return emit(io, g.json, secrets, { action: 'rollback', ...r }, renderTenantRollback(r));
      }
      if (!o.yes) throw new UsageError('waves changes production servers and needs --yes', `cutover waves ${file} --yes`);
      const sig = interruptSignal(io);
      try {
        const r = await waves(file, {
          ...planOpts(),
          onEvent: tenantEvent,
          abort: sig.abort,
          ...(o.concurrency ? { concurrency: o.concurrency as number } : {}),
          ...(io.testPause?.step ? { pauseAt: io.testPause.step } : {}),
          ...(io.testPause?.tenant ? { pauseTenant: io.testPause.tenant } : {}),
        });
        const unfinished = r.tenants.length - r.counts.done;
        if (unfinished === 0) return emit(io, g.json, secrets, { action: 'waves', ...r }, renderWaves(r));
        if (!g.json) io.err(redactText(renderWaves(r).join('\n'), secrets.values) + '\n');
        const message = `${unfinished} of ${r.tenants.length} tenant(s) not done: ${Object.entries(r.counts).filter(([k, n]) => k !== 'done' && n > 0).map(([k, n]) => `${n} ${k}`).join(', ')}`;
        throw r.counts['in-flight'] > 0 ? new WavesNeedOperator(message, r) : new WavesIncomplete(message, r);
      } finally {
        sig.dispose();
      }
    });
}

function positiveInt(v: string, what: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 100_000_000) throw new UsageError(`${what}: "${v}" is not a positive whole number`, `e.g. ${what} 4`);
  return n;
}

export function createProgram(io: CliIO = processIO(), secrets = new Secrets()): Command {
  const program = new Command('cutover')
    .description('Move a live PostgreSQL or MySQL/MariaDB database to a new server with seconds of write downtime and zero lost writes.')
    .version('0.1.0')
    .option('--json', 'print one JSON document on stdout (human output stays on stderr)')
    .option('--debug', 'print stack traces of unexpected errors')
    .option('--state-dir <dir>', 'where fence records and journals live', '.cutover')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.err(s), writeErr: (s) => io.err(s) });
  addReadOnly(program, io, secrets);
  addCutoverCommands(program, io, secrets);
  addRehearse(program, io, secrets);
  program.commands.forEach((c) => c.exitOverride().configureOutput({ writeOut: (s) => io.err(s), writeErr: (s) => io.err(s) }));
  return program;
}

/** Runs the CLI and returns the exit code. The only place errors become exit codes and one-line messages. */
export async function runCli(argv: string[], io: CliIO = processIO()): Promise<number> {
  const secrets = new Secrets();
  const program = createProgram(io, secrets);
  const debug = argv.includes('--debug');
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? ExitCode.ok : ExitCode.usage;
    }
    const scrub = (t: string) => redactText(t, secrets.values);
    if (isCutoverError(e)) {
      io.err(scrub(`error: ${e.message}${e.hint ? `\n  fix: ${e.hint}` : ''}`) + '\n');
      if (json && !secrets.jsonEmitted) {
        const extra = e instanceof FenceLeakError || e instanceof LeakedAfterSwitchError || e instanceof VerifyMismatchError ? { result: e.result } : e instanceof RehearsalFailed ? { report: e.report } : e instanceof WavesIncomplete || e instanceof WavesNeedOperator ? { result: e.result } : {};
        io.out(JSON.stringify(redactDeep({ ok: false, error: { code: e.code, message: e.message, hint: e.hint, exitCode: e.exitCode }, ...extra }, secrets.values), null, 2) + '\n');
      }
      if (debug && e.stack) io.err(scrub(e.stack) + '\n');
      return e.exitCode;
    }
    const msg = e instanceof Error ? e.message : String(e);
    io.err(scrub(`error: unexpected failure: ${msg}`) + (debug ? '' : ' (run with --debug for details)') + '\n');
    if (debug && e instanceof Error && e.stack) io.err(scrub(e.stack) + '\n');
    if (json && !secrets.jsonEmitted) io.out(JSON.stringify({ ok: false, error: { code: 'unexpected', message: scrub(msg), exitCode: ExitCode.failed } }) + '\n');
    return ExitCode.failed;
  }
}
