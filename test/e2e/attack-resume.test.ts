/**
 * Attacks on a resumable download's leftovers (the `<tmp>` file and its `.resume` record) in the
 * destination folder, through the CLI against RGW. A dead run's temporary file is taken over by
 * the next run and written in place (ranged parts by position): so the file adopted must be a
 * plain file of its own, never a link to data outside the destination. Forged leftovers (a dead
 * pid of this host, the object's real ETag) stand for a killed run.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  PutObjectCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostId } from '../../src/scanner/names.js';
import { cli, tempDir } from '../support/cli.js';
import { randomBuffer } from '../support/fault-proxy.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const endpoint = s3TestEndpoint();
const PART = 5 * 1024 * 1024;
const SIZE = 3 * PART + 1000; // 4 parts
const DEAD_PID = 999_999_999; // 9 digits: a temp name's pid, never a live one here

let raw: S3Client;
let bucket: string;
let work: string;
let buf: Buffer;
let etag: string;

beforeAll(async () => {
  if (!endpoint) return;
  raw = s3TestClient();
  bucket = await createTestBucket('attack-resume');
  work = tempDir('bucketsync-attack-resume-');
  buf = randomBuffer(77, SIZE);
  const created = await raw.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'p/big.bin', Metadata: { 'part-size': String(PART), mtime: '1700000000' } }));
  const parts: { PartNumber: number; ETag: string }[] = [];
  for (let i = 0, at = 0; at < SIZE; i++, at += PART) {
    const r = await raw.send(new UploadPartCommand({ Bucket: bucket, Key: 'p/big.bin', UploadId: created.UploadId, PartNumber: i + 1, Body: buf.subarray(at, Math.min(SIZE, at + PART)) }));
    parts.push({ PartNumber: i + 1, ETag: r.ETag! });
  }
  await raw.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'p/big.bin', UploadId: created.UploadId, MultipartUpload: { Parts: parts } }));
  etag = (await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: 'p/big.bin' }))).ETag!;
});
afterAll(() => {
  raw?.destroy();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const md5 = (b: Buffer | string): string => createHash('md5').update(typeof b === 'string' ? fs.readFileSync(b) : b).digest('hex');

/** A dead run's leftovers in `dest`: the temp file made by `make(tmpPath)` and a record listing `done`. */
function forge(dest: string, make: (tmp: string) => void, done: number[]): string {
  fs.mkdirSync(dest, { recursive: true });
  const tmp = path.join(dest, `.bucketsync-tmp-${hostId()}-${DEAD_PID}-aaaaaaaa-big.bin`);
  make(tmp);
  const rec = { v: 1, final: 'big.bin', version: etag, size: SIZE, t: Date.now(), parts: { partSize: PART, done } };
  fs.writeFileSync(`${tmp}.resume`, `${JSON.stringify(rec)}\n`);
  return tmp;
}

const sync = (dest: string): ReturnType<typeof cli> =>
  cli(['sync', `s3://${bucket}/p`, dest, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') }, timeoutMs: 60_000 });

describe.skipIf(!endpoint)('attack: forged resume leftovers (RGW)', () => {
  it('control: a forged partial file of its own is adopted (the forgery is faithful)', async () => {
    const dest = path.join(work, 'control');
    forge(dest, (tmp) => {
      const b = Buffer.alloc(SIZE);
      buf.copy(b, 0, 0, PART);
      fs.writeFileSync(tmp, b);
    }, [0]);
    const r = await sync(dest);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Resumed: big\.bin/);
    expect(md5(path.join(dest, 'big.bin'))).toBe(md5(buf));
    expect(fs.readdirSync(dest)).toEqual(['big.bin']);
  }, 60_000);

  it('a temp file hard-linked to a file outside the destination is not written through', async () => {
    const dest = path.join(work, 'hardlink');
    const outside = path.join(work, 'outside-hard.bin');
    fs.writeFileSync(outside, Buffer.alloc(SIZE, 'O'));
    const before = md5(outside);
    forge(dest, (tmp) => fs.linkSync(outside, tmp), [0]);
    const r = await sync(dest);
    expect(r.code, r.stderr).toBe(0);
    expect(md5(outside), 'the file outside the destination was written').toBe(before);
    expect(md5(path.join(dest, 'big.bin'))).toBe(md5(buf));
    expect(fs.readdirSync(dest)).toEqual(['big.bin']);
  }, 60_000);

  it('a smaller hard-linked temp file is not extended either', async () => {
    const dest = path.join(work, 'hardlink-small');
    const outside = path.join(work, 'outside-small.bin');
    fs.writeFileSync(outside, 'precious\n');
    forge(dest, (tmp) => fs.linkSync(outside, tmp), [0]);
    const r = await sync(dest);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(outside, 'utf8')).toBe('precious\n');
    expect(md5(path.join(dest, 'big.bin'))).toBe(md5(buf));
  }, 60_000);

  it('a temp file that is a symlink to a file outside the destination is dropped, its target untouched', async () => {
    const dest = path.join(work, 'symlink');
    const outside = path.join(work, 'outside-sym.bin');
    fs.writeFileSync(outside, Buffer.alloc(SIZE, 'S'));
    const before = md5(outside);
    forge(dest, (tmp) => fs.symlinkSync(outside, tmp), [0]);
    const r = await sync(dest);
    expect(r.code, r.stderr).toBe(0);
    expect(md5(outside)).toBe(before);
    expect(md5(path.join(dest, 'big.bin'))).toBe(md5(buf));
    expect(fs.readdirSync(dest)).toEqual(['big.bin']);
  }, 60_000);

  it('a record claiming every part over a file of other bytes is not accepted', async () => {
    const dest = path.join(work, 'liar');
    forge(dest, (tmp) => fs.writeFileSync(tmp, Buffer.alloc(SIZE, 'L')), [0, 1, 2, 3]);
    const r = await sync(dest);
    expect(r.code, r.stderr).toBe(0);
    expect(md5(path.join(dest, 'big.bin'))).toBe(md5(buf));
    expect(fs.readdirSync(dest)).toEqual(['big.bin']);
  }, 60_000);

  it('streamed resume (one-piece ETag): a hard-linked partial file outside the destination is neither truncated nor appended to', async () => {
    const small = randomBuffer(78, 256 * 1024);
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'one/big.bin', Body: small }));
    const oneEtag = (await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: 'one/big.bin' }))).ETag!;
    const dest = path.join(work, 'one');
    fs.mkdirSync(dest);
    const outside = path.join(work, 'outside-one.bin');
    fs.writeFileSync(outside, Buffer.concat([small.subarray(0, 1000), Buffer.from('precious tail\n')]));
    const before = md5(outside);
    const tmp = path.join(dest, `.bucketsync-tmp-${hostId()}-${DEAD_PID}-bbbbbbbb-big.bin`);
    fs.linkSync(outside, tmp);
    fs.writeFileSync(`${tmp}.resume`, `${JSON.stringify({ v: 1, final: 'big.bin', version: oneEtag, size: small.length, t: Date.now() })}\n`);
    const r = await cli(['sync', `s3://${bucket}/one`, dest, '--no-progress'], {
      env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), BUCKETSYNC_RESUME_MIN_SIZE: '1024' },
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(md5(outside), 'the file outside the destination was written').toBe(before);
    expect(md5(path.join(dest, 'big.bin'))).toBe(md5(small));
    expect(fs.readdirSync(dest)).toEqual(['big.bin']);
  }, 60_000);

  it('a folder of the temporary shape with a record beside it neither fails the download nor is removed', async () => {
    const dest = path.join(work, 'folder');
    const tmp = forge(dest, (t) => {
      fs.mkdirSync(path.join(t, 'inner'), { recursive: true });
      fs.writeFileSync(path.join(t, 'inner', 'precious'), 'keep');
    }, [0]);
    const r = await sync(dest);
    expect(r.code, r.stderr).toBe(0);
    expect(md5(path.join(dest, 'big.bin'))).toBe(md5(buf));
    expect(fs.readFileSync(path.join(tmp, 'inner', 'precious'), 'utf8')).toBe('keep');
  }, 60_000);

  // Before the fix the record was read with readFileSync: a fifo blocked the main thread for
  // good (not even SIGTERM ended it: the CLI's handler never ran), /dev/zero filled memory.
  for (const [what, make] of [
    ['a fifo', (rec: string) => execFileSync('mkfifo', [rec])],
    ['a link to /dev/zero', (rec: string) => fs.symlinkSync('/dev/zero', rec)],
  ] as const) {
    it(`a .resume record that is ${what} neither hangs the run nor fills its memory`, async () => {
      const dest = path.join(work, `rec-${what.replace(/\W+/g, '-')}`);
      fs.mkdirSync(dest, { recursive: true });
      const tmp = path.join(dest, `.bucketsync-tmp-${hostId()}-${DEAD_PID}-cccccccc-big.bin`);
      fs.writeFileSync(tmp, Buffer.alloc(SIZE));
      make(`${tmp}.resume`);
      const r = await cli(['sync', `s3://${bucket}/p`, dest, '--no-progress'], { env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') }, timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(md5(path.join(dest, 'big.bin'))).toBe(md5(buf));
    }, 60_000);
  }
});
