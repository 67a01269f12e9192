import type { RollbackResult, TenantOutcome, TenantRevert, WavesResult, WavesStatus, WindowStats } from '../index.js';
import { formatDuration } from '../util/units.js';

function windowsLine(w: WindowStats): string {
  return w.count
    ? `per-tenant write-blocked window  p50 ${formatDuration(w.p50Ms)}  p95 ${formatDuration(w.p95Ms)}  max ${formatDuration(w.maxMs)}  (${w.count} measured)`
    : 'per-tenant write-blocked window  none measured yet';
}

function table(rows: Array<Pick<TenantOutcome, 'tenant' | 'state' | 'writeBlockedMs'> & { note?: string }>): string[] {
  const width = Math.max(6, ...rows.map((r) => r.tenant.length));
  return [
    `  ${'tenant'.padEnd(width)}  ${'state'.padEnd(11)}  ${'window'.padStart(8)}`,
    ...rows.map((r) => `  ${r.tenant.padEnd(width)}  ${r.state.padEnd(11)}  ${(r.writeBlockedMs !== undefined ? formatDuration(r.writeBlockedMs) : '-').padStart(8)}${r.note ? `  ${r.note}` : ''}`),
  ];
}

function countsLine(counts: WavesResult['counts']): string {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`)
    .join(', ');
}

export function renderWaves(r: WavesResult): string[] {
  return [
    '',
    `waves: plan ${r.planId}, ${r.tenants.length} tenant(s), concurrency ${r.concurrency}, ${formatDuration(r.wallMs)}`,
    ...table(r.tenants.map((t) => ({ ...t, note: t.error ? t.error.message : t.action === 'moved' ? '' : t.action }))),
    `  ${countsLine(r.counts)}${r.stopped ? ' (stopped early: stopAfterFailures reached or interrupted)' : ''}`,
    `  ${windowsLine(r.windows)}`,
  ];
}

/** A moved tenant's way back, as the status table says it (with the command that goes on from there). */
const REVERT_NOTE: Record<TenantRevert, (tenant: string) => string> = {
  'revert-in-flight': (t) => `revert under way or stopped while the target was fenced (\`cutover revert --tenant ${t} --resume|--rollback\` if no revert runs)`,
  'revert-past-pnr': (t) => `revert past its point of no return (\`cutover revert --tenant ${t} --resume\` if no revert runs)`,
  'revert-rolled-back': () => 'a revert was rolled back: runs on the target',
  reverted: () => 'reverted: runs on the old source again',
  finalized: () => 'finalized: reverse path ended',
  'finalize-unfinished': (t) => `finalize did not finish (\`cutover finalize --tenant ${t} --yes\` again)`,
};

export function renderWavesStatus(s: WavesStatus): string[] {
  const runners = s.runners
    ? [
        `  ${s.runners.length} runner(s) in this round (${s.state ?? 'control database'}):`,
        ...s.runners.map((r) => `    ${r.runner}  ${r.alive ? 'running' : r.finishedAt ? 'finished' : 'gone (its leases ended with its session)'}${r.tenants.length ? `  holds ${r.tenants.join(', ')}` : ''}`),
      ]
    : [];
  return [
    `waves plan ${s.planId}: ${countsLine(s.counts)}`,
    ...runners,
    ...table(s.tenants.map((t) => ({ ...t, note: [t.runner && t.state !== 'done' ? `runner ${t.runner}` : '', t.revert ? REVERT_NOTE[t.revert](t.tenant) : '', t.lastError ?? ''].filter(Boolean).join('  ') }))),
    `  ${windowsLine(s.windows)}`,
  ];
}

export function renderTenantRollback(r: RollbackResult & { tenant: string }): string[] {
  return [
    `tenant ${r.tenant}: source writable again and its router entry on the source`,
    ...(r.leftovers.length ? [`  leftovers (a later \`cutover waves\` reuses them): ${r.leftovers.map((l) => `${l.kind} ${l.name}`).join(', ')}`] : []),
  ];
}
