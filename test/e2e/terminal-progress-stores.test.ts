/**
 * Progress of big files on every store, as a person sees it: the real CLI in a real
 * pseudo-terminal (tmux, 120×30). Each big transfer gets a line of its own while it runs, with
 * the file's bytes, rate and ETA, and a resumed one says how much it skipped:
 * - hf (Xet): a big upload (bucketsync's own uploader, per xorb stored) and a big download
 *   (streamed into the local file); a download SIGKILLed at ~50 % and resumed from its
 *   temporary file shows the kept part as skipped; an upload SIGKILLed at ~50 % shows the xorbs
 *   the CAS already held as skipped;
 * - Azure (Azurite): a big upload (staged blocks) and a download; an upload SIGKILLed at ~50 %
 *   and resumed from its staged blocks shows them as skipped;
 * - S3 (RGW): a streamed download (an object without a recorded part size: no ranged GETs); one
 *   cut off mid-body is retried from what arrived, and the retry's line shows that as skipped.
 * `--dry-run` and `--plan` in the same terminal keep stdout pure JSONL; with stderr not a
 * terminal no progress is drawn (as before).
 *
 * Transfers are slowed (a delay in front of the Xet CAS; a stalling proxy in front of Azurite
 * and RGW) so that several frames are drawn while a file moves. BUCKETSYNC_PROGRESS_FILE_LINE_MIN
 * lowers the 64 MiB from which a file gets its own line, so Azure and S3 files stay small (hf's own
 * uploader only takes files of 64 MiB and up).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzureClient } from '../../src/stores/azure/client.js';
import { md5, md5File, MiB, resumeRecord, slowProxy as stallProxy, T0 } from '../support/big-files.js';
import { BIN, bytesUnder, runPolling, tempDir } from '../support/cli.js';
import { quote, sleep, tmuxOn, untilExit } from '../support/tmux.js';
import { azureTestClient, azureTestEnv, azuriteEndpoint, createTestContainer } from '../support/azure-env.js';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../support/fault-proxy.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { randomFile } from '../support/random.js';

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const SOCKET = `bucketsync-test-stores-${process.pid}`;
const TOKEN = 'hf_test_token';
const HF_BUCKET = 'tester/progress';
/** hf's own Xet uploader takes files from 64 MiB on: 72 MiB is 5 xorbs. */
const HF_SIZE = 72 * MiB;
/** Azure and S3: 48 MiB, 6 blocks of 8 MiB; their own line from 16 MiB on (BUCKETSYNC_PROGRESS_FILE_LINE_MIN). */
const SMALL_SIZE = 48 * MiB;
const LINE_MIN = String(16 * MiB);

let work: string;
let session = 0;
const proxies: FaultProxy[] = [];

const tmux = tmuxOn(SOCKET);

interface TerminalRun {
  screen: string;
  /** Every line of every frame captured while it ran. */
  lines: string[];
  exitCode: number;
}

/** Runs `bucketsync ARGS` (with `redirect` appended, e.g. `> out.jsonl`) in a fresh 120×30 tmux window until it exits. */
async function inTerminal(args: string[], env: Record<string, string>, redirect = ''): Promise<TerminalRun> {
  const name = `run${++session}`;
  const command = `${Object.entries(env)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(' ')} ${quote(process.execPath)} ${quote(BIN)} ${args.map(quote).join(' ')} ${redirect}`;
  tmux('new-session', '-d', '-x', '120', '-y', '30', '-s', name, `read go; ${command}; echo "EXIT=$?"; sleep 600`);
  tmux('send-keys', '-t', name, 'Enter');
  const { screen, snapshots, exitCode } = await untilExit(tmux, name, 90_000);
  tmux('kill-session', '-t', name);
  return { screen, lines: snapshots.flatMap((s) => s.split('\n').map((l) => l.trimEnd())), exitCode };
}

/** The file's own line: path, bar, bytes of `total`, rate, ETA, and (m[4]) what a resumed transfer skipped. */
function fileLine(name: string, total: string): RegExp {
  return new RegExp(
    `^ {2}${name.replace(/\./g, '\\.')} \\[[=-]{30}\\] +(\\d+)% \\| ([\\d.]+ (?:B|KiB|MiB))/${total.replace(/\./g, '\\.')} \\| [\\d.]+ (?:B|KiB|MiB)/s \\| ETA (?:\\d+ s|--)( \\| ([\\d.]+ MiB) skipped \\(resumed\\))?$`,
  );
}

/** The frames of the file's line part-way through (0 % < done < 100 %). */
function partWay(run: TerminalRun, re: RegExp): RegExpExecArray[] {
  return run.lines.map((l) => re.exec(l)).filter((m): m is RegExpExecArray => m !== null && Number(m[1]) > 0 && Number(m[1]) < 100);
}

/** Runs the CLI without a terminal and SIGKILLs it once `when()` holds; resolves with whether the kill ended it. */
async function killWhen(args: string[], env: Record<string, string>, when: () => boolean): Promise<boolean> {
  return (await runPolling([...args, '--no-progress'], when, { env })).killed;
}

/**
 * `--dry-run` and `--plan FILE` with stderr on the terminal: `--dry-run`'s stdout (to a file) is
 * JSONL and nothing else; `--plan` writes JSONL to its file and nothing to stdout.
 */
async function checkPlanOutputs(args: string[], env: Record<string, string>, tag: string): Promise<void> {
  const jsonlOnly = (file: string): void => {
    const text = fs.readFileSync(file, 'utf8');
    const lines = text.split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(() => JSON.parse(l) as unknown, `${file}: ${l}`).not.toThrow();
    expect(text).not.toMatch(/\x1b|\r|skipped \(resumed\)|Transferring/);
  };
  const dry = path.join(work, `${tag}-dry-run.jsonl`);
  const run = await inTerminal([...args, '--dry-run'], env, `> ${quote(dry)}`);
  expect(run.exitCode, run.screen).toBe(0);
  jsonlOnly(dry);
  const out = path.join(work, `${tag}-plan.out`);
  const plan = path.join(work, `${tag}-plan.jsonl`);
  const planned = await inTerminal([...args, '--plan', plan], env, `> ${quote(out)}`);
  expect(planned.exitCode, planned.screen).toBe(0);
  expect(fs.readFileSync(out, 'utf8')).toBe('');
  jsonlOnly(plan);
}

/** A stalling proxy in front of `target`: every request `match` picks is held `ms` (before or inside its response body). */
const slowProxy = (target: string, match: (r: ProxiedRequest) => boolean, ms: number): Promise<FaultProxy> => stallProxy(proxies, target, match, ms);

beforeAll(() => {
  work = tempDir('bucketsync-tty-stores-');
  // An idle session keeps the tmux server up between runs (a new session while the last one's
  // server is exiting fails with "server exited unexpectedly").
  if (hasTmux) tmux('new-session', '-d', '-s', 'keep', 'sleep 100000');
});
afterAll(async () => {
  for (const p of proxies) await p.close();
  if (hasTmux) {
    spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
    fs.rmSync(path.join(process.env['TMUX_TMPDIR'] ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, SOCKET), { force: true });
  }
  fs.rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// hf

describe.skipIf(!hasTmux)('progress of big hf transfers in a terminal (Hub+Xet test server)', () => {
  let server: HfTestServer;
  const env = (): Record<string, string> => ({ HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: path.join(work, 'hf-home'), BUCKETSYNC_CACHE_DIR: path.join(work, 'hf-cache') });
  let delayMs = 0;

  beforeAll(async () => {
    server = await startHfServer();
    server.createBucket(HF_BUCKET);
    // Every CAS request (xorb uploads, xorb range reads) waits `delayMs` before the server sees it.
    const cas = (server as unknown as { cas: http.Server }).cas;
    const handlers = cas.listeners('request') as ((req: http.IncomingMessage, res: http.ServerResponse) => void)[];
    cas.removeAllListeners('request');
    cas.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const go = () => {
        for (const h of handlers) h.call(cas, req, res);
      };
      if (delayMs > 0 && (req.url?.includes('/xorbs/') || req.url?.includes('/transfer/xorb/'))) setTimeout(go, delayMs);
      else go();
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a big upload has its own line with bytes, rate and ETA; --dry-run and --plan stdout stay JSONL', async () => {
    const src = path.join(work, 'hf-src');
    randomFile(path.join(src, 'ckpt.bin'), HF_SIZE, 1);
    const dest = `hf://buckets/${HF_BUCKET}/up`;
    await checkPlanOutputs(['sync', src, dest], env(), 'hf-up');
    delayMs = 500;
    const run = await inTerminal(['sync', src, dest], env());
    delayMs = 0;
    expect(run.exitCode, run.screen).toBe(0);
    const line = fileLine('ckpt.bin', '72.0 MiB');
    const frames = partWay(run, line);
    expect(frames.length, run.lines.join('\n')).toBeGreaterThan(1);
    expect(frames.some((m) => m[4] !== undefined)).toBe(false); // nothing was resumed
    expect(run.lines.some((l) => /^Transferring \[[=-]{30}\] +[1-9]\d?% \| 0\/1 files \| [\d.]+ MiB\/72\.0 MiB/.test(l)), run.lines.join('\n')).toBe(true);
    expect(run.screen).toMatch(/Transferred \[=+\] 100% \| 1\/1 files \| 72\.0 MiB\/72\.0 MiB/);
    expect(run.screen).not.toMatch(line);
    expect(md5(await server.readFile(HF_BUCKET, 'up/ckpt.bin'))).toBe(md5File(path.join(src, 'ckpt.bin')));
  }, 240_000);

  it('a big download has its own line; one SIGKILLed at ~50 % and resumed says how much it skipped', async () => {
    const source = `hf://buckets/${HF_BUCKET}/up`;
    const original = path.join(work, 'hf-src', 'ckpt.bin');
    const line = fileLine('ckpt.bin', '72.0 MiB');

    // a plain big download
    const plain = path.join(work, 'hf-dl-plain');
    await checkPlanOutputs(['sync', source, plain], env(), 'hf-down');
    delayMs = 400;
    const first = await inTerminal(['sync', source, plain], env());
    delayMs = 0;
    expect(first.exitCode, first.screen).toBe(0);
    const frames = partWay(first, line);
    expect(frames.length, first.lines.join('\n')).toBeGreaterThan(1);
    expect(frames.some((m) => m[4] !== undefined)).toBe(false);
    expect(md5File(path.join(plain, 'ckpt.bin'))).toBe(md5File(original));

    // killed at ~50 %, then resumed in the terminal
    const dest = path.join(work, 'hf-dl');
    delayMs = 150;
    expect(await killWhen(['sync', source, dest], env(), () => bytesUnder(dest) >= HF_SIZE / 2)).toBe(true);
    const kept = bytesUnder(dest);
    expect(kept).toBeLessThan(HF_SIZE);
    // The worker-written download continues from the parts its .resume record lists (the first
    // unbroken run from part 0, capped at the bytes on disk): that is what it skips.
    const rec = resumeRecord(dest)!;
    expect(rec, fs.readdirSync(dest).join(', ')).toBeDefined();
    let unbroken = 0;
    while (rec.parts?.done.includes(unbroken)) unbroken++;
    const expectedSkip = Math.min(unbroken * (rec.parts?.partSize ?? 0), kept);
    expect(expectedSkip, JSON.stringify(rec)).toBeGreaterThan(0);
    delayMs = 400;
    const run = await inTerminal(['sync', source, dest, '-v'], env());
    delayMs = 0;
    expect(run.exitCode, run.screen).toBe(0);
    const resumed = run.lines.map((l) => line.exec(l)).filter((m): m is RegExpExecArray => m !== null && m[4] !== undefined);
    expect(resumed.length, run.lines.join('\n')).toBeGreaterThan(0);
    // what the first run left on disk and recorded, in MiB to one decimal (the record lags the
    // bytes written by at most the parts in flight)
    expect(Number.parseFloat(resumed[0]![4]!)).toBeCloseTo(expectedSkip / MiB, 0);
    expect(expectedSkip).toBeGreaterThanOrEqual(kept - 2 * 8 * MiB);
    expect(run.screen).toMatch(/^ {2}Resumed: ckpt\.bin \([\d.]+ MiB of 72\.0 MiB were already there from an interrupted run; [\d.]+ MiB sent\)$/m);
    expect(md5File(path.join(dest, 'ckpt.bin'))).toBe(md5File(original));
    expect(fs.readdirSync(dest)).toEqual(['ckpt.bin']);
  }, 240_000);
  it('an upload SIGKILLed at ~50 % and resumed says on its line how much the CAS already held', async () => {
    const src = path.join(work, 'hf-src2');
    randomFile(path.join(src, 'ckpt.bin'), HF_SIZE, 7);
    const dest = `hf://buckets/${HF_BUCKET}/resume`;
    const start = server.stats.xorbBytesReceived;
    delayMs = 150;
    expect(await killWhen(['sync', src, dest], env(), () => server.stats.xorbBytesReceived - start >= HF_SIZE / 2)).toBe(true);
    delayMs = 500;
    const run = await inTerminal(['sync', src, dest, '-v'], env());
    delayMs = 0;
    expect(run.exitCode, run.screen).toBe(0);
    const line = fileLine('ckpt.bin', '72.0 MiB');
    const resumed = run.lines.map((l) => line.exec(l)).filter((m): m is RegExpExecArray => m !== null && m[4] !== undefined);
    expect(resumed.length, run.lines.join('\n')).toBeGreaterThan(0);
    const skipped = Math.max(...resumed.map((m) => Number.parseFloat(m[4]!)));
    // whole xorbs of about 16 MiB, at least two of the five (the first run stored ≥ 36 MiB)
    expect(skipped).toBeGreaterThanOrEqual(30);
    expect(skipped).toBeLessThan(72);
    const done = /^ {2}Resumed: ckpt\.bin \(([\d.]+) MiB of 72\.0 MiB were already there from an interrupted run; [\d.]+ MiB sent\)$/m.exec(run.screen);
    expect(done, run.screen).not.toBeNull();
    expect(Number.parseFloat(done![1]!)).toBe(skipped);
    expect(md5(await server.readFile(HF_BUCKET, 'resume/ckpt.bin'))).toBe(md5File(path.join(src, 'ckpt.bin')));
  }, 240_000);
});

// ---------------------------------------------------------------------------------------------
// Azure

const azEndpoint = azuriteEndpoint();

describe.skipIf(!hasTmux || !azEndpoint)('progress of big Azure transfers in a terminal (Azurite)', () => {
  let container: string;
  let client: AzureClient;
  const origin = (): string => new URL(azEndpoint!).origin;
  const account = (): string => new URL(azEndpoint!).pathname.replace(/\/+$/, '');
  const env = (proxy: FaultProxy): Record<string, string> => ({
    ...azureTestEnv(`${proxy.url}${account()}`),
    BUCKETSYNC_CACHE_DIR: path.join(work, 'az-cache'),
    BUCKETSYNC_PROGRESS_FILE_LINE_MIN: LINE_MIN,
  });
  const isPutBlock = (r: ProxiedRequest): boolean => r.method === 'PUT' && /[?&]comp=block(&|$)/.test(r.url);

  beforeAll(async () => {
    container = await createTestContainer('tty-progress');
    client = azureTestClient();
  });
  afterAll(() => {
    client?.destroy();
  });

  it('a big upload has its own line with bytes, rate and ETA; a download too; --dry-run and --plan stdout stay JSONL', async () => {
    const src = path.join(work, 'az-src');
    randomFile(path.join(src, 'big.bin'), SMALL_SIZE, 2);
    const line = fileLine('big.bin', '48.0 MiB');
    const proxy = await slowProxy(origin(), isPutBlock, 600);
    await checkPlanOutputs(['sync', src, `az://${container}/up`], env(proxy), 'az-up');
    const run = await inTerminal(['sync', src, `az://${container}/up`], env(proxy));
    expect(run.exitCode, run.screen).toBe(0);
    const frames = partWay(run, line);
    expect(frames.length, run.lines.join('\n')).toBeGreaterThan(1);
    expect(frames.some((m) => m[4] !== undefined)).toBe(false);
    expect(run.lines.some((l) => /^Transferring \[[=-]{30}\] +[1-9]\d?% \| 0\/1 files \| [\d.]+ MiB\/48\.0 MiB/.test(l)), run.lines.join('\n')).toBe(true);
    expect(run.screen).toMatch(/Transferred \[=+\] 100% \| 1\/1 files \| 48\.0 MiB\/48\.0 MiB/);

    // the download: its body held 1.5 s in the middle
    const slowGet = await slowProxy(origin(), (r) => r.method === 'GET' && r.url.includes('/up/big.bin'), 1500);
    const dest = path.join(work, 'az-dl');
    await checkPlanOutputs(['sync', `az://${container}/up`, dest], env(slowGet), 'az-down');
    const down = await inTerminal(['sync', `az://${container}/up`, dest], env(slowGet));
    expect(down.exitCode, down.screen).toBe(0);
    expect(partWay(down, line).length, down.lines.join('\n')).toBeGreaterThan(1);
    expect(md5File(path.join(dest, 'big.bin'))).toBe(md5File(path.join(src, 'big.bin')));

    // stderr not a terminal: no progress (as before), the run's lines only
    const errFile = path.join(work, 'az-stderr.txt');
    const redirected = await inTerminal(['sync', `az://${container}/up`, path.join(work, 'az-dl2')], env(slowGet), `2> ${quote(errFile)}`);
    expect(redirected.exitCode).toBe(0);
    const err = fs.readFileSync(errFile, 'utf8');
    expect(err).toContain('Sync completed.');
    expect(err).not.toMatch(/Transferring|big\.bin \[|\x1b|\r/);
  }, 240_000);

  it('an upload SIGKILLed at ~50 % resumes from its staged blocks and says how much it skipped', async () => {
    const src = path.join(work, 'az-src2');
    randomFile(path.join(src, 'big.bin'), SMALL_SIZE, 3);
    const line = fileLine('big.bin', '48.0 MiB');
    // first run: blocks 0-2 go through; from the 4th on the proxy answers 503 (Retry-After 30 s)
    // without passing them on, and the run is killed once the three are staged
    const blockIndex = (url: string): number => {
      const id = /[?&]blockid=([^&]+)/.exec(url)?.[1];
      return id ? Number(/^bsync-(\d+)-/.exec(Buffer.from(decodeURIComponent(id), 'base64').toString())?.[1] ?? -1) : -1;
    };
    const held = await startFaultProxy({
      target: origin(),
      seed: 1,
      rate: 0,
      kinds: ['stall'],
      lifetimeMs: 300_000,
      script: (r) => (isPutBlock(r) && blockIndex(r.url) >= 3 ? { status: 503, code: 'ServerBusy', headers: { 'retry-after': '30' } } : undefined),
    });
    proxies.push(held);
    const staged = (): number => held.log.filter((r) => isPutBlock({ method: r.method, url: r.url, headers: {} }) && r.status === undefined && r.end !== undefined).length;
    expect(await killWhen(['sync', src, `az://${container}/resume`], env(held), () => staged() >= 3)).toBe(true);
    const blocks = await client.request({ op: 'GetBlockList', method: 'GET', container, blob: 'resume/big.bin', query: { comp: 'blocklist', blocklisttype: 'uncommitted' } });
    const count = (blocks.body.match(/<Block>/g) ?? []).length;
    expect(count).toBe(3);

    const proxy = await slowProxy(origin(), isPutBlock, 600);
    const run = await inTerminal(['sync', src, `az://${container}/resume`, '-v'], env(proxy));
    expect(run.exitCode, run.screen).toBe(0);
    const resumed = run.lines.map((l) => line.exec(l)).filter((m): m is RegExpExecArray => m !== null && m[4] !== undefined);
    expect(resumed.length, run.lines.join('\n')).toBeGreaterThan(0);
    // the staged blocks, 8 MiB each (counted as each block is read and found staged)
    expect(Math.max(...resumed.map((m) => Number.parseFloat(m[4]!)))).toBe(count * 8);
    expect(run.screen).toMatch(new RegExp(`^ {2}Resumed: big\\.bin \\(${count * 8}\\.0 MiB of 48\\.0 MiB were already there from an interrupted run; [\\d.]+ MiB sent\\)$`, 'm'));
    const got = await client.request({ op: 'GetBlob', method: 'GET', container, blob: 'resume/big.bin', stream: true });
    const chunks: Buffer[] = [];
    for await (const c of got.stream!) chunks.push(c as Buffer);
    expect(md5(Buffer.concat(chunks))).toBe(md5File(path.join(src, 'big.bin')));
  }, 240_000);
});

// ---------------------------------------------------------------------------------------------
// S3: a streamed download (no ranged GETs)

const s3Endpoint = s3TestEndpoint();

describe.skipIf(!hasTmux || !s3Endpoint)('progress of a streamed S3 download in a terminal (RGW)', () => {
  let raw: S3Client;
  let bucket: string;
  beforeAll(async () => {
    raw = s3TestClient();
    bucket = await createTestBucket('tty-stream');
  });
  afterAll(async () => {
    if (raw && bucket) {
      const page = await raw.send(new ListObjectsV2Command({ Bucket: bucket }));
      if (page.Contents?.length) await raw.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: page.Contents.map((o) => ({ Key: o.Key! })), Quiet: true } }));
      await raw.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
    }
    raw?.destroy();
  });

  it('an object without a recorded part size streams into the file, with its own line', async () => {
    const src = path.join(work, 's3-src');
    randomFile(path.join(src, 'big.bin'), SMALL_SIZE, 4);
    const body = fs.readFileSync(path.join(src, 'big.bin'));
    // one PUT, as another tool writes it: no part size, so bucketsync cannot fetch it in ranges
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'dl/big.bin', Body: body, Metadata: { mtime: String(T0) } }));
    const proxy = await slowProxy(s3Endpoint!, (r) => r.method === 'GET' && r.url.includes('/big.bin'), 1500);
    const env = { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 's3-cache'), BUCKETSYNC_PROGRESS_FILE_LINE_MIN: LINE_MIN };
    const dest = path.join(work, 's3-dl');
    await checkPlanOutputs(['sync', `s3://${bucket}/dl`, dest, '--endpoint-url', proxy.url], env, 's3-down');
    const run = await inTerminal(['sync', `s3://${bucket}/dl`, dest, '--endpoint-url', proxy.url], env);
    expect(run.exitCode, run.screen).toBe(0);
    const frames = partWay(run, fileLine('big.bin', '48.0 MiB'));
    expect(frames.length, run.lines.join('\n')).toBeGreaterThan(1);
    expect(run.screen).toMatch(/Transferred \[=+\] 100% \| 1\/1 files \| 48\.0 MiB\/48\.0 MiB/);
    expect(md5File(path.join(dest, 'big.bin'))).toBe(md5(body));
  }, 240_000);

  it('a download cut off mid-body is retried from what arrived: the retry\'s line says what it skipped and counts the rest from there', async () => {
    const body = fs.readFileSync(path.join(work, 's3-src', 'big.bin'));
    // RGW ← holds each GET's body 1.5 s ← cuts the first GET of the file's body (FIN) ← the CLI
    const slow = await slowProxy(s3Endpoint!, (r) => r.method === 'GET' && r.url.includes('/big.bin'), 1500);
    const proxy = await startFaultProxy({ target: slow.url, seed: 3, rate: 1, kinds: ['truncate'], maxFaults: 1, match: (r) => r.method === 'GET' && r.url.includes('/big.bin'), lifetimeMs: 300_000 });
    proxies.push(proxy);
    const cut = proxy;
    const env = { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 's3-cache'), BUCKETSYNC_PROGRESS_FILE_LINE_MIN: LINE_MIN };
    const dest = path.join(work, 's3-dl-cut');
    const run = await inTerminal(['sync', `s3://${bucket}/dl`, dest, '--endpoint-url', proxy.url, '-v'], env);
    expect(run.exitCode, run.screen).toBe(0);
    expect(cut.counts.truncate).toBe(1);
    const line = fileLine('big.bin', '48.0 MiB');
    // the retry's frames: what the cut-off GET had written, as skipped, and the rest moving
    const retry = partWay(run, line).filter((m) => m[4] !== undefined);
    expect(retry.length, run.lines.join('\n')).toBeGreaterThan(0);
    const resumedLine = /^ {2}Resumed: big\.bin \(([\d.]+ (?:KiB|MiB)) of 48\.0 MiB were already there from an interrupted run; [\d.]+ MiB sent\)$/m.exec(run.screen);
    expect(resumedLine, run.screen).not.toBeNull();
    // every frame of the retry: skipped = what the cut-off GET had written; done = that + what the retry moved
    for (const m of retry) {
      expect(m[4]).toBe(resumedLine![1]);
      expect(Number.parseFloat(m[2]!)).toBeGreaterThanOrEqual(Number.parseFloat(m[4]!));
    }
    expect(md5File(path.join(dest, 'big.bin'))).toBe(md5(body));
  }, 240_000);
});
