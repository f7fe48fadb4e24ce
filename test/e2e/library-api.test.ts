/**
 * The bucket-management library API (issue 15, item 5) as a user imports it: the BUILT package
 * entry (dist/index.js), each function driven against the Hub test server and, where it
 * applies, the S3 test server. Every function returns data and prints nothing; bad input is a
 * UsageError, a missing bucket a BucketError (exitCode 2), a partial failure a BucketBatchError
 * carrying every refused path.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ROOT, tempDir, writeTree } from '../support/cli.js';
import { createTestBucket, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';

type Lib = typeof import('../../src/index.js');

const TOKEN = 'hf_test_token';
const T0 = 1_736_937_000;
const endpoint = s3TestEndpoint();

let lib: Lib;
let server: HfTestServer;
let work: string;
let hf: { token: string; hfEndpoint: string };
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  lib = (await import(pathToFileURL(path.join(ROOT, 'dist', 'index.js')).href)) as Lib;
  server = await startHfServer({ pageSize: 2 });
  work = tempDir('bucketsync-libapi-');
  hf = { token: TOKEN, hfEndpoint: server.url };
  // The S3 connection comes from the environment, as for the CLI.
  if (endpoint) {
    for (const [k, v] of Object.entries(s3TestEnv())) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  }
});
afterAll(async () => {
  await server?.close();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('bucket management from the package entry', { timeout: 60_000 }, () => {
  it('exports one function per operation', () => {
    for (const f of ['createBucket', 'bucketInfo', 'listBuckets', 'listFiles', 'deleteBucket', 'moveBucket', 'updateBucketSettings', 'removeFiles', 'copyFiles'] as const) {
      expect(typeof lib[f], f).toBe('function');
    }
  });

  it('Hugging Face: create, info, list, settings, cp (up, folder, down), ls, rm, move, delete — nothing printed', async () => {
    const stdout = vi.spyOn(process.stdout, 'write');
    try {
      expect(await lib.createBucket('lib-a', hf)).toEqual({ uri: 'hf://buckets/tester/lib-a', url: `${server.url}/buckets/tester/lib-a` });
      await expect(lib.createBucket('tester/lib-a', hf)).rejects.toMatchObject({ name: 'BucketError', exitCode: 2, message: "Bucket 'tester/lib-a' already exists" });
      expect((await lib.createBucket('tester/lib-a', { ...hf, existOk: true })).uri).toBe('hf://buckets/tester/lib-a');
      await lib.createBucket('hf://buckets/tester/lib-b', { ...hf, private: true });
      expect(server.buckets.get('tester/lib-b')!.private).toBe(true);
      await expect(lib.createBucket('tester/lib-c', { ...hf, region: 'mars' as 'us' })).rejects.toMatchObject({ name: 'UsageError' });

      const info = await lib.bucketInfo('tester/lib-b', hf);
      expect(info).toMatchObject({ id: 'tester/lib-b', private: true, size: 0, totalFiles: 0 });
      expect(info.createdAt).toBeInstanceOf(Date);
      expect(Math.abs(info.createdAt!.getTime() - Date.now())).toBeLessThan(600_000);

      const list = await lib.listBuckets({ ...hf, namespace: 'tester' });
      expect(list.map((b) => b.id)).toEqual(['tester/lib-a', 'tester/lib-b']); // two pages of 2 (Link header)
      expect(list[1]).toMatchObject({ private: true, size: 0, totalFiles: 0 });
      expect((await lib.listBuckets({ ...hf, search: '-b' })).map((b) => b.id)).toEqual(['tester/lib-b']);

      expect(await lib.updateBucketSettings('tester/lib-b', { ...hf, private: false })).toEqual({ bucketId: 'tester/lib-b', private: false });
      expect(server.buckets.get('tester/lib-b')!.private).toBe(false);
      await expect(lib.updateBucketSettings('s3://x', { ...hf, private: true })).rejects.toMatchObject({ name: 'UsageError' });
      await expect(lib.updateBucketSettings('tester/nope', { ...hf, private: true })).rejects.toMatchObject({ name: 'BucketError', exitCode: 2 });

      // cp: upload files, copy a folder on the server, download one.
      const src = path.join(work, 'src');
      writeTree(src, { 'a.txt': 'alpha', 'b.txt': 'bravo!' }, T0);
      expect(await lib.copyFiles(path.join(src, 'a.txt'), 'hf://buckets/tester/lib-a/d/', hf)).toEqual([
        { from: path.join(src, 'a.txt'), to: 'hf://buckets/tester/lib-a/d/a.txt' },
      ]);
      await lib.copyFiles(path.join(src, 'b.txt'), 'hf://buckets/tester/lib-a/d/', hf);
      const batchesBefore = server.stats.requests['batch'] ?? 0;
      expect(await lib.copyFiles('hf://buckets/tester/lib-a/d', 'hf://buckets/tester/lib-b', hf)).toEqual([
        { from: 'hf://buckets/tester/lib-a/d/a.txt', to: 'hf://buckets/tester/lib-b/d/a.txt' },
        { from: 'hf://buckets/tester/lib-a/d/b.txt', to: 'hf://buckets/tester/lib-b/d/b.txt' },
      ]);
      expect((server.stats.requests['batch'] ?? 0) - batchesBefore).toBe(1); // one server-side batch
      const down = path.join(work, 'down.txt');
      await lib.copyFiles('hf://buckets/tester/lib-b/d/b.txt', down, hf);
      expect(fs.readFileSync(down, 'utf8')).toBe('bravo!');
      expect(Math.round(fs.statSync(down).mtimeMs / 1000)).toBe(T0);
      await expect(lib.copyFiles('-', 'hf://buckets/tester/lib-b/x', hf)).rejects.toMatchObject({ name: 'UsageError' });
      await expect(lib.copyFiles('hf://user/model/x.bin', 'hf://buckets/tester/lib-b/', hf)).rejects.toThrow(/not supported yet/);

      const files = await lib.listFiles('tester/lib-b', { ...hf, recursive: true });
      expect(files.map((f) => [f.type, f.path, f.size, f.mtime?.getTime()])).toEqual([
        ['file', 'd/a.txt', 5, T0 * 1000],
        ['file', 'd/b.txt', 6, T0 * 1000],
      ]);
      expect(files[0]!.xetHash).toMatch(/^[0-9a-f]{64}$/);
      expect((await lib.listFiles('hf://buckets/tester/lib-b', hf)).map((f) => [f.type, f.path])).toEqual([['directory', 'd']]);

      // rm: dry run changes nothing; a partial failure is a BucketBatchError listing the path.
      expect(await lib.removeFiles('tester/lib-b/d', { ...hf, recursive: true, dryRun: true })).toEqual({
        bucketId: 'tester/lib-b',
        paths: ['d/a.txt', 'd/b.txt'],
        bytes: 11,
        dryRun: true,
      });
      expect(server.listBucket('tester/lib-b')).toHaveLength(2);
      server.failPaths.set('d/b.txt', 'Injected failure');
      try {
        const err = (await lib.removeFiles('tester/lib-b/d', { ...hf, recursive: true }).catch((e: unknown) => e)) as InstanceType<Lib['BucketBatchError']>;
        expect(err).toBeInstanceOf(lib.BucketBatchError);
        expect(err.failures).toEqual([{ path: 'd/b.txt', error: 'Injected failure' }]);
        expect(err.sent).toBe(2);
        expect(err.exitCode).toBe(1);
      } finally {
        server.failPaths.clear();
      }
      expect(server.listBucket('tester/lib-b').map((f) => f.path)).toEqual(['d/b.txt']);
      expect(await lib.removeFiles('tester/lib-b/d/b.txt', hf)).toEqual({ bucketId: 'tester/lib-b', paths: ['d/b.txt'], bytes: 6, dryRun: false });

      expect(await lib.moveBucket('tester/lib-b', 'hf://buckets/tester/lib-moved', hf)).toEqual({ from: 'tester/lib-b', to: 'tester/lib-moved' });
      expect(server.buckets.has('tester/lib-moved')).toBe(true);
      expect(await lib.deleteBucket('tester/lib-moved', hf)).toEqual({ bucketId: 'tester/lib-moved', existed: true });
      expect(await lib.deleteBucket('tester/lib-moved', { ...hf, missingOk: true })).toEqual({ bucketId: 'tester/lib-moved', existed: false });
      await expect(lib.deleteBucket('tester/lib-moved', hf)).rejects.toMatchObject({ name: 'BucketError', exitCode: 2 });
      await expect(lib.deleteBucket('lonely', hf)).rejects.toMatchObject({ name: 'UsageError' });
      await expect(lib.bucketInfo('tester/lib-a', { hfEndpoint: server.url, token: 'not-a-token' })).rejects.toThrow(/not a valid token/);
    } finally {
      const printed = stdout.mock.calls.map((c) => String(c[0])).join('');
      stdout.mockRestore();
      expect(printed).not.toMatch(/✓|bucket_id|Copied|Removed/);
    }
  });

  it.skipIf(!endpoint)('S3: create, info, list, ls, cp of a folder, rm, delete; move and settings refused', async () => {
    const name = (await createTestBucket('lib')).replace(/^lib-/, 'libx-');
    const s3 = { s3: { endpoint: endpoint!, pathStyle: true } };
    expect(await lib.createBucket(`s3://${name}`, s3)).toEqual({ uri: `s3://${name}`, url: `${endpoint}/${name}` });
    await expect(lib.createBucket(`s3://${name}`, s3)).rejects.toMatchObject({ name: 'BucketError', exitCode: 2 });
    const src = path.join(work, 's3src');
    writeTree(src, { 'x.txt': 'xx', 'y.txt': 'yyy' }, T0);
    await lib.copyFiles(path.join(src, 'x.txt'), `s3://${name}/in/`, s3);
    await lib.copyFiles(path.join(src, 'y.txt'), `s3://${name}/in/`, s3);
    expect(await lib.copyFiles(`s3://${name}/in/`, `s3://${name}/out/`, s3)).toEqual([
      { from: `s3://${name}/in/x.txt`, to: `s3://${name}/out/x.txt` },
      { from: `s3://${name}/in/y.txt`, to: `s3://${name}/out/y.txt` },
    ]);
    const files = await lib.listFiles(`s3://${name}`, { ...s3, recursive: true });
    expect(files.map((f) => [f.path, f.size, f.mtime?.getTime()])).toEqual([
      ['in/x.txt', 2, T0 * 1000],
      ['in/y.txt', 3, T0 * 1000],
      ['out/x.txt', 2, T0 * 1000],
      ['out/y.txt', 3, T0 * 1000],
    ]);
    expect(await lib.bucketInfo(`s3://${name}`, s3)).toMatchObject({ id: `s3://${name}`, size: 10, totalFiles: 4 });
    expect((await lib.listBuckets({ ...s3, namespace: 's3://', search: name })).map((b) => b.id)).toEqual([`s3://${name}`]);
    expect(await lib.removeFiles(`s3://${name}/in`, { ...s3, recursive: true })).toMatchObject({ paths: ['in/x.txt', 'in/y.txt'], bytes: 5 });
    await expect(lib.moveBucket(`s3://${name}`, `s3://${name}-2`, s3)).rejects.toMatchObject({ name: 'UsageError' });
    await expect(lib.updateBucketSettings(`s3://${name}`, { ...s3, private: true })).rejects.toMatchObject({ name: 'UsageError' });
    expect(await lib.deleteBucket(`s3://${name}`, s3)).toEqual({ bucketId: `s3://${name}`, existed: true });
    await expect(lib.bucketInfo(`s3://${name}`, s3)).rejects.toMatchObject({ name: 'BucketError', exitCode: 2 });
  });
});
