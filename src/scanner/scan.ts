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
 * Symlinks to files are followed; symlinked directories are not descended (hf's
 * behaviour). Unreadable directories, broken links and special files are reported as
 * warnings naming the path, never dropped silently.
 */
import nodeFs from 'node:fs';
import path from 'node:path';
import { compareCodePoints } from '../manifest/order.js';
import { statMtimeMs } from '../plan/time.js';
import type { FileEntry } from '../types.js';

/** The part of `node:fs` the scanner uses (memfs provides the same, for tests). */
export interface ScanFs {
  readdirSync(p: string, opts: { withFileTypes: true }): nodeFs.Dirent[];
  statSync(p: string, opts: { bigint: true; throwIfNoEntry: false }): nodeFs.BigIntStats | undefined;
}

/** Temporary files written by bucketsync's atomic writes; never part of a manifest. */
export const TEMP_PREFIX = '.bucketsync-tmp-';

export interface ScanOptions {
  fs?: ScanFs;
  /** Entries per yielded batch. */
  batchSize?: number;
  onWarning?: (message: string) => void;
  /** Called for each leftover temporary file found (absolute path). */
  onTempFile?: (absPath: string) => void;
  /** Keep device and inode numbers (for the hash cache). */
  withIdentity?: boolean;
}

export interface LocalFileEntry extends FileEntry {
  mtimeNs: bigint;
  dev?: number;
  ino?: number;
}

interface DirEntry {
  name: string;
  key: string;
  kind: 'file' | 'dir' | 'link' | 'other';
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

function readDir(fs: ScanFs, abs: string, rel: string, opts: ScanOptions): DirEntry[] | undefined {
  let dirents: nodeFs.Dirent[];
  try {
    dirents = fs.readdirSync(abs, { withFileTypes: true });
  } catch (err) {
    opts.onWarning?.(`cannot read directory ${rel === '' ? '.' : rel}: ${describe(err)} (skipped)`);
    return undefined;
  }
  const out: DirEntry[] = new Array(dirents.length);
  let n = 0;
  for (const d of dirents) {
    const name = d.name;
    if (name.startsWith(TEMP_PREFIX)) {
      opts.onTempFile?.(path.join(abs, name));
      continue;
    }
    if (name.includes('\\')) {
      const rel2 = rel === '' ? name : `${rel}/${name}`;
      opts.onWarning?.(`skipping ${rel2}: a backslash in a name cannot be a portable plan path`);
      continue;
    }
    if (d.isDirectory()) out[n++] = { name, key: `${name}/`, kind: 'dir' };
    else if (d.isFile()) out[n++] = { name, key: name, kind: 'file' };
    else if (d.isSymbolicLink()) out[n++] = { name, key: name, kind: 'link' };
    else out[n++] = { name, key: name, kind: 'other' };
  }
  out.length = n;
  out.sort((a, b) => compareCodePoints(a.key, b.key));
  return out;
}

/**
 * Walks `root` and yields sorted batches of entries. `root` must be a directory; callers
 * check that first (the messages differ for a source and a destination).
 */
export function* scanLocal(root: string, opts: ScanOptions = {}): Generator<LocalFileEntry[]> {
  const fs = opts.fs ?? (nodeFs as unknown as ScanFs);
  const batchSize = opts.batchSize ?? 2048;
  const withIdentity = opts.withIdentity ?? false;
  let batch: LocalFileEntry[] = [];

  // Each frame: the directory's entries and the position reached in them.
  const stack: { abs: string; rel: string; entries: DirEntry[]; i: number }[] = [];
  const top = readDir(fs, root, '', opts);
  if (top) stack.push({ abs: root, rel: '', entries: top, i: 0 });

  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.i >= frame.entries.length) {
      stack.pop();
      continue;
    }
    const e = frame.entries[frame.i++]!;
    const abs = `${frame.abs}/${e.name}`;
    const rel = frame.rel === '' ? e.name : `${frame.rel}/${e.name}`;
    if (e.kind === 'dir') {
      const entries = readDir(fs, abs, rel, opts);
      if (entries) stack.push({ abs, rel, entries, i: 0 });
      continue;
    }
    if (e.kind === 'other') {
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
        e.kind === 'link' ? `skipping ${rel}: broken symbolic link` : `skipping ${rel}: vanished during the scan`,
      );
      continue;
    }
    if (!st.isFile()) {
      // A symlink to a directory is not descended (hf's behaviour); anything else is special.
      if (!(e.kind === 'link' && st.isDirectory())) opts.onWarning?.(`skipping ${rel}: not a regular file`);
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
}
