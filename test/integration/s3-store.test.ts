// The S3 store against a real S3 server (Ceph RGW started by the vitest globalSetup, or
// BUCKETSYNC_TEST_S3_ENDPOINT). Nothing here is mocked: every request goes to the server.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteBucketPolicyCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3StoreError, openS3Store, type S3Store, type S3StoreOptions } from '../../src/stores/s3/index.js';
import { ChangedDuringTransferError } from '../../src/errors.js';
import { StaleError, type TransferSource } from '../../src/stores/store.js';
import type { FileEntry } from '../../src/types.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const endpoint = s3TestEndpoint();
const MiB = 1024 * 1024;

let tmp: string;
let raw: S3Client;
let savedEnv: NodeJS.ProcessEnv;
const stores: S3Store[] = [];

interface Opened {
  store: S3Store;
  warnings: string[];
}

async function open(bucket: string, prefix = '', opts: S3StoreOptions = {}): Promise<Opened> {
  const warnings: string[] = [];
  const store = await openS3Store(
    { kind: 's3', raw: `s3://${bucket}/${prefix}`, bucket, prefix },
    { endpoint, metaCacheDir: path.join(tmp, 'meta'), onWarning: (m) => warnings.push(m), ...opts },
  );
  stores.push(store);
  return { store, warnings };
}

async function listAll(store: S3Store, onWarning?: (m: string) => void): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  for await (const batch of store.list(onWarning ? { onWarning } : {})) out.push(...batch);
  return out;
}

function bufferSource(data: Buffer | string, mtimeMs = 1700000000000): TransferSource {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return {
    size: buf.length,
    mtimeMs,
    async open(range) {
      return Readable.from([range ? buf.subarray(range.start, range.end + 1) : buf]);
    },
  };
}

function fileSource(file: string, stream = false): TransferSource {
  const st = fs.statSync(file);
  const src: TransferSource = {
    size: st.size,
    mtimeMs: st.mtimeMs,
    async open(range) {
      return fs.createReadStream(file, range ? { start: range.start, end: range.end } : {});
    },
  };
  if (!stream) src.localPath = file;
  return src;
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

async function sha256Stream(r: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of r) h.update(c as Buffer);
  return h.digest('hex');
}

/** A deterministic pseudo-random file (xorshift), written in 1 MiB blocks. */
function writeRandomFile(file: string, size: number, seed: number): string {
  const fd = fs.openSync(file, 'w');
  const h = createHash('sha256');
  let x = seed >>> 0 || 1;
  const block = Buffer.alloc(MiB);
  for (let off = 0; off < size; off += MiB) {
    const len = Math.min(MiB, size - off);
    for (let i = 0; i < len; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      block.writeUInt32LE(x >>> 0, i);
    }
    const chunk = block.subarray(0, len);
    fs.writeSync(fd, chunk);
    h.update(chunk);
  }
  fs.closeSync(fd);
  return h.digest('hex');
}

async function rawPut(bucket: string, key: string, body: string | Buffer, mtime?: string): Promise<void> {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  await raw.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: buf, ContentLength: buf.length, Metadata: mtime === undefined ? undefined : { mtime } }),
  );
}

async function rawHead(bucket: string, key: string) {
  return raw.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
}

async function pendingUploads(bucket: string): Promise<number> {
  const res = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return res.Uploads?.length ?? 0;
}

async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe.skipIf(!endpoint)('S3 store against a real S3 server (Ceph RGW)', { timeout: 240_000 }, () => {
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-s3-store-'));
    savedEnv = { ...process.env };
    const env = s3TestEnv();
    for (const [k, v] of Object.entries(env)) {
      if (k === 'AWS_ENDPOINT_URL') continue; // passed explicitly, so tests can vary it
      if (v === '') delete process.env[k];
      else process.env[k] = v;
    }
    // No ~/.aws of the machine; our own profiles, written before any client exists (the SDK
    // caches the files it read for the life of the process).
    process.env.HOME = path.join(tmp, 'home');
    const awsDir = path.join(process.env.HOME, '.aws');
    fs.mkdirSync(awsDir, { recursive: true });
    fs.writeFileSync(
      path.join(awsDir, 'credentials'),
      '[good]\naws_access_key_id = test\naws_secret_access_key = testtest\n[bad]\naws_access_key_id = test\naws_secret_access_key = nope\n',
    );
    fs.writeFileSync(path.join(awsDir, 'config'), '[profile good]\nregion = us-east-1\n');
    raw = s3TestClient();
  });

  afterAll(async () => {
    for (const s of stores) await s.close();
    raw?.destroy();
    process.env = savedEnv;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('lists 2,000 objects page by page, in code-point order, with few requests', async () => {
    const bucket = await createTestBucket('s3list');
    const keys: string[] = [];
    for (let i = 0; i < 2000; i++) keys.push(`big/d${i % 7}/f${String(i).padStart(5, '0')}.txt`);
    // plus names whose UTF-16 order differs from code-point order
    keys.push('big/\u{1F600}.txt', 'big/\uFF5E.txt');
    const q = new PQueue({ concurrency: 64 });
    await Promise.all(keys.map((k, i) => q.add(() => rawPut(bucket, k, `x${i}`, `${1700000000 + i}.5`))));

    const { store, warnings } = await open(bucket, 'big', { listPageSize: 100 });
    const batches: FileEntry[][] = [];
    for await (const b of store.list()) batches.push(b);
    const entries = batches.flat();
    expect(warnings).toEqual([]);
    expect(entries).toHaveLength(2002);
    expect(batches.length).toBeGreaterThanOrEqual(20); // streamed page by page
    const paths = entries.map((e) => e.path);
    const sorted = [...paths].sort((a, b) => {
      const x = [...a].map((c) => c.codePointAt(0)!);
      const y = [...b].map((c) => c.codePointAt(0)!);
      for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
      return x.length - y.length;
    });
    expect(paths).toEqual(sorted);
    expect(paths.at(-1)).toBe('\u{1F600}.txt');
    expect(paths.at(-2)).toBe('\uFF5E.txt');
    const f7 = entries.find((e) => e.path === 'd0/f00007.txt')!;
    expect(f7).toMatchObject({ size: 2, mtimeMs: 1700000007500 });
    expect(f7.etag).toMatch(/^"[0-9a-f]{32}"$/);

    let counts = store.requestCounts();
    expect(counts.ListObjectsV2).toBe(Math.ceil(2002 / 100));
    expect(counts.HeadObject).toBe(2002); // first sight of every object: mtime needs a HEAD

    // Second listing: everything comes from the metadata cache.
    await listAll(store);
    counts = store.requestCounts();
    expect(counts.ListObjectsV2).toBe(2 * Math.ceil(2002 / 100));
    expect(counts.HeadObject).toBe(2002);
  });

  for (const transport of ['http', 'sdk'] as const) {
    it(`a listing right after uploading 300 objects sends no HEAD: our writes are proven by their server-time window (${transport} transport)`, async () => {
      await withEnv({ BUCKETSYNC_S3_CLIENT: transport === 'sdk' ? 'sdk' : undefined }, async () => {
        const bucket = await createTestBucket('s3count');
        const pageSize = 64;
        const { store } = await open(bucket, 'up', { listPageSize: pageSize });
        expect(store.transport).toBe(transport);
        const q = new PQueue({ concurrency: 16 });
        await Promise.all(
          Array.from({ length: 300 }, (_, i) =>
            q.add(() => store.write(`f${String(i).padStart(3, '0')}`, bufferSource(`content ${i}`, 1700000000000 + i * 1.5), { mtimeMs: 1700000000000 + i * 1.5, expect: { kind: 'absent' } })),
          ),
        );
        expect(store.requestCounts().PutObject).toBe(300);
        const before = store.requestCounts();
        const first = await listAll(store);
        const mid = store.requestCounts();
        const second = await listAll(store);
        const after = store.requestCounts();
        expect(first).toHaveLength(300);
        expect(second).toEqual(first);
        expect(first[7]).toMatchObject({ path: 'f007', mtimeMs: 1700000000010.5 });
        // The records written after each PUT carry the server-time window of that PUT (its
        // Date header); every listed LastModified lies inside: no HEAD, and it is recorded.
        expect((mid.HeadObject ?? 0) - (before.HeadObject ?? 0)).toBe(0);
        expect((after.HeadObject ?? 0) - (mid.HeadObject ?? 0)).toBe(0);
        expect(after.ListObjectsV2! - (before.ListObjectsV2 ?? 0)).toBe(2 * Math.ceil(300 / pageSize));
        await store.close();

        // A new run (new store, same cache dir) is just as cheap.
        const { store: again } = await open(bucket, 'up', { listPageSize: pageSize });
        expect(await listAll(again)).toEqual(first);
        expect(again.requestCounts()).toEqual({ HeadBucket: 1, ListObjectsV2: Math.ceil(300 / pageSize) });

        // Without the cache every object needs a HEAD.
        const { store: uncached } = await open(bucket, 'up', { listPageSize: pageSize, metaCacheDir: null });
        expect(await listAll(uncached)).toEqual(first);
        expect(uncached.requestCounts().HeadObject).toBe(300);
      });
    });
  }

  it("another tool's same-bytes re-PUT, self-copy and same-part-size multipart re-upload after our writes (> 2 s later) are HEADed, never taken for ours", async () => {
    const bucket = await createTestBucket('s3window');
    const opts = { partSize: 5 * MiB, multipartThreshold: 5 * MiB };
    const { store } = await open(bucket, 'w', opts);
    const big = Buffer.alloc(6 * MiB + 7);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 253;
    const small = (p: string) => `content of ${p}`;
    const names = ['put', 'copy', 'keep1', 'keep2'];
    for (const p of names) await store.write(p, bufferSource(small(p), 1700000000000), { mtimeMs: 1700000000000, expect: { kind: 'absent' } });
    await store.write('multi', bufferSource(big, 1700000000000), { mtimeMs: 1700000000000, expect: { kind: 'absent' } });
    await store.write('multi-keep', bufferSource(big, 1700000000000), { mtimeMs: 1700000000000, expect: { kind: 'absent' } });
    await store.close();
    // A write in the same second as our write's response can fall inside its window (see
    // docs/s3.md); these come later, as `rclone touch` or a re-upload would.
    await new Promise((r) => setTimeout(r, 2100));
    await rawPut(bucket, 'w/put', small('put'), '1800000000');
    await raw.send(
      new CopyObjectCommand({ Bucket: bucket, Key: 'w/copy', CopySource: `${bucket}/w/copy`, MetadataDirective: 'REPLACE', Metadata: { mtime: '1800000001' } }),
    );
    const { UploadId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'w/multi', Metadata: { mtime: '1800000002' } }));
    const parts = [];
    for (let n = 1, at = 0; at < big.length; n++, at += 5 * MiB) {
      const chunk = big.subarray(at, Math.min(big.length, at + 5 * MiB));
      const r = await raw.send(new UploadPartCommand({ Bucket: bucket, Key: 'w/multi', UploadId, PartNumber: n, Body: chunk, ContentLength: chunk.length }));
      parts.push({ PartNumber: n, ETag: r.ETag });
    }
    await raw.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'w/multi', UploadId, MultipartUpload: { Parts: parts } }));
    expect((await rawHead(bucket, 'w/multi')).ETag).toBe((await rawHead(bucket, 'w/multi-keep')).ETag); // same ETag as ours

    const { store: s2 } = await open(bucket, 'w', opts);
    const byPath = new Map((await listAll(s2)).map((e) => [e.path, e.mtimeMs]));
    expect(Object.fromEntries(byPath)).toEqual({
      put: 1800000000000,
      copy: 1800000001000,
      multi: 1800000002000,
      keep1: 1700000000000,
      keep2: 1700000000000,
      'multi-keep': 1700000000000,
    });
    // exactly the three foreign versions were HEADed; ours were proven by their windows
    expect(s2.requestCounts().HeadObject).toBe(3);
    await s2.close();
    const { store: s3 } = await open(bucket, 'w', opts);
    expect(new Map((await listAll(s3)).map((e) => [e.path, e.mtimeMs]))).toEqual(byPath);
    expect(s3.requestCounts().HeadObject).toBeUndefined();
  });

  it('keeps to the prefix path boundary; a prefix naming one object is a single-file source', async () => {
    const bucket = await createTestBucket('s3prefix');
    for (const k of ['sub/a.txt', 'sub/b/c.txt', 'submarine.txt', 'sub-x', 'sub.txt', 'sub0/z', 'su', 'data', 'data/in.txt']) {
      await rawPut(bucket, k, k);
    }
    const { store } = await open(bucket, 'sub');
    expect((await listAll(store)).map((e) => e.path)).toEqual(['a.txt', 'b/c.txt']);
    expect(await store.stat('a.txt')).toMatchObject({ path: 'a.txt', size: 9 });

    const single = await open(bucket, 'sub.txt');
    const entries = await listAll(single.store);
    expect(entries.map((e) => [e.path, e.size])).toEqual([['sub.txt', 7]]);
    expect((await readAll(await single.store.read('sub.txt'))).toString()).toBe('sub.txt');
    // a store that was not listed finds out by itself
    const single2 = await open(bucket, 'sub.txt');
    expect(await single2.store.stat('sub.txt')).toMatchObject({ path: 'sub.txt', size: 7 });

    // An object named like the folder: the folder wins, with a warning.
    const both = await open(bucket, 'data');
    expect((await listAll(both.store)).map((e) => e.path)).toEqual(['in.txt']);
    expect(both.warnings.join('\n')).toMatch(/'data' has the same name as the folder/);

    // Siblings sorting before `P/` (P-…, P.…) are skipped without paging through all of them.
    const q = new PQueue({ concurrency: 64 });
    await Promise.all(Array.from({ length: 300 }, (_, i) => q.add(() => rawPut(bucket, `logs-${String(i).padStart(3, '0')}`, 'x'))));
    await rawPut(bucket, 'logs/today.txt', 'today');
    const logs = await open(bucket, 'logs', { listPageSize: 50 });
    expect((await listAll(logs.store)).map((e) => e.path)).toEqual(['today.txt']);
    expect(logs.store.requestCounts().ListObjectsV2).toBe(2);

    const whole = await open(bucket, '');
    expect((await listAll(whole.store)).map((e) => e.path)).toContain('submarine.txt');
  });

  it('reports keys that cannot be safe relative paths, and skips directory markers silently', async () => {
    const bucket = await createTestBucket('s3unsafe');
    const bad = ['u/a//b', 'u//lead', 'u/./x', 'u/x/../y', 'u/..', 'u/trail/', 'u/back\\slash'];
    for (const k of bad) await rawPut(bucket, k, 'x');
    await rawPut(bucket, 'u/dir/', '');
    await rawPut(bucket, 'u/ok', 'ok');
    await rawPut(bucket, 'u/dir/inner', 'in');
    const { store, warnings } = await open(bucket, 'u');
    const all = await listAll(store);
    expect(all.filter((e) => !e.skipped).map((e) => e.path)).toEqual(['dir/inner', 'ok']);
    // Each unsafe key is also a skip marker in its sorted place (the planner counts it).
    expect(all.filter((e) => e.skipped).map((e) => e.path)).toEqual(bad.map((k) => k.slice(2)).sort());
    expect(warnings).toHaveLength(bad.length);
    for (const k of bad) expect(warnings.some((w) => w.includes(`'${k}'`))).toBe(true);
    expect(warnings.find((w) => w.includes("'u/a//b'"))).toMatch(/empty path segment/);
    expect(warnings.find((w) => w.includes("'u/x/../y'"))).toMatch(/"\.\." path segment/);
    expect(warnings.find((w) => w.includes("'u/back\\slash'"))).toMatch(/backslash/);
    expect(warnings.find((w) => w.includes("'u/trail/'"))).toMatch(/ends with "\/"/);
    // list-level handler wins over the store's
    const mine: string[] = [];
    await listAll(store, (m) => mine.push(m));
    expect(mine).toHaveLength(bad.length);
    // and unsafe paths are refused on the way in
    await expect(store.write('../escape', bufferSource('x'), { mtimeMs: 0, expect: { kind: 'any' } })).rejects.toThrow(/unsafe path/);
  });

  it('stores mtimes in rclone format and reads them back (x-amz-meta-mtime, LastModified fallback)', async () => {
    const bucket = await createTestBucket('s3mtime');
    const { store } = await open(bucket, 'm');
    const mtimeMs = 1700000000123.456;
    await store.write('a.txt', bufferSource('hello'), { mtimeMs, expect: { kind: 'absent' } });
    const head = await rawHead(bucket, 'm/a.txt');
    expect(head.Metadata?.mtime).toBe('1700000000.123456');
    expect(head.ContentType).toBe('text/plain; charset=utf-8');

    await rawPut(bucket, 'm/rclone9', 'x', '1795365311.285084619');
    await rawPut(bucket, 'm/integer', 'x', '1600000000');
    await rawPut(bucket, 'm/garbage', 'x', 'yesterday');
    await rawPut(bucket, 'm/none', 'x');

    for (const cacheDir of [undefined, null]) {
      const { store: s } = await open(bucket, 'm', cacheDir === null ? { metaCacheDir: null } : {});
      const byPath = new Map((await listAll(s)).map((e) => [e.path, e]));
      expect(byPath.get('a.txt')!.mtimeMs).toBe(mtimeMs);
      expect(byPath.get('rclone9')!.mtimeMs).toBe(1795365311285.084619);
      expect(byPath.get('integer')!.mtimeMs).toBe(1600000000000);
      // fallback: LastModified of the listing, which has ms precision on RGW
      for (const p of ['garbage', 'none']) {
        const e = byPath.get(p)!;
        expect(Math.abs(e.mtimeMs - Date.now())).toBeLessThan(120_000);
      }
    }
    expect((await store.stat('a.txt'))!.mtimeMs).toBe(mtimeMs);
    expect(await store.stat('nope')).toBeUndefined();

    // Without a stored mtime, a HEAD only knows LastModified to the second; an expectation
    // taken from a listing (ms) still holds.
    const listed = new Map((await listAll(store)).map((e) => [e.path, e]));
    const none = listed.get('none')!;
    expect(none.mtimeMs % 1000).not.toBe(0); // RGW listings carry ms (flaky 1 time in 1000)
    await store.setMtime!('none', 1500000000000, { kind: 'version', size: none.size, mtimeMs: none.mtimeMs });
    expect((await store.stat('none'))!.mtimeMs).toBe(1500000000000);
    const garbage = listed.get('garbage')!;
    const res = await store.remove([{ path: 'garbage', expect: { kind: 'version', size: garbage.size, mtimeMs: garbage.mtimeMs } }]);
    expect(res[0]).toMatchObject({ ok: true });
  });

  it('uploads ≥ 64 MiB in parts (file and stream sources) byte-identically, verifying the multipart ETag', async () => {
    const bucket = await createTestBucket('s3multipart');
    const file = path.join(tmp, 'big.bin');
    const size = 64 * MiB + 12345;
    const sha = writeRandomFile(file, size, 42);

    const { store } = await open(bucket, '', { partConcurrency: 3 });
    const src = fileSource(file);
    await store.write('big.bin', src, { mtimeMs: src.mtimeMs, expect: { kind: 'absent' } });
    const counts = store.requestCounts();
    expect(counts).toMatchObject({ CreateMultipartUpload: 1, UploadPart: 5, CompleteMultipartUpload: 1 });
    expect(counts.PutObject).toBeUndefined();
    expect(await sha256Stream(await store.read('big.bin'))).toBe(sha);
    const head = await rawHead(bucket, 'big.bin');
    expect(head.ETag).toMatch(/^"[0-9a-f]{32}-5"$/);
    expect(head.Metadata?.mtime).toBeDefined();
    // ranged read
    const part = await readAll(await store.read('big.bin', { start: 16 * MiB - 3, end: 16 * MiB + 2 }));
    const fd = fs.openSync(file, 'r');
    const expected = Buffer.alloc(6);
    fs.readSync(fd, expected, 0, 6, 16 * MiB - 3);
    fs.closeSync(fd);
    expect(part).toEqual(expected);
    await store.close(); // flushes its metadata cache for the next store

    // A stream source (no local path), smaller parts.
    const { store: s2 } = await open(bucket, '', { partSize: 5 * MiB, multipartThreshold: 8 * MiB });
    const src2 = fileSource(file, true);
    await s2.write('streamed.bin', src2, { mtimeMs: 1700000000000.25, expect: { kind: 'any' } });
    expect(s2.requestCounts().UploadPart).toBe(13);
    expect(await sha256Stream(await s2.read('streamed.bin'))).toBe(sha);
    const entries = await listAll(s2);
    expect(entries.find((e) => e.path === 'streamed.bin')).toMatchObject({ size, mtimeMs: 1700000000000.25 });
    // the ETag check after Complete only: the listing proves both uploads (big.bin and
    // streamed.bin) by the server-time windows their cache records carry
    expect(s2.requestCounts().HeadObject).toBe(1);
    expect(await pendingUploads(bucket)).toBe(0);
  });

  it('aborts the multipart upload when the source fails or changes size', async () => {
    const bucket = await createTestBucket('s3abort');
    const { store } = await open(bucket, '', { partSize: 5 * MiB, multipartThreshold: 5 * MiB });
    const failing: TransferSource = {
      size: 20 * MiB,
      mtimeMs: 0,
      async open() {
        return Readable.from(
          (async function* () {
            yield Buffer.alloc(6 * MiB, 1);
            yield Buffer.alloc(6 * MiB, 2);
            throw new Error('disk on fire');
          })(),
        );
      },
    };
    await expect(store.write('f.bin', failing, { mtimeMs: 0, expect: { kind: 'any' } })).rejects.toThrow(/disk on fire/);
    const short: TransferSource = { ...bufferSource(Buffer.alloc(11 * MiB, 3)), size: 12 * MiB };
    await expect(store.write('s.bin', short, { mtimeMs: 0, expect: { kind: 'any' } })).rejects.toThrow(StaleError);
    const long: TransferSource = { ...bufferSource(Buffer.alloc(13 * MiB, 3)), size: 12 * MiB };
    await expect(store.write('l.bin', long, { mtimeMs: 0, expect: { kind: 'any' } })).rejects.toThrow(/changed while it was being uploaded/);
    expect(store.requestCounts().AbortMultipartUpload).toBe(3);
    expect(await pendingUploads(bucket)).toBe(0);
    expect(await listAll(store)).toEqual([]);
    // small files: the size is checked as well
    const smallShort: TransferSource = { ...bufferSource('abc'), size: 4 };
    await expect(store.write('x', smallShort, { mtimeMs: 0, expect: { kind: 'any' } })).rejects.toThrow(StaleError);
  });

  it('a source that changed while it was read is not committed (single PUT and multipart), nothing left behind', async () => {
    const bucket = await createTestBucket('s3changed');
    const { store } = await open(bucket, '', { partSize: 5 * MiB, multipartThreshold: 5 * MiB });
    const changed = (): Promise<void> => {
      return Promise.reject(new ChangedDuringTransferError('changed during transfer (the file was being written); not replaced, re-run to send it'));
    };
    await expect(store.write('small.txt', bufferSource('abc'), { mtimeMs: 0, expect: { kind: 'absent' }, beforeCommit: changed })).rejects.toThrow(/changed during transfer/);
    await expect(store.write('big.bin', bufferSource(Buffer.alloc(11 * MiB, 7)), { mtimeMs: 0, expect: { kind: 'absent' }, beforeCommit: changed })).rejects.toThrow(
      /changed during transfer/,
    );
    expect(store.requestCounts().PutObject ?? 0).toBe(0);
    expect(store.requestCounts().CompleteMultipartUpload ?? 0).toBe(0);
    expect(await pendingUploads(bucket)).toBe(0);
    expect(await listAll(store)).toEqual([]);
    // the same writes with a source that stayed put arrive, with the content hash the store computed
    await store.write('small.txt', bufferSource('abc'), { mtimeMs: 0, expect: { kind: 'absent' }, beforeCommit: async () => undefined });
    const head = await rawHead(bucket, 'small.txt');
    expect(head.Metadata?.xxh128).toBe('06b05ab6733a618578af5f94892f3950');
  });

  // Both transports: bucketsync's signed HTTP requests (the default) and the AWS SDK.
  it.each(['http', 'sdk'] as const)('handles keys with spaces, +, &, %, unicode in every operation (%s transport)', async (transport) => {
    const bucket = await createTestBucket(`s3keys-${transport}`);
    const names = ['with space.txt', 'plus+sign', 'a&b=c?d', 'pct%20and%', 'unicodé/日本/😀.bin', "quote'\"!*()~", 'semi;colon,comma@at#hash'];
    const before = process.env.BUCKETSYNC_S3_CLIENT;
    if (transport === 'sdk') process.env.BUCKETSYNC_S3_CLIENT = 'sdk';
    else delete process.env.BUCKETSYNC_S3_CLIENT;
    const { store } = await open(bucket, 'pre fix+').finally(() => {
      if (before === undefined) delete process.env.BUCKETSYNC_S3_CLIENT;
      else process.env.BUCKETSYNC_S3_CLIENT = before;
    });
    expect(store.transport).toBe(transport);
    for (const [i, n] of names.entries()) {
      await store.write(n, bufferSource(`body ${n}`), { mtimeMs: 1600000000000 + i, expect: { kind: 'absent' } });
    }
    const listed = await listAll(store);
    expect(listed.map((e) => e.path).sort()).toEqual([...names].sort());
    for (const [i, n] of names.entries()) {
      expect((await readAll(await store.read(n))).toString()).toBe(`body ${n}`);
      expect(await store.stat(n)).toMatchObject({ path: n, mtimeMs: 1600000000000 + i });
      await store.copy!(n, `copies/${n}`, { mtimeMs: 1650000000000 + i, expect: { kind: 'absent' } });
      expect((await readAll(await store.read(`copies/${n}`))).toString()).toBe(`body ${n}`);
      await store.setMtime!(n, 1660000000000.5 + i, { kind: 'version', size: Buffer.byteLength(`body ${n}`) });
    }
    const again = new Map((await listAll(store)).map((e) => [e.path, e]));
    for (const [i, n] of names.entries()) {
      expect(again.get(n)!.mtimeMs).toBe(1660000000000.5 + i);
      expect(again.get(`copies/${n}`)!.mtimeMs).toBe(1650000000000 + i);
    }
    const res = await store.remove([...names, ...names.map((n) => `copies/${n}`)].map((p) => ({ path: p, expect: { kind: 'any' } })));
    expect(res.every((r) => r.ok)).toBe(true);
    expect(await listAll(store)).toEqual([]);
  });

  it('conditional writes: a changed destination is a StaleError, never overwritten', async () => {
    const bucket = await createTestBucket('s3cond');
    const { store } = await open(bucket, '', { partSize: 5 * MiB, multipartThreshold: 6 * MiB });
    await store.write('a', bufferSource('one'), { mtimeMs: 1, expect: { kind: 'absent' } });
    const a = (await store.stat('a'))!;

    // absent expected, but it exists (If-None-Match: * → 412)
    await expect(store.write('a', bufferSource('two'), { mtimeMs: 2, expect: { kind: 'absent' } })).rejects.toThrow(StaleError);
    await expect(store.write('a', bufferSource('two'), { mtimeMs: 2, expect: { kind: 'absent' } })).rejects.toThrow(/changed since the plan/);
    // the planned version by ETag (If-Match)
    await expect(store.write('a', bufferSource('two'), { mtimeMs: 2, expect: { kind: 'version', etag: '"0123456789abcdef0123456789abcdef"' } })).rejects.toThrow(StaleError);
    // by size/mtime (HEAD, then If-Match with the ETag seen)
    await expect(store.write('a', bufferSource('two'), { mtimeMs: 2, expect: { kind: 'version', size: 99 } })).rejects.toThrow(StaleError);
    await expect(store.write('a', bufferSource('two'), { mtimeMs: 2, expect: { kind: 'version', size: 3, mtimeMs: 5 } })).rejects.toThrow(StaleError);
    await expect(store.write('gone', bufferSource('two'), { mtimeMs: 2, expect: { kind: 'version', size: 3 } })).rejects.toThrow(/vanished/);
    expect((await readAll(await store.read('a'))).toString()).toBe('one');

    await store.write('a', bufferSource('two'), { mtimeMs: 2, expect: { kind: 'version', size: 3, mtimeMs: 1, etag: a.etag } });
    await store.write('a', bufferSource('three'), { mtimeMs: 3, expect: { kind: 'version', size: 3, mtimeMs: 2 } });
    expect((await readAll(await store.read('a'))).toString()).toBe('three');

    // multipart: the destination is checked before the upload starts and again before Complete
    const big = bufferSource(Buffer.alloc(7 * MiB, 7));
    await expect(store.write('a', big, { mtimeMs: 4, expect: { kind: 'absent' } })).rejects.toThrow(StaleError);
    await store.write('b', big, { mtimeMs: 4, expect: { kind: 'absent' } });
    await expect(store.write('b', big, { mtimeMs: 5, expect: { kind: 'version', etag: a.etag } })).rejects.toThrow(StaleError);

    // a concurrent writer sneaks in during the multipart upload → caught before Complete
    let sneaked = false;
    const racing: TransferSource = {
      size: 12 * MiB,
      mtimeMs: 0,
      async open() {
        return Readable.from(
          (async function* () {
            yield Buffer.alloc(6 * MiB, 1);
            if (!sneaked) {
              sneaked = true;
              await rawPut(bucket, 'c', 'someone else');
            }
            yield Buffer.alloc(6 * MiB, 2);
          })(),
        );
      },
    };
    await expect(store.write('c', racing, { mtimeMs: 0, expect: { kind: 'absent' } })).rejects.toThrow(StaleError);
    expect((await readAll(await store.read('c'))).toString()).toBe('someone else');
    expect(await pendingUploads(bucket)).toBe(0);
  });

  it('deletes: stale and vanished objects are left alone, the rest go in batches of 1000', async () => {
    const bucket = await createTestBucket('s3delete');
    const { store } = await open(bucket, 'd');
    const q = new PQueue({ concurrency: 32 });
    const write = (p: string, body: string) => store.write(p, bufferSource(body), { mtimeMs: 1700000000000, expect: { kind: 'any' } });
    await Promise.all(Array.from({ length: 1500 }, (_, i) => q.add(() => write(`f${String(i).padStart(4, '0')}`, 'x'))));
    await write('changed', 'new content');
    const entries = await listAll(store);
    expect(entries).toHaveLength(1501);
    const changed = entries.find((e) => e.path === 'changed')!;
    await rawPut(bucket, 'd/changed', 'different!!', '1700000001'); // same size, new mtime + ETag

    const before = store.requestCounts();
    const items = [
      ...entries.filter((e) => e.path !== 'changed').map((e) => ({ path: e.path, expect: { kind: 'version' as const, size: e.size, mtimeMs: e.mtimeMs } })),
      { path: 'changed', expect: { kind: 'version' as const, size: changed.size, mtimeMs: changed.mtimeMs } },
      { path: 'changed', expect: { kind: 'version' as const, etag: changed.etag } },
      { path: 'never-existed', expect: { kind: 'version' as const, size: 1 } },
    ];
    const res = await store.remove(items);
    expect(res.map((r) => r.path)).toEqual(items.map((i) => i.path));
    expect(res.filter((r) => r.ok)).toHaveLength(1500);
    expect(res.at(-3)).toMatchObject({ ok: false, stale: true });
    expect(res.at(-2)).toMatchObject({ ok: false, stale: true });
    expect(res.at(-1)).toMatchObject({ ok: false, stale: true });
    expect(res.at(-1)!.error).toMatch(/vanished/);
    const after = store.requestCounts();
    expect(after.DeleteObjects! - (before.DeleteObjects ?? 0)).toBe(2);
    expect(after.HeadObject! - (before.HeadObject ?? 0)).toBe(items.length);
    expect((await listAll(store)).map((e) => e.path)).toEqual(['changed']);

    // 'any' needs no HEAD; deleting a missing object is fine
    const r2 = await store.remove([{ path: 'changed', expect: { kind: 'any' } }, { path: 'nothing', expect: { kind: 'any' } }]);
    expect(r2.every((r) => r.ok)).toBe(true);
    expect(await listAll(store)).toEqual([]);
  });

  it('falls back to one DeleteObject per key when the server rejects DeleteObjects', async () => {
    const bucket = await createTestBucket('s3delfallback');
    const { store, warnings } = await open(bucket, '');
    for (const p of ['a', 'b', 'c']) await store.write(p, bufferSource(p), { mtimeMs: 0, expect: { kind: 'absent' } });
    // Make RGW reject the DeleteObjects request itself (a bare 400), as gateways that
    // don't implement it (or reject its mandatory checksum) do.
    (await store.sdkClient()).middlewareStack.add(
      (next, context) => async (args) => {
        const req = (args as { request: { body?: unknown; headers: Record<string, string> } }).request;
        if (context.commandName === 'DeleteObjectsCommand') {
          req.body = '<Delete><Object><Key>';
          req.headers['content-length'] = String((req.body as string).length);
        }
        return next(args);
      },
      { step: 'build', name: 'corruptDeleteObjects', priority: 'low' },
    );
    const res = await store.remove(['a', 'b', 'c', 'missing'].map((p) => ({ path: p, expect: { kind: 'any' as const } })));
    expect(res.map((r) => r.ok)).toEqual([true, true, true, true]);
    expect(store.requestCounts()).toMatchObject({ DeleteObjects: 1, DeleteObject: 4 });
    expect(warnings.join('\n')).toMatch(/DeleteObjects is not supported by http\S+ \([^)]*400\); deleting one object at a time/);
    expect(await listAll(store)).toEqual([]);
  });

  it('copies server-side (CopyObject, and UploadPartCopy above the threshold) and sets mtimes', async () => {
    const bucket = await createTestBucket('s3copy');
    const { store } = await open(bucket, 'c', { copyMultipartThreshold: 8 * MiB, copyPartSize: 5 * MiB });
    await store.write('doc.json', bufferSource('{"a":1}', 1), { mtimeMs: 1, expect: { kind: 'absent' } });
    await store.copy!('doc.json', 'sub/copy.json', { mtimeMs: 1700000000999.5, expect: { kind: 'absent' } });
    const h = await rawHead(bucket, 'c/sub/copy.json');
    expect(h.Metadata?.mtime).toBe('1700000000.9995');
    expect(h.ContentType).toBe('application/json');
    expect(h.ETag).toBe((await rawHead(bucket, 'c/doc.json')).ETag);
    // destination exists but was expected absent (RGW ignores If-None-Match on CopyObject: HEAD-checked)
    await expect(store.copy!('doc.json', 'sub/copy.json', { mtimeMs: 5, expect: { kind: 'absent' } })).rejects.toThrow(StaleError);
    await expect(store.copy!('missing', 'x', { mtimeMs: 5, expect: { kind: 'any' } })).rejects.toThrow(/no longer exists/);

    // setMtime: self-copy with REPLACE metadata; content, ETag and Content-Type stay
    const before = (await store.stat('doc.json'))!;
    await store.setMtime!('doc.json', 1234567890123.25, { kind: 'version', size: before.size, mtimeMs: before.mtimeMs });
    const after = (await store.stat('doc.json'))!;
    expect(after).toMatchObject({ size: before.size, etag: before.etag, mtimeMs: 1234567890123.25 });
    expect((await rawHead(bucket, 'c/doc.json')).ContentType).toBe('application/json');
    await expect(store.setMtime!('doc.json', 5, { kind: 'version', mtimeMs: before.mtimeMs })).rejects.toThrow(StaleError);
    await expect(store.setMtime!('gone.json', 5, { kind: 'any' })).rejects.toThrow(StaleError);
    // the listing sees the new mtime; the refused setMtime dropped doc.json's record (a stale
    // check disproved the caller's view), so it costs one HEAD, the copies none
    const heads = store.requestCounts().HeadObject!;
    const listed = await listAll(store);
    expect(listed.find((e) => e.path === 'doc.json')!.mtimeMs).toBe(1234567890123.25);
    expect(store.requestCounts().HeadObject).toBe(heads + 1);

    // multipart copy
    const big = Buffer.alloc(12 * MiB + 5);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    await store.write('big.bin', bufferSource(big), { mtimeMs: 7, expect: { kind: 'absent' } });
    await store.copy!('big.bin', 'big-copy.bin', { mtimeMs: 8, expect: { kind: 'absent' } });
    expect(store.requestCounts().UploadPartCopy).toBe(3);
    expect(createHash('sha256').update(await readAll(await store.read('big-copy.bin'))).digest('hex')).toBe(
      createHash('sha256').update(big).digest('hex'),
    );
    expect((await store.stat('big-copy.bin'))!.mtimeMs).toBe(8);
    // setMtime of a large object works the same way
    await store.setMtime!('big-copy.bin', 9, { kind: 'version', size: big.length });
    expect((await store.stat('big-copy.bin'))!.mtimeMs).toBe(9);
    expect(await pendingUploads(bucket)).toBe(0);
  });

  it('a missing bucket is one clear error; createBucket creates it', async () => {
    const name = `missing-${Date.now()}-${process.pid}`;
    const err = await open(name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3StoreError);
    expect((err as S3StoreError).message).toBe(`Bucket '${name}' does not exist at ${endpoint!.replace(/\/+$/, '')}`);
    expect((err as S3StoreError).hint).toMatch(/create it or pass --create-bucket/i);
    expect((err as S3StoreError).exitCode).toBe(2);

    const { store } = await open(name, 'p', { createBucket: true });
    await store.write('x', bufferSource('x'), { mtimeMs: 0, expect: { kind: 'absent' } });
    expect(await listAll(store)).toHaveLength(1);
    // already there (and ours): fine
    const { store: again } = await open(name, 'p', { createBucket: true });
    expect(await listAll(again)).toHaveLength(1);
    await again.remove([{ path: 'x', expect: { kind: 'any' } }]);
    await raw.send(new DeleteBucketCommand({ Bucket: name }));
  });

  it('wrong or missing credentials are one clear error naming what to fix', async () => {
    const bucket = await createTestBucket('s3creds');
    const badKey = await withEnv({ AWS_ACCESS_KEY_ID: 'nobody' }, () => open(bucket).catch((e: unknown) => e));
    expect(badKey).toBeInstanceOf(S3StoreError);
    expect((badKey as S3StoreError).message).toMatch(/access key id is not known .*InvalidAccessKeyId/);
    expect((badKey as S3StoreError).hint).toMatch(/AWS_ACCESS_KEY_ID/);
    expect((badKey as S3StoreError).exitCode).toBe(2);

    const badSecret = await withEnv({ AWS_SECRET_ACCESS_KEY: 'wrong' }, () => open(bucket).catch((e: unknown) => e));
    expect((badSecret as S3StoreError).message).toMatch(/secret access key was rejected .*SignatureDoesNotMatch/);
    expect((badSecret as S3StoreError).hint).toMatch(/AWS_SECRET_ACCESS_KEY/);

    // profile credentials from ~/.aws (HOME points at our temp dir, see beforeAll)
    const noEnvCreds = { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SESSION_TOKEN: undefined, AWS_PROFILE: undefined };
    await withEnv(noEnvCreds, async () => {
      const { store } = await open(bucket, '', { profile: 'good' });
      expect(await listAll(store)).toEqual([]);
      const bad = await open(bucket, '', { profile: 'bad' }).catch((e: unknown) => e);
      expect((bad as S3StoreError).message).toMatch(/SignatureDoesNotMatch/);
      expect((bad as S3StoreError).hint).toMatch(/profile 'bad'/);
      const unknown = await open(bucket, '', { profile: 'nosuch' }).catch((e: unknown) => e);
      expect(unknown).toBeInstanceOf(S3StoreError);
      expect((unknown as S3StoreError).message).toMatch(/profile 'nosuch'/i);
      expect((unknown as S3StoreError).exitCode).toBe(2);
    });

    const none = await withEnv({ ...noEnvCreds, AWS_EC2_METADATA_DISABLED: 'true' }, () => open(bucket).catch((e: unknown) => e));
    expect(none).toBeInstanceOf(S3StoreError);
    expect((none as S3StoreError).message).toMatch(/^No AWS credentials found for http/);
    expect((none as S3StoreError).hint).toMatch(/AWS_ACCESS_KEY_ID.*--profile/);
    expect((none as S3StoreError).exitCode).toBe(2);
  });

  it('access denied is one clear error', async () => {
    const bucket = await createTestBucket('s3denied');
    const policy = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Deny', Principal: '*', Action: ['s3:ListBucket', 's3:GetObject', 's3:PutObject'], Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`] }],
    };
    await raw.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(policy) }));
    try {
      const err = await open(bucket).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(S3StoreError);
      expect((err as S3StoreError).message).toBe(`Access denied to bucket '${bucket}' at ${endpoint!.replace(/\/+$/, '')}`);
      expect((err as S3StoreError).hint).toMatch(/AWS_ACCESS_KEY_ID/);
      expect((err as S3StoreError).exitCode).toBe(2);
    } finally {
      await raw.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
    }
  });

  it('an unreachable endpoint is one clear error naming it', async () => {
    const err = await open('any-bucket', '', { endpoint: 'http://127.0.0.1:9', maxAttempts: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3StoreError);
    expect((err as S3StoreError).message).toBe('Cannot reach the S3 endpoint http://127.0.0.1:9 (ECONNREFUSED)');
    expect((err as S3StoreError).hint).toMatch(/--endpoint-url/);
    expect((err as S3StoreError).exitCode).toBe(2);
    const dns = await open('any-bucket', '', { endpoint: 'http://no-such-host.invalid:9000', maxAttempts: 1 }).catch((e: unknown) => e);
    expect((dns as S3StoreError).message).toMatch(/^Cannot reach the S3 endpoint http:\/\/no-such-host\.invalid:9000 \((ENOTFOUND|EAI_AGAIN)\)$/);
    const bad = await open('any-bucket', '', { endpoint: 'not a url' }).catch((e: unknown) => e);
    expect((bad as S3StoreError).message).toMatch(/Invalid S3 endpoint URL/);
  });

  it('the endpoint can come from AWS_ENDPOINT_URL; path style and region default sensibly', async () => {
    const bucket = await createTestBucket('s3envep');
    await withEnv({ AWS_ENDPOINT_URL: endpoint, AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined }, async () => {
      const store = await openS3Store({ kind: 's3', raw: `s3://${bucket}`, bucket, prefix: '' }, { metaCacheDir: null });
      stores.push(store);
      expect(store.connection).toMatchObject({ endpoint: endpoint!.replace(/\/+$/, ''), region: 'us-east-1', pathStyle: true });
      expect(await listAll(store)).toEqual([]);
    });
  });

  it('reads an object written by rclone with the exact mtime rclone stored', async (ctx) => {
    const rclone = spawnSync('rclone', ['version'], { encoding: 'utf8' });
    if (rclone.status !== 0) ctx.skip('rclone is not installed');
    const bucket = await createTestBucket('s3rclone');
    const file = path.join(tmp, 'from-rclone.txt');
    fs.writeFileSync(file, 'written by rclone\n');
    fs.utimesSync(file, 1700000000.123456, 1700000000.123456); // utimes has µs precision
    const stNs = fs.statSync(file, { bigint: true }).mtimeNs;
    const env = {
      ...process.env,
      AWS_CA_BUNDLE: '',
      RCLONE_CONFIG: path.join(tmp, 'rclone.conf'),
      RCLONE_CONFIG_RGW_TYPE: 's3',
      RCLONE_CONFIG_RGW_PROVIDER: 'Ceph',
      RCLONE_CONFIG_RGW_ENDPOINT: endpoint!,
      RCLONE_CONFIG_RGW_ACCESS_KEY_ID: 'test',
      RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY: 'testtest',
      RCLONE_CONFIG_RGW_REGION: 'us-east-1',
      TZ: 'UTC',
    };
    delete (env as Record<string, string | undefined>).AWS_CA_BUNDLE;
    fs.writeFileSync(env.RCLONE_CONFIG, '');
    const r = spawnSync('rclone', ['copyto', file, `rgw:${bucket}/r/from-rclone.txt`], { env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);

    const stored = (await rawHead(bucket, 'r/from-rclone.txt')).Metadata?.mtime;
    const secs = stNs / 1_000_000_000n;
    const frac = (stNs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
    expect(stored).toBe(frac ? `${secs}.${frac}` : `${secs}`);

    const { store } = await open(bucket, 'r');
    const [entry] = await listAll(store);
    expect(entry).toMatchObject({ path: 'from-rclone.txt', size: 18 });
    const nsText = stNs.toString().padStart(10, '0');
    expect(entry!.mtimeMs).toBe(Number(`${nsText.slice(0, -6)}.${nsText.slice(-6)}`));
    expect(Math.abs(entry!.mtimeMs - fs.statSync(file).mtimeMs)).toBeLessThan(0.001);

    // and rclone sees our mtimes: upload with ours, rclone lists the same instant
    await store.write('ours.txt', bufferSource('ours'), { mtimeMs: 1600000000987.654, expect: { kind: 'absent' } });
    const lsl = spawnSync('rclone', ['lsl', `rgw:${bucket}/r/ours.txt`], { env, encoding: 'utf8' });
    expect(lsl.status, lsl.stderr).toBe(0);
    const when = new Date(1600000000987.654).toISOString().replace('T', ' ').slice(0, 19);
    expect(lsl.stdout).toContain(`${when}.987654000 ours.txt`);
  });
});
