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
import { ChangedDuringTransferError, InTheWayError, isRetryable, retryAfterOf } from '../errors.js';
import { StaleError, modifyWindow, sameInstant, sameMtime, type Expectation, type RemoveResult, type Store, type TransferSource, type WriteOptions } from '../stores/store.js';
import { isMtimeOnly, xetIdentity, type Direction, type FileEntry, type Operation } from '../types.js';
import { CaseTwins, caseClashMessage, type CaseClash } from './case-twins.js';
import { OperationSpool } from './spool.js';

/**
 * `bytes`: progress of a transfer (`bytes` moved, or `resumedBytes` taken from an interrupted
 * one, as the store reports them through `WriteOptions.onBytes`), for progress displays; no JSON
 * event. `restart`: a retry of the transfer begins, whose bytes count from zero again.
 */
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
  /** For `bytes`: the transfer is tried again; what the failed attempt reported no longer counts. */
  restart?: boolean;
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
   * it (S3 metadata); except those smaller than `dest.features.hashesWritesBelow`, which
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

export { ChangedDuringTransferError } from '../errors.js';

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
 * (same size, same mtime to the coarser precision of the two stores) while the source is
 * still the planned version? Then an earlier run of the plan already did it.
 */
async function alreadyTransferred(op: Operation, o: ExecuteOptions): Promise<boolean> {
  try {
    const [src, dst] = await Promise.all([o.source.stat(op.path), o.dest.stat(op.path)]);
    if (!src || !dst || src.size !== dst.size) return false;
    const planned = sourceMtime(op, o.direction);
    if (op.size !== undefined && src.size !== op.size) return false;
    if (planned !== undefined && !sameInstant(src.mtimeMs, planned)) return false;
    if (!sameMtime(src.mtimeMs, dst.mtimeMs, modifyWindow(o.source.features, o.dest.features))) return false;
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

/** Backoff before retry `attempt + 1`: exponential with jitter, at least the server's Retry-After (at most 60 s). */
export function retryDelayMs(err: unknown, attempt: number): number {
  const backoff = Math.min(8000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
  const after = retryAfterOf(err);
  return after !== undefined ? Math.max(backoff, Math.min(60_000, after)) : backoff;
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

/**
 * The retry policy of one operation: another attempt after a failure that {@link isRetryable}
 * says may go away, at most `retries` times, never once the run is stopped, after a backoff
 * ({@link retryDelayMs}, at least the server's Retry-After).
 */
export class RetryPolicy {
  constructor(
    readonly retries: number,
    private readonly signal?: AbortSignal,
    private readonly delayMs: (err: unknown, attempt: number) => number = retryDelayMs,
  ) {}

  /** Whether a failure of attempt `attempt` (0-based) gets another attempt. */
  shouldRetry(err: unknown, attempt: number): boolean {
    return attempt < this.retries && isRetryable(err) && !this.signal?.aborted;
  }

  /** Runs `attempt` until it succeeds or the policy gives up (then its last error is thrown). */
  async run<T>(attempt: (n: number) => Promise<T>): Promise<T> {
    for (let n = 0; ; n++) {
      try {
        return await attempt(n);
      } catch (err) {
        if (!this.shouldRetry(err, n)) throw err;
        await sleep(this.delayMs(err, n), this.signal);
        if (this.signal?.aborted) throw err;
      }
    }
  }
}

/**
 * The delete gate: why the planned deletes must not run at all, or undefined when they may.
 * None after an interrupted run or a failed transfer (a source that could not be read must
 * not lose its destination copy), none past `--max-delete`.
 */
export function deleteRefusal(state: { pending: number; interrupted: boolean; failed: number; maxDelete?: number | undefined }): string | undefined {
  if (state.pending === 0) return undefined;
  if (state.interrupted) return 'the run was interrupted';
  if (state.failed > 0) return `not deleting files as ${state.failed} transfer(s) failed`;
  if (state.maxDelete !== undefined && state.pending > state.maxDelete) {
    return `the plan deletes ${state.pending} files, more than --max-delete ${state.maxDelete}; nothing was deleted`;
  }
  return undefined;
}

/** Applies a plan. See the file's header for what it guarantees. */
export async function executePlan(ops: AsyncIterable<Operation> | Iterable<Operation>, o: ExecuteOptions): Promise<ExecuteResult> {
  return new Executor(o).run(ops);
}

/**
 * One run of the executor: the run's state in fields, each policy a stage of its own —
 * {@link schedule} (plan order: skips, deletes held back, case twins refused, transfers
 * queued), {@link transfer} (one operation with the {@link RetryPolicy}, its accounting and
 * events), {@link verifySource} (the source is still as planned), {@link copyOrTakeOver}
 * (dedup copy coordination), {@link runDeletes} (the delete gate, then the deletes), and the
 * type changes deferred until after the deletes ({@link retryDeferred}).
 */
export class Executor {
  readonly result: ExecuteResult = {
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
  private readonly concurrency: number;
  private readonly retry: RetryPolicy;
  private readonly emit: (e: ExecEvent) => void;
  private readonly deletes = new OperationSpool();
  private readonly queue: PQueue;
  private readonly sourceIsLocal: boolean;

  // -- copy coordination (dedup) --
  /** Transfers queued or running (path → settles with whether it succeeded): copies of them wait. */
  private readonly inFlight = new Map<string, Promise<boolean>>();
  /** Transfers of this run that did not succeed: copies of them upload the content instead. */
  private readonly notWritten = new Set<string>();
  /** A copy source that failed → the path that took over uploading its content. */
  private readonly takenOver = new Map<string, string>();
  /** Paths this run wrote (bounded): as copy sources they need no check. */
  private readonly written = new Set<string>();

  // -- case twins --
  /**
   * Case-insensitive destination: the names this run claimed (the first spelling in plan order
   * wins). Probed at the first transfer, so a run with nothing to transfer touches nothing.
   */
  private caseTwins: CaseTwins | undefined;
  private caseProbed = false;

  // -- type changes --
  /**
   * Transfers that wait for the deletes: a planned delete is in the way (a type change), or a
   * folder at the destination was (retried once after the deletes, which remove the folder's
   * contents, and the folder, left empty, when the plan deletes them: --delete).
   */
  private readonly deferred: Operation[] = [];
  private retryingDeferred = false;
  /**
   * Planned deletes whose path is a prefix of the current operation's path (plans are in path
   * order, so everything below a path comes right after it).
   */
  private readonly prefixDeletes: Operation[] = [];

  /** Bytes each transfer in flight did not send again (WriteOptions.onResumed), by path. */
  private readonly resumedBy = new Map<string, number>();

  constructor(private readonly o: ExecuteOptions) {
    this.concurrency = Math.max(1, o.transfers ?? 8);
    this.retry = new RetryPolicy(Math.max(0, o.retries ?? 3), o.signal);
    this.emit = o.onEvent ?? (() => undefined);
    this.queue = new PQueue({ concurrency: this.concurrency });
    this.sourceIsLocal = !o.source.features.remote;
  }

  /** Runs the plan: transfers (in plan order, concurrently), then the gated deletes, then the deferred transfers. */
  async run(ops: AsyncIterable<Operation> | Iterable<Operation>): Promise<ExecuteResult> {
    const { o, result } = this;
    try {
      for await (const op of ops as AsyncIterable<Operation>) {
        if (o.signal?.aborted) {
          result.interrupted = true;
          break;
        }
        await this.schedule(op);
      }
      await this.queue.onIdle();
      if (o.signal?.aborted) result.interrupted = true;
      await this.checkDeferredReadable();
      await this.runDeletes();
      await this.retryDeferred();
    } finally {
      this.queue.clear();
      await this.queue.onIdle();
      await this.deletes.dispose();
    }
    return result;
  }

  /** Plan order: counts a skip, holds a delete back, defers or refuses a transfer, or queues it. */
  private async schedule(op: Operation): Promise<void> {
    const { result } = this;
    switch (op.action) {
      case 'skip':
        result.skipped++;
        this.emit({ type: 'skip', op });
        return;
      case 'delete':
        this.popPrefixDeletes(op);
        this.prefixDeletes.push(op);
        await this.deletes.push(op);
        return;
      default: {
        if (this.blockedByDelete(op)) {
          // a type change: written after the deletes, which make room for it
          this.deferred.push(op);
          this.notWritten.add(op.path);
          return;
        }
        if (await this.refuseCaseTwin(op)) return;
        await this.enqueue(op);
      }
    }
  }

  /** Queues a transfer (waiting while the queue is full: backpressure on the plan stream). */
  private async enqueue(op: Operation): Promise<void> {
    if (this.queue.size >= this.concurrency) await this.queue.onSizeLessThan(this.concurrency);
    // Registered before it runs, so that a later copy of this path waits for it.
    let settle!: (ok: boolean) => void;
    this.inFlight.set(op.path, new Promise<boolean>((resolve) => (settle = resolve)));
    void this.queue
      .add(() => this.transfer(op))
      .then(
        (ok) => ok === true,
        () => false,
      )
      .then((ok) => {
        this.inFlight.delete(op.path);
        if (ok) {
          if (this.written.size >= WRITTEN_MEMORY) this.written.clear();
          this.written.add(op.path);
        } else this.notWritten.add(op.path);
        settle(ok);
      });
  }

  // ---------------------------------------------------------------------------------------
  // type changes

  private popPrefixDeletes(op: Operation): void {
    const p = this.prefixDeletes;
    while (p.length > 0 && !op.path.startsWith(p[p.length - 1]!.path)) p.pop();
  }

  /** A transfer of `a/x` that a planned delete of `a` is in the way of waits until after the deletes. */
  private blockedByDelete(op: Operation): boolean {
    this.popPrefixDeletes(op);
    return this.prefixDeletes.some((d) => op.path.startsWith(`${d.path}/`));
  }

  /**
   * The deletes make room for the deferred type changes: a local source that cannot be read
   * now would lose the destination's old file for nothing, so it fails first (and then, as any
   * failure, stops the deletes).
   */
  private async checkDeferredReadable(): Promise<void> {
    const { o, deferred } = this;
    if (deferred.length === 0 || !this.sourceIsLocal || o.signal?.aborted) return;
    const readable: Operation[] = [];
    for (const op of deferred.splice(0)) {
      try {
        (await o.source.read(op.path, { start: 0, end: 0 })).destroy();
        readable.push(op);
      } catch (err) {
        this.fail(op, message(err));
      }
    }
    deferred.push(...readable);
  }

  /**
   * The deferred transfers, after the deletes: folders that were in the way of files had their
   * contents deleted (or were not planned for deletion: then the retry fails, naming --delete).
   */
  private async retryDeferred(): Promise<void> {
    this.retryingDeferred = true;
    for (const op of this.deferred.splice(0)) {
      if (this.o.signal?.aborted) {
        this.result.interrupted = true;
        break;
      }
      if (this.queue.size >= this.concurrency) await this.queue.onSizeLessThan(this.concurrency);
      void this.queue.add(() => this.transfer(op));
    }
    await this.queue.onIdle();
  }

  // ---------------------------------------------------------------------------------------
  // case twins

  private async caseTwinsOf(): Promise<CaseTwins | undefined> {
    if (!this.caseProbed) {
      this.caseProbed = true;
      if (this.o.dest.caseInsensitive && (await this.o.dest.caseInsensitive())) this.caseTwins = new CaseTwins();
    }
    return this.caseTwins;
  }

  /**
   * On a case-insensitive destination: refuses `op` when an earlier path of the plan differs
   * from it only by case. Refused in plan order, before anything runs: which twin is refused
   * never depends on timing.
   */
  private async refuseCaseTwin(op: Operation): Promise<boolean> {
    const clash = (await this.caseTwinsOf())?.claim(op.path);
    if (!clash) return false;
    this.fail(op, caseClashMessage(op.action, op.path, clash, this.o.dest.display));
    this.notWritten.add(op.path);
    return true;
  }

  /** Throws when `op` would land on a file or folder already at the destination under another spelling. */
  private async existingCaseTwin(op: Operation): Promise<void> {
    const { dest } = this.o;
    if (!this.caseTwins || !dest.caseTwin) return;
    const other = await dest.caseTwin(op.path);
    if (other === undefined) return;
    const depth = other.split('/').length;
    const segs = op.path.split('/');
    const clash: CaseClash = depth < segs.length ? { other, folder: segs.slice(0, depth).join('/') } : { other };
    throw new Error(caseClashMessage(op.action, op.path, clash, dest.display));
  }

  // ---------------------------------------------------------------------------------------
  // transfers

  /** Records a failure that happened before the operation could start (events `start` and `failed`). */
  private fail(op: Operation, error: string): void {
    this.emit({ type: 'start', op });
    this.result.failed.push({ path: op.path, action: op.action, error });
    this.emit({ type: 'failed', op, error, durationMs: 0 });
  }

  /** Runs one transfer; resolves with whether the destination now holds it (failures are recorded and reported). */
  async transfer(op: Operation): Promise<boolean> {
    const { result } = this;
    const started = performance.now();
    this.emit({ type: 'start', op });
    try {
      const via = await this.retry.run((n) => {
        if (n > 0) this.emit({ type: 'bytes', op, bytes: 0, restart: true });
        return this.transferOne(op);
      });
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
      const resumed = this.resumedBy.get(op.path);
      if (resumed !== undefined) {
        this.resumedBy.delete(op.path);
        if (resumed > 0) done.resumedBytes = resumed;
      }
      this.emit(done);
      return true;
    } catch (err) {
      const f = { path: op.path, action: op.action, error: message(err) };
      if (!this.retryingDeferred && inTheWay(err) === 'folder') {
        this.deferred.push(op);
        return false;
      }
      if (err instanceof StaleError && (await alreadyTransferred(op, this.o))) {
        result.upToDate++;
        this.emit({ type: 'done', op, bytes: 0, durationMs: performance.now() - started });
        return true;
      } else if (err instanceof StaleError) {
        result.stale.push(f);
        this.emit({ type: 'stale', op, error: f.error, durationMs: performance.now() - started });
      } else {
        result.failed.push(f);
        this.emit({ type: 'failed', op, error: f.error, durationMs: performance.now() - started });
      }
      return false;
    }
  }

  /** The source's current entry, when it is still what the plan saw (else `StaleError`). */
  async verifySource(op: Operation): Promise<FileEntry> {
    const current = await this.o.source.stat(op.path);
    const size = op.size;
    const mtimeMs = sourceMtime(op, this.o.direction);
    if (current === undefined) throw new StaleError('the source file is gone since the plan was made');
    if (size !== undefined && current.size !== size) {
      throw new StaleError(`the source file changed since the plan was made (size ${current.size}, plan says ${size})`);
    }
    if (mtimeMs !== undefined && !sameInstant(current.mtimeMs, mtimeMs)) {
      throw new StaleError('the source file changed since the plan was made (modification time differs)');
    }
    return current;
  }

  /** One attempt at one transfer: an mtime update, a server-side copy, or a write of the bytes. */
  private async transferOne(op: Operation): Promise<Via> {
    const { o } = this;
    await this.existingCaseTwin(op);
    const current = await this.verifySource(op);
    if (isMtimeOnly(op) && o.dest.setMtime) {
      await o.dest.setMtime(op.path, current.mtimeMs, destExpectation(op, o.direction));
      return 'mtime';
    }
    if (op.copyFrom !== undefined && op.copyFrom !== op.path && (await this.copyOrTakeOver(op, current.mtimeMs)) === 'copy') return 'copy';
    const localPath = o.source.localPath?.(op.path);
    // Every read of a remote source is pinned to the version just checked (its ETag): one
    // replaced since (even with the same size and mtime) fails the read as stale, never lands
    // under the final name with the checked version's mtime, never mixes two versions' ranges.
    const pin = current.etag !== undefined && current.etag !== '' ? { etag: current.etag } : undefined;
    const source: TransferSource = {
      size: current.size,
      mtimeMs: current.mtimeMs,
      open: (range) => o.source.read(op.path, range, pin),
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
    if (hash === undefined && o.hashUploads && localPath && o.hashLocal && current.size >= (o.dest.features.hashesWritesBelow ?? 0)) {
      try {
        hash = await o.hashLocal(localPath, { size: current.size, mtimeMs: current.mtimeMs });
      } catch {
        // sent without it; the transfer itself reports a changed source
      }
    }
    if (hash !== undefined) source.hash = hash;
    const writeOpts: WriteOptions = {
      mtimeMs: current.mtimeMs,
      expect: destExpectation(op, o.direction),
    };
    if (o.abortInFlight) writeOpts.signal = o.abortInFlight;
    writeOpts.onResumed = (bytes) => this.resumedBy.set(op.path, bytes);
    writeOpts.onBytes = (n, skipped) => this.emit(skipped ? { type: 'bytes', op, bytes: 0, resumedBytes: n } : { type: 'bytes', op, bytes: n });
    if (this.sourceIsLocal) {
      writeOpts.beforeCommit = async () => {
        const after = await o.source.stat(op.path);
        if (!after || after.size !== current.size || after.mtimeMs !== current.mtimeMs) {
          throw new ChangedDuringTransferError('changed during transfer (the file was being written); not replaced, re-run to send it');
        }
      };
    }
    await o.dest.write(op.path, source, writeOpts);
    return 'upload';
  }

  // ---------------------------------------------------------------------------------------
  // copy coordination (dedup)

  /**
   * A server-side copy for an operation with `copyFrom`: waits for the source's upload when
   * it is in flight. Returns 'upload' when this operation has to send the bytes itself (the
   * source's upload failed, the source is not as expected, or the store cannot copy).
   */
  async copyOrTakeOver(op: Operation, mtimeMs: number): Promise<Via> {
    const { o } = this;
    let from = op.copyFrom!;
    for (;;) {
      const next = this.takenOver.get(from);
      if (next === op.path) return 'upload'; // this operation took over (a retry)
      if (next !== undefined) {
        from = next;
        continue;
      }
      const pending = from === op.path ? undefined : this.inFlight.get(from);
      if (pending) {
        await pending;
        continue;
      }
      if (this.notWritten.has(from)) {
        this.takenOver.set(from, op.path);
        return 'upload';
      }
      break;
    }
    if (!o.dest.copy) return 'upload';
    const holds = await this.copySourceHolds(from, op);
    if (!holds.ok) {
      this.notWritten.add(from);
      return this.copyOrTakeOver(op, mtimeMs);
    }
    const opts: WriteOptions = { mtimeMs, expect: destExpectation(op, o.direction) };
    // the copy is of the version just checked (a source replaced since: stale, not other bytes)
    if (holds.etag) opts.sourceEtag = holds.etag;
    if (o.abortInFlight) opts.signal = o.abortInFlight;
    await o.dest.copy(from, op.path, opts);
    return 'copy';
  }

  /**
   * Whether `from` at the destination holds what `op` expects (size, and hash when it can tell),
   * and the version (etag) so checked. A file this run wrote is taken as is (the store itself
   * refuses to copy it once another writer replaced it: S3Store.copy).
   */
  private async copySourceHolds(from: string, op: Operation): Promise<{ ok: boolean; etag?: string }> {
    const { o } = this;
    const no = { ok: false };
    if (this.written.has(from)) return { ok: true };
    const e = await o.dest.stat(from);
    if (!e) return no;
    if (op.size !== undefined && e.size !== op.size) return no;
    const yes = e.etag ? { ok: true, etag: e.etag } : { ok: true };
    const holdsIf = (same: boolean): { ok: boolean; etag?: string } => (same ? yes : no);
    if (op.hash === undefined) return yes;
    if (e.hash !== undefined) return holdsIf(e.hash === op.hash);
    const xet = xetIdentity(e.xetHash);
    if (xet !== undefined) {
      // hf: compare with the Xet hash of the local file this copy stands for.
      const src = o.source.localPath?.(op.path);
      if (src === undefined || !o.hashLocalXet) return yes;
      const expect: { size: number; mtimeMs?: number } = { size: op.size ?? e.size };
      const sm = sourceMtime(op, o.direction);
      if (sm !== undefined) expect.mtimeMs = sm;
      try {
        return holdsIf((await o.hashLocalXet(src, expect)) === xet);
      } catch {
        return no;
      }
    }
    const abs = o.dest.localPath?.(from);
    if (abs === undefined || !o.hashLocal) return yes;
    try {
      return holdsIf((await o.hashLocal(abs, { size: e.size, mtimeMs: e.mtimeMs })) === op.hash);
    } catch {
      return no;
    }
  }

  // ---------------------------------------------------------------------------------------
  // deletes

  /** The delete stage: the gate ({@link deleteRefusal}), then every held-back delete in batches. */
  async runDeletes(): Promise<void> {
    const { o, result, deletes } = this;
    const refusal = deleteRefusal({ pending: deletes.count, interrupted: result.interrupted, failed: result.failed.length, maxDelete: o.maxDelete });
    if (refusal !== undefined) {
      result.deletesNotRun = deletes.count;
      result.deleteRefusal = refusal;
      return;
    }
    if (deletes.count === 0) return;
    let batch: Operation[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const ops = batch;
      batch = [];
      await this.runDeleteBatch(ops);
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
  private async runDeleteBatch(ops: Operation[]): Promise<void> {
    const { o, result, emit } = this;
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
}

/** What kind of thing an error of the destination store says is in the way (`InTheWayError`). */
function inTheWay(err: unknown): 'file' | 'folder' | 'link' | undefined {
  return err instanceof InTheWayError ? err.what : undefined;
}
