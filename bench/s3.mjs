// Issue #3 benchmark: local → S3 against a real S3 server (a throwaway one-node Ceph RGW that
// this benchmark starts on free loopback ports in a scratch directory and always stops).
//
// One seeded tree (3,000 distinct files of 1–16 KiB in 120 directories + four 12 MiB files), three
// scenarios, four tools, all in the same run:
//   (1) initial upload into an empty prefix (a fresh prefix per repetition; the previous
//       repetition's prefixes are deleted, untimed, in between),
//   (2) no-op re-run,
//   (3) re-run after touching 1 % of the files (mtime set to now, content unchanged);
//   tools: bucketsync (`--transfers N`), `rclone sync` (defaults: 4 transfers / 8 checkers),
//   `rclone sync --transfers 16 --checkers 16`, `/usr/bin/aws s3 sync` (aws-cli v2).
// Every tool mirrors (`rclone sync` always deletes, so bucketsync and aws get `--delete`; the
// tree never loses files, so nothing is ever deleted). Each tool has its own prefix; the last
// initial upload's prefix is the one re-run against. bucketsync's BUCKETSYNC_CACHE_DIR is a fresh
// directory for each initial upload (cold metadata/hash caches) and then persists across the
// re-runs, as it would for a real user.
//
// Timing: GNU time (wall seconds, CPU seconds = user + sys, peak RSS) per run, runs interleaved
// across tools (the order rotates each repetition), medians reported. The targets are on wall
// time; CPU time is printed too, because on a loaded machine wall time mostly measures the load.
// Request counts come from one extra, untimed run per tool and scenario (so the logging does not
// distort the timings): bucketsync from BUCKETSYNC_REQUEST_STATS, rclone from `--dump headers`,
// aws from `--debug` ("Sending http request"). Targets: initial upload ≥ 1.5x faster than
// rclone --transfers 16; no-op ≥ 3x faster than rclone's defaults.
// Note: RGW runs on the same machine and its own CPU (radosgw + ceph-osd: ~14 s for this initial
// upload on a 2-core box, the same for every tool) competes with the tool being measured.
//
// Scratch: $BENCH_DIR/s3/run-*/ (default /tmp/bucketsync-bench), removed at the end unless
// BENCH_KEEP=1 (then the tree, the logs of the counting runs and the caches stay).
//
// Needs: radosgw ceph-mon ceph-osd ceph-common (scripts/rgw.sh), rclone, aws-cli v2 at
// /usr/bin/aws, GNU time. rclone 1.60 fails on S3 when AWS_CA_BUNDLE is set, so rclone runs
// with it empty; aws-cli v2 ignores AWS_ENDPOINT_URL, so every tool gets the endpoint explicitly.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BIN, RGW_SH, ROOT, benchS3Client, fmt, have, machine, median, rgwStart, rgwStopper, rng, scratch } from './lib.mjs';

/**
 * bucketsync's --transfers here (override: --transfers N). 8, 16, 32 and 64 were tried on the
 * initial upload: all within noise of each other, because the upload is bound by CPU (RGW's
 * own 9–10 CPU-seconds for this tree and the client's, on the same two cores), not by requests
 * in flight; 16 matches rclone's 16-transfer run.
 */
export const DEFAULT_TRANSFERS = 16;
const AWS = '/usr/bin/aws';
const BUCKET = 'bench';
const BIG_FILES = 4;
const BIG_SIZE = 12 * 1024 * 1024;
const CREDS = {
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'testtest',
  AWS_REGION: 'us-east-1',
  AWS_DEFAULT_REGION: 'us-east-1',
};

// ------------------------------------------------------------------------------------------------
// the tree

/**
 * The seeded tree: `files` small files (1–16 KiB, each with its own random content, so no two
 * are identical and content-based dedup has nothing to find) in `dirs` directories, laid out
 * like lib.mjs's generateTree, + four 12 MiB files in big/. Fixed mtimes (2023).
 */
export function buildTree(root, { files = 3_000, dirs = 120, seed = 42 } = {}) {
  // always rebuilt: the touch scenario changes mtimes, and a reused tree would carry them over
  fs.rmSync(root, { recursive: true, force: true });
  const rand = rng(seed);
  const fill = (buf) => {
    for (let j = 0; j + 4 <= buf.length; j += 4) buf.writeUInt32LE((rand() * 2 ** 32) >>> 0, j);
    for (let j = buf.length & ~3; j < buf.length; j++) buf[j] = (rand() * 256) >>> 0;
    return buf;
  };
  const stamp = (file) => {
    const t = 1_700_000_000 + Math.floor(rand() * 1e6) + rand();
    fs.utimesSync(file, t, t);
  };
  const perDir = Math.ceil(files / dirs);
  for (let d = 0, made = 0; d < dirs && made < files; d++) {
    const dir = path.join(root, `dir${String(d).padStart(4, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perDir && made < files; f++, made++) {
      const file = path.join(dir, `file${String(f).padStart(5, '0')}.bin`);
      fs.writeFileSync(file, fill(Buffer.alloc(1024 + Math.floor(rand() * (15 * 1024 + 1)))));
      stamp(file);
    }
  }
  const dir = path.join(root, 'big');
  fs.mkdirSync(dir, { recursive: true });
  const big = Buffer.alloc(BIG_SIZE);
  for (let i = 0; i < BIG_FILES; i++) {
    const file = path.join(dir, `big${i}.bin`);
    fs.writeFileSync(file, fill(big));
    stamp(file);
  }
  const all = listFiles(root);
  return { files: all, bytes: all.reduce((n, f) => n + fs.statSync(path.join(root, f)).size, 0) };
}

function listFiles(root, rel = '') {
  const out = [];
  for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(root, r));
    else out.push(r);
  }
  return out.sort();
}

/** A seeded shuffle of the tree's files; `touch(i)` sets mtime = now on the i-th 1 % slice. */
function toucher(root, files, seed = 7) {
  const order = [...files];
  const rand = rng(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const n = Math.max(1, Math.round(files.length / 100));
  let round = 0;
  return {
    n,
    touch() {
      const slice = order.slice(round * n, (round + 1) * n);
      round++;
      const now = Date.now() / 1000;
      for (const f of slice) fs.utimesSync(path.join(root, f), now, now);
      return slice;
    },
  };
}

/**
 * lib.mjs's measure() plus CPU seconds (user + sys, the process and its children): on a shared,
 * loaded machine wall time mostly measures the load, CPU time what the tool itself costs.
 */
function measure(cmd, args, { env } = {}) {
  const GNU_TIME = ['/usr/bin/time', '/bin/time'].find((p) => fs.existsSync(p));
  if (!GNU_TIME) throw new Error('GNU time is needed for peak RSS: apt-get install time');
  const r = spawnSync(GNU_TIME, ['-f', '%e %M %U %S', cmd, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${String(r.stderr).slice(-2000)}`);
  const [secs, kb, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { secs, rssMb: kb / 1024, cpuSecs: user + sys };
}

// ------------------------------------------------------------------------------------------------
// the server

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts RGW in `dir` on free ports; returns { endpoint, stop() } (stop is idempotent, sync). */
export async function startRgw(dir) {
  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    let mon = await freePort();
    while (mon === port) mon = await freePort();
    // the watchdog stops the cluster (and removes DIR) if this process dies without cleaning up
    const env = { ...process.env, RGW_PORT: String(port), RGW_MON_PORT: String(mon), RGW_WATCH_PID: String(process.pid), RGW_WATCH_RMDIR: '1' };
    const started = rgwStart(dir, env, 600_000);
    if (started.endpoint) return { endpoint: started.endpoint, stop: rgwStopper(dir, 120_000) };
    lastErr = started.error;
    spawnSync('bash', [RGW_SH, 'stop', dir], { encoding: 'utf8', timeout: 120_000 });
    if (!/already in use/.test(lastErr)) break; // a port race is worth another try, nothing else
  }
  throw new Error(`could not start RGW (scripts/rgw.sh start ${dir}):\n${lastErr.slice(-3000)}`);
}

/** A small SDK client for the untimed chores: create the bucket, delete a prefix. */
async function adminClient(endpoint) {
  const { sdk, client } = await benchS3Client(endpoint, { accessKeyId: CREDS.AWS_ACCESS_KEY_ID, secretAccessKey: CREDS.AWS_SECRET_ACCESS_KEY });
  return {
    createBucket: () => client.send(new sdk.CreateBucketCommand({ Bucket: BUCKET })),
    async deletePrefix(prefix) {
      let token;
      do {
        const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/`, ContinuationToken: token }));
        const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key }));
        if (keys.length) {
          const r = await client.send(new sdk.DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys, Quiet: true } }));
          if (r.Errors?.length) throw new Error(`deleting ${prefix}/: ${r.Errors[0].Key}: ${r.Errors[0].Message}`);
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    },
    async count(prefix) {
      let n = 0;
      let token;
      do {
        const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/`, ContinuationToken: token }));
        n += page.KeyCount ?? 0;
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return n;
    },
    destroy: () => client.destroy(),
  };
}

// ------------------------------------------------------------------------------------------------
// the tools

/**
 * The environments of the peers (and of bucketsync, `awsEnv`) for the RGW at `endpoint`:
 * test credentials, and an empty config file in `work` that isolates aws, rclone and the SDK
 * from ~/.aws and ~/.config/rclone; rclone's remote is `rgw:`.
 */
export function peerEnvs(work, endpoint) {
  const emptyConf = path.join(work, 'empty.conf');
  fs.writeFileSync(emptyConf, '');
  const awsEnv = { ...CREDS, AWS_CONFIG_FILE: emptyConf, AWS_SHARED_CREDENTIALS_FILE: emptyConf };
  const rcloneEnv = {
    RCLONE_CONFIG: emptyConf,
    RCLONE_CONFIG_RGW_TYPE: 's3',
    RCLONE_CONFIG_RGW_PROVIDER: 'Ceph',
    RCLONE_CONFIG_RGW_ENDPOINT: endpoint,
    RCLONE_CONFIG_RGW_ACCESS_KEY_ID: CREDS.AWS_ACCESS_KEY_ID,
    RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY: CREDS.AWS_SECRET_ACCESS_KEY,
    RCLONE_CONFIG_RGW_REGION: CREDS.AWS_REGION,
    AWS_CA_BUNDLE: '', // rclone 1.60: LoadCustomCABundleError on every S3 remote otherwise
  };
  return { awsEnv, rcloneEnv };
}

/**
 * The four tools. `cmd(prefix, ctx)` → [command, args, env]; ctx = { cacheDir, stats } for
 * bucketsync. `countArgs(logFile)` adds request logging for the untimed counting run.
 */
export function tools({ endpoint, tree, work, transfers }) {
  const { awsEnv, rcloneEnv } = peerEnvs(work, endpoint);
  const rclone = (key, label, extra) => ({
    key,
    label,
    cmd: (prefix) => ['rclone', ['sync', tree, `rgw:${BUCKET}/${prefix}`, ...extra], rcloneEnv],
    countArgs: (log) => ['--dump', 'headers', '--log-file', log],
    parseCounts: parseRcloneLog,
  });
  return [
    {
      key: 'bucketsync',
      label: `bucketsync --transfers ${transfers}`,
      cmd: (prefix, ctx) => [
        process.execPath,
        [BIN, 'sync', tree, `s3://${BUCKET}/${prefix}`, '--endpoint-url', endpoint, '--transfers', String(transfers), '--delete', '-q'],
        { ...awsEnv, BUCKETSYNC_CACHE_DIR: ctx.cacheDir, BUCKETSYNC_REQUEST_STATS: ctx.stats },
      ],
      countArgs: () => [],
      parseCounts: null, // read from BUCKETSYNC_REQUEST_STATS
    },
    rclone('rclone', 'rclone sync (defaults)', []),
    rclone('rclone16', 'rclone sync --transfers 16 --checkers 16', ['--transfers', '16', '--checkers', '16']),
    {
      key: 'aws',
      label: 'aws s3 sync (cli v2)',
      cmd: (prefix) => [AWS, ['--endpoint-url', endpoint, 's3', 'sync', tree, `s3://${BUCKET}/${prefix}`, '--delete', '--only-show-errors'], awsEnv],
      countArgs: () => ['--debug'],
      parseCounts: parseAwsLog,
    },
  ];
}

// Request kinds shared by all tools: LIST, HEAD (object), PUT (single upload), MPU (create / part
// / complete / abort), COPY (server-side copy), GET (object), DELETE, BUCKET (bucket-level).
const KINDS = ['LIST', 'HEAD', 'PUT', 'MPU', 'COPY', 'GET', 'DELETE', 'BUCKET', 'OTHER'];

const SDK_KIND = {
  ListObjectsV2: 'LIST',
  ListObjects: 'LIST',
  HeadObject: 'HEAD',
  PutObject: 'PUT',
  CreateMultipartUpload: 'MPU',
  UploadPart: 'MPU',
  CompleteMultipartUpload: 'MPU',
  AbortMultipartUpload: 'MPU',
  CopyObject: 'COPY',
  UploadPartCopy: 'COPY',
  GetObject: 'GET',
  DeleteObject: 'DELETE',
  DeleteObjects: 'DELETE',
  HeadBucket: 'BUCKET',
  CreateBucket: 'BUCKET',
  GetBucketLocation: 'BUCKET',
};

/** Classifies one HTTP request (method, path+query, whether it carries x-amz-copy-source). */
function httpKind(method, target, copy) {
  const u = new URL(target, 'http://x');
  const q = u.searchParams;
  const segs = u.pathname.split('/').filter(Boolean); // path style: bucket[/key…]
  if (copy) return 'COPY';
  if (q.has('uploads') || q.has('uploadId')) return 'MPU';
  if (method === 'DELETE' || (method === 'POST' && q.has('delete'))) return 'DELETE';
  if (segs.length <= 1) return method === 'GET' && !q.has('location') ? 'LIST' : 'BUCKET';
  if (method === 'HEAD') return 'HEAD';
  if (method === 'PUT') return 'PUT';
  if (method === 'GET') return 'GET';
  return 'OTHER';
}

function tally(kinds) {
  const out = {};
  for (const k of kinds) out[k] = (out[k] ?? 0) + 1;
  return out;
}

/** rclone --dump headers: "DEBUG : HTTP REQUEST (req …)", the request line, then its headers. */
function parseRcloneLog(file) {
  const blocks = fs.readFileSync(file, 'utf8').split(/DEBUG : HTTP REQUEST \(req [^)]*\)\n/).slice(1);
  return tally(
    blocks.map((b) => {
      const head = b.slice(0, b.search(/\n\S* ?\S* ?DEBUG : (>>>>|<<<<)/) >>> 0);
      const m = /DEBUG : ([A-Z]+) (\S+) HTTP\//.exec(head);
      if (!m) return 'OTHER';
      return httpKind(m[1], m[2], /^X-Amz-Copy-Source:/im.test(head));
    }),
  );
}

/** aws --debug: one "Sending http request: <AWSPreparedRequest … method=PUT, url=…, headers={…}>" per request. */
function parseAwsLog(file) {
  const kinds = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('Sending http request')) continue;
    const m = /method=([A-Z]+), url=(\S+?), headers=/.exec(line);
    kinds.push(m ? httpKind(m[1], new URL(m[2]).pathname + new URL(m[2]).search, /'x-amz-copy-source'/i.test(line)) : 'OTHER');
  }
  return tally(kinds);
}

function readStats(file) {
  const out = {};
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    for (const [op, n] of Object.entries(JSON.parse(line).requests ?? {})) {
      const k = SDK_KIND[op] ?? 'OTHER';
      out[k] = (out[k] ?? 0) + n;
    }
  }
  return out;
}

const total = (c) => Object.values(c).reduce((a, b) => a + b, 0);
const num = (n) => Number(n).toLocaleString('en-US');
const fmtCounts = (c) =>
  c.failed
    ? 'FAILED'
    : `${num(total(c))} (${KINDS.filter((k) => c[k])
    .map((k) => `${num(c[k])} ${k}`)
    .join(', ')})`;

// ------------------------------------------------------------------------------------------------
// the run

export async function run({ files = 3_000, dirs = 120, runs = 3, transfers } = {}) {
  const t0 = Date.now();
  runs = Number.isFinite(runs) && runs >= 1 ? Math.floor(runs) : 3;
  transfers = Number.isFinite(transfers) && transfers >= 1 ? Math.floor(transfers) : DEFAULT_TRANSFERS;
  for (const [cmd, what] of [
    ['radosgw', 'Ceph RGW (apt-get install --no-install-recommends radosgw ceph-mon ceph-osd ceph-common)'],
    ['rclone', 'rclone (apt-get install rclone)'],
    [AWS, 'aws-cli v2 at /usr/bin/aws (apt-get install awscli)'],
  ]) {
    if (!have(cmd)) throw new Error(`${what} is not installed`);
  }

  const work = fs.mkdtempSync(path.join(scratch('s3'), 'run-'));
  // ceph admin sockets live in the RGW dir: its path must stay short (scripts/rgw.sh: ≤ 70 chars)
  const rgwDir = path.join(work, 'rgw').length <= 60 ? path.join(work, 'rgw') : fs.mkdtempSync(path.join(os.tmpdir(), 'bs-rgw-'));
  const tree = path.join(work, 'tree');
  console.error(`generating ${files} files of 1–16 KiB in ${dirs} directories + ${BIG_FILES} × 12 MiB (seeded) in ${tree}…`);
  const shape = buildTree(tree, { files, dirs });

  let rgw;
  let admin;
  const cleanup = () => {
    admin?.destroy();
    rgw?.stop();
    if (!process.env.BENCH_KEEP) fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(rgwDir, { recursive: true, force: true });
  };
  const onSignal = (sig) => {
    console.error(`\n${sig}: stopping RGW…`);
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    console.error(`starting RGW in ${rgwDir}…`);
    rgw = await startRgw(rgwDir);
    console.error(`RGW at ${rgw.endpoint}`);
    admin = await adminClient(rgw.endpoint);
    await admin.createBucket();
    return await measureAll({ work, tree, shape, runs, transfers, endpoint: rgw.endpoint, admin, t0 });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    cleanup();
    console.error(`s3 benchmark: ${fmt((Date.now() - t0) / 1000, 0)} s in all (incl. RGW start/stop)`);
  }
}

async function measureAll({ work, tree, shape, runs, transfers, endpoint, admin, t0 }) {
  const list = tools({ endpoint, tree, work, transfers });
  const dir = (name) => {
    const d = path.join(work, name);
    fs.mkdirSync(d, { recursive: true });
    return d;
  };
  const logs = dir('logs');
  const cacheDirs = {}; // bucketsync's cache dir per prefix
  const rotate = (r) => list.map((_, i) => list[(i + r) % list.length]);

  let seq = 0;
  const failures = [];
  /** A failed run is recorded (and shown as FAILED), not fatal: the other measurements go on. */
  const failed = (what, tool, err) => {
    const message = String(err?.message ?? err);
    failures.push({ what, tool: tool.label, message });
    console.error(`FAILED: ${what}: ${tool.label}: ${message.split('\n').slice(0, 6).join('\n  ')}`);
  };
  /** One timed run of `tool` against `prefix`; bucketsync's request counts come along for free. */
  const timed = (tool, prefix, what) => {
    const stats = path.join(logs, `stats-${seq++}.jsonl`);
    const [cmd, args, env] = tool.cmd(prefix, { cacheDir: cacheDirs[prefix], stats });
    let m;
    try {
      m = measure(cmd, args, { env });
    } catch (err) {
      failed(what, tool, err);
      return { secs: NaN, rssMb: NaN, cpuSecs: NaN, failed: true };
    }
    if (tool.key === 'bucketsync') m.requests = readStats(stats);
    return m;
  };
  /** One untimed run with request logging; returns request counts by kind. */
  const counted = (tool, prefix, what) => {
    try {
      return countedRun(tool, prefix);
    } catch (err) {
      failed(`${what} (counting run)`, tool, err);
      return { failed: true };
    }
  };
  const countedRun = (tool, prefix) => {
    const log = path.join(logs, `count-${seq++}.log`);
    const [cmd, args, env] = tool.cmd(prefix, { cacheDir: cacheDirs[prefix], stats: log });
    const fd = fs.openSync(log, 'a');
    const r = spawnSync(cmd, [...args, ...tool.countArgs(log)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', tool.key === 'aws' ? fd : 'pipe'],
      maxBuffer: 64 * 2 ** 20,
    });
    fs.closeSync(fd);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (counting run) failed (${r.status}): ${String(r.stderr ?? '').slice(-2000)} (log: ${log})`);
    return tool.parseCounts ? tool.parseCounts(log) : readStats(log);
  };

  const results = Object.fromEntries(list.map((t) => [t.key, { label: t.label, init: [], noop: [], touch: [], requests: {} }]));
  const steady = {};
  const freshPrefix = (tool, name) => {
    const p = `${tool.key}/${name}`;
    cacheDirs[p] = dir(`cache-${tool.key}-${name}`); // a cold cache for every fresh upload
    return p;
  };
  const expectObjects = async (prefix) => {
    const n = await admin.count(prefix);
    if (n !== shape.files.length) throw new Error(`${prefix}/ holds ${n} objects after the upload, expected ${shape.files.length}`);
    return true;
  };
  const elapsed = () => `${fmt((Date.now() - t0) / 1000, 0)} s`;

  // (1) initial upload
  for (let r = 0; r < runs; r++) {
    const made = [];
    for (const tool of rotate(r)) {
      const prefix = freshPrefix(tool, `init-${r + 1}`);
      const m = timed(tool, prefix, 'initial upload');
      results[tool.key].init.push(m);
      if (!m.failed) await expectObjects(prefix).catch((err) => failed('initial upload', tool, err));
      console.error(`[${elapsed()}] initial upload ${r + 1}/${runs}: ${tool.label}: ${fmt(m.secs)} s, ${fmt(m.cpuSecs)} s CPU, ${fmt(m.rssMb, 0)} MB`);
      made.push([tool, prefix]);
    }
    for (const [tool, prefix] of made) {
      if (r === runs - 1) {
        steady[tool.key] = prefix; // the re-runs go against the last upload (its cache stays warm)
      } else {
        await admin.deletePrefix(prefix);
      }
    }
  }

  // (2) no-op re-run
  for (let r = 0; r < runs; r++) {
    for (const tool of rotate(r)) {
      const m = timed(tool, steady[tool.key], 'no-op');
      results[tool.key].noop.push(m);
      console.error(`[${elapsed()}] no-op ${r + 1}/${runs}: ${tool.label}: ${fmt(m.secs)} s, ${fmt(m.cpuSecs)} s CPU, ${fmt(m.rssMb, 0)} MB`);
    }
  }

  // (3) touch 1 % (a different slice each time), then every tool re-runs
  const touch = toucher(tree, shape.files);
  for (let r = 0; r < runs; r++) {
    touch.touch();
    for (const tool of rotate(r)) {
      const m = timed(tool, steady[tool.key], 'touch 1 %');
      results[tool.key].touch.push(m);
      console.error(`[${elapsed()}] touch ${touch.n} files ${r + 1}/${runs}: ${tool.label}: ${fmt(m.secs)} s, ${fmt(m.cpuSecs)} s CPU, ${fmt(m.rssMb, 0)} MB`);
    }
  }

  // request counts: one extra, untimed run per tool and scenario
  console.error(`[${elapsed()}] counting requests (extra untimed runs with request logging)…`);
  for (const tool of list) {
    const prefix = freshPrefix(tool, 'count-init');
    results[tool.key].requests.init = counted(tool, prefix, 'initial upload');
    await admin.deletePrefix(prefix);
  }
  for (const tool of list) results[tool.key].requests.noop = counted(tool, steady[tool.key], 'no-op');
  touch.touch();
  for (const tool of list) results[tool.key].requests.touch = counted(tool, steady[tool.key], 'touch 1 %');

  return report({ list, results, shape, runs, transfers, touched: touch.n, failures });
}

function versions() {
  const first = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, AWS_CA_BUNDLE: '' } });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0];
  };
  const rc = /v\d[\w.-]*/.exec(first('rclone', ['version']))?.[0];
  const aws = /aws-cli\/\S+/.exec(first(AWS, ['--version']))?.[0];
  const ceph = /ceph version (\S+)/.exec(first('radosgw', ['--version']))?.[1];
  return `bucketsync ${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}, rclone ${rc}, ${aws}, Ceph RGW ${ceph}`;
}

function report({ list, results, shape, runs, transfers, touched, failures }) {
  // a cell with a failed run has no median (NaN → shown as FAILED, ratios NOT MET)
  const med = (ms, k = 'secs') => (ms.some((m) => m.failed) ? NaN : median(ms.map((m) => m[k])));
  const rss = (ms) => (ms.some((m) => m.failed) ? NaN : Math.max(...ms.map((m) => m.rssMb)));
  const summary = {};
  for (const t of list) {
    const r = results[t.key];
    summary[t.key] = {
      label: r.label,
      ...Object.fromEntries(
        ['init', 'noop', 'touch'].map((s) => [
          s,
          { medianSecs: med(r[s]), medianCpuSecs: med(r[s], 'cpuSecs'), peakRssMb: rss(r[s]), all: r[s].map((m) => m.secs), allCpu: r[s].map((m) => m.cpuSecs), requests: r.requests[s], ...(t.key === 'bucketsync' ? { requestsPerRun: r[s].map((m) => m.requests) } : {}) },
        ]),
      ),
    };
  }
  const result = {
    bench: 's3 (local → Ceph RGW)',
    files: shape.files.length,
    bytes: shape.bytes,
    runs,
    transfers,
    touched,
    machine: machine(),
    versions: versions(),
    tools: summary,
    failures,
  };

  const mib = shape.bytes / 2 ** 20;
  const cell = (s) => (Number.isNaN(s.medianSecs) ? 'FAILED' : `${fmt(s.medianSecs)} s · ${fmt(s.medianCpuSecs)} s CPU · ${fmt(s.peakRssMb, 0)} MB`);
  console.log(`\n## local → S3 (Ceph RGW on loopback), ${num(shape.files.length)} files / ${fmt(mib, 1)} MiB, medians of ${runs} interleaved runs  [${result.machine}; ${result.versions}]`);
  console.log(`| tool | initial upload | no-op re-run | touch 1 % (${touched} files, mtime only) |`);
  console.log('| --- | --- | --- | --- |');
  for (const t of list) {
    const s = summary[t.key];
    console.log(`| ${s.label} | ${cell(s.init)} | ${cell(s.noop)} | ${cell(s.touch)} |`);
  }
  console.log('\n(median wall time · median CPU time, user + sys · peak RSS)\n\nRequests, from one extra untimed run each (bucketsync: BUCKETSYNC_REQUEST_STATS; rclone: --dump headers; aws: --debug):');
  console.log('| tool | initial upload | no-op re-run | touch 1 % |');
  console.log('| --- | --- | --- | --- |');
  for (const t of list) {
    const s = summary[t.key];
    console.log(`| ${s.label} | ${fmtCounts(s.init.requests)} | ${fmtCounts(s.noop.requests)} | ${fmtCounts(s.touch.requests)} |`);
  }
  console.log(`\nOn touch 1 % (${touched} files whose content did not change):`);
  for (const t of list) {
    const c = summary[t.key].touch.requests;
    if (c.failed) continue;
    const what = [];
    if (c.COPY) what.push(`re-stamps the mtime by server-side copy (${num(c.COPY)} CopyObject)`);
    if (c.PUT || c.MPU) what.push(`re-uploads (${num(c.PUT ?? 0)} PUT${c.MPU ? `, ${num(c.MPU)} multipart requests` : ''})`);
    if (c.HEAD) what.push(`${num(c.HEAD)} HEAD`);
    console.log(`- ${summary[t.key].label}: ${what.length ? what.join(', ') : 'transfers nothing'}`);
  }

  const b = summary.bucketsync;
  const ratio = (other, scen, k = 'medianSecs') => summary[other][scen][k] / b[scen][k];
  const line = (text, x, target) =>
    console.log(
      Number.isNaN(x)
        ? `${text} = n/a (a run failed)${target ? ` (target ≥ ${target}x) NOT MET` : ''}`
        : `${text} = ${fmt(x)}x${target ? ` (target ≥ ${target}x) ${x >= target ? 'MET' : 'NOT MET'}` : ''}`,
    );
  console.log('');
  line('ratio initial upload  rclone --transfers 16 / bucketsync', ratio('rclone16', 'init'), 1.5);
  line('ratio no-op re-run    rclone defaults / bucketsync', ratio('rclone', 'noop'), 3);
  line('ratio initial upload  rclone defaults / bucketsync', ratio('rclone', 'init'));
  line('ratio initial upload  aws / bucketsync', ratio('aws', 'init'));
  line('ratio no-op re-run    rclone --transfers 16 / bucketsync', ratio('rclone16', 'noop'));
  line('ratio no-op re-run    aws / bucketsync', ratio('aws', 'noop'));
  line('ratio touch 1 %       rclone defaults / bucketsync', ratio('rclone', 'touch'));
  line('ratio touch 1 %       aws / bucketsync', ratio('aws', 'touch'));
  line('CPU-time ratio initial upload  rclone --transfers 16 / bucketsync', ratio('rclone16', 'init', 'medianCpuSecs'));
  line('CPU-time ratio no-op re-run    rclone defaults / bucketsync', ratio('rclone', 'noop', 'medianCpuSecs'));
  result.ratios = {
    initVsRclone16: ratio('rclone16', 'init'),
    noopVsRclone: ratio('rclone', 'noop'),
  };
  result.targetsMet = { init: result.ratios.initVsRclone16 >= 1.5, noop: result.ratios.noopVsRclone >= 3 };
  if (failures.length) {
    console.log(`\n${failures.length} run(s) FAILED:`);
    for (const f of failures) console.log(`- ${f.what}: ${f.tool}: ${f.message.split('\n')[0]}`);
    process.exitCode = 1;
  }
  return result;
}
