// Shared helpers for the benchmarks: a seeded tree generator, timing with peak RSS through
// GNU time, medians and the machine description printed with every result.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
export const BIN = path.join(ROOT, 'bin', 'bucketsync');
export const RGW_SH = path.join(ROOT, 'scripts', 'rgw.sh');

/** mulberry32: a small seeded PRNG, so every run builds the same tree. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `files` small files spread over `dirs` directories, sizes minSize..maxSize, fixed mtimes. */
export function generateTree(root, { files, dirs, minSize = 0, maxSize = 4096, seed = 42 }) {
  const marker = path.join(root, '.bench-tree.json');
  const spec = JSON.stringify({ files, dirs, minSize, maxSize, seed });
  if (fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === spec) return;
  fs.rmSync(root, { recursive: true, force: true });
  const rand = rng(seed);
  const pool = Buffer.alloc(maxSize);
  for (let i = 0; i < pool.length; i++) pool[i] = Math.floor(rand() * 256);
  const perDir = Math.ceil(files / dirs);
  let made = 0;
  for (let d = 0; d < dirs && made < files; d++) {
    const dir = path.join(root, `dir${String(d).padStart(4, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perDir && made < files; f++, made++) {
      const size = minSize + Math.floor(rand() * (maxSize - minSize + 1));
      const file = path.join(dir, `file${String(f).padStart(5, '0')}.bin`);
      fs.writeFileSync(file, pool.subarray(0, size));
      const t = 1_700_000_000 + Math.floor(rand() * 1e6) + rand();
      fs.utimesSync(file, t, t);
    }
  }
  fs.writeFileSync(marker, spec);
}

const GNU_TIME = ['/usr/bin/time', '/bin/time'].find((p) => fs.existsSync(p));

/** Runs a command once; returns wall seconds and peak RSS in MB (GNU time), and checks the exit code. */
export function measure(cmd, args, { env } = {}) {
  if (!GNU_TIME) throw new Error('GNU time is needed for peak RSS: apt-get install time');
  const r = spawnSync(GNU_TIME, ['-f', '%e %M', cmd, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const last = r.stderr.trim().split('\n').pop();
  const [secs, kb] = last.split(' ').map(Number);
  return { secs, rssMb: kb / 1024 };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${os.platform()} ${os.release()}, load ${os.loadavg()[0].toFixed(2)}`;
}

export function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export function scratch(name) {
  const dir = path.join(process.env.BENCH_DIR ?? path.join(os.tmpdir(), 'bucketsync-bench'), name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Runs `a` and `b` alternately `runs` times each (interleaved, so machine noise hits both). */
export function sideBySide(runs, a, b) {
  const ra = [];
  const rb = [];
  for (let i = 0; i < runs; i++) {
    ra.push(a());
    rb.push(b());
  }
  return [ra, rb];
}

export function fmt(x, digits = 2) {
  return Number(x).toFixed(digits);
}

/**
 * `scripts/rgw.sh start DIR` with `env`: `{ endpoint }` when it served, else `{ error }` (the
 * tail of what it printed).
 */
export function rgwStart(dir, env, timeoutMs) {
  const r = spawnSync('bash', [RGW_SH, 'start', dir], { encoding: 'utf8', timeout: timeoutMs, env });
  const m = /^endpoint=(\S+)/m.exec(r.stdout ?? '');
  if (r.status === 0 && m) return { endpoint: m[1], stderr: r.stderr ?? '' };
  return { error: `${r.error?.message ?? ''}${r.stderr ?? ''}` };
}

/** An idempotent `stop()` of the cluster in `dir` (`scripts/rgw.sh stop`); a no-op when `skip`. */
export function rgwStopper(dir, timeoutMs, skip = false) {
  let stopped = skip;
  return () => {
    if (stopped) return;
    stopped = true;
    const s = spawnSync('bash', [RGW_SH, 'stop', dir], { encoding: 'utf8', timeout: timeoutMs });
    if (s.status !== 0) console.error(`warning: stopping RGW in ${dir} failed: ${s.stderr}`);
  };
}

/** An AWS SDK client for a benchmark's untimed chores (buckets, cleanup) against the test RGW. */
export async function benchS3Client(endpoint, { accessKeyId = 'test', secretAccessKey = 'testtest' } = {}) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const sdk = await import('@aws-sdk/client-s3');
  const client = new sdk.S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return { sdk, client };
}

/** The MD5 (hex) of a file, read 8 MiB at a time. */
export function md5File(file) {
  const h = createHash('md5');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(8 * 1024 * 1024);
  for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  fs.closeSync(fd);
  return h.digest('hex');
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + sys, all its threads) process `pid` has used so far, from /proc; 0 when it is gone. */
export function procCpuSecs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime
  } catch {
    return 0; // gone meanwhile
  }
}

/**
 * One row per tool from its timed transfer runs (`{ secs, cpu, rssMb, server }` each): median
 * wall s, CPU s per GiB, peak RSS MB (median), the server's CPU s per GiB, and the runs.
 */
export function transferRows(runsByTool, gibs) {
  return Object.entries(runsByTool).map(([name, xs]) => ({
    name,
    wall: median(xs.map((x) => x.secs)),
    cpu: median(xs.map((x) => x.cpu)) / gibs,
    rss: median(xs.map((x) => x.rssMb)),
    server: median(xs.map((x) => x.server)) / gibs,
    runs: xs,
  }));
}
