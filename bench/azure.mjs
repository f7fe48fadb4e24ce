// Issue 16 benchmark: local → Azure Blob Storage against Azurite (Microsoft's emulator, the
// `azurite` devDependency, started here on a free loopback port, its data in the scratch folder,
// and always stopped).
//
// The seeded tree of bench/s3.mjs (3,000 distinct files of 1–16 KiB in 120 directories + four
// 12 MiB files, which bucketsync sends as staged blocks), three scenarios, all in the same run:
//   (1) initial upload into an empty container (a fresh container per repetition; the previous
//       one is deleted, untimed),
//   (2) no-op re-run,
//   (3) re-run after touching 1 % of the files (mtime set to now, content unchanged);
//   tools: bucketsync (`--transfers 16`), `rclone sync` (defaults: 4 transfers / 8 checkers) and
//   `rclone sync --transfers 16 --checkers 16`, rclone's azureblob backend reaching Azurite through
//   `:azureblob,use_emulator=true,endpoint='http://127.0.0.1:PORT/devstoreaccount1':container`
//   (Debian's rclone 1.60; its --azureblob-endpoint flag alone does not work).
// Every tool mirrors (bucketsync gets --delete; nothing is ever deleted).
//
// Timing: GNU time (wall seconds, CPU seconds = user + sys, peak RSS) per run, runs interleaved
// across tools (the order rotates each repetition), medians reported. Azurite runs on the same
// machine: its CPU competes with the tool being measured, and on a shared machine wall times
// mostly measure the load — CPU seconds say what each tool costs.
// Request counts come from one extra, untimed run per tool and scenario through a counting HTTP
// proxy in this process (by operation: the query's `comp`/`restype` and the method).
// Targets: no-op ≥ 3x faster than rclone (defaults) with requests ≈ listing pages; upload and
// touch no slower than rclone.
//
// Scratch: $BENCH_DIR/azure/ (default /tmp/bucketsync-bench), removed at the end unless BENCH_KEEP=1.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { BIN, ROOT, fmt, have, machine, median, scratch } from './lib.mjs';
import { buildTree } from './s3.mjs';

const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const AZURITE = path.join(ROOT, 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js');

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

export async function startAzurite(dir) {
  const port = await freePort();
  // On disk in the scratch folder: in memory, Azurite 3.37 stopped answering after ~900 MiB of
  // uploads and deletes (its extents are freed only by a periodic GC).
  const child = spawn(process.execPath, [AZURITE, '--location', dir, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--disableTelemetry', '--skipApiVersionCheck', '--silent'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const deadline = Date.now() + 60_000;
  while (!/successfully listen/i.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`Azurite did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = () => child.exitCode === null && child.kill('SIGTERM');
  process.once('exit', stop);
  return { endpoint: `http://127.0.0.1:${port}/${DEV_ACCOUNT}`, port, pid: child.pid, stop };
}

/** A counting HTTP proxy in front of Azurite: counts[operation] per request. */
async function startCounter(targetPort) {
  const counts = {};
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const server = http.createServer((req, res) => {
    const q = new URL(req.url, 'http://x').searchParams;
    const op = `${req.method} ${q.get('comp') ?? (q.get('restype') ? `restype=${q.get('restype')}` : 'blob')}`;
    counts[op] = (counts[op] ?? 0) + 1;
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${server.address().port}/${DEV_ACCOUNT}`,
    take() {
      const c = { ...counts };
      for (const k of Object.keys(counts)) delete counts[k];
      return c;
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

function measure(cmd, args, env) {
  const GNU_TIME = ['/usr/bin/time', '/bin/time'].find((p) => fs.existsSync(p));
  if (!GNU_TIME) throw new Error('GNU time is needed for peak RSS: apt-get install time');
  const r = spawnSync(GNU_TIME, ['-f', '%e %M %U %S', cmd, ...args], { encoding: 'utf8', env, maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${String(r.stderr).slice(-2000)}`);
  const [secs, kb, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { secs, rssMb: kb / 1024, cpuSecs: user + sys };
}

function runAsync(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err.slice(-2000)}`))));
  });
}

/** Untimed chores (containers) through bucketsync's own client. */
export async function admin(endpoint) {
  const { AzureClient } = await import(path.join(ROOT, 'dist', 'stores', 'azure', 'client.js'));
  const { AzureAdmin } = await import(path.join(ROOT, 'dist', 'stores', 'azure', 'admin.js'));
  const { resolveAzureConfig } = await import(path.join(ROOT, 'dist', 'stores', 'azure', 'credentials.js'));
  const { parseBlobList } = await import(path.join(ROOT, 'dist', 'stores', 'azure', 'store.js'));
  const client = new AzureClient(resolveAzureConfig({ AZURE_STORAGE_CONNECTION_STRING: connString(endpoint) }));
  const a = new AzureAdmin(client);
  return {
    create: (c) => a.createContainer(c, true),
    remove: (c) => a.deleteContainer(c, true),
    /** Seconds for one bare listing of `c` (every page, metadata included): the server's share of a no-op. */
    async listSecs(c) {
      const t = performance.now();
      let marker;
      do {
        const res = await client.request({ op: 'ListBlobs', method: 'GET', container: c, query: { restype: 'container', comp: 'list', include: 'metadata', maxresults: '5000', marker } });
        marker = parseBlobList(res.body).next || undefined;
      } while (marker);
      return (performance.now() - t) / 1000;
    },
    async count(c) {
      let n = 0;
      let marker;
      do {
        const res = await client.request({ op: 'ListBlobs', method: 'GET', container: c, query: { restype: 'container', comp: 'list', maxresults: '5000', marker } });
        const page = parseBlobList(res.body);
        n += page.blobs.length;
        marker = page.next || undefined;
      } while (marker);
      return n;
    },
    /** Size and Content-MD5 (base64) of one blob, undefined when it does not exist. */
    async props(c, blob) {
      const res = await client.request({ op: 'GetBlobProperties', method: 'HEAD', container: c, blob }).catch((e) => (e.status === 404 ? undefined : Promise.reject(e)));
      return res && { size: Number(res.headers['content-length']), contentMd5: res.headers['content-md5'] };
    },
    deleteBlob: (c, blob) => client.request({ op: 'DeleteBlob', method: 'DELETE', container: c, blob }),
    /** The MD5 (hex) of one blob's bytes, read whole. */
    async md5(c, blob) {
      const res = await client.request({ op: 'GetBlob', method: 'GET', container: c, blob, stream: true });
      const h = createHash('md5');
      for await (const chunk of res.stream) h.update(chunk);
      return h.digest('hex');
    },
    close: () => client.destroy(),
  };
}

export function connString(endpoint) {
  return `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};BlobEndpoint=${endpoint};`;
}

export async function run({ runs = 3, transfers = 16 } = {}) {
  if (!have('rclone')) throw new Error('rclone is needed (apt-get install rclone)');
  const root = scratch('azure');
  const tree = path.join(root, 'tree');
  const shape = buildTree(tree, {});
  const azDir = path.join(root, 'azurite');
  fs.mkdirSync(azDir, { recursive: true });
  const az = await startAzurite(azDir);
  const counter = await startCounter(az.port);
  const adm = await admin(az.endpoint);
  const baseEnv = { ...process.env };
  delete baseEnv.AWS_CA_BUNDLE; // rclone 1.60 fails with it set
  const tools = [
    {
      key: 'bucketsync',
      label: `bucketsync (--transfers ${transfers})`,
      cmd: (c, ep) => [process.execPath, [BIN, 'sync', tree, `az://${c}/t`, '--delete', '--transfers', String(transfers), '--no-progress'], { ...baseEnv, AZURE_STORAGE_CONNECTION_STRING: connString(ep), BUCKETSYNC_CACHE_DIR: path.join(root, 'cache') }],
    },
    { key: 'rclone', label: 'rclone sync (defaults)', cmd: (c, ep) => ['rclone', ['--config', '/dev/null', 'sync', tree, `:azureblob,use_emulator=true,endpoint='${ep}':${c}/t`], baseEnv] },
    {
      key: 'rclone16',
      label: 'rclone sync --transfers 16 --checkers 16',
      cmd: (c, ep) => ['rclone', ['--config', '/dev/null', 'sync', '--transfers', '16', '--checkers', '16', tree, `:azureblob,use_emulator=true,endpoint='${ep}':${c}/t`], baseEnv],
    },
  ];
  const results = Object.fromEntries(tools.map((t) => [t.key, { label: t.label, init: [], noop: [], touch: [], requests: {} }]));
  const rotate = (r) => tools.map((_, i) => tools[(i + r) % tools.length]);
  const t0 = Date.now();
  const log = (m) => console.error(`[${fmt((Date.now() - t0) / 1000, 0)} s] ${m}`);
  const timed = (tool, c) => {
    const [cmd, args, env] = tool.cmd(c, az.endpoint);
    return measure(cmd, args, env);
  };
  const counted = async (tool, c) => {
    const [cmd, args, env] = tool.cmd(c, counter.endpoint);
    counter.take();
    await runAsync(cmd, args, env);
    return counter.take();
  };
  const steady = {};
  try {
    for (let r = 0; r < runs; r++) {
      for (const tool of rotate(r)) {
        const c = `${tool.key}-init-${r + 1}`;
        await adm.create(c);
        const m = timed(tool, c);
        const n = await adm.count(c);
        if (n !== shape.files.length) throw new Error(`${tool.label}: ${c} holds ${n} blobs after the upload, expected ${shape.files.length}`);
        results[tool.key].init.push(m);
        log(`initial upload ${r + 1}/${runs}: ${tool.label}: ${fmt(m.secs)} s, ${fmt(m.cpuSecs)} s CPU, ${fmt(m.rssMb, 0)} MB`);
        if (r < runs - 1) await adm.remove(c);
        else steady[tool.key] = c;
      }
    }
    const floor = [];
    for (let r = 0; r < runs; r++) {
      floor.push(await adm.listSecs(steady.bucketsync));
      log(`bare listing ${r + 1}/${runs}: ${fmt(floor.at(-1))} s`);
      for (const tool of rotate(r)) {
        const m = timed(tool, steady[tool.key]);
        results[tool.key].noop.push(m);
        log(`no-op ${r + 1}/${runs}: ${tool.label}: ${fmt(m.secs)} s, ${fmt(m.cpuSecs)} s CPU`);
      }
    }
    const touch = toucher(tree, shape.files);
    for (let r = 0; r < runs; r++) {
      touch.touch();
      for (const tool of rotate(r)) {
        const m = timed(tool, steady[tool.key]);
        results[tool.key].touch.push(m);
        log(`touch ${touch.n} files ${r + 1}/${runs}: ${tool.label}: ${fmt(m.secs)} s, ${fmt(m.cpuSecs)} s CPU`);
      }
    }
    log('counting requests (extra untimed runs through the counting proxy)…');
    for (const tool of tools) {
      const c = `${tool.key}-count`;
      await adm.create(c);
      results[tool.key].requests.init = await counted(tool, c);
      await adm.remove(c);
    }
    for (const tool of tools) results[tool.key].requests.noop = await counted(tool, steady[tool.key]);
    touch.touch();
    for (const tool of tools) results[tool.key].requests.touch = await counted(tool, steady[tool.key]);
    return report({ tools, results, shape, runs, touched: touch.n, floor: median(floor) });
  } finally {
    adm.close();
    await counter.close();
    az.stop();
    if (process.env.BENCH_KEEP !== '1') fs.rmSync(root, { recursive: true, force: true });
  }
}

/** A seeded choice of 1 % of the files; `touch()` sets mtime = now on the next slice. */
function toucher(root, files) {
  const order = [...files].sort((a, b) => (hash(a) - hash(b)) || (a < b ? -1 : 1));
  const n = Math.max(1, Math.round(files.length / 100));
  let round = 0;
  return {
    n,
    touch() {
      const slice = order.slice(round * n, (round + 1) * n);
      round++;
      const now = Date.now() / 1000;
      for (const f of slice) fs.utimesSync(path.join(root, f), now, now);
    },
  };
}

function hash(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

export function versions() {
  const rc = /v\d[\w.-]*/.exec(spawnSync('rclone', ['version'], { encoding: 'utf8' }).stdout ?? '')?.[0];
  const azurite = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'azurite', 'package.json'), 'utf8')).version;
  return `bucketsync ${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}, rclone ${rc}, Azurite ${azurite}`;
}

const fmtCounts = (c) =>
  c
    ? Object.entries(c)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || '0'
    : 'n/a';
const total = (c) => Object.values(c ?? {}).reduce((a, b) => a + b, 0);

function report({ tools, results, shape, runs, touched, floor }) {
  const med = (ms, k = 'secs') => median(ms.map((m) => m[k]));
  const summary = {};
  for (const t of tools) {
    const r = results[t.key];
    summary[t.key] = {
      label: r.label,
      ...Object.fromEntries(
        ['init', 'noop', 'touch'].map((s) => [s, { medianSecs: med(r[s]), medianCpuSecs: med(r[s], 'cpuSecs'), peakRssMb: Math.max(...r[s].map((m) => m.rssMb)), all: r[s].map((m) => m.secs), allCpu: r[s].map((m) => m.cpuSecs), requests: r.requests[s] }]),
      ),
    };
  }
  const result = { bench: 'azure (local → Azurite)', files: shape.files.length, bytes: shape.bytes, runs, touched, listingFloorSecs: floor, machine: machine(), versions: versions(), tools: summary };
  const cell = (s) => `${fmt(s.medianSecs)} s · ${fmt(s.medianCpuSecs)} s CPU · ${fmt(s.peakRssMb, 0)} MB`;
  console.log(`\n## local → Azure Blob (Azurite on loopback), ${shape.files.length} files / ${fmt(shape.bytes / 2 ** 20, 1)} MiB, medians of ${runs} interleaved runs  [${result.machine}; ${result.versions}]`);
  console.log(`| tool | initial upload | no-op re-run | touch 1 % (${touched} files, mtime only) |`);
  console.log('| --- | --- | --- | --- |');
  for (const t of tools) console.log(`| ${summary[t.key].label} | ${cell(summary[t.key].init)} | ${cell(summary[t.key].noop)} | ${cell(summary[t.key].touch)} |`);
  console.log('\n(median wall time · median CPU time, user + sys · peak RSS)\n\nRequests, from one extra untimed run each through a counting proxy (total: by operation):');
  console.log('| tool | initial upload | no-op re-run | touch 1 % |');
  console.log('| --- | --- | --- | --- |');
  for (const t of tools) {
    const s = summary[t.key];
    console.log(`| ${s.label} | ${total(s.init.requests)}: ${fmtCounts(s.init.requests)} | ${total(s.noop.requests)}: ${fmtCounts(s.noop.requests)} | ${total(s.touch.requests)}: ${fmtCounts(s.touch.requests)} |`);
  }
  console.log(`\nAzurite's own share of a no-op: one bare listing of the ${shape.files.length} blobs (every page, metadata included, from a warm process) takes ${fmt(floor)} s (median); above it, bucketsync's no-op spends ${fmt(summary.bucketsync.noop.medianSecs - floor)} s, rclone's ${fmt(summary.rclone.noop.medianSecs - floor)} s.`);
  const b = summary.bucketsync;
  const ratio = (other, scen, k = 'medianSecs') => summary[other][scen][k] / b[scen][k];
  const line = (text, x, target) => console.log(`${text} = ${fmt(x)}x${target ? ` (target ≥ ${target}x) ${x >= target ? 'MET' : 'NOT MET'}` : ''}`);
  console.log('');
  line('ratio no-op re-run    rclone defaults / bucketsync', ratio('rclone', 'noop'), 3);
  line('ratio initial upload  rclone defaults / bucketsync', ratio('rclone', 'init'), 1);
  line('ratio touch 1 %       rclone defaults / bucketsync', ratio('rclone', 'touch'), 1);
  line('ratio initial upload  rclone --transfers 16 / bucketsync', ratio('rclone16', 'init'), 1);
  line('ratio no-op re-run    rclone --transfers 16 / bucketsync', ratio('rclone16', 'noop'));
  line('ratio touch 1 %       rclone --transfers 16 / bucketsync', ratio('rclone16', 'touch'), 1);
  line('ratio no-op above the bare listing  rclone defaults / bucketsync', (summary.rclone.noop.medianSecs - floor) / (b.noop.medianSecs - floor));
  line('CPU-time ratio no-op  rclone defaults / bucketsync', ratio('rclone', 'noop', 'medianCpuSecs'));
  line('CPU-time ratio upload rclone defaults / bucketsync', ratio('rclone', 'init', 'medianCpuSecs'));
  result.ratios = { noopVsRclone: ratio('rclone', 'noop'), initVsRclone: ratio('rclone', 'init'), touchVsRclone: ratio('rclone', 'touch'), initVsRclone16: ratio('rclone16', 'init') };
  return result;
}
