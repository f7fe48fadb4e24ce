// `npm run bench -- azure-big [--size MiB[,MiB]] [--runs N] [--only kill|throughput]`: one big
// seeded file (default 256 MiB and 1 GiB) local → Azure Blob and back, against Azurite (the
// `azurite` devDependency, started here on a free loopback port, its data in the scratch
// folder, stopped at the end; bench/azure.mjs), bucketsync against rclone's azureblob backend
// (defaults: 4 MiB blocks, 16 in flight up, `--multi-thread-streams 4` down above 250 MiB; and
// tuned: `--azureblob-chunk-size 16M --azureblob-upload-concurrency 8` up,
// `--multi-thread-streams 8` down), interleaved (the order rotates each repetition), medians of
// N (3): wall time, client CPU seconds (user + sys of the process tree, GNU time) per GiB, peak
// RSS, and Azurite's own CPU seconds per GiB meanwhile (from /proc): on a machine where client
// and emulator share two cores, the emulator's CPU decides much of the wall time.
//
// Every upload goes to its own blob name, is checked (size and Content-MD5 after every run, the
// bytes read back and hashed after the first) and deleted; every download reads the same
// reference blob (uploaded once by bucketsync, untimed) and is checked byte for byte (MD5)
// against the source, then removed.
//
// Then bucketsync is SIGKILLed at about half of an upload and of a download (of the bytes a
// TCP relay in front of Azurite has carried) and run again: the bytes that went over the wire
// in both runs against the file, and whether the result is byte-identical. An upload resumes
// from its staged (uncommitted) blocks; a download from the temporary file its `.resume`
// record keeps, where the store can continue a read (`readFrom`).
//
// Scratch: $BENCH_DIR/azure-big/ (default /tmp/bucketsync-bench), removed at the end unless
// BENCH_KEEP=1. Needs rclone and GNU time.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, fmt, have, machine, md5File, procCpuSecs, scratch, transferRows } from './lib.mjs';
import { admin, connString, startAzurite, versions } from './azure.mjs';
import { relay, runAndKillAt, seededFile, timedAsync } from './big.mjs';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const CONTAINER = 'bench-big';

export async function run({ sizes = [256, 1024], runs = 3, only } = {}) {
  if (only !== undefined && only !== 'kill' && only !== 'throughput') throw new Error(`bench azure-big: --only takes 'kill' or 'throughput', not '${only}'`);
  if (!have('rclone')) throw new Error('bench azure-big needs rclone (apt-get install rclone)');
  const work = scratch('azure-big');
  const azDir = path.join(work, 'azurite');
  fs.mkdirSync(azDir, { recursive: true });
  const az = await startAzurite(azDir);
  const adm = await admin(az.endpoint);
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE; // rclone 1.60 fails with it set
  const cache = path.join(work, 'cache');
  const bsEnv = (endpoint) => ({ ...env, AZURE_STORAGE_CONNECTION_STRING: connString(endpoint), BUCKETSYNC_CACHE_DIR: cache });
  const remote = (endpoint, p) => `:azureblob,use_emulator=true,endpoint='${endpoint}':${CONTAINER}/${p}`;
  const rclone = (args) => ['rclone', ['--config', '/dev/null', ...args], env];
  const load = () => os.loadavg().map((x) => fmt(x)).join(' ');
  const results = { suite: 'azure-big', machine: machine(), versions: versions(), sizes: [] };
  console.log(`bench azure-big: ${results.machine}; ${results.versions}; Azurite at ${az.endpoint} (pid ${az.pid}); medians of ${runs}`);
  /** One timed run: wall s, client CPU s, peak RSS MB, and Azurite's CPU s meanwhile. */
  const timed = async ([cmd, args, e], what) => {
    const s0 = procCpuSecs(az.pid);
    const r = await timedAsync(cmd, args, e, what);
    return { ...r, server: procCpuSecs(az.pid) - s0 };
  };
  try {
    await adm.create(CONTAINER);
    for (const mib of sizes) {
      const bytes = mib * MiB;
      const gibs = bytes / GiB;
      const src = path.join(work, `src-${mib}`);
      const file = path.join(src, 'big.bin');
      seededFile(file, bytes);
      const srcMd5 = md5File(file);
      const srcMd5b64 = Buffer.from(srcMd5, 'hex').toString('base64');
      const blob = (p) => `${p}/big.bin`;
      const up = [
        ['bucketsync', (p) => [process.execPath, [BIN, 'sync', src, `az://${CONTAINER}/${p}`, '-q'], bsEnv(az.endpoint)]],
        ['rclone', (p) => rclone(['sync', src, remote(az.endpoint, p)])],
        ['rclone tuned', (p) => rclone(['sync', src, remote(az.endpoint, p), '--azureblob-chunk-size', '16M', '--azureblob-upload-concurrency', '8'])],
      ];
      const ref = `ref-${mib}`;
      const down = [
        ['bucketsync', (d) => [process.execPath, [BIN, 'sync', `az://${CONTAINER}/${ref}`, d, '-q'], bsEnv(az.endpoint)]],
        ['rclone', (d) => rclone(['sync', remote(az.endpoint, ref), d])],
        ['rclone tuned', (d) => rclone(['sync', remote(az.endpoint, ref), d, '--multi-thread-streams', '8'])],
      ];
      const entry = { mib, up: {}, down: {} };
      // the blob every download reads (uploaded once, untimed)
      fs.rmSync(cache, { recursive: true, force: true });
      await timed(up[0][1](ref), 'uploading the reference blob');
      if ((await adm.md5(CONTAINER, blob(ref))) !== srcMd5) throw new Error('the reference blob differs from the source');
      if (only !== 'kill') {
        const m = { up: Object.fromEntries(up.map(([k]) => [k, []])), down: Object.fromEntries(down.map(([k]) => [k, []])) };
        const rotate = (xs, r) => xs.map((_, i) => xs[(i + r) % xs.length]);
        const loadBefore = load();
        for (let i = 0; i < runs; i++) {
          for (const [name, cmd] of rotate(up, i)) {
            const p = `up-${mib}-${name.replace(/\W/g, '')}-${i}`;
            fs.rmSync(cache, { recursive: true, force: true });
            const r = await timed(cmd(p), `${name} upload (run ${i + 1})`);
            const props = await adm.props(CONTAINER, blob(p));
            if (props?.size !== bytes) throw new Error(`${name} uploaded ${props?.size} bytes, not ${bytes}`);
            if (props.contentMd5 !== srcMd5b64) throw new Error(`${name}: the blob's Content-MD5 ${props.contentMd5} is not the source's ${srcMd5b64}`);
            if (i === 0 && (await adm.md5(CONTAINER, blob(p))) !== srcMd5) throw new Error(`${name}: the uploaded blob differs from the source`);
            await adm.deleteBlob(CONTAINER, blob(p));
            m.up[name].push(r);
            console.error(`  ${mib} MiB upload ${i + 1}/${runs} ${name}: ${fmt(r.secs, 1)} s, ${fmt(r.cpu, 1)} CPU-s, Azurite ${fmt(r.server, 1)} CPU-s`);
          }
          for (const [name, cmd] of rotate(down, i)) {
            const dest = path.join(work, `down-${mib}`);
            fs.rmSync(dest, { recursive: true, force: true });
            fs.rmSync(cache, { recursive: true, force: true });
            const r = await timed(cmd(dest), `${name} download (run ${i + 1})`);
            const got = path.join(dest, 'big.bin');
            if (fs.statSync(got).size !== bytes || md5File(got) !== srcMd5) throw new Error(`${name} downloaded different bytes`);
            fs.rmSync(dest, { recursive: true, force: true });
            m.down[name].push(r);
            console.error(`  ${mib} MiB download ${i + 1}/${runs} ${name}: ${fmt(r.secs, 1)} s, ${fmt(r.cpu, 1)} CPU-s, Azurite ${fmt(r.server, 1)} CPU-s`);
          }
        }
        console.log(`\n${mib} MiB throughput: load average (1, 5, 15 min) before ${loadBefore}, after ${load()}`);
        for (const dir of ['up', 'down']) {
          console.log(`\n${mib} MiB ${dir === 'up' ? 'local → Azurite' : 'Azurite → local'}, medians of ${runs}:`);
          console.log('  tool            wall s   CPU s/GiB  peak RSS MB   wall ratio  CPU ratio   Azurite CPU s/GiB  client+Azurite CPU s/GiB');
          const rows = transferRows(m[dir], gibs);
          const peers = rows.filter((r) => r.name !== 'bucketsync');
          const fastest = Math.min(...peers.map((r) => r.wall));
          const leanest = Math.min(...peers.map((r) => r.cpu));
          for (const r of rows) {
            console.log(
              `  ${r.name.padEnd(14)} ${fmt(r.wall).padStart(7)}  ${fmt(r.cpu).padStart(9)}  ${fmt(r.rss, 0).padStart(11)}   ${fmt(r.wall / fastest).padStart(9)}  ${fmt(r.cpu / leanest).padStart(9)}   ${fmt(r.server).padStart(17)}  ${fmt(r.cpu + r.server).padStart(24)}`,
            );
            entry[dir][r.name] = r;
          }
          console.log(`  (ratios: bucketsync and each peer against the fastest / leanest peer)`);
          console.log(`  each run (wall s / CPU s / Azurite CPU s): ${rows.map((r) => `${r.name} ${r.runs.map((x) => `${fmt(x.secs, 1)}/${fmt(x.cpu, 1)}/${fmt(x.server, 1)}`).join(', ')}`).join('; ')}`);
        }
      }
      if (only !== 'throughput') entry.kill = await killAndResume({ az, adm, bsEnv, src, ref, blob, bytes, srcMd5, mib, work, cache, load });
      await adm.deleteBlob(CONTAINER, blob(ref));
      fs.rmSync(src, { recursive: true, force: true });
      results.sizes.push(entry);
    }
  } finally {
    await adm.remove(CONTAINER).catch((e) => console.error(`warning: removing container ${CONTAINER}: ${e.message}`));
    adm.close();
    az.stop();
    if (process.env.BENCH_KEEP !== '1') fs.rmSync(work, { recursive: true, force: true });
  }
  return results;
}

/**
 * SIGKILL bucketsync at ~50 % of an upload and of a download (of the bytes a TCP relay in front
 * of Azurite carried), run it again: bytes over the wire in both runs, byte identity.
 */
async function killAndResume({ az, adm, bsEnv, src, ref, blob, bytes, srcMd5, mib, work, cache, load }) {
  const loadBefore = load();
  const tcp = await relay(az.endpoint.replace(/\/[^/]*$/, ''));
  const endpoint = `${tcp.url}/${new URL(az.endpoint).pathname.slice(1)}`;
  try {
    fs.rmSync(cache, { recursive: true, force: true });
    const p = `kill-${mib}`;
    const upArgs = ['sync', src, `az://${CONTAINER}/${p}`, '-q'];
    const up0 = tcp.counts.up;
    const killed = await runAndKillAt(upArgs, bsEnv(endpoint), () => tcp.counts.up - up0, bytes / 2);
    const upBeforeKill = tcp.counts.up - up0;
    const upRerun = await timedAsync(process.execPath, [BIN, ...upArgs], bsEnv(endpoint), 'the resumed upload');
    const upSent = tcp.counts.up - up0;
    const upSame = (await adm.md5(CONTAINER, blob(p))) === srcMd5;
    console.log(
      `\n  ${mib} MiB: kill -9 at ~50 % of the upload${killed ? '' : ' (it finished first)'}, re-run: ${fmt(upSent / MiB, 1)} MiB sent in all (${fmt(upSent / bytes, 3)}× the file; ${fmt(upBeforeKill / MiB, 1)} MiB before the kill; re-run ${fmt(upRerun.secs, 1)} s), byte-identical: ${upSame}`,
    );
    await adm.deleteBlob(CONTAINER, blob(p));
    const dest = path.join(work, `kill-down-${mib}`);
    fs.rmSync(dest, { recursive: true, force: true });
    const downArgs = ['sync', `az://${CONTAINER}/${ref}`, dest, '-q'];
    const down0 = tcp.counts.down;
    const killedDown = await runAndKillAt(downArgs, bsEnv(endpoint), () => tcp.counts.down - down0, bytes / 2);
    const downBeforeKill = tcp.counts.down - down0;
    const downRerun = await timedAsync(process.execPath, [BIN, ...downArgs], bsEnv(endpoint), 'the resumed download');
    const downGot = tcp.counts.down - down0;
    const downSame = md5File(path.join(dest, 'big.bin')) === srcMd5;
    console.log(
      `  ${mib} MiB: kill -9 at ~50 % of the download${killedDown ? '' : ' (it finished first)'}, re-run: ${fmt(downGot / MiB, 1)} MiB received in all (${fmt(downGot / bytes, 3)}× the file; ${fmt(downBeforeKill / MiB, 1)} MiB before the kill; re-run ${fmt(downRerun.secs, 1)} s), byte-identical: ${downSame}`,
    );
    fs.rmSync(dest, { recursive: true, force: true });
    console.log(`  kill-and-resume: load average (1, 5, 15 min) before ${loadBefore}, after ${load()}`);
    return { upSentBytes: upSent, upBeforeKill, upRatio: upSent / bytes, upSame, downBytes: downGot, downBeforeKill, downRatio: downGot / bytes, downSame };
  } finally {
    await tcp.close();
  }
}
