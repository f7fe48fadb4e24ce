/**
 * `bucketsync cp` reads a remote source pinned to the version it probed (README, "Downloads
 * pinned"; `cp` used to be the one unpinned path): an object replaced between cp's probe (S3
 * HEAD, Azure listing, hf paths-info) and its read — by other bytes of the SAME size and the
 * SAME mtime metadata, so that nothing but its ETag (or Xet hash) tells it apart — makes cp say
 * so in one line naming the source (and to re-run), exit 1, and write nothing under the
 * destination name (no half file, no temporary file); the re-run copies the new bytes,
 * byte-identical.
 *
 * The replacement is made by the fault proxy's `hold` hook: the request that reads (or, S3 → S3,
 * server-side copies) the source is held at the proxy, the object is overwritten directly on
 * the server meanwhile, then the request goes on. Cases, through the real CLI:
 *
 * - S3 → a local file, S3 → stdout (nothing on stdout), S3 → a local file with the object
 *   deleted meanwhile, S3 → S3 one file (CopyObject on the server, held; through both S3
 *   transports, each sending the copy condition under AWS's and RGW's names), S3 → S3 a folder
 *   (one of two files replaced: that one is not copied, the other is), S3 → Azure (streamed
 *   through this machine);
 * - Azure → a local file, Azure → Azure (streamed);
 * - hf → a local file (the read resolves the path to another Xet hash than the probe saw);
 * - hf → hf: a server-side copyFile names the Xet hash the probe saw, so it copies that version
 *   or nothing: the source replaced meanwhile, the Hub (here the test server) refuses a hash the
 *   source bucket no longer holds (documents the behaviour: it was so before this change).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AzureClient } from '../../src/stores/azure/client.js';
import { cli, writeTree, type CliResult } from '../support/cli.js';
import { azureTestClient, azureTestEnv, azuriteEndpoint, createTestContainer } from '../support/azure-env.js';
import { md5, T0 } from '../support/big-files.js';
import { randomBuffer, type FaultProxy, type ProxiedRequest } from '../support/fault-proxy.js';
import { azureEnvVia, blobGet, entries, getBlobOrUndefined, otherBytes, pathOf, putBlobWithMtime, replacingProxy, useAzureSuite, useHfSuite } from '../support/pinned.js';
import { closeS3Suite, createTestBucket, openS3Suite, removeTestBucket, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const s3Endpoint = s3TestEndpoint();
const azEndpoint = azuriteEndpoint();
const KiB = 1024;

/**
 * The stale run's promises: exit 1, one `Error:` line naming the source and saying it changed,
 * a hint to re-run, no stack trace, and nothing on stdout (no result line, no bytes).
 */
function expectChanged(r: CliResult, source: string): void {
  expect(r.code, `exit ${r.code}\n${r.stderr}`).toBe(1);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('Error:'));
  expect(errors, r.stderr).toHaveLength(1);
  expect(r.stderr).toContain(source);
  expect(r.stderr).toMatch(/changed since it was checked/);
  expect(r.stderr).toMatch(/re-run/i);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stdout).toBe('');
}

// ---------------------------------------------------------------------------------------------
// S3 (RGW), and S3 → Azure (Azurite)

describe.skipIf(!s3Endpoint)('cp from S3 is pinned to the probed ETag (RGW)', () => {
  let raw: S3Client;
  let bucket: string;
  let other: string;
  let work: string;
  const proxies: FaultProxy[] = [];

  beforeAll(async () => {
    const s = await openS3Suite('cp-pinned');
    if (s) ({ raw, bucket, work } = s);
    other = await createTestBucket('cp-pinned-to');
  });
  afterAll(async () => {
    if (raw && other) await removeTestBucket(raw, other);
    await closeS3Suite({ raw, bucket, work }, proxies);
  });

  const put = async (key: string, buf: Buffer, b = bucket): Promise<void> => {
    await raw.send(new PutObjectCommand({ Bucket: b, Key: key, Body: buf, Metadata: { mtime: String(T0) } }));
  };
  const get = async (key: string, b: string): Promise<Buffer | undefined> => {
    try {
      const r = await raw.send(new GetObjectCommand({ Bucket: b, Key: key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
      throw err;
    }
  };
  const objectGet = (key: string) => (r: ProxiedRequest): boolean => r.method === 'GET' && pathOf(r) === `/${bucket}/${key}`;
  const env = (proxy?: FaultProxy): Record<string, string> => ({
    ...s3TestEnv(),
    ...(proxy ? { AWS_ENDPOINT_URL: proxy.url } : {}),
    BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'),
  });

  it('S3 → a local file: the object replaced (same size, same mtime) while its GET is held: one line, exit 1, nothing written; the re-run copies the new bytes', async () => {
    const key = 'local/a.bin';
    const old = randomBuffer(601, 300 * KiB + 5);
    const next = otherBytes(old);
    await put(key, old);
    const dir = path.join(work, 'to-local');
    fs.mkdirSync(dir);
    const { proxy, seen, replaced } = await replacingProxy(s3Endpoint!, objectGet(key), () => put(key, next));
    proxies.push(proxy);
    const r = await cli(['cp', `s3://${bucket}/${key}`, path.join(dir, 'a.bin')], { env: env(proxy) });
    expect(replaced(), r.stderr).toBe(true);
    expectChanged(r, `s3://${bucket}/${key}`);
    expect(entries(dir)).toEqual([]);
    expect(String(seen[0]!['if-match']).replace(/"/g, '')).toBe(md5(old));
    const again = await cli(['cp', `s3://${bucket}/${key}`, path.join(dir, 'a.bin')], { env: env() });
    expect(again.code, again.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(dir, 'a.bin')))).toBe(md5(next));
    expect(entries(dir)).toEqual(['a.bin']);
  }, 120_000);

  it('S3 → stdout: the object replaced while its GET is held: not a byte on stdout, exit 1; the re-run prints the new bytes', async () => {
    const key = 'stdout/a.txt';
    const old = Buffer.from('version one of the text\n'.repeat(100));
    const next = Buffer.from(old.toString().toUpperCase());
    await put(key, old);
    const { proxy, replaced } = await replacingProxy(s3Endpoint!, objectGet(key), () => put(key, next));
    proxies.push(proxy);
    const r = await cli(['cp', `s3://${bucket}/${key}`, '-'], { env: env(proxy) });
    expect(replaced(), r.stderr).toBe(true);
    expectChanged(r, `s3://${bucket}/${key}`);
    const again = await cli(['cp', `s3://${bucket}/${key}`, '-'], { env: env() });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(next.toString());
  }, 120_000);

  it('S3 → a local file: the object deleted while its GET is held: one line saying so, exit 1, nothing written', async () => {
    const key = 'gone/a.bin';
    await put(key, randomBuffer(606, 5 * KiB));
    const dir = path.join(work, 'gone');
    fs.mkdirSync(dir);
    const { proxy, replaced } = await replacingProxy(s3Endpoint!, objectGet(key), async () => {
      await raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    });
    proxies.push(proxy);
    const r = await cli(['cp', `s3://${bucket}/${key}`, `${dir}/`], { env: env(proxy) });
    expect(replaced(), r.stderr).toBe(true);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`Error: s3://${bucket}/${key} was deleted since it was checked`);
    expect(r.stderr).not.toMatch(/NoSuchKey|\n\s+at /);
    expect(entries(dir)).toEqual([]);
  }, 120_000);

  for (const transport of ['http', 'sdk'] as const) {
    it(`S3 → S3, one file (CopyObject on the server, ${transport} transport): the source replaced while the CopyObject is held: exit 1, no object under the destination name; the re-run copies the new bytes`, async () => {
      const key = `copy-${transport}/a.bin`;
      const to = `one-${transport}/a.bin`;
      const client = { BUCKETSYNC_S3_CLIENT: transport };
      const old = randomBuffer(602, 40 * KiB);
      const next = otherBytes(old);
      await put(key, old);
      const isCopy = (r: ProxiedRequest): boolean => r.method === 'PUT' && r.headers['x-amz-copy-source'] !== undefined && pathOf(r) === `/${other}/${to}`;
      const { proxy, seen, replaced } = await replacingProxy(s3Endpoint!, isCopy, () => put(key, next));
      proxies.push(proxy);
      const r = await cli(['cp', `s3://${bucket}/${key}`, `s3://${other}/${to}`], { env: { ...env(proxy), ...client } });
      expect(replaced(), r.stderr).toBe(true);
      expectChanged(r, `s3://${bucket}/${key}`);
      expect(await get(to, other)).toBeUndefined();
      // the AWS name of the condition, and the one RGW 16.2 reads
      expect(String(seen[0]!['x-amz-copy-source-if-match']).replace(/"/g, '')).toBe(md5(old));
      expect(String(seen[0]!['x-amz-copy-if-match']).replace(/"/g, '')).toBe(md5(old));
      const again = await cli(['cp', `s3://${bucket}/${key}`, `s3://${other}/${to}`], { env: { ...env(), ...client } });
      expect(again.code, again.stderr).toBe(0);
      expect(md5((await get(to, other))!)).toBe(md5(next));
    }, 120_000);
  }

  it('S3 → S3, a folder: one of its two files replaced while its CopyObject is held: that one is listed and not copied, the other is; exit 1', async () => {
    const a = randomBuffer(603, 10 * KiB);
    const b = randomBuffer(604, 11 * KiB);
    await put('dir/a.bin', a);
    await put('dir/b.bin', b);
    const next = otherBytes(a);
    const isCopy = (r: ProxiedRequest): boolean => r.method === 'PUT' && r.headers['x-amz-copy-source'] !== undefined && pathOf(r) === `/${other}/tree/a.bin`;
    const { proxy, replaced } = await replacingProxy(s3Endpoint!, isCopy, () => put('dir/a.bin', next));
    proxies.push(proxy);
    const r = await cli(['cp', `s3://${bucket}/dir/`, `s3://${other}/tree/`], { env: env(proxy) });
    expect(replaced(), r.stderr).toBe(true);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/ - tree\/a\.bin: .*changed since it was checked.*re-run/i);
    expect(r.stderr).not.toMatch(/tree\/b\.bin/);
    expect(await get('tree/a.bin', other)).toBeUndefined();
    expect(md5((await get('tree/b.bin', other))!)).toBe(md5(b));
    const again = await cli(['cp', `s3://${bucket}/dir/`, `s3://${other}/tree/`], { env: env() });
    expect(again.code, again.stderr).toBe(0);
    expect(md5((await get('tree/a.bin', other))!)).toBe(md5(next));
  }, 120_000);

  describe.skipIf(!azEndpoint)('to Azure (Azurite)', () => {
    let client: AzureClient;
    let container: string;
    beforeAll(async () => {
      client = azureTestClient();
      container = await createTestContainer('cp-pinned-s3');
    });
    afterAll(() => client?.destroy());

    it('S3 → Azure (the bytes through this machine): the object replaced while its GET is held: exit 1, no blob; the re-run copies the new bytes', async () => {
      const key = 'toaz/a.bin';
      const old = randomBuffer(605, 200 * KiB + 3);
      const next = otherBytes(old);
      await put(key, old);
      const { proxy, replaced } = await replacingProxy(s3Endpoint!, objectGet(key), () => put(key, next));
      proxies.push(proxy);
      const both = (p?: FaultProxy): Record<string, string> => ({ ...env(p), ...azureTestEnv() });
      const r = await cli(['cp', `s3://${bucket}/${key}`, `az://${container}/in/a.bin`], { env: both(proxy) });
      expect(replaced(), r.stderr).toBe(true);
      expectChanged(r, `s3://${bucket}/${key}`);
      expect(await getBlobOrUndefined(client, container, 'in/a.bin')).toBeUndefined();
      const again = await cli(['cp', `s3://${bucket}/${key}`, `az://${container}/in/a.bin`], { env: both() });
      expect(again.code, again.stderr).toBe(0);
      expect(md5((await getBlobOrUndefined(client, container, 'in/a.bin'))!)).toBe(md5(next));
    }, 120_000);
  });
});

// ---------------------------------------------------------------------------------------------
// Azure

describe.skipIf(!azEndpoint)('cp from Azure is pinned to the probed ETag (Azurite)', () => {
  const az = useAzureSuite('cp-pinned');

  const putBlob = (name: string, buf: Buffer): Promise<void> => putBlobWithMtime(az.client, az.container, name, buf);
  const env = (proxy?: FaultProxy): Record<string, string> => ({ ...azureEnvVia(az, proxy), BUCKETSYNC_CACHE_DIR: path.join(az.work, 'cache') });

  it('Azure → a local file: the blob replaced (same size, same mtime) while its Get Blob is held: one line, exit 1, nothing written; the re-run copies the new bytes', async () => {
    const name = 'local/f.bin';
    const old = randomBuffer(701, 300 * KiB + 1);
    const next = otherBytes(old);
    await putBlob(name, old);
    const dir = path.join(az.work, 'to-local');
    fs.mkdirSync(dir);
    const { proxy, seen, replaced } = await replacingProxy(az.origin, blobGet(az, name), () => putBlob(name, next));
    az.proxies.push(proxy);
    const r = await cli(['cp', `az://${az.container}/${name}`, `${dir}/`], { env: env(proxy) });
    expect(replaced(), r.stderr).toBe(true);
    expectChanged(r, `az://${az.container}/${name}`);
    expect(entries(dir)).toEqual([]);
    expect(String(seen[0]!['if-match'])).toMatch(/^"?0x/);
    const again = await cli(['cp', `az://${az.container}/${name}`, `${dir}/`], { env: env() });
    expect(again.code, again.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(dir, 'f.bin')))).toBe(md5(next));
    expect(entries(dir)).toEqual(['f.bin']);
  }, 120_000);

  it('Azure → Azure (the bytes through this machine): the blob replaced while its Get Blob is held: exit 1, no blob under the destination name; the re-run copies the new bytes', async () => {
    const name = 'across/f.bin';
    const old = randomBuffer(702, 64 * KiB);
    const next = otherBytes(old);
    await putBlob(name, old);
    const { proxy, replaced } = await replacingProxy(az.origin, blobGet(az, name), () => putBlob(name, next));
    az.proxies.push(proxy);
    const r = await cli(['cp', `az://${az.container}/${name}`, `az://${az.dest}/copies/`], { env: env(proxy) });
    expect(replaced(), r.stderr).toBe(true);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/ - copies\/f\.bin: .*changed since it was checked.*re-run/i);
    expect(await getBlobOrUndefined(az.client, az.dest, 'copies/f.bin')).toBeUndefined();
    const again = await cli(['cp', `az://${az.container}/${name}`, `az://${az.dest}/copies/`], { env: env() });
    expect(again.code, again.stderr).toBe(0);
    expect(md5((await getBlobOrUndefined(az.client, az.dest, 'copies/f.bin'))!)).toBe(md5(next));
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------
// Hugging Face (the local Hub + Xet test server)

describe('cp from hf is pinned to the probed Xet hash (local Hub server)', () => {
  const bucket = 'tester/cp-pinned';
  const copies = 'tester/cp-pinned-copies';
  const hf = useHfSuite('cp-pinned', [bucket, copies]);
  let old: Buffer;
  let next: Buffer;
  beforeAll(() => {
    old = randomBuffer(801, 6 * KiB);
    next = otherBytes(old);
    // both versions, with the same mtime (uploaded by each case to its own paths)
    writeTree(path.join(hf.work, 'v1'), { 'a.bin': old }, T0);
    writeTree(path.join(hf.work, 'v2'), { 'a.bin': next }, T0);
  });
  /** `<at>/a.bin` holds the old bytes, `<at>-next/a.bin` the new ones. */
  const upload = async (at: string): Promise<void> => {
    for (const [v, to] of [['v1', at], ['v2', `${at}-next`]]) {
      const up = await cli(['sync', path.join(hf.work, v!), `hf://buckets/${bucket}/${to}`, '--no-progress'], { env: hf.env(hf.server.url) });
      expect(up.code, up.stderr).toBe(0);
    }
  };
  /** Another writer puts the new content at `<at>/a.bin` (same size, same mtime). */
  const replacing = (at: string) => async (): Promise<void> => {
    const files = hf.server.buckets.get(bucket)!.files;
    files.set(`${at}/a.bin`, { ...files.get(`${at}-next/a.bin`)!, path: `${at}/a.bin` });
  };

  it('hf → a local file: the file replaced between the probe (paths-info) and the read: one line, exit 1, nothing written; the re-run copies the new bytes', async () => {
    await upload('down');
    const { proxy, replaced } = await replacingProxy(hf.server.url, (r) => r.url.includes('/resolve/') && decodeURIComponent(r.url).includes('down/a.bin'), replacing('down'));
    hf.proxies.push(proxy);
    const dir = path.join(hf.work, 'to-local');
    fs.mkdirSync(dir);
    const r = await cli(['cp', `hf://buckets/${bucket}/down/a.bin`, path.join(dir, 'a.bin')], { env: hf.env(proxy.url) });
    expect(replaced(), r.stderr).toBe(true);
    expectChanged(r, `${bucket}/down/a.bin`);
    expect(entries(dir)).toEqual([]);
    const again = await cli(['cp', `hf://buckets/${bucket}/down/a.bin`, path.join(dir, 'a.bin')], { env: hf.env(hf.server.url) });
    expect(again.code, again.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(dir, 'a.bin')))).toBe(md5(next));
  }, 120_000);

  it('hf → hf (copyFile on the server by Xet hash): the source replaced while the copy is held: never the new version (the Hub refuses a hash the source bucket no longer holds); the re-run copies the new bytes', async () => {
    await upload('across');
    const { proxy, replaced } = await replacingProxy(hf.server.url, (r) => r.method === 'POST' && r.url.includes(`/buckets/${copies}/batch`), replacing('across'));
    hf.proxies.push(proxy);
    const r = await cli(['cp', `hf://buckets/${bucket}/across/a.bin`, `hf://buckets/${copies}/a.bin`], { env: hf.env(proxy.url) });
    expect(replaced(), r.stderr).toBe(true);
    // the copy names the probed Xet hash, which the source bucket no longer holds: refused, nothing copied
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/ - a\.bin: .*not found in bucket/);
    expect(hf.server.buckets.get(copies)!.files.get('a.bin')).toBeUndefined();
    const again = await cli(['cp', `hf://buckets/${bucket}/across/a.bin`, `hf://buckets/${copies}/a.bin`], { env: hf.env(hf.server.url) });
    expect(again.code, again.stderr).toBe(0);
    const dir = path.join(hf.work, 'copied');
    fs.mkdirSync(dir);
    const down = await cli(['cp', `hf://buckets/${copies}/a.bin`, path.join(dir, 'a.bin')], { env: hf.env(hf.server.url) });
    expect(down.code, down.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(dir, 'a.bin')))).toBe(md5(next));
  }, 120_000);
});
