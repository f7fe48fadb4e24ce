// Issue #7 benchmark: no-op local→local syncs of big seeded trees (100,000 and 1,000,000
// files in 1,000 directories by default; `--dirs 1` puts every file in one flat directory),
// bucketsync against `rsync -a --delete` and `rclone sync`, measured in the same run,
// interleaved. Prints medians, peak RSS (GNU time) and ratios. Targets: no-op time at or
// below rclone's and within 1.5x of rsync's; peak RSS per file at most a third of rclone's.
//
// `node bench/scale.mjs --stages [--files N] [--dirs D]` measures bucketsync alone, stage by
// stage (scan, scan in the worker, --dry-run > /dev/null, --plan, no-op sync): the peak RSS
// figures of docs/scale.md. Trees are generated once under BENCH_DIR (or the system temp
// directory) and reused while their spec matches.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BIN, ROOT, fmt, have, machine, median, rng, scratch } from './lib.mjs';

const GNU_TIME = ['/usr/bin/time', '/bin/time'].find((p) => fs.existsSync(p));

/**
 * Runs a command once under GNU time with stdout sent to /dev/null (a --dry-run of a million
 * files prints hundreds of megabytes); returns wall seconds and peak RSS in MB.
 */
function measure(cmd, args, { env } = {}) {
  if (!GNU_TIME) throw new Error('GNU time is needed for peak RSS: apt-get install time');
  const devnull = fs.openSync('/dev/null', 'w');
  try {
    const r = spawnSync(GNU_TIME, ['-f', '%e %M', cmd, ...args], {
      stdio: ['ignore', devnull, 'pipe'],
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, ...env },
    });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr ?? '').slice(-2000)}`);
    const last = r.stderr.trim().split('\n').pop();
    const [secs, kb] = last.split(' ').map(Number);
    return { secs, rssMb: kb / 1024 };
  } finally {
    fs.closeSync(devnull);
  }
}

/** Spec of a generated tree, stored next to it (never inside: syncs would copy it). */
function specOf(files, dirs, maxSize, seed) {
  return JSON.stringify({ v: 1, files, dirs, maxSize, seed });
}

/**
 * `files` files of seeded sizes 0..maxSize in `dirs` directories (`dirs` = 1: all in the
 * root, one flat directory). No per-file utimes: every tool copies mtimes, so the copies
 * match whatever the generation time was. Reused while the spec file matches.
 */
export function generateScaleTree(root, { files, dirs, maxSize = 4096, seed = 7 }) {
  const marker = `${root}.spec.json`;
  const spec = specOf(files, dirs, maxSize, seed);
  if (fs.existsSync(root) && fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === spec) return false;
  fs.rmSync(marker, { force: true });
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  const rand = rng(seed);
  const pool = Buffer.alloc(maxSize);
  for (let i = 0; i < pool.length; i++) pool[i] = Math.floor(rand() * 256);
  const flat = dirs <= 1;
  const perDir = Math.ceil(files / Math.max(1, dirs));
  const width = String(Math.max(perDir, files) - 1).length;
  const started = Date.now();
  let dir = root;
  for (let i = 0; i < files; i++) {
    if (!flat && i % perDir === 0) {
      dir = path.join(root, `dir${String(i / perDir).padStart(4, '0')}`);
      fs.mkdirSync(dir);
    }
    const n = flat ? i : i % perDir;
    const size = Math.floor(rand() * (maxSize + 1));
    const fd = fs.openSync(path.join(dir, `file${String(n).padStart(width, '0')}.bin`), 'w');
    if (size > 0) fs.writeSync(fd, pool, 0, size);
    fs.closeSync(fd);
    if ((i + 1) % 50_000 === 0 || i + 1 === files) {
      const secs = (Date.now() - started) / 1000;
      process.stderr.write(`  generated ${i + 1}/${files} files (${fmt(secs, 0)} s, ${fmt((i + 1) / secs, 0)} files/s)\n`);
    }
  }
  fs.writeFileSync(marker, spec);
  return true;
}

/** A copy of `src` (with its mtimes) at `dst`, made with `cp -a` unless it is there already. */
function copyTree(src, dst) {
  const marker = `${dst}.spec.json`;
  const spec = fs.readFileSync(`${src}.spec.json`, 'utf8');
  if (fs.existsSync(dst) && fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === spec) return;
  fs.rmSync(marker, { force: true });
  fs.rmSync(dst, { recursive: true, force: true });
  process.stderr.write(`  copying to ${dst} (cp -a)…\n`);
  const r = spawnSync('cp', ['-a', src, dst], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`cp -a ${src} ${dst} failed`);
  fs.writeFileSync(marker, spec);
}

function layoutName(dirs) {
  return dirs <= 1 ? 'flat' : `${dirs}-dirs`;
}

function prepare(files, dirs) {
  const base = scratch(`scale-${dirs <= 1 ? 'flat' : `d${dirs}`}-${files}`);
  const src = path.join(base, 'src');
  process.stderr.write(`tree: ${files} files, ${layoutName(dirs)}, in ${src}\n`);
  if (generateScaleTree(src, { files, dirs })) spawnSync('sync');
  return { base, src };
}

const tools = {
  bucketsync: (src, dst) => [process.execPath, [BIN, 'sync', src, dst, '--delete', '-q']],
  rsync: (src, dst) => ['rsync', ['-a', '--delete', `${src}/`, `${dst}/`]],
  rclone: (src, dst) => ['rclone', ['sync', src, dst, '-q', '--config', path.join(ROOT, '.tmp', 'rclone-bench.conf')]],
};

/** One size: no-op runs of the three tools, interleaved. */
function benchOne(files, dirs, runs) {
  const { base, src } = prepare(files, dirs);
  fs.mkdirSync(path.join(ROOT, '.tmp'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, '.tmp', 'rclone-bench.conf'), '');
  const results = {};
  for (const [name, argv] of Object.entries(tools)) {
    const dst = path.join(base, `dst-${name}`);
    copyTree(src, dst);
    // One untimed run each: it must find nothing to do, and it warms the caches evenly.
    const [cmd, args] = argv(src, dst);
    measure(cmd, args);
    results[name] = [];
  }
  for (let i = 0; i < runs; i++) {
    for (const [name, argv] of Object.entries(tools)) {
      const [cmd, args] = argv(src, path.join(base, `dst-${name}`));
      results[name].push(measure(cmd, args));
    }
    process.stderr.write(`  run ${i + 1}/${runs} done\n`);
  }
  const summary = {};
  for (const [name, rs] of Object.entries(results)) {
    summary[name] = {
      medianSecs: median(rs.map((x) => x.secs)),
      peakRssMb: Math.max(...rs.map((x) => x.rssMb)),
      all: rs.map((x) => x.secs),
    };
  }
  return summary;
}

function printOne(files, dirs, runs, s, machineLine) {
  const b = s.bucketsync;
  const r = s.rsync;
  const c = s.rclone;
  const perFile = (x) => (x.peakRssMb * 1024 * 1024) / files;
  console.log(`\n## no-op local→local, ${files} files, ${layoutName(dirs)} (${runs} interleaved runs each)  [${machineLine}]`);
  console.log('| tool | median time | peak RSS | RSS per file |');
  console.log('| --- | --- | --- | --- |');
  console.log(`| bucketsync sync --delete | ${fmt(b.medianSecs)} s | ${fmt(b.peakRssMb, 0)} MB | ${fmt(perFile(b), 0)} B |`);
  console.log(`| rsync -a --delete | ${fmt(r.medianSecs)} s | ${fmt(r.peakRssMb, 0)} MB | ${fmt(perFile(r), 0)} B |`);
  console.log(`| rclone sync | ${fmt(c.medianSecs)} s | ${fmt(c.peakRssMb, 0)} MB | ${fmt(perFile(c), 0)} B |`);
  const vsRclone = b.medianSecs / c.medianSecs;
  const vsRsync = b.medianSecs / r.medianSecs;
  const rss = perFile(b) / perFile(c);
  console.log(`ratio time bucketsync/rclone = ${fmt(vsRclone)}x (target ≤ 1.0x) ${vsRclone <= 1 ? 'MET' : 'NOT MET'}`);
  console.log(`ratio time bucketsync/rsync = ${fmt(vsRsync)}x (target ≤ 1.5x) ${vsRsync <= 1.5 ? 'MET' : 'NOT MET'}`);
  console.log(`ratio RSS per file bucketsync/rclone = ${fmt(rss)} (target ≤ 0.33) ${rss <= 1 / 3 ? 'MET' : 'NOT MET'}`);
}

export async function run({ files, dirs = 1_000, runs = 3 } = {}) {
  if (!have('rsync')) throw new Error('rsync is not installed (apt-get install rsync)');
  if (!have('rclone')) throw new Error('rclone is not installed (apt-get install rclone)');
  const sizes = files ? [files] : [100_000, 1_000_000];
  const out = [];
  for (const n of sizes) {
    const s = benchOne(n, dirs, runs);
    const m = machine();
    printOne(n, dirs, runs, s, m);
    out.push({ bench: 'scale no-op', files: n, dirs, runs, machine: m, ...s });
  }
  if (out.length > 1) {
    // The memory each tool adds per extra file, between the smallest and the largest tree.
    const [lo, hi] = [out[0], out[out.length - 1]];
    const marginal = (name) => ((hi[name].peakRssMb - lo[name].peakRssMb) * 1024 * 1024) / (hi.files - lo.files);
    console.log(
      `marginal RSS per extra file (${lo.files}→${hi.files}): bucketsync ${fmt(marginal('bucketsync'), 1)} B, rsync ${fmt(marginal('rsync'), 1)} B, rclone ${fmt(marginal('rclone'), 1)} B`,
    );
  }
  return out;
}

/**
 * Scanning alone, through the compiled scanner (no CLI). A script file rather than `-e`:
 * worker threads inherit the parent's flags, and `--input-type` is refused there.
 */
const SCAN_SCRIPT = `
const [root, mode] = process.argv.slice(-2);
const m = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist', 'scanner', 'scan.js')).href)});
const w = await import(${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist', 'scanner', 'worker-scan.js')).href)});
let n = 0;
const it = mode === 'worker' ? w.scanLocalInWorker(root, { withIdentity: true }) : m.scanLocal(root, { withIdentity: true });
for await (const b of it) n += b.length;
process.stderr.write('scanned ' + n + '\\n');
`;

/** Peak RSS of bucketsync stage by stage on one tree (a no-op: the destination matches). */
export async function stages({ files = 1_000_000, dirs = 1_000 } = {}) {
  const { base, src } = prepare(files, dirs);
  const dst = path.join(base, 'dst-bucketsync');
  copyTree(src, dst);
  const plan = path.join(base, 'plan.jsonl');
  const script = path.join(base, 'scan.mjs');
  fs.writeFileSync(script, SCAN_SCRIPT);
  const node = process.execPath;
  const steps = [
    ['scan (main thread)', [node, [script, src, 'main']]],
    ['scan (worker thread)', [node, [script, src, 'worker']]],
    ['sync --dry-run > /dev/null', [node, [BIN, 'sync', src, dst, '--delete', '--dry-run']]],
    ['sync --plan FILE', [node, [BIN, 'sync', src, dst, '--delete', '--plan', plan, '-q']]],
    ['sync (no-op)', [node, [BIN, 'sync', src, dst, '--delete', '-q']]],
  ];
  const rows = [];
  for (const [label, [cmd, args]] of steps) {
    const r = measure(cmd, args);
    rows.push({ label, ...r });
    process.stderr.write(`  ${label}: ${fmt(r.secs)} s, ${fmt(r.rssMb, 0)} MB\n`);
  }
  fs.rmSync(plan, { force: true });
  fs.rmSync(script, { force: true });
  console.log(`\n## bucketsync peak RSS by stage, ${files} files, ${layoutName(dirs)}  [${machine()}]`);
  console.log('| stage | time | peak RSS | target < 400 MB |');
  console.log('| --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.label} | ${fmt(r.secs)} s | ${fmt(r.rssMb, 0)} MB | ${r.rssMb < 400 ? 'MET' : 'NOT MET'} |`);
  return { bench: 'scale stages', files, dirs, machine: machine(), stages: rows };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(`--${name}`);
    return i === -1 ? dflt : Number(args[i + 1]);
  };
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) {
    console.error('bucketsync is not built: run `npm ci` or `npm run build` first');
    process.exit(2);
  }
  if (args.includes('--stages')) await stages({ files: opt('files', 1_000_000), dirs: opt('dirs', 1_000) });
  else await run({ files: opt('files', undefined), dirs: opt('dirs', 1_000), runs: opt('runs', 3) });
}
