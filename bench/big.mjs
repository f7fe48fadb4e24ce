// `npm run bench -- big [--size MiB[,MiB…]] [--runs N]`: one big seeded file (default 1 GiB and
// 4 GiB) local → RGW and RGW → local, bucketsync against `aws s3 sync` (v2, defaults), rclone
// (defaults) and rclone tuned (`--s3-upload-concurrency 8 --s3-chunk-size 16M` up,
// `--multi-thread-streams 8` down), interleaved, medians of N (3): wall time, client CPU
// seconds (user + sys) per GiB, peak RSS, and the ratios to the fastest / leanest peer.
// Downloads also get a 'node floor' column (not a peer): bench/floor-download.mjs, a bare Node
// script doing the same ranged GETs (node:http, same part size and concurrency) into a file and
// nothing else (no hashing) — how far bucketsync is from what Node itself can do here; and a
// 'node floor raw' column: the same script with its `raw` transport (net.connect + onread into
// one reused buffer, hand-parsed HTTP/1.1: what bucketsync's src/stores/common/range-reader.ts does over plain http).
// Then bucketsync is SIGKILLed at about half of an upload and of a download and run again:
// the bytes that went over the wire in both runs (counted by a TCP relay in front of RGW) and
// whether the result is byte-identical, and how many incomplete multipart uploads are left.
//
// `--only kill` runs only the kill-and-resume part, `--only throughput` only the timed runs.
//
// RGW: BUCKETSYNC_BENCH_S3_ENDPOINT (e.g. the shared test RGW), else one started here with
// RGW_OBJECTSTORE=bluestore (scripts/rgw.sh) on free ports, stopped at the end. Each run uses
// its own bucket (bench-big-PID), removed at the end. Disk: every uploaded object is checked
// (its size) and deleted, every downloaded file checked (MD5, first round) and removed, as soon
// as it is measured. RGW frees a deleted object's data only through its garbage collector,
// after rgw_gc_obj_min_wait (2 h by default; scripts/rgw.sh RGW_GC_MIN_WAIT=30 for this bench):
// when the RGW's ceph.conf is known (BUCKETSYNC_BENCH_RGW_CONF, or the RGW started here),
// `radosgw-admin gc process` runs before every timed run (untimed; it frees what has waited
// rgw_gc_obj_min_wait; BUCKETSYNC_BENCH_GC=all adds --include-all: everything deleted, at
// once — not on an RGW others read from). The machine's free disk (the filesystem of the
// scratch dir) must stay above BUCKETSYNC_BENCH_MIN_FREE_GIB (8): checked before each step
// against what the step may add, and every 0.5 s while a tool runs (it is killed and the bench
// aborts with a message). With RGW's data on the same disk, a 4 GiB file needs about
// 4 (source) + 4 (download) GiB, and RGW about 12 (reference, one upload, one awaiting GC) in
// its bluestore — but its sparse block file takes its full size on the host disk after a few
// rounds (freed space is reused only once allocation has wrapped around the device; no
// discard), so the disk must hold the whole block file: start the RGW with a block file of
// 16–20 GiB (scripts/rgw.sh RGW_BLUESTORE_BYTES), not one sized to the disk. The last line
// prints how much of the disk the block file held.
// Needs rclone, aws-cli v2 at /usr/bin/aws, GNU time.
// Each run also reports the server's CPU seconds meanwhile (radosgw, ceph-osd and ceph-mon,
// from /proc; BUCKETSYNC_BENCH_RGW_CONF names an external RGW's ceph.conf to pick its processes):
// on a machine where client and server share the cores, what the server itself takes.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { BIN, benchS3Client, fmt, have, machine, rng, md5File, procCpuSecs, scratch, transferRows } from './lib.mjs';
import { peerEnvs, startRgw } from './s3.mjs';

const AWS = '/usr/bin/aws';
const GiB = 2 ** 30;
const MiB = 2 ** 20;
/** Each run its own bucket: other benchmarks may share the RGW. */
const BUCKET = `bench-big-${process.pid}`;
const CREDS = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'testtest', AWS_REGION: 'us-east-1', AWS_DEFAULT_REGION: 'us-east-1' };
/** A bare Node ranged download into a file, nothing else (the 'node floor' column). */
const FLOOR = path.join(path.dirname(new URL(import.meta.url).pathname), 'floor-download.mjs');
/** bucketsync's ranged GETs in flight per big download (BUCKETSYNC_S3_DOWNLOAD_CONCURRENCY default). */
const DOWNLOAD_CONCURRENCY = 4;
const GNU_TIME = ['/usr/bin/time', '/bin/time'].find((p) => fs.existsSync(p));

/** A seeded file of `bytes` (each MiB differs: no dedup or compression helps anyone). */
export function seededFile(file, bytes) {
  if (fs.existsSync(file) && fs.statSync(file).size === bytes) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const rand = rng(4242);
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < MiB; i += 4) block.writeUInt32LE(Math.floor(rand() * 2 ** 32), i);
  const fd = fs.openSync(file, 'w');
  for (let off = 0; off < bytes; off += MiB) {
    block.writeUInt32LE(off / MiB, 0);
    fs.writeSync(fd, block, 0, Math.min(MiB, bytes - off));
  }
  fs.closeSync(fd);
  fs.utimesSync(file, 1_700_000_000, 1_700_000_000);
}

/**
 * The server's processes (radosgw, ceph-osd, ceph-mon) of the RGW whose config is `conf`
 * (any RGW's when `conf` is undefined): their CPU seconds (user + sys) so far, from /proc.
 */
function serverCpu(conf) {
  let secs = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!/^(radosgw|ceph-osd|ceph-mon)$/.test(path.basename(cmd[0]))) continue;
      if (conf && !cmd.includes(conf)) continue;
      secs += procCpuSecs(pid);
    } catch {
      // gone meanwhile
    }
  }
  return secs;
}

let serverConf;

// ---- disk: the machine's free space must stay above a floor; RGW's garbage collection ----
const MIN_FREE = Number(process.env.BUCKETSYNC_BENCH_MIN_FREE_GIB ?? 8) * GiB;
const disk = { dir: '/', minFree: Infinity, gcRuns: 0, gcSecs: 0, gcFailed: '', blockMax: 0 };

function freeBytes() {
  const st = fs.statfsSync(disk.dir);
  const free = st.bavail * st.bsize;
  disk.minFree = Math.min(disk.minFree, free);
  const block = rgwBlockBytes();
  if (block !== undefined) disk.blockMax = Math.max(disk.blockMax, block);
  return free;
}

/** The host bytes held by the RGW's sparse bluestore block file (scripts/rgw.sh layout), if known. */
function rgwBlockBytes() {
  if (!serverConf) return undefined;
  try {
    return fs.statSync(path.join(path.dirname(serverConf), 'osd', 'ceph-0', 'block')).blocks * 512;
  } catch {
    return undefined;
  }
}

const gib = (b) => fmt(b / GiB, 1);

/** Throws unless `need` more bytes can be written and the disk keep MIN_FREE free. */
function ensureDisk(need, what) {
  const free = freeBytes();
  if (free - need < MIN_FREE) {
    throw new Error(
      `bench big: stopped before ${what}: ${gib(free)} GiB free on the disk of ${disk.dir}, the step may write ${gib(need)} GiB and ${gib(MIN_FREE)} GiB must stay free (BUCKETSYNC_BENCH_MIN_FREE_GIB)`,
    );
  }
}

/**
 * `radosgw-admin gc process` on the RGW whose ceph.conf is known (untimed): frees the data of
 * objects deleted at least rgw_gc_obj_min_wait ago (all of them with BUCKETSYNC_BENCH_GC=all).
 */
function collectGarbage() {
  if (!serverConf || disk.gcFailed) return;
  const t0 = performance.now();
  const args = ['-c', serverConf, 'gc', 'process', ...(process.env.BUCKETSYNC_BENCH_GC === 'all' ? ['--include-all'] : [])];
  const r = spawnSync('radosgw-admin', args, { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) {
    disk.gcFailed = `radosgw-admin ${args.join(' ')} failed (${r.status ?? r.error?.message}): ${(r.stderr ?? '').trim().split('\n').pop()}`;
    console.log(`  warning: ${disk.gcFailed}; deleted objects wait for RGW's own GC`);
    return;
  }
  disk.gcRuns++;
  disk.gcSecs += (performance.now() - t0) / 1000;
}

/**
 * One timed run: wall s, CPU s (user + sys), peak RSS MB, and the server's CPU s meanwhile.
 * `need`: bytes the run may add to the disk (checked before; the free space is watched while it
 * runs, and the run killed if it falls under the floor).
 */
async function timed(cmd, args, env, need, what) {
  collectGarbage();
  ensureDisk(need, what);
  const s0 = serverCpu(serverConf);
  const r0 = await timedAsync(cmd, args, env, what);
  return { ...r0, server: serverCpu(serverConf) - s0 };
}

/**
 * `cmd args` under GNU time without blocking this process's event loop (the TCP relay below
 * runs in it): wall s, CPU s, peak RSS MB. The free disk is watched meanwhile.
 */
export function timedAsync(cmd, args, env, what = cmd) {
  return new Promise((resolve, reject) => {
    const child = spawn(GNU_TIME, ['-f', '%e %M %U %S', cmd, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let err = '';
    let full = '';
    const watch = setInterval(() => {
      const free = freeBytes();
      if (free < MIN_FREE && !full) {
        full = `bench big: stopped ${what}: only ${gib(free)} GiB left free on the disk of ${disk.dir} (floor ${gib(MIN_FREE)} GiB, BUCKETSYNC_BENCH_MIN_FREE_GIB)`;
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }, 500);
    child.stderr.on('data', (d) => (err += d.toString()));
    child.on('close', (code) => {
      clearInterval(watch);
      if (full) return reject(new Error(full));
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err.slice(-2000)}`));
      const [secs, kb, user, sys] = err.trim().split('\n').pop().split(' ').map(Number);
      resolve({ secs, rssMb: kb / 1024, cpu: user + sys });
    });
  });
}

/** A TCP relay to `target` that counts the bytes each way (request bodies up, responses down). */
export async function relay(target) {
  const t = new URL(target);
  const counts = { up: 0, down: 0 };
  const server = net.createServer((c) => {
    const s = net.connect(Number(t.port || 80), t.hostname);
    c.on('data', (d) => (counts.up += d.length));
    s.on('data', (d) => (counts.down += d.length));
    c.pipe(s);
    s.pipe(c);
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, counts, close: () => new Promise((r) => server.close(r)) };
}

async function admin(endpoint) {
  const { sdk, client } = await benchS3Client(endpoint);
  return {
    async createBucket() {
      await client.send(new sdk.CreateBucketCommand({ Bucket: BUCKET })).catch((e) => {
        if (e.name !== 'BucketAlreadyOwnedByYou' && e.name !== 'BucketAlreadyExists') throw e;
      });
    },
    async deletePrefix(prefix) {
      const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/` }));
      for (const o of page.Contents ?? []) await client.send(new sdk.DeleteObjectCommand({ Bucket: BUCKET, Key: o.Key }));
      const ups = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${prefix}/` }));
      for (const u of ups.Uploads ?? []) await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: BUCKET, Key: u.Key, UploadId: u.UploadId }));
    },
    async incompleteUploads(prefix) {
      const ups = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: `${prefix}/` }));
      return ups.Uploads?.length ?? 0;
    },
    async head(key) {
      return client.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    },
    async md5(key) {
      const res = await client.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key: key }));
      const h = createHash('md5');
      for await (const c of res.Body) h.update(c);
      return h.digest('hex');
    },
    /** Empties and removes the bucket (this run's own). */
    async deleteBucket() {
      for (;;) {
        const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET }));
        for (const o of page.Contents ?? []) await client.send(new sdk.DeleteObjectCommand({ Bucket: BUCKET, Key: o.Key }));
        const ups = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: BUCKET }));
        for (const u of ups.Uploads ?? []) await client.send(new sdk.AbortMultipartUploadCommand({ Bucket: BUCKET, Key: u.Key, UploadId: u.UploadId }));
        if (!page.IsTruncated && !ups.IsTruncated) break;
      }
      await client.send(new sdk.DeleteBucketCommand({ Bucket: BUCKET }));
    },
    destroy: () => client.destroy(),
  };
}

/**
 * Runs `bucketsync args` and SIGKILLs it once `sent()` reaches `at` bytes (polled every 20 ms);
 * resolves when it is gone (true: the kill ended it).
 */
export function runAndKillAt(args, env, sent, at) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore', env: { ...process.env, ...env } });
  const t = setInterval(() => {
    if (sent() >= at) child.kill('SIGKILL');
  }, 20);
  return new Promise((r) =>
    child.on('close', (code, sig) => {
      clearInterval(t);
      r(sig === 'SIGKILL');
    }),
  );
}

export async function run({ sizes = [1024, 4096], runs = 3, only } = {}) {
  if (only !== undefined && only !== 'kill' && only !== 'throughput') throw new Error(`bench big: --only takes 'kill' or 'throughput', not '${only}'`);
  for (const [cmd, what] of [
    ['rclone', 'rclone (apt-get install rclone)'],
    [AWS, 'aws-cli v2 at /usr/bin/aws'],
  ]) {
    if (!have(cmd)) throw new Error(`bench big needs ${what}`);
  }
  if (!GNU_TIME) throw new Error('bench big needs GNU time (apt-get install time)');
  const work = scratch('big');
  disk.dir = work;
  let endpoint = process.env.BUCKETSYNC_BENCH_S3_ENDPOINT;
  serverConf = process.env.BUCKETSYNC_BENCH_RGW_CONF; // the external RGW's ceph.conf, for its CPU seconds and GC
  let stop = () => undefined;
  if (!endpoint) {
    process.env.RGW_OBJECTSTORE ??= 'bluestore';
    const rgw = await startRgw(path.join(work, 'rgw'));
    serverConf = path.join(work, 'rgw', 'ceph.conf');
    endpoint = rgw.endpoint;
    stop = rgw.stop;
  }
  const a = await admin(endpoint);
  const results = { suite: 'big', machine: machine(), endpoint, bucket: BUCKET, sizes: [] };
  const load = () => os.loadavg().map((x) => fmt(x)).join(' ');
  try {
    await a.createBucket();
    const { awsEnv, rcloneEnv } = peerEnvs(work, endpoint);
    const cache = path.join(work, 'cache');
    const bsEnv = { ...awsEnv, BUCKETSYNC_CACHE_DIR: cache };
    const version = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8' }).stdout.split('\n')[0].trim();
    results.peers = { aws: version(AWS, ['--version']), rclone: version('rclone', ['version']) };
    console.log(`bench big: ${results.machine}; RGW ${endpoint}; medians of ${runs}; ${results.peers.aws}; ${results.peers.rclone}`);
    console.log(
      `disk: ${gib(freeBytes())} GiB free on the disk of ${work} (floor ${gib(MIN_FREE)} GiB); ` +
        (serverConf
          ? `RGW GC: radosgw-admin -c ${serverConf} gc process${process.env.BUCKETSYNC_BENCH_GC === 'all' ? ' --include-all' : ''} before each timed run (untimed)`
          : 'RGW GC: its own (ceph.conf unknown: set BUCKETSYNC_BENCH_RGW_CONF)'),
    );
    for (const mib of sizes) {
      const bytes = mib * MiB;
      const src = path.join(work, `src-${mib}`);
      const file = path.join(src, 'ckpt.bin');
      if (!(fs.existsSync(file) && fs.statSync(file).size === bytes)) ensureDisk(bytes, `writing the ${mib} MiB source file`);
      seededFile(file, bytes);
      const srcMd5 = md5File(file);
      const gibs = bytes / GiB;
      const up = [
        ['bucketsync', (p) => [process.execPath, [BIN, 'sync', src, `s3://${BUCKET}/${p}`, '--endpoint-url', endpoint, '-q'], bsEnv]],
        ['aws s3 sync', (p) => [AWS, ['--endpoint-url', endpoint, 's3', 'sync', src, `s3://${BUCKET}/${p}`, '--only-show-errors'], awsEnv]],
        ['rclone', (p) => ['rclone', ['sync', src, `rgw:${BUCKET}/${p}`], rcloneEnv]],
        ['rclone tuned', (p) => ['rclone', ['sync', src, `rgw:${BUCKET}/${p}`, '--s3-upload-concurrency', '8', '--s3-chunk-size', '16M'], rcloneEnv]],
      ];
      let refPartSize;
      const down = [
        ['bucketsync', (d) => [process.execPath, [BIN, 'sync', `s3://${BUCKET}/ref-${mib}`, d, '--endpoint-url', endpoint, '-q'], bsEnv]],
        ['aws s3 sync', (d) => [AWS, ['--endpoint-url', endpoint, 's3', 'sync', `s3://${BUCKET}/ref-${mib}`, d, '--only-show-errors'], awsEnv]],
        ['rclone', (d) => ['rclone', ['sync', `rgw:${BUCKET}/ref-${mib}`, d], rcloneEnv]],
        ['rclone tuned', (d) => ['rclone', ['sync', `rgw:${BUCKET}/ref-${mib}`, d, '--multi-thread-streams', '8'], rcloneEnv]],
        // Not a peer: what Node itself costs for the same ranged GETs into a file, nothing else
        ['node floor', (d) => [process.execPath, [FLOOR, endpoint, BUCKET, `ref-${mib}/ckpt.bin`, (fs.mkdirSync(d, { recursive: true }), path.join(d, 'ckpt.bin')), String(bytes), String(refPartSize), String(DOWNLOAD_CONCURRENCY), 'http'], CREDS]],
        // the same with net.connect + onread into one reused buffer (bucketsync's transport over http)
        ['node floor raw', (d) => [process.execPath, [FLOOR, endpoint, BUCKET, `ref-${mib}/ckpt.bin`, (fs.mkdirSync(d, { recursive: true }), path.join(d, 'ckpt.bin')), String(bytes), String(refPartSize), String(DOWNLOAD_CONCURRENCY), 'raw'], CREDS]],
      ];
      const m = { up: Object.fromEntries(up.map(([k]) => [k, []])), down: Object.fromEntries(down.map(([k]) => [k, []])) };
      // the object every download reads (uploaded once, untimed)
      await a.deletePrefix(`ref-${mib}`);
      fs.rmSync(cache, { recursive: true, force: true });
      await timed(...up[0][1](`ref-${mib}`), bytes, `uploading the reference object`);
      refPartSize = Number((await a.head(`ref-${mib}/ckpt.bin`)).Metadata?.['part-size']);
      if (!(refPartSize > 0)) throw new Error('the reference object has no recorded part size');
      const entry = { mib, up: {}, down: {} };
      if (only !== 'kill') {
        const loadBefore = load();
        for (let i = 0; i < runs; i++) {
          for (const [name, cmd] of up) {
            const prefix = `up-${mib}`;
            await a.deletePrefix(prefix);
            fs.rmSync(cache, { recursive: true, force: true });
            const [c, args, env] = cmd(prefix);
            m.up[name].push(await timed(c, args, env, bytes, `${name} upload (run ${i + 1})`));
            const size = (await a.head(`${prefix}/ckpt.bin`)).ContentLength;
            if (size !== bytes) throw new Error(`${name} uploaded ${size} bytes, not ${bytes}`);
            await a.deletePrefix(prefix);
          }
          for (const [name, cmd] of down) {
            const dest = path.join(work, `down-${mib}`);
            fs.rmSync(dest, { recursive: true, force: true });
            fs.rmSync(cache, { recursive: true, force: true });
            const [c, args, env] = cmd(dest);
            m.down[name].push(await timed(c, args, env, bytes, `${name} download (run ${i + 1})`));
            const got = path.join(dest, 'ckpt.bin');
            if (fs.statSync(got).size !== bytes || (i === 0 && md5File(got) !== srcMd5)) throw new Error(`${name} downloaded different bytes`);
            fs.rmSync(dest, { recursive: true, force: true });
          }
        }
        console.log(`\n${mib} MiB throughput: load average (1, 5, 15 min) before ${loadBefore}, after ${load()}`);
        for (const dir of ['up', 'down']) {
          console.log(`\n${mib} MiB ${dir === 'up' ? 'local → RGW' : 'RGW → local'}:`);
          console.log('  tool            wall s   CPU s/GiB  peak RSS MB   wall ratio  CPU ratio   server CPU s/GiB');
          const rows = transferRows(m[dir], gibs);
          const peers = rows.filter((r) => r.name !== 'bucketsync' && !r.name.startsWith('node floor'));
          const fastest = Math.min(...peers.map((r) => r.wall));
          const leanest = Math.min(...peers.map((r) => r.cpu));
          for (const r of rows) {
            console.log(
              `  ${r.name.padEnd(14)} ${fmt(r.wall).padStart(7)}  ${fmt(r.cpu).padStart(9)}  ${fmt(r.rss, 0).padStart(11)}   ${fmt(r.wall / fastest).padStart(9)}  ${fmt(r.cpu / leanest).padStart(9)}   ${fmt(r.server).padStart(9)}`,
            );
            entry[dir][r.name] = r;
          }
          const floor = m[dir]['node floor'] ? entry[dir]['node floor'] : undefined;
          if (floor) {
            const bs = entry[dir].bucketsync;
            console.log(`  bucketsync / node floor: wall ${fmt(bs.wall / floor.wall)}×, CPU ${fmt(bs.cpu / floor.cpu)}× (${fmt(bs.cpu - floor.cpu)} CPU s/GiB above it)`);
            console.log(`  node floor / leanest peer CPU: ${fmt(floor.cpu / leanest)}×; / fastest peer wall: ${fmt(floor.wall / fastest)}×`);
            const rawFloor = entry[dir]['node floor raw'];
            if (rawFloor) console.log(`  node floor raw / leanest peer CPU: ${fmt(rawFloor.cpu / leanest)}×; / fastest peer wall: ${fmt(rawFloor.wall / fastest)}×; bucketsync / it: CPU ${fmt(bs.cpu / rawFloor.cpu)}×`);
          }
          console.log(`  each run (wall s / CPU s / server CPU s): ${rows.map((r) => `${r.name} ${r.runs.map((x) => `${fmt(x.secs, 1)}/${fmt(x.cpu, 1)}/${fmt(x.server, 1)}`).join(', ')}`).join('; ')}`);
        }
      }

      // Kill at ~50 % (of the bytes the relay has carried) and re-run: bytes over the wire in
      // both runs, byte identity, leftovers.
      if (only !== 'throughput') {
        const loadBefore = load();
        const tcp = await relay(endpoint);
        try {
          await a.deletePrefix(`kill-${mib}`);
          fs.rmSync(cache, { recursive: true, force: true });
          collectGarbage();
          ensureDisk(bytes, 'the kill-and-resume upload');
          const upArgs = ['sync', src, `s3://${BUCKET}/kill-${mib}`, '--endpoint-url', tcp.url, '-q'];
          const up0 = tcp.counts.up;
          const killed = await runAndKillAt(upArgs, bsEnv, () => tcp.counts.up - up0, bytes / 2);
          const afterKill = tcp.counts.up - up0;
          const upRerun = await timedAsync(process.execPath, [BIN, ...upArgs], bsEnv, 'the resumed upload');
          const upSent = tcp.counts.up - up0;
          const upSame = (await a.md5(`kill-${mib}/ckpt.bin`)) === srcMd5;
          const left = await a.incompleteUploads(`kill-${mib}`);
          console.log(
            `\n  kill -9 at ~50 % of the upload${killed ? '' : ' (it finished first)'}, re-run: ${fmt(upSent / MiB, 1)} MiB sent in all (${fmt(upSent / bytes, 3)}× the file; ${fmt(afterKill / MiB, 1)} MiB before the kill; re-run ${fmt(upRerun.secs, 1)} s), byte-identical: ${upSame}, incomplete uploads left: ${left}`,
          );
          await a.deletePrefix(`kill-${mib}`);
          const dest = path.join(work, `kill-down-${mib}`);
          fs.rmSync(dest, { recursive: true, force: true });
          collectGarbage();
          ensureDisk(bytes, 'the kill-and-resume download');
          const downArgs = ['sync', `s3://${BUCKET}/ref-${mib}`, dest, '--endpoint-url', tcp.url, '-q'];
          const down0 = tcp.counts.down;
          const killedDown = await runAndKillAt(downArgs, bsEnv, () => tcp.counts.down - down0, bytes / 2);
          const downBeforeKill = tcp.counts.down - down0;
          const downRerun = await timedAsync(process.execPath, [BIN, ...downArgs], bsEnv, 'the resumed download');
          const downGot = tcp.counts.down - down0;
          const downSame = md5File(path.join(dest, 'ckpt.bin')) === srcMd5;
          console.log(
            `  kill -9 at ~50 % of the download${killedDown ? '' : ' (it finished first)'}, re-run: ${fmt(downGot / MiB, 1)} MiB received in all (${fmt(downGot / bytes, 3)}× the file; ${fmt(downBeforeKill / MiB, 1)} MiB before the kill; re-run ${fmt(downRerun.secs, 1)} s), byte-identical: ${downSame}`,
          );
          entry.kill = { upSentBytes: upSent, upBeforeKill: afterKill, upRatio: upSent / bytes, upSame, incompleteUploads: left, downBytes: downGot, downBeforeKill, downRatio: downGot / bytes, downSame };
          fs.rmSync(dest, { recursive: true, force: true });
        } finally {
          await tcp.close();
        }
        console.log(`  kill-and-resume: load average (1, 5, 15 min) before ${loadBefore}, after ${load()}`);
      }
      await a.deletePrefix(`ref-${mib}`);
      results.sizes.push(entry);
    }
  } finally {
    await a.deleteBucket().catch((e) => console.error(`warning: removing bucket ${BUCKET}: ${e.message}`));
    a.destroy();
    collectGarbage();
    const block = rgwBlockBytes();
    console.log(
      `\ndisk: least free during the run ${gib(disk.minFree)} GiB (floor ${gib(MIN_FREE)} GiB)` +
        (block !== undefined ? `; RGW block file held ${gib(disk.blockMax)} GiB of the disk at most (${gib(block)} GiB now)` : '') +
        (serverConf ? `; radosgw-admin gc process ran ${disk.gcRuns} times, ${fmt(disk.gcSecs, 1)} s in all (untimed)${disk.gcFailed ? ` — ${disk.gcFailed}` : ''}` : ''),
    );
    results.disk = { minFreeBytes: disk.minFree, blockMaxBytes: disk.blockMax, gcRuns: disk.gcRuns, gcSecs: disk.gcSecs };
    stop();
  }
  return results;
}
