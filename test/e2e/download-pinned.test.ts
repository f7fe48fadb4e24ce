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
import fs from 'node:fs';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, runPolling, writeTree, type CliResult } from '../support/cli.js';
import { azuriteEndpoint } from '../support/azure-env.js';
import { md5, MiB, PART, putMultipart as putMultipartIn, T0, tmpName } from '../support/big-files.js';
import { randomBuffer, startFaultProxy, type FaultProxy, type HeldAnswer, type ProxiedRequest } from '../support/fault-proxy.js';
import {
  azureEnvVia,
  blobGet,
  entries,
  getBlobOrUndefined,
  ifMatchOf,
  otherBytes,
  pathOf,
  putBlobWithMtime,
  rangeOf,
  replacingProxy,
  type SeenHeaders,
  useAzureSuite,
  useHfSuite,
} from '../support/pinned.js';
import { closeS3Suite, openS3Suite, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const s3Endpoint = s3TestEndpoint();
const azEndpoint = azuriteEndpoint();
const KiB = 1024;

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
  const putMultipart = (key: string, buf: Buffer): Promise<void> => putMultipartIn(raw, bucket, key, buf);
  const objectGet = (key: string) => (r: ProxiedRequest): boolean => r.method === 'GET' && pathOf(r) === `/${bucket}/${key}`;
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
  ): Promise<{ seen: SeenHeaders[] }> {
    const dest = path.join(work, `${name}-dest`);
    const { proxy, seen, replaced } = await replacingProxy(s3Endpoint!, objectGet(key), writeNext, { nth });
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
    expect(ifMatchOf(seen[0]!)?.replace(/"/g, '')).toBe(md5(old));
  }, 120_000);

  it('a big single-part object (streamed, resumable) replaced while its GET is on the way: stale, no temporary file or .resume record left', async () => {
    const old = randomBuffer(302, 3 * MiB + 17);
    const next = otherBytes(old);
    await put('streamed/big.bin', old);
    const { seen } = await staleThenConverges('streamed', 'streamed/big.bin', next, 0, () => put('streamed/big.bin', next));
    // one plain GET (no Range) asking for the checked version
    expect(rangeOf(seen[0]!)).toBeUndefined();
    expect(ifMatchOf(seen[0]!)).toEqual(expect.stringContaining(md5(old)));
  }, 120_000);

  it('a big multipart object (ranged GETs) replaced after its first part arrived: stale, no part of either version under the final name', async () => {
    const old = randomBuffer(303, 2 * PART + 300 * KiB);
    const next = otherBytes(old);
    await putMultipart('ranged/big.bin', old);
    // one range at a time: the 1st part is written, the 2nd GET is held while the object is replaced
    const { seen } = await staleThenConverges('ranged', 'ranged/big.bin', next, 1, () => putMultipart('ranged/big.bin', next), { BUCKETSYNC_S3_DOWNLOAD_CONCURRENCY: '1' });
    expect(rangeOf(seen[0]!)).toBe(`bytes=0-${PART - 1}`);
    expect(rangeOf(seen[1]!)).toBe(`bytes=${PART}-${2 * PART - 1}`);
    for (const s of seen) expect(ifMatchOf(s)).toBeDefined();
  }, 120_000);

  it('a resumed download whose object is replaced when the Range GET arrives: stale, the partial file removed, never restarted on the new version', async () => {
    const key = 'resumed/big.bin';
    const old = randomBuffer(304, 4 * MiB + 5);
    const next = otherBytes(old);
    await put(key, old);
    const dest = path.join(work, 'resumed-dest');
    const cache = env('resumed');
    // 1. killed part-way: the GET's body stalls in the middle, the run is SIGKILLed once bytes are on disk
    const stall = await startFaultProxy({ target: s3Endpoint!, seed: 3, rate: 1, kinds: ['stall'], stallMs: 20_000, match: objectGet(key), lifetimeMs: 120_000 });
    proxies.push(stall);
    const partialSize = (): number => {
      const t = tmpName(dest);
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
    expect(rangeOf(seen[0]!)).toBe(`bytes=${have}-`);
    // the restart from zero (after the Range GET's 412) asked for the checked version too
    for (const s of seen) expect(ifMatchOf(s)).toBeDefined();
  }, 180_000);

  it('an object deleted while its GET is on the way: stale (not a failure), nothing written; the re-run has nothing to fetch', async () => {
    const key = 'vanished/a.txt';
    await put(key, randomBuffer(307, 2 * KiB));
    await put('vanished/keep.txt', Buffer.from('kept'));
    const dest = path.join(work, 'vanished-dest');
    const { proxy, replaced } = await replacingProxy(s3Endpoint!, objectGet(key), async () => {
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
      expect(seen.map(rangeOf)).toEqual([`bytes=0-${PART - 1}`, `bytes=${PART}-${2 * PART - 1}`]);
    }, 120_000);
  }
});

// ---------------------------------------------------------------------------------------------
// Azure

describe.skipIf(!azEndpoint)('Azure reads are pinned to the checked ETag (Azurite)', () => {
  const az = useAzureSuite('dl-pinned');

  /** One Put Blob with bucketsync's mtime metadata (both versions carry the same). */
  const putBlob = (name: string, buf: Buffer): Promise<void> => putBlobWithMtime(az.client, az.container, name, buf);
  const env = (proxy: FaultProxy | undefined, name: string): Record<string, string> => ({
    ...azureEnvVia(az, proxy),
    BUCKETSYNC_CACHE_DIR: path.join(az.work, `${name}-cache`),
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
      const dest = path.join(az.work, `${name}-dest`);
      const { proxy, seen, replaced } = await replacingProxy(az.origin, blobGet(az, blob), () => putBlob(blob, next));
      az.proxies.push(proxy);
      const r = await cli(['sync', `az://${az.container}/${name}`, dest, '--no-progress'], { env: env(proxy, name), timeoutMs: 120_000 });
      expect(replaced(), r.stderr).toBe(true);
      expectStale(r, 'f.bin', dest);
      expect(ifMatchOf(seen[0]!)).toMatch(/^"?0x/);
      const again = await cli(['sync', `az://${az.container}/${name}`, dest, '--no-progress'], { env: env(undefined, name), timeoutMs: 120_000 });
      expect(again.code, again.stderr).toBe(0);
      expect(md5(fs.readFileSync(path.join(dest, 'f.bin')))).toBe(md5(next));
      expect(Math.round(fs.statSync(path.join(dest, 'f.bin')).mtimeMs / 1000)).toBe(T0);
    }, 120_000);
  }

  it('a blob deleted while its Get Blob is on the way: stale (not a failure), nothing written', async () => {
    const blob = 'vanished/f.bin';
    await putBlob(blob, randomBuffer(406, 2 * KiB));
    const dest = path.join(az.work, 'vanished-dest');
    const { proxy, replaced } = await replacingProxy(az.origin, blobGet(az, blob), async () => {
      await az.client.request({ op: 'DeleteBlob', method: 'DELETE', container: az.container, blob });
    });
    az.proxies.push(proxy);
    const r = await cli(['sync', `az://${az.container}/vanished`, dest, '--no-progress'], { env: env(proxy, 'vanished'), timeoutMs: 120_000 });
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
    const dest = path.join(az.work, 'ignored-dest');
    const { proxy, replaced } = await replacingProxy(az.origin, blobGet(az, blob), async () => {
      await putBlob(blob, next);
      // the blob as a Get Blob without If-Match answers it now
      const res = await az.client.request({ op: 'GetBlob', method: 'GET', container: az.container, blob, stream: true });
      const chunks: Buffer[] = [];
      for await (const chunk of res.stream!) chunks.push(chunk as Buffer);
      const headers: Record<string, string> = {};
      for (const k of ['etag', 'content-md5', 'last-modified', 'x-ms-blob-type', 'x-ms-meta-mtime', 'content-type']) {
        const v = res.headers[k];
        if (typeof v === 'string') headers[k] = v;
      }
      return { status: 200, headers, body: Buffer.concat(chunks) };
    });
    az.proxies.push(proxy);
    const r = await cli(['sync', `az://${az.container}/ignored`, dest, '--no-progress'], { env: env(proxy, 'ignored'), timeoutMs: 120_000 });
    expect(replaced(), r.stderr).toBe(true);
    expectStale(r, 'f.bin', dest);
    const again = await cli(['sync', `az://${az.container}/ignored`, dest, '--no-progress'], { env: env(undefined, 'ignored'), timeoutMs: 120_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(dest, 'f.bin')))).toBe(md5(next));
  }, 120_000);

  it('Azure → Azure in staged blocks, the source replaced while its Get Blob is held: stale, no blob mixing two versions', async () => {
    const blob = 'blocks/big.bin';
    const old = randomBuffer(403, 17 * MiB + 11);
    const next = otherBytes(old);
    await putBlob(blob, old);
    const { proxy, seen, replaced } = await replacingProxy(az.origin, blobGet(az, blob), () => putBlob(blob, next));
    az.proxies.push(proxy);
    const to = `az://${az.dest}/blocks`;
    const r = await cli(['sync', `az://${az.container}/blocks`, to, '--no-progress'], { env: env(proxy, 'blocks'), timeoutMs: 180_000 });
    expect(replaced(), r.stderr).toBe(true);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('stale, left untouched: big.bin');
    for (const s of seen) expect(ifMatchOf(s)).toBeDefined();
    expect(await getBlobOrUndefined(az.client, az.dest, 'blocks/big.bin')).toBeUndefined();
    const again = await cli(['sync', `az://${az.container}/blocks`, to, '--no-progress'], { env: env(undefined, 'blocks'), timeoutMs: 180_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(md5((await getBlobOrUndefined(az.client, az.dest, 'blocks/big.bin'))!)).toBe(md5(next));
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
      const { proxy, seen, replaced } = await replacingProxy(s3Endpoint!, (r) => r.method === 'GET' && pathOf(r) === `/${bucket}/${key}`, () => put(next));
      az.proxies.push(proxy);
      const to = `az://${az.dest}/s3blocks`;
      const runEnv = (p: FaultProxy | undefined): Record<string, string> => ({ ...s3TestEnv(), ...env(undefined, 's3blocks'), ...(p ? { AWS_ENDPOINT_URL: p.url } : {}) });
      const r = await cli(['sync', `s3://${bucket}/s3blocks`, to, '--no-progress'], { env: runEnv(proxy), timeoutMs: 180_000 });
      expect(replaced(), r.stderr).toBe(true);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain('stale, left untouched: big.bin');
      for (const s of seen) expect(ifMatchOf(s)).toBeDefined();
      expect(await getBlobOrUndefined(az.client, az.dest, 's3blocks/big.bin')).toBeUndefined();
      const again = await cli(['sync', `s3://${bucket}/s3blocks`, to, '--no-progress'], { env: runEnv(undefined), timeoutMs: 180_000 });
      expect(again.code, again.stderr).toBe(0);
      expect(md5((await getBlobOrUndefined(az.client, az.dest, 's3blocks/big.bin'))!)).toBe(md5(next));
    }, 240_000);
  });
});

// ---------------------------------------------------------------------------------------------
// Hugging Face (the local Hub + Xet test server)

describe('hf reads are pinned to the checked Xet hash (local Hub server)', () => {
  const bucket = 'tester/dl-pinned';
  const hf = useHfSuite('dl-pinned', [bucket]);

  it('a file replaced (same size, same mtime) between the stat and the read: stale, nothing written; the re-run fetches the new bytes', async () => {
    const old = randomBuffer(501, 6 * KiB);
    const next = otherBytes(old);
    // both versions uploaded (v1 is synced, v2 holds the other bytes), with the same mtime
    writeTree(path.join(hf.work, 'v1'), { 'a.bin': old }, T0);
    writeTree(path.join(hf.work, 'v2'), { 'a.bin': next }, T0);
    for (const v of ['v1', 'v2']) {
      const up = await cli(['sync', path.join(hf.work, v), `hf://buckets/${bucket}/${v}`, '--no-progress'], { env: hf.env(hf.server.url) });
      expect(up.code, up.stderr).toBe(0);
    }
    // when the read resolves v1/a.bin, another writer has put v2's content there (same size, same mtime)
    const { proxy, replaced } = await replacingProxy(hf.server.url, (r) => r.method === 'GET' && r.url.includes('/resolve/') && decodeURIComponent(r.url).includes('v1/a.bin'), async () => {
      const files = hf.server.buckets.get(bucket)!.files;
      files.set('v1/a.bin', { ...files.get('v2/a.bin')!, path: 'v1/a.bin' });
    });
    hf.proxies.push(proxy);
    const dest = path.join(hf.work, 'dest');
    const r = await cli(['sync', `hf://buckets/${bucket}/v1`, dest, '--no-progress'], { env: hf.env(proxy.url) });
    expect(replaced(), r.stderr).toBe(true);
    expectStale(r, 'a.bin', dest);
    const again = await cli(['sync', `hf://buckets/${bucket}/v1`, dest, '--no-progress'], { env: hf.env(hf.server.url) });
    expect(again.code, again.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(dest, 'a.bin')))).toBe(md5(next));
  }, 120_000);
});
