/**
 * Content comparisons against an hf bucket (the local Hub/Xet test server): hf lists only Xet
 * file hashes, so the local files are Xet-hashed to compare. Renames (--track-renames) become
 * copyFile lines with no xorb bytes; a touched file is only re-stamped; --checksum on
 * downloads finds a file rewritten in place; in-plan dedup is on by default for hf.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { cli, planByPath, summaryEvent, tempDir, writeTree, type CliOptions } from '../support/cli.js';

const TOKEN = 'hf_test_token';
const T0 = 1_700_000_000;
const MiB = 1024 * 1024;
let server: HfTestServer;
let work: string;
let src: string;
let n = 0;

beforeAll(async () => {
  server = await startHfServer();
});
afterAll(async () => {
  await server?.close();
});
beforeEach(() => {
  work = tempDir('bucketsync-dedup-hf-');
  src = path.join(work, 'src');
  fs.mkdirSync(src);
  return () => fs.rmSync(work, { recursive: true, force: true });
});

function bs(args: string[], opts: CliOptions = {}) {
  return cli(args, {
    timeoutMs: 120_000,
    ...opts,
    env: { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: work, BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), ...opts.env },
  });
}

const put = (rel: string, content: Buffer | string, mtimeSec = T0) => writeTree(src, { [rel]: content }, mtimeSec);

function newBucket(): string {
  const b = `tester/dedup-${++n}`;
  server.createBucket(b);
  return b;
}

describe('content comparisons against hf (real CLI, local Hub/Xet server)', { timeout: 180_000 }, () => {
  it('--track-renames: a renamed checkpoint directory is copied by Xet hash, zero xorb bytes sent; --delete removes the old paths', async () => {
    const bucket = newBucket();
    const url = `hf://buckets/${bucket}/ckpts`;
    put('ckpt-1/weights.bin', randomBytes(2 * MiB + 1));
    put('ckpt-2/weights.bin', randomBytes(2 * MiB + 2));
    put('ckpt-2/tokenizer.json', '{"vocab": 32000}');
    const first = await bs(['sync', src, url, '--no-progress']);
    expect(first.code, first.stderr).toBe(0);
    const before = new Map(server.listBucket(bucket).map((f) => [f.path, f.xetHash]));
    fs.renameSync(path.join(src, 'ckpt-2'), path.join(src, 'best'));

    const dry = planByPath((await bs(['sync', src, url, '--delete', '--track-renames', '--dry-run'])).stdout);
    expect(dry['best/weights.bin']).toMatchObject({ action: 'upload', reason: 'new file', copy_from: 'ckpt-2/weights.bin' });
    expect(dry['best/tokenizer.json']).toMatchObject({ action: 'upload', copy_from: 'ckpt-2/tokenizer.json' });
    expect(dry['ckpt-2/weights.bin']).toMatchObject({ action: 'delete' });

    const xorbBytes = server.stats.xorbBytesReceived;
    const copies = server.stats.batchLines['copyFile'] ?? 0;
    const r = await bs(['sync', src, url, '--delete', '--track-renames', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 0, transferred_bytes: 0, copied: 2, deleted: 2, failed: 0, stale: 0 });
    expect(server.stats.xorbBytesReceived - xorbBytes).toBe(0);
    expect((server.stats.batchLines['copyFile'] ?? 0) - copies).toBe(2);
    const after = new Map(server.listBucket(bucket).map((f) => [f.path, f.xetHash]));
    expect([...after.keys()].sort()).toEqual(['ckpts/best/tokenizer.json', 'ckpts/best/weights.bin', 'ckpts/ckpt-1/weights.bin']);
    expect(after.get('ckpts/best/weights.bin')).toBe(before.get('ckpts/ckpt-2/weights.bin'));
    expect((await bs(['sync', src, url, '--delete'])).stderr).toContain('Nothing to sync.');
  });

  it('a copy source that changed since the plan is not trusted: the file is uploaded instead', async () => {
    const bucket = newBucket();
    const url = `hf://buckets/${bucket}`;
    const w = randomBytes(300_000);
    put('old/w.bin', w);
    expect((await bs(['sync', src, url])).code).toBe(0);
    fs.renameSync(path.join(src, 'old'), path.join(src, 'new'));
    const planFile = path.join(work, 'plan.jsonl');
    expect((await bs(['sync', src, url, '--track-renames', '--plan', planFile])).code).toBe(0);
    expect(fs.readFileSync(planFile, 'utf8')).toContain('"copy_from": "old/w.bin"');
    // Someone replaces the copy source with other bytes of the same size.
    const other = path.join(work, 'other.bin');
    fs.writeFileSync(other, randomBytes(300_000));
    expect((await bs(['buckets', 'cp', other, `${url}/old/w.bin`])).code).toBe(0);
    const r = await bs(['sync', '--apply', planFile, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 1, copied: 0, failed: 0 });
    const dl = path.join(work, 'dl');
    expect((await bs(['sync', `${url}/new`, dl])).code).toBe(0);
    expect(fs.readFileSync(path.join(dl, 'w.bin')).equals(w)).toBe(true);
  });

  it('a touched file is only re-stamped (dedup is on by default for hf); --no-dedup re-sends it as hf would', async () => {
    const bucket = newBucket();
    const url = `hf://buckets/${bucket}`;
    put('model.bin', randomBytes(MiB + 5));
    const shard = randomBytes(MiB);
    put('a/shard.bin', shard);
    put('b/shard.bin', shard);
    const first = await bs(['sync', src, url, '--json']);
    expect(summaryEvent(first.stdout)).toMatchObject({ transferred: 2, copied: 1 });
    fs.utimesSync(path.join(src, 'model.bin'), T0 + 3600, T0 + 3600);

    const off = planByPath((await bs(['sync', src, url, '--dry-run', '--no-dedup'])).stdout);
    expect(off['model.bin']).toMatchObject({ action: 'upload', reason: 'local newer' });
    expect(off['model.bin']!['hash']).toBeUndefined();
    const on = planByPath((await bs(['sync', src, url, '--dry-run'])).stdout);
    expect(on['model.bin']).toMatchObject({ action: 'upload', reason: 'same content, mtime differs', mtime_only: true });
    expect(on['model.bin']!['hash']).toBe(`xet:${server.listBucket(bucket).find((f) => f.path === 'model.bin')!.xetHash}`);

    const xorbBytes = server.stats.xorbBytesReceived;
    const r = await bs(['sync', src, url, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 0, metadata_updated: 1, failed: 0 });
    expect(server.stats.xorbBytesReceived - xorbBytes).toBe(0);
    expect((await bs(['sync', src, url])).stderr).toContain('Nothing to sync.');
  });

  it('downloads with --checksum: a local file rewritten in place (same size and mtime) is found and fetched again', async () => {
    const bucket = newBucket();
    const url = `hf://buckets/${bucket}`;
    put('x.bin', randomBytes(200_000));
    put('y.bin', randomBytes(100_000));
    expect((await bs(['sync', src, url])).code).toBe(0);
    const dst = path.join(work, 'dst');
    expect((await bs(['sync', url, dst])).code).toBe(0);
    const x = path.join(dst, 'x.bin');
    const orig = fs.readFileSync(x);
    const bad = Buffer.from(orig);
    bad[5] = bad[5]! ^ 1;
    fs.writeFileSync(x, bad);
    fs.utimesSync(x, T0, T0);
    expect(planByPath((await bs(['sync', url, dst, '--dry-run'])).stdout)['x.bin']).toMatchObject({ action: 'skip', reason: 'identical' });
    const dry = planByPath((await bs(['sync', url, dst, '--dry-run', '--checksum'])).stdout);
    expect(dry['x.bin']).toMatchObject({ action: 'download', reason: 'checksum differs' });
    expect(dry['y.bin']).toMatchObject({ action: 'skip', reason: 'same checksum' });
    const r = await bs(['sync', url, dst, '--checksum', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 1, transferred_bytes: 200_000 });
    expect(fs.readFileSync(x).equals(orig)).toBe(true);
  });
});
