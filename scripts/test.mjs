#!/usr/bin/env node
// `npm test`: compile (the end-to-end tests run the real CLI from dist/), then run every
// vitest suite once, then print one closing line "tests: N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status ?? 1;

process.stderr.write('Building (tsc)…\n');
if (run(bin('tsc'), ['-p', 'tsconfig.build.json']) !== 0) {
  process.stderr.write('Build failed: fix the type errors above.\n');
  process.exit(1);
}
mkdirSync(path.join(root, '.tmp'), { recursive: true });
const report = path.join(root, '.tmp', 'vitest-report.json');
rmSync(report, { force: true });
const status = run(bin('vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)]);
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  process.stdout.write(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped\n`);
} catch {
  process.stdout.write('tests: no report was written (see the output above)\n');
}
process.exit(status);
