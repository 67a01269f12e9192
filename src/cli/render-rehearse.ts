import type { RehearseResult } from '../rehearse/rehearse.js';
import { formatDuration } from '../util/units.js';

export function renderRehearse(r: RehearseResult): string[] {
  const ok = r.missingWrites.length === 0;
  return [
    '',
    `rehearsal: read-only fence on PostgreSQL ${r.serverVersion} (sandbox), ${r.clients} writers, ${r.rowsLoaded} rows`,
    `  write-blocked window  ${formatDuration(r.writeBlockedMs)}  (longest span without an acknowledged write)`,
    `  fence applied in      ${formatDuration(r.fence.durationMs)}  (${r.fence.drained.length} drained, ${r.fence.terminated.length} sessions ended, leak check ${r.fence.leakCheck.clean ? 'clean' : 'FAILED'})`,
    `  acknowledged writes   ${r.acknowledgedWrites}, verified ${r.verifiedWrites}${ok ? '' : `, MISSING ${r.missingWrites.length}`}`,
    `  refused by the fence  ${r.refusedWrites} (no router hold in this rehearsal), in doubt ${r.inDoubtWrites} (connection ended)`,
    '  steps:',
    ...r.steps.map((s) => `    ${s.name.padEnd(36)} ${formatDuration(s.endMs - s.startMs)}`),
    ...(r.kept ? [`  kept running: PGPASSFILE=${r.kept.passfile} psql ${r.kept.url}`, `  stop it with: ${r.kept.stopCommand}`] : []),
  ];
}
