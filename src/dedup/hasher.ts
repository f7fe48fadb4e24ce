/**
 * Content hashes of local files for the dedup stage: xxh128 through {@link ContentHasher}
 * (persistent cache, worker pool), plus MD5 for comparing with S3 single-part ETags and the
 * Xet file hash for comparing with hf files (worker pool; remembered for the run only:
 * comparisons with hf are rare and their files are transferred or re-stamped right after).
 *
 * The caller names the file by path and says what the plan saw (size, mtime); the file is
 * stat'ed here, and a file that no longer matches is a {@link StaleError}: a hash is only
 * ever attached to the version of a file the plan describes.
 *
 * ## The birth-time key
 *
 * The hash cache keys entries by device, inode, size, mtime *and path*, so a file that was
 * renamed (`mv ckpt-5 ckpt-5-best`) would be read again under its new name — exactly the
 * files `--track-renames` has to hash. This module therefore records, next to the cache's
 * own entry, a second one under the key `dev:ino:size:mtimeNs:#btime:<birth time ns>` (same
 * cache file, same validation), and looks that one up first. A rename keeps the inode, the
 * mtime and the birth time, so the renamed file is a cache hit; a copy (`cp`) is a new inode
 * with a new birth time and is read again.
 *
 * The birth time is what makes a path-less key safe: inode numbers are reused as soon as a
 * file is deleted, and mtimes are often set explicitly (`tar x`, `cp -p`, `rsync -t`, test
 * fixtures), so `dev:ino:size:mtime` alone can name a different file of the same size — a
 * wrong hash, and dedup would copy the wrong bytes. A file created in a reused inode gets a
 * new birth time. Where the file system or kernel reports no birth time (0), there is no
 * second key and a renamed file is simply hashed again. The racy-window rule (no caching of
 * files modified in the last 3 s) applies to both keys.
 *
 * ## Fresh hashes
 *
 * Any (device, inode, size, mtime) cache trusts the mtime: a file rewritten in place whose
 * mtime is then set back is not noticed. `--checksum` exists to catch exactly what the mtime
 * does not show, so its comparisons ask for `fresh` hashes: the file is read whatever the
 * cache says (the result still refreshes the cache).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { cacheKey, ContentHasher, DEFAULT_RACY_WINDOW_MS, HashCache, HashPool, type HashCacheOptions } from '../hashing/index.js';
import { statMtimeMs } from '../plan/time.js';
import { StaleError } from '../stores/store.js';

/** What the plan says about the file: its size and (when known) its mtime in ms. */
export interface Expected {
  size: number;
  mtimeMs?: number;
}

export interface LocalHasherStats {
  /** Hashes asked for (xxh128). */
  requests: number;
  /** Of those, answered from the cache (inode key or path key) without reading the file. */
  cacheHits: number;
  /** Files read to compute an xxh128. */
  filesRead: number;
  bytesRead: number;
  /** MD5s computed (only for --checksum against S3 single-part ETags). */
  md5Files: number;
  md5Bytes: number;
  /** Xet file hashes computed (comparisons with hf files). */
  xetFiles: number;
  xetBytes: number;
}

export interface LocalHasherOptions {
  /** Options for the persistent cache (default: the user's cache directory). */
  cache?: HashCacheOptions;
  onWarning?: (message: string) => void;
}

export class LocalHasher {
  private readonly counters = { requests: 0, cacheHits: 0, md5Files: 0, md5Bytes: 0, xetFiles: 0, xetBytes: 0 };
  private readonly inFlight = new Map<string, Promise<string>>();
  /** Xet hashes of this run by `dev:ino:size:mtimeNs` (a file compared at plan time is checked again before a copy). */
  private readonly xetMemo = new Map<string, Promise<string>>();
  private closed = false;

  private constructor(
    private readonly cache: HashCache,
    private readonly pool: HashPool,
    /** Answers from the cache when it can. */
    private readonly hasher: ContentHasher,
    /** Always reads the file (for --checksum). */
    private readonly reader: ContentHasher,
  ) {}

  static async open(opts: LocalHasherOptions = {}): Promise<LocalHasher> {
    const cacheOpts: HashCacheOptions = { ...opts.cache };
    if (opts.onWarning && !cacheOpts.onWarning) cacheOpts.onWarning = opts.onWarning;
    const cache = await HashCache.open(cacheOpts);
    const pool = new HashPool();
    const hasher = await ContentHasher.open({ cache, pool });
    const reader = await ContentHasher.open({ cache: false, pool });
    return new LocalHasher(cache, pool, hasher, reader);
  }

  /**
   * The xxh128 (`xxh128:<hex>`) of the local file `abs`, which the plan saw with `expect`.
   * Throws StaleError when the file is gone or differs from `expect`.
   */
  async hash(abs: string, expect: Expected, signal?: AbortSignal, opts: { fresh?: boolean } = {}): Promise<string> {
    if (this.closed) throw new Error('LocalHasher is closed');
    const st = await statExpected(abs, expect);
    this.counters.requests++;
    const inodeKey = st.birthtimeNs > 0n ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:#btime:${st.birthtimeNs}` : undefined;
    const identity = { dev: st.dev, ino: st.ino, size: Number(st.size), mtimeNs: st.mtimeNs };
    if (opts.fresh) {
      const startMs = Date.now();
      const h = await this.reader.hash(abs, identity, signal ? { signal } : {});
      if (notRacy(startMs, st.mtimeNs)) {
        if (inodeKey) this.cache.set(inodeKey, h);
        this.cache.set(cacheKey({ ...identity, path: abs }), h);
      }
      return h;
    }
    const cached = inodeKey ? this.cache.get(inodeKey) : undefined;
    if (cached !== undefined) {
      this.counters.cacheHits++;
      return cached;
    }
    const byPath = this.cache.get(cacheKey({ ...identity, path: abs }));
    if (byPath !== undefined) {
      this.counters.cacheHits++;
      if (inodeKey) this.cache.set(inodeKey, byPath);
      return byPath;
    }
    const flightKey = inodeKey ?? `${abs}\0${st.size}:${st.mtimeNs}`;
    const running = this.inFlight.get(flightKey);
    if (running) return running;
    const p = (async () => {
      const startMs = Date.now();
      const h = await this.hasher.hash(abs, identity, signal ? { signal } : {});
      if (inodeKey && notRacy(startMs, st.mtimeNs)) this.cache.set(inodeKey, h);
      return h;
    })().finally(() => this.inFlight.delete(flightKey));
    this.inFlight.set(flightKey, p);
    return p;
  }

  /**
   * The Xet file hash (`xet:<64 hex>`, what hf lists as `xetHash`) of the local file `abs`,
   * which the plan saw with `expect`. Throws StaleError when the file is gone or differs.
   *
   * A file's Xet hash depends on its uploader's chunking (src/hashing/xet.ts): `match` is the
   * remote file's hash; when the local file's hash under @huggingface/hub's chunking is not it,
   * the file is hashed under hf_xet's chunking too (only then: a second read), and that hash is
   * returned if it matches. So a file `hf` uploaded and unchanged locally compares equal.
   * Both are kept in the persistent hash cache (keyed by device, inode, size, mtime and path;
   * `fresh` reads the file whatever the cache says, and refreshes it).
   */
  async xet(abs: string, expect: Expected, signal?: AbortSignal, opts: { fresh?: boolean; match?: string } = {}): Promise<string> {
    if (this.closed) throw new Error('LocalHasher is closed');
    const st = await statExpected(abs, expect);
    const hub = await this.xetOf(abs, st, 'xet', signal, opts.fresh);
    if (opts.match === undefined || hub === opts.match) return hub;
    const core = await this.xetOf(abs, st, 'xet-core', signal, opts.fresh);
    return core === opts.match ? core : hub;
  }

  private xetOf(abs: string, st: fs.BigIntStats, algorithm: 'xet' | 'xet-core', signal: AbortSignal | undefined, fresh: boolean | undefined): Promise<string> {
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:#${algorithm}`;
    const cacheKeyString = `${key}:${abs}`;
    if (!fresh) {
      const known = this.xetMemo.get(key);
      if (known) return known;
      const cached = this.cache.getXet(cacheKeyString);
      if (cached !== undefined) {
        const p = Promise.resolve(cached);
        this.xetMemo.set(key, p);
        return p;
      }
    }
    const identity = { dev: st.dev, ino: st.ino, size: Number(st.size), mtimeNs: st.mtimeNs };
    const startMs = Date.now();
    const p = this.pool.hash(abs, { sizeHint: identity.size, expect: identity, algorithm, ...(signal ? { signal } : {}) }).then((r) => {
      this.counters.xetFiles++;
      this.counters.xetBytes += r.size;
      if (notRacy(startMs, st.mtimeNs)) this.cache.setXet(cacheKeyString, r.hash);
      return r.hash;
    });
    this.xetMemo.set(key, p);
    p.catch(() => this.xetMemo.delete(key));
    return p;
  }

  /** The MD5 (32 lowercase hex) of the local file `abs` (not cached). */
  async md5(abs: string, expect: Expected): Promise<string> {
    await statExpected(abs, expect);
    const h = createHash('md5');
    let n = 0;
    await pipeline(fs.createReadStream(abs), async function* (src: AsyncIterable<Buffer>) {
      for await (const chunk of src) {
        n += chunk.length;
        h.update(chunk);
      }
    });
    if (n !== expect.size) throw new StaleError(`${abs} changed while it was read`);
    this.counters.md5Files++;
    this.counters.md5Bytes += n;
    return h.digest('hex');
  }

  stats(): LocalHasherStats {
    const s = this.hasher.stats();
    const f = this.reader.stats();
    return { ...this.counters, filesRead: s.hashedFiles + f.hashedFiles, bytesRead: s.hashedBytes + f.hashedBytes };
  }

  /** Flushes the cache (new entries are written) and stops the worker pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inFlight.values(), ...this.xetMemo.values()]);
    await Promise.all([this.hasher.close(), this.reader.close()]);
    await this.pool.close();
    this.cache.close();
  }
}

/** Whether a file with this mtime, read from `startMs` on, may be cached (see DEFAULT_RACY_WINDOW_MS). */
function notRacy(startMs: number, mtimeNs: bigint): boolean {
  const ageNs = BigInt(Math.round(startMs * 1e6)) - mtimeNs;
  const windowNs = BigInt(DEFAULT_RACY_WINDOW_MS) * 1_000_000n;
  return ageNs >= windowNs || ageNs <= -windowNs;
}

/** Stats `abs` (following symlinks, as the scanner does) and checks it against the plan. */
async function statExpected(abs: string, expect: Expected): Promise<fs.BigIntStats> {
  let st: fs.BigIntStats;
  try {
    st = await fsp.stat(abs, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new StaleError(`${abs} is gone since the plan was made`);
    throw err;
  }
  if (!st.isFile()) throw new StaleError(`${abs} is no longer a regular file`);
  if (Number(st.size) !== expect.size) throw new StaleError(`${abs} changed since the plan was made (size ${st.size}, expected ${expect.size})`);
  if (expect.mtimeMs !== undefined && Math.abs(statMtimeMs(st.mtimeNs) - expect.mtimeMs) >= 0.0015) {
    throw new StaleError(`${abs} changed since the plan was made (modification time differs)`);
  }
  return st;
}
