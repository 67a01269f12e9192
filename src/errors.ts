import type { WavesResult } from './engine/waves.js';
import { describeLeak, describeLeakedTransaction, sessionWords } from './readonly/describe-leak.js';
import { describeRange } from './engine/key-range.js';
import type { RunResult } from './engine/run.js';
import type { OnlineVerifyReport } from './engine/verify-online.js';
import type { FenceOnResult, LateLeakCheck } from './readonly/types.js';
import type { RehearseReport } from './rehearse/types.js';

/**
 * One error hierarchy for the whole tool. The CLI's single top-level catch maps each class to an exit code
 * and prints `message` (one line) plus `hint` (how to fix it). Library callers can switch on `code`.
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  preflight: 3,
  budgetExceeded: 4,
  needsOperator: 5,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export abstract class CutoverError extends Error {
  abstract readonly exitCode: ExitCodeValue;
  abstract readonly code: string;
  constructor(
    message: string,
    /** What the operator can do about it. */
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad flags, bad URL, malformed plan: nothing was touched. */
export class UsageError extends CutoverError {
  readonly exitCode = ExitCode.usage;
  readonly code = 'usage';
}

/** The environment does not allow the operation: unreachable server, bad password, missing privilege, old version. */
export class PreflightError extends CutoverError {
  readonly exitCode = ExitCode.preflight;
  readonly code: string;
  constructor(code: 'unreachable' | 'auth' | 'privilege' | 'version' | 'preflight' | 'tls', message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, hint, options);
    this.code = code;
  }
}

/** The operation failed and the safe state was restored (or nothing was changed). */
export class OperationError extends CutoverError {
  readonly exitCode = ExitCode.failed;
  readonly code = 'failed';
}

/** The write-downtime budget ran out; the source was unfenced and routing restored. */
export class BudgetExceededError extends CutoverError {
  readonly exitCode = ExitCode.budgetExceeded;
  readonly code = 'budget-exceeded';
}

/** A state the tool will not resolve on its own: a fence that leaks, a journal that needs a decision. */
export class NeedsOperatorError extends CutoverError {
  readonly exitCode = ExitCode.needsOperator;
  readonly code: string;
  constructor(code: 'leak' | 'needs-operator' | 'locked', message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, hint, options);
    this.code = code;
  }
}

/** One problem in a plan file, located by key path and line. */
export interface PlanIssue {
  line: number;
  /** Dotted key path, e.g. `limits.maxWriteBlocked` (empty for the whole document). */
  path: string;
  message: string;
  fix?: string;
}

function formatIssue(file: string, issue: PlanIssue): string {
  return `${file}:${issue.line}: ${issue.path ? `${issue.path}: ` : ''}${issue.message}${issue.fix ? ` (${issue.fix})` : ''}`;
}

/** Every problem found in a plan; the message is the first, the rest go in `issues` (and the hint). */
export class PlanError extends UsageError {
  constructor(
    readonly file: string,
    readonly issues: PlanIssue[],
  ) {
    issues.sort((a, b) => a.line - b.line);
    const [first, ...rest] = issues.map((i) => formatIssue(file, i));
    super(first ?? `${file}: invalid plan`, rest.length ? `also: ${rest.join('; ')}` : undefined);
  }
}

/** The fence failed its leak check: the result says who wrote. The fence itself stays in place. */
export class FenceLeakError extends NeedsOperatorError {
  constructor(readonly result: FenceOnResult) {
    super('leak', `leak check failed: ${describeLeak(result.leakCheck)}`, 'end those sessions or use --mode strict --role <app role>; the fence stays on (run `cutover readonly off` to lift it)');
  }
}

/** A rehearsal that ran to the end but lost a write or saw a client error: exit 1, its report still printed once. */
export class RehearsalFailed extends OperationError {
  constructor(
    message: string,
    readonly report: RehearseReport,
  ) {
    super(message, 'see the summary above; the --json document carries the full report');
  }
}

/** A wave that ended with tenants failed, rolled back or left in flight: its result still goes out once. */
export class WavesIncomplete extends OperationError {
  constructor(
    message: string,
    readonly result: WavesResult,
  ) {
    super(message, 'the table above says which tenants; fix the cause and run `cutover waves` again (done tenants are skipped)');
  }
}

/** The same, when a tenant needs the operator (left in flight): exit 5. */
export class WavesNeedOperator extends NeedsOperatorError {
  constructor(
    message: string,
    readonly result: WavesResult,
  ) {
    super('needs-operator', message, 'run `cutover waves` again: in-flight tenants are resumed first; `cutover status` shows each tenant');
  }
}

export function isCutoverError(e: unknown): e is CutoverError {
  return e instanceof CutoverError;
}

/**
 * The cutover finished, but the old source took writes after the leak check: past the point of no return they
 * cannot be undone, only reported. Exit 5; `result` is the finished run.
 */
export class LeakedAfterSwitchError extends NeedsOperatorError {
  constructor(
    readonly result: RunResult,
    late: LateLeakCheck,
  ) {
    const list = (ts: LateLeakCheck['sourceOnly']) => ts.slice(0, 5).map(describeLeakedTransaction).join(', ') + (ts.length > 5 ? `, and ${ts.length - 5} more` : '');
    const reached = late.splitBy === 'applied' ? 'before replication into the target stopped, so on the target too' : 'before the final sentinel, so replicated to the target';
    const stayed =
      late.splitBy === 'sentinel' ? 'after it, so maybe not on the target' : late.splitBy === 'applied' ? 'after replication stopped, so only on the old source' : 'with no replication running, so only on the old source';
    const parts = [
      ...(late.replicated.length ? [`${late.replicated.length} transaction(s) committed ${reached}: ${list(late.replicated)}`] : []),
      ...(late.sourceOnly.length ? [`${late.sourceOnly.length} transaction(s) committed ${stayed}: ${list(late.sourceOnly)}`] : []),
      ...(late.openWriters.length ? [`${late.openWriters.length} session(s) still inside a write transaction on the old source: ${late.openWriters.map(sessionWords).join(', ')}`] : []),
    ];
    super(
      'leak',
      `the cutover is done (the target is the primary), but the old source took writes after the leak check, past the point of no return: ${parts.join('; ')}`,
      'copy what those transactions wrote only to the old source over to the target by hand; end the sessions that override the read-only default (readOnly.mode strict with the app roles keeps them out)',
    );
  }
}

/**
 * The cutover finished, but the compare after the switch (`verify.after: chunks`) found chunks where the target
 * as of the switch differs from the frozen old source. Exit 5; `result` is the finished run.
 */
export class DifferAfterSwitchError extends NeedsOperatorError {
  constructor(readonly result: RunResult) {
    const v = result.verifyAfter!;
    const shown = v.mismatches.slice(0, 5).map((m) => `${m.table} keys ${describeRange(m)} (source ${m.source}, target ${m.target} rows:hash)`);
    super(
      'needs-operator',
      `the cutover is done (the target is the primary), but the compare after the switch found ${v.mismatchCount} chunk(s) where the target as of the switch differs from the old source: ${shown.join(', ')}${v.mismatchCount > shown.length ? ', ...' : ''}`,
      'compare those key ranges on the old source (still read-only) and the target, and copy what is missing over by hand',
    );
  }
}

/** A verify that found differences: nothing was fenced (exit 1); `result` names the chunks. */
export class VerifyMismatchError extends OperationError {
  constructor(readonly result: OnlineVerifyReport) {
    const shown = result.mismatches.slice(0, 5).map((m) => `${m.table} keys ${describeRange(m)} (source ${m.source}, target ${m.target} rows:hash)`);
    super(
      `verify found ${result.mismatchCount} chunk(s) that differ between source and target at one replication point: ${shown.join(', ')}${result.mismatchCount > shown.length ? ', ...' : ''}; nothing was fenced`,
      'compare those key ranges on both servers and fix the target (or sync again); the next verify starts a new pass',
    );
  }
}
