// Issue #2 benchmark: a no-op local-to-local sync of a seeded tree (100,000 small files in
// 1,000 directories by default), bucketsync against `rsync -a --delete`, measured in the
// same run, interleaved. Prints medians, peak RSS and ratios. Targets: no-op time within 2x
// of rsync's, peak RSS under 300 MB.
import path from 'node:path';
import { BIN, fmt, generateTree, have, machine, measure, median, scratch, sideBySide } from './lib.mjs';

export async function run({ files = 100_000, dirs = 1_000, runs = 5 } = {}) {
  if (!have('rsync')) throw new Error('rsync is not installed (apt-get install rsync)');
  const base = scratch(`local-${files}`);
  const tree = path.join(base, 'tree');
  console.error(`generating ${files} files in ${dirs} directories (seeded) in ${tree}…`);
  generateTree(tree, { files, dirs });
  const ours = path.join(base, 'dst-bucketsync');
  const theirs = path.join(base, 'dst-rsync');
  // First copies (not timed as no-ops): both destinations start identical to the source.
  measure(process.execPath, [BIN, 'sync', tree, ours, '--delete', '-q']);
  measure('rsync', ['-a', '--delete', `${tree}/`, `${theirs}/`]);
  const [b, r] = sideBySide(
    runs,
    () => measure(process.execPath, [BIN, 'sync', tree, ours, '--delete', '-q']),
    () => measure('rsync', ['-a', '--delete', `${tree}/`, `${theirs}/`]),
  );
  const bt = median(b.map((x) => x.secs));
  const rt = median(r.map((x) => x.secs));
  const brss = Math.max(...b.map((x) => x.rssMb));
  const rrss = Math.max(...r.map((x) => x.rssMb));
  const result = {
    bench: 'local no-op',
    files,
    runs,
    machine: machine(),
    bucketsync: { medianSecs: bt, peakRssMb: brss, all: b.map((x) => x.secs) },
    rsync: { medianSecs: rt, peakRssMb: rrss, all: r.map((x) => x.secs) },
    timeRatio: bt / rt,
  };
  console.log(`\n## no-op local→local, ${files} files (${runs} interleaved runs each)  [${result.machine}]`);
  console.log(`| tool | median time | peak RSS |`);
  console.log(`| --- | --- | --- |`);
  console.log(`| bucketsync sync --delete | ${fmt(bt)} s | ${fmt(brss, 0)} MB |`);
  console.log(`| rsync -a --delete | ${fmt(rt)} s | ${fmt(rrss, 0)} MB |`);
  console.log(`ratio time bucketsync/rsync = ${fmt(bt / rt)}x (target ≤ 2.0x) ${bt / rt <= 2 ? 'MET' : 'NOT MET'}`);
  console.log(`peak RSS bucketsync = ${fmt(brss, 0)} MB (target < 300 MB) ${brss < 300 ? 'MET' : 'NOT MET'}`);
  return result;
}
