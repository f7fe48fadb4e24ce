/**
 * kill -9 at random (seeded) moments during a 2,000-file sync local → S3 (RGW), at least 20
 * times in a row, then the same for S3 → local. After every kill each object (file) under its
 * final name is complete and correct, and what was complete stays complete; the final re-run
 * converges to an exact copy with nothing left to do; no temporary file is left behind. Dangling
 * multipart uploads (a kill between CreateMultipartUpload and Complete cannot be cleaned up by
 * the killed process) are counted and reported, not asserted: RGW keeps them until aborted.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, runAndKill, tempDir } from '../support/cli.js';
import { randomBuffer, walkFiles, writeTally } from '../support/fault-proxy.js';
import { seededRandom as rng } from '../support/random.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const endpoint = s3TestEndpoint();
const KILLS = Math.max(20, Number(process.env.BUCKETSYNC_CRASH_KILLS ?? 20) || 20);
const T0 = 1_700_000_000;
const MiB = 1024 * 1024;
const TEMP = '.bucketsync-tmp-';

let raw: S3Client;
let bucket: string;
let work: string;
let src: string;
const expected = new Map<string, Buffer>();
const etags = new Map<string, string>();

/** The ETag S3 gives an object: MD5 of the bytes, or of the part MD5s with `-N` for a multipart upload (16 MiB parts). */
function s3Etag(buf: Buffer): string {
  if (buf.length < 16 * MiB) return createHash('md5').update(buf).digest('hex');
  const parts: Buffer[] = [];
  for (let off = 0; off < buf.length; off += 16 * MiB) parts.push(createHash('md5').update(buf.subarray(off, off + 16 * MiB)).digest());
  return `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
}

beforeAll(async () => {
  if (!endpoint) return;
  raw = s3TestClient();
  bucket = await createTestBucket('crash-s3');
  work = tempDir('bucketsync-crash-s3-');
  src = path.join(work, 'src');
  const rand = rng(23);
  for (let i = 0; i < 2000; i++) {
    const rel = `d${String(i % 40).padStart(2, '0')}/f${String(i).padStart(4, '0')}.bin`;
    // Mostly small files, some of 256 KiB, and two above the 16 MiB multipart threshold.
    const size = i === 500 || i === 1500 ? 17 * MiB + i : i % 50 === 0 ? 256 * 1024 : Math.floor(rand() * 8192);
    const buf = i === 500 || i === 1500 ? randomBuffer(i, size) : Buffer.alloc(size, i % 251);
    const abs = path.join(src, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, buf);
    fs.utimesSync(abs, T0, T0);
    expected.set(rel, buf);
    etags.set(rel, s3Etag(buf));
  }
});
afterAll(() => {
  raw?.destroy();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function env(): Record<string, string> {
  return { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') };
}

/** Every object under `prefix/` with its ETag (unquoted) and size. */
async function listObjects(prefix: string): Promise<Map<string, { etag: string; size: number }>> {
  const out = new Map<string, { etag: string; size: number }>();
  let token: string | undefined;
  do {
    const page = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.set(o.Key!.slice(prefix.length + 1), { etag: (o.ETag ?? '').replace(/"/g, ''), size: o.Size ?? 0 });
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

async function danglingUploads(prefix: string): Promise<number> {
  const res = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/` }));
  return res.Uploads?.length ?? 0;
}

describe.skipIf(!endpoint)('crash safety with S3 (kill -9)', () => {
  const prefix = 'mirror';
  const extras = Array.from({ length: 10 }, (_, i) => `zz-extra/e${i}.txt`);

  it(`local→S3: ${KILLS} kills, every visible object complete, nothing complete lost, the re-run converges`, async () => {
    for (const k of extras) await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${k}`, Body: `extra ${k}` }));
    const dst = `s3://${bucket}/${prefix}`;
    const rand = rng(31);
    let killedMidway = 0;
    let complete = new Set<string>();
    const problems: string[] = [];
    for (let k = 0; k < KILLS; k++) {
      const killed = await runAndKill(['sync', src, dst, '--delete', '--transfers', '8', '--endpoint-url', endpoint!], 1 + Math.floor(rand() * 120), Math.floor(rand() * 30), { env: env() });
      const objects = await listObjects(prefix);
      const now = new Set<string>();
      for (const [rel, o] of objects) {
        if (extras.includes(rel)) continue;
        const want = etags.get(rel);
        if (want === undefined) problems.push(`kill ${k}: unexpected object ${rel}`);
        else if (o.etag !== want || o.size !== expected.get(rel)!.length) problems.push(`kill ${k}: ${rel} is incomplete or wrong (${o.size} bytes, ETag ${o.etag})`);
        else now.add(rel);
      }
      for (const rel of complete) if (!now.has(rel)) problems.push(`kill ${k}: ${rel} was complete and is gone`);
      complete = now;
      if (killed && now.size > 0 && now.size < expected.size) killedMidway++;
    }
    expect(problems).toEqual([]);
    expect(killedMidway).toBeGreaterThanOrEqual(3);

    const dangling = await danglingUploads(prefix);
    const final = await cli(['sync', src, dst, '--delete', '-q', '--endpoint-url', endpoint!], { env: env(), timeoutMs: 240_000 });
    expect(final.code, final.stderr).toBe(0);
    const objects = await listObjects(prefix);
    expect([...objects.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [rel, o] of objects) expect(o.etag, rel).toBe(etags.get(rel));
    const noop = await cli(['sync', src, dst, '--delete', '--endpoint-url', endpoint!], { env: env() });
    expect(noop.stderr).toContain('Nothing to sync.');
    expect(walkFiles(src).filter((f) => path.posix.basename(f).startsWith(TEMP))).toEqual([]);
    const danglingAfter = await danglingUploads(prefix);
    process.stderr.write(`crash-s3 local→S3: ${KILLS} kills, ${killedMidway} mid-run; dangling multipart uploads: ${dangling} after the kills, ${danglingAfter} after the final run\n`);
    writeTally({
      suite: 'crash',
      scenario: 'kill -9 during a 2,000-file sync (--delete, 2 multipart files)',
      where: 'local→S3',
      runs: KILLS + 2,
      injected: KILLS,
      dataLost: problems.length,
      note: `${killedMidway} kills mid-run; re-run converged; ${dangling} multipart upload(s) left dangling by the kills (RGW keeps them until aborted)`,
    });
  }, 600_000);

  it(`S3→local: ${KILLS} kills, every visible file complete, the re-run converges with no temp files left`, async () => {
    const dst = path.join(work, 'dst');
    const rand = rng(37);
    let killedMidway = 0;
    const problems: string[] = [];
    let complete = new Set<string>();
    for (let k = 0; k < KILLS; k++) {
      const killed = await runAndKill(['sync', `s3://${bucket}/${prefix}`, dst, '--delete', '--transfers', '8', '--endpoint-url', endpoint!], 1 + Math.floor(rand() * 120), Math.floor(rand() * 30), { env: env() });
      const now = new Set<string>();
      for (const rel of walkFiles(dst)) {
        if (path.posix.basename(rel).startsWith(TEMP)) continue;
        const want = expected.get(rel);
        if (!want) problems.push(`kill ${k}: unexpected file ${rel}`);
        else if (!fs.readFileSync(path.join(dst, rel)).equals(want)) problems.push(`kill ${k}: ${rel} is incomplete`);
        else now.add(rel);
      }
      for (const rel of complete) if (!now.has(rel)) problems.push(`kill ${k}: ${rel} was complete and is gone`);
      complete = now;
      if (killed && now.size > 0 && now.size < expected.size) killedMidway++;
    }
    expect(problems).toEqual([]);
    expect(killedMidway).toBeGreaterThanOrEqual(3);
    const leftovers = walkFiles(dst).filter((f) => path.posix.basename(f).startsWith(TEMP)).length;
    const final = await cli(['sync', `s3://${bucket}/${prefix}`, dst, '--delete', '-q', '--endpoint-url', endpoint!], { env: env(), timeoutMs: 240_000 });
    expect(final.code, final.stderr).toBe(0);
    const files = walkFiles(dst);
    expect(files.filter((f) => path.posix.basename(f).startsWith(TEMP))).toEqual([]);
    expect(files).toEqual([...expected.keys()].sort());
    for (const rel of files) expect(fs.readFileSync(path.join(dst, rel)).equals(expected.get(rel)!), rel).toBe(true);
    const noop = await cli(['sync', `s3://${bucket}/${prefix}`, dst, '--delete', '--endpoint-url', endpoint!], { env: env() });
    expect(noop.stderr).toContain('Nothing to sync.');
    process.stderr.write(`crash-s3 S3→local: ${KILLS} kills, ${killedMidway} mid-run; ${leftovers} temp file(s) of killed runs, removed by the final run\n`);
    writeTally({
      suite: 'crash',
      scenario: 'kill -9 during a 2,000-file sync (--delete, 2 files of 17 MiB)',
      where: 'S3→local',
      runs: KILLS + 2,
      injected: KILLS,
      dataLost: problems.length,
      note: `${killedMidway} kills mid-run; ${leftovers} temp files of killed runs removed by the next run; re-run converged`,
    });
  }, 600_000);
});
