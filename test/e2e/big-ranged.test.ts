/**
 * Big downloads as concurrent ranged GETs (src/stores/s3/download.ts), end to end through the
 * CLI against RGW: a multipart object whose part size is recorded is fetched one part per
 * Range request into a pre-allocated temporary file; killed with SIGKILL part-way, the next run
 * fetches only the parts the `.resume` record does not list (the proxy sees exactly those
 * ranges), byte-identical; parts damaged on disk fail the whole-object ETag check and the file
 * is fetched again; an object changed since is fetched whole, the partial file removed; a
 * corrupt record is ignored. Small parts (5 MiB) keep it fast.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5, MiB, PART, partsDone, putMultipart, rangeStart, resumeRecord, tmpName } from '../support/big-files.js';
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
  const s = await openS3Suite('big-ranged');
  if (s) ({ raw, bucket, work } = s);
});
afterAll(() => closeS3Suite({ raw, bucket, work }, proxies));

const partRange = (i: number): string => `bytes=${i * PART}-${Math.min(SIZE, (i + 1) * PART) - 1}`;

/**
 * A download through a proxy that holds every GET of a part from the 5th on (30 s): the first
 * four parts arrive, then the run is SIGKILLed once the `.resume` record lists them. Returns
 * the proxy (stalls off, for the re-run) and the Range of every GET of the object it saw.
 */
async function downloadAndKill(prefix: string, dest: string, cache: string): Promise<{ proxy: FaultProxy; ranges: (string | undefined)[] }> {
  const ranges: (string | undefined)[] = [];
  const isObjectGet = (r: { method: string; url: string }): boolean => r.method === 'GET' && r.url.includes('/big.bin');
  const proxy = await startFaultProxy({
    target: endpoint!,
    seed: 5,
    rate: 1,
    kinds: ['stall'],
    stallMs: 30_000,
    match: (r) => isObjectGet(r) && rangeStart(r.headers.range) >= 4 * PART,
    script: (r) => {
      if (isObjectGet(r)) ranges.push(r.headers.range as string | undefined);
      return undefined;
    },
    lifetimeMs: 120_000,
  });
  proxies.push(proxy);
  const run = await runPolling(['sync', `s3://${bucket}/${prefix}`, dest, '--endpoint-url', proxy.url, '--no-progress'], () => partsDone(dest) >= 4, {
    env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache, BUCKETSYNC_S3_DOWNLOAD_CONCURRENCY: '4' },
    everyMs: 20,
    giveUpMs: 60_000,
  });
  expect(run.signal, `the download finished before it was killed (exit ${run.code}):\n${run.stderr}`).toBe('SIGKILL');
  proxy.setRate(0);
  return { proxy, ranges };
}

describe.skipIf(!endpoint)('ranged downloads (RGW)', () => {
  it('a multipart object is fetched one part per ranged GET; killed part-way, the next run fetches only the parts not yet written, byte-identical', async () => {
    const buf = randomBuffer(41, SIZE);
    await putMultipart(raw, bucket, 'rg/big.bin', buf);
    const dest = path.join(work, 'rg-dest');
    const cache = path.join(work, 'rg-cache');
    const { proxy, ranges } = await downloadAndKill('rg', dest, cache);
    // every GET of the killed run asked for exactly one part
    expect(ranges.length).toBeGreaterThan(0);
    for (const r of ranges) expect([...Array(PARTS).keys()].map(partRange)).toContain(r);
    const rec = resumeRecord(dest)!;
    expect(rec.parts!.partSize).toBe(PART);
    const done = rec.parts!.done;
    expect(done.length).toBeGreaterThanOrEqual(4);
    // the temporary file has the object's size from the start
    expect(fs.statSync(path.join(dest, tmpName(dest)!)).size).toBe(SIZE);
    const before = ranges.length;
    const r = await cli(['sync', `s3://${bucket}/rg`, dest, '--endpoint-url', proxy.url, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache }, timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    const missing = [...Array(PARTS).keys()].filter((i) => !done.includes(i));
    expect([...ranges.slice(before)].sort()).toEqual(missing.map(partRange).sort());
    const kept = done.reduce((n, i) => n + Math.min(PART, SIZE - i * PART), 0);
    expect(r.stderr).toMatch(/^ {2}Resumed: big\.bin \(.* of 48\.0 MiB were already there from an interrupted run; .* sent\)$/m);
    // the bytes fetched over both runs: at most the file plus the parts in flight at the kill
    expect(kept).toBeGreaterThanOrEqual(4 * PART);
    expect(md5(fs.readFileSync(path.join(dest, 'big.bin')))).toBe(md5(buf));
    expect(fs.readdirSync(dest).sort()).toEqual(['big.bin']);
  }, 90_000);

  it('a part damaged on disk after the kill fails the whole-object ETag check: the partial file is dropped and the object fetched again, byte-identical', async () => {
    const buf = randomBuffer(42, SIZE);
    await putMultipart(raw, bucket, 'rgbad/big.bin', buf);
    const dest = path.join(work, 'rgbad-dest');
    const cache = path.join(work, 'rgbad-cache');
    const { proxy, ranges } = await downloadAndKill('rgbad', dest, cache);
    const rec = resumeRecord(dest)!;
    const victim = rec.parts!.done[0]!;
    const fd = fs.openSync(path.join(dest, tmpName(dest)!), 'r+');
    fs.writeSync(fd, Buffer.from([0xff ^ buf[victim * PART + 7]!]), 0, 1, victim * PART + 7);
    fs.closeSync(fd);
    const before = ranges.length;
    const r = await cli(['sync', `s3://${bucket}/rgbad`, dest, '--endpoint-url', proxy.url, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache }, timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    // the missing parts, then (the check failed) the whole object in one streamed GET, verified by its ETag
    const after = ranges.slice(before);
    expect(after.at(-1)).toBeUndefined();
    expect(after.filter((x) => x === undefined)).toHaveLength(1);
    expect(md5(fs.readFileSync(path.join(dest, 'big.bin')))).toBe(md5(buf));
    expect(fs.readdirSync(dest).sort()).toEqual(['big.bin']);
  }, 90_000);

  it('an object rewritten since the interrupted download is not resumed: every part fetched again, the partial file removed', async () => {
    const buf = randomBuffer(43, SIZE);
    await putMultipart(raw, bucket, 'rgchg/big.bin', buf);
    const dest = path.join(work, 'rgchg-dest');
    const cache = path.join(work, 'rgchg-cache');
    const { proxy, ranges } = await downloadAndKill('rgchg', dest, cache);
    expect(resumeRecord(dest)!.parts!.done.length).toBeGreaterThan(0);
    const next = Buffer.from(buf);
    next.fill(9, 0, 4096); // same size, other bytes in a part the partial file holds
    await putMultipart(raw, bucket, 'rgchg/big.bin', next);
    const before = ranges.length;
    const r = await cli(['sync', `s3://${bucket}/rgchg`, dest, '--endpoint-url', proxy.url, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache }, timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect([...ranges.slice(before)].sort()).toEqual([...Array(PARTS).keys()].map(partRange).sort());
    expect(r.stderr).not.toMatch(/Resumed:/);
    expect(md5(fs.readFileSync(path.join(dest, 'big.bin')))).toBe(md5(next));
    expect(fs.readdirSync(dest).sort()).toEqual(['big.bin']);
  }, 90_000);

  it('a corrupt .resume record is ignored: the partial file is removed and every part fetched', async () => {
    const buf = randomBuffer(44, SIZE);
    await putMultipart(raw, bucket, 'rgrec/big.bin', buf);
    const dest = path.join(work, 'rgrec-dest');
    const cache = path.join(work, 'rgrec-cache');
    const { proxy, ranges } = await downloadAndKill('rgrec', dest, cache);
    const t = tmpName(dest)!;
    const recFile = path.join(dest, `${t}.resume`);
    const rec = JSON.parse(fs.readFileSync(recFile, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(recFile, JSON.stringify({ ...rec, parts: { partSize: PART, done: [0, 'x', -1] } }));
    const before = ranges.length;
    const r = await cli(['sync', `s3://${bucket}/rgrec`, dest, '--endpoint-url', proxy.url, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: cache }, timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect([...ranges.slice(before)].sort()).toEqual([...Array(PARTS).keys()].map(partRange).sort());
    expect(md5(fs.readFileSync(path.join(dest, 'big.bin')))).toBe(md5(buf));
    expect(fs.readdirSync(dest).sort()).toEqual(['big.bin']);
  }, 90_000);
  it.each([
    ['hashed from the file by a worker', '0'],
    ['hashed as it arrives (BUCKETSYNC_S3_DOWNLOAD_INLINE_MD5=1)', '1'],
  ])('a byte flipped on the way in one ranged GET (%s) fails the whole-object ETag check: the object is fetched again in one verified GET, byte-identical, nothing else left', async (_how, inline) => {
    const buf = randomBuffer(45, SIZE);
    const prefix = `rgflip${inline}`;
    await putMultipart(raw, bucket, `${prefix}/big.bin`, buf);
    const dest = path.join(work, `${prefix}-dest`);
    const ranges: (string | undefined)[] = [];
    const isObjectGet = (r: { method: string; url: string }): boolean => r.method === 'GET' && r.url.includes('/big.bin');
    // one byte of the 7th part flipped in transit, every other byte as the server sent it
    const proxy = await startFaultProxy({
      target: endpoint!,
      seed: 7,
      rate: 1,
      kinds: ['corrupt'],
      maxFaults: 1,
      match: (r) => isObjectGet(r) && r.headers.range === partRange(6),
      script: (r) => {
        if (isObjectGet(r)) ranges.push(r.headers.range as string | undefined);
        return undefined;
      },
      lifetimeMs: 120_000,
    });
    proxies.push(proxy);
    const env = { ...s3TestEnv(), BUCKETSYNC_S3_DOWNLOAD_CONCURRENCY: '4', BUCKETSYNC_S3_DOWNLOAD_INLINE_MD5: inline };
    // a clean download first: every part once, by range, verified, no second GET
    proxy.setRate(0);
    const clean = await cli(['sync', `s3://${bucket}/${prefix}`, `${dest}-clean`, '--endpoint-url', proxy.url, '--no-progress'], {
      env: { ...env, BUCKETSYNC_CACHE_DIR: path.join(work, `${prefix}-clean-cache`) },
      timeoutMs: 90_000,
    });
    expect(clean.code, clean.stderr).toBe(0);
    expect([...ranges].sort()).toEqual([...Array(PARTS).keys()].map(partRange).sort());
    expect(md5(fs.readFileSync(path.join(`${dest}-clean`, 'big.bin')))).toBe(md5(buf));
    ranges.length = 0;
    proxy.setRate(1);
    const r = await cli(['sync', `s3://${bucket}/${prefix}`, dest, '--endpoint-url', proxy.url, '--no-progress'], {
      env: { ...env, BUCKETSYNC_CACHE_DIR: path.join(work, `${prefix}-cache`) },
      timeoutMs: 90_000,
    });
    expect(proxy.counts.corrupt).toBe(1);
    expect(r.code, r.stderr).toBe(0);
    // every part by range, then (the check failed) the whole object in one streamed GET
    expect(ranges.filter((x) => x !== undefined).sort()).toEqual([...Array(PARTS).keys()].map(partRange).sort());
    expect(ranges.at(-1)).toBeUndefined();
    expect(md5(fs.readFileSync(path.join(dest, 'big.bin')))).toBe(md5(buf));
    expect(fs.readdirSync(dest).sort()).toEqual(['big.bin']);
  }, 90_000);

  it('every GET of the object corrupted on the way: the download fails (exit 1), nothing under the final name, no temporary file left', async () => {
    const buf = randomBuffer(46, SIZE);
    await putMultipart(raw, bucket, 'rgflipall/big.bin', buf);
    const dest = path.join(work, 'rgflipall-dest');
    const proxy = await startFaultProxy({
      target: endpoint!,
      seed: 8,
      rate: 1,
      kinds: ['corrupt'],
      match: (r) => r.method === 'GET' && r.url.includes('/big.bin'),
      lifetimeMs: 120_000,
    });
    proxies.push(proxy);
    const r = await cli(['sync', `s3://${bucket}/rgflipall`, dest, '--endpoint-url', proxy.url, '--no-progress'], {
      env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'rgflipall-cache') },
      timeoutMs: 90_000,
    });
    expect(proxy.counts.corrupt).toBeGreaterThan(0);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/rgflipall\/big\.bin/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(fs.existsSync(path.join(dest, 'big.bin'))).toBe(false);
    expect(fs.existsSync(dest) ? fs.readdirSync(dest) : []).toEqual([]);
  }, 90_000);
});
