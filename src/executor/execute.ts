/**
 * The executor: applies a stream of operations to two stores with bounded concurrency.
 *
 * - Transfers run first, at most `transfers` at once, with at most a few queued closures
 *   (backpressure on the plan stream), so a million-operation plan never holds a million
 *   pending promises.
 * - Every transfer first checks that its source still matches the plan, and the
 *   destination write is conditional on the destination still holding what the plan saw.
 *   A mismatch is "stale": the file is left untouched and reported (exit 1).
 * - Deletes run after all transfers, only if none failed, and each only if the file to
 *   delete is still the version the plan saw. `maxDelete` refuses all deletes when the plan
 *   has more than that.
 * - Type changes converge in one run (issue 13): a transfer of `a/x` that a planned delete of
 *   `a` is in the way of (a file or a link where the source now has a folder), and a transfer
 *   of `a` that a folder holding files is in the way of (the source now has a file), wait
 *   until after the deletes, which run under the same rules as every delete (none after a
 *   failed transfer, none past `maxDelete`, each with its expectation); then they run. Without
 *   those deletes they fail, naming `--delete`.
 * - Dedup (docs/dedup.md): an upload with `copyFrom` is a server-side copy of that path. If
 *   the path is an upload of this run still in flight, the copy waits for it (a copy never
 *   starts before its source exists, and only the primary sends the bytes); if that upload
 *   failed, the first of its copies uploads the content itself and the others copy from it.
 *   A copy source that is not what the plan expects (gone, other size or hash) is treated
 *   the same way. An upload marked metadata-only (`isMtimeOnly`) only sets the mtime.
 * - On a case-insensitive destination (`dest.caseInsensitive()`), a path that differs only by
 *   case from an earlier path of the plan, or from a file or folder already there, is refused
 *   (src/executor/case-twins.ts); the rest of the run goes on, and no delete runs.
 */
import PQueue from 'p-queue';
import { StaleError, type Expectation, type RemoveResult, type Store, type TransferSource } from '../stores/store.js';
import { isMtimeOnly, xetIdentity, type Direction, type Operation } from '../types.js';
import { CaseTwins, caseClashMessage, type CaseClash } from './case-twins.js';
import { OperationSpool } from './spool.js';

/** `bytes`: progress of a big transfer (`bytes` moved, or `resumedBytes` taken from an interrupted one), for progress displays; no JSON event. */
export type ExecEventType = 'start' | 'done' | 'failed' | 'stale' | 'skip' | 'delete-refused' | 'bytes';

export interface ExecEvent {
  type: ExecEventType;
  op: Operation;
  bytes?: number;
  durationMs?: number;
  error?: string;
  /** For a `done` upload that sent no bytes: `copy` (server-side copy), `mtime` (metadata-only update). */
  via?: 'copy' | 'mtime';
  /** For a `done` transfer that continued an interrupted one: the bytes not sent (or fetched) again. */
  resumedBytes?: number;
}

export interface ExecuteOptions {
  source: Store;
  dest: Store;
  direction: Direction;
  transfers?: number;
  retries?: number;
  maxDelete?: number;
  /**
   * Stops the run: nothing new starts (no retry, no delete), and the transfers in flight are
   * finished, so an interrupted run leaves every file it started complete.
   */
  signal?: AbortSignal;
  /** Aborts the transfers in flight too (their temporary files and uploads are discarded). */
  abortInFlight?: AbortSignal;
  onEvent?: (e: ExecEvent) => void;
  /**
   * xxh128 of a local file (checked against the expected size and mtime; rejects when it
   * differs). Used to verify local copy sources and, with `hashUploads`, to hash sources.
   */
  hashLocal?: (absPath: string, expect: { size: number; mtimeMs?: number }) => Promise<string>;
  /**
   * The Xet file hash (`xet:<hex>`) of a local file, to check that a copy source on hf (whose
   * listing gives only Xet hashes) holds the content of the local file the copy stands for.
   */
  hashLocalXet?: (absPath: string, expect: { size: number; mtimeMs?: number }) => Promise<string>;
  /**
   * Hash every local upload source that has no `hash` yet, so the destination store can keep
   * it (S3 metadata); except those smaller than `dest.capabilities.hashesWritesBelow`, which
   * the store hashes from the bytes it sends.
   */
  hashUploads?: boolean;
}

export interface Failure {
  path: string;
  action: string;
  error: string;
}

export interface ExecuteResult {
  transferred: number;
  transferredBytes: number;
  /** Uploads done as server-side copies (no bytes sent). */
  copies: number;
  /** Bytes those copies did not send. */
  copiedBytes: number;
  /** Uploads done as metadata-only (mtime) updates. */
  metadataUpdates: number;
  deleted: number;
  skipped: number;
  stale: Failure[];
  failed: Failure[];
  /** Deletes not attempted (a transfer failed, the run was interrupted, or --max-delete was exceeded). */
  deletesNotRun: number;
  deleteRefusal?: string;
  interrupted: boolean;
  /**
   * Operations whose result was already at the destination (a file with the source's size
   * and mtime, a deleted file already gone): an earlier run of the same plan got that far.
   * Counted as done, so re-applying an interrupted plan converges instead of reporting stale.
   */
  upToDate: number;
  /**
   * Files read in full whose content the source store could not verify against its own
   * identity (`Store.unverifiedReads`): kept, but named in the summary. Filled by `executeOn`.
   */
  unverified?: readonly string[];
}

/** A source file changed between the plan and the end of its transfer. */
export class ChangedDuringTransferError extends Error {
  override name = 'ChangedDuringTransferError';
}

const DELETE_BATCH = 1000;
/** Paths remembered as written by this run (copy sources that need no re-check). */
const WRITTEN_MEMORY = 100_000;

type Via = 'upload' | 'copy' | 'mtime';

function sourceMtime(op: Operation, direction: Direction): number | undefined {
  return direction === 'upload' ? op.localMtime : op.remoteMtime;
}

function destMtime(op: Operation, direction: Direction): number | undefined {
  return direction === 'upload' ? op.remoteMtime : op.localMtime;
}

/** What the plan says the destination holds at `op.path` (for transfers). */
export function destExpectation(op: Operation, direction: Direction): Expectation {
  const mtime = destMtime(op, direction);
  if (mtime === undefined && op.destSize === undefined && op.destEtag === undefined) return { kind: 'absent' };
  const e: Expectation = { kind: 'version' };
  if (op.destSize !== undefined) e.size = op.destSize;
  if (mtime !== undefined) e.mtimeMs = mtime;
  if (op.destEtag !== undefined) e.etag = op.destEtag;
  return e;
}

/** What the plan says the file to delete looks like. */
export function deleteExpectation(op: Operation, direction: Direction): Expectation {
  const e: Expectation = { kind: 'version' };
  if (op.size !== undefined) e.size = op.size;
  const mtime = destMtime(op, direction);
  if (mtime !== undefined) e.mtimeMs = mtime;
  if (op.destEtag !== undefined) e.etag = op.destEtag;
  return e;
}

/**
 * After a stale refusal: is the destination already what this transfer would have made
 * (same size, same mtime to the millisecond — hf buckets keep whole milliseconds) while the
 * source is still the planned version? Then an earlier run of the plan already did it.
 */
async function alreadyTransferred(op: Operation, o: ExecuteOptions): Promise<boolean> {
  try {
    const [src, dst] = await Promise.all([o.source.stat(op.path), o.dest.stat(op.path)]);
    if (!src || !dst || src.size !== dst.size) return false;
    const planned = sourceMtime(op, o.direction);
    if (op.size !== undefined && src.size !== op.size) return false;
    if (planned !== undefined && Math.abs(src.mtimeMs - planned) >= 0.0015) return false;
    if (Math.abs(src.mtimeMs - dst.mtimeMs) >= 1) return false;
    // Size and mtime say nothing when the plan was made by content (--checksum: same size
    // and mtime, other bytes): with a known hash, the destination's content must match too.
    if (op.hash !== undefined) {
      if (dst.hash !== undefined) return dst.hash === op.hash;
      const abs = o.dest.localPath?.(op.path);
      if (abs === undefined || !o.hashLocal) return false;
      return (await o.hashLocal(abs, { size: dst.size, mtimeMs: dst.mtimeMs })) === op.hash;
    }
    return true;
  } catch {
    return false;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const RETRYABLE_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNREFUSED', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE']);

/**
 * Worth another attempt: a `RetryableError` from a store, a timeout (the S3 SDK's
 * `TimeoutError` when a download's body stops arriving), or a connection that broke —
 * the error itself or one of its causes.
 */
function isRetryable(err: unknown): boolean {
  let e = err as { name?: string; code?: string; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 5; depth++) {
    if (e.name === 'RetryableError' || e.name === 'TimeoutError') return true;
    if (RETRYABLE_CODES.has(e.code ?? '')) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/** Backoff before retry `attempt + 1`: exponential with jitter, at least the server's Retry-After (at most 60 s). */
function retryDelayMs(err: unknown, attempt: number): number {
  const backoff = Math.min(8000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
  const after = (err as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
  return typeof after === 'number' && after > 0 ? Math.max(backoff, Math.min(60_000, after)) : backoff;
}

/** Waits `ms`, or less when the signal aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export async function executePlan(ops: AsyncIterable<Operation> | Iterable<Operation>, o: ExecuteOptions): Promise<ExecuteResult> {
  const concurrency = Math.max(1, o.transfers ?? 8);
  const retries = Math.max(0, o.retries ?? 3);
  const emit = o.onEvent ?? (() => undefined);
  const result: ExecuteResult = {
    transferred: 0,
    transferredBytes: 0,
    copies: 0,
    copiedBytes: 0,
    metadataUpdates: 0,
    deleted: 0,
    skipped: 0,
    stale: [],
    failed: [],
    deletesNotRun: 0,
    interrupted: false,
    upToDate: 0,
  };
  const deletes = new OperationSpool();
  const queue = new PQueue({ concurrency });
  const sourceIsLocal = typeof o.source.localPath === 'function';
  /** Transfers queued or running (path → settles with whether it succeeded): copies of them wait. */
  const inFlight = new Map<string, Promise<boolean>>();
  /** Transfers of this run that did not succeed: copies of them upload the content instead. */
  const notWritten = new Set<string>();
  /** A copy source that failed → the path that took over uploading its content. */
  const takenOver = new Map<string, string>();
  /** Paths this run wrote (bounded): as copy sources they need no check. */
  const written = new Set<string>();
  /**
   * Case-insensitive destination: the names this run claimed (the first spelling in plan order
   * wins). Probed at the first transfer, so a run with nothing to transfer touches nothing.
   */
  let caseTwins: CaseTwins | undefined;
  let caseProbed = false;
  const caseTwinsOf = async (): Promise<CaseTwins | undefined> => {
    if (!caseProbed) {
      caseProbed = true;
      if (o.dest.caseInsensitive && (await o.dest.caseInsensitive())) caseTwins = new CaseTwins();
    }
    return caseTwins;
  };

  /** Throws when `op` would land on a file or folder already at the destination under another spelling. */
  const existingCaseTwin = async (op: Operation): Promise<void> => {
    if (!caseTwins || !o.dest.caseTwin) return;
    const other = await o.dest.caseTwin(op.path);
    if (other === undefined) return;
    const depth = other.split('/').length;
    const segs = op.path.split('/');
    const clash: CaseClash = depth < segs.length ? { other, folder: segs.slice(0, depth).join('/') } : { other };
    throw new Error(caseClashMessage(op.action, op.path, clash, o.dest.display));
  };

  /**
   * Transfers a folder at the destination was in the way of (the source has a file where the
   * destination has a folder holding files): retried once after the deletes, which remove the
   * folder's contents (and the folder, left empty) when the plan deletes them (--delete).
   */
  const deferred: Operation[] = [];
  let retryingDeferred = false;

  /** Runs one transfer; resolves with whether the destination now holds it (failures are recorded and reported). */
  const transfer = async (op: Operation): Promise<boolean> => {
    const started = performance.now();
    emit({ type: 'start', op });
    try {
      let via: Via = 'upload';
      for (let attempt = 0; ; attempt++) {
        try {
          via = await transferOne(op);
          break;
        } catch (err) {
          if (attempt >= retries || !isRetryable(err) || o.signal?.aborted) throw err;
          await sleep(retryDelayMs(err, attempt), o.signal);
          if (o.signal?.aborted) throw err;
        }
      }
      const size = op.size ?? 0;
      if (via === 'copy') {
        result.copies++;
        result.copiedBytes += size;
      } else if (via === 'mtime') {
        result.metadataUpdates++;
      } else {
        result.transferred++;
        result.transferredBytes += size;
      }
      // `bytes`: what the destination now holds for this file (progress counts it as done);
      // `via` tells a copy or an mtime update, which sent none of them.
      const done: ExecEvent = { type: 'done', op, bytes: size, durationMs: performance.now() - started };
      if (via !== 'upload') done.via = via;
      const resumed = resumedBy.get(op.path);
      if (resumed !== undefined) {
        resumedBy.delete(op.path);
        if (resumed > 0) done.resumedBytes = resumed;
      }
      emit(done);
      return true;
    } catch (err) {
      const f = { path: op.path, action: op.action, error: message(err) };
      if (!retryingDeferred && inTheWay(err) === 'folder') {
        deferred.push(op);
        return false;
      }
      if (err instanceof StaleError && (await alreadyTransferred(op, o))) {
        result.upToDate++;
        emit({ type: 'done', op, bytes: 0, durationMs: performance.now() - started });
        return true;
      } else if (err instanceof StaleError) {
        result.stale.push(f);
        emit({ type: 'stale', op, error: f.error, durationMs: performance.now() - started });
      } else {
        result.failed.push(f);
        emit({ type: 'failed', op, error: f.error, durationMs: performance.now() - started });
      }
      return false;
    }
  };

  /** Whether `from` at the destination holds what `op` expects (size, and hash when it can tell). */
  const copySourceHolds = async (from: string, op: Operation): Promise<boolean> => {
    if (written.has(from)) return true;
    const e = await o.dest.stat(from);
    if (!e) return false;
    if (op.size !== undefined && e.size !== op.size) return false;
    if (op.hash === undefined) return true;
    if (e.hash !== undefined) return e.hash === op.hash;
    const xet = xetIdentity(e.xetHash);
    if (xet !== undefined) {
      // hf: compare with the Xet hash of the local file this copy stands for.
      const src = o.source.localPath?.(op.path);
      if (src === undefined || !o.hashLocalXet) return true;
      const expect: { size: number; mtimeMs?: number } = { size: op.size ?? e.size };
      const sm = sourceMtime(op, o.direction);
      if (sm !== undefined) expect.mtimeMs = sm;
      try {
        return (await o.hashLocalXet(src, expect)) === xet;
      } catch {
        return false;
      }
    }
    const abs = o.dest.localPath?.(from);
    if (abs === undefined || !o.hashLocal) return true;
    try {
      return (await o.hashLocal(abs, { size: e.size, mtimeMs: e.mtimeMs })) === op.hash;
    } catch {
      return false;
    }
  };

  /**
   * A server-side copy for an operation with `copyFrom`: waits for the source's upload when
   * it is in flight. Returns 'upload' when this operation has to send the bytes itself (the
   * source's upload failed, the source is not as expected, or the store cannot copy).
   */
  const copyOrTakeOver = async (op: Operation, mtimeMs: number): Promise<Via> => {
    let from = op.copyFrom!;
    for (;;) {
      const next = takenOver.get(from);
      if (next === op.path) return 'upload'; // this operation took over (a retry)
      if (next !== undefined) {
        from = next;
        continue;
      }
      const pending = from === op.path ? undefined : inFlight.get(from);
      if (pending) {
        await pending;
        continue;
      }
      if (notWritten.has(from)) {
        takenOver.set(from, op.path);
        return 'upload';
      }
      break;
    }
    if (!o.dest.capabilities.serverSideCopy || !o.dest.copy) return 'upload';
    if (!(await copySourceHolds(from, op))) {
      notWritten.add(from);
      return copyOrTakeOver(op, mtimeMs);
    }
    const opts: Parameters<Store['write']>[2] = { mtimeMs, expect: destExpectation(op, o.direction) };
    if (o.abortInFlight) opts.signal = o.abortInFlight;
    await o.dest.copy(from, op.path, opts);
    return 'copy';
  };

  /** Bytes each transfer in flight did not send again (WriteOptions.onResumed), by path. */
  const resumedBy = new Map<string, number>();

  const transferOne = async (op: Operation): Promise<Via> => {
    await existingCaseTwin(op);
    const current = await o.source.stat(op.path);
    const planned: Expectation = { kind: 'version' };
    if (op.size !== undefined) planned.size = op.size;
    const sm = sourceMtime(op, o.direction);
    if (sm !== undefined) planned.mtimeMs = sm;
    if (current === undefined) throw new StaleError('the source file is gone since the plan was made');
    if (planned.size !== undefined && current.size !== planned.size) {
      throw new StaleError(`the source file changed since the plan was made (size ${current.size}, plan says ${planned.size})`);
    }
    if (planned.mtimeMs !== undefined && Math.abs(current.mtimeMs - planned.mtimeMs) >= 0.0015) {
      throw new StaleError('the source file changed since the plan was made (modification time differs)');
    }
    if (isMtimeOnly(op) && o.dest.capabilities.setMtime && o.dest.setMtime) {
      await o.dest.setMtime(op.path, current.mtimeMs, destExpectation(op, o.direction));
      return 'mtime';
    }
    if (op.copyFrom !== undefined && op.copyFrom !== op.path && (await copyOrTakeOver(op, current.mtimeMs)) === 'copy') return 'copy';
    const localPath = o.source.localPath?.(op.path);
    const source: TransferSource = {
      size: current.size,
      mtimeMs: current.mtimeMs,
      open: (range) => o.source.read(op.path, range),
    };
    if (localPath) source.localPath = localPath;
    const etag = current.etag;
    if (etag && o.source.readFrom) {
      // a big download interrupted now can continue from its temporary file (src/stores/local.ts)
      source.version = etag;
      source.openFrom = (prefixFile, offset) => o.source.readFrom!(op.path, etag, prefixFile, offset);
      if (o.source.fetchInto) source.fetchInto = (file, progress, fo) => o.source.fetchInto!(op.path, etag, file, progress, fo);
    }
    let hash = op.hash;
    if (hash === undefined && o.hashUploads && localPath && o.hashLocal && current.size >= (o.dest.capabilities.hashesWritesBelow ?? 0)) {
      try {
        hash = await o.hashLocal(localPath, { size: current.size, mtimeMs: current.mtimeMs });
      } catch {
        // sent without it; the transfer itself reports a changed source
      }
    }
    if (hash !== undefined) source.hash = hash;
    const writeOpts: Parameters<Store['write']>[2] = {
      mtimeMs: current.mtimeMs,
      expect: destExpectation(op, o.direction),
    };
    if (o.abortInFlight) writeOpts.signal = o.abortInFlight;
    writeOpts.onResumed = (bytes) => resumedBy.set(op.path, bytes);
    writeOpts.onBytes = (n, skipped) => emit(skipped ? { type: 'bytes', op, bytes: 0, resumedBytes: n } : { type: 'bytes', op, bytes: n });
    if (sourceIsLocal) {
      writeOpts.beforeCommit = async () => {
        const after = await o.source.stat(op.path);
        if (!after || after.size !== current.size || after.mtimeMs !== current.mtimeMs) {
          throw new ChangedDuringTransferError('changed during transfer (the file was being written); not replaced, re-run to send it');
        }
      };
    }
    await o.dest.write(op.path, source, writeOpts);
    return 'upload';
  };

  /**
   * Planned deletes whose path is a prefix of the current operation's path (plans are in path
   * order, so everything below a path comes right after it): a transfer of `a/x` that a delete
   * of `a` is in the way of waits until after the deletes (see `deferred`).
   */
  const prefixDeletes: Operation[] = [];
  const blockedByDelete = (op: Operation): boolean => {
    while (prefixDeletes.length > 0 && !op.path.startsWith(prefixDeletes[prefixDeletes.length - 1]!.path)) prefixDeletes.pop();
    return prefixDeletes.some((d) => op.path.startsWith(`${d.path}/`));
  };

  try {
    for await (const op of ops as AsyncIterable<Operation>) {
      if (o.signal?.aborted) {
        result.interrupted = true;
        break;
      }
      switch (op.action) {
        case 'skip':
          result.skipped++;
          emit({ type: 'skip', op });
          break;
        case 'delete':
          while (prefixDeletes.length > 0 && !op.path.startsWith(prefixDeletes[prefixDeletes.length - 1]!.path)) prefixDeletes.pop();
          prefixDeletes.push(op);
          await deletes.push(op);
          break;
        default: {
          if (blockedByDelete(op)) {
            // a type change: written after the deletes, which make room for it
            deferred.push(op);
            notWritten.add(op.path);
            break;
          }
          const clash = (await caseTwinsOf())?.claim(op.path);
          if (clash) {
            // Refused in plan order, before anything runs: which twin is refused never depends on timing.
            const error = caseClashMessage(op.action, op.path, clash, o.dest.display);
            emit({ type: 'start', op });
            result.failed.push({ path: op.path, action: op.action, error });
            emit({ type: 'failed', op, error, durationMs: 0 });
            notWritten.add(op.path);
            break;
          }
          if (queue.size >= concurrency) await queue.onSizeLessThan(concurrency);
          // Registered before it runs, so that a later copy of this path waits for it.
          let settle!: (ok: boolean) => void;
          inFlight.set(op.path, new Promise<boolean>((resolve) => (settle = resolve)));
          void queue
            .add(() => transfer(op))
            .then(
              (ok) => ok === true,
              () => false,
            )
            .then((ok) => {
              inFlight.delete(op.path);
              if (ok) {
                if (written.size >= WRITTEN_MEMORY) written.clear();
                written.add(op.path);
              } else notWritten.add(op.path);
              settle(ok);
            });
        }
      }
    }
    await queue.onIdle();
    if (o.signal?.aborted) result.interrupted = true;

    // The deletes below make room for the deferred type changes: a local source that cannot be
    // read now would lose the destination's old file for nothing, so it fails first (and then,
    // as any failure, stops the deletes).
    if (deferred.length > 0 && typeof o.source.localPath === 'function' && !o.signal?.aborted) {
      const readable: Operation[] = [];
      for (const op of deferred.splice(0)) {
        try {
          (await o.source.read(op.path, { start: 0, end: 0 })).destroy();
          readable.push(op);
        } catch (err) {
          const f = { path: op.path, action: op.action, error: message(err) };
          emit({ type: 'start', op });
          result.failed.push(f);
          emit({ type: 'failed', op, error: f.error, durationMs: 0 });
        }
      }
      deferred.push(...readable);
    }
    const pending = deletes.count;
    if (pending > 0) {
      if (result.interrupted) {
        result.deletesNotRun = pending;
        result.deleteRefusal = 'the run was interrupted';
      } else if (result.failed.length > 0) {
        result.deletesNotRun = pending;
        result.deleteRefusal = `not deleting files as ${result.failed.length} transfer(s) failed`;
      } else if (o.maxDelete !== undefined && deletes.count > o.maxDelete) {
        result.deletesNotRun = pending;
        result.deleteRefusal = `the plan deletes ${deletes.count} files, more than --max-delete ${o.maxDelete}; nothing was deleted`;
      } else {
        await runDeletes(deletes, o, result, emit);
      }
    }
    // Folders that were in the way of files: their contents are deleted now (or were not
    // planned for deletion: then the retry fails, naming --delete).
    retryingDeferred = true;
    for (const op of deferred.splice(0)) {
      if (o.signal?.aborted) {
        result.interrupted = true;
        break;
      }
      if (queue.size >= concurrency) await queue.onSizeLessThan(concurrency);
      void queue.add(() => transfer(op));
    }
    await queue.onIdle();
  } finally {
    queue.clear();
    await queue.onIdle();
    await deletes.dispose();
  }
  return result;
}

/** What kind of thing an error of the destination store says is in the way (src/stores/local.ts `InTheWayError`). */
function inTheWay(err: unknown): 'file' | 'folder' | 'link' | undefined {
  const e = err as { name?: string; what?: 'file' | 'folder' | 'link' } | undefined;
  return e?.name === 'InTheWayError' ? e.what : undefined;
}

async function runDeletes(
  deletes: OperationSpool,
  o: ExecuteOptions,
  result: ExecuteResult,
  emit: (e: ExecEvent) => void,
): Promise<void> {
  let batch: Operation[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const ops = batch;
    batch = [];
    await runDeleteBatch(ops, o, result, emit);
  };
  for await (const op of deletes.drain()) {
    if (o.signal?.aborted) {
      result.interrupted = true;
      result.deletesNotRun++;
      continue;
    }
    batch.push(op);
    if (batch.length >= DELETE_BATCH) await flush();
  }
  if (!o.signal?.aborted) await flush();
  else result.deletesNotRun += batch.length;
}

/** Runs one batch of deletes and records their results. */
async function runDeleteBatch(ops: Operation[], o: ExecuteOptions, result: ExecuteResult, emit: (e: ExecEvent) => void): Promise<void> {
  for (const op of ops) emit({ type: 'start', op });
  const started = performance.now();
  let results: RemoveResult[];
  try {
    results = await o.dest.remove(ops.map((op) => ({ path: op.path, expect: deleteExpectation(op, o.direction) })));
  } catch (err) {
    results = ops.map((op) => ({ path: op.path, ok: false, error: message(err) }));
  }
  const byPath = new Map(ops.map((op) => [op.path, op]));
  for (const r of results) {
    const op = byPath.get(r.path)!;
    const durationMs = performance.now() - started;
    if (r.ok) {
      result.deleted++;
      emit({ type: 'done', op, bytes: 0, durationMs });
    } else if (r.stale && (await o.dest.stat(r.path).catch(() => null)) === undefined) {
      // Already gone: the state the plan wanted (an earlier run of this plan deleted it).
      result.upToDate++;
      emit({ type: 'done', op, bytes: 0, durationMs });
    } else if (r.stale) {
      result.stale.push({ path: r.path, action: 'delete', error: r.error ?? 'changed since the plan was made' });
      emit({ type: 'stale', op, error: r.error ?? 'changed since the plan was made', durationMs });
    } else {
      result.failed.push({ path: r.path, action: 'delete', error: r.error ?? 'delete failed' });
      emit({ type: 'failed', op, error: r.error ?? 'delete failed', durationMs });
    }
  }
}
