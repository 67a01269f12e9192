import type { RehearseReport } from '../index.js';
import { headline, summaryRows } from '../report/summary.js';
import { formatDuration } from '../util/units.js';

/** The end-of-run summary table (stderr). Passwords are never in a report: kept servers name a passfile. */
export function renderRehearse(r: RehearseReport, htmlFile?: string): string[] {
  const rows = summaryRows(r);
  const width = Math.max(...rows.map(([k]) => k.length));
  const cutoverSteps = r.steps.filter((s) => s.phase === 'cutover');
  const revertSteps = r.steps.filter((s) => s.phase === 'revert');
  return [
    '',
    headline(r),
    ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
    '  cutover steps:',
    ...cutoverSteps.map((s) => `    ${s.name.padEnd(20)} ${formatDuration(s.durationMs).padStart(7)}`),
    ...(revertSteps.length ? ['  revert steps:', ...revertSteps.map((s) => `    ${s.name.padEnd(20)} ${formatDuration(s.durationMs).padStart(7)}`)] : []),
    ...r.errors.map((e) => `  client error: ${e}`),
    ...(r.missingWrites.length ? [`  missing writes (client:seq): ${r.missingWrites.slice(0, 20).join(', ')}${r.missingWrites.length > 20 ? ' …' : ''}`] : []),
    ...r.warnings.map((w) => `  warning: ${w}`),
    ...(htmlFile ? [`  report: ${htmlFile}`] : []),
    ...(r.kept
      ? [
          '  kept running (passwords are in the passfile, mode 0600):',
          `    source  ${r.kept.connect.source}`,
          `    target  ${r.kept.connect.target}`,
          `    router  ${r.kept.connect.router}`,
          '  stop them with:',
          ...r.kept.stopCommands.map((c) => `    ${c}`),
        ]
      : []),
  ];
}
