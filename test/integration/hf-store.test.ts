/**
 * The hf store against the local Hub/Xet test server, through the real @huggingface/hub
 * client library (no mocks): uploads with mtimes, listings, downloads, prefixes, deletes,
 * copies, partial batch failures, dedup, auth errors and retries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseHfUri } from '../../src/stores/hf/location.js';
import { StaleError, type TransferSource } from '../../src/stores/store.js';
import type { FileEntry } from '../../src/types.js';
import { HfBucketNotFoundError, HfStoreError, openHfStore, resolveHfToken, type HfStore, type HfStoreOptions } from '../../src/stores/hf/index.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';

const TOKEN = 'hf_test_token';
let server: HfTestServer;
let tmp: string;

beforeAll(async () => {
  server = await startHfServer({ pageSize: 5 });
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'hf-store-test-'));
});
afterAll(async () => {
  await server.close();
  await fsp.rm(tmp, { recursive: true, force: true });
});

let bucketSeq = 0;
function newBucket(): string {
  const id = `tester/b${++bucketSeq}`;
  server.createBucket(id);
  return id;
}

async function open(uri: string, opts: HfStoreOptions = {}): Promise<HfStore> {
  return openHfStore(parseHfUri(uri), {
    token: TOKEN,
    endpoint: server.url,
    retry: { baseDelayMs: 10, maxDelayMs: 50 },
    env: {},
    ...opts,
  });
}

function random(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function source(data: Buffer | string, mtimeMs: number): TransferSource {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  return {
    size: buf.length,
    mtimeMs,
    open: async (range) => Readable.from(range ? [buf.subarray(range.start, range.end + 1)] : buf.length ? [buf] : []),
  };
}

async function fileSource(file: string): Promise<TransferSource> {
  const st = await fsp.stat(file);
  return {
    size: st.size,
    mtimeMs: st.mtimeMs,
    localPath: file,
    open: async (range) => fs.createReadStream(file, range ? { start: range.start, end: range.end } : {}),
  };
}

async function listAll(store: HfStore, onWarning?: (m: string) => void): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  for await (const batch of store.list(onWarning ? { onWarning } : {})) out.push(...batch);
  return out;
}

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(parts);
}

const T0 = 1_700_000_000_123.456;

async function put(store: HfStore, files: Record<string, string | Buffer>, mtimeMs = T0): Promise<void> {
  await Promise.all(Object.entries(files).map(([p, d]) => store.write(p, source(d, mtimeMs), { mtimeMs, expect: { kind: 'any' } })));
}

describe('hf store: uploads and listings', () => {
  it('uploads concurrent writes as one batch, and lists them back with sizes, mtimes and xet hashes', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`);
    server.resetStats();
    const files: Record<string, string> = {};
    for (let i = 0; i < 12; i++) files[`dir${i % 3}/file-${String(i).padStart(2, '0')}.txt`] = `content ${i}\n`.repeat(i + 1);
    files['top.bin'] = '';
    await Promise.all(
      Object.entries(files).map(([p, d], i) => store.write(p, source(d, T0 + i * 1000), { mtimeMs: T0 + i * 1000, expect: { kind: 'absent' } })),
    );
    expect(server.stats.requests['batch']).toBe(1);
    const listed = await listAll(store);
    const expected = Object.entries(files)
      .map(([p, d], i) => ({ path: p, size: Buffer.byteLength(d), mtimeMs: Math.trunc(T0 + i * 1000) }))
      .sort((a, b) => (a.path < b.path ? -1 : 1));
    expect(listed.map(({ path: p, size, mtimeMs }) => ({ path: p, size, mtimeMs }))).toEqual(expected);
    expect(listed.every((e) => /^[0-9a-f]{64}$/.test(e.xetHash ?? ''))).toBe(true);
    expect(server.stats.requests['tree']).toBeGreaterThan(1); // 13 files + 3 dirs at 5 per page
    expect(server.listBucket(id).find((f) => f.path === 'dir0/file-00.txt')?.contentType).toBe('text/plain');
    await store.close();
  });

  it('uploads a multi-MiB file and an empty file, and downloads them byte-identical (whole and ranged)', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}/data`);
    const bigPath = path.join(tmp, 'big.bin');
    const big = Buffer.concat([random(5 * 1024 * 1024 + 17, 42), Buffer.alloc(1024 * 1024, 7), random(333_333, 9)]);
    await fsp.writeFile(bigPath, big);
    await fsp.utimes(bigPath, 1_600_000_000.25, 1_600_000_000.25);
    const src = await fileSource(bigPath);
    await Promise.all([
      store.write('nested/big.bin', src, { mtimeMs: src.mtimeMs, expect: { kind: 'absent' } }),
      store.write('empty.txt', source('', T0), { mtimeMs: T0, expect: { kind: 'absent' } }),
    ]);
    const listed = await listAll(store);
    expect(listed.map((e) => [e.path, e.size, e.mtimeMs])).toEqual([
      ['empty.txt', 0, Math.trunc(T0)],
      ['nested/big.bin', big.length, 1_600_000_000_250],
    ]);
    expect(server.listBucket(id).map((f) => f.path)).toEqual(['data/empty.txt', 'data/nested/big.bin']);

    const got = await readAll(await store.read('nested/big.bin'));
    expect(got.length).toBe(big.length);
    expect(crypto.createHash('sha256').update(got).digest('hex')).toBe(crypto.createHash('sha256').update(big).digest('hex'));
    const start = 3 * 1024 * 1024 + 5;
    const end = 6 * 1024 * 1024 + 99;
    expect((await readAll(await store.read('nested/big.bin', { start, end }))).equals(big.subarray(start, end + 1))).toBe(true);
    expect((await readAll(await store.read('empty.txt'))).length).toBe(0);
    const st = await store.stat('nested/big.bin');
    expect(st).toMatchObject({ path: 'nested/big.bin', size: big.length, mtimeMs: 1_600_000_000_250 });
    expect(await store.stat('nope.txt')).toBeUndefined();
    await store.close();
  });

  it('answers concurrent stats with one paths-info request', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`);
    await put(store, { 'a.txt': 'a', 'b.txt': 'bb', 'c/d.txt': 'ddd' });
    server.resetStats();
    const got = await Promise.all(['a.txt', 'b.txt', 'c/d.txt', 'missing.txt'].map((p) => store.stat(p)));
    expect(got.map((e) => e?.size)).toEqual([1, 2, 3, undefined]);
    expect(server.stats.requests['paths-info']).toBe(1);
  });

  it('sends no new xorb bytes when the same content is uploaded again', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`);
    const data = random(2 * 1024 * 1024 + 5, 77);
    await put(store, { 'first.bin': data });
    server.resetStats();
    await put(store, { 'second.bin': data });
    expect(server.stats.xorbBytesReceived).toBe(0);
    expect(server.stats.chunkQueryHits).toBeGreaterThan(0);
    expect((await server.readFile(id, 'second.bin')).equals(data)).toBe(true);
    await store.close();
  });

  it('keeps a prefix on its path boundary, and maps an exact-file prefix to its basename', async () => {
    const id = newBucket();
    const root = await open(`hf://buckets/${id}`);
    await put(root, { 'sub/a.txt': 'a', 'sub/deep/b.txt': 'bb', 'submarine.txt': 'sub', 'sub.txt': 'x', 'other/c.txt': 'c' });
    const sub = await open(`hf://buckets/${id}/sub`);
    expect((await listAll(sub)).map((e) => e.path)).toEqual(['a.txt', 'deep/b.txt']);
    const exact = await open(`hf://buckets/${id}/sub/deep/b.txt`);
    expect((await listAll(exact)).map((e) => [e.path, e.size])).toEqual([['b.txt', 2]]);
    expect((await readAll(await exact.read('b.txt'))).toString()).toBe('bb');
    // A fresh store (a plan applied later) resolves the basename without listing first.
    const fresh = await open(`hf://buckets/${id}/sub/deep/b.txt`);
    expect(await fresh.stat('b.txt')).toMatchObject({ path: 'b.txt', size: 2 });
  });

  it('percent-encodes prefixes and paths with special characters', async () => {
    const id = newBucket();
    const root = await open(`hf://buckets/${id}`);
    const weird = 'we ird/é #?%&+;=/x y.txt';
    await put(root, { [weird]: 'w', 'we ird/é #?%&+;=z': 'sibling', 'we ird/plain.txt': 'p' });
    const store = await open(`hf://buckets/${id}/we ird/é #?%&+;=`);
    expect((await listAll(store)).map((e) => e.path)).toEqual(['x y.txt']);
    expect((await readAll(await store.read('x y.txt'))).toString()).toBe('w');
  });

  it('sorts each page and checks the order across pages', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`);
    const names = ['b', 'a', 'é', 'Z', 'a/b', 'a-b', 'a.b', '\u{1F600}', '\uFF5E', 'k', 'm', 'c'].map((n) => `${n}.txt`);
    await put(store, Object.fromEntries(names.map((n) => [n, n])));
    server.unsortedTreePages = true;
    try {
      const listed = (await listAll(store)).map((e) => e.path);
      const sorted = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      expect(listed).toEqual(sorted);
    } finally {
      server.unsortedTreePages = false;
    }
  });

  it('refuses a listing whose pages are out of order instead of planning on it', async () => {
    const pages: Record<string, { items: unknown[]; next?: string }> = {
      '/api/buckets/x/y/tree?recursive=true': { items: [{ type: 'file', path: 'b.txt', size: 1 }], next: 'http://hub.test/p2' },
      '/p2': { items: [{ type: 'file', path: 'a.txt', size: 1 }] },
    };
    const fake: typeof fetch = async (input) => {
      const u = new URL(String(input));
      const page = pages[u.pathname + u.search]!;
      return new Response(JSON.stringify(page.items), {
        headers: { 'Content-Type': 'application/json', ...(page.next ? { Link: `<${page.next}>; rel="next"` } : {}) },
      });
    };
    const store = await openHfStore(parseHfUri('hf://buckets/x/y'), { endpoint: 'http://hub.test', fetch: fake, env: {} });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const b of store.list()) seen.push(...b.map((e) => e.path));
    })().catch((e: unknown) => e);
    expect(seen).toEqual(['b.txt']);
    expect((err as Error).message).toContain("came back out of order ('a.txt' after 'b.txt')");
  });

  it('treats a missing mtime as 0, like hf', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`);
    await put(store, { 'a.txt': 'a' });
    server.omitMtime = true;
    try {
      expect((await listAll(store)).map((e) => e.mtimeMs)).toEqual([0]);
    } finally {
      server.omitMtime = false;
    }
  });
});

describe('hf store: conditional writes, deletes, copies', () => {
  it('refuses a write whose destination changed since the plan', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`);
    await put(store, { 'a.txt': 'one' });
    await expect(store.write('a.txt', source('two', T0), { mtimeMs: T0, expect: { kind: 'absent' } })).rejects.toBeInstanceOf(StaleError);
    await expect(
      store.write('a.txt', source('two', T0), { mtimeMs: T0, expect: { kind: 'version', size: 3, mtimeMs: Math.trunc(T0) + 5 } }),
    ).rejects.toBeInstanceOf(StaleError);
    await store.write('a.txt', source('two!', T0 + 1), { mtimeMs: T0 + 1, expect: { kind: 'version', size: 3, mtimeMs: Math.trunc(T0) } });
    expect((await server.readFile(id, 'a.txt')).toString()).toBe('two!');
  });

  it('deletes only what still matches the plan', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}/p`);
    await put(store, { 'keep.txt': 'k', 'del1.txt': 'd1', 'del2.txt': 'd2', 'changed.txt': 'c', 'gone.txt': 'g' });
    const m = Math.trunc(T0);
    server.touch(id, 'p/changed.txt', m + 60_000);
    server.removeFile(id, 'p/gone.txt');
    const results = await store.remove([
      { path: 'del1.txt', expect: { kind: 'version', size: 2, mtimeMs: m } },
      { path: 'changed.txt', expect: { kind: 'version', size: 1, mtimeMs: m } },
      { path: 'gone.txt', expect: { kind: 'version', size: 1, mtimeMs: m } },
      { path: 'del2.txt', expect: { kind: 'any' } },
    ]);
    expect(results.map((r) => [r.path, r.ok, !!r.stale])).toEqual([
      ['del1.txt', true, false],
      ['changed.txt', false, true],
      ['gone.txt', false, true],
      ['del2.txt', true, false],
    ]);
    expect(server.listBucket(id).map((f) => f.path)).toEqual(['p/changed.txt', 'p/keep.txt']);
  });

  it('reports deletes the server refuses', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`);
    await put(store, { 'a.txt': 'a', 'b.txt': 'b' });
    server.failPaths.set('b.txt', 'Injected delete failure');
    try {
      const results = await store.remove([
        { path: 'a.txt', expect: { kind: 'any' } },
        { path: 'b.txt', expect: { kind: 'any' } },
      ]);
      expect(results[0]).toEqual({ path: 'a.txt', ok: true });
      expect(results[1]).toMatchObject({ path: 'b.txt', ok: false });
      expect(results[1]?.error).toContain('Injected delete failure');
    } finally {
      server.failPaths.clear();
    }
  });

  it('copies server-side by xet hash, with the mtime, without sending bytes; setMtime rewrites only the mtime', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`);
    await put(store, { 'src.bin': random(300_000, 5) });
    const fresh = await open(`hf://buckets/${id}`); // knows nothing of the upload: resolves the hash via paths-info
    server.resetStats();
    await Promise.all([
      fresh.copy('src.bin', 'copies/one.bin', { mtimeMs: T0 + 5000, expect: { kind: 'absent' } }),
      fresh.copy('src.bin', 'copies/two.bin', { mtimeMs: T0 + 6000, expect: { kind: 'absent' } }),
    ]);
    expect(server.stats.xorbBytesReceived).toBe(0);
    expect(server.stats.requests['batch']).toBe(1);
    const listed = await listAll(fresh);
    const src = listed.find((e) => e.path === 'src.bin')!;
    expect(listed.filter((e) => e.path.startsWith('copies/')).map((e) => [e.path, e.size, e.mtimeMs, e.xetHash])).toEqual([
      ['copies/one.bin', src.size, Math.trunc(T0 + 5000), src.xetHash],
      ['copies/two.bin', src.size, Math.trunc(T0 + 6000), src.xetHash],
    ]);
    await fresh.setMtime!('src.bin', 1_500_000_000_000, { kind: 'version', size: src.size, mtimeMs: src.mtimeMs });
    expect(await fresh.stat('src.bin')).toMatchObject({ size: src.size, mtimeMs: 1_500_000_000_000, xetHash: src.xetHash });
    await expect(fresh.copy('missing.bin', 'x.bin', { mtimeMs: T0, expect: { kind: 'absent' } })).rejects.toBeInstanceOf(StaleError);
  });
});

describe('hf store: failures', () => {
  it('rejects exactly the paths a partial /batch failure names; the others are committed', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`);
    server.failPaths.set('f/bad-1.txt', 'Injected failure one');
    server.failPaths.set('f/bad-2.txt', 'Injected failure two');
    try {
      const names = ['f/ok-1.txt', 'f/bad-1.txt', 'f/ok-2.txt', 'f/bad-2.txt', 'f/ok-3.txt'];
      const results = await Promise.allSettled(names.map((n) => store.write(n, source(n, T0), { mtimeMs: T0, expect: { kind: 'any' } })));
      const byName = Object.fromEntries(names.map((n, i) => [n, results[i]!]));
      expect(Object.entries(byName).filter(([, r]) => r.status === 'rejected').map(([n]) => n)).toEqual(['f/bad-1.txt', 'f/bad-2.txt']);
      expect(String((byName['f/bad-1.txt'] as PromiseRejectedResult).reason.message)).toContain('Injected failure one');
      expect(String((byName['f/bad-2.txt'] as PromiseRejectedResult).reason.message)).toContain('Injected failure two');
      expect(server.listBucket(id).map((f) => f.path)).toEqual(['f/ok-1.txt', 'f/ok-2.txt', 'f/ok-3.txt']);
    } finally {
      server.failPaths.clear();
    }
    // All lines failing (HTTP 422) rejects them all, with the server's message.
    server.failPaths.set('g/x.txt', 'nope');
    try {
      await expect(store.write('g/x.txt', source('x', T0), { mtimeMs: T0, expect: { kind: 'any' } })).rejects.toThrow('nope');
    } finally {
      server.failPaths.clear();
    }
  });

  it('fails only the write whose source misbehaves or whose beforeCommit refuses', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`);
    const short: TransferSource = { size: 10, mtimeMs: T0, open: async () => Readable.from([Buffer.from('12345')]) };
    const broken: TransferSource = {
      size: 3,
      mtimeMs: T0,
      open: async () => {
        throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
      },
    };
    const results = await Promise.allSettled([
      store.write('short.txt', short, { mtimeMs: T0, expect: { kind: 'any' } }),
      store.write('broken.txt', broken, { mtimeMs: T0, expect: { kind: 'any' } }),
      store.write('refused.txt', source('abc', T0), {
        mtimeMs: T0,
        expect: { kind: 'any' },
        beforeCommit: async () => {
          throw new Error('changed during transfer');
        },
      }),
      store.write('good.txt', source('good', T0), { mtimeMs: T0, expect: { kind: 'any' } }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'fulfilled']);
    expect(String((results[0] as PromiseRejectedResult).reason.message)).toContain('expected 10');
    expect(String((results[1] as PromiseRejectedResult).reason.message)).toContain('ENOENT');
    expect(String((results[2] as PromiseRejectedResult).reason.message)).toBe('changed during transfer');
    expect(server.listBucket(id).map((f) => f.path)).toEqual(['good.txt']);
  });

  it('gives one clear line and a token hint on 401', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`, { token: 'hf_wrong_token' });
    const err = await listAll(store).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HfStoreError);
    expect((err as HfStoreError).message).toContain('HTTP 401');
    expect((err as HfStoreError).message).not.toContain('\n');
    expect((err as HfStoreError).hint).toMatch(/--token.*HF_TOKEN.*hf auth login/);
    expect((err as HfStoreError).exitCode).toBe(2);
    const w = await store.write('a.txt', source('a', T0), { mtimeMs: T0, expect: { kind: 'any' } }).catch((e: unknown) => e);
    expect((w as HfStoreError).hint).toContain('HF_TOKEN');
  });

  it('refuses a read-only token on writes with a hint', async () => {
    const ro = await startHfServer({ tokens: { hf_reader: { user: 'tester', readOnly: true } } });
    try {
      ro.createBucket('tester/ro');
      const store = await openHfStore(parseHfUri('hf://buckets/tester/ro'), { token: 'hf_reader', endpoint: ro.url, env: {} });
      expect(await listAll(store)).toEqual([]);
      const err = await store.write('a.txt', source('a', T0), { mtimeMs: T0, expect: { kind: 'any' } }).catch((e: unknown) => e);
      expect((err as HfStoreError).message).toContain('HTTP 403');
      expect((err as HfStoreError).hint).toContain('write access');
    } finally {
      await ro.close();
    }
  });

  it('says the bucket does not exist, with a hint to create it', async () => {
    const store = await open('hf://buckets/tester/does-not-exist/some/prefix');
    const err = await listAll(store).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HfBucketNotFoundError);
    expect((err as HfBucketNotFoundError).message).toBe("Bucket 'tester/does-not-exist' not found on the Hugging Face Hub");
    expect((err as HfBucketNotFoundError).hint).toContain('hf buckets create tester/does-not-exist');
    const w = await store.write('a.txt', source('a', T0), { mtimeMs: T0, expect: { kind: 'absent' } }).catch((e: unknown) => e);
    expect(w).toBeInstanceOf(HfBucketNotFoundError);
    expect(await store.read('a.txt').catch((e: unknown) => e)).toBeInstanceOf(HfBucketNotFoundError);
    expect(await store.stat('a.txt').catch((e: unknown) => e)).toBeInstanceOf(HfBucketNotFoundError);
    expect(await store.remove([{ path: 'a.txt', expect: { kind: 'any' } }]).catch((e: unknown) => e)).toBeInstanceOf(HfBucketNotFoundError);
  });

  it('retries 503 and 429 answers, honouring Retry-After', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`);
    await put(store, { 'a.txt': 'a' });
    server.resetStats();
    server.injectFault({ route: 'tree', status: 503, retryAfter: 1 });
    const t0 = Date.now();
    expect((await listAll(store)).map((e) => e.path)).toEqual(['a.txt']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(server.stats.faultsInjected).toBe(1);
    expect(server.stats.requests['tree']).toBe(2);

    server.injectFault({ route: 'batch', status: 429, retryAfter: 0 });
    server.injectFault({ route: 'xorb-upload', status: 503, times: 2 });
    server.injectFault({ route: 'xorb-read', status: 502 });
    await put(store, { 'b.txt': random(100_000, 3) });
    expect((await readAll(await store.read('b.txt'))).equals(random(100_000, 3))).toBe(true);
    expect(server.stats.faultsInjected).toBe(5);
    expect(server.faults).toEqual([]);
  });

  it('gives up after the retries with a retryable error', async () => {
    const id = newBucket();
    const store = await open(`hf://buckets/${id}`, { retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 2 } });
    server.injectFault({ route: 'tree', status: 503, times: 3 });
    const err = await listAll(store).catch((e: unknown) => e);
    expect((err as Error).name).toBe('RetryableError');
    expect((err as Error).message).toContain('HTTP 503');
  });

  it('rejects a token that is not an hf token up front', async () => {
    await expect(openHfStore(parseHfUri('hf://buckets/a/b'), { token: 'nope', endpoint: server.url, env: {} })).rejects.toThrow(
      "tokens start with 'hf_'",
    );
  });
});

describe('hf token and endpoint lookup', () => {
  it('takes the option, then HF_TOKEN, then the hf CLI token file', async () => {
    const home = await fsp.mkdtemp(path.join(tmp, 'hfhome-'));
    await fsp.writeFile(path.join(home, 'token'), 'hf_from_file\n');
    expect(resolveHfToken('hf_opt', { HF_TOKEN: 'hf_env', HF_HOME: home })).toEqual({ token: 'hf_opt', source: 'option' });
    expect(resolveHfToken(undefined, { HF_TOKEN: 'hf_env', HF_HOME: home })).toEqual({ token: 'hf_env', source: 'HF_TOKEN' });
    expect(resolveHfToken(undefined, { HF_HOME: home })).toEqual({ token: 'hf_from_file', source: 'file' });
    expect(resolveHfToken(undefined, { XDG_CACHE_HOME: path.join(home, 'none') })).toEqual({ token: undefined, source: 'none' });
    await fsp.mkdir(path.join(home, 'xdg', 'huggingface'), { recursive: true });
    await fsp.writeFile(path.join(home, 'xdg', 'huggingface', 'token'), 'hf_xdg');
    expect(resolveHfToken(undefined, { XDG_CACHE_HOME: path.join(home, 'xdg') })).toEqual({ token: 'hf_xdg', source: 'file' });
  });

  it('uses HF_ENDPOINT and HF_TOKEN from the environment', async () => {
    const id = newBucket();
    const writer = await open(`hf://buckets/${id}`);
    await put(writer, { 'a.txt': 'a' });
    const store = await openHfStore(parseHfUri(`hf://buckets/${id}`), { env: { HF_ENDPOINT: `${server.url}/`, HF_TOKEN: TOKEN } });
    expect((await listAll(store)).map((e) => e.path)).toEqual(['a.txt']);
  });
});
