/**
 * The real CLI against the local Hub/Xet test server (HF_ENDPOINT): uploads, downloads,
 * --delete, comparison flags, plans, stale applies, filters, partial batch failures, errors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cli, jsonl, readTree, tempDir, writeTree, type CliOptions } from '../support/cli.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';

const T0 = 1_700_000_000; // a fixed past mtime (seconds)
const TOKEN = 'hf_test_token';

// Until src/stores/open.ts opens hf:// locations, this build cannot run these tests.
const probeDir = tempDir('bucketsync-hf-probe-');
const probe = await cli(['sync', '--dry-run', probeDir, 'hf://buckets/probe/probe'], {
  env: { HF_ENDPOINT: 'http://127.0.0.1:9', HF_TOKEN: TOKEN, HF_HOME: probeDir },
});
fs.rmSync(probeDir, { recursive: true, force: true });
const hfWired = !/not supported yet/.test(probe.stderr) && !/is not built/.test(probe.stderr);
if (!hfWired) process.stderr.write(`hf CLI tests skipped: this build does not open hf:// locations (${probe.stderr.trim().split('\n')[0]})\n`);

let server: HfTestServer;
let work: string;
let src: string;
let dst: string;
let bucketSeq = 0;
let bucket: string;

beforeAll(async () => {
  server = await startHfServer({ pageSize: 4 });
});
afterAll(async () => {
  await server?.close();
});
beforeEach(() => {
  work = tempDir('bucketsync-hf-e2e-');
  src = path.join(work, 'src');
  dst = path.join(work, 'dst');
  fs.mkdirSync(src);
  bucket = `tester/e2e-${++bucketSeq}`;
  server.createBucket(bucket);
  server.failPaths.clear();
  server.faults.length = 0;
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function hf(args: string[], opts: CliOptions = {}) {
  return cli(args, {
    ...opts,
    env: { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: work, ...opts.env },
  });
}

function uri(prefix = ''): string {
  return `hf://buckets/${bucket}${prefix ? `/${prefix}` : ''}`;
}

function remote(): Record<string, { size: number; mtime: number }> {
  return Object.fromEntries(server.listBucket(bucket).map((f) => [f.path, { size: f.size, mtime: f.mtime }]));
}

function ops(stdout: string): [unknown, unknown, unknown][] {
  return jsonl(stdout)
    .slice(1)
    .map((o) => [o['action'], o['path'], o['reason']]);
}

describe.skipIf(!hfWired)('sync with a Hugging Face bucket', () => {
  it('uploads with mtimes, then has nothing to do; downloads byte-identical, then has nothing to do', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 11);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
    writeTree(src, { 'a.txt': 'A', 'sub/b.txt': 'BB', 'sub/deep/c.bin': big, 'empty.txt': '' }, T0);
    const up = await hf(['sync', src, uri()]);
    expect(up.stderr).toContain('  Uploads: 4');
    expect(up.stderr).toContain('Sync completed.');
    expect(up.code).toBe(0);
    expect(remote()).toEqual({
      'a.txt': { size: 1, mtime: T0 * 1000 },
      'empty.txt': { size: 0, mtime: T0 * 1000 },
      'sub/b.txt': { size: 2, mtime: T0 * 1000 },
      'sub/deep/c.bin': { size: big.length, mtime: T0 * 1000 },
    });
    const again = await hf(['sync', src, uri()]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('Nothing to sync.');

    const down = await hf(['sync', uri(), dst]);
    expect(down.code).toBe(0);
    expect(down.stderr).toContain('  Downloads: 4');
    expect(readTree(dst)).toEqual(readTree(src));
    expect(fs.readFileSync(path.join(dst, 'sub/deep/c.bin')).equals(big)).toBe(true);
    const downAgain = await hf(['sync', uri(), dst]);
    expect(downAgain.stderr).toContain('Nothing to sync.');
  });

  it('uploads into a prefix without touching lexical siblings, and --delete only deletes inside it', async () => {
    writeTree(src, { 'keep.txt': 'k' }, T0);
    const seed = path.join(work, 'seed');
    writeTree(seed, { 'sub/old.txt': 'old', 'submarine.txt': 'sibling', 'sub.txt': 'sibling too' }, T0);
    expect((await hf(['sync', seed, uri()])).code).toBe(0);
    const r = await hf(['sync', src, uri('sub'), '--delete', '-v']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('  Deleting: old.txt (not in source (--delete))');
    expect(Object.keys(remote())).toEqual(['sub.txt', 'sub/keep.txt', 'submarine.txt']);
  });

  it('download --delete removes local-only files; upload --delete removes remote-only files', async () => {
    writeTree(src, { 'a.txt': 'a', 'b.txt': 'b' }, T0);
    expect((await hf(['sync', src, uri()])).code).toBe(0);
    writeTree(dst, { 'a.txt': 'a', 'local-only.txt': 'x' }, T0);
    const down = await hf(['sync', uri(), dst, '--delete']);
    expect(down.code).toBe(0);
    expect(readTree(dst)).toEqual({ 'a.txt': 'a', 'b.txt': 'b' });
    fs.rmSync(path.join(src, 'b.txt'));
    const up = await hf(['sync', src, uri(), '--delete']);
    expect(up.code).toBe(0);
    expect(Object.keys(remote())).toEqual(['a.txt']);
  });

  it('compares like hf: size, source newer, destination newer, and the flags', async () => {
    writeTree(src, { 'same.txt': 'same', 'size.txt': 'size', 'newer.txt': 'newr', 'older.txt': 'oldr' }, T0);
    expect((await hf(['sync', src, uri()])).code).toBe(0);
    writeTree(src, { 'size.txt': 'size differs' }, T0);
    writeTree(src, { 'newer.txt': 'NEWR' }, T0 + 10);
    writeTree(src, { 'older.txt': 'OLDR' }, T0 - 10);
    writeTree(src, { 'new.txt': 'new' }, T0);
    const plain = await hf(['sync', src, uri(), '--dry-run']);
    expect(plain.code).toBe(0);
    expect(ops(plain.stdout)).toEqual([
      ['upload', 'new.txt', 'new file'],
      ['upload', 'newer.txt', 'local newer'],
      ['skip', 'older.txt', 'identical'],
      ['skip', 'same.txt', 'identical'],
      ['upload', 'size.txt', 'size differs'],
    ]);
    const times = await hf(['sync', src, uri(), '--dry-run', '--ignore-times']);
    expect(ops(times.stdout).map((o) => o[2])).toEqual(['new file', 'same size', 'same size', 'same size', 'size differs']);
    const sizes = await hf(['sync', src, uri(), '--dry-run', '--ignore-sizes']);
    expect(ops(sizes.stdout).map((o) => o[2])).toEqual(['new file', 'local newer', 'remote newer', 'same mtime', 'same mtime']);
    const existing = await hf(['sync', src, uri(), '--dry-run', '--existing']);
    expect(ops(existing.stdout)[0]).toEqual(['skip', 'new.txt', 'new file (--existing)']);
    const ignoreExisting = await hf(['sync', src, uri(), '--dry-run', '--ignore-existing']);
    expect(ops(ignoreExisting.stdout).map((o) => o[0])).toEqual(['upload', 'skip', 'skip', 'skip', 'skip']);
    expect(jsonl(plain.stdout)[0]!['dest']).toBe(uri());
  });

  it('filters: excluded files are neither uploaded nor deleted', async () => {
    writeTree(src, { 'a.txt': 'a', 'b.log': 'b', 'dir/c.txt': 'c' }, T0);
    const seed = path.join(work, 'seed');
    writeTree(seed, { 'remote.log': 'r', 'remote.txt': 'r' }, T0);
    expect((await hf(['sync', seed, uri()])).code).toBe(0);
    const r = await hf(['sync', src, uri(), '--delete', '--exclude', '*.log']);
    expect(r.code).toBe(0);
    expect(Object.keys(remote())).toEqual(['a.txt', 'dir/c.txt', 'remote.log']);
    const only = await hf(['sync', uri(), dst, '--include', 'dir/*']);
    expect(only.code).toBe(0);
    expect(readTree(dst)).toEqual({ 'dir/c.txt': 'c' });
  });

  it('--plan changes nothing; --apply executes it; a plan gone stale leaves those files untouched, exit 1', async () => {
    writeTree(src, { 'a.txt': 'a', 'b.txt': 'b' }, T0);
    const seed = path.join(work, 'seed');
    writeTree(seed, { 'old.txt': 'o', 'b.txt': 'old b' }, T0 - 100);
    expect((await hf(['sync', seed, uri()])).code).toBe(0);
    const planFile = path.join(work, 'plan.jsonl');
    const p = await hf(['sync', src, uri(), '--delete', '--plan', planFile]);
    expect(p.code).toBe(0);
    expect(p.stderr).toContain(`Plan saved to: ${planFile}`);
    expect(Object.keys(remote())).toEqual(['b.txt', 'old.txt']);
    const a = await hf(['sync', '--apply', planFile], { cwd: '/' });
    expect(a.code).toBe(0);
    expect(a.stderr).toContain('Sync completed.');
    expect(Object.keys(remote())).toEqual(['a.txt', 'b.txt']);
    expect((await server.readFile(bucket, 'b.txt')).toString()).toBe('b');

    // Plan again, then the bucket changes behind the plan's back.
    writeTree(src, { 'a.txt': 'a2!', 'b.txt': 'b2!' }, T0 + 100);
    fs.rmSync(path.join(src, 'a.txt'));
    writeTree(src, { 'c.txt': 'c' }, T0);
    const plan2 = path.join(work, 'plan2.jsonl');
    expect((await hf(['sync', src, uri(), '--delete', '--plan', plan2])).code).toBe(0);
    server.touch(bucket, 'a.txt', (T0 + 500) * 1000); // the file to delete changed
    server.touch(bucket, 'b.txt', (T0 + 600) * 1000); // the file to overwrite changed
    const stale = await hf(['sync', '--apply', plan2]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/stale, left untouched: a\.txt/);
    expect(stale.stderr).toMatch(/stale, left untouched: b\.txt/);
    expect(remote()['a.txt']).toEqual({ size: 1, mtime: (T0 + 500) * 1000 });
    expect((await server.readFile(bucket, 'b.txt')).toString()).toBe('b');
    expect(Object.keys(remote())).toContain('c.txt');
  });

  it('a partial /batch failure fails exactly those files (exit 1, named); a re-run sends only them and converges', async () => {
    writeTree(src, { 'ok1.txt': '1', 'bad.txt': 'bad', 'ok2.txt': '2', 'dir/also-bad.bin': 'x' }, T0);
    server.failPaths.set('bad.txt', 'Injected failure for bad.txt');
    server.failPaths.set('dir/also-bad.bin', 'Injected failure for also-bad');
    const r = await hf(['sync', src, uri()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('bad.txt');
    expect(r.stderr).toContain('Injected failure for bad.txt');
    expect(r.stderr).toContain('dir/also-bad.bin');
    expect(r.stderr).not.toMatch(/failed: ok1\.txt/);
    expect(Object.keys(remote())).toEqual(['ok1.txt', 'ok2.txt']);

    server.failPaths.clear();
    server.resetStats();
    const again = await hf(['sync', src, uri(), '-v']);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('  Uploads: 2');
    expect(server.stats.batchLines['addFile']).toBe(2);
    expect(Object.keys(remote())).toEqual(['bad.txt', 'dir/also-bad.bin', 'ok1.txt', 'ok2.txt']);
    expect((await hf(['sync', src, uri()])).stderr).toContain('Nothing to sync.');
  });

  it('retries a 503 with Retry-After and still completes', async () => {
    writeTree(src, { 'a.txt': 'a' }, T0);
    server.injectFault({ route: 'tree', status: 503, retryAfter: 1 });
    server.injectFault({ route: 'batch', status: 429, retryAfter: 1 });
    const r = await hf(['sync', src, uri()]);
    expect(r.code).toBe(0);
    expect(server.faults).toEqual([]);
    expect(Object.keys(remote())).toEqual(['a.txt']);
  });

  it('a bad token and an unknown bucket are one clear error with a hint, exit 2', async () => {
    writeTree(src, { 'a.txt': 'a' }, T0);
    const bad = await hf(['sync', src, uri(), '--token', 'hf_wrong']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^Error: .*HTTP 401/m);
    expect(bad.stderr).toMatch(/^Hint: .*HF_TOKEN/m);
    const missing = await hf(['sync', 'hf://buckets/tester/nope', dst]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("Error: Bucket 'tester/nope' not found on the Hugging Face Hub");
    expect(missing.stderr).toContain('Hint: Create it with `hf buckets create tester/nope`');
    expect(fs.existsSync(dst)).toBe(false);
  });
});
