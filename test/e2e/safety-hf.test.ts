/**
 * Issue 13, the hf side, through the real CLI against the local Hub/Xet test server:
 *
 * - 14: a single file is not a folder (`sync hf://…/f.txt ./dl --delete` deletes nothing
 *   beside it; a folder sync to `name` never touches the file `name`);
 * - 20: a Xet download whose reconstruction is not the file (a listing that claims 10 bytes
 *   for a 300,000-byte file) is never kept under its final name;
 * - 22: a read-only token is one line with the token hint and exit 2, before anything is sent;
 * - 23: a delete's stale check uses the Xet hash: a same-size, same-mtime replacement by
 *   another writer is not deleted by `--apply`;
 * - 16: unsafe paths in a listing are skip markers in sorted place (store level).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseHfUri } from '../../src/stores/hf/location.js';
import { openHfStore } from '../../src/stores/hf/index.js';
import type { FileEntry } from '../../src/types.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { cli, planByPath, readTree, tempDir, writeTree, type CliOptions } from '../support/cli.js';

const TOKEN = 'hf_test_token';
const T0 = 1_700_000_000;
let server: HfTestServer;
let work: string;
let n = 0;

beforeAll(async () => {
  server = await startHfServer({ tokens: { hf_test_token: { user: 'tester' }, hf_read_only: { user: 'tester', readOnly: true } } });
});
afterAll(async () => {
  await server?.close();
});
beforeEach(() => {
  work = tempDir('bucketsync-safety-hf-');
  return () => fs.rmSync(work, { recursive: true, force: true });
});

function bs(args: string[], opts: CliOptions = {}) {
  return cli(args, {
    timeoutMs: 60_000,
    ...opts,
    env: { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: work, BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), ...opts.env },
  });
}
const sync = (a: string, b: string, extra: string[] = [], opts: CliOptions = {}) => bs(['sync', a, b, '--no-progress', ...extra], opts);

function newBucket(): string {
  const b = `tester/safety-${++n}`;
  server.createBucket(b);
  return b;
}

/** The server's own record of a file (tests reach into it to play a misbehaving Hub). */
function record(bucket: string, p: string): { path: string; size: number; mtime: number; xetHash: string } {
  const f = (server as unknown as { buckets: Map<string, { files: Map<string, { path: string; size: number; mtime: number; xetHash: string }> }> }).buckets
    .get(bucket)!
    .files.get(p);
  if (!f) throw new Error(`no ${bucket}/${p}`);
  return f;
}

function addRecord(bucket: string, from: string, to: string): void {
  const files = (server as unknown as { buckets: Map<string, { files: Map<string, object> }> }).buckets.get(bucket)!.files;
  files.set(to, { ...record(bucket, from), path: to });
}

async function upload(bucket: string, files: Record<string, string | Buffer>, mtimeSec = T0): Promise<void> {
  const src = path.join(work, `up-${randomBytes(3).toString('hex')}`);
  writeTree(src, files, mtimeSec);
  const r = await sync(src, `hf://buckets/${bucket}`);
  expect(r.code, r.stderr).toBe(0);
}

describe('safety against hostile buckets (hf, real CLI, local Hub/Xet server)', { timeout: 60_000 }, () => {
  it('14: a single file is not a folder: --delete deletes nothing beside it; a folder sync to its name leaves it alone', async () => {
    const bucket = newBucket();
    await upload(bucket, { 'f.txt': 'the file', 'name': 'the file called name' });
    const dl = path.join(work, 'dl');
    writeTree(dl, { 'mine.txt': 'mine', 'sub/mine2.txt': 'mine too' }, T0);
    const r = await sync(`hf://buckets/${bucket}/f.txt`, dl, ['--delete']);
    expect(r.code, r.stderr).toBe(0);
    expect(readTree(dl)).toEqual({ 'f.txt': 'the file', 'mine.txt': 'mine', 'sub/mine2.txt': 'mine too' });
    expect(r.stderr).toMatch(/single file, not a folder: --delete deletes nothing/);

    const dir = path.join(work, 'dir');
    writeTree(dir, { 'x.txt': 'x' }, T0);
    const up = await sync(dir, `hf://buckets/${bucket}/name`, ['--delete']);
    expect(up.code, up.stderr).toBe(0);
    const paths = server.listBucket(bucket).map((f) => f.path);
    expect(paths).toContain('name');
    expect(paths).toContain('name/x.txt');
    expect((await server.readFile(bucket, 'name')).toString()).toBe('the file called name');
  });

  it('20: a Xet download shorter than the file (the Hub claims 10 bytes of 300,000) is never kept; the next run still tries', async () => {
    const bucket = newBucket();
    const big = randomBytes(300_000);
    await upload(bucket, { 'big.bin': big, 'ok.txt': 'fine' });
    record(bucket, 'big.bin').size = 10;
    const dl = path.join(work, 'dl');
    const r = await sync(`hf://buckets/${bucket}`, dl, ['--retries', '1']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/big\.bin.*(corrupted|bytes)/);
    expect(fs.existsSync(path.join(dl, 'big.bin'))).toBe(false);
    expect(fs.readFileSync(path.join(dl, 'ok.txt'), 'utf8')).toBe('fine');
    // the Hub tells the truth again: the file arrives whole
    record(bucket, 'big.bin').size = big.length;
    const again = await sync(`hf://buckets/${bucket}`, dl);
    expect(again.code, again.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dl, 'big.bin')).equals(big)).toBe(true);
  });

  it('22: a read-only token is one line with the token hint and exit 2, and nothing is sent', async () => {
    const bucket = newBucket();
    const src = path.join(work, 'src');
    writeTree(src, Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${i}.txt`, `file ${i}`])), T0);
    server.resetStats();
    const r = await sync(src, `hf://buckets/${bucket}`, [], { env: { HF_TOKEN: 'hf_read_only' } });
    expect(r.code, r.stderr).toBe(2);
    const lines = r.stderr.trim().split('\n').filter((l) => /read-only|403|not authorized|failed/i.test(l));
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/HF_TOKEN is read-only/);
    expect(r.stderr).toMatch(/Pass --token, set HF_TOKEN, or run `hf auth login`/);
    expect(server.listBucket(bucket)).toEqual([]);
    expect(server.stats.batchLines['addFile'] ?? 0).toBe(0);
    // a read-only token still reads: a download with it works
    await upload(bucket, { 'a.txt': 'a' });
    const dl = await sync(`hf://buckets/${bucket}`, path.join(work, 'dl'), [], { env: { HF_TOKEN: 'hf_read_only' } });
    expect(dl.code, dl.stderr).toBe(0);
  });

  it('23: --apply does not delete a file another writer replaced with the same size and mtime (Xet hash differs)', async () => {
    const bucket = newBucket();
    await upload(bucket, { 'keep.txt': 'keep', 'gone.txt': 'version A!' });
    const src = path.join(work, 'src');
    writeTree(src, { 'keep.txt': 'keep' }, T0);
    const plan = path.join(work, 'plan.jsonl');
    const p = await sync(src, `hf://buckets/${bucket}`, ['--delete', '--plan', plan]);
    expect(p.code, p.stderr).toBe(0);
    expect(planByPath(fs.readFileSync(plan, 'utf8'))['gone.txt']).toMatchObject({ action: 'delete' });
    // another writer: same size, same mtime, other bytes
    await upload(bucket, { 'gone.txt': 'version B!' }, T0 + 60);
    server.touch(bucket, 'gone.txt', T0 * 1000);
    const before = server.listBucket(bucket).find((f) => f.path === 'gone.txt')!;
    expect(before.size).toBe(10);
    expect(before.mtime).toBe(T0 * 1000);
    const ap = await bs(['sync', '--apply', plan, '--no-progress']);
    expect(ap.code, ap.stderr).toBe(1);
    expect(ap.stderr).toMatch(/gone\.txt/);
    expect((await server.readFile(bucket, 'gone.txt')).toString()).toBe('version B!');
  });

  it("17: an mtime no file system can hold (year 5138, set by another client) falls back to the upload time; a pre-1970 one is kept", async () => {
    const bucket = newBucket();
    await upload(bucket, { 'far.txt': 'far', 'old.txt': 'old' });
    server.touch(bucket, 'far.txt', 99_999_999_999_000);
    server.touch(bucket, 'old.txt', -86_400_500);
    const uploadedAt = server.listBucket(bucket).find((f) => f.path === 'far.txt')!.uploadedAt;
    const r = await sync(`hf://buckets/${bucket}`, path.join(work, 'dl'), ['--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    const ops = planByPath(r.stdout);
    expect(Math.abs(Date.parse(ops['far.txt']!['remote_mtime'] as string) - uploadedAt)).toBeLessThan(1000);
    expect(ops['old.txt']!['remote_mtime']).toBe('1969-12-30T23:59:59.500000+00:00');
  });

  it('16: unsafe paths in an hf listing are skip markers in sorted place, with the reason (store level)', async () => {
    const bucket = newBucket();
    await upload(bucket, { 'p/a.txt': 'a', 'p/z.txt': 'z' });
    const hostile = ['p/b/../x', 'p/c//d', 'p/.bucketsync-tmp-0123abcd-1-89abcdef-x', 'p/./y', 'p/m\ud800n'];
    for (const h of hostile) addRecord(bucket, 'p/a.txt', h);
    const warnings: string[] = [];
    const store = await openHfStore(parseHfUri(`hf://buckets/${bucket}/p`), { token: TOKEN, endpoint: server.url, onWarning: (m) => warnings.push(m) });
    const all: FileEntry[] = [];
    for await (const batch of store.list()) all.push(...batch);
    await store.close();
    const paths = all.map((e) => e.path);
    expect([...paths].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0))).toEqual(paths); // strictly sorted (ASCII here)
    expect(all.filter((e) => !e.skipped).map((e) => e.path)).toEqual(['a.txt', 'z.txt']);
    const markers = all.filter((e) => e.skipped);
    expect(markers.map((e) => e.path).sort()).toEqual(hostile.map((h) => h.slice(2)).sort());
    for (const m of markers) expect(m.skipped!.reason.length).toBeGreaterThan(0);
    expect(warnings).toHaveLength(hostile.length);
  });
});
