/**
 * The persistent S3 metadata cache: what a HEAD told us about an object version, so a listing
 * doesn't need one HEAD per object to learn the `x-amz-meta-mtime` (listings don't carry user
 * metadata).
 *
 * A record says: the object `k` whose ETag is `e`, size `s` and (when known) listing
 * LastModified `l` (ms) has mtime `m` (ms) and stored content hash `h`. A record is only ever
 * used when ETag, size and — if recorded — LastModified all agree with the listing, so a stale,
 * lost or corrupt record costs a HEAD, never a wrong answer. LastModified is part of the key
 * because a metadata-only change (a self-copy that rewrites `mtime`, as rclone and our
 * `setMtime` do) keeps the ETag of a single-part object.
 *
 * One file per endpoint + bucket: `<dir>/<host>-<bucket>-<hash>.jsonl`:
 *
 *   [header line, exactly HEADER_BYTES long: {"bucketsync":"s3-meta","v":1,"id":…,"base":N}]
 *   [base: N bytes of records sorted by key (code-point order), one per key]
 *   [journal: records and tombstones ({"k":…,"x":1}) appended in any order, later lines win]
 *
 * - Appends use O_APPEND with one write per flush, each starting with "\n", so concurrent runs
 *   interleave whole lines and a torn line (crash) only spoils itself.
 * - Compaction merges base + journal into a new sorted base in a temp file and renames it over
 *   the old one (atomic). Appends that race with a compaction may be lost: that is a cache miss.
 * - A listing reads the journal into memory (it is kept small by compaction) and streams the
 *   base alongside the listing (both are sorted), so memory does not grow with the bucket.
 *   A journal that has grown past {@link JOURNAL_READ_MAX} anyway (a file without a valid
 *   header is all journal; runs killed before they compacted) is compacted first, and a
 *   compaction reads at most that much journal at a time: it merges the journal into the base
 *   in passes, each pass writing the new base followed by the journal it has not read yet.
 * - Anything unreadable (bad JSON, wrong header, keys out of order) is ignored, and the next
 *   compaction rewrites the file from what was readable.
 * - A record written right after our own write has no LastModified yet (RGW's PUT response
 *   has no Last-Modified header); it may carry the server-time window of that write (`w`),
 *   which lets the first listing prove the version is ours without a HEAD ({@link MetaScan.lookup}).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { compareCodePoints } from '../../manifest/order.js';
import { isRepresentableMtime } from '../common/mtime.js';

export interface MetaRecord {
  /** Object key. */
  k: string;
  /** ETag, quoted as S3 returns it. */
  e: string;
  /** Size in bytes. */
  s: number;
  /** Listing LastModified (ms), when known. */
  l?: number;
  /** mtime (ms). */
  m: number;
  /** Stored content hash (`xxh128:<hex>`), when the object carries one. */
  h?: string;
  /**
   * For a record written right after our own write (no LastModified yet): the server-time
   * window `[from, to)` (ms, from the `Date` headers of our write's responses) that our
   * write's LastModified lies in. A listing's LastModified inside it proves the listed
   * version is ours; see {@link MetaScan.lookup}.
   */
  w?: [number, number];
}

interface Tombstone {
  k: string;
  x: 1;
}

type JournalEntry = MetaRecord | Tombstone;

/** Cache files are private to their user: they hold the object keys of private buckets. */
const FILE_MODE = 0o600;
const HEADER_BYTES = 256;
const FORMAT = 's3-meta';
const VERSION = 1;
/** Flush pending records to the file after this many. */
const FLUSH_EVERY = 512;
/**
 * Optional records ({@link MetaCache.refine}) are dropped while this many records wait to be
 * written. They arrive at listing speed (every object of a bucket bucketsync has just
 * uploaded lacks its LastModified), faster than compactions of a million-record file free the
 * queue: kept all, they took a no-op run against 1,000,000 objects past 2 GB. A dropped one
 * only means the next run adds it.
 */
const OPTIONAL_PENDING_MAX = 16_384;
/** Compact when the journal reaches this size… */
const JOURNAL_MAX_BYTES = 8 * 1024 * 1024;
/** …or this size and at least 1/16 of the base. */
const JOURNAL_MIN_BYTES = 64 * 1024;
/**
 * At most this much journal is held in memory at once (~5 bytes of heap per byte of journal:
 * 16 MB ≈ 70,000 records ≈ 80 MB). Without it, a 1,000,000-record file that lost its header
 * would be read whole (a 171 MB file: a run at 326 MB with this limit, measured).
 */
const JOURNAL_READ_MAX = 16 * 1024 * 1024;

export interface MetaCacheOptions {
  /** Journal bytes held in memory at once (default {@link JOURNAL_READ_MAX}; tests use less). */
  journalReadMax?: number;
}

function isTombstone(e: JournalEntry): e is Tombstone {
  return (e as Tombstone).x === 1;
}

function parseEntry(line: string): JournalEntry | undefined {
  if (line.length < 8) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  if (typeof r.k !== 'string' || r.k === '') return undefined;
  if (r.x === 1) return { k: r.k, x: 1 };
  if (typeof r.e !== 'string' || typeof r.s !== 'number' || typeof r.m !== 'number') return undefined;
  if (!isRepresentableMtime(r.m) || !Number.isSafeInteger(r.s) || r.s < 0) return undefined;
  const rec: MetaRecord = { k: r.k, e: r.e, s: r.s, m: r.m };
  if (typeof r.l === 'number' && Number.isFinite(r.l)) rec.l = r.l;
  if (typeof r.h === 'string') rec.h = r.h;
  const w = validWindow(r.w);
  if (w) rec.w = w;
  return rec;
}

/** A write window as recorded: two finite numbers, in order (anything else: no window). */
function validWindow(v: unknown): [number, number] | undefined {
  if (!Array.isArray(v) || v.length !== 2) return undefined;
  const [from, to] = v as unknown[];
  if (typeof from !== 'number' || typeof to !== 'number' || !Number.isFinite(from) || !Number.isFinite(to) || from > to) return undefined;
  return [from, to];
}

function serialize(e: JournalEntry): string {
  return JSON.stringify(e);
}

interface FileLayout {
  /** Byte offset where the base starts (0 when there is no valid header). */
  baseStart: number;
  /** Byte offset where the journal starts. */
  baseEnd: number;
  size: number;
}

export class MetaCache {
  private pending: string[] = [];
  private chain: Promise<void> = Promise.resolve();
  private disabled: boolean;
  private dirReady = false;
  /** Journal bytes appended by us since the layout was last looked at. */
  private appendedBytes = 0;
  /** Refining records dropped so far ({@link refine}). */
  dropped = 0;
  private readonly id: string;
  private readonly journalReadMax: number;

  private constructor(
    readonly file: string | null,
    ident: string,
    private readonly warn: (m: string) => void,
    opts: MetaCacheOptions,
  ) {
    this.journalReadMax = opts.journalReadMax ?? JOURNAL_READ_MAX;
    this.disabled = file === null;
    this.id = createHash('sha256').update(ident).digest('hex').slice(0, 32);
  }

  /** The cache for one endpoint + bucket; `dir` null disables it (every lookup misses). */
  static open(dir: string | null, endpointId: string, bucket: string, warn: (m: string) => void, opts: MetaCacheOptions = {}): MetaCache {
    const ident = `${endpointId}\n${bucket}`;
    if (dir === null) return new MetaCache(null, ident, warn, opts);
    let host = endpointId;
    try {
      host = new URL(endpointId).host;
    } catch {
      // 'aws' and the like
    }
    const slug = `${host}-${bucket}`.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 120);
    const hash = createHash('sha256').update(ident).digest('hex').slice(0, 12);
    return new MetaCache(path.join(dir, `${slug}-${hash}.jsonl`), ident, warn, opts);
  }

  get enabled(): boolean {
    return !this.disabled;
  }

  /** Remembers what we know about an object version (written to the file on the next flush). */
  put(rec: MetaRecord): void {
    if (this.disabled) return;
    const out: MetaRecord = { k: rec.k, e: rec.e, s: rec.s, m: rec.m };
    if (rec.l !== undefined) out.l = rec.l;
    if (rec.h !== undefined) out.h = rec.h;
    if (rec.l === undefined && rec.w !== undefined) {
      const w = validWindow(rec.w);
      if (w) out.w = w;
    }
    this.pending.push(serialize(out));
    if (this.pending.length >= FLUSH_EVERY) void this.flush();
  }

  /**
   * Like {@link put}, for a record that only refines one the cache already has (adds the
   * LastModified a listing saw): dropped when writing is behind (see OPTIONAL_PENDING_MAX).
   */
  refine(rec: MetaRecord): void {
    if (this.pending.length >= OPTIONAL_PENDING_MAX) {
      this.dropped++;
      return;
    }
    this.put(rec);
  }

  /** Forgets an object (deleted). */
  forget(key: string): void {
    if (this.disabled) return;
    this.pending.push(serialize({ k: key, x: 1 }));
    if (this.pending.length >= FLUSH_EVERY) void this.flush();
  }

  /** Appends pending records to the file (serialised with every other file operation). */
  flush(): Promise<void> {
    return this.serial(() => this.flushNow());
  }

  /** Starts a sorted scan for a listing: flushes, loads the journal, opens the base. */
  async openScan(): Promise<MetaScan> {
    if (this.disabled || this.file === null) return MetaScan.empty();
    let scan: MetaScan = MetaScan.empty();
    await this.serial(async () => {
      await this.flushNow();
      let layout = await this.readLayout();
      if (!layout) return;
      if (layout.size - layout.baseEnd > this.journalReadMax) {
        await this.maybeCompact(true);
        layout = await this.readLayout();
        if (!layout || layout.size - layout.baseEnd > this.journalReadMax) return; // still too big (concurrent appends): no cache this run
      }
      const { journal } = await this.readJournal(layout, Number.POSITIVE_INFINITY);
      scan = new MetaScan(this.file!, layout, journal);
    });
    return scan;
  }

  /** Flushes, and compacts the file when its journal has grown. */
  close(): Promise<void> {
    return this.serial(async () => {
      await this.flushNow();
      await this.maybeCompact(false);
    });
  }

  /** Merges the journal into the base now (tests; `close()` does it when worthwhile). */
  compact(): Promise<void> {
    return this.serial(async () => {
      await this.flushNow();
      await this.maybeCompact(true);
    });
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private fail(err: unknown): void {
    if (this.disabled) return;
    this.disabled = true;
    this.pending = [];
    this.warn(`S3 metadata cache ${this.file} disabled for this run: ${(err as Error).message ?? String(err)}`);
  }

  /**
   * Creates the cache folder (0700: records name the objects of private buckets) and makes
   * an existing cache file private (0600) if an older version left it readable to others.
   */
  private async ensureDir(): Promise<void> {
    if (this.dirReady) return;
    await fs.mkdir(path.dirname(this.file!), { recursive: true, mode: 0o700 });
    try {
      const st = await fs.stat(this.file!);
      if ((st.mode & 0o077) !== 0) await fs.chmod(this.file!, st.mode & 0o700);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.dirReady = true;
  }

  private async flushNow(): Promise<void> {
    if (this.disabled || this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    const text = `\n${lines.join('\n')}\n`;
    try {
      await this.ensureDir();
      await fs.appendFile(this.file!, text, { mode: FILE_MODE });
      this.appendedBytes += Buffer.byteLength(text);
      if (this.appendedBytes >= JOURNAL_MAX_BYTES) await this.maybeCompact(false);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Where base and journal are in the current file; undefined when there is no file. */
  private async readLayout(): Promise<FileLayout | undefined> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(this.file!, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      this.fail(err);
      return undefined;
    }
    try {
      const { size } = await fh.stat();
      const buf = Buffer.alloc(Math.min(HEADER_BYTES, size));
      await fh.read(buf, 0, buf.length, 0);
      return this.parseLayout(buf, size);
    } finally {
      await fh.close();
    }
  }

  private parseLayout(head: Buffer, size: number): FileLayout {
    const noBase: FileLayout = { baseStart: 0, baseEnd: 0, size };
    if (head.length < HEADER_BYTES || head[HEADER_BYTES - 1] !== 0x0a) return noBase;
    let h: Record<string, unknown>;
    try {
      h = JSON.parse(head.toString('utf8')) as Record<string, unknown>;
    } catch {
      return noBase;
    }
    if (h.bucketsync !== FORMAT || h.v !== VERSION || typeof h.base !== 'number') return noBase;
    // Another endpoint/bucket's file under our name (hash collision or a copied file): skip all.
    if (h.id !== this.id) return { baseStart: size, baseEnd: size, size };
    const baseEnd = HEADER_BYTES + h.base;
    if (!Number.isSafeInteger(baseEnd) || baseEnd > size) return { baseStart: size, baseEnd: size, size };
    return { baseStart: HEADER_BYTES, baseEnd, size };
  }

  /**
   * The journal's entries (later lines win), reading at most `maxBytes` of it (whole lines);
   * `end` is the file offset where reading stopped.
   */
  private async readJournal(layout: FileLayout, maxBytes: number): Promise<{ journal: Map<string, JournalEntry>; end: number }> {
    const map = new Map<string, JournalEntry>();
    let len = layout.size - layout.baseEnd;
    if (len <= 0) return { journal: map, end: layout.size };
    const partial = len > maxBytes;
    if (partial) len = maxBytes;
    const fh = await fs.open(this.file!, 'r');
    let end = layout.baseEnd;
    try {
      const buf = Buffer.alloc(len);
      const { bytesRead } = await fh.read(buf, 0, len, layout.baseEnd);
      let used = bytesRead;
      if (partial) {
        // Stop at the last whole line (a line longer than the window is skipped as garbage).
        const nl = buf.lastIndexOf(0x0a, bytesRead - 1);
        used = nl >= 0 ? nl + 1 : bytesRead;
      }
      end += used;
      for (const line of buf.subarray(0, used).toString('utf8').split('\n')) {
        const e = parseEntry(line);
        if (e) map.set(e.k, e);
      }
    } finally {
      await fh.close();
    }
    return { journal: map, end: partial ? end : layout.size };
  }

  private async maybeCompact(force: boolean): Promise<void> {
    if (this.disabled || this.file === null) return;
    try {
      const layout = await this.readLayout();
      this.appendedBytes = 0;
      if (!layout) return;
      const journalBytes = layout.size - layout.baseEnd;
      const baseBytes = layout.baseEnd - layout.baseStart;
      const hasHeader = layout.baseStart === HEADER_BYTES;
      const worth =
        journalBytes >= JOURNAL_MAX_BYTES ||
        (journalBytes >= JOURNAL_MIN_BYTES && journalBytes * 16 >= baseBytes) ||
        (!hasHeader && layout.size > 0 && journalBytes >= JOURNAL_MIN_BYTES);
      if (!force && !worth) return;
      // One pass per JOURNAL_READ_MAX of journal (one pass in all but damaged or huge files).
      let current: FileLayout | undefined = layout;
      while (current) {
        const rest = await this.rewrite(current);
        current = rest > 0 ? await this.readLayout() : undefined;
      }
    } catch (err) {
      this.fail(err);
    }
  }

  /** Removes temp files of compactions that died (killed mid-way) more than a day ago. */
  private async sweepStaleTemps(): Promise<void> {
    const dir = path.dirname(this.file!);
    const prefix = `${path.basename(this.file!)}.`;
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return;
    }
    const now = Date.now();
    for (const name of names) {
      if (!name.startsWith(prefix) || !/^\d+\.[0-9a-f]+\.tmp$/.test(name.slice(prefix.length))) continue;
      const p = path.join(dir, name);
      try {
        if (now - (await fs.stat(p)).mtimeMs > STALE_TEMP_MS) await fs.rm(p, { force: true });
      } catch {
        // gone already, or not ours to remove
      }
    }
  }

  /**
   * Writes base + (up to JOURNAL_READ_MAX of) journal as a new sorted base, followed by the
   * journal not read yet (temp file, then atomic rename). Returns that unread journal's size.
   */
  private async rewrite(layout: FileLayout): Promise<number> {
    await this.sweepStaleTemps();
    const { journal, end } = await this.readJournal(layout, this.journalReadMax);
    const keys = [...journal.keys()].sort(compareCodePoints);
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const out = await fs.open(tmp, 'w', FILE_MODE);
    let ok = false;
    try {
      let pos = HEADER_BYTES;
      let buffered: string[] = [];
      let bufferedBytes = 0;
      const emit = async (rec: MetaRecord): Promise<void> => {
        const line = `${serialize(rec)}\n`;
        buffered.push(line);
        bufferedBytes += Buffer.byteLength(line);
        if (bufferedBytes >= 1 << 20) await drain();
      };
      const drain = async (): Promise<void> => {
        if (buffered.length === 0) return;
        const b = Buffer.from(buffered.join(''));
        buffered = [];
        bufferedBytes = 0;
        await out.write(b, 0, b.length, pos);
        pos += b.length;
      };

      let ji = 0;
      const base = baseRecords(this.file!, layout);
      for await (const rec of base) {
        while (ji < keys.length && compareCodePoints(keys[ji]!, rec.k) < 0) {
          const j = journal.get(keys[ji++]!)!;
          if (!isTombstone(j)) await emit(j);
        }
        if (ji < keys.length && keys[ji] === rec.k) {
          const j = journal.get(keys[ji++]!)!;
          if (!isTombstone(j)) await emit(j);
          continue;
        }
        await emit(rec);
      }
      while (ji < keys.length) {
        const j = journal.get(keys[ji++]!)!;
        if (!isTombstone(j)) await emit(j);
      }
      await drain();
      const header = JSON.stringify({ bucketsync: FORMAT, v: VERSION, id: this.id, base: pos - HEADER_BYTES });
      const headerBuf = Buffer.from(header.padEnd(HEADER_BYTES - 1, ' ') + '\n');
      if (headerBuf.length !== HEADER_BYTES) throw new Error('cache header too long');
      await out.write(headerBuf, 0, HEADER_BYTES, 0);
      // The journal this pass did not read, as it was (the next pass merges it).
      if (end < layout.size) await copyRange(this.file!, end, layout.size, out, pos);
      ok = true;
    } finally {
      await out.close();
      if (!ok) await fs.rm(tmp, { force: true });
    }
    await fs.rename(tmp, this.file!);
    return layout.size - end;
  }
}

/** A compaction's temp file older than this was left by a run that died (a rewrite takes seconds). */
const STALE_TEMP_MS = 24 * 60 * 60 * 1000;

/** Copies bytes [start, end) of `file` to `out` at offset `at`, 1 MiB at a time. */
async function copyRange(file: string, start: number, end: number, out: fs.FileHandle, at: number): Promise<void> {
  const src = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    let from = start;
    let to = at;
    while (from < end) {
      const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, end - from), from);
      if (bytesRead === 0) break;
      await out.write(buf, 0, bytesRead, to);
      from += bytesRead;
      to += bytesRead;
    }
  } finally {
    await src.close();
  }
}

/** Streams the valid, strictly increasing records of the base section. */
async function* baseRecords(file: string, layout: FileLayout): AsyncGenerator<MetaRecord> {
  if (layout.baseEnd <= layout.baseStart) return;
  const stream = createReadStream(file, { start: layout.baseStart, end: layout.baseEnd - 1, encoding: 'utf8' });
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let last: string | undefined;
  try {
    for await (const line of rl) {
      const e = parseEntry(line);
      if (!e || isTombstone(e)) continue;
      // Out of order = damaged: stop trusting the rest (it will be rebuilt from listings).
      if (last !== undefined && compareCodePoints(e.k, last) <= 0) return;
      last = e.k;
      yield e;
    }
  } catch {
    // unreadable: treat the rest as absent
  } finally {
    rl.close();
    stream.destroy();
  }
}

/** Lookups for one listing, in ascending key order. */
export class MetaScan {
  private base: AsyncGenerator<MetaRecord> | undefined;
  private current: MetaRecord | undefined;
  private exhausted = false;

  constructor(
    file: string | null,
    layout: FileLayout | undefined,
    private readonly journal: Map<string, JournalEntry>,
  ) {
    if (file !== null && layout) this.base = baseRecords(file, layout);
    else this.exhausted = true;
  }

  static empty(): MetaScan {
    return new MetaScan(null, undefined, new Map());
  }

  /**
   * The record for this object version, if the cache has one. Keys must be asked for in
   * ascending order (a key lower than the previous one only consults the journal).
   * `needsLastModified` is true when the record matched without a recorded LastModified: it
   * is then NOT an answer (same bytes re-PUT by another tool keep ETag and size but carry
   * another mtime) — the caller must HEAD the object, and may keep the record's hash only
   * when that HEAD shows the record's ETag.
   *
   * The exception: a record of our own write that carries its server-time window (`w`), when
   * the listing's LastModified lies inside that window. That version was written during our
   * write (between our request's arrival and its response, in the server's clock), so it is
   * ours: the record is an answer, and `provenLastModified` is the LastModified the caller
   * should now record with it (`refine`). A LastModified after the window (another tool's
   * re-PUT or self-copy since) still needs the HEAD.
   */
  async lookup(
    key: string,
    etag: string,
    size: number,
    lastModifiedMs: number | undefined,
  ): Promise<{ rec: MetaRecord; needsLastModified: boolean; provenLastModified?: number } | undefined> {
    const fromBase = await this.advance(key);
    const j = this.journal.get(key);
    const candidates: MetaRecord[] = [];
    if (j && !isTombstone(j)) candidates.push(j);
    if (fromBase && !(j && isTombstone(j))) candidates.push(fromBase);
    for (const rec of candidates) {
      if (rec.e !== etag || rec.s !== size) continue;
      if (rec.l !== undefined) {
        if (lastModifiedMs === undefined || rec.l !== lastModifiedMs) continue;
        return { rec, needsLastModified: false };
      }
      if (lastModifiedMs !== undefined && rec.w !== undefined && lastModifiedMs >= rec.w[0] && lastModifiedMs < rec.w[1]) {
        return { rec, needsLastModified: false, provenLastModified: lastModifiedMs };
      }
      return { rec, needsLastModified: lastModifiedMs !== undefined };
    }
    return undefined;
  }

  private async advance(key: string): Promise<MetaRecord | undefined> {
    while (!this.exhausted && (this.current === undefined || compareCodePoints(this.current.k, key) < 0)) {
      const next = await this.base!.next();
      if (next.done) {
        this.exhausted = true;
        this.current = undefined;
        break;
      }
      this.current = next.value;
    }
    return this.current !== undefined && this.current.k === key ? this.current : undefined;
  }

  async close(): Promise<void> {
    if (this.base) await this.base.return(undefined);
    this.exhausted = true;
  }
}
