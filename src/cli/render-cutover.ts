import type { FinalizeResult, Finding, OnlineVerifyReport, PlanStatus, RollbackResult, RunResult, SyncSummary } from '../index.js';
import { afterWords } from '../engine/verify-after.js';
import { formatBytes, formatDuration } from '../util/units.js';

const LABEL: Record<Finding['severity'], string> = { blocker: 'BLOCKER', warning: 'warning', info: 'info' };

/** Up to five tenant names, then how many more. */
function namedTenants(tenants: readonly string[]): string {
  return tenants.length > 5 ? `${tenants.slice(0, 5).join(', ')} +${tenants.length - 5}` : tenants.join(', ');
}

export function renderFindings(findings: Finding[]): string[] {
  const lines = findings.map(
    (f) =>
      `  [${LABEL[f.severity]}] ${f.check}${f.object ? ` (${f.object})` : ''}${f.tenants ? ` [tenant${f.tenants.length > 1 ? 's' : ''} ${namedTenants(f.tenants)}]` : ''}: ${f.message}${f.severity === 'info' ? '' : `\n      why: ${f.why}\n      fix: ${f.fix}`}`,
  );
  const blockers = findings.filter((f) => f.severity === 'blocker').length;
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  return [...lines, blockers ? `preflight: ${blockers} blocker(s), ${warnings} warning(s)` : `preflight: ok (${warnings} warning(s))`];
}

export function renderSync(s: SyncSummary): string[] {
  return [`synced (${s.method}): ${s.tables} tables, ${formatBytes(s.bytes)}, ${s.rolesCreated} role(s) created, ${formatDuration(s.durationMs)}; the target stays read-only to applications until the cutover`];
}

export function renderRun(r: RunResult): string[] {
  if (r.outcome === 'dry-run') return ['dry run: nothing was changed', ...renderFindings(r.findings)];
  return [
    '',
    `cutover done: plan ${r.planId}`,
    `  write-blocked window  ${r.writeBlockedMs !== undefined ? formatDuration(r.writeBlockedMs) : '?'} (budget ${formatDuration(r.budgetMs)})`,
    ...(r.lagBytesAtFence != null ? [`  lag at fence          ${formatBytes(r.lagBytesAtFence)}`] : []),
    ...(r.fence ? [`  fence                 ${r.fence.drained} drained, ${r.fence.terminated} sessions ended, leak check ${r.fence.leakClean ? 'clean' : 'FAILED'}${r.leakCheck ? ` (${r.leakCheck.method})` : ''}`] : []),
    ...(r.leakCheck?.late?.checked ? [`  after the switch      ${lateWords(r.leakCheck.late)}`] : []),
    ...(r.catchUp ? [`  catch-up              ${r.catchUp.method} at ${r.catchUp.proofPosition ?? r.catchUp.fencePosition} (fence position ${r.catchUp.fencePosition}), ${formatDuration(r.catchUp.waitedMs)}`] : []),
    ...(r.cdc ?? []).map((c) => `  CDC slot ${c.slot.padEnd(12)}  source up to ${c.sourceStop}, then target slot from ${c.targetStart} (${c.plugin}); skip rows of ${c.toolTable}`),
    ...(r.reanalyzed?.length ? [`  analyzed again        ${r.reanalyzed.length} table(s) changed since sync`] : []),
    ...(r.sequences !== undefined ? [`  sequences set         ${r.sequences}`] : []),
    ...(r.verifyBefore ? [`  verify before hold    ${verifyWords(r.verifyBefore)}`] : []),
    ...(r.verify ? [`  verify                ${r.verify.mode}: ${r.verify.tables.length} tables match, ${formatDuration(r.verify.durationMs)}`] : []),
    ...(r.verifyAfter ? [`  verify after switch   ${afterWords(r.verifyAfter)}`] : []),
    ...(r.cleanedUp?.length ? [`  cleaned up            ${r.cleanedUp.join(', ')}`] : []),
    ...(r.reverse
      ? [`  reverse path          ${r.reverse.state === 'following' ? 'the old source follows the new primary: `cutover revert` goes back, `cutover finalize` ends it' : `unavailable: ${r.reverse.why ?? '?'}`}`]
      : []),
    '  steps:',
    ...r.steps.map((s) => `    ${s.step.padEnd(20)} ${formatDuration(s.endMs - s.startMs)}`),
    ...r.warnings.map((w) => `  warning: ${w}`),
  ];
}

function verifyWords(v: OnlineVerifyReport): string {
  if (v.outcome === 'skipped') return `skipped: ${v.skipped ?? ''}`;
  if (v.reused) return `reused the clean pass finished ${v.finishedAt ?? '?'} (${v.tables} tables, ${v.chunks} chunks)`;
  return `${v.tables} tables, ${v.chunks} chunks, ${v.rows} rows match, ${formatDuration(v.durationMs)}${v.resumedChunks ? ` (${v.resumedChunks} chunks from an interrupted pass)` : ''}; longest table lock ${formatDuration(v.maxLockedMs)}`;
}

export function renderVerify(v: OnlineVerifyReport): string[] {
  return ['', `verify: ${verifyWords(v)}`];
}

function lateWords(l: NonNullable<NonNullable<RunResult['leakCheck']>['late']>): string {
  const n = l.replicated.length + l.sourceOnly.length;
  if (n === 0 && l.openWriters.length === 0) return 'no write reached the old source';
  return `${n} transaction(s) on the old source (${l.replicated.length} replicated, ${l.sourceOnly.length} not), ${l.openWriters.length} session(s) still writing`;
}

export function renderStatus(s: PlanStatus): string[] {
  return [
    `plan ${s.planId}: ${s.phase}`,
    `  next: ${s.next}`,
    ...(s.lock ? [`  locked by pid ${s.lock.pid} on ${s.lock.hostname} since ${s.lock.startedAt} (token ${s.lock.token})`] : []),
    ...(s.unfinished.length ? [`  unfinished steps (the process died in them): ${s.unfinished.join(', ')}`] : []),
    ...(s.source ? [`  source ${s.source.name ?? ''}: ${s.source.readOnly ? 'READ-ONLY' : 'writable'}${s.source.recorded ? ` (fenced by cutover at ${s.source.recorded.fencedAt})` : ''}`] : []),
    ...(s.lagBytes != null ? [`  replication lag: ${formatBytes(s.lagBytes)}`] : []),
    ...(s.cdc ?? []).map(
      (c) =>
        `  CDC slot ${c.slot} (${c.plugin}): read the source through ${c.sourceStop}${c.sourceConfirmed !== undefined ? ` (its consumer is at ${c.sourceConfirmed ?? 'gone'})` : ''}, then the target from ${c.targetStart}; skip rows of ${c.toolTable} (the tool's)`,
    ),
    ...(s.reverse
      ? [
          `  reverse path ${s.reverse.name}: ${s.reverse.state}${s.reverse.lagBytes != null ? `, lag ${formatBytes(s.reverse.lagBytes)}` : ''}${s.reverse.lagSeconds != null ? ` (${s.reverse.lagSeconds} s behind)` : ''}${s.reverse.why ? ` (${s.reverse.why})` : ''}`,
        ]
      : []),
    ...(s.revert ? [`  revert: ${s.revert.phase}${s.revert.unfinished.length ? ` (unfinished: ${s.revert.unfinished.join(', ')})` : ''}`] : []),
    ...s.leftovers.map((l) => `  left on the ${l.where}: ${l.kind} ${l.name}${l.retainsWal ? ' (keeps WAL on the ${l.where})' : ''} — drop with: ${l.drop}`),
    ...(s.journal.length ? ['  journal:', ...s.journal.slice(-12).map((r) => `    ${String(r.seq).padStart(3)} ${r.at} ${r.step} ${r.status}`)] : ['  journal: empty']),
    ...s.errors.map((e) => `  could not check ${e}`),
  ];
}

export function renderFinalize(r: FinalizeResult): string[] {
  return [r.dropped.length ? `finalized plan ${r.planId}: the reverse path ended; dropped ${r.dropped.join(', ')}` : `finalized plan ${r.planId}: no reverse path was left to end`];
}

export function renderRollback(r: RollbackResult): string[] {
  return [
    `rolled back plan ${r.planId}: the source is writable and routing points at it`,
    ...r.leftovers.map((l) => `  still in place on the ${l.where}: ${l.kind} ${l.name}${l.retainsWal ? ' (keeps WAL on the ${l.where})' : ''} — for a later run; drop with \`cutover rollback --cleanup\` or: ${l.drop}`),
    ...r.warnings.map((w) => `warning: ${w}`),
  ];
}
