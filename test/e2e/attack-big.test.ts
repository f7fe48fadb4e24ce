/**
 * Attack pass 2 on big files (issue 14), through the real CLI against RGW: hostile things done
 * while a big download or upload is in progress or between an interrupted run and its re-run.
 * Each case failed on the code before its fix.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5, MiB, PART, partsDone, putMultipart, rangeStart, slowProxy, tmpName } from '../support/big-files.js';
import { BIN, cli, runPolling, tempDir } from '../support/cli.js';
import { randomBuffer, type FaultProxy, type ProxiedRequest } from '../support/fault-proxy.js';
import { UploadJournals } from '../../src/stores/s3/resume.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { closeS3Suite, openS3Suite, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const endpoint = s3TestEndpoint();
const SIZE = 2 * PART + MiB + 17; // 3 parts, above the 8 MiB resume threshold

let raw: S3Client;
let bucket: string;
let work: string;
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  const s = await openS3Suite('atk2-big');
  if (s) ({ raw, bucket, work } = s);
});
afterAll(() => closeS3Suite({ raw, bucket, work }, proxies));

/** Runs the CLI in the background, calling `poll` every 5 ms until it returns true. */
async function runWhile(args: string[], env: Record<string, string>, poll: () => boolean): Promise<{ code: number | null; stderr: string; fired: boolean }> {
  return runPolling(args, poll, { env: { ...s3TestEnv(), ...env }, kill: false, everyMs: 5 });
}

/** A run during which a file of the download was swapped for a link to `outside`: the swap happened, `outside` is untouched, the run ended in one clear line. */
function expectLinkRefused(run: { code: number | null; stderr: string; fired: boolean }, outside: string): void {
  expect(run.fired, run.stderr).toBe(true);
  expect(fs.readFileSync(outside, 'utf8'), `written through the link (exit ${run.code}):\n${run.stderr}`).toBe('precious\n');
  expect([0, 1], run.stderr).toContain(run.code);
  expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

/** The re-run after such a swap: exit 0, `file` holds `buf`, `outside` still untouched. */
function expectConverged(again: { code: number | null; stderr: string }, file: string, buf: Buffer, outside: string): void {
  expect(again.code, again.stderr).toBe(0);
  expect(md5(fs.readFileSync(file))).toBe(md5(buf));
  expect(fs.readFileSync(outside, 'utf8')).toBe('precious\n');
}

/** Once a download's temporary file in `dest` and its record exist: the temporary file replaced by a symlink to `outside` (true when done). */
function swapTmpForLink(dest: string, outside: string): boolean {
  const t = tmpName(dest);
  if (!t || !fs.existsSync(path.join(dest, `${t}.resume`))) return false;
  const p = path.join(dest, t);
  fs.rmSync(p);
  fs.symlinkSync(outside, p);
  return true;
}

/**
 * A download of a fresh 3-part object `name/big.bin` through a proxy that holds the requests
 * `held` picks for 2.5 s, during which `swap(dest, outside)` puts a link to a file outside the
 * destination in place (true once done): the outside file stays untouched, the run ends in one
 * clear line, and a re-run without the proxy converges.
 */
async function swapCase(name: string, seed: number, held: (r: ProxiedRequest, dest: string) => boolean, swap: (dest: string, outside: string) => boolean): Promise<void> {
  const buf = randomBuffer(seed, SIZE);
  await putMultipart(raw, bucket, `${name}/big.bin`, buf);
  const dest = path.join(work, `${name}-dest`);
  const outside = path.join(work, `${name}-victim.txt`);
  fs.writeFileSync(outside, 'precious\n');
  const cache = path.join(work, `cache-${name}`);
  const proxy = await slowProxy(proxies, endpoint!, (r) => held(r, dest), 2500, 120_000);
  const run = await runWhile(['sync', `s3://${bucket}/${name}`, dest, '--endpoint-url', proxy.url, '--no-progress'], { BUCKETSYNC_CACHE_DIR: cache }, () => swap(dest, outside));
  expectLinkRefused(run, outside);
  proxy.setRate(0);
  const again = await cli(['sync', `s3://${bucket}/${name}`, dest, '--endpoint-url', endpoint!, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache } });
  expectConverged(again, path.join(dest, 'big.bin'), buf, outside);
}

describe.skipIf(!endpoint)('attack: a big download\'s temporary file or record swapped for a link mid-run', () => {
  it('the temporary file swapped for a symlink to a file outside the destination (while the HEAD is in flight): the outside file is untouched', async () => {
    // holds the HEAD bucketsync sends just before it opens the temporary file (once it exists)
    await swapCase(
      'swap-tmp',
      71,
      (r, dest) => r.method === 'HEAD' && r.url.includes('/big.bin') && tmpName(dest) !== undefined,
      swapTmpForLink,
    );
  });

  it('the .resume record swapped for a symlink to a file outside the destination between two parts: the outside file is untouched', async () => {
    // the first part arrives at once; the others are held 2.5 s
    await swapCase(
      'swap-rec',
      72,
      (r) => r.method === 'GET' && r.url.includes('/big.bin') && rangeStart(r.headers.range) >= PART,
      (dest, outside) => {
        const t = tmpName(dest);
        if (!t || partsDone(dest) < 1) return false;
        const rec = path.join(dest, `${t}.resume`);
        fs.rmSync(rec);
        fs.symlinkSync(outside, rec);
        return true;
      },
    );
  });
});

describe.skipIf(!endpoint)('attack: what sits at a multipart upload journal\'s name in the cache', () => {
  const cases: [string, (file: string) => void][] = [
    ['a fifo', (f) => execFileSync('mkfifo', [f])],
    ['a symlink to /dev/zero', (f) => fs.symlinkSync('/dev/zero', f)],
    ['a folder', (f) => fs.mkdirSync(f)],
  ];
  for (const [what, plant] of cases) {
    it(`a journal that is ${what} neither hangs the upload (even SIGTERM could not stop it) nor fills its memory: uploaded whole, byte-identical`, async () => {
      const slug = what.replace(/[^a-z]+/g, '-');
      const src = path.join(work, `jr-${slug}`);
      fs.mkdirSync(src);
      const buf = randomBuffer(80 + what.length, 4 * PART + 123);
      fs.writeFileSync(path.join(src, 'big.bin'), buf);
      const cache = path.join(work, `cache-jr-${slug}`);
      const dir = path.join(cache, 's3-uploads');
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      plant(new UploadJournals(dir, endpoint!, bucket).fileFor(`jr-${slug}/big.bin`));
      const r = await cli(['sync', src, `s3://${bucket}/jr-${slug}`, '--endpoint-url', endpoint!, '--no-progress'], {
        env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache, BUCKETSYNC_S3_PART_SIZE: String(PART) },
        timeoutMs: 40_000,
      });
      expect(r.signal, `hung (killed after 40 s):\n${r.stderr}`).toBe(null);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      const dl = path.join(work, `jr-${slug}-back`);
      const back = await cli(['sync', `s3://${bucket}/jr-${slug}`, dl, '--endpoint-url', endpoint!, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache } });
      expect(back.code, back.stderr).toBe(0);
      expect(md5(fs.readFileSync(path.join(dl, 'big.bin')))).toBe(md5(buf));
    });
  }
});

/**
 * A Node older than 22.12 on this machine (Debian's Node 20, say): bin/bucketsync then hands over
 * to the bundled Node 24 in a child process. Looked for at the system paths as well as on PATH,
 * since the test runner puts Node 24 first on PATH.
 */
const oldNode = ((): string | undefined => {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node', 'node']) {
    try {
      const v = execFileSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
      const [major, minor] = v.split('.').map(Number);
      if (major! < 22 || (major === 22 && minor! < 12)) return candidate;
    } catch {
      // not there
    }
  }
  return undefined;
})();

/** Whether process `pid` runs: a zombie (dead, not yet reaped by whoever adopted it) does not. */
function isAlive(pid: number): boolean {
  try {
    if (/^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))) return false;
  } catch {
    // gone, or no /proc: ask the kernel
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!oldNode)('attack: kill -9 of bucketsync started by an older Node (the launcher hands over to Node 24)', () => {
  it('the run it handed over to dies with it: nothing goes on writing to the destination after the kill', async () => {
    const src = path.join(work, 'launcher-src');
    const dest = path.join(work, 'launcher-dest');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a.bin'), 'a');
    // each operation is held 4 s before it starts ("Syncing..." is printed just before): the kill comes first
    const child = spawn(oldNode!, [BIN, 'sync', src, dest, '--no-progress'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, BUCKETSYNC_CACHE_DIR: path.join(work, 'cache-launcher'), BUCKETSYNC_TEST_DELAY_MS: '4000' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let exited = false;
    const closed = new Promise((r) => child.on('exit', () => r((exited = true))));
    let runner: number | undefined;
    try {
      // the handed-over run (the launcher's child) has started its work: past its start-up, where it begins to watch its launcher
      for (let i = 0; i < 1000 && !exited && !/Syncing\.\.\./.test(stderr); i++) await sleep(20);
      expect(stderr, 'the run never got to its operations').toMatch(/Syncing\.\.\./);
      let out = '';
      try {
        out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' }).trim();
      } catch {
        /* none: ps exits 1 */
      }
      runner = Number(out.split('\n')[0]);
      expect(runner, 'the launcher started no child').toBeGreaterThan(0);
      child.kill('SIGKILL');
      await closed;
      // it checks on its launcher every 200 ms: give a loaded machine time, stop waiting once it is gone
      for (let i = 0; i < 500 && isAlive(runner); i++) await sleep(20);
      const alive = isAlive(runner);
      expect(alive, 'the handed-over run outlived kill -9 of the bucketsync process').toBe(false);
      expect(fs.existsSync(path.join(dest, 'a.bin')), 'written after the kill').toBe(false);
    } finally {
      child.kill('SIGKILL');
      if (runner && isAlive(runner)) process.kill(runner, 'SIGKILL');
    }
  }, 30_000);
});

describe('attack: the launcher gone before the run it handed over to could watch it', () => {
  /** `sync src dest` on Node 24 as if handed over by launcher `pid`, each operation held 3 s. */
  const handedOver = (name: string, pid: number) => {
    const src = path.join(work, `${name}-src`);
    const dest = path.join(work, `${name}-dest`);
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a.bin'), 'a');
    const child = spawn(process.execPath, [BIN, 'sync', src, dest, '--no-progress'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, BUCKETSYNC_CACHE_DIR: path.join(work, `cache-${name}`), BUCKETSYNC_TEST_DELAY_MS: '3000', BUCKETSYNC_LAUNCHER_PID: String(pid) },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; written: boolean }>((r) =>
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        r({ code, signal, stderr, written: fs.existsSync(path.join(dest, 'a.bin')) });
      }),
    );
  };

  it('a launcher killed while the run was starting (already dead when it looks): the run dies at once, nothing written', async () => {
    // a PID that was a process and is no more (spawned, exited, reaped)
    const gone = spawn('true');
    await new Promise((r) => gone.on('close', r));
    const run = await handedOver('launcher-gone', gone.pid!);
    expect(run.signal, `the run went on without its launcher (exit ${run.code}):\n${run.stderr}`).toBe('SIGKILL');
    expect(run.written, 'written after its launcher was gone').toBe(false);
  }, 40_000);

  it('a stray BUCKETSYNC_LAUNCHER_PID naming a running process that is not its parent is ignored: the run completes', async () => {
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const run = await handedOver('launcher-stray', other.pid!);
      expect(run.code, run.stderr).toBe(0);
      expect(run.written).toBe(true);
    } finally {
      other.kill('SIGKILL');
    }
  }, 40_000);
});

describe.skipIf(!endpoint || process.platform !== 'linux')('attack: the pid of a killed upload reused by another process', () => {
  it('a journal whose pid now belongs to a process started after it is resumed (not taken for a live writer), no upload left behind', async () => {
    const src = path.join(work, 'pid-src');
    fs.mkdirSync(src);
    const buf = randomBuffer(90, 4 * PART + 99);
    fs.writeFileSync(path.join(src, 'big.bin'), buf);
    const cache = path.join(work, 'cache-pid');
    const env = { BUCKETSYNC_CACHE_DIR: cache, BUCKETSYNC_S3_PART_SIZE: String(PART), BUCKETSYNC_S3_PART_CONCURRENCY: '1' };
    // killed once a part is stored (the proxy holds every part from the 2nd on)
    const proxy = await slowProxy(proxies, endpoint!, (r) => r.method === 'PUT' && /partNumber=([2-9])/.test(r.url), 20_000, 120_000);
    // journals are per endpoint: both runs go through the proxy
    const journal = new UploadJournals(path.join(cache, 's3-uploads'), proxy.url, bucket).fileFor('pid/big.bin');
    const parts = (): number => (fs.existsSync(journal) ? fs.readFileSync(journal, 'utf8').split('\n').filter((l) => l.startsWith('{"p":')).length : 0);
    const child = spawn(process.execPath, [BIN, 'sync', src, `s3://${bucket}/pid`, '--endpoint-url', proxy.url, '--no-progress'], {
      stdio: 'ignore',
      env: { ...process.env, ...s3TestEnv(), ...env },
    });
    const closed = new Promise((r) => child.on('close', r));
    for (let i = 0; i < 3000 && parts() < 1; i++) await sleep(10);
    child.kill('SIGKILL');
    await closed;
    expect(parts()).toBeGreaterThanOrEqual(1);
    proxy.setRate(0);
    // a process started later gets the dead writer's pid (as in a container, run after run)
    await sleep(2600);
    const squatter = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const lines = fs.readFileSync(journal, 'utf8').split('\n');
      lines[0] = JSON.stringify({ ...(JSON.parse(lines[0]!) as object), pid: squatter.pid });
      fs.writeFileSync(journal, lines.join('\n'));
      const r = await cli(['sync', src, `s3://${bucket}/pid`, '--endpoint-url', proxy.url, '--no-progress'], { env: { ...s3TestEnv(), ...env } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/Resumed: big\.bin/);
    } finally {
      squatter.kill('SIGKILL');
    }
    const uploads = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'pid/' }));
    expect(uploads.Uploads ?? []).toEqual([]);
    const dl = path.join(work, 'pid-back');
    const back = await cli(['sync', `s3://${bucket}/pid`, dl, '--endpoint-url', endpoint!, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache } });
    expect(back.code, back.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(dl, 'big.bin')))).toBe(md5(buf));
  });
});

describe.skipIf(!endpoint || process.platform !== 'linux')('attack: the pid of a killed download reused by another process', () => {
  it('a partial download whose pid now belongs to a process started after it is continued, not left behind as a live run\'s', async () => {
    const buf = randomBuffer(91, SIZE);
    await putMultipart(raw, bucket, 'pid-dl/big.bin', buf);
    const dest = path.join(work, 'pid-dl-dest');
    const cache = path.join(work, 'cache-pid-dl');
    // the first part arrives; the others are held until the run is killed
    const proxy = await slowProxy(proxies, endpoint!, (r) => r.method === 'GET' && r.url.includes('/big.bin') && rangeStart(r.headers.range) >= PART, 20_000, 120_000);
    const child = spawn(process.execPath, [BIN, 'sync', `s3://${bucket}/pid-dl`, dest, '--endpoint-url', proxy.url, '--no-progress'], {
      stdio: 'ignore',
      env: { ...process.env, ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache },
    });
    const closed = new Promise((r) => child.on('close', r));
    for (let i = 0; i < 3000 && partsDone(dest) < 1; i++) await sleep(10);
    child.kill('SIGKILL');
    await closed;
    proxy.setRate(0);
    expect(partsDone(dest)).toBe(1);
    // a process started later gets the dead run's pid: the partial file and record are renamed to it
    await sleep(2600);
    const squatter = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const t = tmpName(dest)!;
      const renamed = t.replace(/^(\.bucketsync-tmp-[0-9a-f]+-)\d+-/, `$1${squatter.pid}-`);
      expect(renamed).not.toBe(t);
      fs.renameSync(path.join(dest, `${t}.resume`), path.join(dest, `${renamed}.resume`));
      fs.renameSync(path.join(dest, t), path.join(dest, renamed));
      const r = await cli(['sync', `s3://${bucket}/pid-dl`, dest, '--endpoint-url', endpoint!, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/Resumed: big\.bin/);
    } finally {
      squatter.kill('SIGKILL');
    }
    expect(md5(fs.readFileSync(path.join(dest, 'big.bin')))).toBe(md5(buf));
    expect(fs.readdirSync(dest)).toEqual(['big.bin']);
  });
});

describe('attack: what sits at the hf xorb journal\'s name in the cache', () => {
  let server: HfTestServer;
  let hfWork: string;
  beforeAll(async () => {
    server = await startHfServer();
    server.createBucket('tester/atk2');
    hfWork = tempDir('bucketsync-atk2-hf-');
  });
  afterAll(async () => {
    await server?.close();
    if (hfWork) fs.rmSync(hfWork, { recursive: true, force: true });
  });
  it('a big download\'s temporary file swapped for a symlink to a file outside the destination while the Hub answer is held: the outside file is untouched', async () => {
    const dir = path.join(hfWork, 'swap-dl');
    const src = path.join(dir, 'src');
    const dest = path.join(dir, 'dest');
    fs.mkdirSync(src, { recursive: true });
    const buf = randomBuffer(97, 20 * MiB + 5); // above the 16 MiB threshold of the worker-written download
    fs.writeFileSync(path.join(src, 'ckpt.bin'), buf);
    const outside = path.join(dir, 'victim.txt');
    fs.writeFileSync(outside, 'precious\n');
    const env = { HF_ENDPOINT: server.url, HF_TOKEN: 'hf_test_token', HF_HOME: path.join(dir, 'home'), BUCKETSYNC_CACHE_DIR: path.join(dir, 'cache') };
    const up = await cli(['sync', src, 'hf://buckets/tester/atk2/swap-dl', '--no-progress'], { env });
    expect(up.code, up.stderr).toBe(0);
    // the file's resolve (asked once the temporary file and its record exist) waits 2 s
    server.injectFault({ route: 'resolve', status: 503, retryAfter: 2, pathIncludes: 'swap-dl/ckpt.bin' });
    const run = await runWhile(['sync', 'hf://buckets/tester/atk2/swap-dl', dest, '--no-progress'], env, () => swapTmpForLink(dest, outside));
    expectLinkRefused(run, outside);
    const again = await cli(['sync', 'hf://buckets/tester/atk2/swap-dl', dest, '--no-progress'], { env });
    expectConverged(again, path.join(dest, 'ckpt.bin'), buf, outside);
  }, 120_000);

  const cases: [string, (file: string, outside: string) => void][] = [
    ['a fifo', (f) => execFileSync('mkfifo', [f])],
    ['a symlink to a file outside the cache', (f, outside) => fs.symlinkSync(outside, f)],
  ];
  for (const [what, plant] of cases) {
    it(`a journal that is ${what}: the Xet upload neither hangs nor writes through it, byte-identical`, async () => {
      const slug = what.replace(/[^a-z]+/g, '-');
      const dir = path.join(hfWork, slug);
      const src = path.join(dir, 'src');
      const cache = path.join(dir, 'cache');
      fs.mkdirSync(src, { recursive: true });
      fs.mkdirSync(cache, { recursive: true });
      const buf = randomBuffer(95 + what.length, 66 * MiB); // above the 64 MiB Xet uploader threshold
      fs.writeFileSync(path.join(src, 'ckpt.bin'), buf);
      const outside = path.join(dir, 'victim.txt');
      fs.writeFileSync(outside, 'precious\n');
      plant(path.join(cache, 'hf-xorbs-v1.log'), outside);
      const env = { HF_ENDPOINT: server.url, HF_TOKEN: 'hf_test_token', HF_HOME: path.join(dir, 'home'), BUCKETSYNC_CACHE_DIR: cache };
      const r = await cli(['sync', src, `hf://buckets/tester/atk2/${slug}`, '--no-progress'], { env, timeoutMs: 100_000 });
      expect(r.signal, `hung (killed after 100 s):\n${r.stderr}`).toBe(null);
      expect(r.code, r.stderr).toBe(0);
      expect(fs.readFileSync(outside, 'utf8')).toBe('precious\n');
      expect(md5(await server.readFile('tester/atk2', `${slug}/ckpt.bin`))).toBe(md5(buf));
    }, 120_000);
  }
});
