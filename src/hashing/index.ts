/**
 * Content identity for deduplication: `xxh128:<32 hex>` of a file's bytes (with its size,
 * which the caller already has). {@link ContentHasher} answers from the persistent cache
 * when the file is unchanged (same device, inode, size, mtime and path), hashes it
 * otherwise — small files inline, large ones on the worker pool — and records the result.
 */
import { cacheKey, HashCache, type HashCacheOptions, type HashCacheStats } from './cache.js';
import { HashPool, type HashPoolOptions } from './pool.js';
import {
  defaultBackend,
  describeMismatch,
  FileChangedError,
  hashFile,
  hashFileSync,
  SYNC_HASH_MAX,
  type FileIdentity,
  type HashFileResult,
} from './xxh128.js';

export { cacheKey, HashCache, CACHE_FILE, CACHE_FORMAT } from './cache.js';
export type { CacheKey, HashCacheOptions, HashCacheStats } from './cache.js';
export { defaultPoolSize, HashPool, HashPoolClosedError, hashFiles } from './pool.js';
export type { HashPoolOptions, PoolHashOptions } from './pool.js';
export {
  backendAvailable,
  createHasher,
  defaultBackend,
  FileChangedError,
  HASH_PREFIX,
  hashBytes,
  hashFile,
  hashFileSync,
  isContentHash,
  loadXet,
  SYNC_HASH_MAX,
  xxh128HexSync,
  NATIVE_FALLBACK_MAX_BYTES,
  READ_CHUNK,
} from './xxh128.js';
export type { FileIdentity, HashAlgorithm, HashBackend, Hasher, HashFileOptions, HashFileResult, StreamDigest } from './xxh128.js';

/**
 * Files smaller than this are hashed on the calling thread, with synchronous reads; larger
 * ones go to the worker pool. The crossover measured on the 2-vCPU build VM (see
 * {@link SYNC_HASH_MAX}): up to 256 KiB inline-sync is 2–6× faster per file than the pool,
 * 512 KiB–1 MiB is even, from 2 MiB on the pool wins and keeps the event loop free.
 */
export const DEFAULT_INLINE_THRESHOLD = SYNC_HASH_MAX;

/** Synchronous hashing and cache hits give the event loop a turn at least this often. */
const YIELD_EVERY_MS = 10;

/**
 * A file modified less than this long before it is hashed is not cached: a write within
 * the same mtime tick (coarse kernel clocks; 2 s on FAT) would leave size and mtime
 * unchanged, and the cache would then return the old digest ("racy" entries, as in git).
 */
export const DEFAULT_RACY_WINDOW_MS = 3000;

export interface ContentHasherOptions {
  /** A cache to use (not closed by `close()`), `false` for none, or options to open one. */
  cache?: HashCache | false | HashCacheOptions;
  /** A pool to use (not closed by `close()`), `false` to hash everything inline, or options for one. */
  pool?: HashPool | false | HashPoolOptions;
  /** Bytes below which a file is hashed inline (default {@link DEFAULT_INLINE_THRESHOLD}). */
  inlineThreshold?: number;
  /** See {@link DEFAULT_RACY_WINDOW_MS}; 0 caches every result. */
  racyWindowMs?: number;
  /** Clock (ms since the epoch), for tests. */
  now?: () => number;
}

/** What the caller's scan saw; `hash()` fails with FileChangedError if the file differs now. */
export interface ScannedFile extends FileIdentity {
  size: number;
}

export interface ContentHasherStats {
  hits: number;
  misses: number;
  /** Files read and hashed (inline + pool). */
  hashedFiles: number;
  hashedBytes: number;
  inlineFiles: number;
  pooledFiles: number;
  /** Hashes not cached because the file was modified too recently. */
  racySkipped: number;
  /** Hashes that failed (FileChangedError, I/O errors). */
  errors: number;
  cache: HashCacheStats | undefined;
}

export class ContentHasher {
  private cachePromise: Promise<HashCache | undefined> | undefined;
  private cache: HashCache | undefined;
  private readonly ownsCache: boolean;
  private readonly cacheOpt: HashCache | false | HashCacheOptions;
  private pool: HashPool | undefined;
  private readonly ownsPool: boolean;
  private readonly inlineThreshold: number;
  private readonly racyWindowNs: bigint;
  private readonly now: () => number;
  private readonly inFlight = new Map<string, Promise<string>>();
  private closed = false;
  private lastYield = performance.now();
  private counters = { hashedFiles: 0, hashedBytes: 0, inlineFiles: 0, pooledFiles: 0, racySkipped: 0, errors: 0 };

  constructor(opts: ContentHasherOptions = {}) {
    this.cacheOpt = opts.cache ?? {};
    this.ownsCache = !(opts.cache instanceof HashCache) && opts.cache !== false;
    if (opts.cache instanceof HashCache) {
      this.cache = opts.cache;
      this.cachePromise = Promise.resolve(opts.cache);
    }
    if (opts.pool instanceof HashPool) {
      this.pool = opts.pool;
      this.ownsPool = false;
    } else if (opts.pool === false) {
      this.ownsPool = false;
    } else {
      this.pool = new HashPool(opts.pool ?? {});
      this.ownsPool = true;
    }
    this.inlineThreshold = opts.inlineThreshold ?? DEFAULT_INLINE_THRESHOLD;
    this.racyWindowNs = BigInt(Math.round((opts.racyWindowMs ?? DEFAULT_RACY_WINDOW_MS) * 1e6));
    this.now = opts.now ?? Date.now;
  }

  /** A hasher whose cache is already open (the constructor opens it lazily otherwise). */
  static async open(opts: ContentHasherOptions = {}): Promise<ContentHasher> {
    const h = new ContentHasher(opts);
    await h.openCache();
    return h;
  }

  private openCache(): Promise<HashCache | undefined> {
    if (!this.cachePromise) {
      const o = this.cacheOpt;
      this.cachePromise =
        o === false || o instanceof HashCache
          ? Promise.resolve(o === false ? undefined : o)
          : HashCache.open(o).then((c) => (this.cache = c));
    }
    return this.cachePromise;
  }

  /**
   * The content identity (`xxh128:<32 hex>`) of the file at `absPath`, which the caller's
   * scan saw with `stat`. Rejects with FileChangedError when the file is no longer what
   * was scanned or changes while it is read.
   */
  async hash(absPath: string, stat: ScannedFile, opts: { signal?: AbortSignal } = {}): Promise<string> {
    if (this.closed) throw new Error('ContentHasher is closed');
    // Cache hits and small-file hashes complete without a macrotask; a caller awaiting them
    // one after another would otherwise starve timers (progress bars) and I/O callbacks.
    if (performance.now() - this.lastYield > YIELD_EVERY_MS) {
      await new Promise<void>((r) => setImmediate(r));
      this.lastYield = performance.now();
    }
    const key = cacheKey({ dev: stat.dev, ino: stat.ino, size: stat.size, mtimeNs: stat.mtimeNs, path: absPath });
    const cache = this.cache ?? (await this.openCache());
    const cached = cache?.get(key);
    if (cached !== undefined) return cached;
    const running = this.inFlight.get(key);
    if (running) return running;
    const p = this.compute(absPath, stat, key, cache, opts.signal).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, p);
    return p;
  }

  private async compute(
    absPath: string,
    stat: ScannedFile,
    key: string,
    cache: HashCache | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    let r: HashFileResult;
    const pooled = this.pool !== undefined && stat.size >= this.inlineThreshold;
    // Racy check against the time before the read: a write in the same mtime tick as the
    // file's mtime, but after we read it, would otherwise go unnoticed by the next run.
    const startNs = BigInt(Math.round(this.now() * 1e6));
    try {
      if (pooled) {
        r = await this.pool!.hash(absPath, { sizeHint: stat.size, expect: stat, ...(signal ? { signal } : {}) });
      } else if (stat.size < SYNC_HASH_MAX) {
        await defaultBackend();
        if (signal?.aborted) throw signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
        r = hashFileSync(absPath, { expect: stat });
      } else {
        r = await hashFile(absPath, signal ? { signal, expect: stat } : { expect: stat });
      }
    } catch (err) {
      this.counters.errors++;
      throw err;
    }
    this.counters.hashedFiles++;
    this.counters.hashedBytes += r.size;
    if (pooled) this.counters.pooledFiles++;
    else this.counters.inlineFiles++;
    // `expect` was checked at open; check again what the read saw (cheap, and covers a pool
    // handed in by the caller that ignores `expect`).
    const why = describeMismatch(stat, { size: BigInt(r.size), mtimeNs: r.mtimeNs, ino: r.ino, dev: r.dev });
    if (why) {
      this.counters.errors++;
      throw new FileChangedError(absPath, why);
    }
    const age = startNs - r.mtimeNs;
    if (cache && (age >= this.racyWindowNs || age <= -this.racyWindowNs)) cache.set(key, r.hash);
    else if (cache) this.counters.racySkipped++;
    return r.hash;
  }

  stats(): ContentHasherStats {
    const c = this.cache?.stats();
    return { hits: c?.hits ?? 0, misses: c?.misses ?? 0, ...this.counters, cache: c };
  }

  /** Flushes the cache and stops the pool (only those this hasher created). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inFlight.values()]);
    if (this.cachePromise) await this.cachePromise.catch(() => undefined);
    if (this.cache) {
      if (this.ownsCache) this.cache.close();
      else this.cache.flush();
    }
    if (this.pool && this.ownsPool) await this.pool.close();
  }
}
