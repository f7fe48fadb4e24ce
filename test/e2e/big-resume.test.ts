/**
 * Resumable multipart uploads, end to end through the CLI against RGW: a multipart upload
 * killed with SIGKILL part-way resumes on the next run from the parts the server holds (only
 * the missing parts go out, counted at a proxy in front of RGW and by the CLI's own request
 * stats), converges byte-identical and leaves no incomplete multipart upload; a source changed
 * between the runs is sent again whole (its stale upload aborted); a corrupt or truncated
 * journal is ignored safely; an upload whose object the next run has nothing left to send for
 * is aborted at the end of that run.
 *
 * Small parts (5 MiB, RGW's minimum) keep it fast: BUCKETSYNC_S3_PART_SIZE and friends.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListPartsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5, MiB, PART, putMultipart, T0, tmpName } from '../support/big-files.js';
import { cli, runPolling } from '../support/cli.js';
import { randomBuffer, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { closeS3Suite, openS3Suite, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const endpoint = s3TestEndpoint();
const SIZE = 9 * PART + 3 * MiB + 123; // 10 parts
const PARTS = Math.ceil(SIZE / PART);

let raw: S3Client;
let bucket: string;
let work: string;
const proxies: FaultProxy[] = [];

beforeAll(async () => {
  const s = await openS3Suite('big-resume');
  if (s) ({ raw, bucket, work } = s);
});
afterAll(() => closeS3Suite({ raw, bucket, work }, proxies));

const isUploadPart = (method: string, url: string): boolean => method === 'PUT' && /[?&]partNumber=/.test(url) && /[?&]uploadId=/.test(url);

interface Case {
  proxy: FaultProxy;
  dir: string;
  src: string;
  file: string;
  prefix: string;
  cache: string;
  stats: string;
}

/** One proxy per case, for all its runs: the resume journal belongs to an endpoint (the proxy's URL). */
async function setup(name: string, seed: number): Promise<Case> {
  const proxy = await startFaultProxy({
    target: endpoint!,
    seed: 1,
    rate: 0,
    kinds: ['stall'],
    stallMs: 250,
    match: (r) => isUploadPart(r.method, r.url),
    lifetimeMs: 300_000,
  });
  proxies.push(proxy);
  const dir = path.join(work, name);
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'ckpt'), { recursive: true });
  const file = path.join(src, 'ckpt', 'weights.bin');
  fs.writeFileSync(file, randomBuffer(seed, SIZE));
  fs.utimesSync(file, T0, T0);
  fs.writeFileSync(path.join(src, 'small.txt'), `small ${seed}\n`);
  return { proxy, dir, src, file, prefix: name, cache: path.join(dir, 'cache'), stats: path.join(dir, 'stats.jsonl') };
}

function env(c: Case): Record<string, string> {
  return {
    ...s3TestEnv(),
    BUCKETSYNC_CACHE_DIR: c.cache,
    BUCKETSYNC_S3_PART_SIZE: '5M',
    BUCKETSYNC_S3_MULTIPART_THRESHOLD: '5M',
    BUCKETSYNC_S3_PART_CONCURRENCY: '2',
    BUCKETSYNC_REQUEST_STATS: c.stats,
  };
}

/** Starts a sync through the case's proxy, delaying every UploadPart answer, and SIGKILLs it once `parts` more UploadParts were answered. */
async function syncAndKill(c: Case, parts: number): Promise<void> {
  const proxy = c.proxy;
  const from = proxy.log.length;
  proxy.setRate(1);
  try {
    const answered = (): number => proxy.log.slice(from).filter((l) => isUploadPart(l.method, l.url) && l.end !== undefined).length;
    const run = await runPolling(['sync', c.src, `s3://${bucket}/${c.prefix}`, '--endpoint-url', proxy.url, '--no-progress'], () => answered() >= parts, { env: env(c), everyMs: 20, giveUpMs: 60_000 });
    expect(run.signal, `the first run finished before it was killed (exit ${run.code}):\n${run.stderr}`).toBe('SIGKILL');
  } finally {
    proxy.setRate(0);
  }
}

/** A sync through the case's proxy (no faults): the result, UploadParts sent and the CLI's request stats. */
async function syncCounted(c: Case): Promise<{ code: number | null; stderr: string; uploadParts: number; bytesSent: number; resumedBytes: number }> {
  const proxy = c.proxy;
  const from = proxy.log.length;
  fs.rmSync(c.stats, { force: true });
  const r = await cli(['sync', c.src, `s3://${bucket}/${c.prefix}`, '--endpoint-url', proxy.url, '--no-progress'], { env: env(c), timeoutMs: 90_000 });
  const stats = fs.existsSync(c.stats)
    ? fs
        .readFileSync(c.stats, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { bytesSent?: number; resumedBytes?: number })
        .filter((l) => typeof l.bytesSent === 'number') // the S3 store's line (the hasher writes one too)
    : [];
  return {
    code: r.code,
    stderr: r.stderr,
    uploadParts: proxy.log.slice(from).filter((l) => isUploadPart(l.method, l.url)).length,
    bytesSent: stats.reduce((a, s) => a + (s.bytesSent ?? 0), 0),
    resumedBytes: stats.reduce((a, s) => a + (s.resumedBytes ?? 0), 0),
  };
}

async function uploads(prefix: string): Promise<{ Key?: string; UploadId?: string }[]> {
  const res = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/` }));
  return res.Uploads ?? [];
}

/**
 * Sizes of the parts the one unfinished upload under `prefix/` holds, once RGW has settled: a
 * part whose body reached RGW before the kill may still be stored a moment after it (on a loaded
 * machine, after a first ListParts), and the next run counts it as there. So: the same list for
 * a whole second (at most 15 s).
 */
async function storedParts(prefix: string): Promise<number[]> {
  const ups = await uploads(prefix);
  expect(ups.length, 'one unfinished upload after the kill').toBe(1);
  const list = async (): Promise<number[]> =>
    ((await raw.send(new ListPartsCommand({ Bucket: bucket, Key: ups[0]!.Key!, UploadId: ups[0]!.UploadId! }))).Parts ?? []).map((p) => p.Size ?? 0);
  let parts = await list();
  for (let same = Date.now(), end = Date.now() + 15_000; Date.now() - same < 1000 && Date.now() < end; ) {
    await sleep(200);
    const now = await list();
    if (now.length !== parts.length) [parts, same] = [now, Date.now()];
  }
  return parts;
}

async function objectBytes(key: string): Promise<Buffer> {
  const res = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

function journalFiles(c: Case): string[] {
  const dir = path.join(c.cache, 's3-uploads');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.jsonl')).map((n) => path.join(dir, n)) : [];
}

describe.skipIf(!endpoint)('resumable multipart uploads (RGW)', () => {
  it('a multipart upload killed part-way resumes: only the missing parts are sent, byte-identical, no upload left', async () => {
    const c = await setup('resume', 11);
    await syncAndKill(c, 4);
    const stored = await storedParts(c.prefix);
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.length).toBeLessThan(PARTS);
    const journals = journalFiles(c);
    expect(journals).toHaveLength(1);
    expect(fs.statSync(journals[0]!).mode & 0o777).toBe(0o600);

    const smallThere = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: `${c.prefix}/small.txt` })).then(
      () => true,
      () => false,
    );
    const r = await syncCounted(c);
    expect(r.code, r.stderr).toBe(0);
    const storedBytes = stored.reduce((a, b) => a + b, 0);
    // Only the parts the server did not hold went out; nothing else of the big file.
    expect(r.uploadParts).toBe(PARTS - stored.length);
    expect(r.resumedBytes).toBe(storedBytes);
    expect(r.bytesSent).toBe(SIZE - storedBytes + (smallThere ? 0 : fs.statSync(path.join(c.src, 'small.txt')).size));
    // and the run says so
    expect(r.stderr).toMatch(/^ {2}Resumed: ckpt\/weights\.bin \(.* of 48\.0 MiB were already there from an interrupted run; .* sent\)$/m);
    expect(md5(await objectBytes(`${c.prefix}/ckpt/weights.bin`))).toBe(md5(fs.readFileSync(c.file)));
    expect(await uploads(c.prefix)).toHaveLength(0);
    expect(journalFiles(c)).toHaveLength(0);
    // and a third run has nothing to do
    const again = await syncCounted(c);
    expect(again.code).toBe(0);
    expect(again.uploadParts).toBe(0);
  }, 100_000);

  it('a source changed between the runs is not resumed: sent whole, the stale upload aborted', async () => {
    const c = await setup('changed', 12);
    await syncAndKill(c, 4);
    expect((await storedParts(c.prefix)).length).toBeGreaterThan(0);
    // Same size, new bytes in the first part only (parts stored by the killed run no longer match), new mtime.
    const buf = fs.readFileSync(c.file);
    buf.fill(7, 0, 1000);
    fs.writeFileSync(c.file, buf);
    fs.utimesSync(c.file, T0 + 60, T0 + 60);

    const r = await syncCounted(c);
    expect(r.code, r.stderr).toBe(0);
    expect(r.uploadParts).toBe(PARTS);
    expect(r.resumedBytes).toBe(0);
    expect(r.stderr).not.toMatch(/Resumed:/);
    expect(md5(await objectBytes(`${c.prefix}/ckpt/weights.bin`))).toBe(md5(buf));
    expect(await uploads(c.prefix)).toHaveLength(0);
    expect(journalFiles(c)).toHaveLength(0);
  }, 100_000);

  it('a journal torn in its last line still resumes; a corrupt one is ignored with a warning and the upload is sent whole', async () => {
    const c = await setup('torn', 13);
    await syncAndKill(c, 4);
    const stored = await storedParts(c.prefix);
    const [j] = journalFiles(c);
    const text = fs.readFileSync(j!, 'utf8');
    fs.writeFileSync(j!, text.slice(0, text.length - 7)); // a torn last append
    const r = await syncCounted(c);
    expect(r.code, r.stderr).toBe(0);
    expect(r.uploadParts).toBe(PARTS - stored.length);
    expect(md5(await objectBytes(`${c.prefix}/ckpt/weights.bin`))).toBe(md5(fs.readFileSync(c.file)));
    expect(await uploads(c.prefix)).toHaveLength(0);

    for (const [i, corrupt] of [
      (t: string) => `${t.slice(0, 25)}`, // the intent itself torn
      (t: string) => `garbage\n${t}`,
    ].entries()) {
      const d = await setup(`corrupt${i}`, 20 + i);
      await syncAndKill(d, 2);
      const [jf] = journalFiles(d);
      fs.writeFileSync(jf!, corrupt(fs.readFileSync(jf!, 'utf8')));
      const r2 = await syncCounted(d);
      expect(r2.code, r2.stderr).toBe(0);
      expect(r2.stderr).toMatch(/warning: ignoring the resume journal of s3:\/\/.*weights\.bin .*uploading it from the start/i);
      expect(r2.stderr).not.toMatch(/^\s+at /m);
      expect(r2.uploadParts).toBe(PARTS);
      expect(md5(await objectBytes(`${d.prefix}/ckpt/weights.bin`))).toBe(md5(fs.readFileSync(d.file)));
      expect(journalFiles(d)).toHaveLength(0);
    }
  }, 110_000);

  it('an upload the next run has nothing left to send for is aborted at its end', async () => {
    const c = await setup('abandoned', 14);
    await syncAndKill(c, 3);
    expect(await uploads(c.prefix)).toHaveLength(1);
    fs.rmSync(c.file); // the checkpoint is gone from the source: its upload will never complete
    const r = await syncCounted(c);
    expect(r.code, r.stderr).toBe(0);
    expect(r.uploadParts).toBe(0);
    expect(await uploads(c.prefix)).toHaveLength(0);
    expect(journalFiles(c)).toHaveLength(0);
  }, 60_000);
});

describe.skipIf(!endpoint)('resumable downloads (RGW)', () => {
  /** Puts `buf` under `key` (one PUT: its ETag is its MD5). */
  async function put(key: string, buf: Buffer): Promise<void> {
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: buf, Metadata: { mtime: String(T0) } }));
  }

  /** A download through a proxy that pauses the object's GET in mid-body; SIGKILLed once some bytes are on disk. Returns the proxy (for the re-run) and the ranges asked for. */
  async function downloadAndKill(prefix: string, dest: string, cache: string): Promise<{ proxy: FaultProxy; ranges: (string | undefined)[] }> {
    const ranges: (string | undefined)[] = [];
    const proxy = await startFaultProxy({
      target: endpoint!,
      seed: 3,
      rate: 1,
      kinds: ['stall'],
      stallMs: 4000,
      match: (r) => r.method === 'GET' && r.url.includes('/big.bin'),
      // consulted for every request (answers none): the Range of each GET of the object
      script: (r) => {
        if (r.method === 'GET' && r.url.includes('/big.bin')) ranges.push(r.headers.range as string | undefined);
        return undefined;
      },
      lifetimeMs: 120_000,
    });
    proxies.push(proxy);
    const partialSize = (): number => {
      const t = tmpName(dest);
      return t ? fs.statSync(path.join(dest, t)).size : 0;
    };
    const run = await runPolling(['sync', `s3://${bucket}/${prefix}`, dest, '--endpoint-url', proxy.url, '--no-progress'], () => partialSize() > 0, {
      env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache },
      killDelayMs: 300,
      everyMs: 20,
      giveUpMs: 60_000,
    });
    expect(run.signal, `the download finished before it was killed (exit ${run.code}):\n${run.stderr}`).toBe('SIGKILL');
    proxy.setRate(0);
    return { proxy, ranges };
  }

  function partial(dest: string): { tmp: string; size: number; record: Record<string, unknown> } {
    const tmp = tmpName(dest);
    expect(tmp, `a partial download in ${fs.readdirSync(dest).join(', ')}`).toBeDefined();
    const record = JSON.parse(fs.readFileSync(path.join(dest, `${tmp}.resume`), 'utf8')) as Record<string, unknown>;
    return { tmp: tmp!, size: fs.statSync(path.join(dest, tmp!)).size, record };
  }

  it('a download killed part-way continues from its temporary file with a Range request, verified whole', async () => {
    const buf = randomBuffer(31, SIZE);
    await put('dl/big.bin', buf);
    const dest = path.join(work, 'dl-dest');
    const cache = path.join(work, 'dl-cache');
    const { proxy, ranges } = await downloadAndKill('dl', dest, cache);
    const p = partial(dest);
    expect(p.size).toBeGreaterThan(0);
    expect(p.size).toBeLessThan(SIZE);
    expect(p.record.version).toBe(`"${md5(buf)}"`);
    const before = ranges.length;
    const r = await cli(['sync', `s3://${bucket}/dl`, dest, '--endpoint-url', proxy.url, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache }, timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    // one GET of the object, for the bytes the killed run had not written
    expect(ranges.slice(before)).toEqual([`bytes=${p.size}-`]);
    expect(r.stderr).toMatch(/^ {2}Resumed: big\.bin \(.* of 48\.0 MiB were already there from an interrupted run; .* sent\)$/m);
    expect(md5(fs.readFileSync(path.join(dest, 'big.bin')))).toBe(md5(buf));
    expect(fs.readdirSync(dest).sort()).toEqual(['big.bin']);
  }, 60_000);

  it('a partial download whose bytes were damaged on disk fails its whole-file check and is fetched again in full', async () => {
    const buf = randomBuffer(32, SIZE);
    await put('dlbad/big.bin', buf);
    const dest = path.join(work, 'dlbad-dest');
    const cache = path.join(work, 'dlbad-cache');
    const { proxy, ranges } = await downloadAndKill('dlbad', dest, cache);
    const p = partial(dest);
    const fd = fs.openSync(path.join(dest, p.tmp), 'r+');
    fs.writeSync(fd, Buffer.from([0xff ^ buf[0]!]), 0, 1, 0);
    fs.closeSync(fd);
    const before = ranges.length;
    const r = await cli(['sync', `s3://${bucket}/dlbad`, dest, '--endpoint-url', proxy.url, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache }, timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(ranges.slice(before)).toEqual([`bytes=${p.size}-`, undefined]);
    expect(md5(fs.readFileSync(path.join(dest, 'big.bin')))).toBe(md5(buf));
    expect(fs.readdirSync(dest).sort()).toEqual(['big.bin']);
  }, 60_000);

  it('a multipart object whose recorded part size is wrong (another tool passed our metadata along) still downloads, verified by its real part size', async () => {
    const buf = randomBuffer(34, SIZE);
    const key = 'dlrec/big.bin';
    // a part size that gives the same number of parts as the real one (5 MiB) but is not it
    await putMultipart(raw, bucket, key, buf, PART - 100 * 1024);
    const dest = path.join(work, 'dlrec-dest');
    const r = await cli(['sync', `s3://${bucket}/dlrec`, dest, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'dlrec-cache') }, timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(dest, 'big.bin')))).toBe(md5(buf));
    expect(fs.readdirSync(dest)).toEqual(['big.bin']);
  }, 60_000);

  it('an object changed since the interrupted download is not resumed: fetched whole, the partial file removed', async () => {
    const buf = randomBuffer(33, SIZE);
    await put('dlchg/big.bin', buf);
    const dest = path.join(work, 'dlchg-dest');
    const cache = path.join(work, 'dlchg-cache');
    const { proxy, ranges } = await downloadAndKill('dlchg', dest, cache);
    partial(dest);
    const next = Buffer.from(buf);
    next.fill(9, 0, 4096); // same size, other bytes where the partial file has them
    await put('dlchg/big.bin', next);
    const before = ranges.length;
    const r = await cli(['sync', `s3://${bucket}/dlchg`, dest, '--endpoint-url', proxy.url, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache }, timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    // no ranged GET of bytes of another version: the whole object, once
    expect(ranges.slice(before)).toEqual([undefined]);
    expect(md5(fs.readFileSync(path.join(dest, 'big.bin')))).toBe(md5(next));
    expect(fs.readdirSync(dest).sort()).toEqual(['big.bin']);
  }, 60_000);
});
