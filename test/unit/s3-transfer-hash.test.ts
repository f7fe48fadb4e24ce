/**
 * The pieces of big S3 transfers that need no server: part MD5s in hash workers (byte ranges
 * of a file for ranged downloads, shared-memory part buffers for uploads), which objects a
 * ranged download takes on (planRanged), and the progress line of a big file.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatFileLine } from '../../src/cli/progress.js';
import { planRanged } from '../../src/stores/s3/download.js';
import type { HashPool as HashPoolType } from '../../src/hashing/pool.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIST_POOL = path.join(ROOT, 'dist/hashing/pool.js');
const MiB = 1024 * 1024;
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'bucketsync-transfer-hash-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe.skipIf(!fs.existsSync(DIST_POOL))('part MD5s on worker threads (compiled pool)', () => {
  let pool: HashPoolType;
  beforeAll(async () => {
    const m = (await import(pathToFileURL(DIST_POOL).href)) as { HashPool: new (o: object) => HashPoolType };
    pool = new m.HashPool({ size: 2 });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('md5Range hashes exactly bytes [start, end) of a file, across 1 MiB blocks; a range past the end fails', async () => {
    expect(pool.mode).toBe('workers');
    const buf = Buffer.alloc(3 * MiB + 4321);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + (i >> 13)) & 0xff;
    const file = path.join(work, 'f.bin');
    fs.writeFileSync(file, buf);
    const cases: [number, number][] = [
      [0, buf.length],
      [0, 1],
      [MiB - 1, MiB + 1],
      [5 * 1024 * 1024 - 5 * 1024 * 1024, 0],
      [2 * MiB + 17, 3 * MiB + 4321],
    ];
    const got = await Promise.all(cases.map(([s, e]) => pool.md5Range(file, s, e)));
    expect(got).toEqual(cases.map(([s, e]) => md5(buf.subarray(s, e))));
    await expect(pool.md5Range(file, 3 * MiB, 3 * MiB + 9999)).rejects.toThrow(/ends at/);
    await expect(pool.md5Range(path.join(work, 'missing.bin'), 0, 10)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(pool.stats().workerFailures).toBe(0);
  });

  it('md5Buffer hashes a shared-memory part in a worker, and any other buffer on the calling thread', async () => {
    const sab = new SharedArrayBuffer(2 * MiB);
    const view = Buffer.from(sab);
    for (let i = 0; i < view.length; i++) view[i] = (i * 7) & 0xff;
    const part = Buffer.from(sab, 100, MiB + 3); // a view into the middle
    expect(await pool.md5Buffer(part)).toBe(md5(part));
    const plain = Buffer.from('not shared');
    expect(await pool.md5Buffer(plain)).toBe(md5(plain));
    expect(await pool.md5Buffer(Buffer.from(sab, 0, 0))).toBe(md5(Buffer.alloc(0)));
  });
});

describe('planRanged: which objects a ranged download takes on', () => {
  const etag = `"${'ab'.repeat(16)}-4"`;
  const size = 3 * 16 * MiB + 5;
  it('a multipart ETag whose recorded part size gives its number of parts', () => {
    expect(planRanged({ ETag: etag, ContentLength: size, Metadata: { 'part-size': String(16 * MiB) } })).toEqual({
      etag: `${'ab'.repeat(16)}-4`,
      size,
      partSize: 16 * MiB,
      parts: 4,
    });
  });
  it('declines everything it could not verify part by part', () => {
    const meta = { 'part-size': String(16 * MiB) };
    expect(planRanged({ ETag: `"${'ab'.repeat(16)}"`, ContentLength: size, Metadata: meta })).toBeUndefined(); // one piece
    expect(planRanged({ ETag: etag, ContentLength: size })).toBeUndefined(); // no recorded size
    expect(planRanged({ ETag: etag, ContentLength: size, Metadata: { 'part-size': String(8 * MiB) } })).toBeUndefined(); // 7 parts, not 4
    expect(planRanged({ ETag: etag, ContentLength: size, Metadata: { 'part-size': 'x' } })).toBeUndefined();
    expect(planRanged({ ETag: etag, ContentLength: size, Metadata: { 'part-size': '0' } })).toBeUndefined();
    expect(planRanged({ ETag: etag, ContentLength: size, Metadata: { 'part-size': '-16777216' } })).toBeUndefined();
    expect(planRanged({ ETag: etag, Metadata: meta })).toBeUndefined(); // no length
    expect(planRanged({ ETag: etag, ContentLength: size, Metadata: meta, ServerSideEncryption: 'aws:kms' })).toBeUndefined();
    expect(planRanged({ ETag: etag, ContentLength: size, Metadata: meta, SSECustomerAlgorithm: 'AES256' })).toBeUndefined();
    expect(planRanged({ ETag: `"${'ab'.repeat(16)}-1"`, ContentLength: 5, Metadata: { 'part-size': '5' } })).toBeUndefined(); // one part
    expect(planRanged({ ETag: `W/${etag}`, ContentLength: size, Metadata: meta })).toBeUndefined();
    expect(planRanged({ ContentLength: size, Metadata: meta })).toBeUndefined();
  });
});

describe('the progress line of a big file', () => {
  it('bytes, rate and ETA; a resumed transfer says what it skipped', () => {
    const f = { path: 'ckpt.bin', size: 1024 * MiB, moved: 100 * MiB, skipped: 512 * MiB, startedAt: 0 };
    expect(formatFileLine(f, 2000)).toBe(
      '  ckpt.bin [==================------------]  59% | 612.0 MiB/1.0 GiB | 50.0 MiB/s | ETA 9 s | 512.0 MiB skipped (resumed)',
    );
    expect(formatFileLine({ ...f, moved: 0, skipped: 0 }, 0)).toBe('  ckpt.bin [------------------------------]   0% | 0 B/1.0 GiB | 0 B/s | ETA --');
  });
});
