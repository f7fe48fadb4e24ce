/**
 * The domain model shared by every part of bucketsync: what a file looks like in a
 * manifest, what an operation in a plan is, and the options that steer planning.
 */

/** One file of a manifest (one side of a sync), relative to that side's root. */
export interface FileEntry {
  /** Relative path, `/`-separated, no leading `/`, never `.` or `..` segments. */
  path: string;
  /** Size in bytes. */
  size: number;
  /**
   * Modification time in milliseconds since the epoch, with sub-millisecond precision
   * (exactly what Python's `os.stat().st_mtime * 1000` gives, as hf computes it).
   */
  mtimeMs: number;
  /** Store-specific version identity (S3 ETag), used for conditional writes. */
  etag?: string;
  /** Content hash when the store knows it without reading the bytes (for example `xxh128:…`). */
  hash?: string;
  /** Hugging Face Xet file hash, when listed from an hf bucket. */
  xetHash?: string;
  /**
   * Set on a marker entry that is not a file: something under the root that the store could
   * not list, read or represent (an unreadable folder, a special file, a key that is not a
   * safe path…). See {@link SkippedEntry}.
   */
  skipped?: SkipInfo;
}

/** Why a listing could not offer an entry as a file. */
export interface SkipInfo {
  /** One line for the user, e.g. `cannot read directory: permission denied`. */
  reason: string;
  /**
   * The marker stands for everything below a folder (its `path` is the folder's path with a
   * trailing `/`, which sorts just before everything the folder could hold): the listing does
   * not know what is there.
   */
  subtree?: boolean;
}

/**
 * A marker in a manifest: listings yield it in sorted position (by `path`) wherever they
 * skip something, so that the planner, which sees both sides in order, never deletes at the
 * destination what the source could not show (rsync's "IO error encountered -- skipping file
 * deletion", made precise). `size` and `mtimeMs` are 0 and mean nothing.
 */
export type SkippedEntry = FileEntry & { skipped: SkipInfo };

/** A marker for `path` (a file path, or a folder path with `subtree`). */
export function skippedEntry(path: string, reason: string, subtree = false): SkippedEntry {
  // The root itself (path '') stays '': it sorts before everything it stands for.
  return { path: subtree && path !== '' && !path.endsWith('/') ? `${path}/` : path, size: 0, mtimeMs: 0, skipped: subtree ? { reason, subtree } : { reason } };
}

export type Action = 'upload' | 'download' | 'delete' | 'skip';

export const ACTIONS: readonly Action[] = ['upload', 'download', 'delete', 'skip'];

/** Every reason string hf writes (spec §2.4), plus bucketsync's own. */
export const REASONS = {
  newFile: 'new file',
  newFileExisting: 'new file (--existing)',
  existsIgnoreExisting: 'exists on receiver (--ignore-existing)',
  sizeDiffers: 'size differs',
  localNewer: 'local newer',
  remoteNewer: 'remote newer',
  sameMtime: 'same mtime',
  sameSize: 'same size',
  identical: 'identical',
  notInSource: 'not in source (--delete)',
  /** bucketsync (dedup): content identical, only the mtime differs; the executor updates only the mtime. */
  sameContentMtimeDiffers: 'same content, mtime differs',
  /** bucketsync (--checksum): same size and same content hash. */
  sameChecksum: 'same checksum',
  /** bucketsync (--checksum): same size, different content hash. */
  checksumDiffers: 'checksum differs',
  /**
   * bucketsync: with --delete, a destination file that the source could not show (it lies
   * under a source folder that could not be listed, or the source entry at that path could not
   * be read): not deleted.
   */
  sourceUnreadable: 'source unreadable (not deleted)',
  /** bucketsync: the destination entry at this path could not be read or is not a file: not overwritten. */
  destUnreadable: 'destination unreadable (not overwritten)',
} as const;

/**
 * One operation of a plan. Mtimes are in milliseconds (float, microsecond precision once
 * they have been through a plan file). "local" and "remote" follow hf: the destination is
 * the "remote" side unless the sync is a download (remote source, local destination).
 */
export interface Operation {
  action: Action;
  path: string;
  reason: string;
  /** Source size for transfers and skips; the deleted file's size for deletes. */
  size?: number;
  localMtime?: number;
  remoteMtime?: number;
  /** bucketsync extra: the destination file's size when it existed at plan time. */
  destSize?: number;
  /** bucketsync extra: the destination object's ETag at plan time (S3), for If-Match. */
  destEtag?: string;
  /** bucketsync extra: content hash of the source (`xxh128:<hex>`), when computed. */
  hash?: string;
  /** bucketsync extra: an earlier path in the plan (or on the destination) with the same content. */
  copyFrom?: string;
  /**
   * bucketsync (dedup): the content is already at the destination, only its mtime differs;
   * the executor updates the mtime instead of sending the bytes. Plan files mark such an
   * operation by its reason ({@link REASONS.sameContentMtimeDiffers}); see {@link isMtimeOnly}.
   */
  mtimeOnly?: boolean;
  /**
   * bucketsync internal (not written to plans): the destination's content hash at plan time,
   * when its store knew it (`xxh128:…` from S3 metadata, `xet:…` from an hf listing).
   */
  destHash?: string;
  /** bucketsync internal (not written to plans): the source's content hash at plan time, when its store knew it. */
  sourceHash?: string;
  /** bucketsync internal (not written to plans): the source object's ETag at plan time (S3 MD5 for --checksum on downloads). */
  sourceEtag?: string;
}

/**
 * The smallest upload that dedup-by-default (bucket destinations, no `--dedup`) hashes for
 * in-plan dedup: below it a server-side copy saves little (it is a request like the upload),
 * while hashing every small file of a million-file initial upload at plan time would turn a
 * `--dry-run` into reading the whole tree.
 */
export const AUTO_DEDUP_MIN_SIZE = 1024 * 1024;

/** The prefix of a Xet content identity in plans and comparisons: `xet:<64 hex>`. */
export const XET_PREFIX = 'xet:';
const XET_RE = /^xet:[0-9a-f]{64}$/;

/** True for a well-formed `xet:<64 lowercase hex>`. */
export function isXetHash(s: string): boolean {
  return XET_RE.test(s);
}

/** hf's `xetHash` (64 hex) as a content identity (`xet:<hex>`), or undefined when it is not one. */
export function xetIdentity(xetHash: string | undefined): string | undefined {
  if (xetHash === undefined) return undefined;
  const id = XET_PREFIX + xetHash.toLowerCase();
  return isXetHash(id) ? id : undefined;
}

/** What a store knows of an entry's content without reading it: its `hash`, or its Xet hash. */
export function knownContentHash(e: FileEntry): string | undefined {
  return e.hash ?? xetIdentity(e.xetHash);
}

/** Whether an operation only updates the destination's mtime (content already identical). */
export function isMtimeOnly(op: Operation): boolean {
  return op.action !== 'delete' && op.action !== 'skip' && op.hash !== undefined && (op.mtimeOnly === true || op.reason === REASONS.sameContentMtimeDiffers);
}

/** Which way bytes flow, in hf's words. */
export type Direction = 'upload' | 'download';

export interface CompareOptions {
  delete: boolean;
  ignoreTimes: boolean;
  ignoreSizes: boolean;
  existing: boolean;
  ignoreExisting: boolean;
}

export const DEFAULT_COMPARE_OPTIONS: CompareOptions = {
  delete: false,
  ignoreTimes: false,
  ignoreSizes: false,
  existing: false,
  ignoreExisting: false,
};

/** hf's comparison window: a side is "newer" only when it is more than this many ms ahead. */
export const SYNC_TIME_WINDOW_MS = 1000;

/** Counts in hf's key order (`plan.summary()`). */
export interface PlanSummary {
  uploads: number;
  downloads: number;
  deletes: number;
  skips: number;
  total_size: number;
}

/** The first line of a plan file. */
export interface PlanHeader {
  source: string;
  dest: string;
  /** ISO-8601 with `+00:00`, as hf writes it. */
  timestamp: string;
  summary: PlanSummary;
  /** bucketsync extras (absent in plans written by hf). */
  formatVersion?: number;
  sourceResolved?: string;
  destResolved?: string;
  options?: Partial<CompareOptions>;
  filters?: FilterSpec;
  /** The content-hash flags the plan was made with (`content_options`; only when one was given). */
  contentOptions?: ContentOptions;
}

/** `--dedup`, `--checksum`, `--track-renames` as a plan header records them. */
export interface ContentOptions {
  dedup?: boolean;
  checksum?: boolean;
  trackRenames?: boolean;
}

/** The filter rules a plan was made with, as the user gave them. */
export interface FilterSpec {
  include: string[];
  exclude: string[];
  /** The rules read from `--filter-from`, in file order. */
  rules: FilterRule[];
  filterFrom?: string;
}

export interface FilterRule {
  sign: '+' | '-';
  pattern: string;
}

// Moved to the one error base; re-exported so that its importers keep compiling.
export { UsageError } from './errors.js';
