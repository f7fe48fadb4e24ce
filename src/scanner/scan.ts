/**
 * The local scanner: walks a directory tree and yields its manifest (relative path, size,
 * mtime) in code-point order, in batches. It never reads file contents.
 *
 * Synchronous `readdirSync`/`statSync` in a tight loop is several times faster than
 * promise-per-file stat through the libuv pool on small machines (deps.md §1.4), so the
 * walk is a synchronous generator; callers consume it batch by batch.
 *
 * Order: inside a directory, entries are sorted by name, with a directory's key being
 * `name + "/"`. Every path below directory `d` starts with `d/`, so a depth-first walk in
 * that order yields the whole tree in global code-point order.
 *
 * Memory: a directory is read whole and sorted in memory while it is small (the fast path).
 * A directory whose st_size marks it as big is read entry by entry instead, and once the
 * entries held by the directories on the walk's stack pass the spill limit (100,000 by
 * default), its listing goes to sorted runs on disk, merged as the walk proceeds
 * (./spill.ts). So a flat directory of millions of files is listed in bounded memory.
 *
 * Symlinks to files are followed; symlinked directories are not descended (hf's
 * behaviour). With `followLinks: false` (a destination) every link is listed as itself.
 *
 * Skips (issue 13): whatever cannot be offered as a file is reported as a warning naming the
 * path AND yielded as a skip marker (`skippedEntry`, src/types.ts) in its sorted place: an
 * unreadable folder or a link to a folder as `folder/` (a subtree marker, sorted where the
 * folder's contents would be), an entry that cannot be stat'ed, vanished, a broken link, a
 * special file (fifo, socket, device) or a name with a backslash as itself. The planner
 * never deletes at the destination what a source marker could hide. The root itself being
 * unreadable is an error (nothing could be compared).
 *
 * Names are bytes: a name that is not valid UTF-8 is kept byte-exact as lone surrogates
 * (./names.ts), and the directory holding it is read again with byte names (only then).
 * Temporary files: only names of bucketsync's exact temporary shape are left out (and
 * reported through `onTempFile`); any other name is data.
 */
import nodeFs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { statMtimeMs } from '../plan/time.js';
import { skippedEntry, type FileEntry } from '../types.js';
import { TEMP_PREFIX, decodeName, displayName, fsPath, hasEscapedBytes, isTempName } from './names.js';
import { ArraySource, BAD, BADDIR, DIR, DIRLINK, EntryCollector, FILE, LINK, OTHER, SpillDir, TEMPNAME, nameOf, type EntrySource } from './spill.js';

/** The part of `node:fs` the scanner uses (memfs provides the same, for tests). */
export interface ScanFs {
  readdirSync(p: string | Buffer, opts: { withFileTypes: true }): nodeFs.Dirent[];
  statSync(p: string | Buffer, opts: { bigint: true; throwIfNoEntry: false }): nodeFs.BigIntStats | undefined;
  statSync(p: string | Buffer, opts: { throwIfNoEntry: false }): nodeFs.Stats | undefined;
  /** Tells what an entry is when the directory listing does not, and lists links themselves (optional). */
  lstatSync?(p: string | Buffer, opts: { bigint: true; throwIfNoEntry: false }): nodeFs.BigIntStats | undefined;
  lstatSync?(p: string | Buffer, opts: { throwIfNoEntry: false }): nodeFs.Stats | undefined;
  /** Reads big directories incrementally; without it every directory is read whole. */
  opendirSync?(p: string | Buffer, opts: { bufferSize: number }): { readSync(): nodeFs.Dirent<string | Buffer> | null; closeSync(): void };
}

/** Temporary names (./names.ts): only names of exactly bucketsync's shape are left out of manifests. */
export { TEMP_PREFIX, isTempName, parseTempName, tempNameFor } from './names.js';

/**
 * Entries per yielded batch. Small on purpose: what a batch holds is alive when V8's young
 * generation is collected, and the more survives, the more V8 grows it (measured on the
 * 100,000-file no-op: 2048 grew the main thread's young generation to 32 MB and the peak RSS
 * to 137 MB; 512 keeps it at 16 MB and 109 MB, at the same CPU time).
 */
export const DEFAULT_BATCH_ENTRIES = 512;

/** Entries of one directory held in memory before they spill to sorted runs on disk. */
export const DEFAULT_SPILL_ENTRIES = 100_000;
/** Directories at least this big (st_size) are read incrementally rather than whole. */
export const DEFAULT_STREAM_DIR_BYTES = 64 * 1024;
/** Entries a directory may always hold in memory, whatever its ancestors hold. */
const MIN_DIR_BUDGET = 4096;

export interface ScanOptions {
  fs?: ScanFs;
  /** Entries per yielded batch. */
  batchSize?: number;
  onWarning?: (message: string) => void;
  /** Called for each leftover temporary file found (absolute path). */
  onTempFile?: (absPath: string) => void;
  /** Keep device and inode numbers (for the hash cache). */
  withIdentity?: boolean;
  /**
   * Symbolic links (default true): a link to a file is listed as that file, a link to a
   * folder is a subtree marker. False (a destination): every link is listed as itself, a
   * file with the link's own size and mtime, so that nothing is read, re-stamped or deleted
   * through it, a transfer replaces the link itself, and a delete removes only the link.
   */
  followLinks?: boolean;
  /**
   * Directory entries held in memory across the walk before a directory's listing spills
   * to sorted runs on disk (default: env BUCKETSYNC_SCAN_SPILL_ENTRIES, else 100,000).
   */
  spillEntries?: number;
  /** Directories whose st_size is at least this are read incrementally (default 64 KiB, less with a small spill limit). */
  streamDirBytes?: number;
  /** Where to put spill runs (created when needed; removed at the end). Default: a fresh directory in the system temp dir. */
  spillDir?: string;
}

export interface LocalFileEntry extends FileEntry {
  mtimeNs: bigint;
  dev?: number;
  ino?: number;
}

/** Python's `st_mtime * 1000` (what hf compares and prints), from the exact nanoseconds. */
export const mtimeMsFromNs = statMtimeMs;

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOENT':
      return 'vanished during the scan';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    case 'EIO':
      return 'I/O error';
    default:
      return e.code ? `${e.code}: ${e.message}` : String(err);
  }
}

/** The spill limit from the options or the environment. */
export function spillEntriesOf(opts: ScanOptions): number {
  const v = opts.spillEntries ?? Number(process.env['BUCKETSYNC_SCAN_SPILL_ENTRIES'] ?? '');
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_SPILL_ENTRIES;
}

interface WalkContext {
  fs: ScanFs;
  opts: ScanOptions;
  spillEntries: number;
  streamDirBytes: number;
  /** Entries held in memory by the directories on the stack. */
  held: number;
  follow: boolean;
  spill: () => SpillDir;
}

/** A directory's listing could not be read (reported, and the directory skipped). */
class ReadFailure {
  constructor(readonly error: unknown) {}
}

/** A name that is not valid UTF-8 was met: the directory is read again with byte names. */
class NeedsBytes {}

/** Kind of a directory entry, from its Dirent (an `lstat` when the file system gives no type). */
function kindOf(fs: ScanFs, dir: string, name: string, d: nodeFs.Dirent<string | Buffer>): number {
  if (d.isFile()) return FILE;
  if (d.isDirectory()) return DIR;
  if (d.isSymbolicLink()) return LINK;
  if (d.isFIFO() || d.isSocket() || d.isCharacterDevice() || d.isBlockDevice() || !fs.lstatSync) return OTHER;
  // DT_UNKNOWN (some network and older file systems): ask.
  try {
    const st = fs.lstatSync(fsPath(`${dir}/${name}`), { throwIfNoEntry: false });
    if (st === undefined) return FILE; // vanished: the stat of the walk reports it
    return st.isDirectory() ? DIR : st.isFile() ? FILE : st.isSymbolicLink() ? LINK : OTHER;
  } catch {
    return FILE;
  }
}

/**
 * Lists a directory in key order. Small directories are read whole with `readdirSync` (the
 * fast path); a directory whose st_size marks it as big is read entry by entry. Either way,
 * past the memory budget the entries spill to sorted runs on disk. Returns why it could not
 * be read (a string) when it could not.
 */
function readDir(ctx: WalkContext, abs: string, rel: string): EntrySource | string {
  try {
    return readDirAs(ctx, abs, rel, false);
  } catch (err) {
    if (!(err instanceof NeedsBytes)) throw err;
    return readDirAs(ctx, abs, rel, true);
  }
}

function readDirAs(ctx: WalkContext, abs: string, rel: string, bytes: boolean): EntrySource | string {
  const { fs, opts } = ctx;
  const budget = Math.max(ctx.spillEntries - ctx.held, Math.min(ctx.spillEntries, MIN_DIR_BUDGET));
  const collector = new EntryCollector(budget, ctx.spill);
  const canReadBytes = fs === (nodeFs as unknown as ScanFs);
  const temps: string[] = [];
  const add = (raw: string | Buffer, d: nodeFs.Dirent<string | Buffer>): void => {
    let name: string;
    if (typeof raw === 'string') {
      // Node decodes names lossily: U+FFFD may stand for bytes that are not UTF-8.
      if (canReadBytes && !bytes && raw.includes('\uFFFD')) throw new NeedsBytes();
      name = raw;
    } else {
      name = decodeName(raw);
    }
    if (name.startsWith(TEMP_PREFIX) && isTempName(name)) {
      // A source (links followed): another run's transfer into this folder, or a user's file in
      // that shape: not synced, but never silently (a marker, counted). A destination: a
      // leftover candidate, reported once the listing is complete (it may be read twice).
      if (ctx.follow) collector.add(name, TEMPNAME);
      else temps.push(`${abs}/${name}`);
      return;
    }
    const kind = kindOf(fs, abs, name, d);
    if (name.includes('\\')) {
      collector.add(name, kind === DIR ? BADDIR : BAD);
      return;
    }
    if (kind === LINK && ctx.follow) {
      // A link to a folder gets a folder's key, so that its marker sorts where its contents would.
      try {
        if (fs.statSync(fsPath(`${abs}/${name}`), { throwIfNoEntry: false })?.isDirectory()) {
          collector.add(name, DIRLINK);
          return;
        }
      } catch {
        // the walk's stat reports it
      }
    }
    collector.add(name, kind);
  };
  const where = fsPath(abs);
  try {
    if (fs.opendirSync && isBig(ctx, abs)) {
      let dir: ReturnType<NonNullable<ScanFs['opendirSync']>>;
      try {
        // Node's typings lack `encoding: 'buffer'` for opendir, which it supports (names as Buffers).
        dir = fs.opendirSync(where, (bytes ? { bufferSize: 1024, encoding: 'buffer' } : { bufferSize: 1024 }) as { bufferSize: number });
      } catch (err) {
        throw new ReadFailure(err);
      }
      try {
        for (;;) {
          let d: nodeFs.Dirent<string | Buffer> | null;
          try {
            d = dir.readSync();
          } catch (err) {
            throw new ReadFailure(err);
          }
          if (d === null) break;
          add(d.name, d);
        }
      } finally {
        try {
          dir.closeSync();
        } catch {
          // nothing left to release
        }
      }
    } else {
      let dirents: nodeFs.Dirent<string | Buffer>[];
      try {
        dirents = bytes
          ? (nodeFs.readdirSync(where, { withFileTypes: true, encoding: 'buffer' }) as nodeFs.Dirent<Buffer>[])
          : fs.readdirSync(where, { withFileTypes: true });
      } catch (err) {
        throw new ReadFailure(err);
      }
      for (const d of dirents) add(d.name, d);
    }
    const done = collector.finish();
    if (opts.onTempFile) for (const t of temps) opts.onTempFile(t);
    return done;
  } catch (err) {
    collector.abort();
    if (err instanceof NeedsBytes) throw err;
    if (!(err instanceof ReadFailure)) {
      const tmp = opts.spillDir ? path.dirname(opts.spillDir) : os.tmpdir();
      throw new Error(
        `cannot list directory ${rel === '' ? '.' : displayName(rel)}: it is too big to sort in memory, and sorting it on disk in ${tmp} failed: ` +
          `${err instanceof Error ? err.message : String(err)} (set TMPDIR to a writable directory with free space)`,
        { cause: err },
      );
    }
    const reason = `cannot read directory: ${describe(err.error)}`;
    opts.onWarning?.(`cannot read directory ${rel === '' ? '.' : displayName(rel)}: ${describe(err.error)} (skipped)`);
    return reason;
  }
}

/** Whether a directory is big enough (by its st_size) to be read incrementally. */
function isBig(ctx: WalkContext, abs: string): boolean {
  try {
    // A plain stat (no bigint) is a third cheaper, and only the size matters here.
    const st = ctx.fs.statSync(abs, { throwIfNoEntry: false });
    return st !== undefined && st.isDirectory() && st.size >= ctx.streamDirBytes;
  } catch {
    return false; // the read that follows reports the problem
  }
}

/**
 * Walks `root` and yields sorted batches of entries. `root` must be a directory; callers
 * check that first (the messages differ for a source and a destination).
 */
export function* scanLocal(root: string, opts: ScanOptions = {}): Generator<LocalFileEntry[]> {
  const fs = opts.fs ?? (nodeFs as unknown as ScanFs);
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_ENTRIES;
  const withIdentity = opts.withIdentity ?? false;
  const spillEntries = spillEntriesOf(opts);
  let spillDir: SpillDir | undefined;
  const ctx: WalkContext = {
    fs,
    opts,
    spillEntries,
    streamDirBytes: opts.streamDirBytes ?? Math.min(DEFAULT_STREAM_DIR_BYTES, spillEntries * 16),
    held: 0,
    follow: opts.followLinks ?? true,
    spill: () => (spillDir ??= new SpillDir(opts.spillDir)),
  };
  let batch: LocalFileEntry[] = [];

  // Each frame: the directory's entries still to visit, how many of them sit in memory, and
  // whether its path holds no escaped bytes (so that a name without them needs no check).
  const stack: { abs: string; rel: string; entries: EntrySource; held: number; plain: boolean }[] = [];
  const push = (abs: string, rel: string, entries: EntrySource, plain: boolean): void => {
    const held = entries instanceof ArraySource ? entries.length : 0;
    ctx.held += held;
    stack.push({ abs, rel, entries, held, plain });
  };
  const mark = (rel: string, reason: string, subtree = false): void => {
    batch.push({ ...skippedEntry(rel, reason, subtree), mtimeNs: 0n });
  };
  try {
    const top = readDir(ctx, root, '');
    // The root itself unreadable: nothing could be listed, so nothing may be compared.
    if (typeof top === 'string') throw new Error(`${top.replace(/^cannot read directory/, `cannot read directory ${root}`)}`);
    push(root, '', top, !hasEscapedBytes(root));

    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const entries = frame.entries;
      if (!entries.advance()) {
        entries.close();
        ctx.held -= frame.held;
        stack.pop();
        continue;
      }
      const kind = entries.kind;
      const name = nameOf(entries);
      const abs = `${frame.abs}/${name}`;
      const rel = frame.rel === '' ? name : `${frame.rel}/${name}`;
      // Escaped bytes are code units >= U+D800: a listing without any (`wide` false) has none.
      const plain = frame.plain && (!entries.wide || !hasEscapedBytes(name));
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
      if (kind === DIR) {
        const child = readDir(ctx, abs, rel);
        if (typeof child === 'string') mark(rel, child, true);
        else push(abs, rel, child, plain);
        continue;
      }
      if (kind === DIRLINK) {
        // Not descended (hf's behaviour), but never silent: what is behind it is unknown.
        opts.onWarning?.(`skipping ${displayName(rel)}: symbolic link to a folder (not followed)`);
        mark(rel, 'symbolic link to a folder (not followed)', true);
        continue;
      }
      if (kind === BAD || kind === BADDIR) {
        opts.onWarning?.(`skipping ${displayName(rel)}: a backslash in a name cannot be a portable plan path`);
        mark(rel, 'a backslash in a name cannot be a portable plan path', kind === BADDIR);
        continue;
      }
      if (kind === TEMPNAME) {
        const why = 'named exactly like a temporary file of a bucketsync run (a transfer in progress here?): not synced';
        opts.onWarning?.(`skipping ${displayName(rel)}: ${why}`);
        mark(rel, why);
        continue;
      }
      if (kind === OTHER) {
        opts.onWarning?.(`skipping ${displayName(rel)}: not a regular file`);
        mark(rel, 'not a regular file');
        continue;
      }
      let st: nodeFs.BigIntStats | undefined;
      const where = plain ? abs : fsPath(abs);
      try {
        st =
          !ctx.follow && fs.lstatSync
            ? fs.lstatSync(where, { bigint: true, throwIfNoEntry: false })
            : fs.statSync(where, { bigint: true, throwIfNoEntry: false });
      } catch (err) {
        opts.onWarning?.(`cannot read ${displayName(rel)}: ${describe(err)} (skipped)`);
        mark(rel, `cannot read: ${describe(err)}`);
        continue;
      }
      if (st === undefined) {
        const reason = kind === LINK ? 'broken symbolic link' : 'vanished during the scan';
        opts.onWarning?.(`skipping ${displayName(rel)}: ${reason}`);
        mark(rel, reason);
        continue;
      }
      if (!st.isFile() && !(st.isSymbolicLink() && !ctx.follow)) {
        // A folder here: a link that became one after the listing, or a file replaced by a folder.
        const reason = st.isDirectory() ? (kind === LINK ? 'symbolic link to a folder (not followed)' : 'changed into a folder during the scan') : 'not a regular file';
        opts.onWarning?.(`skipping ${displayName(rel)}: ${reason}`);
        mark(rel, reason);
        continue;
      }
      const entry: LocalFileEntry = { path: rel, size: Number(st.size), mtimeMs: mtimeMsFromNs(st.mtimeNs), mtimeNs: st.mtimeNs };
      if (withIdentity) {
        entry.dev = Number(st.dev);
        entry.ino = Number(st.ino);
      }
      batch.push(entry);
    }
    if (batch.length > 0) yield batch;
  } finally {
    // Also on an error or when the consumer stops early: no spill file outlives the scan.
    for (const frame of stack) frame.entries.close();
    stack.length = 0;
    spillDir?.remove();
  }
}
