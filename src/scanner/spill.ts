/**
 * A directory's listing in key order, in bounded memory. Entries are gathered in memory up
 * to a limit; past it they are sorted and written to a temporary "run" file, and the runs
 * are k-way merged while the walk consumes them, so a directory of millions of entries never
 * sits in memory whole.
 *
 * Keys: a directory's key is `name + "/"`, anything else's its name (see ./scan.ts). In
 * memory, a listing is the array of its keys plus a map of the keys that are not plain files
 * to their kind (few, in a huge directory). Keys are sorted with the engine's own sort (no
 * comparator: native, and fast) unless a name holds a code unit ≥ U+D800, where UTF-16
 * order and code-point order can differ; such listings sort with `compareCodePoints`.
 *
 * A run file is a sequence of NUL-terminated records (NUL is the one byte no name holds): a
 * plain file's record is its key; any other entry is an empty record followed by the kind
 * char and the key. Runs are merged level by level, at most {@link FAN_IN} at a time, so a
 * directory of 100 million entries is still read through a few dozen open files. Every run
 * is removed when its merge is done or its source closed; the scan removes the directory
 * that holds them at its end (and at process exit).
 */
import nodeFs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { compareCodePoints } from '../manifest/order.js';
import { decodeName, encodeName } from './names.js';

/** Kinds of entries, as the char codes used in memory and in run files. */
export const FILE = 0x66; // f
export const DIR = 0x64; // d
export const LINK = 0x6c; // l
export const OTHER = 0x6f; // o
/** A symbolic link to a folder (not descended; its key is a folder's, `name/`). */
export const DIRLINK = 0x4c; // L
/** A file whose name cannot be a plan path (reported as a marker). */
export const BAD = 0x62; // b
/** A folder whose name cannot be a plan path (reported as a subtree marker; key `name/`). */
export const BADDIR = 0x42; // B
/** A source entry named exactly like a bucketsync temporary file (reported as a marker, never silently left out). */
export const TEMPNAME = 0x74; // t

/** Kinds whose key is `name/`. */
export function isFolderKind(kind: number): boolean {
  return kind === DIR || kind === DIRLINK || kind === BADDIR;
}

/** Code units where UTF-16 order and code-point order can part. */
const WIDE = /[\uD800-\uFFFF]/;

/** Runs merged at once; more are first merged into bigger runs. */
export const FAN_IN = 32;
/** Bytes read from a run at a time. */
const READ_CHUNK = 64 * 1024;
/** Records encoded per write when a run is written. */
const WRITE_RECORDS = 8192;

/**
 * A directory's entries in key order, as a cursor: `advance()` moves to the next entry and
 * sets `key` and `kind` (false at the end).
 */
export interface EntrySource {
  advance(): boolean;
  key: string;
  kind: number;
  /** Whether some key may hold a code unit ≥ U+D800. */
  readonly wide: boolean;
  /** Releases what the source holds (temporary files included). Safe to call twice. */
  close(): void;
}

/** The name of an entry of a source (its key without a directory's trailing "/"). */
export function nameOf(source: EntrySource): string {
  return isFolderKind(source.kind) ? source.key.slice(0, -1) : source.key;
}

/** Sorted keys (and the kinds of those that are not plain files) as a source. */
export class ArraySource implements EntrySource {
  key = '';
  kind = 0;
  private i = 0;

  constructor(
    private keys: string[],
    /** The kinds of the keys that are not plain files (none: undefined). */
    private kinds: Map<string, number> | undefined,
    readonly wide: boolean,
  ) {}

  get length(): number {
    return this.keys.length;
  }

  advance(): boolean {
    const key = this.keys[this.i];
    if (key === undefined) return false;
    this.keys[this.i++] = ''; // visited: let it go
    this.key = key;
    this.kind = this.kinds === undefined ? FILE : (this.kinds.get(key) ?? FILE);
    return true;
  }

  close(): void {
    this.keys = [];
    this.kinds = undefined;
    this.i = 0;
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += nodeFs.writeSync(fd, buf, off, buf.length - off);
}

/** Writes the entries of a source (in order) as a run file. */
function writeRun(file: string, source: EntrySource): void {
  const fd = nodeFs.openSync(file, 'wx', 0o600);
  try {
    let chunk = '';
    let n = 0;
    while (source.advance()) {
      chunk += source.kind === FILE ? `${source.key}\0` : `\0${String.fromCharCode(source.kind)}${source.key}\0`;
      if (++n >= WRITE_RECORDS) {
        writeAll(fd, encodeName(chunk));
        chunk = '';
        n = 0;
      }
    }
    // Names that are not valid UTF-8 are written as their original bytes (see ./names.ts).
    if (chunk.length > 0) writeAll(fd, encodeName(chunk));
  } finally {
    nodeFs.closeSync(fd);
  }
}

/** A run file on disk. */
interface Run {
  file: string;
  wide: boolean;
}

/** Reads a run file back, a chunk at a time; removes the file when closed. */
export class RunReader implements EntrySource {
  key = '';
  kind = 0;
  readonly wide: boolean;
  private readonly file: string;
  private fd: number | undefined;
  private buf = Buffer.allocUnsafe(READ_CHUNK);
  /** Bytes at the start of `buf` that belong to a record not yet complete. */
  private carry = 0;
  private records: string[] = [];
  private index = 0;
  private eof = false;
  /** An empty record was read: the next one starts with its kind char. */
  private marked = false;

  constructor(run: Run) {
    this.file = run.file;
    this.wide = run.wide;
    this.fd = nodeFs.openSync(run.file, 'r');
  }

  advance(): boolean {
    for (;;) {
      while (this.index >= this.records.length) {
        if (!this.fill()) return false;
      }
      const r = this.records[this.index++]!;
      if (r === '') {
        this.marked = true;
        continue;
      }
      if (this.marked) {
        this.marked = false;
        this.kind = r.charCodeAt(0);
        this.key = r.slice(1);
      } else {
        this.kind = FILE;
        this.key = r;
      }
      return true;
    }
  }

  /** Decodes the next chunk's complete records; false at the end of the file. */
  private fill(): boolean {
    if (this.eof || this.fd === undefined) return false;
    if (this.carry === this.buf.length) {
      // A record longer than the buffer (names are short, but never assume): grow it.
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.carry);
      this.buf = bigger;
    }
    const n = nodeFs.readSync(this.fd, this.buf, this.carry, this.buf.length - this.carry, null);
    const end = this.carry + n;
    this.records = [];
    this.index = 0;
    if (n === 0) {
      this.eof = true;
      if (end > 0 || this.marked) throw new Error(`scanner spill file ${this.file} is truncated`);
      return false;
    }
    const last = this.buf.lastIndexOf(0, end - 1);
    if (last < 0) {
      this.carry = end;
      return true;
    }
    this.records = (this.wide ? decodeName(this.buf.subarray(0, last)) : this.buf.toString('utf8', 0, last)).split('\0');
    this.buf.copy(this.buf, 0, last + 1, end);
    this.carry = end - last - 1;
    return true;
  }

  close(): void {
    this.records = [];
    if (this.fd !== undefined) {
      const fd = this.fd;
      this.fd = undefined;
      try {
        nodeFs.closeSync(fd);
      } catch {
        // already closed
      }
      removeQuietly(this.file);
    }
  }
}

/** A k-way merge of sorted sources (a binary min-heap on the sources' current keys). */
export class MergeSource implements EntrySource {
  key = '';
  kind = 0;
  readonly wide: boolean;
  private readonly heap: EntrySource[] = [];
  private started = false;

  constructor(private readonly sources: EntrySource[]) {
    this.wide = sources.some((s) => s.wide);
  }

  private less(a: EntrySource, b: EntrySource): boolean {
    return this.wide ? compareCodePoints(a.key, b.key) < 0 : a.key < b.key;
  }

  advance(): boolean {
    const heap = this.heap;
    if (!this.started) {
      this.started = true;
      for (const s of this.sources) {
        if (s.advance()) heap.push(s);
        else s.close();
      }
      for (let i = (heap.length >> 1) - 1; i >= 0; i--) this.down(i);
    } else {
      // The top source's entry was handed out last time: move it on.
      const top = heap[0];
      if (top === undefined) return false;
      if (!top.advance()) {
        top.close();
        const last = heap.pop()!;
        if (heap.length > 0) heap[0] = last;
      }
      if (heap.length > 1) this.down(0);
    }
    const top = heap[0];
    if (top === undefined) return false;
    this.key = top.key;
    this.kind = top.kind;
    return true;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const item = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(heap[r]!, heap[l]!) ? r : l;
      if (!this.less(heap[c]!, item)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = item;
  }

  close(): void {
    this.heap.length = 0;
    for (const s of this.sources) s.close();
  }
}

/** Removes a file or directory; cleanup never hides the error that led to it. */
export function removeQuietly(p: string): void {
  try {
    nodeFs.rmSync(p, { recursive: true, force: true, maxRetries: 2, retryDelay: 50 });
  } catch {
    // nothing more to do
  }
}

const liveDirs = new Set<string>();
let exitHookInstalled = false;

/**
 * Registers a spill directory (existing or not yet) to be removed if the process exits in
 * the middle of a scan (a second Ctrl-C, `process.exit`). {@link untrack} when it is gone.
 */
export function track(dir: string): void {
  liveDirs.add(dir);
  if (!exitHookInstalled && isMainThread) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const d of liveDirs) removeQuietly(d);
    });
  }
}

export function untrack(dir: string): void {
  liveDirs.delete(dir);
}

const SPILL_PREFIX = 'bucketsync-scan-';

/** A fresh name for a scan's spill directory in the system temporary directory (not created). */
export function spillDirName(): string {
  return path.join(os.tmpdir(), `${SPILL_PREFIX}${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`);
}

/** Spill directories untouched for this long, of a process that is gone, are removed. */
const STALE_MS = 24 * 3600 * 1000;
const swept = new Set<string>();

/**
 * Removes the spill directories of killed scans (SIGKILL, the OOM killer: no cleanup of
 * their own ran) from `parent`: only those a day old whose process no longer exists.
 * Once per directory and process, at the first spill there. `prefix`: other temporary
 * directories named `<prefix><pid>-…` the same way (the plan and stdin spools, {@link tempDirFor}).
 */
function sweepStale(parent: string, prefix = SPILL_PREFIX): void {
  if (swept.has(`${prefix}\0${parent}`)) return;
  swept.add(`${prefix}\0${parent}`);
  let names: string[];
  try {
    names = nodeFs.readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-/.exec(name.slice(prefix.length));
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // alive (or not ours to signal)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    const dir = path.join(parent, name);
    const st = nodeFs.statSync(dir, { throwIfNoEntry: false });
    if (st?.isDirectory() && Date.now() - st.mtimeMs > STALE_MS) removeQuietly(dir);
  }
}

/**
 * A private temporary directory `<tmp>/<prefix><pid>-XXXXXX` that is removed when the process
 * exits in any way short of SIGKILL (`process.exit` on a closed stdout, a second Ctrl-C), and
 * swept by a later run a day after a SIGKILL ({@link sweepStale}). Call `done()` once it is gone.
 */
export async function tempDirFor(prefix: string): Promise<{ dir: string; done: () => void }> {
  sweepStale(os.tmpdir(), prefix);
  const dir = await nodeFs.promises.mkdtemp(path.join(os.tmpdir(), `${prefix}${process.pid}-`));
  track(dir);
  return { dir, done: () => untrack(dir) };
}

/** The temporary directory of one scan's runs, created at the first spill. */
export class SpillDir {
  private dir: string | undefined;
  private n = 0;

  /** `at`: use this path (created when needed); else a fresh directory in the system temp dir. */
  constructor(private readonly at?: string) {}

  newFile(): string {
    if (this.dir === undefined) {
      const dir = this.at ?? spillDirName();
      sweepStale(path.dirname(dir));
      nodeFs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.dir = dir;
      track(dir);
    }
    return path.join(this.dir, `run-${this.n++}`);
  }

  remove(): void {
    if (this.dir === undefined) return;
    removeQuietly(this.dir);
    liveDirs.delete(this.dir);
    this.dir = undefined;
  }
}

/**
 * Gathers one directory's entries: in memory up to `limit`, then as sorted runs on disk.
 * `finish()` hands them back in key order.
 */
export class EntryCollector {
  private keys: string[] = [];
  /** The kinds of the keys that are not plain files (created for the first). */
  private kinds: Map<string, number> | undefined;
  private wide = false;
  /** Run files by merge level. */
  private levels: Run[][] = [];
  private spilled = false;

  constructor(
    private readonly limit: number,
    private readonly spill: () => SpillDir,
  ) {}

  add(name: string, kind: number): void {
    if (kind === FILE) {
      this.keys.push(name);
    } else {
      const key = isFolderKind(kind) ? `${name}/` : name;
      this.keys.push(key);
      (this.kinds ??= new Map()).set(key, kind);
    }
    if (!this.wide && WIDE.test(name)) this.wide = true;
    if (this.keys.length >= this.limit) this.flush();
  }

  /** What is gathered in memory, sorted, as a source; the collector starts afresh. */
  private take(): ArraySource {
    const keys = this.wide ? this.keys.sort(compareCodePoints) : this.keys.sort();
    const source = new ArraySource(keys, this.kinds, this.wide);
    this.keys = [];
    this.kinds = undefined;
    this.wide = false;
    return source;
  }

  private flush(): void {
    const source = this.take();
    const run: Run = { file: this.spill().newFile(), wide: source.wide };
    this.spilled = true;
    writeRun(run.file, source);
    this.push(run, 0);
  }

  private push(run: Run, level: number): void {
    const runs = (this.levels[level] ??= []);
    runs.push(run);
    if (runs.length < FAN_IN) return;
    this.levels[level] = [];
    const merged: Run = { file: this.spill().newFile(), wide: runs.some((r) => r.wide) };
    const m = new MergeSource(this.open(runs));
    try {
      writeRun(merged.file, m);
    } finally {
      m.close();
    }
    this.push(merged, level + 1);
  }

  /** Readers of the runs (all removed if one cannot be opened). */
  private open(runs: Run[]): EntrySource[] {
    const readers: RunReader[] = [];
    try {
      for (const r of runs) readers.push(new RunReader(r));
    } catch (err) {
      for (const r of readers) r.close();
      for (const r of runs) removeQuietly(r.file);
      throw err;
    }
    return readers;
  }

  /** The entries in key order; the collector must not be used afterwards. */
  finish(): EntrySource {
    const last = this.take();
    if (!this.spilled) return last;
    const runs = this.levels.flat();
    this.levels = [];
    return new MergeSource([...this.open(runs), last]);
  }

  /** Drops everything gathered (the directory could not be read after all). */
  abort(): void {
    this.keys = [];
    this.kinds = undefined;
    for (const r of this.levels.flat()) removeQuietly(r.file);
    this.levels = [];
  }
}
