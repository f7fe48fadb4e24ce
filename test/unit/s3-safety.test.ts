/**
 * The pure parts of issue 13's S3/hf store rules: candidate part sizes for verifying another
 * tool's multipart ETag, the range of mtimes handed out, and hf's unsafe-path reasons.
 */
import { describe, expect, it } from 'vitest';
import { candidatePartSizes } from '../../src/stores/s3/s3-store.js';
import { isRepresentableMtime } from '../../src/stores/common/mtime.js';
import { parseMtime } from '../../src/stores/s3/mtime.js';
import { unsafePathReason } from '../../src/stores/hf/paths.js';

const MiB = 1024 * 1024;

describe('candidatePartSizes', () => {
  it('offers the part sizes of common tools that fit the part count, and the even split', () => {
    expect(candidatePartSizes(11 * MiB + 123, 3)).toContain(5 * MiB); // rclone
    expect(candidatePartSizes(100 * MiB, 13)).toContain(8 * MiB); // aws cli / boto3
    expect(candidatePartSizes(1000 * MiB, 63)).toContain(16 * MiB);
    expect(candidatePartSizes(10, 1)).toEqual([10]);
    expect(candidatePartSizes(0, 1)).toEqual([1]);
    for (const [size, n] of [
      [11 * MiB + 123, 3],
      [100 * MiB, 13],
      [123_456_789_012, 10_000],
      [7 * MiB, 2],
    ] as const) {
      const c = candidatePartSizes(size, n);
      expect(c.length).toBeGreaterThan(0);
      expect(c.length).toBeLessThanOrEqual(6);
      for (const p of c) expect(Math.ceil(size / p)).toBe(n);
    }
  });
  it('offers nothing for nonsense', () => {
    expect(candidatePartSizes(-1, 2)).toEqual([]);
    expect(candidatePartSizes(10, 0)).toEqual([]);
  });
});

describe('mtimes handed out', () => {
  it('keeps negative and ordinary values, refuses what no file system can hold', () => {
    expect(parseMtime('-86400.5')).toBe(-86400500);
    expect(parseMtime('1700000000.123456')).toBeCloseTo(1700000000123.456, 3);
    expect(parseMtime('10000000000000000000000')).toBeUndefined();
    expect(parseMtime('99999999999')).toBeUndefined(); // year 5138
    expect(parseMtime('-99999999999')).toBeUndefined();
    expect(isRepresentableMtime(Number.NaN)).toBe(false);
    expect(isRepresentableMtime(0)).toBe(true);
  });
});

describe('hf unsafe paths', () => {
  it('names lone surrogates and the other unsafe shapes', () => {
    expect(unsafePathReason('a\ud800b')).toMatch(/Unicode/);
    expect(unsafePathReason('a/😀')).toBeUndefined();
    expect(unsafePathReason('a//b')).toMatch(/empty/);
    expect(unsafePathReason('a/../b')).toMatch(/\.\./);
  });
});

describe('metadata cache files are private', () => {
  it('creates the folder 0700 and the file 0600, and makes an older readable file private', async () => {
    const { MetaCache } = await import('../../src/stores/s3/meta-cache.js');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-metacache-'));
    try {
      const dir = path.join(root, 'nested', 's3-meta');
      const warnings: string[] = [];
      const c = MetaCache.open(dir, 'http://127.0.0.1:1', 'b', (m) => warnings.push(m));
      c.put({ k: 'a', e: '"x"', s: 1, m: 1 });
      await c.close();
      expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
      expect(fs.statSync(c.file!).mode & 0o777).toBe(0o600);
      fs.chmodSync(c.file!, 0o644);
      const c2 = MetaCache.open(dir, 'http://127.0.0.1:1', 'b', (m) => warnings.push(m));
      c2.put({ k: 'b', e: '"y"', s: 1, m: 1 });
      await c2.close();
      expect(fs.statSync(c2.file!).mode & 0o777).toBe(0o600);
      expect(warnings).toEqual([]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
