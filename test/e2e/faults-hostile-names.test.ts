/**
 * Hostile remote names on download: keys created directly in RGW that must not become local
 * paths (`../x`, `/abs`, `a/../../b`, `a//b`, `.`, backslashes, a name longer than a file
 * system allows, bucketsync's own temporary-file prefix), and names that are fine on ext4 but
 * would collide elsewhere (two keys that differ only in case). Each bad one is refused with a
 * warning or an error naming it; nothing is written outside the destination; the good files
 * arrive; and a second run agrees with the first.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../support/cli.js';
import { deletePrefix, walkFiles, writeTally } from '../support/fault-proxy.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const endpoint = s3TestEndpoint();

describe.skipIf(!endpoint)('hostile remote names on download', () => {
  let raw: S3Client;
  let bucket: string;
  let work: string;
  const tag = randomBytes(4).toString('hex');
  beforeAll(async () => {
    raw = s3TestClient();
    bucket = await createTestBucket('hostile');
    work = tempDir('bucketsync-hostile-');
  });
  afterAll(() => {
    raw?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  async function put(key: string, body: string): Promise<void> {
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: Buffer.byteLength(body), Metadata: { mtime: '1700000000' } }));
  }

  function download(src: string, dst: string, extra: string[] = []) {
    return cli(['sync', src, dst, '--endpoint-url', endpoint!, '--no-progress', ...extra], {
      env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') },
    });
  }

  /** Every file under `root` except those under `allowed` (the destination). */
  function outside(root: string, allowed: string): string[] {
    return walkFiles(root)
      .map((f) => path.join(root, f))
      .filter((f) => !f.startsWith(allowed + path.sep) && !f.startsWith(path.join(root, 'cache') + path.sep));
  }

  // Keys relative to the synced prefix, what must happen, and why.
  const refused: [rel: string, why: RegExp][] = [
    ['../x', /"\.\." path segment/],
    [`../escape-${tag}.txt`, /"\.\." path segment/],
    ['a/../../b', /"\.\." path segment/],
    ['a/./c', /"\." path segment/],
    ['a//b', /empty path segment/],
    [`/abs-${tag}`, /leading "\/"/],
    ['back\\slash.txt', /backslash/],
    ['..\\..\\win.txt', /backslash/],
    ['not-a-marker/', /ends with "\/"/],
    // exactly the shape of bucketsync's own temporary names (look-alikes are data: safety-local)
    ['.bucketsync-tmp-0123abcd-999999-89abcdef-x.txt', /temporary/],
    ['d/.bucketsync-tmp-0123abcd-1-89abcdef-dir/y.txt', /temporary/],
  ];

  it('refuses every unsafe key with a warning naming it, writes nothing outside the destination, downloads the rest', async () => {
    const prefix = `p-${tag}`;
    const box = path.join(work, 'box');
    const dst = path.join(box, 'dest');
    fs.mkdirSync(dst, { recursive: true });
    const good: Record<string, string> = {
      'good.txt': 'good',
      'sub/ok.txt': 'ok',
      [`${'n'.repeat(255)}`]: 'a 255-byte name is fine',
      'Case.txt': 'upper',
      'case.txt': 'lower',
      'CASE.TXT': 'all upper',
      'caf\u00e9.txt': 'precomposed',
      'cafe\u0301.txt': 'decomposed',
    };
    for (const [rel, body] of Object.entries(good)) await put(`${prefix}/${rel}`, body);
    for (const [rel] of refused) await put(`${prefix}/${rel}`, `hostile ${rel}`);
    const tooLong = 'L'.repeat(256);
    const tooLongUtf8 = '\u00e9'.repeat(128); // 256 bytes, 128 characters
    await put(`${prefix}/${tooLong}`, 'too long');
    await put(`${prefix}/deep/${tooLongUtf8}`, 'too long too');

    const r = await download(`s3://${bucket}/${prefix}`, dst, ['--delete']);
    for (const [rel, why] of refused) {
      const key = `${prefix}/${rel}`;
      const line = r.stderr.split('\n').find((l) => l.includes(`'${key}'`));
      expect(line, `no warning names ${key}:\n${r.stderr}`).toBeDefined();
      expect(line).toMatch(why);
    }
    // names longer than a file system allows: a failure naming the path and the reason
    expect(r.stderr).toMatch(new RegExp(`failed: ${tooLong} \\(download\\): .*too long`));
    expect(r.stderr).toMatch(new RegExp(`failed: deep/${tooLongUtf8} \\(download\\): .*too long`));
    expect(r.code).toBe(1);

    expect(outside(work, dst)).toEqual([]);
    expect(fs.existsSync(`/abs-${tag}`)).toBe(false);
    const files = walkFiles(dst);
    expect(files.filter((f) => f.includes('.bucketsync-tmp-'))).toEqual([]);
    expect(files).toEqual(Object.keys(good).sort());
    for (const [rel, body] of Object.entries(good)) expect(fs.readFileSync(path.join(dst, rel), 'utf8'), rel).toBe(body);

    // A second run sees the same: nothing to download but the two names it cannot write.
    const again = await download(`s3://${bucket}/${prefix}`, dst, ['--delete']);
    expect(again.stderr).toContain('  Downloads: 2');
    expect(walkFiles(dst)).toEqual(Object.keys(good).sort());
    writeTally({
      suite: 'hostile-names',
      scenario: `keys ${refused.map(([k]) => JSON.stringify(k.replace(tag, '<tag>'))).join(', ')}; 256-byte names; names differing only in case or normalisation`,
      where: 'S3→local',
      runs: 2,
      injected: refused.length + 2 + 5,
      failedRuns: 2,
      dataLost: outside(work, dst).length,
      note: 'unsafe keys skipped with a warning, over-long names fail with a clear error, the rest downloaded',
    });
    await deletePrefix(raw, bucket, prefix);
  }, 120_000);

  it('at the bucket root too: "../x" and "/abs" keys never leave the destination', async () => {
    const b = await createTestBucket('hostile-root');
    await raw.send(new PutObjectCommand({ Bucket: b, Key: `../root-escape-${tag}`, Body: 'x' }));
    await raw.send(new PutObjectCommand({ Bucket: b, Key: `/root-abs-${tag}`, Body: 'x' }));
    await raw.send(new PutObjectCommand({ Bucket: b, Key: 'fine.txt', Body: 'fine' }));
    const box = path.join(work, 'box-root');
    const dst = path.join(box, 'dest');
    const r = await download(`s3://${b}`, dst);
    expect(r.stderr).toContain(`Skipping S3 object '../root-escape-${tag}'`);
    expect(r.stderr).toContain(`Skipping S3 object '/root-abs-${tag}'`);
    // skipped keys count (issue 13, class 16): exit 3, never a clean-looking run
    expect(r.code).toBe(3);
    expect(walkFiles(box)).toEqual(['dest/fine.txt']);
    expect(fs.existsSync(`/root-abs-${tag}`)).toBe(false);
    expect(fs.existsSync(path.join(work, `root-escape-${tag}`))).toBe(false);
  }, 60_000);

  it('objects written by other tools (no x-amz-meta-mtime) download, and the next run has nothing to do', async () => {
    const prefix = `foreign-${tag}`;
    for (const k of ['a.txt', 'b/c.txt']) await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${k}`, Body: k }));
    const dst = path.join(work, 'foreign');
    const r = await download(`s3://${bucket}/${prefix}`, dst);
    expect(r.code, r.stderr).toBe(0);
    expect(walkFiles(dst)).toEqual(['a.txt', 'b/c.txt']);
    const again = await download(`s3://${bucket}/${prefix}`, dst);
    expect(again.stderr).toContain('Nothing to sync.');
  }, 60_000);
});
