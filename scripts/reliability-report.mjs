#!/usr/bin/env node
// Regenerates the tables of docs/reliability.md: builds the CLI, runs the fault-injection,
// crash and property suites with BUCKETSYNC_RELIABILITY_TALLY pointing at a scratch file (each
// test appends one JSON line per fault or bad input it tried: runs, faults injected, failed
// runs, data lost), then renders the tallies and the test results between the markers in the
// doc. Exit code 1 when a test failed or any data was lost.
//
//   node scripts/reliability-report.mjs                 run the suites, rewrite the doc
//   node scripts/reliability-report.mjs --runs 10       10 seeded runs per fault kind and direction (default 5)
//   node scripts/reliability-report.mjs --from FILE     render an existing tally file (no tests run)
//   node scripts/reliability-report.mjs --check         run, print the table, leave the doc alone
//
// S3 suites need an S3 server: the vitest globalSetup starts Ceph RGW when `radosgw` is
// installed, or set BUCKETSYNC_TEST_S3_ENDPOINT (see docs/reliability.md).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const doc = path.join(root, 'docs', 'reliability.md');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const SUITES = ['test/e2e/faults-', 'test/e2e/crash-', 'test/unit/properties-'];
const START = '<!-- reliability-table:start -->';
const END = '<!-- reliability-table:end -->';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : (args[i + 1] ?? '');
};
const from = opt('--from');
// 5 seeded rounds per fault kind and direction: 10 per kind (the test suite alone runs 3).
const runsPerKind = opt('--runs') ?? process.env.BUCKETSYNC_FAULT_RUNS ?? '5';
const check = args.includes('--check');

const tmp = path.join(root, '.tmp');
mkdirSync(tmp, { recursive: true });
const tallyFile = from ? path.resolve(from) : path.join(tmp, 'reliability-tally.jsonl');
const reportFile = path.join(tmp, 'reliability-vitest.json');
let vitest;
let status = 0;

if (!from) {
  process.stderr.write('Building (tsc)…\n');
  if (spawnSync(bin('tsc'), ['-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' }).status !== 0) {
    process.stderr.write('Build failed.\n');
    process.exit(1);
  }
  rmSync(tallyFile, { force: true });
  rmSync(reportFile, { force: true });
  const env = { ...process.env, BUCKETSYNC_RELIABILITY_TALLY: tallyFile };
  if (runsPerKind) env.BUCKETSYNC_FAULT_RUNS = runsPerKind;
  const started = Date.now();
  status =
    spawnSync(bin('vitest'), ['run', ...SUITES, '--reporter=default', '--reporter=json', `--outputFile.json=${reportFile}`], {
      cwd: root,
      env,
      stdio: 'inherit',
    }).status ?? 1;
  process.stderr.write(`Suites ran in ${((Date.now() - started) / 1000).toFixed(0)} s.\n`);
  try {
    vitest = JSON.parse(readFileSync(reportFile, 'utf8'));
  } catch {
    process.stderr.write('vitest wrote no JSON report.\n');
  }
} else if (existsSync(reportFile)) {
  // the test results of the run that wrote the tallies, when it was this script's last run
  vitest = JSON.parse(readFileSync(reportFile, 'utf8'));
}

// ---------------------------------------------------------------------------------------------
// Tallies

const tallies = existsSync(tallyFile)
  ? readFileSync(tallyFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
  : [];

/** One row per (suite, scenario, where), summed over repeated tallies. */
const rows = new Map();
for (const t of tallies) {
  const key = `${t.suite}\u0000${t.scenario}\u0000${t.where}`;
  const r = rows.get(key) ?? { ...t, runs: 0, injected: 0, failedRuns: 0, dataLost: 0, notes: new Set() };
  r.runs += t.runs ?? 0;
  r.injected += t.injected ?? 0;
  r.failedRuns += t.failedRuns ?? 0;
  r.dataLost += t.dataLost ?? 0;
  if (t.note) r.notes.add(t.note);
  rows.set(key, r);
}

const SUITE_TITLES = {
  faults: 'Fault injection (proxy in front of RGW)',
  crash: 'Crashes (kill -9)',
  'hostile-names': 'Hostile remote names',
  properties: 'Property-based (fast-check)',
};
const esc = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
const lines = [];
const totalLost = [...rows.values()].reduce((n, r) => n + r.dataLost, 0);
for (const suite of Object.keys(SUITE_TITLES)) {
  // grouped by where they ran (stable: the tests' own order within a group)
  const mine = [...rows.values()].filter((r) => r.suite === suite).sort((a, b) => a.where.localeCompare(b.where));
  if (mine.length === 0) continue;
  lines.push(`### ${SUITE_TITLES[suite]}`, '');
  lines.push('| fault / bad input | where | runs | injected | runs that reported failures | data lost | notes |', '| --- | --- | ---: | ---: | ---: | ---: | --- |');
  for (const r of mine) {
    lines.push(
      `| ${esc(r.scenario)} | ${esc(r.where)} | ${r.runs} | ${r.injected} | ${r.failedRuns} | **${r.dataLost}** | ${esc([...r.notes].join('; '))} |`,
    );
  }
  lines.push('');
}
if (rows.size === 0) lines.push('_No tallies were written (no suite ran, or the S3 suites were skipped)._', '');

// ---------------------------------------------------------------------------------------------
// Test results (from vitest's JSON report): every test of the suites, also those without tallies

let failedTests = 0;
if (vitest) {
  lines.push('### Test results', '', '| file | test | result | time |', '| --- | --- | --- | ---: |');
  for (const f of vitest.testResults ?? []) {
    const file = path.relative(root, f.name);
    for (const a of f.assertionResults ?? []) {
      if (a.status === 'failed') failedTests++;
      const secs = a.duration ? `${(a.duration / 1000).toFixed(1)} s` : '';
      lines.push(`| ${esc(file)} | ${esc(a.title)} | ${a.status} | ${secs} |`);
    }
  }
  lines.push('');
  lines.push(`${vitest.numPassedTests ?? 0} passed, ${vitest.numFailedTests ?? 0} failed, ${(vitest.numPendingTests ?? 0) + (vitest.numTodoTests ?? 0)} skipped.`, '');
}

let commit = '';
const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' });
if (rev.status === 0) commit = rev.stdout.trim();
const stamp = [
  `Generated by \`node scripts/reliability-report.mjs${from ? ` --from ${path.basename(from)}` : ` --runs ${runsPerKind}`}\``,
  `on ${new Date().toISOString().slice(0, 10)}`,
  commit ? `at commit ${commit} (plus the working tree)` : '',
  `— data lost in total: **${totalLost}**.`,
]
  .filter(Boolean)
  .join(' ');
const table = [START, '', stamp, '', ...lines, END].join('\n');

if (check || from === '-') {
  process.stdout.write(`${table}\n`);
} else {
  const text = existsSync(doc) ? readFileSync(doc, 'utf8') : `# Reliability\n\n${START}\n${END}\n`;
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a === -1 || b === -1 || b < a) {
    process.stderr.write(`${doc} has no ${START} … ${END} section; not touched. The table:\n${table}\n`);
    process.exit(1);
  }
  writeFileSync(doc, text.slice(0, a) + table + text.slice(b + END.length));
  process.stderr.write(`Updated ${path.relative(root, doc)} (${rows.size} rows, data lost: ${totalLost}).\n`);
}

if (status !== 0 || failedTests > 0 || totalLost > 0) process.exit(1);
