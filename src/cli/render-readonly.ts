import { describeLeakedTransaction, type FenceOffResult, type FenceOnResult, type ReadOnlyStatusResult, type SessionInfo } from '../index.js';
import { formatDuration } from '../util/units.js';

function scopeLabel(r: { scope: string; name?: string }): string {
  return r.name ? `${r.scope} "${r.name}"` : r.scope;
}

export function sessionLine(s: SessionInfo): string {
  const parts = [`${/^\d+$/.test(s.id) ? 'pid ' : ''}${s.id}`, `user ${s.user || '?'}`];
  if (s.database) parts.push(`db ${s.database}`);
  if (s.application) parts.push(`app ${s.application}`);
  if (s.client) parts.push(`from ${s.client}`);
  if (s.transactionAgeMs !== undefined) parts.push(`transaction ${formatDuration(s.transactionAgeMs)} old`);
  return `    ${parts.join(', ')}${s.reason ? ` — ${s.reason}` : ''}`;
}

function sessionBlock(title: string, sessions: SessionInfo[]): string[] {
  return sessions.length ? [`  ${title} (${sessions.length}):`, ...sessions.map(sessionLine)] : [];
}

function leakCounts(r: FenceOnResult): string {
  const n = r.leakCheck.transactions?.length ?? 0;
  return [...(n ? [`${n} transaction(s) committed after the fence`] : []), ...(r.leakCheck.writers.length ? [`${r.leakCheck.writers.length} session(s) wrote after the fence`] : [])].join(', ');
}

export function renderReadOnlyOn(r: FenceOnResult): string[] {
  return [
    `read-only ON: ${r.server} — ${scopeLabel(r)}, mode ${r.mode}${r.alreadyOn ? ' (was already on; original state kept)' : ''}, ${formatDuration(r.durationMs)}`,
    ...sessionBlock('drained write transactions', r.drained),
    ...sessionBlock('terminated sessions', r.terminated),
    ...sessionBlock('sessions not touched (advisory)', r.untouched),
    ...(r.lockedRoles.length ? [`  locked (cannot log in until off): ${r.lockedRoles.join(', ')}`] : []),
    r.leakCheck.clean
      ? `  leak check: clean (${r.leakCheck.method === 'decoded' ? `no commit after the fence position ${r.fencePosition ?? '?'}, watched` : 'no write seen during'} ${formatDuration(r.leakCheck.probeMs)})`
      : `  leak check: FAILED — ${leakCounts(r)}`,
    ...(r.leakCheck.transactions ?? []).map((t) => `    ${describeLeakedTransaction(t)}`),
    ...(r.leakCheck.clean ? [] : r.leakCheck.writers.map(sessionLine)),
    ...(r.persistent ? [] : ['  warning: this fence does not survive a server restart']),
    ...r.warnings.map((w) => `  note: ${w}`),
  ];
}

export function renderReadOnlyOff(r: FenceOffResult): string[] {
  return [
    r.wasOn ? `read-only OFF: ${r.server} — ${scopeLabel(r)}: ${r.restored}` : `already writable: ${r.server} — ${scopeLabel(r)} (${r.restored})`,
    ...(r.unlockedRoles.length ? [`  unlocked: ${r.unlockedRoles.join(', ')}`] : []),
    ...r.warnings.map((w) => `  note: ${w}`),
  ];
}

export function renderReadOnlyStatus(r: ReadOnlyStatusResult): string[] {
  const lines = [`${r.engine} ${r.version} at ${r.server}`];
  for (const s of r.scopes) {
    lines.push(`  ${scopeLabel(s)}: ${s.readOnly ? 'READ-ONLY' : 'writable'} (setting ${s.setting ?? 'not set'}${s.persistent ? '' : ', not persistent'}), ${s.sessions} session(s)`);
    if (s.recorded) lines.push(`    fenced by cutover (${s.recorded.mode}) at ${s.recorded.fencedAt}${s.recorded.lockedRoles.length ? `, locked: ${s.recorded.lockedRoles.join(', ')}` : ''}`);
    if (s.couldWrite.length) {
      lines.push(`    could still write (${s.couldWrite.length}):`);
      lines.push(...s.couldWrite.map((w) => `  ${sessionLine(w)}`));
    }
  }
  lines.push(...r.warnings.map((w) => `  note: ${w}`));
  return lines;
}
