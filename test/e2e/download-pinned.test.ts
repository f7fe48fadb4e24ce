/**
 * Every read of a transfer is pinned to the version that was just checked (README, "Not
 * guaranteed" used to say otherwise for Azure; S3's streamed read had the same window): an
 * object replaced between the executor's stat (HEAD / Get Blob Properties) and its GET — by
 * other bytes of the SAME size and the SAME mtime metadata, so that nothing but its ETag tells
 * it apart — is reported stale (exit 1), nothing is written under the final name, no temporary
 * file stays behind, and the next run fetches the new bytes, byte-identical.
 *
 * The replacement is made by the fault proxy's `hold` hook: the GET is held at the proxy, the
 * object is overwritten directly on the server meanwhile, then the GET goes on. Cases, end to
 * end through the CLI:
 *
 * - S3 → local: a small object (one GET), a big single-part one (streamed, with a `.resume`
 *   record), a big multipart one (concurrent ranged GETs, the 2nd range held), and a resumed
 *   download (killed part-way; the object replaced when the next run's `Range: bytes=N-` GET
 *   arrives: the restart from zero must not fetch the new version either);
 * - Azure → local: a small blob and a big one (one Get Blob each);
 * - the read of a remote source staged in blocks: Azure → Azure and S3 → Azure (the source is
 *   read in one pinned GET; held while the source is replaced): stale, no blob of either version;
 * - a server that ignores If-Match (the proxy answers the held GET with the replaced version
 *   itself): S3 single GET, S3 ranged GETs (lean reader and node:http), Azure Get Blob;
 * - an object or blob deleted while its GET is held: stale too (not a failure);
 * - hf → local: the file replaced (same size, same mtime) between the stat (paths-info) and the
 *   read's resolve: the read compares the Xet hash it resolves to with the checked one.
 *
 * Thresholds are lowered (BUCKETSYNC_RESUME_MIN_SIZE) to keep sizes small; the Azure block
 * threshold (16 MiB) is not configurable, so the block cases use 17 MiB.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzureClient } from '../../src/stores/azure/client.js';
import { formatAzureMtime } from '../../src/stores/azure/mtime.js';
import { cli, runPolling, writeTree, type CliResult } from '../support/cli.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { azureTestClient, azureTestEnv, azuriteEndpoint, createTestContainer } from '../support/azure-env.js';
import { randomBuffer, startFaultProxy, type FaultProxy, type HeldAnswer, type ProxiedRequest } from '../support/fault-proxy.js';
import { closeS3Suite, openS3Suite, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const s3Endpoint = s3TestEndpoint();
const azEndpoint = azuriteEndpoint();
const KiB = 1024;
const MiB = 1024 * KiB;
const T0 = 1_700_000_000; // the mtime (seconds) both versions carry
const PART = 5 * MiB;

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
/** The same size, other bytes (a byte flipped in every 4 KiB: no range of the old version is the new one's). */
function otherBytes(buf: Buffer): Buffer {
  const next = Buffer.from(buf);
  for (let i = 0; i < next.length; i += 4096) next[i] = next[i]! ^ 0xff;
  return next;
}
/** The folder's entries (none when it does not exist). */
const entries = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

/**
 * A proxy in front of `target` that holds the `nth` (0-based) GET matching `isData` until
 * `replace()` has overwritten the object on the server, then lets it go on — or, when
 * `replace()` gives an answer, sends that instead (a server that ignored If-Match). `seen`
 * lists every matching GET with its Range and If-Match headers.
 */
async function replacingProxy(
  target: string,
  isData: (r: ProxiedRequest) => boolean,
  nth: number,
  replace: (req: ProxiedRequest) => Promise<HeldAnswer | void>,
): Promise<{ proxy: FaultProxy; seen: { range?: string; ifMatch?: string }[]; replaced: () => boolean }> {
  const seen: { range?: string; ifMatch?: string }[] = [];
  let replaced = false;
  const proxy = await startFaultProxy({
    target,
    seed: 1,
    rate: 0,
    kinds: ['stall'],
    lifetimeMs: 300_000,
    hold: (r) => {
      if (r.method !== 'GET' || !isData(r)) return undefined;
      const n = seen.length;
      const s: { range?: string; ifMatch?: string } = {};
      const range = (r.headers.range ?? r.headers['x-ms-range']) as string | undefined;
      if (range !== undefined) s.range = range;
      if (r.headers['if-match'] !== undefined) s.ifMatch = r.headers['if-match'] as string;
      seen.push(s);
      if (n !== nth) return undefined;
      return replace(r).then((answer) => {
        replaced = true;
        return answer;
      });
    },
  });
  return { proxy, seen, replaced: () => replaced };
}

/** The stale run's promises: exit 1, the file reported stale, nothing under its name, no temporary file. */
function expectStale(r: CliResult, name: string, dest: string): void {
  expect(r.code, `exit ${r.code}\n${r.stderr}`).toBe(1);
  expect(r.stderr).toContain(`stale, left untouched: ${name}`);
  expect(entries(dest).filter((n) => n !== '.bucketsync')).toEqual([]);
}

// ---------------------------------------------------------------------------------------------
// S3

describe.skipIf(!s3Endpoint)('S3 downloads are pinned to the checked ETag (RGW)', () => {
  let raw: S3Client;
  let bucket: string;
  let work: string;
  const proxies: FaultProxy[] = [];

  beforeAll(async () => {
    const s = await openS3Suite('dl-pinned');
    if (s) ({ raw, bucket, work } = s);
  });
  afterAll(() => closeS3Suite({ raw, bucket, work }, proxies));

  /** One PUT (a single-part ETag), with bucketsync's mtime metadata. */
  const put = async (key: string, buf: Buffer): Promise<void> => {
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: buf, Metadata: { mtime: String(T0) } }));
  };
  /** A multipart object in 5 MiB parts with its part size recorded, as bucketsync uploads them (fetched as ranged GETs). */
  const putMultipart = async (key: string, buf: Buffer): Promise<void> => {
    const created = await raw.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, Metadata: { 'part-size': String(PART), mtime: String(T0) } }));
    const parts: { PartNumber: number; ETag: string }[] = [];
    for (let i = 0, at = 0; at < buf.length; i++, at += PART) {
      const r = await raw.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId, PartNumber: i + 1, Body: buf.subarray(at, Math.min(buf.length, at + PART)) }));
      parts.push({ PartNumber: i + 1, ETag: r.ETag! });
    }
    await raw.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId, MultipartUpload: { Parts: parts } }));
  };
  const objectGet = (key: string) => (r: ProxiedRequest): boolean => new URL(r.url, 'http://x').pathname === `/${bucket}/${key}`;
  const env = (name: string, extra: Record<string, string> = {}): Record<string, string> => ({
    ...s3TestEnv(),
    BUCKETSYNC_CACHE_DIR: path.join(work, `${name}-cache`),
    BUCKETSYNC_RESUME_MIN_SIZE: String(MiB),
    ...extra,
  });

  /** Download `prefix` through a proxy that replaces `key` with `next` at its `nth` GET: stale; then a plain re-run converges on `next`. */
  async function staleThenConverges(
    name: string,
    key: string,
    next: Buffer,
    nth: number,
    writeNext: (req: ProxiedRequest) => Promise<HeldAnswer | void>,
    extraEnv: Record<string, string> = {},
  ): Promise<{ seen: { range?: string; ifMatch?: string }[] }> {
    const dest = path.join(work, `${name}-dest`);
    const { proxy, seen, replaced } = await replacingProxy(s3Endpoint!, objectGet(key), nth, writeNext);
    proxies.push(proxy);
    const r = await cli(['sync', `s3://${bucket}/${name}`, dest, '--endpoint-url', proxy.url, '--no-progress'], { env: env(name, extraEnv), timeoutMs: 120_000 });
    expect(replaced(), `the GET to hold never came:\n${r.stderr}`).toBe(true);
    expectStale(r, path.basename(key), dest);
    const again = await cli(['sync', `s3://${bucket}/${name}`, dest, '--no-progress'], { env: env(name, extraEnv), timeoutMs: 120_000 });
    expect(again.code, again.stderr).toBe(0);
    const file = path.join(dest, path.basename(key));
    expect(md5(fs.readFileSync(file))).toBe(md5(next));
    expect(Math.round(fs.statSync(file).mtimeMs / 1000)).toBe(T0);
    expect(entries(dest).filter((n) => n !== '.bucketsync')).toEqual([path.basename(key)]);
    return { seen };
  }

  it('a small object replaced (same size, same mtime) while its GET is on the way: stale, nothing written; the re-run fetches the new bytes', async () => {
    const old = randomBuffer(301, 3 * KiB);
    const next = otherBytes(old);
    await put('small/a.txt', old);
    const { seen } = await staleThenConverges('small', 'small/a.txt', next, 0, () => put('small/a.txt', next));
    expect(seen[0]!.ifMatch?.replace(/"/g, '')).toBe(md5(old));
  }, 120_000);

  it('a big single-part object (streamed, resumable) replaced while its GET is on the way: stale, no temporary file or .resume record left', async () => {
    const old = randomBuffer(302, 3 * MiB + 17);
    const next = otherBytes(old);
    await put('streamed/big.bin', old);
    const { seen } = await staleThenConverges('streamed', 'streamed/big.bin', next, 0, () => put('streamed/big.bin', next));
    expect(seen[0]).toEqual({ ifMatch: expect.stringContaining(md5(old)) });
  }, 120_000);

  it('a big multipart object (ranged GETs) replaced after its first part arrived: stale, no part of either version under the final name', async () => {
    const old = randomBuffer(303, 2 * PART + 300 * KiB);
    const next = otherBytes(old);
    await putMultipart('ranged/big.bin', old);
    // one range at a time: the 1st part is written, the 2nd GET is held while the object is replaced
    const { seen } = await staleThenConverges('ranged', 'ranged/big.bin', next, 1, () => putMultipart('ranged/big.bin', next), { BUCKETSYNC_S3_DOWNLOAD_CONCURRENCY: '1' });
    expect(seen[0]!.range).toBe(`bytes=0-${PART - 1}`);
    expect(seen[1]!.range).toBe(`bytes=${PART}-${2 * PART - 1}`);
    for (const s of seen) expect(s.ifMatch).toBeDefined();
  }, 120_000);

  it('a resumed download whose object is replaced when the Range GET arrives: stale, the partial file removed, never restarted on the new version', async () => {
    const key = 'resumed/big.bin';
    const old = randomBuffer(304, 4 * MiB + 5);
    const next = otherBytes(old);
    await put(key, old);
    const dest = path.join(work, 'resumed-dest');
    const cache = env('resumed');
    // 1. killed part-way: the GET's body stalls in the middle, the run is SIGKILLed once bytes are on disk
    const stall = await startFaultProxy({ target: s3Endpoint!, seed: 3, rate: 1, kinds: ['stall'], stallMs: 20_000, match: (r) => r.method === 'GET' && objectGet(key)(r), lifetimeMs: 120_000 });
    proxies.push(stall);
    const partialSize = (): number => {
      const t = fs.readdirSync(dest).find((n) => n.startsWith('.bucketsync-tmp-') && !n.endsWith('.resume') && !n.endsWith('-case-probe'));
      return t ? fs.statSync(path.join(dest, t)).size : 0;
    };
    const killed = await runPolling(['sync', `s3://${bucket}/resumed`, dest, '--endpoint-url', stall.url, '--no-progress'], () => partialSize() > 0, {
      env: cache,
      killDelayMs: 200,
      everyMs: 20,
      giveUpMs: 60_000,
    });
    expect(killed.signal, `the download finished before it was killed (exit ${killed.code}):\n${killed.stderr}`).toBe('SIGKILL');
    const tmp = entries(dest).find((n) => n.startsWith('.bucketsync-tmp-') && n.endsWith('.resume'));
    expect(tmp, entries(dest).join(', ')).toBeDefined();
    const have = partialSize();
    expect(have).toBeGreaterThan(0);
    expect(have).toBeLessThan(old.length);
    // 2. the next run resumes with Range: bytes=N-; the object is replaced while that GET is held
    const { seen } = await staleThenConverges('resumed', key, next, 0, () => put(key, next));
    expect(seen[0]!.range).toBe(`bytes=${have}-`);
    // the restart from zero (after the Range GET's 412) asked for the checked version too
    for (const s of seen) expect(s.ifMatch).toBeDefined();
  }, 180_000);

  it('an object deleted while its GET is on the way: stale (not a failure), nothing written; the re-run has nothing to fetch', async () => {
    const key = 'vanished/a.txt';
    await put(key, randomBuffer(307, 2 * KiB));
    await put('vanished/keep.txt', Buffer.from('kept'));
    const dest = path.join(work, 'vanished-dest');
    const { proxy, replaced } = await replacingProxy(s3Endpoint!, objectGet(key), 0, async () => {
      await raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    });
    proxies.push(proxy);
    const r = await cli(['sync', `s3://${bucket}/vanished`, dest, '--endpoint-url', proxy.url, '--no-progress'], { env: env('vanished'), timeoutMs: 120_000 });
    expect(replaced(), r.stderr).toBe(true);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('stale, left untouched: a.txt');
    expect(r.stderr).not.toMatch(/failed: a\.txt|NoSuchKey/);
    expect(entries(dest).filter((n) => n !== '.bucketsync')).toEqual(['keep.txt']);
    const again = await cli(['sync', `s3://${bucket}/vanished`, dest, '--no-progress'], { env: env('vanished'), timeoutMs: 120_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(entries(dest).filter((n) => n !== '.bucketsync')).toEqual(['keep.txt']);
  }, 120_000);

  /** The object's current version as the server answers a GET without If-Match (of `range`): what a server that ignores the condition sends. */
  const currentVersion = async (key: string, range: string | undefined): Promise<HeldAnswer> => {
    const r = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }));
    const body = Buffer.from(await r.Body!.transformToByteArray());
    const headers: Record<string, string> = { etag: r.ETag!, 'content-type': 'application/octet-stream', 'last-modified': r.LastModified!.toUTCString(), 'x-amz-meta-mtime': String(T0) };
    if (r.ContentRange) headers['content-range'] = r.ContentRange;
    return { status: range ? 206 : 200, headers, body };
  };

  it('a server that ignores If-Match: the GET answers the replaced object (another ETag): stale, not written', async () => {
    const old = randomBuffer(305, 5 * KiB);
    const next = otherBytes(old);
    await put('ignored/a.txt', old);
    await staleThenConverges('ignored', 'ignored/a.txt', next, 0, async () => {
      await put('ignored/a.txt', next);
      return currentVersion('ignored/a.txt', undefined);
    });
  }, 120_000);

  for (const [label, rawGet] of [
    ['the lean reader', '1'],
    ['node:http (BUCKETSYNC_S3_RAW_GET=0)', '0'],
  ] as const) {
    it(`a server that ignores If-Match, ranged GETs through ${label}: a range of the replaced object is stale, not retried onto the new version`, async () => {
      const name = `ignranged${rawGet}`;
      const key = `${name}/big.bin`;
      const old = randomBuffer(306, 2 * PART + 7 * KiB);
      const next = otherBytes(old);
      await putMultipart(key, old);
      const { seen } = await staleThenConverges(
        name,
        key,
        next,
        1,
        async (req) => {
          await putMultipart(key, next);
          return currentVersion(key, req.headers.range as string);
        },
        { BUCKETSYNC_S3_DOWNLOAD_CONCURRENCY: '1', BUCKETSYNC_S3_RAW_GET: rawGet },
      );
      // no second attempt at the range, none at the object
      expect(seen.map((s) => s.range)).toEqual([`bytes=0-${PART - 1}`, `bytes=${PART}-${2 * PART - 1}`]);
    }, 120_000);
  }
});

// ---------------------------------------------------------------------------------------------
// Azure

describe.skipIf(!azEndpoint)('Azure reads are pinned to the checked ETag (Azurite)', () => {
  let client: AzureClient;
  let container: string;
  let destContainer: string;
  let work: string;
  const proxies: FaultProxy[] = [];
  const origin = (): string => new URL(azEndpoint!).origin;
  const account = (): string => new URL(azEndpoint!).pathname.replace(/\/+$/, '');

  beforeAll(async () => {
    client = azureTestClient();
    container = await createTestContainer('dl-pinned');
    destContainer = await createTestContainer('dl-pinned-dest');
    work = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'bucketsync-dl-pinned-az-'));
  });
  afterAll(async () => {
    for (const p of proxies) await p.close();
    client?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** One Put Blob with bucketsync's mtime metadata (both versions carry the same). */
  const putBlob = async (name: string, buf: Buffer, c = container): Promise<void> => {
    await client.request({
      op: 'PutBlob',
      method: 'PUT',
      container: c,
      blob: name,
      headers: { 'x-ms-blob-type': 'BlockBlob', 'x-ms-meta-mtime': formatAzureMtime(T0 * 1000), 'x-ms-blob-content-md5': createHash('md5').update(buf).digest('base64') },
      body: buf,
    });
  };
  const getBlob = async (name: string, c: string): Promise<Buffer | undefined> => {
    try {
      const res = await client.request({ op: 'GetBlob', method: 'GET', container: c, blob: name, stream: true });
      const chunks: Buffer[] = [];
      for await (const chunk of res.stream!) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    } catch (err) {
      if ((err as { status?: number }).status === 404) return undefined;
      throw err;
    }
  };
  const blobGet = (name: string) => (r: ProxiedRequest): boolean => new URL(r.url, 'http://x').pathname === `${account()}/${container}/${name}`;
  const env = (proxy: FaultProxy | undefined, name: string): Record<string, string> => ({
    ...azureTestEnv(proxy ? `${proxy.url}${account()}` : azEndpoint!),
    BUCKETSYNC_CACHE_DIR: path.join(work, `${name}-cache`),
  });

  for (const [label, size] of [
    ['a small blob', 3 * KiB],
    ['a big blob (one streamed Get Blob)', 4 * MiB + 3],
  ] as const) {
    it(`${label} replaced (same size, same mtime) while its Get Blob is on the way: stale, nothing written; the re-run fetches the new bytes`, async () => {
      const name = size < MiB ? 'small' : 'big';
      const blob = `${name}/f.bin`;
      const old = randomBuffer(size < MiB ? 401 : 402, size);
      const next = otherBytes(old);
      await putBlob(blob, old);
      const dest = path.join(work, `${name}-dest`);
      const { proxy, seen, replaced } = await replacingProxy(origin(), blobGet(blob), 0, () => putBlob(blob, next));
      proxies.push(proxy);
      const r = await cli(['sync', `az://${container}/${name}`, dest, '--no-progress'], { env: env(proxy, name), timeoutMs: 120_000 });
      expect(replaced(), r.stderr).toBe(true);
      expectStale(r, 'f.bin', dest);
      expect(seen[0]!.ifMatch).toMatch(/^"?0x/);
      const again = await cli(['sync', `az://${container}/${name}`, dest, '--no-progress'], { env: env(undefined, name), timeoutMs: 120_000 });
      expect(again.code, again.stderr).toBe(0);
      expect(md5(fs.readFileSync(path.join(dest, 'f.bin')))).toBe(md5(next));
      expect(Math.round(fs.statSync(path.join(dest, 'f.bin')).mtimeMs / 1000)).toBe(T0);
    }, 120_000);
  }

  it('a blob deleted while its Get Blob is on the way: stale (not a failure), nothing written', async () => {
    const blob = 'vanished/f.bin';
    await putBlob(blob, randomBuffer(406, 2 * KiB));
    const dest = path.join(work, 'vanished-dest');
    const { proxy, replaced } = await replacingProxy(origin(), blobGet(blob), 0, async () => {
      await client.request({ op: 'DeleteBlob', method: 'DELETE', container, blob });
    });
    proxies.push(proxy);
    const r = await cli(['sync', `az://${container}/vanished`, dest, '--no-progress'], { env: env(proxy, 'vanished'), timeoutMs: 120_000 });
    expect(replaced(), r.stderr).toBe(true);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('stale, left untouched: f.bin');
    expect(entries(dest).filter((n) => n !== '.bucketsync')).toEqual([]);
  }, 120_000);

  it('a server that ignores If-Match: Get Blob answers the replaced blob (another ETag): stale, nothing written', async () => {
    const blob = 'ignored/f.bin';
    const old = randomBuffer(405, 5 * KiB);
    const next = otherBytes(old);
    await putBlob(blob, old);
    const dest = path.join(work, 'ignored-dest');
    const { proxy, replaced } = await replacingProxy(origin(), blobGet(blob), 0, async () => {
      await putBlob(blob, next);
      // the blob as a Get Blob without If-Match answers it now
      const res = await client.request({ op: 'GetBlob', method: 'GET', container, blob, stream: true });
      const chunks: Buffer[] = [];
      for await (const chunk of res.stream!) chunks.push(chunk as Buffer);
      const headers: Record<string, string> = {};
      for (const k of ['etag', 'content-md5', 'last-modified', 'x-ms-blob-type', 'x-ms-meta-mtime', 'content-type']) {
        const v = res.headers[k];
        if (typeof v === 'string') headers[k] = v;
      }
      return { status: 200, headers, body: Buffer.concat(chunks) };
    });
    proxies.push(proxy);
    const r = await cli(['sync', `az://${container}/ignored`, dest, '--no-progress'], { env: env(proxy, 'ignored'), timeoutMs: 120_000 });
    expect(replaced(), r.stderr).toBe(true);
    expectStale(r, 'f.bin', dest);
    const again = await cli(['sync', `az://${container}/ignored`, dest, '--no-progress'], { env: env(undefined, 'ignored'), timeoutMs: 120_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(dest, 'f.bin')))).toBe(md5(next));
  }, 120_000);

  it('Azure → Azure in staged blocks, the source replaced while its Get Blob is held: stale, no blob mixing two versions', async () => {
    const blob = 'blocks/big.bin';
    const old = randomBuffer(403, 17 * MiB + 11);
    const next = otherBytes(old);
    await putBlob(blob, old);
    const { proxy, seen, replaced } = await replacingProxy(origin(), blobGet(blob), 0, () => putBlob(blob, next));
    proxies.push(proxy);
    const to = `az://${destContainer}/blocks`;
    const r = await cli(['sync', `az://${container}/blocks`, to, '--no-progress'], { env: env(proxy, 'blocks'), timeoutMs: 180_000 });
    expect(replaced(), r.stderr).toBe(true);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('stale, left untouched: big.bin');
    for (const s of seen) expect(s.ifMatch).toBeDefined();
    expect(await getBlob('blocks/big.bin', destContainer)).toBeUndefined();
    const again = await cli(['sync', `az://${container}/blocks`, to, '--no-progress'], { env: env(undefined, 'blocks'), timeoutMs: 180_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(md5((await getBlob('blocks/big.bin', destContainer))!)).toBe(md5(next));
  }, 240_000);

  describe.skipIf(!s3Endpoint)('with RGW', () => {
    let raw: S3Client;
    let bucket: string;
    let s3work: string;
    beforeAll(async () => {
      const s = await openS3Suite('dl-pinned-az');
      if (s) ({ raw, bucket, work: s3work } = s);
    });
    afterAll(() => closeS3Suite({ raw, bucket, work: s3work }, []));

    it('S3 → Azure in staged blocks, the object replaced while its GET is held: stale, no blob mixing two versions', async () => {
      const key = 's3blocks/big.bin';
      const old = randomBuffer(404, 17 * MiB + 11);
      const next = otherBytes(old);
      const put = async (b: Buffer): Promise<void> => {
        await raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: b, Metadata: { mtime: String(T0) } }));
      };
      await put(old);
      const { proxy, seen, replaced } = await replacingProxy(s3Endpoint!, (r) => new URL(r.url, 'http://x').pathname === `/${bucket}/${key}`, 0, () => put(next));
      proxies.push(proxy);
      const to = `az://${destContainer}/s3blocks`;
      const runEnv = (p: FaultProxy | undefined): Record<string, string> => ({ ...s3TestEnv(), ...env(undefined, 's3blocks'), ...(p ? { AWS_ENDPOINT_URL: p.url } : {}) });
      const r = await cli(['sync', `s3://${bucket}/s3blocks`, to, '--no-progress'], { env: runEnv(proxy), timeoutMs: 180_000 });
      expect(replaced(), r.stderr).toBe(true);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain('stale, left untouched: big.bin');
      for (const s of seen) expect(s.ifMatch).toBeDefined();
      expect(await getBlob('s3blocks/big.bin', destContainer)).toBeUndefined();
      const again = await cli(['sync', `s3://${bucket}/s3blocks`, to, '--no-progress'], { env: runEnv(undefined), timeoutMs: 180_000 });
      expect(again.code, again.stderr).toBe(0);
      expect(md5((await getBlob('s3blocks/big.bin', destContainer))!)).toBe(md5(next));
    }, 240_000);
  });
});

// ---------------------------------------------------------------------------------------------
// Hugging Face (the local Hub + Xet test server)

describe('hf reads are pinned to the checked Xet hash (local Hub server)', () => {
  let server: HfTestServer;
  let work: string;
  const proxies: FaultProxy[] = [];
  const bucket = 'tester/dl-pinned';
  beforeAll(async () => {
    server = await startHfServer();
    server.createBucket(bucket);
    work = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'bucketsync-dl-pinned-hf-'));
  });
  afterAll(async () => {
    for (const p of proxies) await p.close();
    await server?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });
  const env = (endpoint: string): Record<string, string> => ({ HF_ENDPOINT: endpoint, HF_TOKEN: 'hf_test_token', HF_HOME: work, BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') });

  it('a file replaced (same size, same mtime) between the stat and the read: stale, nothing written; the re-run fetches the new bytes', async () => {
    const old = randomBuffer(501, 6 * KiB);
    const next = otherBytes(old);
    // both versions uploaded (v1 is synced, v2 holds the other bytes), with the same mtime
    writeTree(path.join(work, 'v1'), { 'a.bin': old }, T0);
    writeTree(path.join(work, 'v2'), { 'a.bin': next }, T0);
    for (const v of ['v1', 'v2']) {
      const up = await cli(['sync', path.join(work, v), `hf://buckets/${bucket}/${v}`, '--no-progress'], { env: env(server.url) });
      expect(up.code, up.stderr).toBe(0);
    }
    // when the read resolves v1/a.bin, another writer has put v2's content there (same size, same mtime)
    const { proxy, replaced } = await replacingProxy(server.url, (r) => r.url.includes('/resolve/') && decodeURIComponent(r.url).includes('v1/a.bin'), 0, async () => {
      const files = server.buckets.get(bucket)!.files;
      files.set('v1/a.bin', { ...files.get('v2/a.bin')!, path: 'v1/a.bin' });
    });
    proxies.push(proxy);
    const dest = path.join(work, 'dest');
    const r = await cli(['sync', `hf://buckets/${bucket}/v1`, dest, '--no-progress'], { env: env(proxy.url) });
    expect(replaced(), r.stderr).toBe(true);
    expectStale(r, 'a.bin', dest);
    const again = await cli(['sync', `hf://buckets/${bucket}/v1`, dest, '--no-progress'], { env: env(server.url) });
    expect(again.code, again.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(dest, 'a.bin')))).toBe(md5(next));
  }, 120_000);
});
