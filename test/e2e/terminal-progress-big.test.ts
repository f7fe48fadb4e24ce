/**
 * Progress of big files as a person sees it: the real CLI in a real pseudo-terminal (tmux,
 * 120×30) against RGW. A big upload (multipart) and a big download (ranged GETs) each get a
 * line of their own while they run, with the file's bytes, rate and ETA; the transfer line's
 * bytes move before the file is done; a resumed download says how much it skipped.
 *
 * Transfers are slowed by a proxy that holds every part request for a moment (stall), so
 * several frames are drawn while the file moves.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AbortMultipartUploadCommand, DeleteBucketCommand, DeleteObjectsCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PART, partsDone, putMultipart, rangeStart, slowProxy as stallProxy, T0 } from '../support/big-files.js';
import { BIN, runPolling, tempDir } from '../support/cli.js';
import { quote, tmuxOn, untilExit } from '../support/tmux.js';
import { randomBuffer, type FaultProxy, type ProxiedRequest } from '../support/fault-proxy.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const endpoint = s3TestEndpoint();
const SOCKET = `bucketsync-test-big-${process.pid}`;
const SIZE = 14 * PART; // 70 MiB: above the 64 MiB of a file's own line

let raw: S3Client;
let bucket: string;
let work: string;
let session = 0;
const proxies: FaultProxy[] = [];

const tmux = tmuxOn(SOCKET);

/** Runs `bucketsync ARGS` in a fresh 120×30 tmux window and watches it until it exits. */
async function inTerminal(args: string[], env: Record<string, string>): Promise<{ screen: string; snapshots: string[]; exitCode: number }> {
  const name = `run${++session}`;
  const command = `${Object.entries(env)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(' ')} ${quote(process.execPath)} ${quote(BIN)} ${args.map(quote).join(' ')}`;
  tmux('new-session', '-d', '-x', '120', '-y', '30', '-s', name, `read go; ${command}; echo "EXIT=$?"; sleep 600`);
  tmux('send-keys', '-t', name, 'Enter');
  const { screen, snapshots, exitCode } = await untilExit(tmux, name, 90_000);
  tmux('kill-session', '-t', name);
  return { screen, snapshots, exitCode };
}

/** A proxy in front of RGW holding every request `match` picks for `ms` before it goes on. */
const slowProxy = (match: (r: ProxiedRequest) => boolean, ms: number): Promise<FaultProxy> => stallProxy(proxies, endpoint!, match, ms, 180_000);

/** The big file's own line, as drawn: path, bar, bytes of 70 MiB, rate, ETA, and a resumed transfer's skipped bytes. */
const FILE_LINE = /^ {2}big\.bin \[[=-]{30}\] +(\d+)% \| ([\d.]+ (?:B|KiB|MiB))\/70\.0 MiB \| [\d.]+ (?:B|KiB|MiB)\/s \| ETA (?:\d+ s|--)( \| ([\d.]+ MiB) skipped \(resumed\))?$/m;

beforeAll(async () => {
  work = tempDir('bucketsync-tty-big-');
  if (!endpoint) return;
  raw = s3TestClient();
  bucket = await createTestBucket('tty-big');
});
afterAll(async () => {
  for (const p of proxies) await p.close();
  if (hasTmux) {
    spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
    fs.rmSync(path.join(process.env['TMUX_TMPDIR'] ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, SOCKET), { force: true });
  }
  if (raw && bucket) {
    const u = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const x of u.Uploads ?? []) await raw.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: x.Key, UploadId: x.UploadId }));
    const page = await raw.send(new ListObjectsV2Command({ Bucket: bucket }));
    if (page.Contents?.length) await raw.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: page.Contents.map((o) => ({ Key: o.Key! })), Quiet: true } }));
    await raw.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
  }
  raw?.destroy();
  fs.rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!hasTmux || !endpoint)('progress of big files in a terminal (RGW)', () => {
  it('a big upload has its own line with bytes, rate and ETA while it runs; the transfer line counts its bytes before it is done', async () => {
    const src = path.join(work, 'up-src');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'big.bin'), randomBuffer(51, SIZE));
    fs.utimesSync(path.join(src, 'big.bin'), T0, T0);
    const proxy = await slowProxy((r) => r.method === 'PUT' && /[?&]partNumber=/.test(r.url), 250);
    const run = await inTerminal(['sync', src, `s3://${bucket}/up`, '--endpoint-url', proxy.url], {
      ...s3TestEnv(),
      BUCKETSYNC_CACHE_DIR: path.join(work, 'cache-up'),
      BUCKETSYNC_S3_PART_SIZE: '5M',
      BUCKETSYNC_S3_PART_CONCURRENCY: '2',
    });
    expect(run.exitCode, run.screen).toBe(0);
    const lines = run.snapshots.flatMap((s) => s.split('\n').map((l) => l.trimEnd()));
    const fileLines = lines.map((l) => FILE_LINE.exec(l)).filter((m): m is RegExpExecArray => m !== null);
    // several frames of the file's own line, part-way through
    const partWay = fileLines.filter((m) => Number(m[1]) > 0 && Number(m[1]) < 100);
    expect(partWay.length, lines.join('\n')).toBeGreaterThan(1);
    expect(fileLines.some((m) => m[4] !== undefined)).toBe(false); // nothing was resumed
    // the transfer line moves with the file's bytes before the file is done
    expect(lines.some((l) => /^Transferring \[[=-]{30}\] +[1-9]\d?% \| 0\/1 files \| [\d.]+ MiB\/70\.0 MiB/.test(l)), lines.join('\n')).toBe(true);
    // when it is done, its line is gone: the final screen has the transfer line at 100 % only
    expect(run.screen).toMatch(/Transferred \[=+\] 100% \| 1\/1 files \| 70\.0 MiB\/70\.0 MiB/);
    expect(run.screen).not.toMatch(FILE_LINE);
  }, 120_000);

  it('a resumed big download says on its line how much it skipped', async () => {
    // a multipart object with its part size recorded, as bucketsync writes them
    const key = 'dl/big.bin';
    const buf = randomBuffer(52, SIZE);
    await putMultipart(raw, bucket, key, buf);
    const dest = path.join(work, 'dl-dest');
    const cache = path.join(work, 'cache-dl');
    // first run: parts from the 5th on are held 30 s; killed once four parts are on disk
    const held = await slowProxy((r) => r.method === 'GET' && r.url.includes('/big.bin') && rangeStart(r.headers.range) >= 4 * PART, 30_000);
    const first = await runPolling(
      ['sync', `s3://${bucket}/dl`, dest, '--endpoint-url', held.url, '--no-progress'],
      () => partsDone(dest) >= 4,
      { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache, BUCKETSYNC_S3_DOWNLOAD_CONCURRENCY: '4' }, everyMs: 20, giveUpMs: 60_000 },
    );
    expect(first.signal, `the first run finished before it was killed (exit ${first.code}):\n${first.stderr}`).toBe('SIGKILL');
    held.setRate(0);
    // second run in the terminal, each part held a moment
    const slow = await slowProxy((r) => r.method === 'GET' && r.url.includes('/big.bin'), 400);
    const run = await inTerminal(['sync', `s3://${bucket}/dl`, dest, '--endpoint-url', slow.url], {
      ...s3TestEnv(),
      BUCKETSYNC_CACHE_DIR: cache,
      BUCKETSYNC_S3_DOWNLOAD_CONCURRENCY: '2',
    });
    expect(run.exitCode, run.screen).toBe(0);
    const lines = run.snapshots.flatMap((s) => s.split('\n').map((l) => l.trimEnd()));
    const resumed = lines.map((l) => FILE_LINE.exec(l)).filter((m): m is RegExpExecArray => m !== null && m[4] !== undefined);
    expect(resumed.length, lines.join('\n')).toBeGreaterThan(0);
    // at least the four parts that were on disk
    expect(Number.parseFloat(resumed[0]![4]!)).toBeGreaterThanOrEqual(20);
    expect(run.screen).toMatch(/^ {2}Resumed: big\.bin \([\d.]+ MiB of 70\.0 MiB were already there from an interrupted run; [\d.]+ MiB sent\)$/m);
    expect(fs.readFileSync(path.join(dest, 'big.bin')).equals(buf)).toBe(true);
  }, 150_000);
});
