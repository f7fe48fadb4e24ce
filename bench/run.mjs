#!/usr/bin/env node
// `npm run bench [-- SUITE…] [--files N] [--runs N] [--node BIN]`: runs the benchmarks on
// Node 24, each measuring bucketsync and its peers in the same run, and prints ratios. Suites:
// local (default), scale, s3, azure, dedup, big (--size MiB[,MiB], --only kill|throughput), hf-big (--size MiB[,MiB]), azure-big (--size MiB[,MiB], --only kill|throughput). `--node BIN` (local): also bucketsync run in that Node;
// `--scan-modes` (local): also with the source scan forced into a worker and into the main thread.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './lib.mjs';
import { primaryNode } from '../scripts/runtime.mjs';

// The benchmarks measure bucketsync on Node 24 (the one `npm ci` installed): re-run there.
const node = primaryNode();
if (node.bin !== process.execPath && node.version !== process.versions.node) {
  const r = spawnSync(node.bin, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const args = process.argv.slice(2);
const nodes = args.flatMap((a, i) => (a === '--node' ? [args[i + 1]] : []));
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(args[i + 1]);
};
const suites = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--')));
const wanted = suites.length ? suites : ['local'];
const available = {
  local: () => import('./local-noop.mjs').then((m) => m.run({ files: opt('files', 100_000), dirs: opt('dirs', 1_000), runs: opt('runs', 5), nodes, scanModes: args.includes('--scan-modes') })),
  scale: () => import('./scale.mjs').then((m) => m.run({ files: opt('files', undefined), dirs: opt('dirs', 1_000), runs: opt('runs', 3) })),
  s3: () => import('./s3.mjs').then((m) => m.run({ files: opt('files', 3_000), dirs: opt('dirs', 120), runs: opt('runs', 3), transfers: opt('transfers', undefined) })),
  azure: () => import('./azure.mjs').then((m) => m.run({ runs: opt('runs', 3), transfers: opt('transfers', 16) })),
  dedup: () => import('./dedup.mjs').then((m) => m.run()),
  // --size 256 or --size 1024,4096 (MiB; default 1 GiB and 4 GiB)
  big: () => {
    const i = args.indexOf('--size');
    const sizes = i === -1 ? [1024, 4096] : String(args[i + 1]).split(',').map(Number);
    const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined; // kill | throughput
    return import('./big.mjs').then((m) => m.run({ sizes, runs: opt('runs', 3), only }));
  },
  'azure-big': () =>
    import('./azure-big.mjs').then((m) =>
      m.run({ sizes: args.includes('--size') ? String(args[args.indexOf('--size') + 1]).split(',').map(Number) : [256, 1024], runs: opt('runs', 3), only: args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined }),
    ),
  'hf-big': () => import('./hf-big.mjs').then((m) => m.run({ sizes: args.includes('--size') ? String(args[args.indexOf('--size') + 1]).split(',').map(Number) : [256, 1024], runs: opt('runs', 3), kill: !args.includes('--no-kill') })),
};
if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
  console.error('bucketsync is not built: run `npm ci` or `npm run build` first');
  process.exit(2);
}
const results = [];
for (const s of wanted) {
  if (!available[s]) {
    console.error(`unknown benchmark '${s}'; available: ${Object.keys(available).join(', ')}`);
    process.exit(2);
  }
  results.push(await available[s]());
}
fs.mkdirSync(path.join(ROOT, '.tmp'), { recursive: true });
fs.writeFileSync(path.join(ROOT, '.tmp', 'bench-results.json'), JSON.stringify(results, null, 2));
