import { engineCapabilities } from '../../adapters/registry.js';
import type { RehearseReport } from '../rehearse/types.js';
import { formatBytes, formatDuration } from '../util/units.js';

/** The summary as label/value rows: the terminal table and the HTML page show the same figures. */
export function summaryRows(r: RehearseReport): Array<[string, string]> {
  const c = r.copy;
  const t = r.tenants;
  const wave: Array<[string, string]> = t
    ? [
        ['tenants', `${t.done} of ${t.count} moved, ${t.concurrency} at a time, budget ${formatDuration(t.budgetMs)} each`],
        ['per-tenant windows', `p50 ${formatDuration(t.windows.p50Ms)}, p95 ${formatDuration(t.windows.p95Ms)}, max ${formatDuration(t.windows.maxMs)} (hold to release, ${t.windows.count} measured)`],
      ]
    : [];
  const v = r.revert;
  const back: Array<[string, string]> = v
    ? [
        [
          'revert write-blocked window',
          `${formatDuration(v.writeBlockedMs)} (longest gap between acknowledged writes during the revert; fence to lift ${formatDuration(v.fenceToLiftMs)}, budget ${formatDuration(v.budgetMs)})`,
        ],
        ['revert read-blocked window', `${formatDuration(v.readBlockedMs)} (longest gap between successful reads during the revert)`],
        ['revert catch-up proof', `${v.catchUp.method}, ${formatDuration(v.catchUp.waitedMs)}`],
        ['writes on the new primary', `${v.writesOnNewPrimary} acknowledged between the switch and the revert's hold`],
      ]
    : [];
  return [
    ...wave,
    ['privileges', r.privileges === 'managed' ? 'managed profile (the cutover ran as an admin without superuser)' : r.privileges],
    [
      v ? 'write-blocked window (forward)' : 'write-blocked window',
      `${formatDuration(r.writeBlockedMs)} (longest gap between acknowledged writes; fence to lift ${formatDuration(r.fenceToLiftMs)}, budget ${formatDuration(r.budgetMs)})`,
    ],
    ['read-blocked window', `${formatDuration(r.readBlockedMs)} (longest gap between successful reads)`],
    [
      'copied',
      `${c.tables} tables, ${c.rows === null ? '' : `${c.rows} rows, `}${formatBytes(c.bytes)} in ${formatDuration(c.durationMs)} (${formatBytes(c.bytesPerSecond)}/s${c.rowsPerSecond === null ? '' : `, ${c.rowsPerSecond} rows/s`})`,
    ],
    ['fence', `${r.fence.drained} drained, ${r.fence.terminated} sessions ended, leak check ${r.fence.leakClean ? 'clean' : 'FAILED'}`],
    ['catch-up proof', `${r.catchUp.method}, ${formatDuration(r.catchUp.waitedMs)}`],
    ['verify', `${r.verify.mode}: ${r.verify.tables} tables, ${r.verify.mismatches} mismatches`],
    ['client operations', `${r.workload.writes.ok} writes, ${r.workload.reads.ok} reads by ${r.clients.writers} writers and ${r.clients.readers} readers`],
    ...back,
    ['client errors', `${r.clientErrors} (expected 0)`],
    ['acknowledged writes verified', `${r.verifiedWrites} of ${r.acknowledgedWrites} on the ${v ? 'old source (both phases)' : 'target'}${r.missingWrites.length ? `, MISSING ${r.missingWrites.length}` : ''}`],
  ];
}

export function headline(r: RehearseReport): string {
  const where = r.mode === 'sandbox' ? 'sandbox' : 'plan servers';
  // "15.20 (Debian ...)", "10.11.11-MariaDB-0+deb12u1": the number is enough here.
  const short = (v: string) => v.split(/[ -]/)[0];
  const path = `${short(r.source.version)} → ${short(r.target.version)}${r.revert ? ` → ${short(r.source.version)} (revert)` : ''}`;
  return `cutover rehearsal (${where}): ${engineCapabilities(r.engine).product} ${path} through ${r.router}: ${r.ok ? 'OK' : 'FAILED'}`;
}
