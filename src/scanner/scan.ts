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
 * behaviour). Unreadable directories, broken links and special files are reported as
 * warnings naming the path, never dropped silently.
 */
import nodeFs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { statMtimeMs } from '../plan/time.js';
import type { FileEntry } from '../types.js';
import { ArraySource, DIR, EntryCollector, FILE, LINK, OTHER, SpillDir, nameOf, type EntrySource } from './spill.js';

/** The part of `node:fs` the scanner uses (memfs provides the same, for tests). */
export interface ScanFs {
  readdirSync(p: string, opts: { withFileTypes: true }): nodeFs.Dirent[];
  statSync(p: string, opts: { bigint: true; throwIfNoEntry: false }): nodeFs.BigIntStats | undefined;
  statSync(p: string, opts: { throwIfNoEntry: false }): nodeFs.Stats | undefined;
  /** Reads big directories incrementally; without it every directory is read whole. */
  opendirSync?(p: string, opts: { bufferSize: number }): { readSync(): nodeFs.Dirent | null; closeSync(): void };
}

/** Temporary files written by bucketsync's atomic writes; never part of a manifest. */
export const TEMP_PREFIX = '.bucketsync-tmp-';

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
  spill: () => SpillDir;
}

/** A directory's listing could not be read (reported, and the directory skipped). */
class ReadFailure {
  constructor(readonly error: unknown) {}
}

/**
 * Lists a directory in key order. Small directories are read whole with `readdirSync` (the
 * fast path); a directory whose st_size marks it as big is read entry by entry. Either way,
 * past the memory budget the entries spill to sorted runs on disk.
 */
function readDir(ctx: WalkContext, abs: string, rel: string): EntrySource | undefined {
  const { fs, opts } = ctx;
  const budget = Math.max(ctx.spillEntries - ctx.held, Math.min(ctx.spillEntries, MIN_DIR_BUDGET));
  const collector = new EntryCollector(budget, ctx.spill);
  const add = (name: string, d: nodeFs.Dirent): void => {
    if (name.startsWith(TEMP_PREFIX)) {
      opts.onTempFile?.(path.join(abs, name));
      return;
    }
    if (name.includes('\\')) {
      const rel2 = rel === '' ? name : `${rel}/${name}`;
      opts.onWarning?.(`skipping ${rel2}: a backslash in a name cannot be a portable plan path`);
      return;
    }
    collector.add(name, d.isDirectory() ? DIR : d.isFile() ? FILE : d.isSymbolicLink() ? LINK : OTHER);
  };
  try {
    if (fs.opendirSync && isBig(ctx, abs)) {
      let dir: ReturnType<NonNullable<ScanFs['opendirSync']>>;
      try {
        dir = fs.opendirSync(abs, { bufferSize: 1024 });
      } catch (err) {
        throw new ReadFailure(err);
      }
      try {
        for (;;) {
          let d: nodeFs.Dirent | null;
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
      let dirents: nodeFs.Dirent[];
      try {
        dirents = fs.readdirSync(abs, { withFileTypes: true });
      } catch (err) {
        throw new ReadFailure(err);
      }
      for (const d of dirents) add(d.name, d);
    }
    return collector.finish();
  } catch (err) {
    collector.abort();
    if (!(err instanceof ReadFailure)) {
      const where = opts.spillDir ? path.dirname(opts.spillDir) : os.tmpdir();
      throw new Error(
        `cannot list directory ${rel === '' ? '.' : rel}: it is too big to sort in memory, and sorting it on disk in ${where} failed: ` +
          `${err instanceof Error ? err.message : String(err)} (set TMPDIR to a writable directory with free space)`,
        { cause: err },
      );
    }
    opts.onWarning?.(`cannot read directory ${rel === '' ? '.' : rel}: ${describe(err.error)} (skipped)`);
    return undefined;
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
  const batchSize = opts.batchSize ?? 2048;
  const withIdentity = opts.withIdentity ?? false;
  const spillEntries = spillEntriesOf(opts);
  let spillDir: SpillDir | undefined;
  const ctx: WalkContext = {
    fs,
    opts,
    spillEntries,
    streamDirBytes: opts.streamDirBytes ?? Math.min(DEFAULT_STREAM_DIR_BYTES, spillEntries * 16),
    held: 0,
    spill: () => (spillDir ??= new SpillDir(opts.spillDir)),
  };
  let batch: LocalFileEntry[] = [];

  // Each frame: the directory's entries still to visit, and how many of them sit in memory.
  const stack: { abs: string; rel: string; entries: EntrySource; held: number }[] = [];
  const push = (abs: string, rel: string, entries: EntrySource): void => {
    const held = entries instanceof ArraySource ? entries.length : 0;
    ctx.held += held;
    stack.push({ abs, rel, entries, held });
  };
  try {
    const top = readDir(ctx, root, '');
    if (top) push(root, '', top);

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
      if (kind === DIR) {
        const child = readDir(ctx, abs, rel);
        if (child) push(abs, rel, child);
        continue;
      }
      if (kind === OTHER) {
        opts.onWarning?.(`skipping ${rel}: not a regular file`);
        continue;
      }
      let st: nodeFs.BigIntStats | undefined;
      try {
        st = fs.statSync(abs, { bigint: true, throwIfNoEntry: false });
      } catch (err) {
        opts.onWarning?.(`cannot read ${rel}: ${describe(err)} (skipped)`);
        continue;
      }
      if (st === undefined) {
        opts.onWarning?.(
          kind === LINK ? `skipping ${rel}: broken symbolic link` : `skipping ${rel}: vanished during the scan`,
        );
        continue;
      }
      if (!st.isFile()) {
        // A symlink to a directory is not descended (hf's behaviour); anything else is special.
        if (!(kind === LINK && st.isDirectory())) opts.onWarning?.(`skipping ${rel}: not a regular file`);
        continue;
      }
      const entry: LocalFileEntry = { path: rel, size: Number(st.size), mtimeMs: mtimeMsFromNs(st.mtimeNs), mtimeNs: st.mtimeNs };
      if (withIdentity) {
        entry.dev = Number(st.dev);
        entry.ino = Number(st.ino);
      }
      batch.push(entry);
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  } finally {
    // Also on an error or when the consumer stops early: no spill file outlives the scan.
    for (const frame of stack) frame.entries.close();
    stack.length = 0;
    spillDir?.remove();
  }
}
