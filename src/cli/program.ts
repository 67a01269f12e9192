import { Command, CommanderError, Option } from 'commander';
import { ExitCode } from '../index.js';
import { registerCheck } from './commands/check.js';
import { registerReadOnly } from './commands/readonly.js';
import { registerRehearse } from './commands/rehearse.js';
import { registerResume } from './commands/resume.js';
import { registerRevert, registerFinalize } from './commands/revert.js';
import { registerRollback } from './commands/rollback.js';
import { registerRun } from './commands/run.js';
import { registerStatus } from './commands/status.js';
import { registerSync } from './commands/sync.js';
import { registerVerify } from './commands/verify.js';
import { registerWaves } from './commands/waves.js';
import { CliContext, type GlobalOpts } from './context.js';
import { reportFailure } from './failure.js';
import { processIO, type CliIO } from './io.js';

/** The commander program: global flags, then every command in the order `--help` lists them. */
export function createProgram(io: CliIO = processIO(), ctx = new CliContext(io)): Command {
  const program = new Command('cutover')
    .description('Move a live PostgreSQL or MySQL/MariaDB database to a new server with seconds of write downtime and zero lost writes.')
    .version('0.1.0')
    .option('--json', 'print one JSON document on stdout (human output stays on stderr)')
    .option('--debug', 'print stack traces of unexpected errors')
    .option('--state-dir <dir>', 'where fence records and journals live', '.cutover')
    .addOption(new Option('--events <format>', 'progress events on stderr: text lines (a live view on a terminal), or json: one object per line').choices(['text', 'json']).default('text'))
    .hook('preAction', (cmd) => {
      ctx.eventFormat = cmd.opts<GlobalOpts>().events ?? 'text';
    })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.err(s), writeErr: (s) => io.err(s) });
  for (const register of [
    registerReadOnly,
    registerCheck,
    registerSync,
    registerVerify,
    registerRun,
    registerResume,
    registerStatus,
    registerRollback,
    registerRevert,
    registerFinalize,
    registerWaves,
    registerRehearse,
  ]) {
    register(program, ctx);
  }
  program.commands.forEach((c) => c.exitOverride().configureOutput({ writeOut: (s) => io.err(s), writeErr: (s) => io.err(s) }));
  return program;
}

/** Runs the CLI and returns the exit code. */
export async function runCli(argv: string[], io: CliIO = processIO()): Promise<number> {
  const ctx = new CliContext(io);
  const program = createProgram(io, ctx);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? ExitCode.ok : ExitCode.usage;
    }
    return reportFailure(e, ctx, { json: argv.includes('--json'), debug: argv.includes('--debug') });
  }
}
