// `npm run bench -- hf-big [--size MiB[,MiB]] [--runs N]`: one big seeded file (default 256 MiB
// and 1 GiB) local → hf://buckets and back through Xet, bucketsync (`bucketsync sync`) against
// the reference client `hf buckets sync` (huggingface_hub 2.0 + hf_xet), both against the local
// Hub+Xet test server (test/hf-server), interleaved, medians of N (3): wall time, client CPU
// seconds (user + sys of the client's process tree, GNU time) per GiB, peak RSS, and the CPU the
// server spent on the same transfer (measured in the server's process, which runs apart).
//
// Every upload goes to a fresh server (no chunk of an earlier run to dedup against: both clients
// send the whole file); both downloads read the file `hf` uploaded (the common case: a checkpoint
// published with `hf`). Each result is checked byte for byte (MD5) against the source, untimed.
//
// Then (`--kill`, on by default) a 256 MiB bucketsync upload is SIGKILLed once the server has
// received about half of the file's bytes, and run again: the xorb bytes the server received in
// both runs, against the file size, and whether the bucket's file is byte-identical.
//
// `hf`: BUCKETSYNC_HF_CLI, else .tmp/hf-venv/bin/hf. Needs GNU time.
// The server process: this script with `--serve DIR`, on the same Node, running the test
// server's TypeScript through Node's type stripping (a resolve hook maps `./x.js` to `./x.ts`).
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import fs from 'node:fs';
import { registerHooks } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BIN, ROOT, fmt, machine, median, md5File, scratch } from './lib.mjs';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const TOKEN = 'hf_test_token';
const BUCKET = 'bench/big';
const GNU_TIME = ['/usr/bin/time', '/bin/time'].find((p) => fs.existsSync(p));
const SELF = fileURLToPath(import.meta.url);

// ---- the server process ------------------------------------------------------------------------

/** `--serve DIR`: starts the test server, prints `{url, casUrl}`, then answers JSON commands on stdin. */
async function serve(dir) {
  registerHooks({
    resolve(spec, ctx, next) {
      if (spec.startsWith('.') && spec.endsWith('.js') && ctx.parentURL?.endsWith('.ts')) {
        const u = new URL(spec, ctx.parentURL);
        if (!fs.existsSync(u) && fs.existsSync(new URL(u.href.replace(/\.js$/, '.ts')))) return next(spec.replace(/\.js$/, '.ts'), ctx);
      }
      return next(spec, ctx);
    },
  });
  const { startHfServer } = await import('../test/hf-server/index.ts');
  const server = await startHfServer({ dir });
  server.createBucket(BUCKET);
  const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
  out({ url: server.url, casUrl: server.casUrl });
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line);
    if (cmd.op === 'stats') {
      const cpu = process.cpuUsage();
      out({ stats: server.stats, cpu: (cpu.user + cpu.system) / 1e6, files: server.listBucket(BUCKET).map((f) => ({ path: f.path, size: f.size, xetHash: f.xetHash })) });
    } else if (cmd.op === 'md5') {
      const buf = await server.readFile(BUCKET, cmd.path);
      out({ md5: createHash('md5').update(buf).digest('hex') });
    } else if (cmd.op === 'close') {
      await server.close();
      out({ closed: true });
      process.exit(0);
    }
  }
}

/** A server in its own process; `ask(op)` sends a command and resolves with the answer. */
async function startServer(node) {
  const dir = fs.mkdtempSync(path.join(scratch('hf-big'), 'server-'));
  const child = spawn(node, ['--experimental-transform-types', '--no-warnings', '--max-old-space-size=4096', SELF, '--serve', dir], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = [];
  lines.on('line', (l) => waiting.shift()?.(JSON.parse(l)));
  const next = () => new Promise((r) => waiting.push(r));
  const hello = await next();
  return {
    ...hello,
    pid: child.pid,
    ask(op, extra = {}) {
      const p = next();
      child.stdin.write(`${JSON.stringify({ op, ...extra })}\n`);
      return p;
    },
    async close() {
      const p = new Promise((r) => child.on('exit', r));
      child.stdin.write(`${JSON.stringify({ op: 'close' })}\n`);
      await p;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- helpers -------------------------------------------------------------------------------------

/** A seeded file of `bytes` of random-looking content (AES-CTR keystream): no chunk repeats, nothing compresses. */
function seededFile(file, bytes) {
  if (fs.existsSync(file) && fs.statSync(file).size === bytes) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 42), Buffer.alloc(16, 7));
  const zeros = Buffer.alloc(MiB);
  const fd = fs.openSync(file, 'w');
  for (let off = 0; off < bytes; off += MiB) fs.writeSync(fd, cipher.update(zeros), 0, Math.min(MiB, bytes - off));
  fs.closeSync(fd);
  fs.utimesSync(file, 1_700_000_000, 1_700_000_000);
}

/** One timed run (without blocking the event loop): wall s, client CPU s (user + sys), peak RSS MB. */
function timed(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(GNU_TIME, ['-f', '%e %M %U %S', cmd, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d.toString()));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err.slice(-2000)}`));
      const [secs, kb, user, sys] = err.trim().split('\n').pop().split(' ').map(Number);
      resolve({ secs, rssMb: kb / 1024, cpu: user + sys });
    });
  });
}

function hfEnv(server, home) {
  return {
    HF_ENDPOINT: server.url,
    HF_TOKEN: TOKEN,
    HF_HOME: home,
    HOME: home,
    HF_HUB_DISABLE_TELEMETRY: '1',
    HF_HUB_DISABLE_UPDATE_CHECK: '1',
    HF_HUB_DISABLE_PROGRESS_BARS: '1',
    NO_COLOR: '1',
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
  };
}

function bsEnv(server, home) {
  return { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: home, BUCKETSYNC_CACHE_DIR: path.join(home, 'cache') };
}

/** A fresh empty directory under the scratch dir. */
function fresh(name) {
  const d = path.join(scratch('hf-big'), name);
  fs.rmSync(d, { recursive: true, force: true });
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** Runs one transfer with the server's CPU measured around it. */
async function transfer(server, cmd, args, env) {
  const before = await server.ask('stats');
  const r = await timed(cmd, args, env);
  const after = await server.ask('stats');
  return { ...r, serverCpu: after.cpu - before.cpu, xorbBytes: after.stats.xorbBytesReceived - before.stats.xorbBytesReceived, files: after.files };
}

function row(label, runs, bytes) {
  const gib = bytes / GiB;
  const m = (k) => median(runs.map((r) => r[k]));
  return {
    label,
    wall: m('secs'),
    cpuPerGiB: m('cpu') / gib,
    rssMb: m('rssMb'),
    serverCpuPerGiB: m('serverCpu') / gib,
    runs: runs.map((r) => ({ secs: r.secs, cpu: r.cpu, rssMb: r.rssMb, serverCpu: r.serverCpu })),
  };
}

function printRows(title, rows) {
  console.log(`\n${title}`);
  console.log('  tool          wall s   client CPU s/GiB   peak RSS MB   server CPU s/GiB');
  for (const r of rows) {
    console.log(`  ${r.label.padEnd(12)} ${fmt(r.wall).padStart(7)}   ${fmt(r.cpuPerGiB).padStart(16)}   ${fmt(r.rssMb, 0).padStart(11)}   ${fmt(r.serverCpuPerGiB).padStart(16)}`);
  }
}

// ---- the benchmark -------------------------------------------------------------------------------

async function measureSize(node, hf, sizeMiB, runs) {
  const bytes = sizeMiB * MiB;
  const srcDir = path.join(scratch('hf-big'), `src-${sizeMiB}`);
  const srcFile = path.join(srcDir, 'big.bin');
  seededFile(srcFile, bytes);
  const want = md5File(srcFile);
  const res = { bsUp: [], hfUp: [], bsDown: [], hfDown: [] };
  for (let i = 0; i < runs; i++) {
    // Uploads, each to a fresh server (nothing to dedup against).
    let server = await startServer(node);
    try {
      const home = fresh('home-bs');
      const r = await transfer(server, process.execPath, [BIN, 'sync', srcDir, `hf://buckets/${BUCKET}/bs`], bsEnv(server, home));
      if ((await server.ask('md5', { path: 'bs/big.bin' })).md5 !== want) throw new Error('bucketsync upload: the bucket file differs from the source');
      res.bsUp.push(r);
    } finally {
      await server.close();
    }
    server = await startServer(node);
    try {
      const home = fresh('home-hf');
      const r = await transfer(server, hf, ['buckets', 'sync', srcDir, `hf://buckets/${BUCKET}/hf`], hfEnv(server, home));
      if ((await server.ask('md5', { path: 'hf/big.bin' })).md5 !== want) throw new Error('hf upload: the bucket file differs from the source');
      res.hfUp.push(r);
      // Downloads of what hf uploaded, alternating which tool goes first.
      const order = i % 2 === 0 ? ['bs', 'hf'] : ['hf', 'bs'];
      for (const tool of order) {
        const dest = fresh(`down-${tool}`);
        const h = fresh(`home-${tool}-down`);
        const d =
          tool === 'bs'
            ? await transfer(server, process.execPath, [BIN, 'sync', `hf://buckets/${BUCKET}/hf`, dest], bsEnv(server, h))
            : await transfer(server, hf, ['buckets', 'sync', `hf://buckets/${BUCKET}/hf`, dest], hfEnv(server, h));
        if (md5File(path.join(dest, 'big.bin')) !== want) throw new Error(`${tool} download: the file differs from the source`);
        fs.rmSync(dest, { recursive: true, force: true });
        (tool === 'bs' ? res.bsDown : res.hfDown).push(d);
      }
    } finally {
      await server.close();
    }
    process.stderr.write(`  ${sizeMiB} MiB: run ${i + 1}/${runs} done\n`);
  }
  const up = [row('bucketsync', res.bsUp, bytes), row('hf', res.hfUp, bytes)];
  const down = [row('bucketsync', res.bsDown, bytes), row('hf', res.hfDown, bytes)];
  printRows(`${sizeMiB} MiB upload (local → hf://buckets), medians of ${runs}`, up);
  printRows(`${sizeMiB} MiB download (hf://buckets → local), medians of ${runs}`, down);
  const ratio = (rows) => rows[0].cpuPerGiB / rows[1].cpuPerGiB;
  const wallRatio = (rows) => rows[0].wall / rows[1].wall;
  console.log(
    `  ratios bucketsync/hf: upload CPU ${fmt(ratio(up))}× (target ≤ 1.5×${ratio(up) <= 1.5 ? ', met' : ', NOT met'}), wall ${fmt(wallRatio(up))}×; ` +
      `download CPU ${fmt(ratio(down))}× (target ≤ 1.5×${ratio(down) <= 1.5 ? ', met' : ', NOT met'}), wall ${fmt(wallRatio(down))}×`,
  );
  return { sizeMiB, upload: up, download: down, cpuRatio: { upload: ratio(up), download: ratio(down) } };
}

/** SIGKILL a bucketsync upload once the server holds about half the file, then run it again. */
async function killResume(node, sizeMiB) {
  const bytes = sizeMiB * MiB;
  const srcDir = path.join(scratch('hf-big'), `src-${sizeMiB}`);
  const srcFile = path.join(srcDir, 'big.bin');
  seededFile(srcFile, bytes);
  const want = md5File(srcFile);
  const server = await startServer(node);
  try {
    const home = fresh('home-kill');
    const env = { ...process.env, ...bsEnv(server, home) };
    const args = ['sync', srcDir, `hf://buckets/${BUCKET}/kill`];
    // On this Node directly: bin/bucketsync under an older system Node hands over to a child
    // process, and a SIGKILL of the launcher would leave that child running.
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', (code, signal) => r(signal ?? code)));
    let killedAt = 0;
    for (;;) {
      const s = await server.ask('stats');
      if (s.stats.xorbBytesReceived >= bytes / 2) {
        child.kill('SIGKILL');
        killedAt = s.stats.xorbBytesReceived;
        break;
      }
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const how = await exited;
    const first = (await server.ask('stats')).stats.xorbBytesReceived;
    const r = spawnSync(process.execPath, [BIN, ...args, '-v', '--no-progress'], { env, encoding: 'utf8' });
    const resumed = /Resumed: .*/.exec(r.stderr ?? '')?.[0];
    if (r.status !== 0) throw new Error(`the re-run failed (${r.status}): ${r.stderr}`);
    const total = (await server.ask('stats')).stats.xorbBytesReceived;
    const same = (await server.ask('md5', { path: 'kill/big.bin' })).md5 === want;
    console.log(
      `\nkill at ~50 % of a ${sizeMiB} MiB upload (${how === 'SIGKILL' ? `SIGKILL after ${fmt(killedAt / MiB, 0)} MiB` : `not killed: exited ${how}`}), then re-run:\n` +
        `  xorb bytes received: ${fmt(first / MiB, 0)} MiB before the kill, ${fmt((total - first) / MiB, 0)} MiB by the re-run, ` +
        `${fmt(total / bytes)}× the file in total (target ≤ 1.1×${total <= 1.1 * bytes ? ', met' : ', NOT met'}); result byte-identical: ${same ? 'yes' : 'NO'}` +
        (resumed ? `\n  the re-run said: ${resumed.trim()}` : ''),
    );
    return { sizeMiB, killedAt, first, total, ratio: total / bytes, identical: same };
  } finally {
    await server.close();
  }
}

export async function run({ sizes = [256, 1024], runs = 3, kill = true } = {}) {
  if (!GNU_TIME) throw new Error('GNU time is needed: apt-get install time');
  const hf = process.env.BUCKETSYNC_HF_CLI ?? path.join(ROOT, '.tmp', 'hf-venv', 'bin', 'hf');
  if (!fs.existsSync(hf)) throw new Error(`no hf CLI at ${hf}: set BUCKETSYNC_HF_CLI`);
  const hfVersion = spawnSync(hf, ['version'], { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' } }).stdout.replace(/\x1b\[[0-9;]*m/g, '').replace(/\s+/g, ' ').trim();
  const node = process.execPath;
  console.log(`hf-big: ${machine()}; ${hfVersion}`);
  const results = [];
  // `--size 0`: only the kill-and-resume measurement.
  for (const s of sizes.filter((x) => x > 0)) results.push(await measureSize(node, hf, s, runs));
  const resume = kill ? await killResume(node, 256) : undefined;
  return { suite: 'hf-big', machine: machine(), hf: hfVersion, results, resume };
}

if (process.argv[2] === '--serve') await serve(process.argv[3]);
