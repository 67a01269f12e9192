import { DifferAfterSwitchError, ExitCode, FenceLeakError, isCutoverError, LeakedAfterSwitchError, redactDeep, RehearsalFailed, VerifyMismatchError, WavesIncomplete, WavesNeedOperator } from '../index.js';
import type { CliContext } from './context.js';

/** What a failed command still owes the --json reader: the result or report it carries. */
function carried(e: unknown): object {
  if (e instanceof FenceLeakError || e instanceof LeakedAfterSwitchError || e instanceof DifferAfterSwitchError || e instanceof VerifyMismatchError) return { result: e.result };
  if (e instanceof RehearsalFailed) return { report: e.report };
  if (e instanceof WavesIncomplete || e instanceof WavesNeedOperator) return { result: e.result };
  return {};
}

/**
 * The only place errors become exit codes and one-line messages: `error: ...` and its `fix:` on stderr, the
 * error as the JSON document with --json (unless the command already printed one), a stack only with --debug.
 */
export function reportFailure(e: unknown, ctx: CliContext, flags: { json: boolean; debug: boolean }): number {
  const { io } = ctx;
  if (isCutoverError(e)) {
    io.err(ctx.scrub(`error: ${e.message}${e.hint ? `\n  fix: ${e.hint}` : ''}`) + '\n');
    if (flags.json && !ctx.jsonEmitted) {
      io.out(JSON.stringify(redactDeep({ ok: false, error: { code: e.code, message: e.message, hint: e.hint, exitCode: e.exitCode }, ...carried(e) }, ctx.secrets), null, 2) + '\n');
    }
    if (flags.debug && e.stack) io.err(ctx.scrub(e.stack) + '\n');
    return e.exitCode;
  }
  const msg = e instanceof Error ? e.message : String(e);
  io.err(ctx.scrub(`error: unexpected failure: ${msg}`) + (flags.debug ? '' : ' (run with --debug for details)') + '\n');
  if (flags.debug && e instanceof Error && e.stack) io.err(ctx.scrub(e.stack) + '\n');
  if (flags.json && !ctx.jsonEmitted) io.out(JSON.stringify({ ok: false, error: { code: 'unexpected', message: ctx.scrub(msg), exitCode: ExitCode.failed } }) + '\n');
  return ExitCode.failed;
}
