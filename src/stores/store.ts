/**
 * The one small interface every kind of location implements (local directory, S3 bucket,
 * Hugging Face bucket). As in rclone's `fs.Features`: a store's facts are fields of one
 * `features` object (remote or local, mtime precision, the hashes it reports…), and an optional
 * operation (`copy`, `setMtime`, `localPath`…) is a method that is present or absent — never a
 * flag beside it. Callers ask the facts, never the kind.
 */
import type { Readable } from 'node:stream';
import type { FileEntry } from '../types.js';

/** A content hash a store can report without the client reading the bytes. */
export type HashKind = 'xxh128' | 'md5-etag' | 'xet';

/** What a store is, as facts (rclone's `Features` bools, `Precision()` and `Hashes()`). */
export interface StoreFeatures {
  /** A bucket reached over the network (false: a folder on this machine). */
  remote: boolean;
  /**
   * How exactly the store keeps an mtime, in ms: 0.001 keeps the plan's microseconds, 1 whole
   * milliseconds. Two sides' mtimes compare to the coarser of their precisions ({@link modifyWindow}).
   */
  mtimePrecisionMs: number;
  /**
   * The content hashes its listings report (`FileEntry.hash` for xxh128, `etag` for an MD5
   * ETag, `xetHash` for a Xet hash), for the files that have one. Empty: none.
   */
  hashes: ReadonlySet<HashKind>;
  /** A write's `TransferSource.hash` is kept with the file and listed later (S3's x-amz-meta-xxh128). */
  keepsWrittenHash: boolean;
  /** Writes can be made conditional on the destination's current version (If-None-Match / If-Match). */
  conditionalWrite: boolean;
  /**
   * Writes smaller than this many bytes that come without a `hash` get one from the store
   * itself, computed from the bytes it sends (S3: below the multipart threshold), so the
   * caller need not read the file a second time to hash it.
   */
  hashesWritesBelow?: number;
}

/** What the caller believes is at a path right now (from the plan). */
export type Expectation =
  | { kind: 'absent' }
  | { kind: 'version'; size?: number; mtimeMs?: number; etag?: string }
  | { kind: 'any' };

/** Where the bytes of a write come from. */
export interface TransferSource {
  size: number;
  mtimeMs: number;
  /** Absolute path when the source is a local file (lets stores use copy_file_range, ranged reads…). */
  localPath?: string;
  /** Opens the content (optionally a byte range, inclusive `end`). */
  open(range?: { start: number; end: number }): Promise<Readable>;
  /** Content hash, when known (`xxh128:<hex>`). */
  hash?: string;
  /**
   * Continues an interrupted read (a resumable download, see `Store.readFrom`): the bytes
   * from `offset` on, if the source is still the version that was being read; the returned
   * stream verifies the whole content, taking the first `offset` bytes from `prefixFile`.
   * Absent when the source cannot resume.
   */
  openFrom?(prefixFile: string, offset: number): Promise<Readable>;
  /** The source version `openFrom` continues (an S3 ETag): recorded beside a partial download. */
  version?: string;
  /**
   * Fetches the whole content into `file` (an existing temporary file) with concurrent ranged
   * reads, each part verified (see `Store.fetchInto`); undefined when the source declines
   * (then `open`/`openFrom` stream it). Absent when the source cannot.
   */
  fetchInto?(file: string | Buffer, progress: RangedProgress | undefined, opts: FetchIntoOptions): Promise<{ resumed: number } | undefined>;
}

/** What a destination knows of an interrupted ranged download: its part size and the parts written. */
export interface RangedProgress {
  partSize: number;
  done: number[];
}

export interface FetchIntoOptions {
  /** Called (one at a time) after each part is written, with every part written so far: record it to resume. */
  onPart: (p: RangedProgress) => Promise<void>;
  /** Bytes written as they arrive (progress); `skipped`: the parts an earlier attempt wrote, reported once at the start. */
  onBytes?: (n: number, skipped?: boolean) => void;
  signal?: AbortSignal;
}

export interface WriteOptions {
  /** The mtime to give the written file (ms). */
  mtimeMs: number;
  /** What must be at the destination path for the write to go ahead. */
  expect: Expectation;
  signal?: AbortSignal;
  /**
   * Called after the bytes are stored but before they become visible under the final
   * name (local: before the rename; S3 multipart: before Complete). Throwing aborts the
   * write and leaves the destination as it was: the executor uses it to refuse a source
   * that changed while it was being sent.
   */
  beforeCommit?: () => Promise<void>;
  /**
   * Called when a write that continued an interrupted transfer (an S3 multipart upload's
   * stored parts, a download's temporary file) has completed, with the bytes it did not
   * send or fetch again.
   */
  onResumed?: (bytes: number) => void;
  /**
   * Progress of a write, where the store can tell: called with each batch of content bytes sent
   * or fetched (`skipped`: taken from an interrupted transfer instead: an S3 upload's stored
   * parts, Azure's staged blocks, the xorbs the Xet CAS holds, a download's bytes on disk). The
   * one progress hook of every store (S3 parts and ranges, Azure blocks, hf xorbs, the local
   * store's streamed writes); the executor passes it to every write (docs/events.md, "Progress").
   */
  onBytes?: (n: number, skipped?: boolean) => void;
  /**
   * copy(): the version of the copy source the caller checked (the etag of its `stat()`): a
   * source replaced since fails the copy with `StaleError` instead of copying other bytes
   * under the destination's planned mtime (S3 and Azure; the copy itself is then pinned to it).
   */
  sourceEtag?: string;
}

/** What a read must get. */
export interface ReadOptions {
  /**
   * The version the caller checked: the `etag` of this path's `stat()` (an S3 or Azure ETag,
   * hf's Xet identity). The read returns exactly that version's bytes or throws `StaleError`:
   * S3 and Azure send `If-Match` with it on the GET (412: stale) and compare the answer's ETag
   * too; hf compares the Xet identity the path resolves to (the bytes are then fetched by that
   * content hash). A local store has no versions: it ignores it.
   */
  etag?: string;
}

export interface RemoveItem {
  path: string;
  expect: Expectation;
}

export interface RemoveResult {
  path: string;
  ok: boolean;
  /** The file changed since the plan (or vanished): left untouched. */
  stale?: boolean;
  error?: string;
}

export interface ListOptions {
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
  /** A hint: this listing runs beside another one; a store that can list off the main thread should. */
  inWorker?: boolean;
  /**
   * This is the destination's listing for a run that will execute (not `--dry-run`, not
   * `--plan`): a store may then remove its own provably dead temporary files. Never set otherwise.
   */
  executing?: boolean;
}

export interface Store {
  /** `local`, `s3` or `hf`. */
  readonly kind: string;
  /** The location as a user would write it (for messages). */
  readonly display: string;
  /** The store's facts; `features.remote` decides hf's upload/download wording. */
  readonly features: StoreFeatures;

  /**
   * The manifest: every file under the root, sorted by code point, in batches.
   * Anything under the root that cannot be listed, read or represented safely (an unreadable
   * folder, a special file, a symlinked folder, an unsafe key, a name the plan cannot hold) is
   * reported through `onWarning` AND yielded in its sorted place as a marker entry
   * (`skipped` set, see `SkippedEntry` in types.ts; `skippedEntry()` builds one): a folder that
   * could not be listed as `folder/` with `subtree: true`. Consumers that want files only must
   * drop entries with `skipped`.
   */
  list(opts?: ListOptions): AsyncIterable<FileEntry[]>;

  /** One file's current entry, or undefined when it does not exist. */
  stat(path: string): Promise<FileEntry | undefined>;

  /**
   * Why this store cannot hold a file at `path` under that very name (Azure drops a segment's
   * trailing `.`), or undefined. A sync into the store turns such source entries into skip
   * markers with a warning (src/sync/sync.ts), so two names never land on one.
   */
  nameProblem?(path: string): string | undefined;

  /**
   * Opens a file for reading (optionally a byte range, inclusive `end`). With `opts.etag` the
   * read is pinned to that version (see {@link ReadOptions}): another version fails it with
   * `StaleError` before any byte is handed on.
   */
  read(path: string, range?: { start: number; end: number }, opts?: ReadOptions): Promise<Readable>;

  /** Absolute local path of a file, for stores backed by the local file system. */
  localPath?(path: string): string;

  /**
   * Writes a file atomically: readers never see a partial file under its final name.
   * Throws `StaleError` when `opts.expect` no longer holds.
   */
  write(path: string, source: TransferSource, opts: WriteOptions): Promise<void>;

  /** Deletes files, each only if it still matches its expectation. */
  remove(items: RemoveItem[]): Promise<RemoveResult[]>;

  /** Server-side copy of `from` to `to`: the bytes do not pass through this machine. Absent: none. */
  copy?(from: string, to: string, opts: WriteOptions): Promise<void>;

  /** Changes only the mtime, without rewriting the content. Absent: cannot. */
  setMtime?(path: string, mtimeMs: number, expect: Expectation): Promise<void>;

  /**
   * Whether names that differ only by case are one file here (a local folder on macOS or
   * Windows). Absent: they are not. The executor then refuses case twins (src/executor/case-twins.ts).
   */
  caseInsensitive?(): Promise<boolean>;

  /**
   * On a case-insensitive store: the existing file or folder that `path` (or one of its
   * folders) would land on under another spelling — that spelling, e.g. `A/x.bin` for
   * `a/x.bin`, or `A` for `a/y` — or undefined when there is none.
   */
  caseTwin?(path: string): Promise<string | undefined>;

  /**
   * Whether this location, opened as a source, names one file rather than a folder (a bucket
   * prefix that is an object with nothing below `prefix/`). The sync then deletes nothing.
   */
  namesOneFile?(): Promise<boolean>;

  /**
   * Called once before a run writes to this destination: throws a set-up error (exit 2, one
   * line) when the credentials certainly cannot write (an hf read-only token), instead of
   * one failure per file. Problems it cannot decide are left to the writes.
   */
  checkWritable?(signal?: AbortSignal): Promise<void>;

  /**
   * Continues a download: the object's bytes from `offset` on if its ETag is still `etag`
   * (else `StaleError`), as a stream that fails at its end unless the first `offset` bytes,
   * read from `prefixFile`, and the rest together match the object's ETag.
   */
  readFrom?(path: string, etag: string, prefixFile: string, offset: number): Promise<Readable>;

  /**
   * A big download as concurrent ranged reads into `file` (a temporary file the destination
   * created), if the object's ETag is still `etag` (else `StaleError`): each part written by
   * position and checked, the whole verified against the ETag at the end (a mismatch is a
   * `RetryableError` with `corrupt` set). `progress` lists the parts an interrupted attempt
   * wrote to `file`: only the others are fetched. Resolves with the bytes not fetched again,
   * or undefined without touching `file` when the object cannot be fetched that way.
   */
  fetchInto?(path: string, etag: string, file: string | Buffer, progress: RangedProgress | undefined, opts: FetchIntoOptions): Promise<{ resumed: number } | undefined>;

  /**
   * Paths read in full so far whose content could not be verified against the store's own
   * identity (an S3 multipart ETag of another tool whose part size could not be told; kept
   * because two downloads agreed). For the run summary: "N files could not be verified".
   */
  unverifiedReads?(): readonly string[];

  /** Releases connections, flushes caches. */
  close(): Promise<void>;
}

// The store errors live with the one error base (src/errors.ts); re-exported for the stores.
export { isRetryable, RetryableError, StaleError } from '../errors.js';

/**
 * True when an expectation holds for an entry (or its absence). Mtimes compare to 1.5 µs, or
 * within `mtimePrecisionMs` when the entry's mtime is known only that coarsely.
 */
export function expectationHolds(expect: Expectation, entry: FileEntry | undefined, mtimePrecisionMs = 0): boolean {
  if (expect.kind === 'any') return true;
  if (expect.kind === 'absent') return entry === undefined;
  if (entry === undefined) return false;
  if (expect.size !== undefined && entry.size !== expect.size) return false;
  if (expect.etag !== undefined && entry.etag !== undefined && entry.etag !== expect.etag) return false;
  if (expect.mtimeMs !== undefined && !sameMtime(expect.mtimeMs, entry.mtimeMs, mtimePrecisionMs)) return false;
  return true;
}

/** Plan mtimes carry microseconds (as floats): no two mtimes compare finer than this. */
const INSTANT_MS = 0.0015;

/** Plan mtimes carry microseconds; two instants are the same when they agree to the microsecond. */
export function sameInstant(aMs: number, bMs: number): boolean {
  return sameMtime(aMs, bMs, 0);
}

/**
 * The tolerance for comparing an mtime of one store with one of another: the coarser of their
 * precisions (rclone's modify window). An mtime written to an hf bucket comes back in whole
 * milliseconds, so a local file and its hf copy agree to 1 ms, two local folders to 1 µs.
 */
export function modifyWindow(a: StoreFeatures, b: StoreFeatures): number {
  return Math.max(a.mtimePrecisionMs, b.mtimePrecisionMs);
}

/** Whether two mtimes are the same within `windowMs` (never finer than the plan's microseconds). */
export function sameMtime(aMs: number, bMs: number, windowMs: number): boolean {
  return Math.abs(aMs - bMs) < Math.max(windowMs, INSTANT_MS);
}
