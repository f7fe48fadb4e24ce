// Issue #4 benchmark: deduplicated uploads to S3 (a real Ceph RGW), bucketsync against rclone.
//
// Fixture (seeded, built once in $BENCH_DIR/dedup/tree): a checkpoint series, 10 directories
// ckpt-00 … ckpt-09, each with a distinct 32 MiB model.safetensors, and the same config.json and
// tokenizer.json in every directory; ckpt-09's weights are also saved as consolidated.safetensors
// (one weights file under two names). Fixed mtimes.
//
// Runs, each tool into its own prefix of one fresh bucket, same command both times:
//   (1) initial upload;
//   (2) after renaming ckpt-05 → ckpt-05-best (a checkpoint promoted by the training script);
//   (3) bucketsync only: a no-op re-run.
// bucketsync: `sync --delete --dedup --track-renames`; rclone: `sync --track-renames` (rclone sync always
// deletes). Bytes sent are counted from the requests themselves: bucketsync from
// BUCKETSYNC_REQUEST_STATS (content bytes handed to PutObject/UploadPart), rclone from
// `--dump headers` (Content-Length of every PUT that is not a server-side copy). Also printed:
// the hash-cache hit rate of bucketsync's second run (from the same stats file).
// Targets: each distinct content is sent exactly once; the renamed directory costs zero uploaded
// bytes; second-run hash-cache hit rate 100 %.
//
// S3 server: $BENCH_S3_ENDPOINT if set (credentials test/testtest, as scripts/rgw.sh makes them),
// else a throwaway RGW started with scripts/rgw.sh (bench/s3.mjs's startRgw) and stopped at the end.
// rclone 1.60 fails on S3 when AWS_CA_BUNDLE is set, so rclone runs with it empty.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, fmt, have, machine, rng, scratch } from './lib.mjs';
import { peerEnvs, startRgw } from './s3.mjs';

const MiB = 1024 * 1024;
const CKPTS = 10;
const WEIGHTS = 32 * MiB;
const T0 = 1_700_000_000;
const RENAME_FROM = 'ckpt-05';
const RENAME_TO = 'ckpt-05-best';

/** Seeded bytes (32-bit words from mulberry32). */
function seeded(size, seed) {
  const rand = rng(seed);
  const words = new Uint32Array(Math.ceil(size / 4));
  for (let i = 0; i < words.length; i++) words[i] = (rand() * 4294967296) >>> 0;
  return Buffer.from(words.buffer, 0, size);
}

/** Builds the checkpoint series (once: a marker records the spec); returns its shape. */
export function buildFixture(root, seed = 4) {
  const spec = JSON.stringify({ CKPTS, WEIGHTS, seed, v: 1 });
  const marker = `${root}.spec.json`; // beside the tree, not in it (it would be synced)
  // an interrupted earlier run may have left the rename in place
  if (fs.existsSync(path.join(root, RENAME_TO)) && !fs.existsSync(path.join(root, RENAME_FROM))) {
    fs.renameSync(path.join(root, RENAME_TO), path.join(root, RENAME_FROM));
  }
  const config = Buffer.from(JSON.stringify({ architectures: ['LlamaForCausalLM'], hidden_size: 4096, num_layers: 32, vocab_size: 32000, rope_theta: 10000 }, null, 2));
  const tokenizer = seeded(2 * MiB + 123, seed + 1000);
  const files = [];
  for (let i = 0; i < CKPTS; i++) {
    const d = `ckpt-${String(i).padStart(2, '0')}`;
    files.push({ rel: `${d}/config.json`, size: config.length, content: 'config' });
    files.push({ rel: `${d}/model.safetensors`, size: WEIGHTS, content: `weights-${i}` });
    files.push({ rel: `${d}/tokenizer.json`, size: tokenizer.length, content: 'tokenizer' });
  }
  files.push({ rel: `ckpt-${String(CKPTS - 1).padStart(2, '0')}/consolidated.safetensors`, size: WEIGHTS, content: `weights-${CKPTS - 1}` });
  if (!(fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === spec)) {
    fs.rmSync(root, { recursive: true, force: true });
    for (const f of files) {
      const abs = path.join(root, f.rel);
      fs.mkdirSync(path.dirname(abs), { recursive: true });
      const n = f.content.startsWith('weights-') ? Number(f.content.slice(8)) : -1;
      fs.writeFileSync(abs, f.content === 'config' ? config : f.content === 'tokenizer' ? tokenizer : seeded(WEIGHTS, seed + n));
    }
    fs.writeFileSync(marker, spec);
  }
  files.forEach((f, i) => {
    const t = T0 + i;
    fs.utimesSync(path.join(root, f.rel), t, t);
  });
  const distinct = new Map(files.map((f) => [f.content, f.size]));
  return {
    files: files.length,
    totalBytes: files.reduce((a, f) => a + f.size, 0),
    distinctContents: distinct.size,
    distinctBytes: [...distinct.values()].reduce((a, b) => a + b, 0),
    renamedBytes: files.filter((f) => f.rel.startsWith(`${RENAME_FROM}/`)).reduce((a, f) => a + f.size, 0),
  };
}

function timed(cmd, args, env) {
  const t = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 256 * MiB });
  const secs = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr ?? '').slice(-3000)}`);
  return secs;
}

/** bucketsync's stats file: summed requests, content bytes sent, hash counters. */
function readStats(file) {
  const out = { requests: {}, bytesSent: 0, hashes: undefined };
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const o = JSON.parse(line);
    for (const [k, v] of Object.entries(o.requests ?? {})) out.requests[k] = (out.requests[k] ?? 0) + v;
    out.bytesSent += o.bytesSent ?? 0;
    if (o.hashes) out.hashes = o.hashes;
  }
  return out;
}

/** rclone --dump headers: content bytes of PUT requests (uploads and parts; copies excluded). */
function rcloneSent(log) {
  let bytes = 0;
  let puts = 0;
  let copies = 0;
  const blocks = fs.readFileSync(log, 'utf8').split(/DEBUG : HTTP REQUEST \(req [^)]*\)\n/).slice(1);
  for (const b of blocks) {
    const head = b.slice(0, b.search(/\n\S* ?\S* ?DEBUG : (>>>>|<<<<)/) >>> 0);
    if (!/DEBUG : PUT \S+ HTTP\//.test(head)) continue;
    if (/^X-Amz-Copy-Source:/im.test(head)) {
      copies++;
      continue;
    }
    const m = /^Content-Length:\s*(\d+)/im.exec(head);
    if (m) bytes += Number(m[1]);
    puts++;
  }
  return { bytes, puts, copies };
}

const mib = (n) => `${fmt(n / MiB, 1)} MiB`;

export async function run() {
  for (const [cmd, what] of [['rclone', 'rclone (apt-get install rclone)']]) if (!have(cmd)) throw new Error(`${what} is not installed`);
  const base = scratch('dedup');
  const tree = path.join(base, 'tree');
  console.error(`building the checkpoint series in ${tree} (seeded, reused when present)…`);
  const shape = buildFixture(tree);
  const work = fs.mkdtempSync(path.join(base, 'run-'));
  let rgw;
  let endpoint = process.env.BENCH_S3_ENDPOINT;
  const rgwDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bs-rgw-'));
  try {
    if (!endpoint) {
      console.error(`starting RGW in ${rgwDir}…`);
      rgw = await startRgw(rgwDir);
      endpoint = rgw.endpoint;
    }
    const bucket = `dedup-${Date.now().toString(36)}`;
    const { awsEnv, rcloneEnv } = peerEnvs(work, endpoint);
    const cacheDir = path.join(work, 'cache');
    let seq = 0;
    const ours = (extra = []) => {
      const stats = path.join(work, `stats-${seq++}.jsonl`);
      const secs = timed(
        process.execPath,
        [BIN, 'sync', tree, `s3://${bucket}/bucketsync`, '--endpoint-url', endpoint, '--delete', '--dedup', '--track-renames', '-q', ...extra],
        { ...awsEnv, BUCKETSYNC_CACHE_DIR: cacheDir, BUCKETSYNC_REQUEST_STATS: stats },
      );
      return { secs, ...readStats(stats) };
    };
    const theirs = () => {
      const log = path.join(work, `rclone-${seq++}.log`);
      const secs = timed('rclone', ['sync', '--track-renames', tree, `rgw:${bucket}/rclone`, '--dump', 'headers', '--log-file', log], rcloneEnv);
      return { secs, ...rcloneSent(log) };
    };

    console.error('run 1: initial upload (bucketsync, then rclone)…');
    const b1 = ours(['--create-bucket']);
    const r1 = theirs();
    console.error(`run 2: after renaming ${RENAME_FROM} → ${RENAME_TO}…`);
    fs.renameSync(path.join(tree, RENAME_FROM), path.join(tree, RENAME_TO));
    let b2;
    let r2;
    let b3;
    try {
      b2 = ours();
      r2 = theirs();
      console.error('run 3: bucketsync no-op re-run…');
      b3 = ours();
    } finally {
      fs.renameSync(path.join(tree, RENAME_TO), path.join(tree, RENAME_FROM));
    }

    const h2 = b2.hashes ?? { requests: 0, cacheHits: 0, filesRead: 0 };
    const hitRate = h2.requests > 0 ? h2.cacheHits / h2.requests : 1;
    const uploads = (req) => (req.PutObject ?? 0) + (req.UploadPart ?? 0);
    const copies = (req) => (req.CopyObject ?? 0) + (req.UploadPartCopy ?? 0);
    const result = {
      bench: 'dedup',
      machine: machine(),
      endpoint,
      fixture: shape,
      bucketsync: [b1, b2, b3].map((x) => ({ secs: x.secs, bytesSent: x.bytesSent, requests: x.requests, hashes: x.hashes })),
      rclone: [r1, r2].map((x) => ({ secs: x.secs, bytesSent: x.bytes, puts: x.puts, copies: x.copies })),
      secondRunHashHitRate: hitRate,
    };

    console.log(`\n## dedup: checkpoint series → S3 (RGW)  [${result.machine}]`);
    console.log(
      `fixture: ${shape.files} files, ${mib(shape.totalBytes)} in all, ${shape.distinctContents} distinct contents = ${mib(shape.distinctBytes)}; ` +
        `renamed directory: ${mib(shape.renamedBytes)}`,
    );
    console.log('| run | bytes in the tree | bucketsync sent | rclone sent | bucketsync uploads / copies | rclone uploads / copies | bucketsync time | rclone time |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    console.log(
      `| 1 initial | ${mib(shape.totalBytes)} | ${mib(b1.bytesSent)} | ${mib(r1.bytes)} | ${uploads(b1.requests)} / ${copies(b1.requests)} | ${r1.puts} / ${r1.copies} | ${fmt(b1.secs)} s | ${fmt(r1.secs)} s |`,
    );
    console.log(
      `| 2 after rename | ${mib(shape.totalBytes)} | ${mib(b2.bytesSent)} | ${mib(r2.bytes)} | ${uploads(b2.requests)} / ${copies(b2.requests)} | ${r2.puts} / ${r2.copies} | ${fmt(b2.secs)} s | ${fmt(r2.secs)} s |`,
    );
    console.log(`| 3 no-op | ${mib(shape.totalBytes)} | ${mib(b3.bytesSent)} | – | ${uploads(b3.requests)} / ${copies(b3.requests)} | – | ${fmt(b3.secs)} s | – |`);
    console.log(`(uploads = PutObject + UploadPart requests; rclone counted from --dump headers)`);
    console.log(
      `hash cache, run 2: ${h2.requests} hashes needed, ${h2.cacheHits} from the cache, ${h2.filesRead} files read → hit rate ${fmt(hitRate * 100, 1)} %` +
        (b1.hashes ? `; run 1 read ${b1.hashes.filesRead} files (${mib(b1.hashes.bytesRead)})` : ''),
    );
    const met = (ok) => (ok ? 'MET' : 'NOT MET');
    console.log(`each distinct content sent once: bucketsync sent ${mib(b1.bytesSent)} of ${mib(shape.distinctBytes)} distinct → ${met(b1.bytesSent === shape.distinctBytes)}`);
    console.log(`renamed directory costs zero uploaded bytes: bucketsync sent ${b2.bytesSent} B in run 2 → ${met(b2.bytesSent === 0)}`);
    console.log(`second-run hash-cache hit rate 100 %: ${fmt(hitRate * 100, 1)} % → ${met(hitRate === 1)}`);
    return result;
  } finally {
    rgw?.stop();
    fs.rmSync(rgwDir, { recursive: true, force: true });
    if (!process.env.BENCH_KEEP) fs.rmSync(work, { recursive: true, force: true });
  }
}
