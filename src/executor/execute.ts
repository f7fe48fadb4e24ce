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
 */
import PQueue from 'p-queue';
import { StaleError, type Expectation, type RemoveResult, type Store, type TransferSource } from '../stores/store.js';
import type { Direction, Operation } from '../types.js';
import { OperationSpool } from './spool.js';

export type ExecEventType = 'start' | 'done' | 'failed' | 'stale' | 'skip' | 'delete-refused';

export interface ExecEvent {
  type: ExecEventType;
  op: Operation;
  bytes?: number;
  durationMs?: number;
  error?: string;
}

export interface ExecuteOptions {
  source: Store;
  dest: Store;
  direction: Direction;
  transfers?: number;
  retries?: number;
  maxDelete?: number;
  signal?: AbortSignal;
  onEvent?: (e: ExecEvent) => void;
}

export interface Failure {
  path: string;
  action: string;
  error: string;
}

export interface ExecuteResult {
  transferred: number;
  transferredBytes: number;
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
}

/** A source file changed between the plan and the end of its transfer. */
export class ChangedDuringTransferError extends Error {
  override name = 'ChangedDuringTransferError';
}

const DELETE_BATCH = 1000;

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
    return Math.abs(src.mtimeMs - dst.mtimeMs) < 1;
  } catch {
    return false;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isRetryable(err: unknown): boolean {
  const e = err as { name?: string; code?: string; $retryable?: unknown };
  if (e?.name === 'RetryableError') return true;
  return ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNREFUSED', 'EAI_AGAIN', 'UND_ERR_SOCKET'].includes(e?.code ?? '');
}

export async function executePlan(ops: AsyncIterable<Operation> | Iterable<Operation>, o: ExecuteOptions): Promise<ExecuteResult> {
  const concurrency = Math.max(1, o.transfers ?? 8);
  const retries = Math.max(0, o.retries ?? 3);
  const emit = o.onEvent ?? (() => undefined);
  const result: ExecuteResult = {
    transferred: 0,
    transferredBytes: 0,
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

  const transfer = async (op: Operation): Promise<void> => {
    const started = performance.now();
    emit({ type: 'start', op });
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await transferOne(op);
          break;
        } catch (err) {
          if (attempt >= retries || !isRetryable(err) || o.signal?.aborted) throw err;
          const waitMs = Math.min(8000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
          await new Promise((r) => setTimeout(r, waitMs));
        }
      }
      result.transferred++;
      result.transferredBytes += op.size ?? 0;
      emit({ type: 'done', op, bytes: op.size ?? 0, durationMs: performance.now() - started });
    } catch (err) {
      const f = { path: op.path, action: op.action, error: message(err) };
      if (err instanceof StaleError && (await alreadyTransferred(op, o))) {
        result.upToDate++;
        emit({ type: 'done', op, bytes: 0, durationMs: performance.now() - started });
      } else if (err instanceof StaleError) {
        result.stale.push(f);
        emit({ type: 'stale', op, error: f.error, durationMs: performance.now() - started });
      } else {
        result.failed.push(f);
        emit({ type: 'failed', op, error: f.error, durationMs: performance.now() - started });
      }
    }
  };

  const transferOne = async (op: Operation): Promise<void> => {
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
    const localPath = o.source.localPath?.(op.path);
    const source: TransferSource = {
      size: current.size,
      mtimeMs: current.mtimeMs,
      open: (range) => o.source.read(op.path, range),
    };
    if (localPath) source.localPath = localPath;
    const writeOpts: Parameters<Store['write']>[2] = {
      mtimeMs: current.mtimeMs,
      expect: destExpectation(op, o.direction),
    };
    if (o.signal) writeOpts.signal = o.signal;
    if (sourceIsLocal) {
      writeOpts.beforeCommit = async () => {
        const after = await o.source.stat(op.path);
        if (!after || after.size !== current.size || after.mtimeMs !== current.mtimeMs) {
          throw new ChangedDuringTransferError('changed during transfer (the file was being written); not replaced, re-run to send it');
        }
      };
    }
    await o.dest.write(op.path, source, writeOpts);
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
          await deletes.push(op);
          break;
        default:
          if (queue.size >= concurrency) await queue.onSizeLessThan(concurrency);
          void queue.add(() => transfer(op));
      }
    }
    await queue.onIdle();
    if (o.signal?.aborted) result.interrupted = true;

    const pending = deletes.count;
    if (pending > 0) {
      if (result.interrupted) {
        result.deletesNotRun = pending;
        result.deleteRefusal = 'the run was interrupted';
      } else if (result.failed.length > 0) {
        result.deletesNotRun = pending;
        result.deleteRefusal = `not deleting files as ${result.failed.length} transfer(s) failed`;
      } else if (o.maxDelete !== undefined && pending > o.maxDelete) {
        result.deletesNotRun = pending;
        result.deleteRefusal = `the plan deletes ${pending} files, more than --max-delete ${o.maxDelete}; nothing was deleted`;
      } else {
        await runDeletes(deletes, o, result, emit);
      }
    }
  } finally {
    queue.clear();
    await queue.onIdle();
    await deletes.dispose();
  }
  return result;
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
