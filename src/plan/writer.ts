/**
 * Writing plan files (`--plan FILE`) and dry-run output (`--dry-run`, stdout) in hf's exact
 * JSONL format (spec §1.1): one `json.dumps(obj)` line for the header, then one per operation,
 * hf's keys first in hf's order, bucketsync's extras after them (hf's loader ignores them).
 *
 * The header carries the summary, which is only known once every operation has been seen, so
 * operations are first spooled to a temp file while counting, then the header and a copy of
 * the spool are written. A plan file is written to a temp name, fsynced and renamed over the
 * destination: a crash never leaves a half-written plan under the final name.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ToolError } from '../errors.js';
import type { CompareOptions, FilterSpec, Operation, PlanHeader, PlanSummary } from '../types.js';
import { pyJsonDumps, pyJsonString, type PyJsonValue } from './pyjson.js';
import { mtimeToIso } from './time.js';
import { tempDirFor, track, untrack } from '../scanner/spill.js';

/** The `format_version` bucketsync writes into headers and the newest its reader accepts. */
export const PLAN_FORMAT_VERSION = 1;

/** A header whose summary the writer computes (any given summary is replaced). */
export type PlanHeaderInput = Omit<PlanHeader, 'summary'> & { summary?: PlanSummary };

export interface PlanWriteResult {
  /** The summary written in the header line. */
  summary: PlanSummary;
  /** Number of operation lines written (or, when the output closed early, spooled). */
  count: number;
  /** True when the output stream was closed by the reader (EPIPE, e.g. `| head`). */
  outputClosed: boolean;
}

/** An I/O failure while writing a plan; `cause` holds the system error. */
export class PlanWriteError extends ToolError {
  override name = 'PlanWriteError';
  constructor(
    message: string,
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super(message, undefined, 2, options);
  }
}

// ---------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------

/** Incremental `plan.summary()`: counts per action; total_size over uploads and downloads. */
export class SummaryCounter {
  uploads = 0;
  downloads = 0;
  deletes = 0;
  skips = 0;
  totalSize = 0;
  /** Every operation added, whatever its action. */
  count = 0;

  add(op: Operation): void {
    this.count++;
    switch (op.action) {
      case 'upload':
        this.uploads++;
        this.totalSize += op.size ?? 0;
        break;
      case 'download':
        this.downloads++;
        this.totalSize += op.size ?? 0;
        break;
      case 'delete':
        this.deletes++;
        break;
      case 'skip':
        this.skips++;
        break;
    }
  }

  /** A fresh object in hf's key order. */
  get summary(): PlanSummary {
    return {
      uploads: this.uploads,
      downloads: this.downloads,
      deletes: this.deletes,
      skips: this.skips,
      total_size: this.totalSize,
    };
  }
}

/** hf's `plan.summary()` over a materialised list of operations. */
export function planSummary(ops: Iterable<Operation>): PlanSummary {
  const counter = new SummaryCounter();
  for (const op of ops) counter.add(op);
  return counter.summary;
}

function summaryEquals(a: PlanSummary, b: PlanSummary): boolean {
  return (
    a.uploads === b.uploads &&
    a.downloads === b.downloads &&
    a.deletes === b.deletes &&
    a.skips === b.skips &&
    a.total_size === b.total_size
  );
}

// ---------------------------------------------------------------------------------------
// Lines
// ---------------------------------------------------------------------------------------

const OPTION_KEYS: readonly [keyof CompareOptions, string][] = [
  ['delete', 'delete'],
  ['ignoreTimes', 'ignore_times'],
  ['ignoreSizes', 'ignore_sizes'],
  ['existing', 'existing'],
  ['ignoreExisting', 'ignore_existing'],
];

/** `{"delete": …, "ignore_times": …, …}` with only the options that are set, in that order. */
export function optionsToJson(options: Partial<CompareOptions>): { [key: string]: boolean } {
  const out: { [key: string]: boolean } = {};
  for (const [camel, snake] of OPTION_KEYS) {
    const v = options[camel];
    if (v !== undefined) out[snake] = v;
  }
  return out;
}

/** `{"include": […], "exclude": […], "filter_from": path|null, "rules": ["+ pat", …]}`. */
export function filtersToJson(filters: FilterSpec): { [key: string]: PyJsonValue } {
  return {
    include: filters.include,
    exclude: filters.exclude,
    filter_from: filters.filterFrom ?? null,
    rules: filters.rules.map((r) => `${r.sign} ${r.pattern}`),
  };
}

/** The header line (with its trailing `\n`), byte-identical to hf for hf's keys. */
export function formatHeader(h: PlanHeader): string {
  const s = h.summary;
  const obj: { [key: string]: PyJsonValue } = {
    type: 'header',
    source: h.source,
    dest: h.dest,
    timestamp: h.timestamp,
    summary: {
      uploads: s.uploads,
      downloads: s.downloads,
      deletes: s.deletes,
      skips: s.skips,
      total_size: s.total_size,
    },
  };
  if (h.formatVersion !== undefined) obj.format_version = h.formatVersion;
  if (h.sourceResolved !== undefined) obj.source_resolved = h.sourceResolved;
  if (h.destResolved !== undefined) obj.dest_resolved = h.destResolved;
  if (h.options !== undefined) obj.options = optionsToJson(h.options);
  if (h.filters !== undefined) obj.filters = filtersToJson(h.filters);
  if (h.contentOptions !== undefined) {
    const c: { [key: string]: boolean } = {};
    if (h.contentOptions.dedup !== undefined) c.dedup = h.contentOptions.dedup;
    if (h.contentOptions.checksum !== undefined) c.checksum = h.contentOptions.checksum;
    if (h.contentOptions.trackRenames !== undefined) c.track_renames = h.contentOptions.trackRenames;
    obj.content_options = c;
  }
  return pyJsonDumps(obj) + '\n';
}

/** One operation line (with its trailing `\n`), byte-identical to hf for hf's keys. */
export function formatOperation(op: Operation): string {
  // Built by hand (the hot path of plan writing); equal to pyJsonDumps of the same dict.
  let line =
    '{"type": "operation", "action": ' +
    pyJsonString(op.action) +
    ', "path": ' +
    pyJsonString(op.path) +
    ', "reason": ' +
    pyJsonString(op.reason);
  if (op.size !== undefined) line += ', "size": ' + pyJsonDumps(op.size);
  if (op.localMtime !== undefined) line += ', "local_mtime": "' + mtimeToIso(op.localMtime) + '"';
  if (op.remoteMtime !== undefined) line += ', "remote_mtime": "' + mtimeToIso(op.remoteMtime) + '"';
  if (op.destSize !== undefined) line += ', "dest_size": ' + pyJsonDumps(op.destSize);
  if (op.destEtag !== undefined) line += ', "dest_etag": ' + pyJsonString(op.destEtag);
  if (op.hash !== undefined) line += ', "hash": ' + pyJsonString(op.hash);
  if (op.copyFrom !== undefined) line += ', "copy_from": ' + pyJsonString(op.copyFrom);
  if (op.mtimeOnly === true) line += ', "mtime_only": true';
  return line + '}\n';
}

// ---------------------------------------------------------------------------------------
// Sinks
// ---------------------------------------------------------------------------------------

/** Lines are gathered into chunks of about this many characters before each write. */
const CHUNK_CHARS = 64 * 1024;
/** Buffer size for copying the spooled operations. */
const COPY_BYTES = 1024 * 1024;

function isClosedPipeError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ECONNRESET';
}

function noop(): void {}

/**
 * Writes chunks to a caller-owned writable stream with backpressure (`drain`) handling.
 * A closed reader (EPIPE) turns the sink `closed`: later writes are dropped and no error
 * escapes (not even as an unhandled `'error'` event). Other stream errors are rethrown.
 */
class StreamSink {
  closed = false;
  private error: unknown;
  private buf = '';
  private lastWrite: Promise<void> = Promise.resolve();

  private readonly onError = (err: unknown): void => {
    if (isClosedPipeError(err)) this.closed = true;
    else if (this.error === undefined) this.error = err;
  };

  constructor(private readonly out: NodeJS.WritableStream) {
    out.on('error', this.onError);
  }

  async line(s: string): Promise<void> {
    this.buf += s;
    if (this.buf.length >= CHUNK_CHARS) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    const chunk = this.buf;
    this.buf = '';
    await this.write(chunk);
  }

  /** Writes a chunk; resolves once the stream can take more. */
  async write(chunk: string | Uint8Array): Promise<void> {
    if (this.error !== undefined) throw this.error;
    if (this.closed) return;
    const out = this.out;
    if ((out as { destroyed?: boolean }).destroyed || (out as { writableEnded?: boolean }).writableEnded) {
      this.closed = true;
      return;
    }
    let ok = true;
    try {
      this.lastWrite = new Promise<void>((resolve) => {
        ok = out.write(chunk, (err?: Error | null) => {
          if (err) {
            this.onError(err);
            this.wake?.(); // a failed write never brings 'drain'
          }
          resolve();
        });
      });
    } catch (err) {
      this.onError(err);
      if (this.error !== undefined) throw this.error;
      return;
    }
    if (!ok) await this.waitDrain();
    if (this.error !== undefined) throw this.error;
  }

  private wake: (() => void) | undefined;

  /** Waits for 'drain', or for the stream to fail or close (which never bring 'drain'). */
  private waitDrain(): Promise<void> {
    const out = this.out as NodeJS.WritableStream & { destroyed?: boolean; errored?: unknown };
    if (out.destroyed || out.errored || this.closed || this.error !== undefined) {
      if (out.destroyed) this.closed = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.wake = undefined;
        out.removeListener('drain', done);
        out.removeListener('error', done);
        out.removeListener('close', done);
        resolve();
      };
      this.wake = done;
      out.on('drain', done);
      out.on('error', done);
      out.on('close', done);
    }).then(() => {
      if (out.destroyed) this.closed = true;
    });
  }

  /** Flushes the buffer, waits for the last write to complete and detaches. */
  async finish(): Promise<void> {
    try {
      await this.flush();
      if (!this.closed) await this.lastWrite;
      if (this.error !== undefined) throw this.error;
    } finally {
      this.detach();
    }
  }

  /** Detaches the error listener; after EPIPE a no-op listener stays to swallow late errors. */
  detach(): void {
    this.out.removeListener('error', this.onError);
    if (this.closed && !this.out.listeners('error').includes(noop)) this.out.on('error', noop);
  }
}

// ---------------------------------------------------------------------------------------
// Spooling
// ---------------------------------------------------------------------------------------

function tempName(dir: string, base: string, suffix: string): string {
  return path.join(dir, `.${base}.${process.pid}.${randomBytes(6).toString('hex')}${suffix}`);
}

async function removeQuietly(file: string | undefined): Promise<void> {
  if (file === undefined) return;
  try {
    await fsp.rm(file, { force: true });
  } catch {
    // best effort
  }
}

async function closeQuietly(fh: FileHandle | undefined): Promise<void> {
  if (fh === undefined) return;
  try {
    await fh.close();
  } catch {
    // best effort
  }
}

/** Marks an error of the file system (as opposed to one thrown by the operations' source). */
class FsFailure {
  constructor(readonly error: unknown) {}
}

async function fsCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new FsFailure(err);
  }
}

/**
 * Writes every operation line to `file` (created exclusively), counting the summary.
 * File-system errors are thrown as {@link FsFailure}; errors of `ops` propagate as they are.
 */
async function spoolOperations(
  file: string,
  ops: AsyncIterable<Operation> | Iterable<Operation>,
): Promise<SummaryCounter> {
  const counter = new SummaryCounter();
  const fh = await fsCall(() => fsp.open(file, 'wx'));
  try {
    let buf = '';
    for await (const op of ops) {
      counter.add(op);
      buf += formatOperation(op);
      if (buf.length >= CHUNK_CHARS) {
        const chunk = buf;
        buf = '';
        await fsCall(() => fh.write(chunk));
      }
    }
    if (buf.length > 0) await fsCall(() => fh.write(buf));
  } finally {
    await closeQuietly(fh);
  }
  return counter;
}

/** Copies a whole file to a destination callback in 1 MiB chunks; stops when it says so. */
async function copyFileChunks(
  file: string,
  sink: (chunk: Uint8Array) => Promise<boolean>,
): Promise<void> {
  const fh = await fsp.open(file, 'r');
  try {
    for (;;) {
      // A fresh buffer per chunk: a stream sink may still hold the previous one.
      const buf = Buffer.allocUnsafe(COPY_BYTES);
      const { bytesRead } = await fh.read(buf, 0, COPY_BYTES, null);
      if (bytesRead === 0) break;
      if (!(await sink(buf.subarray(0, bytesRead)))) break;
    }
  } finally {
    await fh.close();
  }
}

function withSummary(header: PlanHeaderInput, summary: PlanSummary): PlanHeader {
  return { ...header, summary };
}

function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT':
      return 'no such directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOSPC':
      return 'no space left on device';
    case 'EROFS':
      return 'read-only file system';
    default:
      return e?.message ?? String(err);
  }
}

// ---------------------------------------------------------------------------------------
// Public writers
// ---------------------------------------------------------------------------------------

/**
 * Writes a plan file atomically. Operations are spooled to a temp file next to `file` while
 * the summary is counted; then the header and a copy of the spool go to a second temp file,
 * which is fsynced and renamed over `file`. The temp files are removed on success and on
 * error; if `ops` throws, the error propagates and `file` is left untouched.
 */
export async function writePlanFile(
  file: string,
  header: PlanHeaderInput,
  ops: AsyncIterable<Operation> | Iterable<Operation>,
): Promise<PlanWriteResult> {
  const dir = path.dirname(path.resolve(file));
  const base = path.basename(file);
  const opsTmp = tempName(dir, base, '.ops.tmp');
  const finalTmp = tempName(dir, base, '.tmp');
  // Removed at any exit short of SIGKILL too (a second Ctrl-C exits at once, mid-listing).
  track(opsTmp);
  track(finalTmp);
  let renamed = false;
  let stage = 'write';
  try {
    let counter: SummaryCounter;
    try {
      counter = await spoolOperations(opsTmp, ops);
    } catch (err) {
      if (err instanceof FsFailure) throw fsError(err.error);
      throw err; // from `ops`
    }
    const summary = counter.summary;
    let fh: FileHandle | undefined;
    try {
      fh = await fsp.open(finalTmp, 'wx');
      await fh.write(formatHeader(withSummary(header, summary)));
      const out = fh;
      await copyFileChunks(opsTmp, async (chunk) => {
        let off = 0;
        while (off < chunk.length) {
          const { bytesWritten } = await out.write(chunk, off, chunk.length - off);
          off += bytesWritten;
        }
        return true;
      });
      stage = 'sync';
      await fh.sync();
      await fh.close();
      fh = undefined;
      stage = 'rename';
      await fsp.rename(finalTmp, file);
      renamed = true;
    } catch (err) {
      throw fsError(err);
    } finally {
      await closeQuietly(fh);
    }
    await syncDirQuietly(dir);
    return { summary, count: counter.count, outputClosed: false };
  } finally {
    await removeQuietly(opsTmp);
    if (!renamed) await removeQuietly(finalTmp);
    untrack(opsTmp);
    untrack(finalTmp);
  }

  function fsError(err: unknown): PlanWriteError {
    if (err instanceof PlanWriteError) return err;
    const what = stage === 'rename' ? `Cannot replace plan file ${file}` : `Cannot write plan file ${file}`;
    return new PlanWriteError(`${what}: ${describeFsError(err)}`, file, { cause: err });
  }
}

async function syncDirQuietly(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // Not supported everywhere (e.g. Windows); the rename itself is what matters.
  } finally {
    await closeQuietly(fh);
  }
}

/**
 * Writes a plan to a stream (`--dry-run` to stdout), the header first with the real summary.
 * An array of operations is summarised in memory and written directly; any other iterable is
 * first spooled to a temp file in `os.tmpdir()` (removed afterwards). The stream is not ended.
 * If the reader goes away (EPIPE, `| head`), writing stops quietly and the result has
 * `outputClosed: true`; no error is thrown or emitted.
 */
export async function writePlanToStream(
  out: NodeJS.WritableStream,
  header: PlanHeaderInput,
  ops: AsyncIterable<Operation> | Iterable<Operation>,
): Promise<PlanWriteResult> {
  if (Array.isArray(ops)) {
    return writePlanToStreamDirect(out, withSummary(header, planSummary(ops)), ops);
  }
  const spoolError = (err: unknown): PlanWriteError =>
    new PlanWriteError(
      `Cannot write the temporary plan spool in ${os.tmpdir()}: ${describeFsError(err)}`,
      os.tmpdir(),
      { cause: err },
    );
  let tmpDir: string;
  let untrack: () => void;
  try {
    // Removed even when the process exits at once (`--dry-run | head -1`: EPIPE, src/cli/main.ts).
    ({ dir: tmpDir, done: untrack } = await tempDirFor('bucketsync-plan-'));
  } catch (err) {
    throw spoolError(err);
  }
  const opsTmp = path.join(tmpDir, 'ops.jsonl');
  try {
    let counter: SummaryCounter;
    try {
      counter = await spoolOperations(opsTmp, ops);
    } catch (err) {
      if (err instanceof FsFailure) throw spoolError(err.error);
      throw err;
    }
    const summary = counter.summary;
    const sink = new StreamSink(out);
    try {
      await sink.write(formatHeader(withSummary(header, summary)));
      await copyFileChunks(opsTmp, async (chunk) => {
        await sink.write(chunk);
        return !sink.closed;
      });
      await sink.finish();
    } finally {
      sink.detach();
    }
    return { summary, count: counter.count, outputClosed: sink.closed };
  } finally {
    await fsp.rm(tmpDir, { recursive: true, force: true }).catch(noop);
    untrack();
  }
}

/**
 * Writes a plan to a stream in one pass, trusting `header.summary` (for callers that already
 * know it). Throws after writing if the operations do not add up to that summary (a bug in
 * the caller). Same EPIPE behaviour as {@link writePlanToStream}.
 */
export async function writePlanToStreamDirect(
  out: NodeJS.WritableStream,
  header: PlanHeader,
  ops: AsyncIterable<Operation> | Iterable<Operation>,
): Promise<PlanWriteResult> {
  const counter = new SummaryCounter();
  const sink = new StreamSink(out);
  try {
    await sink.write(formatHeader(header));
    for await (const op of ops) {
      if (sink.closed) break;
      counter.add(op);
      await sink.line(formatOperation(op));
    }
    await sink.finish();
  } finally {
    sink.detach();
  }
  if (!sink.closed && !summaryEquals(counter.summary, header.summary)) {
    throw new Error(
      `Plan header summary ${JSON.stringify(header.summary)} does not match the operations ` +
        `written ${JSON.stringify(counter.summary)}`,
    );
  }
  return { summary: header.summary, count: counter.count, outputClosed: sink.closed };
}
