#!/usr/bin/env node
// `npm test`: compile (the end-to-end tests run the real CLI from dist/), then run every vitest
// suite once on Node 24 (the one `npm ci` installed; see scripts/runtime.mjs), and with CI=true
// (or --all-nodes) once more on Node 22. Each run prints "tests on Node X: …"; the last line is
// always the total, "tests: N passed, N failed, N skipped". `--node=22` runs on Node 22 only.
// The tests spawn the CLI with process.execPath, so the CLI runs on the same Node as the tests.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { node22, primaryNode, ROOT } from './runtime.mjs';

const args = process.argv.slice(2).filter((a) => a !== '--all-nodes' && !a.startsWith('--node='));
const ci = ['true', '1'].includes((process.env.CI ?? '').toLowerCase());
const allNodes = ci || process.argv.includes('--all-nodes');
const only22 = process.argv.includes('--node=22');
const mod = (...p) => path.join(ROOT, 'node_modules', ...p);
const run = (cmd, argv) => spawnSync(cmd, argv, { cwd: ROOT, stdio: 'inherit' }).status ?? 1;

let nodes;
try {
  nodes = only22 ? [node22()] : [primaryNode()];
  if (allNodes && !only22) nodes.push(node22());
} catch (err) {
  process.stderr.write(`Error: ${err.message}\n`);
  process.stdout.write('tests: no report was written (see the output above)\n');
  process.exit(2);
}

process.stderr.write(`Building (tsc, Node ${nodes[0].version})…\n`);
if (run(nodes[0].bin, [mod('typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json']) !== 0) {
  process.stderr.write('Build failed: fix the type errors above.\n');
  process.exit(1);
}
mkdirSync(path.join(ROOT, '.tmp'), { recursive: true });

const total = { passed: 0, failed: 0, skipped: 0 };
let status = 0;
const lines = [];
for (const node of nodes) {
  const label = `Node ${node.version}`;
  if (nodes.length > 1) process.stderr.write(`\n=== Test suite on ${label} (${node.bin})\n`);
  const report = path.join(ROOT, '.tmp', `vitest-report-node${node.version.split('.')[0]}.json`);
  rmSync(report, { force: true });
  const s = run(node.bin, [mod('vitest', 'vitest.mjs'), 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...args]);
  if (s !== 0) status = s;
  try {
    const r = JSON.parse(readFileSync(report, 'utf8'));
    const counts = { passed: r.numPassedTests ?? 0, failed: r.numFailedTests ?? 0, skipped: (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0) };
    for (const k of Object.keys(total)) total[k] += counts[k];
    lines.push(`tests on ${label}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped${s === 0 ? '' : ` (vitest exit ${s})`}`);
  } catch {
    lines.push(`tests on ${label}: no report was written (see the output above)`);
    if (status === 0) status = 1;
    total.failed += 1;
  }
}
if (nodes.length > 1) for (const l of lines) process.stdout.write(`${l}\n`);
process.stdout.write(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`);
process.exit(status);
