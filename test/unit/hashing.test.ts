import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  backendAvailable,
  cacheKey,
  CACHE_FILE,
  CACHE_FORMAT,
  ContentHasher,
  createHasher,
  FileChangedError,
  HashCache,
  hashBytes,
  hashFile,
  hashFileSync,
  hashFiles,
  HashPool,
  HashPoolClosedError,
  type HashBackend,
  type ScannedFile,
} from '../../src/hashing/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIST_INDEX = path.join(ROOT, 'dist/hashing/index.js');
const WRITER = path.join(ROOT, 'test/support/hash-cache-writer.mjs');
const MiB = 1024 * 1024;

/** Why the tests that need the compiled module cannot run, or undefined when they can. */
function distUnavailable(): string | undefined {
  if (!fs.existsSync(DIST_INDEX)) return 'dist/hashing/index.js is missing (run `npm run build`; `npm test` builds first)';
  const srcDir = path.join(ROOT, 'src/hashing');
  const newestSrc = Math.max(...fs.readdirSync(srcDir).map((f) => fs.statSync(path.join(srcDir, f)).mtimeMs));
  const distDir = path.join(ROOT, 'dist/hashing');
  const oldestDist = Math.min(
    ...['index.js', 'cache.js', 'pool.js', 'xxh128.js', 'hash-worker.js'].map((f) => {
      const p = path.join(distDir, f);
      return fs.existsSync(p) ? fs.statSync(p).mtimeMs : 0;
    }),
  );
  if (oldestDist < newestSrc) return 'dist/hashing is older than src/hashing (run `npm run build`)';
  return undefined;
}
const distSkip = distUnavailable();
if (distSkip) console.warn(`hashing tests needing the compiled module are skipped: ${distSkip}`);

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'bucketsync-hashing-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let seq = 0;
function freshDir(name: string): string {
  const d = path.join(work, `${name}-${++seq}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** A deterministic, non-repeating-looking byte pattern. */
function pattern(size: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Native one-shot xxh128 (@node-rs/xxhash), as an independent reference. */
async function nativeOneShot(data: Uint8Array | string): Promise<string> {
  const h = await createHasher({ backend: 'native' });
  return `xxh128:${h.update(data).digestHex()}`;
}

/** Writes a file and gives it an mtime of whole seconds in the past (out of the racy window). */
function writeOld(p: string, data: Uint8Array | string, secondsAgo = 3600): number {
  fs.writeFileSync(p, data);
  const t = Math.floor(Date.now() / 1000) - secondsAgo;
  fs.utimesSync(p, t, t);
  return t;
}

function scanned(p: string): ScannedFile {
  const st = fs.statSync(p, { bigint: true });
  return { dev: Number(st.dev), ino: Number(st.ino), size: Number(st.size), mtimeNs: st.mtimeNs };
}

describe('xxh128 digests', () => {
  const backends: HashBackend[] = ['wasm', 'native'];

  it('both backends are available here', async () => {
    expect(await backendAvailable('wasm')).toBe(true);
    expect(await backendAvailable('native')).toBe(true);
  });

  it.each(backends)('%s: known vectors (empty, "abc")', async (backend) => {
    expect(await hashBytes('', { backend })).toBe('xxh128:99aa06d3014798d86001c324468d497f');
    expect(await hashBytes(new Uint8Array(0), { backend })).toBe('xxh128:99aa06d3014798d86001c324468d497f');
    expect(await hashBytes('abc', { backend })).toBe('xxh128:06b05ab6733a618578af5f94892f3950');
  });

  it('1 MiB pattern: wasm streaming in uneven slices equals native one-shot', async () => {
    const data = pattern(MiB, 7);
    const ref = await nativeOneShot(data);
    expect(await hashBytes(data, { backend: 'wasm' })).toBe(ref);
    for (const step of [1, 63, 4096, 65537, 300_001]) {
      const h = await createHasher({ backend: 'wasm' });
      // byte-at-a-time over the first 4 KiB only (keeps it fast), then `step` slices
      let off = 0;
      if (step === 1) for (; off < 4096; off++) h.update(data.subarray(off, off + 1));
      for (; off < data.length; off += step) h.update(data.subarray(off, Math.min(data.length, off + step)));
      expect(`xxh128:${h.digestHex()}`).toBe(ref);
    }
  });

  it('sizes around the xxh3 internal boundaries agree between backends', async () => {
    const data = pattern(2100, 3);
    for (const n of [1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 1024, 2048, 2049]) {
      const d = data.subarray(0, n);
      expect(await hashBytes(d, { backend: 'wasm' }), `n=${n}`).toBe(await nativeOneShot(d));
    }
  });

  it('a 20 MiB file streamed by hashFile equals the native one-shot of its bytes', async () => {
    const dir = freshDir('big');
    const p = path.join(dir, 'twenty.bin');
    const data = pattern(20 * MiB + 12_345, 11);
    fs.writeFileSync(p, data);
    const ref = await nativeOneShot(data);
    const st = fs.statSync(p, { bigint: true });
    const wasm = await hashFile(p);
    expect(wasm).toEqual({ hash: ref, size: data.length, mtimeNs: st.mtimeNs, dev: st.dev, ino: st.ino });
    expect((await hashFile(p, { backend: 'native' })).hash).toBe(ref);
  });

  it('hashFileSync gives the same results as hashFile', async () => {
    const dir = freshDir('sync');
    for (const size of [0, 1, 4096, MiB - 1, MiB, MiB + 1, 3 * MiB + 17]) {
      const p = path.join(dir, `f${size}`);
      fs.writeFileSync(p, pattern(size, size + 1));
      const a = await hashFile(p);
      expect(hashFileSync(p), `size ${size}`).toEqual(a);
      expect(hashFileSync(p, { backend: 'native' }).hash, `size ${size}`).toBe(a.hash);
      expect(a.hash).toBe(await nativeOneShot(pattern(size, size + 1)));
    }
  });

  it('empty and exactly-one-chunk files', async () => {
    const dir = freshDir('edge');
    const empty = path.join(dir, 'empty');
    fs.writeFileSync(empty, '');
    expect((await hashFile(empty)).hash).toBe('xxh128:99aa06d3014798d86001c324468d497f');
    const one = path.join(dir, 'one');
    const data = pattern(MiB, 5);
    fs.writeFileSync(one, data);
    expect((await hashFile(one)).hash).toBe(await nativeOneShot(data));
    const two = path.join(dir, 'two');
    fs.writeFileSync(two, Buffer.concat([data, data]));
    expect((await hashFile(two)).hash).toBe(await nativeOneShot(Buffer.concat([data, data])));
  });

  it('a finished hasher refuses more input', async () => {
    const h = await createHasher();
    h.update('x').digestHex();
    expect(() => h.update('y')).toThrow(/finished/);
  });
});

describe('hashFile: files that change', () => {
  it('throws FileChangedError when the file is appended to while it is read', async () => {
    const dir = freshDir('grow');
    const p = path.join(dir, 'growing.bin');
    fs.writeFileSync(p, pattern(8 * MiB, 2));
    let appended = false;
    const err = await hashFile(p, {
      onProgress: () => {
        if (!appended) {
          appended = true;
          fs.appendFileSync(p, 'more bytes');
        }
      },
    }).catch((e: unknown) => e);
    expect(appended).toBe(true);
    expect(err).toBeInstanceOf(FileChangedError);
    expect((err as FileChangedError).code).toBe('EFILECHANGED');
    expect((err as Error).message).toMatch(/growing\.bin changed while it was being hashed \(size 8388608 → 8388618 bytes\)/);
  });

  it('hashFileSync throws FileChangedError when the file grows while it is read', async () => {
    const dir = freshDir('grow-sync');
    for (const size of [1000, 3 * MiB]) {
      const p = path.join(dir, `g${size}`);
      fs.writeFileSync(p, pattern(size, 2));
      let appended = false;
      const run = (): unknown => {
        try {
          return hashFileSync(p, {
            onProgress: () => {
              if (!appended) {
                appended = true;
                fs.appendFileSync(p, 'more');
              }
            },
          });
        } catch (e) {
          return e;
        }
      };
      expect(run()).toBeInstanceOf(FileChangedError);
    }
  });

  it('throws FileChangedError when the file was rewritten in place (same size) while it is read', async () => {
    const dir = freshDir('rewrite');
    const p = path.join(dir, 'f.bin');
    fs.writeFileSync(p, pattern(3 * MiB, 2));
    fs.utimesSync(p, 1_000_000, 1_000_000);
    let done = false;
    const err = await hashFile(p, {
      onProgress: () => {
        if (!done) {
          done = true;
          const fd = fs.openSync(p, 'r+');
          fs.writeSync(fd, 'X', 2 * MiB + 5);
          fs.closeSync(fd);
        }
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileChangedError);
  });

  it('throws FileChangedError when the file is not what the scan saw', async () => {
    const dir = freshDir('expect');
    const p = path.join(dir, 'f.txt');
    writeOld(p, 'hello');
    const stat = scanned(p);
    fs.writeFileSync(p, 'hello, world');
    await expect(hashFile(p, { expect: stat })).rejects.toBeInstanceOf(FileChangedError);
  });

  it('honours an aborted signal', async () => {
    const dir = freshDir('abort');
    const p = path.join(dir, 'f.bin');
    fs.writeFileSync(p, pattern(4 * MiB, 9));
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(hashFile(p, { signal: ac.signal })).rejects.toThrow('stop');
    const ac2 = new AbortController();
    await expect(hashFile(p, { signal: ac2.signal, onProgress: () => ac2.abort(new Error('mid')) })).rejects.toThrow('mid');
  });

  it('reports a missing file and a directory as errors', async () => {
    const dir = freshDir('missing');
    await expect(hashFile(path.join(dir, 'nope'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(hashFile(dir)).rejects.toThrow();
  });
});

describe('HashCache', () => {
  it('uses BUCKETSYNC_CACHE_DIR by default', async () => {
    const dir = freshDir('envdir');
    const saved = process.env.BUCKETSYNC_CACHE_DIR;
    process.env.BUCKETSYNC_CACHE_DIR = dir;
    try {
      const c = await HashCache.open();
      c.set('1:2:3:4:/a', 'xxh128:99aa06d3014798d86001c324468d497f');
      c.close();
      expect(c.file).toBe(path.join(dir, CACHE_FILE));
      expect(fs.readFileSync(path.join(dir, CACHE_FILE), 'utf8').startsWith(`${CACHE_FORMAT}\n`)).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.BUCKETSYNC_CACHE_DIR;
      else process.env.BUCKETSYNC_CACHE_DIR = saved;
    }
  });

  it('persists entries, including paths with newlines, backslashes and non-ASCII', async () => {
    const dir = freshDir('persist');
    const keys = [
      cacheKey({ dev: 1, ino: 2, size: 3, mtimeNs: 4n, path: '/plain' }),
      cacheKey({ dev: 1n, ino: 5n, size: 6n, mtimeNs: -7n, path: '/with\nnewline\\back\\nslash\r' }),
      cacheKey({ dev: 9, ino: 10, size: 11, mtimeNs: 12, path: '/dir/é 日本 🎉 \\n' }),
    ];
    const c1 = await HashCache.open({ dir });
    for (const [i, k] of keys.entries()) c1.set(k, await hashBytes(`v${i}`));
    expect(c1.get(keys[0]!)).toBe(await hashBytes('v0'));
    c1.close();
    const c2 = await HashCache.open({ dir });
    for (const [i, k] of keys.entries()) expect(c2.get(k)).toBe(await hashBytes(`v${i}`));
    expect(c2.get('1:2:3:4:/other')).toBeUndefined();
    expect(c2.stats()).toMatchObject({ hits: 3, misses: 1, entries: 3, loadedRecords: 3, badRecords: 0 });
    c2.close();
  });

  it('rejects malformed hashes and keys', async () => {
    const c = await HashCache.open({ memoryOnly: true });
    expect(() => c.set('1:2:3:4:/a', 'abc')).toThrow(TypeError);
    expect(() => c.set('1:2:3:4:/a', '99aa06d3014798d86001c324468d497f')).toThrow(TypeError);
    expect(() => c.set('not a key', 'xxh128:99aa06d3014798d86001c324468d497f')).toThrow(TypeError);
  });

  it('opens a file of random garbage as empty and rewrites it', async () => {
    const dir = freshDir('garbage');
    const file = path.join(dir, CACHE_FILE);
    fs.writeFileSync(file, randomBytes(100_000));
    const c = await HashCache.open({ dir });
    expect(c.size).toBe(0);
    c.set('1:2:3:4:/a', await hashBytes('a'));
    c.close();
    expect(c.stats().compactions).toBe(1);
    expect(fs.readFileSync(file, 'utf8').startsWith(`${CACHE_FORMAT}\n`)).toBe(true);
    const c2 = await HashCache.open({ dir });
    expect(c2.get('1:2:3:4:/a')).toBe(await hashBytes('a'));
    expect(c2.stats().badRecords).toBe(0);
    c2.close();
  });

  it('ignores a file of another version and rewrites it', async () => {
    const dir = freshDir('version');
    const file = path.join(dir, CACHE_FILE);
    fs.writeFileSync(file, 'bucketsync-hashcache v0\nsomething old\n');
    const c = await HashCache.open({ dir });
    expect(c.size).toBe(0);
    c.set('1:2:3:4:/a', await hashBytes('a'));
    c.close();
    const c2 = await HashCache.open({ dir });
    expect(c2.size).toBe(1);
    c2.close();
  });

  it('skips a truncated last record, corrupt and garbage lines, record by record', async () => {
    const dir = freshDir('truncated');
    const file = path.join(dir, CACHE_FILE);
    const c = await HashCache.open({ dir });
    for (let i = 0; i < 5; i++) c.set(`1:${i}:1:1:/f${i}`, await hashBytes(`f${i}`));
    c.close();
    const text = fs.readFileSync(file, 'utf8');
    const lines = text.split('\n');
    expect(lines).toHaveLength(7); // header, 5 records, '' after the last newline
    // line 2: flip one digest digit (CRC mismatch); add garbage and binary junk lines;
    // cut the last record in half.
    const flipped = lines[2]!.replace(/ ([0-9a-f])/, (_m, d: string) => ` ${d === '0' ? '1' : '0'}`);
    const junk = ['', 'garbage', randomBytes(300).toString('latin1').replace(/\n/g, ''), '00000000 x 1 1:1:1:1:/zz'];
    const last = lines[5]!;
    const corrupted = [lines[0], lines[1], flipped, ...junk, lines[3], lines[4], last.slice(0, 30)].join('\n');
    fs.writeFileSync(file, corrupted, 'latin1');
    const c2 = await HashCache.open({ dir });
    expect(c2.get('1:0:1:1:/f0')).toBe(await hashBytes('f0'));
    expect(c2.get('1:1:1:1:/f1')).toBeUndefined(); // its record was corrupted
    expect(c2.get('1:2:1:1:/f2')).toBe(await hashBytes('f2'));
    expect(c2.get('1:3:1:1:/f3')).toBe(await hashBytes('f3'));
    expect(c2.get('1:4:1:1:/f4')).toBeUndefined(); // truncated
    expect(c2.stats()).toMatchObject({ entries: 3, loadedRecords: 3, badRecords: 5 }); // the empty line is not "bad"
    // Appending after a torn tail first ends the torn line, so new records survive.
    c2.set('1:9:1:1:/new1', await hashBytes('new1'));
    c2.set('1:10:1:1:/new2', await hashBytes('new2'));
    c2.close();
    const c3 = await HashCache.open({ dir });
    expect(c3.get('1:9:1:1:/new1')).toBe(await hashBytes('new1'));
    expect(c3.get('1:10:1:1:/new2')).toBe(await hashBytes('new2'));
    expect(c3.get('1:0:1:1:/f0')).toBe(await hashBytes('f0'));
    expect(c3.stats()).toMatchObject({ entries: 5, badRecords: 5 });
    c3.close();
  });

  it('compaction drops entries not seen for maxRunsUnseen runs and duplicate records', async () => {
    const dir = freshDir('evict');
    const file = path.join(dir, CACHE_FILE);
    const h = await hashBytes('x');
    // Run 1 writes "old" and "kept"; runs 2..7 each write one new entry and look up "kept"
    // (with maxRunsUnseen 4 a hit is re-recorded at every run, so the file has duplicates).
    let c = await HashCache.open({ dir, maxRunsUnseen: 4 });
    c.set('1:1:1:1:/old', h);
    c.set('1:2:1:1:/kept', h);
    c.close();
    for (let run = 2; run <= 7; run++) {
      c = await HashCache.open({ dir, maxRunsUnseen: 4 });
      expect(c.stats().run).toBe(run);
      expect(c.get('1:2:1:1:/kept')).toBe(h);
      c.set(`1:${100 + run}:1:1:/r${run}`, h);
      c.close();
    }
    expect(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)).toHaveLength(1 + 2 + 6 + 6);
    // 8 entries > maxEntries 6 triggers a compaction at the next flush (run 8): entries last
    // seen before run 4 (old, r2, r3) go; the 5 others fit under the cap.
    const c2 = await HashCache.open({ dir, maxRunsUnseen: 4, maxEntries: 6 });
    expect(c2.size).toBe(8);
    c2.flush();
    expect(c2.stats().compactions).toBe(1);
    c2.close();
    const after = await HashCache.open({ dir, maxRunsUnseen: 4 });
    expect(after.size).toBe(5);
    expect(after.get('1:1:1:1:/old')).toBeUndefined();
    expect(after.get('1:102:1:1:/r2')).toBeUndefined();
    expect(after.get('1:103:1:1:/r3')).toBeUndefined();
    expect(after.get('1:104:1:1:/r4')).toBe(h);
    expect(after.get('1:2:1:1:/kept')).toBe(h);
    expect(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)).toHaveLength(1 + 5);
    after.close();
  });

  it('caps the number of entries', async () => {
    const dir = freshDir('cap');
    const c = await HashCache.open({ dir, maxEntries: 100 });
    const h = await hashBytes('y');
    for (let i = 0; i < 250; i++) c.set(`1:${i}:1:1:/f${i}`, h);
    c.close();
    const c2 = await HashCache.open({ dir, maxEntries: 100 });
    expect(c2.size).toBe(90);
    c2.close();
  });

  it('falls back to memory when the directory cannot be used', async () => {
    const dir = freshDir('blocked');
    const notADir = path.join(dir, 'file');
    fs.writeFileSync(notADir, 'x');
    const warnings: string[] = [];
    const c = await HashCache.open({ dir: path.join(notADir, 'sub'), onWarning: (m) => warnings.push(m) });
    c.set('1:2:3:4:/a', await hashBytes('a'));
    expect(c.get('1:2:3:4:/a')).toBe(await hashBytes('a'));
    c.close();
    expect(c.stats().persistent).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/memory only/);
  });

  it('keeps a 1 M-entry cache in well under 200 MB', { timeout: 120_000 }, async () => {
    // A real full GC (vitest runs without --expose-gc), so that garbage is not counted.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const settle = async (): Promise<NodeJS.MemoryUsage> => {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 50));
      }
      return process.memoryUsage();
    };
    const h = 'xxh128:0123456789abcdef0123456789abcdef';
    const before = await settle();
    const c = await HashCache.open({ memoryOnly: true });
    for (let i = 0; i < 1_000_000; i++) c.set(`64769:${1_000_000 + i}:${i * 37}:1717171717${String(i).padStart(9, '0')}:/home/user/projects/dataset/shard-${i % 1000}/file-${i}.bin`, h);
    const after = await settle();
    const used = after.heapUsed + after.external - (before.heapUsed + before.external); // external includes ArrayBuffers
    expect(c.size).toBe(1_000_000);
    expect(c.get(`64769:${1_000_000 + 5}:${5 * 37}:1717171717${String(5).padStart(9, '0')}:/home/user/projects/dataset/shard-5/file-5.bin`)).toBe(h);
    expect(used).toBeLessThan(150 * MiB); // measured ~120 MB (78 MB keys + Map, the rest typed arrays)
  });
});

describe('ContentHasher', () => {
  let cacheDir: string;
  let hashers: ContentHasher[] = [];
  afterEach(async () => {
    await Promise.all(hashers.map((h) => h.close()));
    hashers = [];
  });
  function make(opts: ConstructorParameters<typeof ContentHasher>[0] = {}): ContentHasher {
    const h = new ContentHasher({ cache: { dir: cacheDir }, ...opts });
    hashers.push(h);
    return h;
  }

  it('second run: every file is a cache hit and none is read', async () => {
    cacheDir = freshDir('cache');
    const dir = freshDir('tree');
    const files = Array.from({ length: 20 }, (_, i) => path.join(dir, `f${i}.bin`));
    const times: number[] = [];
    for (const [i, p] of files.entries()) times.push(writeOld(p, pattern(1000 + i * 5000, i + 1)));
    const expected = await Promise.all(files.map((p) => hashFile(p).then((r) => r.hash)));

    const run1 = make();
    expect(await Promise.all(files.map((p) => run1.hash(p, scanned(p))))).toEqual(expected);
    expect(run1.stats()).toMatchObject({ hits: 0, misses: 20, hashedFiles: 20 });
    await run1.close();

    // Rewrite every file's bytes but keep size, inode and mtime (whole seconds, so
    // utimes restores them to the nanosecond): if run 2 read any file, it would see
    // the new bytes. It must answer from the cache alone.
    for (const [i, p] of files.entries()) {
      const fd = fs.openSync(p, 'r+');
      fs.writeSync(fd, 'CHANGED', 0);
      fs.closeSync(fd);
      fs.utimesSync(p, times[i]!, times[i]!);
    }
    const run2 = make();
    expect(await Promise.all(files.map((p) => run2.hash(p, scanned(p))))).toEqual(expected);
    expect(run2.stats()).toMatchObject({ hits: 20, misses: 0, hashedFiles: 0, hashedBytes: 0 });
  });

  it('re-hashes a file whose mtime changed', async () => {
    cacheDir = freshDir('cache');
    const dir = freshDir('tree');
    const p = path.join(dir, 'a.txt');
    writeOld(p, 'first version', 7200);
    const run1 = make();
    const h1 = await run1.hash(p, scanned(p));
    await run1.close();
    writeOld(p, 'other version', 3600); // same size, new mtime
    const run2 = make();
    const h2 = await run2.hash(p, scanned(p));
    expect(h2).not.toBe(h1);
    expect(h2).toBe(await hashBytes('other version'));
    expect(run2.stats()).toMatchObject({ hits: 0, misses: 1, hashedFiles: 1 });
  });

  it('does not cache a file modified within the racy window', async () => {
    cacheDir = freshDir('cache');
    const dir = freshDir('tree');
    const p = path.join(dir, 'fresh.txt');
    fs.writeFileSync(p, 'just written');
    const run1 = make();
    await run1.hash(p, scanned(p));
    expect(run1.stats()).toMatchObject({ hashedFiles: 1, racySkipped: 1 });
    await run1.close();
    const run2 = make({ racyWindowMs: 0 });
    await run2.hash(p, scanned(p));
    expect(run2.stats()).toMatchObject({ hits: 0, hashedFiles: 1, racySkipped: 0 });
    await run2.close();
    const run3 = make();
    await run3.hash(p, scanned(p));
    expect(run3.stats()).toMatchObject({ hits: 1, hashedFiles: 0 });
  });

  it('hashes one file once when asked twice at the same time', async () => {
    cacheDir = freshDir('cache');
    const p = path.join(freshDir('tree'), 'x');
    writeOld(p, pattern(2 * MiB));
    const h = make({ inlineThreshold: 1 });
    const [a, b] = await Promise.all([h.hash(p, scanned(p)), h.hash(p, scanned(p))]);
    expect(a).toBe(b);
    expect(h.stats().hashedFiles).toBe(1);
  });

  it('sends large files to the pool and small ones inline', async () => {
    cacheDir = freshDir('cache');
    const dir = freshDir('tree');
    const small = path.join(dir, 'small');
    const large = path.join(dir, 'large');
    writeOld(small, pattern(1000));
    writeOld(large, pattern(3 * MiB));
    const h = make({ inlineThreshold: MiB });
    expect(await h.hash(small, scanned(small))).toBe(await nativeOneShot(pattern(1000)));
    expect(await h.hash(large, scanned(large))).toBe(await nativeOneShot(pattern(3 * MiB)));
    expect(h.stats()).toMatchObject({ inlineFiles: 1, pooledFiles: 1 });
  });

  it('rejects with FileChangedError when the file differs from the scan (inline and pooled)', async () => {
    cacheDir = freshDir('cache');
    const dir = freshDir('tree');
    for (const size of [100, 2 * MiB]) {
      const p = path.join(dir, `f${size}`);
      writeOld(p, pattern(size));
      const stat = scanned(p);
      writeOld(p, pattern(size + 1), 10);
      const h = make({ inlineThreshold: MiB });
      await expect(h.hash(p, stat)).rejects.toBeInstanceOf(FileChangedError);
      expect(h.stats().errors).toBe(1);
    }
  });

  it('gives the event loop a turn during long runs of cache hits and small files', async () => {
    cacheDir = freshDir('cache');
    const dir = freshDir('tree');
    const files: string[] = [];
    for (let i = 0; i < 50; i++) {
      const p = path.join(dir, `s${i}`);
      writeOld(p, pattern(20_000, i + 1));
      files.push(p);
    }
    const h = make();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      const start = performance.now();
      let n = 0;
      // 100 ms, and at least two rounds (a loaded machine may not get through one in 100 ms)
      while (performance.now() - start < 100 || n < 2 * files.length) {
        const p = files[n++ % files.length]!;
        await h.hash(p, scanned(p));
      }
      expect(n).toBeGreaterThan(50); // mostly cache hits after the first round
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(2);
  });

  it('works without a cache', async () => {
    const p = path.join(freshDir('tree'), 'x');
    writeOld(p, 'abc');
    const h = new ContentHasher({ cache: false, pool: false });
    expect(await h.hash(p, scanned(p))).toBe('xxh128:06b05ab6733a618578af5f94892f3950');
    expect(await h.hash(p, scanned(p))).toBe('xxh128:06b05ab6733a618578af5f94892f3950');
    expect(h.stats()).toMatchObject({ hashedFiles: 2, cache: undefined });
    await h.close();
    await expect(h.hash(p, scanned(p))).rejects.toThrow(/closed/);
  });
});

describe('HashPool (from the TypeScript sources)', () => {
  it('runs inline under vitest, where no compiled worker script sits next to pool.ts', async () => {
    const pool = new HashPool();
    expect(pool.mode).toBe('inline');
    const dir = freshDir('pool');
    const ok = path.join(dir, 'ok');
    fs.writeFileSync(ok, 'abc');
    const res = await hashFiles([ok, path.join(dir, 'missing'), ok], { pool });
    expect(res.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(res[0]).toMatchObject({ value: { hash: 'xxh128:06b05ab6733a618578af5f94892f3950', size: 3 } });
    expect(res[1]).toMatchObject({ reason: { code: 'ENOENT' } });
    await pool.close();
    await expect(pool.hash(ok)).rejects.toBeInstanceOf(HashPoolClosedError);
  });
});

type DistModule = typeof import('../../src/hashing/index.js');

describe.skipIf(distSkip !== undefined)('compiled module (dist/): worker threads and concurrent processes', () => {
  let dist: DistModule;
  beforeAll(async () => {
    dist = (await import(pathToFileURL(DIST_INDEX).href)) as DistModule;
  });

  it('hashes on worker threads; errors are per file', async () => {
    const pool = new dist.HashPool({ size: 2 });
    expect(pool.mode).toBe('workers');
    const dir = freshDir('workers');
    const files: string[] = [];
    for (let i = 0; i < 8; i++) {
      const p = path.join(dir, `f${i}`);
      fs.writeFileSync(p, pattern(i * 700_000 + 1, i + 1));
      files.push(p);
    }
    const missing = path.join(dir, 'missing');
    const res = await dist.hashFiles([...files, missing, dir], { pool });
    for (const [i, r] of res.slice(0, 8).entries()) {
      expect(r.status).toBe('fulfilled');
      expect((r as PromiseFulfilledResult<{ hash: string }>).value.hash).toBe(await nativeOneShot(pattern(i * 700_000 + 1, i + 1)));
    }
    expect(res[8]).toMatchObject({ status: 'rejected', reason: { code: 'ENOENT' } });
    expect(res[9]!.status).toBe('rejected');
    expect(pool.stats()).toMatchObject({ mode: 'workers', threads: 2, workerFailures: 0 });
    await pool.close();
    await expect(pool.hash(files[0]!)).rejects.toThrow(/closed/);
  });

  it('FileChangedError crosses the thread boundary as a FileChangedError', async () => {
    const dir = freshDir('workers-changed');
    const p = path.join(dir, 'f');
    writeOld(p, pattern(2 * MiB));
    const stat = scanned(p);
    writeOld(p, pattern(2 * MiB + 1), 10);
    const h = new dist.ContentHasher({ cache: false, inlineThreshold: MiB });
    const err = await h.hash(p, stat).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(dist.FileChangedError);
    await h.close();
  });

  it('small files (sizeHint) are read synchronously in the worker, with the same digests', async () => {
    const dir = freshDir('workers-small');
    const pool = new dist.HashPool({ size: 2 });
    const paths: string[] = [];
    for (let i = 0; i < 20; i++) {
      const p = path.join(dir, `s${i}`);
      fs.writeFileSync(p, pattern(i * 333, i + 1));
      paths.push(p);
    }
    const got = await Promise.all(paths.map((p, i) => pool.hash(p, { sizeHint: i * 333 })));
    for (const [i, r] of got.entries()) expect(r.hash).toBe(await nativeOneShot(pattern(i * 333, i + 1)));
    await expect(pool.hash(path.join(dir, 'missing'), { sizeHint: 10 })).rejects.toMatchObject({ code: 'ENOENT' });
    await pool.close();
  });

  it('a worker that crashes is replaced by inline hashing; its jobs still complete', async () => {
    const dir = freshDir('workers-crash');
    const bad = path.join(dir, 'bad-worker.mjs');
    fs.writeFileSync(bad, "throw new Error('worker failed to start');\n");
    const p = path.join(dir, 'f');
    fs.writeFileSync(p, pattern(2 * MiB, 4));
    const pool = new dist.HashPool({ size: 2, workerUrl: pathToFileURL(bad) });
    expect(pool.mode).toBe('workers');
    const rs = await Promise.all([pool.hash(p), pool.hash(p), pool.hash(p)]);
    for (const r of rs) expect(r.hash).toBe(await nativeOneShot(pattern(2 * MiB, 4)));
    expect(pool.stats().workerFailures).toBeGreaterThanOrEqual(1);
    await pool.close();
  });

  it('cancels a queued job when its signal aborts', async () => {
    const dir = freshDir('workers-abort');
    const p = path.join(dir, 'f');
    fs.writeFileSync(p, pattern(4 * MiB));
    const pool = new dist.HashPool({ size: 1, perWorker: 1 });
    const ac = new AbortController();
    const first = pool.hash(p);
    const second = pool.hash(p, { signal: ac.signal });
    ac.abort(new Error('cancelled'));
    await expect(second).rejects.toThrow('cancelled');
    await expect(first).resolves.toMatchObject({ size: 4 * MiB });
    await pool.close();
  });

  function runNode(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`child timed out: ${stderr}`));
      }, 60_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  it('an unclosed pool does not keep the process alive', async () => {
    const p = path.join(freshDir('unref'), 'f');
    fs.writeFileSync(p, 'abc');
    const r = await runNode([WRITER, pathToFileURL(DIST_INDEX).href, p, 'x', '0', '0', 'pool']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ mode: 'workers', hash: 'xxh128:06b05ab6733a618578af5f94892f3950' });
  });

  it('two processes appending to one cache at once lose and corrupt nothing', async () => {
    const dir = freshDir('concurrent');
    // Create the file first (the header race of two first writers is covered by design, not here).
    const seed = await dist.HashCache.open({ dir });
    seed.set('0:0:0:0:/seed', await hashBytes('seed'));
    seed.close();
    const N = 4000;
    const url = pathToFileURL(DIST_INDEX).href;
    const [a, b] = await Promise.all([
      runNode([WRITER, url, dir, 'a', String(N), '50', 'append']),
      runNode([WRITER, url, dir, 'b', String(N), '50', 'append']),
    ]);
    expect(a.stderr + b.stderr).toBe('');
    expect([a.code, b.code]).toEqual([0, 0]);
    const c = await HashCache.open({ dir });
    expect(c.stats().badRecords).toBe(0);
    expect(c.size).toBe(2 * N + 1);
    for (const name of ['a', 'b']) {
      for (let i = 0; i < N; i += 97) {
        const key = `1:${i}:${i}:${i}000:/data/${name}/file ${i}`;
        expect(c.get(key)).toBe(await hashBytes(key));
      }
    }
    c.close();
  });

  it('two processes compacting and appending at once never corrupt the cache', async () => {
    const dir = freshDir('concurrent-compact');
    const N = 3000;
    const url = pathToFileURL(DIST_INDEX).href;
    const [a, b] = await Promise.all([
      runNode([WRITER, url, dir, 'a', String(N), '100', 'compact']),
      runNode([WRITER, url, dir, 'b', String(N), '100', 'append']),
    ]);
    expect(a.stderr + b.stderr).toBe('');
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(JSON.parse(a.stdout).compactions).toBeGreaterThan(0);
    const c = await HashCache.open({ dir });
    expect(c.stats().badRecords).toBe(0);
    expect(c.size).toBeGreaterThan(0);
    // Every entry that survived carries the right digest (compaction may drop entries: the
    // writer "a" caps the cache at 300, and appends racing a rename may be lost).
    let present = 0;
    for (const name of ['a', 'b']) {
      for (let i = 0; i < N; i++) {
        const key = `1:${i}:${i}:${i}000:/data/${name}/file ${i}`;
        const got = c.get(key);
        if (got === undefined) continue;
        expect(got).toBe(await hashBytes(key));
        present++;
      }
    }
    expect(present).toBe(c.size);
    c.close();
  });
});
