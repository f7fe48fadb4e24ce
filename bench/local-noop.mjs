// Issue #17 benchmark: a no-op local-to-local `sync --delete` of a seeded tree (100,000 small
// files in 1,000 directories by default), bucketsync on Node 24 against `rsync -a --delete`,
// `rclone sync` and the floor (two `find -printf` over both trees in parallel: the same stat
// calls and nothing else), measured in the same run, interleaved. Prints medians of wall time,
// CPU (user + sys, all threads and children) and peak RSS, and the ratios against the targets.
// `--node BIN` (repeatable) also measures bucketsync's CLI run directly in that Node (e.g.
// /usr/bin/node for Node 20, which bin/bucketsync itself would hand over to Node 24).
// `--scan-modes` also measures bucketsync with its source scan forced into a worker thread
// and forced into the main thread (BUCKETSYNC_SCAN_WORKER=1 / 0; by default it takes a
// worker only when a core is free). The load average is printed before and after.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BIN, ROOT, fmt, generateTree, have, machine, median, scratch } from './lib.mjs';

const GNU_TIME = ['/usr/bin/time', '/bin/time'].find((p) => fs.existsSync(p));

/** One run: wall seconds, CPU seconds (user + sys of the command and its children), peak RSS (MB). */
function measure(cmd, args, env) {
  if (!GNU_TIME) throw new Error('GNU time is needed for peak RSS: apt-get install time');
  const r = spawnSync(GNU_TIME, ['-f', '%e %U %S %M', cmd, ...args], { encoding: 'utf8', ...(env ? { env: { ...process.env, ...env } } : {}) });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const [secs, user, sys, kb] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { secs, cpu: user + sys, rssMb: kb / 1024 };
}

const nodeVersion = (bin) => spawnSync(bin, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();

/** The CLI run in `node` itself (no hand-over by bin/bucketsync), for comparing Node versions. */
function direct(node, args, dir) {
  const main = pathToFileURL(path.join(ROOT, 'dist', 'cli', 'main.js')).href;
  const entry = path.join(dir, 'direct-cli.mjs');
  fs.writeFileSync(entry, `const { main } = await import(${JSON.stringify(main)});\nprocess.exitCode = await main(process.argv);\n`);
  return [node, [entry, ...args]];
}

export async function run({ files = 100_000, dirs = 1_000, runs = 5, nodes = [], scanModes = false } = {}) {
  if (!have('rsync')) throw new Error('rsync is not installed (apt-get install rsync)');
  const base = scratch(`local-${files}`);
  const tree = path.join(base, 'tree');
  console.error(`generating ${files} files in ${dirs} directories (seeded) in ${tree}…`);
  generateTree(tree, { files, dirs });
  const dst = (name) => path.join(base, `dst-${name}`);
  const ours = [BIN, 'sync', tree, dst('bucketsync'), '--delete', '-q'];
  const tools = [[`bucketsync (Node ${process.versions.node})`, process.execPath, ours]];
  if (scanModes) {
    tools.push(['bucketsync, source scan in a worker', process.execPath, ours, { BUCKETSYNC_SCAN_WORKER: '1' }]);
    tools.push(['bucketsync, source scan in the main thread', process.execPath, ours, { BUCKETSYNC_SCAN_WORKER: '0' }]);
  }
  for (const n of nodes) {
    const [cmd, args] = direct(n, ['sync', tree, dst('bucketsync'), '--delete', '-q'], base);
    tools.push([`bucketsync (Node ${nodeVersion(n)})`, cmd, args]);
  }
  tools.push(['rsync -a --delete', 'rsync', ['-a', '--delete', `${tree}/`, `${dst('rsync')}/`]]);
  if (have('rclone')) tools.push(['rclone sync', 'rclone', ['sync', tree, dst('rclone'), '--config', '/dev/null', '-q']]);
  else console.error('rclone is not installed: measured without it');
  const floor = `find "$1" -printf '%s %T@ %p\\n' >/dev/null & find "$2" -printf '%s %T@ %p\\n' >/dev/null & wait`;
  tools.push(['floor: 2 × find -printf in parallel', 'sh', ['-c', floor, 'floor', tree, dst('rsync')]]);
  // First copies (not timed as no-ops): every destination starts identical to the source.
  for (const [, cmd, args, env] of tools.slice(0, -1)) measure(cmd, args, env);
  const loadBefore = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const results = tools.map(() => []);
  for (let i = 0; i < runs; i++) tools.forEach(([, cmd, args, env], t) => results[t].push(measure(cmd, args, env)));
  const loadAfter = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const rows = tools.map(([name], t) => ({
    name,
    medianSecs: median(results[t].map((x) => x.secs)),
    medianCpu: median(results[t].map((x) => x.cpu)),
    peakRssMb: Math.max(...results[t].map((x) => x.rssMb)),
    all: results[t],
  }));
  const ourRow = rows[0];
  const rsync = rows.find((r) => r.name.startsWith('rsync'));
  const floorRow = rows.at(-1);
  const result = { bench: 'local no-op', files, dirs, runs, machine: machine(), loadBefore, loadAfter, rows, timeRatioRsync: ourRow.medianSecs / rsync.medianSecs, timeRatioFloor: ourRow.medianSecs / floorRow.medianSecs };
  console.log(`\n## no-op local→local, ${files} files in ${dirs} dirs (${runs} interleaved runs each, medians)  [${result.machine}]`);
  console.log(`load average (1, 5, 15 min) before the timed runs: ${loadBefore}; after: ${loadAfter}`);
  console.log('| tool | wall | CPU (user+sys) | peak RSS |');
  console.log('| --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.name} | ${fmt(r.medianSecs)} s | ${fmt(r.medianCpu)} s | ${r.name.startsWith('floor') ? '–' : `${fmt(r.peakRssMb, 0)} MB`} |`);
  const big = files >= 1_000_000;
  const [rsyncTarget, rssTarget] = big ? [0.7, 200] : [0.8, 120];
  const verdict = (ok) => (ok ? 'MET' : 'NOT MET');
  console.log(`bucketsync ÷ rsync wall = ${fmt(result.timeRatioRsync)}× (target ≤ ${rsyncTarget}×) ${verdict(result.timeRatioRsync <= rsyncTarget)}`);
  if (!big) console.log(`bucketsync ÷ floor wall = ${fmt(result.timeRatioFloor)}× (target ≤ 2.5×) ${verdict(result.timeRatioFloor <= 2.5)}`);
  console.log(`bucketsync ÷ rsync CPU = ${fmt(ourRow.medianCpu / rsync.medianCpu)}×; ÷ floor CPU = ${fmt(ourRow.medianCpu / floorRow.medianCpu)}×`);
  console.log(`peak RSS bucketsync = ${fmt(ourRow.peakRssMb, 0)} MB (target ≤ ${rssTarget} MB) ${verdict(ourRow.peakRssMb <= rssTarget)}`);
  for (const r of rows.slice(1, -1).filter((x) => x.name.startsWith('bucketsync'))) {
    console.log(`${r.name}: ÷ rsync wall ${fmt(r.medianSecs / rsync.medianSecs)}×, CPU ${fmt(r.medianCpu / rsync.medianCpu)}×; ${ourRow.name} ÷ it: wall ${fmt(ourRow.medianSecs / r.medianSecs)}×, CPU ${fmt(ourRow.medianCpu / r.medianCpu)}×`);
  }
  return result;
}
