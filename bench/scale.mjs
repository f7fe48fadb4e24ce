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
//
// `node bench/scale.mjs --rgw-listing [--files N] [--dirs D] [--runs R] [--transfers T] [--cold]`
// measures plans against a real S3 listing of the same tree (issue #7: a plan against an RGW
// listing of the 1,000,000-file tree under 400 MB), see rgwListing() below. Not part of
// `npm test` nor of `npm run bench`: populating a million objects takes about an hour.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BIN, ROOT, fmt, have, machine, median, rgwStart, rgwStopper, rng, scratch } from './lib.mjs';
import { peerEnvs } from './s3.mjs';

const GNU_TIME = ['/usr/bin/time', '/bin/time'].find((p) => fs.existsSync(p));

/**
 * Runs a command once under GNU time with stdout sent to /dev/null (a --dry-run of a million
 * files prints hundreds of megabytes) or to the file `stdout`; returns wall seconds, peak RSS in
 * MB and the command's stderr (without GNU time's line).
 */
function measure(cmd, args, { env, stdout } = {}) {
  if (!GNU_TIME) throw new Error('GNU time is needed for peak RSS: apt-get install time');
  const out = fs.openSync(stdout ?? '/dev/null', 'w');
  try {
    const r = spawnSync(GNU_TIME, ['-f', '%e %M', cmd, ...args], {
      stdio: ['ignore', out, 'pipe'],
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, ...env },
    });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr ?? '').slice(-2000)}`);
    const lines = r.stderr.trim().split('\n');
    const [secs, kb] = lines.pop().split(' ').map(Number);
    return { secs, rssMb: kb / 1024, stderr: lines.join('\n') };
  } finally {
    fs.closeSync(out);
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
    const { secs, rssMb } = measure(cmd, args);
    const r = { secs, rssMb };
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

// ------------------------------------------------------------------------------------------------
// --rgw-listing: plans against a real S3 listing (Ceph RGW) of the same tree


function load1() {
  return Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** Counts the lines of a file without holding it (a million-key listing is ~27 MB). */
function countLines(file) {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 20);
  let n = 0;
  try {
    for (let got; (got = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) {
      for (let i = buf.indexOf(10); i !== -1 && i < got; i = buf.indexOf(10, i + 1)) n++;
    }
  } finally {
    fs.closeSync(fd);
  }
  return n;
}

/** The first line of a file (a plan's header), read without loading the file. */
function firstLine(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const got = fs.readSync(fd, buf, 0, buf.length, 0);
    const s = buf.subarray(0, got).toString('utf8');
    return s.slice(0, s.indexOf('\n') === -1 ? s.length : s.indexOf('\n'));
  } finally {
    fs.closeSync(fd);
  }
}

/** "Uploads: 0, Skips: 1000000" from the plan summary a sync prints on stderr. */
function planSummary(stderr) {
  const pick = (k) => new RegExp(`^\\s*${k}:\\s*([\\d,]+)`, 'm').exec(stderr)?.[1];
  const parts = ['Uploads', 'Downloads', 'Deletes', 'Skips'].map((k) => [k, pick(k)]).filter(([, v]) => v !== undefined);
  const moved = /^\s*Transferred:\s*([\d,]+) file/m.exec(stderr)?.[1];
  if (moved !== undefined) parts.push(['Transferred', moved]);
  return parts.map(([k, v]) => `${k.toLowerCase()} ${v}`).join(', ');
}

/**
 * A bluestore RGW (scripts/rgw.sh, RGW_OBJECTSTORE=bluestore) in `dir`: started, or restarted
 * with the data of an earlier run. Returns { endpoint, stop(), pids() }; stop() is a no-op when
 * the cluster was already running before (someone else's) or with `keep`.
 */
function startBluestoreRgw(dir, { keep }) {
  if (dir.length > 70) throw new Error(`RGW dir path too long for ceph admin sockets (> 70 chars): ${dir}; set BENCH_RGW_DIR`);
  const env = {
    ...process.env,
    RGW_OBJECTSTORE: 'bluestore',
    RGW_PORT: process.env.BENCH_RGW_PORT ?? '7495',
    RGW_MON_PORT: process.env.BENCH_RGW_MON_PORT ?? '3395',
    RGW_START_TIMEOUT: process.env.RGW_START_TIMEOUT ?? '300',
    // the watchdog stops the cluster (its data stays in DIR) if this process dies without cleaning up
    ...(keep ? {} : { RGW_WATCH_PID: String(process.pid) }),
  };
  const started = rgwStart(dir, env, 1_800_000);
  if (!started.endpoint) throw new Error(`could not start RGW (scripts/rgw.sh start ${dir}):\n${started.error.slice(-3000)}`);
  const ours = !/already running/.test(started.stderr);
  return {
    endpoint: started.endpoint,
    stop: rgwStopper(dir, 300_000, !ours || keep),
    /** RSS of ceph-osd and radosgw now (MB), from their pid files. */
    rss() {
      const out = {};
      for (const name of fs.readdirSync(path.join(dir, 'run')).filter((f) => f.endsWith('.pid'))) {
        try {
          const pid = fs.readFileSync(path.join(dir, 'run', name), 'utf8').trim();
          const kb = /VmRSS:\s*(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
          if (kb) out[name.replace(/\.pid$/, '')] = Number(kb) / 1024;
        } catch {}
      }
      return out;
    },
  };
}

/**
 * Plans against an S3 listing of the seeded tree (`files` files in `dirs` directories, the tree
 * of `--stages`), on a real Ceph RGW. The server: $BENCH_S3_ENDPOINT (credentials test/testtest,
 * as scripts/rgw.sh makes them), else a file-backed bluestore cluster started with scripts/rgw.sh
 * in $BENCH_RGW_DIR (default $BENCH_DIR/rgw-bluestore; ports $BENCH_RGW_PORT / $BENCH_RGW_MON_PORT,
 * default 7495 / 3395; a sparse 40 GiB block file of which the million objects of 0–4 KiB took
 * 13.9 GB of disk, the OSD 1.5–1.8 GB of RAM) and stopped at the end (BENCH_RGW_KEEP=1: left
 * running); its data stays there, and the next run restarts it, so the hour-long population
 * (1 h 9 min here) is paid once.
 *
 * Steps: count the objects under s3://$BENCH_S3_BUCKET/m (default bucket scale-N) with `rclone
 * size`; unless all are there, populate with `bucketsync sync TREE s3://… --create-bucket
 * --transfers T` under --max-old-space-size=96 (it only sends what is missing; see docs/scale.md
 * on the heap of long uploads), which also fills the metadata cache ($BENCH_S3_CACHE_DIR, default
 * next to the tree; a cache that does not match the bucket costs one HEAD per object, once); a
 * no-op `bucketsync sync` (the first run after an upload settles the cache); count again (must
 * be `files`); then, `runs` rounds: upload plan --dry-run > FILE, upload plan --plan FILE,
 * download plan into an empty directory --dry-run > FILE, `rclone sync --dry-run --size-only`;
 * with `cold`, once more the upload --dry-run with a fresh, empty metadata cache (a HEAD per
 * object). Every command under GNU time; load = 1-minute load average before → after.
 */
export async function rgwListing({ files = 1_000_000, dirs = 1_000, runs = 1, transfers = 32, cold = false } = {}) {
  if (!have('rclone')) throw new Error('rclone is not installed (apt-get install rclone)');
  const { base, src } = prepare(files, dirs);
  const work = path.join(base, 'rgw-listing');
  fs.mkdirSync(work, { recursive: true });
  const cacheDir = process.env.BENCH_S3_CACHE_DIR ?? path.join(work, 'cache');
  const keep = Boolean(process.env.BENCH_RGW_KEEP);
  let rgw;
  let endpoint = process.env.BENCH_S3_ENDPOINT;
  if (!endpoint) {
    const dir = process.env.BENCH_RGW_DIR ?? scratch('rgw-bluestore');
    process.stderr.write(`starting (or restarting) a bluestore RGW in ${dir}…\n`);
    rgw = startBluestoreRgw(dir, { keep });
    endpoint = rgw.endpoint;
  }
  const cleanup = () => rgw?.stop();
  const onSignal = (sig) => {
    process.stderr.write(`\n${sig}: stopping RGW (its data stays)…\n`);
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const bucket = process.env.BENCH_S3_BUCKET ?? `scale-${files}`;
    const url = `s3://${bucket}/m`;
    const { awsEnv, rcloneEnv } = peerEnvs(work, endpoint);
    const ours = (cache) => ({ ...awsEnv, AWS_ENDPOINT_URL: endpoint, BUCKETSYNC_CACHE_DIR: cache });
    const node = process.execPath;
    const rows = [];
    const step = (label, cacheState, cmd, args, opts = {}, describe = (r) => planSummary(r.stderr)) => {
      const before = load1();
      process.stderr.write(`  ${label}…\n`);
      const r = measure(cmd, args, opts);
      const row = { label, cache: cacheState, secs: r.secs, rssMb: r.rssMb, load: [before, load1()], result: describe(r) };
      rows.push(row);
      process.stderr.write(`  ${label}: ${fmt(r.secs)} s, ${fmt(r.rssMb, 0)} MB, load ${fmt(row.load[0])}→${fmt(row.load[1])}, ${row.result}\n`);
      return row;
    };
    // Counted with rclone: `bucketsync ls -R` holds the whole listing (and every mtime) to sort it.
    const sizeOut = path.join(work, 'rclone-size.json');
    const count = (label) =>
      step(label, '—', 'rclone', ['size', `rgw:${bucket}/m`, '--json'], { env: rcloneEnv, stdout: sizeOut }, () => {
        const { count: n, bytes } = JSON.parse(fs.readFileSync(sizeOut, 'utf8'));
        return `${n} objects, ${bytes} bytes`;
      });
    const isMissing = (e) => /not found|does not exist|NoSuchBucket/i.test(String(e?.message));
    let had = 0;
    try {
      had = Number.parseInt(count('rclone size (count before)').result, 10);
    } catch (e) {
      if (!isMissing(e)) throw e;
      process.stderr.write(`  bucket ${bucket} does not exist yet\n`);
    }
    // An upload runs with a 96 MB heap cap (with Node's default limit V8 lets a long upload's
    // garbage pass 400 MB). The no-op after it does not get the cap: the first listing run after
    // an upload re-records every uploaded object (with the listing's LastModified) and needed
    // far more on 1,000,000 objects (docs/scale.md); it runs before the measured plans, so
    // that they all see the same, settled cache.
    if (had !== files) {
      step(
        `sync --transfers ${transfers} (populate: ${files - had} missing), heap 96 MB`,
        had ? 'as left' : 'empty',
        node,
        [BIN, 'sync', src, url, '--create-bucket', '--transfers', String(transfers), '--no-progress'],
        { env: { ...ours(cacheDir), NODE_OPTIONS: '--max-old-space-size=96' } },
      );
    }
    step('sync (no-op)', had !== files ? 'just populated (first run after the upload)' : 'as left by earlier runs', node, [BIN, 'sync', src, url, '--no-progress'], {
      env: ours(cacheDir),
    });
    const after = Number.parseInt(count('rclone size (count)').result, 10);
    if (after !== files) throw new Error(`${url} holds ${after} objects, expected ${files}`);
    fs.rmSync(sizeOut, { force: true });

    // --dry-run's stdout (the plan, ~270 bytes an operation) goes to a file that is read back
    // for the check and deleted; --plan writes the same lines itself.
    const plan = path.join(work, 'plan.jsonl');
    const planResult = () => {
      const { summary } = JSON.parse(firstLine(plan));
      return `${countLines(plan) - 1} operations: uploads ${summary.uploads}, downloads ${summary.downloads}, skips ${summary.skips}`;
    };
    const empty = path.join(work, 'empty');
    fs.rmSync(empty, { recursive: true, force: true });
    fs.mkdirSync(empty);
    const upDry = (cache, label) =>
      step('sync TREE s3://… --dry-run > FILE', label, node, [BIN, 'sync', src, url, '--dry-run'], { env: ours(cache), stdout: plan }, planResult);
    try {
      for (let i = 0; i < runs; i++) {
        upDry(cacheDir, 'warm');
        step('sync TREE s3://… --plan FILE', 'warm', node, [BIN, 'sync', src, url, '--plan', plan], { env: ours(cacheDir) }, planResult);
        step('sync s3://… EMPTY_DIR --dry-run > FILE (download plan)', 'warm', node, [BIN, 'sync', url, empty, '--dry-run'], { env: ours(cacheDir), stdout: plan }, planResult);
        step('rclone sync TREE rgw:… --dry-run --size-only', '—', 'rclone', ['sync', src, `rgw:${bucket}/m`, '--dry-run', '--size-only', '-q'], { env: rcloneEnv }, () => '');
      }
      if (cold) {
        const fresh = fs.mkdtempSync(path.join(work, 'cold-cache-'));
        try {
          upDry(fresh, 'cold (a HEAD per object)');
        } finally {
          fs.rmSync(fresh, { recursive: true, force: true });
        }
      }
    } finally {
      fs.rmSync(plan, { force: true });
    }
    const daemons = rgw?.rss() ?? {};
    const m = machine();
    console.log(`\n## plans against an RGW listing, ${files} objects, ${layoutName(dirs)} (${endpoint})  [${m}]`);
    console.log('| command | metadata cache | time | peak RSS | load 1 min (before → after) | result | target < 400 MB |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    for (const r of rows) {
      const target = r.label.startsWith('rclone') ? '' : r.rssMb < 400 ? 'MET' : 'NOT MET';
      console.log(`| ${r.label} | ${r.cache} | ${fmt(r.secs)} s | ${fmt(r.rssMb, 0)} MB | ${fmt(r.load[0])} → ${fmt(r.load[1])} | ${r.result} | ${target} |`);
    }
    if (Object.keys(daemons).length) {
      console.log(`RGW daemons' RSS now: ${Object.entries(daemons).map(([k, v]) => `${k} ${fmt(v, 0)} MB`).join(', ')}`);
    }
    return { bench: 'scale rgw listing', files, dirs, endpoint, machine: m, rows, daemons };
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    cleanup();
  }
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
  if (args.includes('--rgw-listing')) {
    await rgwListing({
      files: opt('files', 1_000_000),
      dirs: opt('dirs', 1_000),
      runs: opt('runs', 1),
      transfers: opt('transfers', 32),
      cold: args.includes('--cold'),
    });
  } else if (args.includes('--stages')) await stages({ files: opt('files', 1_000_000), dirs: opt('dirs', 1_000) });
  else await run({ files: opt('files', undefined), dirs: opt('dirs', 1_000), runs: opt('runs', 3) });
}
