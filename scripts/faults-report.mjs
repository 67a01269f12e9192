#!/usr/bin/env node
// Runs the fault and abuse suite against real servers and writes its results into docs/reliability.md,
// between the faults-report markers (the hand-written text around them is kept).
//
//   node scripts/faults-report.mjs            run the suite, update docs/reliability.md
//
// Each fault test appends one JSON line per scenario run to $FAULT_RESULTS_DIR/results.jsonl (see
// test/helpers/faults.ts); vitest's JSON report gives pass/fail for every test, including the older fault
// tests in test/integration that do not record writes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DOC = join(ROOT, 'docs', 'reliability.md');
const BEGIN = '<!-- faults-report:begin -->';
const END = '<!-- faults-report:end -->';

/** vitest file filters (substrings of the test file paths). */
const FILTERS = [
  'test/faults/',
  'test/unit/fault-proxy',
  'test/unit/plan-hostile',
  'test/integration/pg-cutover-killed',
  'test/integration/pg-cutover-interrupted',
  'test/integration/cutover-two-operators',
  'test/integration/pg-cutover-unwritable-state-dir',
  'test/integration/pg-secrets-stay-put',
  'test/integration/mysql-cutover-kill',
];

/**
 * Fault tests that pass or fail but do not record writes: which scenario each one covers. (The kill and
 * interrupt suites record their writes through test/helpers/kill-suite.ts and faults.ts.)
 * @type {Array<[RegExp, string]>}
 */
const SCENARIO_OF_FILE = [
  [/cutover-two-operators/, '5. two operators, stale lock, separate state dirs, --force (PG); separate state dirs (MariaDB)'],
  [/pg-cutover-unwritable-state-dir/, '10. state dir unusable while fenced; rollback without it; router cannot point back (PG)'],
  [/pg-secrets-stay-put/, '9. child environments without passwords; no PGPASSWORD to the target (PG)'],
  [/plan-hostile/, '8. hostile plan files (unit + CLI)'],
  [/fault-proxy/, 'fault proxy (unit, echo server)'],
];

const work = mkdtempSync(join(tmpdir(), 'cutover-faults-report-'));
const jsonOut = join(work, 'vitest.json');
const started = Date.now();
const r = spawnSync('npx', ['vitest', 'run', ...FILTERS, '--reporter=default', '--reporter=json', `--outputFile.json=${jsonOut}`], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, FAULT_RESULTS_DIR: work },
});
const wallS = Math.round((Date.now() - started) / 1000);
if (!existsSync(jsonOut)) {
  console.error(`faults-report: vitest wrote no JSON report (exit ${r.status})`);
  process.exit(1);
}
const report = JSON.parse(readFileSync(jsonOut, 'utf8'));
const resultsFile = join(work, 'results.jsonl');
const results = existsSync(resultsFile)
  ? readFileSync(resultsFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
  : [];
rmSync(work, { recursive: true, force: true });

const tests = report.testResults.flatMap((f) => f.assertionResults.map((a) => ({ file: relative(ROOT, f.name), title: a.fullName ?? a.title, status: a.status, ms: Math.round(a.duration ?? 0) })));
const failed = tests.filter((t) => t.status === 'failed');
const skipped = tests.filter((t) => t.status !== 'passed' && t.status !== 'failed');

const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
const byScenario = new Map();
for (const x of results) {
  const row = byScenario.get(x.scenario) ?? { runs: 0, acked: 0, lost: 0, clientErrors: 0, exits: new Set(), states: new Set() };
  row.runs++;
  row.acked += x.acked;
  row.lost += x.lost;
  row.clientErrors += x.clientErrors;
  row.exits.add(x.exitCode);
  row.states.add(x.finalState);
  byScenario.set(x.scenario, row);
}
const recorded = [...byScenario.entries()].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));

const unrecorded = SCENARIO_OF_FILE.map(([re, scenario]) => {
  const ts = tests.filter((t) => re.test(t.file));
  return { scenario, runs: ts.length, passed: ts.filter((t) => t.status === 'passed').length };
}).filter((x) => x.runs > 0);

const totalLost = results.reduce((n, x) => n + x.lost, 0);
const lines = [
  BEGIN,
  '',
  `Last run: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpus().length} cores, ${wallS} s wall clock, ` +
    `${tests.length} tests: ${tests.length - failed.length - skipped.length} passed, ${failed.length} failed, ${skipped.length} skipped. ` +
    `Acknowledged writes lost: **${totalLost}**.`,
  '',
  '### Scenarios under a writing workload',
  '',
  'Acked = writes the workload saw acknowledged; lost = acked writes missing from the server that owns the data at the end;',
  'client errors = operations refused (e.g. 25006 / 1290) or left in doubt by a dropped connection — a refusal is not a loss.',
  '',
  '| scenario | runs | acked writes | lost | client errors | run exit | final state |',
  '|---|---:|---:|---:|---:|---|---|',
  ...recorded.map(([s, x]) => `| ${cell(s)} | ${x.runs} | ${x.acked} | ${x.lost} | ${x.clientErrors} | ${[...x.exits].join(', ')} | ${cell([...x.states].join('; '))} |`),
  '',
  '### Fault tests that assert outcomes without recording counts',
  '',
  'These tests assert that every acknowledged write is on the final server (and `status` / `resume` / `rollback`',
  'behave) but do not report counts.',
  '',
  '| scenario | tests | passed |',
  '|---|---:|---:|',
  ...unrecorded.map((x) => `| ${cell(x.scenario)} | ${x.runs} | ${x.passed} |`),
  '',
  ...(failed.length || skipped.length ? ['### Not passing', '', ...[...failed, ...skipped].map((t) => `- ${t.status}: ${cell(t.title)} (${t.file})`), ''] : []),
  END,
];

const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : `# Reliability\n\n${BEGIN}\n${END}\n`;
const from = doc.indexOf(BEGIN);
const to = doc.indexOf(END);
if (from < 0 || to < from) {
  console.error(`faults-report: ${DOC} has no ${BEGIN} … ${END} section`);
  process.exit(1);
}
writeFileSync(DOC, doc.slice(0, from) + lines.join('\n') + doc.slice(to + END.length));
console.log(`faults-report: ${relative(ROOT, DOC)} updated (${recorded.length} recorded scenarios, ${totalLost} lost, ${failed.length} failed)`);
process.exit(failed.length || totalLost ? 1 : 0);
