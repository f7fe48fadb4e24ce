/**
 * Issue 13, the S3 side, through the real CLI against Ceph RGW: what other tools do to a
 * bucket must never make bucketsync trust a wrong answer, lose data or delete outside the
 * location it was given.
 *
 * - 11: a stored x-amz-meta-xxh128 counts only for the bytes it was computed for (an object
 *   rewritten with the old metadata passed along is re-uploaded, --checksum included);
 * - 12: the metadata cache never pins a wrong mtime (same-bytes re-PUT / self-copy with a new
 *   mtime after our upload), its files are private, an unusable location is one warning;
 * - 13: another tool's multipart object corrupted in transit is never kept (retried), and one
 *   whose part size cannot be told is kept only when two downloads agree, with a warning;
 * - 14: a single object is not a folder (no deletes beside it, never deleted by a folder sync
 *   of its name), `s3://b//` is refused;
 * - 17: negative mtimes round-trip; absurd and year-5138 ones fall back to LastModified;
 * - 4: a file replaced by a folder (and back) converges in one run with --delete.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cli, planByPath, readTree, tempDir, writeTree, type CliOptions } from '../support/cli.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const endpoint = s3TestEndpoint();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const T0 = 1_700_000_000;
const MiB = 1024 * 1024;

describe.skipIf(!endpoint)('safety against hostile buckets (S3, real CLI, RGW)', { timeout: 120_000 }, () => {
  let raw: S3Client;
  let bucket: string;
  let work: string;
  let n = 0;
  let pfx: string;

  beforeAll(async () => {
    raw = s3TestClient();
    bucket = await createTestBucket('safety');
  });
  afterAll(() => raw?.destroy());
  beforeEach(() => {
    work = tempDir('bucketsync-safety-s3-');
    pfx = `t${++n}-${randomBytes(3).toString('hex')}`;
    return () => fs.rmSync(work, { recursive: true, force: true });
  });

  function bs(args: string[], opts: CliOptions = {}) {
    return cli(args, {
      timeoutMs: 90_000,
      ...opts,
      env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), ...opts.env },
    });
  }
  const sync = (a: string, b: string, extra: string[] = [], opts: CliOptions = {}) =>
    bs(['sync', a, b, '--endpoint-url', endpoint!, '--no-progress', ...extra], opts);

  async function head(key: string) {
    return raw.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  }
  async function body(key: string): Promise<Buffer> {
    const r = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await r.Body!.transformToByteArray());
  }
  async function keys(prefix: string): Promise<string[]> {
    const r = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (r.Contents ?? []).map((o) => o.Key!).sort();
  }
  async function put(key: string, data: Buffer | string, metadata: Record<string, string> = {}) {
    const b = Buffer.from(data);
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: b, ContentLength: b.length, Metadata: metadata }));
  }
  /** Another tool's multipart upload: its parts of `partSize`, no part-size metadata. */
  async function putMultipart(key: string, data: Buffer, partSize: number, metadata: Record<string, string> = {}) {
    const { UploadId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, Metadata: metadata }));
    const parts = [];
    for (let i = 0, at = 0; at < data.length; i++, at += partSize) {
      const chunk = data.subarray(at, Math.min(data.length, at + partSize));
      const r = await raw.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: chunk, ContentLength: chunk.length }));
      parts.push({ PartNumber: i + 1, ETag: r.ETag });
    }
    await raw.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  }

  it('11: an object rewritten by another tool that passed the old xxh128 metadata along is uploaded again (default and --checksum)', async () => {
    const src = path.join(work, 'src');
    writeTree(src, { 'a.txt': 'the right bytes!', 'b.txt': 'second right one' }, T0);
    const url = `s3://${bucket}/${pfx}`;
    const first = await sync(src, url);
    expect(first.code, first.stderr).toBe(0);
    // A script rewrites both objects (same sizes), copying the old metadata (mtime, xxh128…).
    for (const k of ['a.txt', 'b.txt']) {
      const h = await head(`${pfx}/${k}`);
      await put(`${pfx}/${k}`, k === 'a.txt' ? 'WRONG BYTES HERE' : 'wrong second one', h.Metadata ?? {});
    }
    // a.txt is touched locally: the old code took the stale xxh128 for proof and only re-stamped it.
    fs.utimesSync(path.join(src, 'a.txt'), T0 + 100, T0 + 100);
    const r = await sync(src, url);
    expect(r.code, r.stderr).toBe(0);
    expect((await body(`${pfx}/a.txt`)).toString()).toBe('the right bytes!');
    // b.txt has the same size and mtime (quick check says identical): --checksum must see it.
    const c = await sync(src, url, ['--checksum']);
    expect(c.code, c.stderr).toBe(0);
    expect((await body(`${pfx}/b.txt`)).toString()).toBe('second right one');
    const again = await sync(src, url, ['--checksum']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('Nothing to sync.');
  });

  it('12: a same-bytes re-PUT and a self-copy with a new mtime after our upload do not pin a wrong mtime: downloads and --delete work', async () => {
    const src = path.join(work, 'src');
    writeTree(src, { 'x.bin': 'x content', 'y.bin': 'y content', 'z.bin': 'z content' }, T0);
    const url = `s3://${bucket}/${pfx}`;
    expect((await sync(src, url)).code).toBe(0);
    // Our upload's cache records carry the server-time window of each PUT; a foreign write in
    // the same second as our PUT's response may fall inside it (the documented limit). These
    // come later, as `rclone touch` or a re-upload would.
    await sleep(2100);
    // another tool: same bytes re-PUT with a new mtime (rclone touch), and a self-copy
    await put(`${pfx}/x.bin`, 'x content', { mtime: String(T0 + 5000) });
    await raw.send(
      new CopyObjectCommand({ Bucket: bucket, Key: `${pfx}/y.bin`, CopySource: `${bucket}/${pfx}/y.bin`, MetadataDirective: 'REPLACE', Metadata: { mtime: String(T0 + 7000) } }),
    );
    const dl = path.join(work, 'dl');
    const d = await sync(url, dl);
    expect(d.code, d.stderr).toBe(0);
    expect(Math.round(fs.statSync(path.join(dl, 'x.bin')).mtimeMs / 1000)).toBe(T0 + 5000);
    expect(Math.round(fs.statSync(path.join(dl, 'y.bin')).mtimeMs / 1000)).toBe(T0 + 7000);
    const d2 = await sync(url, dl);
    expect(d2.code, d2.stderr).toBe(0);
    expect(d2.stderr).toContain('Nothing to sync.');
    // upload-side --delete of the touched object from a source without it
    fs.rmSync(path.join(src, 'x.bin'));
    await put(`${pfx}/z.bin`, 'z content', { mtime: String(T0 + 9000) });
    const del = await sync(src, url, ['--delete', '--ignore-times']);
    expect(del.code, del.stderr).toBe(0);
    expect(await keys(`${pfx}/`)).toEqual([`${pfx}/y.bin`, `${pfx}/z.bin`]);

    // cache files are private
    const metaDir = path.join(work, 'cache', 's3-meta');
    expect(fs.statSync(metaDir).mode & 0o777).toBe(0o700);
    const files = fs.readdirSync(metaDir);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(fs.statSync(path.join(metaDir, f)).mode & 0o777, f).toBe(0o600);
  });

  for (const client of ['http', 'sdk'] as const) {
    it(`12: a no-op sync right after uploading 120 files sends no HeadObject (our writes are proven by their server-time window; ${client} transport)`, async () => {
      const src = path.join(work, 'src');
      const files: Record<string, string> = {};
      for (let i = 0; i < 120; i++) files[`d${i % 4}/f${String(i).padStart(3, '0')}.txt`] = `file ${i}`;
      writeTree(src, files, T0);
      const url = `s3://${bucket}/${pfx}`;
      const stats = path.join(work, 'stats.jsonl');
      const env = { BUCKETSYNC_S3_CLIENT: client === 'sdk' ? 'sdk' : '', BUCKETSYNC_REQUEST_STATS: stats };
      const up = await sync(src, url, [], { env });
      expect(up.code, up.stderr).toBe(0);
      const requests = () => fs.readFileSync(stats, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { requests: Record<string, number> }).requests);
      expect(requests()[0]!.PutObject).toBe(120);
      fs.rmSync(stats);
      const noop = await sync(src, url, [], { env });
      expect(noop.code, noop.stderr).toBe(0);
      expect(noop.stderr).toContain('Nothing to sync.');
      expect(requests()).toEqual([{ HeadBucket: 1, ListObjectsV2: 1 }]);
      // and a download of them, right after, gets each mtime exactly
      const dl = path.join(work, 'dl');
      const d = await sync(url, dl, [], { env });
      expect(d.code, d.stderr).toBe(0);
      expect(readTree(dl)).toEqual(files);
      expect(fs.statSync(path.join(dl, 'd1/f001.txt')).mtimeMs).toBe(T0 * 1000);
    });
  }

  it('12: an unusable metadata cache location (a file where its folder should be) is one warning, not a failed run', async () => {
    const src = path.join(work, 'src');
    writeTree(src, { 'a.txt': 'a' }, T0);
    // (XDG_CACHE_HOME being a file also takes the lock folder away: that is the lock's part, class 8)
    fs.mkdirSync(path.join(work, 'cache'));
    fs.writeFileSync(path.join(work, 'cache', 's3-meta'), 'not a folder');
    const r = await sync(src, `s3://${bucket}/${pfx}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/metadata cache/g) ?? [], r.stderr).toHaveLength(1);
    expect(await keys(`${pfx}/`)).toEqual([`${pfx}/a.txt`]);
  });

  it('13: a foreign multipart object corrupted in transit is never kept; an unknown part size is kept only when two downloads agree, and said so', async () => {
    const data = randomBytes(11 * MiB + 123);
    await putMultipart(`${pfx}/m/five.bin`, data, 5 * MiB, { mtime: String(T0) });
    const odd = randomBytes(13 * MiB);
    await putMultipart(`${pfx}/m/odd.bin`, odd, 6 * MiB + 4096, { mtime: String(T0) });
    expect((await head(`${pfx}/m/five.bin`)).ETag).toMatch(/-3"$/);

    // every GET of five.bin corrupted: never written under its final name, exit 1
    const always = await startFaultProxy({
      target: endpoint!,
      seed: 7,
      rate: 1,
      kinds: ['corrupt'],
      match: (q) => q.method === 'GET' && q.url.includes('five.bin'),
    });
    try {
      const dl = path.join(work, 'dl1');
      const r = await bs(['sync', `s3://${bucket}/${pfx}/m`, dl, '--endpoint-url', always.url, '--no-progress', '--retries', '1']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/five\.bin.*(corrupted|could not be verified)/);
      expect(fs.existsSync(path.join(dl, 'five.bin'))).toBe(false);
      expect(always.counts.corrupt).toBeGreaterThanOrEqual(2);
      // odd.bin went through clean: kept after a second, agreeing download, with a warning
      expect(createHash('sha256').update(fs.readFileSync(path.join(dl, 'odd.bin'))).digest('hex')).toBe(createHash('sha256').update(odd).digest('hex'));
      expect(r.stderr).toMatch(/odd\.bin could not be verified/);
      // and the summary says so: counted, never a clean-looking run
      expect(r.stderr).toMatch(/^\s+Unverified:\s+1 file \(kept/m);
    } finally {
      await always.close();
    }

    // corrupted once: the retry gets the right bytes, verified with the 5 MiB part size
    const once = await startFaultProxy({ target: endpoint!, seed: 8, rate: 1, maxFaults: 1, kinds: ['corrupt'], match: (q) => q.method === 'GET' && q.url.includes('five.bin') });
    try {
      const dl = path.join(work, 'dl2');
      const r = await bs(['sync', `s3://${bucket}/${pfx}/m/five.bin`, dl, '--endpoint-url', once.url, '--no-progress']);
      expect(r.code, r.stderr).toBe(0);
      expect(once.counts.corrupt).toBe(1);
      expect(fs.readFileSync(path.join(dl, 'five.bin')).equals(data)).toBe(true);
      expect(r.stderr).not.toMatch(/could not be verified/);
    } finally {
      await once.close();
    }
  });

  it('14: a single object is not a folder: no deletes beside it, never deleted by a folder sync of its name; s3://b// is refused', async () => {
    await put(`${pfx}/ckpt`, 'one checkpoint', { mtime: String(T0) });
    const local = path.join(work, 'ckpt');
    writeTree(local, { 'keep-1.txt': 'mine', 'sub/keep-2.txt': 'mine too' }, T0);
    const r = await sync(`s3://${bucket}/${pfx}/ckpt`, local, ['--delete']);
    expect(r.code, r.stderr).toBe(0);
    expect(readTree(local)).toEqual({ ckpt: 'one checkpoint', 'keep-1.txt': 'mine', 'sub/keep-2.txt': 'mine too' });
    expect(r.stderr).toMatch(/single file, not a folder: --delete deletes nothing/);

    // a folder sync to `name` never touches the object `name` (outside `name/`)
    await put(`${pfx}/name`, 'the object name', { mtime: String(T0) });
    const dir = path.join(work, 'dir');
    writeTree(dir, { 'x.txt': 'x' }, T0);
    const up = await sync(dir, `s3://${bucket}/${pfx}/name`, ['--delete']);
    expect(up.code, up.stderr).toBe(0);
    expect((await body(`${pfx}/name`)).toString()).toBe('the object name');
    expect(await keys(`${pfx}/name`)).toEqual([`${pfx}/name`, `${pfx}/name/x.txt`]);
    // and --apply of a plan made that way too
    const plan = path.join(work, 'p.jsonl');
    fs.rmSync(path.join(dir, 'x.txt'));
    writeTree(dir, { 'y.txt': 'y' }, T0);
    expect((await sync(dir, `s3://${bucket}/${pfx}/name`, ['--delete', '--plan', plan])).code).toBe(0);
    expect(Object.keys(planByPath(fs.readFileSync(plan, 'utf8')))).not.toContain('name');
    const ap = await bs(['sync', '--apply', plan, '--endpoint-url', endpoint!, '--no-progress']);
    expect(ap.code, ap.stderr).toBe(0);
    expect(await keys(`${pfx}/name`)).toEqual([`${pfx}/name`, `${pfx}/name/y.txt`]);

    // `s3://b//` is not the bucket root in disguise
    fs.mkdirSync(path.join(work, 'empty-src'));
    for (const bad of [`s3://${bucket}//`, `s3://${bucket}//x`, `s3://${bucket}/${pfx}//name`]) {
      const e = await sync(path.join(work, 'empty-src'), bad, ['--delete', '--dry-run']);
      expect(e.code, `${bad}: ${e.stderr}`).toBe(2);
      expect(e.stderr.trim().split('\n')[0]).toMatch(/empty (path )?segment/);
    }
    // a trailing '/' says "the folder": the object `ckpt` is not part of it
    const asFolder = await sync(`s3://${bucket}/${pfx}/ckpt/`, path.join(work, 'as-folder'));
    expect(asFolder.code, asFolder.stderr).toBe(0);
    expect(fs.existsSync(path.join(work, 'as-folder', 'ckpt'))).toBe(false);
    expect(asFolder.stderr).toMatch(/'[^']*ckpt' has the same name as the folder/);
  });

  it("17: another tool's negative mtimes round-trip in plans; absurd and year-5138 ones fall back to LastModified without failing the run", async () => {
    await put(`${pfx}/t/neg.txt`, 'n', { mtime: '-86400.5' });
    await put(`${pfx}/t/huge.txt`, 'h', { mtime: '1e22' });
    await put(`${pfx}/t/huge2.txt`, 'h', { mtime: '10000000000000000000000' });
    await put(`${pfx}/t/y5138.txt`, 'y', { mtime: '99999999999' });
    await put(`${pfx}/t/junk.txt`, 'j', { mtime: 'yesterday' });
    await put(`${pfx}/t/pre1901.txt`, 'p', { mtime: '-5000000000' });
    const lm = (await head(`${pfx}/t/huge2.txt`)).LastModified!.getTime();
    const r = await sync(`s3://${bucket}/${pfx}/t`, path.join(work, 'dl'), ['--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    const ops = planByPath(r.stdout);
    expect(ops['neg.txt']!['remote_mtime']).toBe('1969-12-30T23:59:59.500000+00:00');
    for (const p of ['huge.txt', 'huge2.txt', 'y5138.txt', 'junk.txt', 'pre1901.txt']) {
      const m = Date.parse(ops[p]!['remote_mtime'] as string);
      expect(Math.abs(m - lm), p).toBeLessThan(60_000);
    }
  });

  it('4: a file replaced by a folder of the same name, and back, converges in one run with --delete', async () => {
    const src = path.join(work, 'src');
    const url = `s3://${bucket}/${pfx}`;
    writeTree(src, { a: 'file a', 'b/x': 'in b' }, T0);
    expect((await sync(src, url)).code).toBe(0);
    fs.rmSync(path.join(src, 'a'));
    fs.rmSync(path.join(src, 'b'), { recursive: true });
    writeTree(src, { 'a/x': 'now a folder', b: 'now a file' }, T0);
    const r = await sync(src, url, ['--delete']);
    expect(r.code, r.stderr).toBe(0);
    expect(await keys(`${pfx}/`)).toEqual([`${pfx}/a/x`, `${pfx}/b`]);
    const again = await sync(src, url, ['--delete']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('Nothing to sync.');
  });
});
