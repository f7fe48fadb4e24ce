/**
 * The persistent hash cache: (device, inode, size, mtimeNs, path) → xxh128, so a file
 * that has not changed is never read twice across runs.
 *
 * Location: `$BUCKETSYNC_CACHE_DIR`, else `$XDG_CACHE_HOME/bucketsync`, else
 * `~/.cache/bucketsync`; one file, `hashes-v1.log`.
 *
 * ## Format
 *
 * A header line `bucketsync-hashcache v1`, then one text record per line:
 *
 *     <crc32 of the rest, 8 hex> <xxh128 of the content, 32 hex> <run> <xxh128 of the key, 32 hex>
 *
 * where the key is `${dev}:${ino}:${size}:${mtimeNs}:${absolute path}`. Storing the key's
 * 128-bit digest instead of the key keeps the table small (1 M entries with 85-character
 * keys measured ~78 MB of heap plus ~20–40 MB of typed arrays, against ~180 MB when the key
 * strings themselves were the Map keys: the path is most of a key), makes records
 * fixed-size in practice (~80 bytes) and needs no escaping; the cost is one xxh128 of
 * ~100 bytes per lookup (~1 µs) and a cache file that does not list paths (it is created
 * 0600 all the same: content hashes say which files a user has).
 * An accidental 128-bit collision among a few million keys has a probability around
 * 2^-85. A later record for the same key wins (its run number is the larger one).
 *
 * ## Why an append-only log, and why it is safe with concurrent runs
 *
 * - Writers open the file with O_APPEND and write whole records (batches of at most
 *   64 KiB, always ending on a record boundary) with one `write()` each. On local
 *   filesystems the kernel serialises O_APPEND writes to a file (seek-to-end and copy happen
 *   under the inode lock), so records of two processes never interleave, they only
 *   alternate. Nothing is ever rewritten in place.
 * - Every record carries a CRC-32 and must end with a newline. A reader that races a
 *   writer sees at worst a truncated last line; a crash leaves at worst half a record; a
 *   filesystem without atomic appends (NFS) or plain garbage yields lines that fail the
 *   CRC or the syntax check. Such lines are skipped one by one (newline framing
 *   resynchronises at the next record); a file whose header is wrong is ignored whole and
 *   rewritten. A wrong cache entry could make dedup copy the wrong bytes, so records are
 *   validated rather than trusted; a rejected record only costs a re-hash.
 * - Compaction (dropping duplicates, garbage and entries not seen for `maxRunsUnseen`
 *   runs, capping at `maxEntries`) writes a complete new file under a temporary name,
 *   fsyncs it and `rename()`s it over the log, so readers see the old or the new file,
 *   never a mix. It first re-reads the log to keep what other processes appended since we
 *   loaded it. A lock file (`O_CREAT|O_EXCL`, considered stale after 2 minutes) keeps two
 *   processes from compacting at once; it is an optimisation, not a correctness
 *   requirement: the worst outcome of a lost race is that records appended in the
 *   window between the re-read and the rename are lost, i.e. a few files are hashed again.
 *   Writers check before each append that their descriptor still names the current log
 *   file and reopen it otherwise.
 * - Any I/O error (read-only home, disk full…) turns the cache into an in-memory one with
 *   one warning; the cache never fails a sync.
 *
 * ## Eviction
 *
 * Each open starts a new "run" (the highest run in the file + 1; a run that writes nothing
 * leaves no trace, so a cache that is only read does not age). A hit refreshes an
 * entry's run, persisted lazily (only when it is at least `maxRunsUnseen / 4` runs old, so
 * an unchanged tree does not append a record per file per run). Compaction drops entries
 * not seen in the last `maxRunsUnseen` runs and keeps at most `maxEntries` (the most
 * recently seen).
 *
 * ## Memory
 *
 * `Map<key digest (32-char string), slot>` plus the content digests in one Buffer
 * (16 bytes a slot) and run numbers in a Uint32Array: ~100–120 bytes an entry; lookups
 * are O(1).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { userCacheDir } from '../cache/dir.js';
import { defaultBackend, HASH_PREFIX, isContentHash, xxh128HexSync } from './xxh128.js';

export const CACHE_FORMAT = 'bucketsync-hashcache v1';
const HEADER = `${CACHE_FORMAT}\n`;
export const CACHE_FILE = 'hashes-v1.log';
const LOCK_FILE = 'hashes-v1.lock';
const LOCK_STALE_MS = 120_000;
const APPEND_CHUNK = 64 * 1024;
const AUTO_FLUSH_BYTES = 1024 * 1024;
const KEY_RE = /^\d+:\d+:\d+:-?\d+:./s;
/** Record length without the run digits: crc, space, hash, space, space, key digest, newline. */
const FIXED_LEN = 8 + 1 + 32 + 1 + 1 + 32 + 1;

export interface CacheKey {
  dev: number | bigint;
  ino: number | bigint;
  size: number | bigint;
  mtimeNs: bigint | number;
  /** Absolute path. */
  path: string;
}

/** The key string: `${dev}:${ino}:${size}:${mtimeNs}:${path}`. */
export function cacheKey(k: CacheKey): string {
  return `${k.dev}:${k.ino}:${k.size}:${k.mtimeNs}:${k.path}`;
}

/** The xxh128 of a key (32 hex), under which the cache stores it. */
function keyDigest(key: CacheKey | string): string {
  const k = typeof key === 'string' ? key : cacheKey(key);
  if (!KEY_RE.test(k)) throw new TypeError(`not a cache key: ${JSON.stringify(k)}`);
  return xxh128HexSync(k);
}

export interface HashCacheOptions {
  /** Directory of the cache file (default `userCacheDir()`, src/cache/dir.ts). */
  dir?: string;
  /** Entries kept by compaction (default 2 000 000). */
  maxEntries?: number;
  /** Entries not seen for this many runs are dropped by compaction (default 32). */
  maxRunsUnseen?: number;
  /** Do not read or write any file. */
  memoryOnly?: boolean;
  onWarning?: (message: string) => void;
}

export interface HashCacheStats {
  hits: number;
  misses: number;
  /** Entries in memory. */
  entries: number;
  /** Valid records read at open. */
  loadedRecords: number;
  /** Corrupt, truncated or malformed records skipped at open. */
  badRecords: number;
  /** Records this process appended. */
  appendedRecords: number;
  compactions: number;
  /** False when the cache lives only in memory (requested, or after an I/O error). */
  persistent: boolean;
  /** This run's number. */
  run: number;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function encodeRecord(hex: string, run: number, keyDigest: string): string {
  const body = `${hex} ${run} ${keyDigest}`;
  return `${zlib.crc32(body).toString(16).padStart(8, '0')} ${body}\n`;
}

/**
 * Writes all of `text`. A regular file takes a whole `write()` unless something is wrong
 * (disk full…); after a short write the rest follows (a record torn that way fails its
 * CRC if another process's record lands in between).
 */
function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    const n = fs.writeSync(fd, buf, off, buf.length - off);
    if (n <= 0) throw new Error('write made no progress');
    off += n;
  }
}

interface ParseCounts {
  records: number;
  bad: number;
  maxRun: number;
}

export class HashCache {
  /** Directory of the cache file; undefined for a memory-only cache. */
  readonly dir: string | undefined;
  /** Path of the cache file; undefined for a memory-only cache. */
  readonly file: string | undefined;
  private readonly maxEntries: number;
  private readonly maxRunsUnseen: number;
  private readonly touchEvery: number;
  private readonly onWarning: (message: string) => void;

  private readonly map = new Map<string, number>();
  /** Content digests, 16 bytes a slot. */
  private digests: Buffer = Buffer.allocUnsafeSlow(0);
  private runs = new Uint32Array(0);
  private count = 0;

  private run = 1;
  private persistent: boolean;
  private fd: number | undefined;
  private pending: string[] = [];
  private pendingBytes = 0;
  /** Records in the file (ours and what we loaded), for the compaction trigger. */
  private fileRecords = 0;
  private staleAtOpen = 0;
  private rewriteNeeded = false;
  private compactedThisRun = false;

  private hits = 0;
  private misses = 0;
  private loadedRecords = 0;
  private badRecords = 0;
  private appendedRecords = 0;
  private compactions = 0;

  private constructor(opts: HashCacheOptions) {
    this.persistent = !opts.memoryOnly;
    this.dir = this.persistent ? (opts.dir ?? userCacheDir()) : undefined;
    this.file = this.dir !== undefined ? path.join(this.dir, CACHE_FILE) : undefined;
    this.maxEntries = Math.max(1, opts.maxEntries ?? 2_000_000);
    this.maxRunsUnseen = Math.max(1, opts.maxRunsUnseen ?? 32);
    this.touchEvery = Math.max(1, Math.floor(this.maxRunsUnseen / 4));
    this.onWarning = opts.onWarning ?? (() => undefined);
  }

  /** Opens (loads) the cache. Never throws for a missing, unreadable or corrupt file. */
  static async open(opts: HashCacheOptions = {}): Promise<HashCache> {
    await defaultBackend(); // xxh128HexSync (key digests) needs an implementation loaded
    const c = new HashCache(opts);
    if (c.persistent && c.dir !== undefined && c.file !== undefined) {
      let buf: Buffer | undefined;
      try {
        await fsp.mkdir(c.dir, { recursive: true, mode: 0o700 });
        buf = await fsp.readFile(c.file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') c.disable(err, 'cannot read');
      }
      if (buf) c.load(buf);
    }
    return c;
  }

  /** The content identity (`xxh128:<hex>`) cached for `key`, if any. */
  get(key: CacheKey | string): string | undefined {
    const k = keyDigest(key);
    const slot = this.map.get(k);
    if (slot === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    if (this.runs[slot]! + this.touchEvery <= this.run) {
      this.runs[slot] = this.run;
      this.queue(this.hexAt(slot), this.run, k);
    }
    return HASH_PREFIX + this.hexAt(slot);
  }

  /** Records `hash` (`xxh128:<32 hex>`) for `key`. */
  set(key: CacheKey | string, hash: string): void {
    if (!isContentHash(hash)) throw new TypeError(`not a content hash: ${JSON.stringify(hash)}`);
    const k = keyDigest(key);
    const hex = hash.slice(HASH_PREFIX.length);
    const existing = this.map.get(k);
    if (existing !== undefined && this.runs[existing] === this.run && this.hexAt(existing) === hex) return;
    const slot = this.slotFor(k);
    this.digests.write(hex, slot * 16, 16, 'hex');
    this.runs[slot] = this.run;
    this.queue(hex, this.run, k);
  }

  /**
   * The Xet file hash (`xet:<64 hex>`) cached for `key` (a key string in the {@link cacheKey}
   * shape): kept as two records, `key#x0` and `key#x1`, one per 16-byte half, so the file format
   * and its validation stay as they are. Undefined unless both halves are there.
   */
  getXet(key: string): string | undefined {
    const a = this.get(`${key}#x0`);
    if (a === undefined) return undefined;
    const b = this.get(`${key}#x1`);
    if (b === undefined) return undefined;
    return `xet:${a.slice(HASH_PREFIX.length)}${b.slice(HASH_PREFIX.length)}`;
  }

  /** Records a Xet file hash (`xet:<64 hex>`) for `key` (see {@link getXet}). */
  setXet(key: string, hash: string): void {
    const m = /^xet:([0-9a-f]{64})$/.exec(hash);
    if (!m) throw new TypeError(`not a Xet hash: ${JSON.stringify(hash)}`);
    this.set(`${key}#x0`, HASH_PREFIX + m[1]!.slice(0, 32));
    this.set(`${key}#x1`, HASH_PREFIX + m[1]!.slice(32));
  }

  /**
   * Writes what changed since the last flush (appending, or compacting the file when it
   * holds too much garbage or too many entries). Synchronous, so it can run from an
   * `exit` handler; never throws.
   */
  flush(): void {
    if (!this.persistent) {
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    const wantCompact =
      this.rewriteNeeded ||
      (!this.compactedThisRun &&
        (this.count > this.maxEntries ||
          this.fileRecords + this.pending.length - this.count > Math.max(this.count, 10_000) ||
          this.staleAtOpen > Math.max(this.count / 4, 10_000)));
    if (wantCompact && this.compact()) return;
    if (this.rewriteNeeded) {
      // The file is unusable and someone else is rewriting it: keep this run in memory only.
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    this.appendPending();
  }

  /** Flushes and releases the file descriptor. */
  close(): void {
    this.flush();
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // ignore
      }
      this.fd = undefined;
    }
  }

  stats(): HashCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      entries: this.map.size,
      loadedRecords: this.loadedRecords,
      badRecords: this.badRecords,
      appendedRecords: this.appendedRecords,
      compactions: this.compactions,
      persistent: this.persistent,
      run: this.run,
    };
  }

  get size(): number {
    return this.map.size;
  }

  // --- internals --------------------------------------------------------------------------

  private hexAt(slot: number): string {
    return this.digests.toString('hex', slot * 16, slot * 16 + 16);
  }

  private reserve(cap: number): void {
    if (cap <= this.runs.length) return;
    const digests = Buffer.allocUnsafeSlow(cap * 16);
    this.digests.copy(digests, 0, 0, this.count * 16);
    this.digests = digests;
    const runs = new Uint32Array(cap);
    runs.set(this.runs.subarray(0, this.count));
    this.runs = runs;
  }

  private slotFor(key: string): number {
    let slot = this.map.get(key);
    if (slot !== undefined) return slot;
    slot = this.count;
    if (slot >= this.runs.length) this.reserve(Math.max(1024, Math.ceil(this.runs.length * 1.5)));
    this.count++;
    this.runs[slot] = 0;
    this.map.set(key, slot);
    return slot;
  }

  private queue(hex: string, run: number, keyDigest: string): void {
    if (!this.persistent) return;
    const line = encodeRecord(hex, run, keyDigest);
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes >= AUTO_FLUSH_BYTES && this.persistent && !this.rewriteNeeded) this.appendPending();
  }

  private disable(err: unknown, what: string): void {
    if (!this.persistent) return;
    this.persistent = false;
    this.pending = [];
    this.pendingBytes = 0;
    const e = err as NodeJS.ErrnoException;
    this.onWarning(`hash cache: ${what} ${this.file ?? ''} (${e.code ?? e.message ?? String(err)}); caching in memory only`);
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // ignore
      }
      this.fd = undefined;
    }
  }

  private load(buf: Buffer): void {
    if (buf.length === 0) return;
    if (buf.length < HEADER.length || buf.toString('latin1', 0, HEADER.length) !== HEADER) {
      // Another format, or garbage: ignore it all and rewrite it at the next flush.
      this.rewriteNeeded = true;
      this.badRecords++;
      return;
    }
    this.reserve(Math.ceil((buf.length - HEADER.length) / (FIXED_LEN + 2)) + 16);
    const counts = this.parse(buf, HEADER.length);
    this.loadedRecords = counts.records;
    this.badRecords += counts.bad;
    this.fileRecords = counts.records + counts.bad;
    this.run = Math.min(counts.maxRun + 1, 0xffffffff);
    let stale = 0;
    for (let i = 0; i < this.count; i++) if (this.runs[i]! + this.maxRunsUnseen < this.run) stale++;
    this.staleAtOpen = stale;
  }

  /** Parses records from `start` to the end of `buf` into the table. */
  private parse(buf: Buffer, start: number): ParseCounts {
    const counts: ParseCounts = { records: 0, bad: 0, maxRun: 0 };
    let pos = start;
    while (pos < buf.length) {
      const nl = buf.indexOf(10, pos);
      if (nl < 0) {
        counts.bad++; // a truncated last record (crash, or a writer still at work)
        break;
      }
      if (nl === pos) {
        // empty line: the separator written after a torn record (see appendFd)
      } else if (this.parseLine(buf, pos, nl, counts)) counts.records++;
      else counts.bad++;
      pos = nl + 1;
    }
    return counts;
  }

  private parseLine(buf: Buffer, s: number, e: number, counts: ParseCounts): boolean {
    // "cccccccc " + 32 hex + " " + run digits + " " + 32 hex
    const runLen = e - s - (FIXED_LEN - 1);
    if (runLen < 1 || runLen > 10) return false;
    const k = e - 32; // start of the key digest
    if (buf[s + 8] !== 0x20 || buf[s + 41] !== 0x20 || buf[k - 1] !== 0x20) return false;
    let crc = 0;
    for (let i = s; i < s + 8; i++) {
      const v = hexVal(buf[i]!);
      if (v < 0) return false;
      crc = crc * 16 + v;
    }
    if (zlib.crc32(buf.subarray(s + 9, e)) !== crc) return false;
    for (let i = s + 9; i < s + 41; i++) if (hexVal(buf[i]!) < 0) return false;
    for (let i = k; i < e; i++) if (hexVal(buf[i]!) < 0) return false;
    let run = 0;
    for (let i = s + 42; i < k - 1; i++) {
      const c = buf[i]!;
      if (c < 0x30 || c > 0x39) return false;
      run = run * 10 + (c - 0x30);
    }
    if (run > 0xffffffff) return false;
    const slot = this.slotFor(buf.toString('latin1', k, e));
    for (let i = 0, o = slot * 16; i < 16; i++) {
      this.digests[o + i] = (hexVal(buf[s + 9 + 2 * i]!) << 4) | hexVal(buf[s + 10 + 2 * i]!);
    }
    if (run > this.runs[slot]!) this.runs[slot] = run;
    if (run > counts.maxRun) counts.maxRun = run;
    return true;
  }

  /** An append descriptor for the current log file (reopened if it was replaced). */
  private appendFd(file: string): number {
    if (this.fd !== undefined) {
      try {
        const a = fs.fstatSync(this.fd);
        const b = fs.statSync(file);
        if (a.ino === b.ino && a.dev === b.dev) return this.fd;
      } catch {
        // replaced or removed: reopen
      }
      try {
        fs.closeSync(this.fd);
      } catch {
        // ignore
      }
      this.fd = undefined;
    }
    const fd = fs.openSync(file, 'a+', 0o600);
    this.fd = fd;
    // A new file gets its header as its first write; if two processes race here, the
    // second header lands later in the file and is skipped there as a bad record.
    const size = fs.fstatSync(fd).size;
    if (size === 0) {
      fs.writeSync(fd, HEADER);
    } else {
      // A record torn by a crash has no newline; end it so that our first record is not
      // lost with it. (If another process appended meanwhile, this adds an empty line,
      // which readers skip.)
      const last = Buffer.alloc(1);
      if (fs.readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a) fs.writeSync(fd, '\n');
    }
    return fd;
  }

  private appendPending(): void {
    if (this.pending.length === 0 || !this.persistent || this.file === undefined) return;
    const lines = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    try {
      const fd = this.appendFd(this.file);
      let chunk = '';
      for (const line of lines) {
        if (chunk.length > 0 && chunk.length + line.length > APPEND_CHUNK) {
          writeAll(fd, chunk);
          chunk = '';
        }
        chunk += line;
      }
      if (chunk.length > 0) writeAll(fd, chunk);
      this.appendedRecords += lines.length;
      this.fileRecords += lines.length;
    } catch (err) {
      this.disable(err, 'cannot write');
    }
  }

  private acquireLock(lock: string): boolean {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = fs.openSync(lock, 'wx', 0o600);
        try {
          fs.writeSync(fd, `${process.pid}\n`);
        } finally {
          fs.closeSync(fd);
        }
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
        try {
          const st = fs.statSync(lock);
          if (Date.now() - st.mtimeMs < LOCK_STALE_MS) return false;
          fs.unlinkSync(lock); // left by a crashed process
        } catch {
          // vanished meanwhile: try again
        }
      }
    }
    return false;
  }

  /** Rewrites the file; false when another process holds the lock or on error. */
  private compact(): boolean {
    if (this.dir === undefined || this.file === undefined) return false;
    const lock = path.join(this.dir, LOCK_FILE);
    if (!this.acquireLock(lock)) return false;
    const tmp = `${this.file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      // Keep what other processes appended since we loaded the file.
      if (!this.rewriteNeeded) {
        let buf: Buffer | undefined;
        try {
          buf = fs.readFileSync(this.file);
        } catch {
          buf = undefined;
        }
        if (buf && buf.length >= HEADER.length && buf.toString('latin1', 0, HEADER.length) === HEADER) {
          this.parse(buf, HEADER.length);
        }
      }
      let keep: number[] = [];
      const oldest = this.run - this.maxRunsUnseen;
      for (const slot of this.map.values()) if (this.runs[slot]! >= oldest) keep.push(slot);
      if (keep.length > this.maxEntries) {
        keep.sort((a, b) => this.runs[b]! - this.runs[a]!);
        keep = keep.slice(0, Math.floor(this.maxEntries * 0.9));
      }
      const keys: string[] = new Array<string>(this.count);
      for (const [k, slot] of this.map) keys[slot] = k;
      const fd = fs.openSync(tmp, 'wx', 0o600);
      try {
        let chunk = HEADER;
        for (const slot of keep) {
          chunk += encodeRecord(this.hexAt(slot), this.runs[slot]!, keys[slot]!);
          if (chunk.length >= 1024 * 1024) {
            writeAll(fd, chunk);
            chunk = '';
          }
        }
        if (chunk.length > 0) writeAll(fd, chunk);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.file);
      this.pending = [];
      this.pendingBytes = 0;
      this.fileRecords = keep.length;
      this.rewriteNeeded = false;
      this.compactedThisRun = true;
      this.compactions++;
      return true;
    } catch (err) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // ignore
      }
      if (this.rewriteNeeded) this.disable(err, 'cannot rewrite');
      return false;
    } finally {
      try {
        fs.unlinkSync(lock);
      } catch {
        // ignore
      }
    }
  }
}
