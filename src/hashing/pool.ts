/**
 * A small worker_threads pool that hashes files off the main thread, so the CLI (progress
 * bars, signal handling, network I/O) stays responsive while gigabytes are hashed.
 *
 * Worker script: `new URL('./hash-worker.js', import.meta.url)`, i.e. the compiled sibling
 * in `dist/hashing/`. Under vitest this module runs from `src/hashing/pool.ts`, where no
 * `.js` sibling exists and Node 20 cannot run a `.ts` worker; rather than point at a
 * possibly stale `dist/` from the sources, the pool then runs in **inline mode**: same API,
 * same `hashFile`, same concurrency limit, on the calling thread. `pool.mode` says which
 * one is in use, and the tests drive the compiled pool in `dist/` to cover real workers.
 * A worker that cannot start (missing file, crash) also degrades to inline hashing rather
 * than failing the sync.
 *
 * Workers are `unref()`ed while idle and `ref()`ed while they have jobs: an idle pool never
 * keeps the process alive, and a pending hash never lets it exit early.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SerializedError, WorkerRequest, WorkerResponse } from './hash-worker.js';
import { md5FileRange } from './md5-range.js';
import {
  defaultBackend,
  FileChangedError,
  hashFile,
  hashFileSync,
  isXetAlgorithm,
  loadXet,
  SYNC_HASH_MAX,
  type FileIdentity,
  type HashAlgorithm,
  type HashFileResult,
} from './xxh128.js';

/** min(4, available parallelism). */
export function defaultPoolSize(): number {
  return Math.max(1, Math.min(4, os.availableParallelism()));
}

export interface HashPoolOptions {
  /** Worker threads (default {@link defaultPoolSize}). */
  size?: number;
  /** Files in flight per worker (default 2: one being hashed while the next one's I/O runs). */
  perWorker?: number;
  /** Worker script (default: the compiled `hash-worker.js` next to this module). */
  workerUrl?: URL;
  /** Force inline mode (no threads). */
  inline?: boolean;
}

export interface PoolHashOptions {
  signal?: AbortSignal;
  /** The size the caller expects: small files are read synchronously (see SYNC_HASH_MAX). */
  sizeHint?: number;
  /** What the caller's scan saw: a different file is a FileChangedError without reading it. */
  expect?: FileIdentity;
  /** Default `xxh128`. */
  algorithm?: HashAlgorithm;
}

export class HashPoolClosedError extends Error {
  override readonly name = 'HashPoolClosedError';
  constructor() {
    super('the hash pool was closed');
  }
}

interface Job {
  id: number;
  path: string;
  /** The path as bytes (a name that is not UTF-8), for md5Range. */
  rawPath?: Buffer;
  sizeHint: number | undefined;
  expect: FileIdentity | undefined;
  algorithm: HashAlgorithm | undefined;
  /** Set for an MD5 of a byte range (`md5Range`) instead of a whole-file hash. */
  range?: { start: number; end: number };
  /** Set for an MD5 of bytes in shared memory (`md5Buffer`). */
  shared?: { buf: SharedArrayBuffer; offset: number; length: number };
  resolve: (r: HashFileResult) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  slot: Slot | undefined;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Job>;
  dead: boolean;
}

function deserializeError(e: SerializedError): Error {
  let err: Error;
  if (e.name === 'FileChangedError' && e.path !== undefined && e.detail !== undefined) {
    err = new FileChangedError(e.path, e.detail);
  } else {
    err = new Error(e.message);
    if (e.name !== 'Error') Object.defineProperty(err, 'name', { value: e.name, configurable: true, writable: true });
    const x = err as Error & { code?: string; path?: string };
    if (e.code !== undefined) x.code = e.code;
    if (e.path !== undefined) x.path = e.path;
  }
  if (e.stack) err.stack = e.stack;
  return err;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

export class HashPool {
  readonly size: number;
  readonly perWorker: number;
  /** `'workers'` when the compiled worker script exists, else `'inline'` (see the module comment). */
  readonly mode: 'workers' | 'inline';
  private readonly workerUrl: URL;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private inlineActive = 0;
  private readonly inlineWaiters: (() => void)[] = [];
  /** Errors that made a worker unusable (reported by `stats()`). */
  private workerFailures = 0;

  constructor(opts: HashPoolOptions = {}) {
    this.size = Math.max(1, Math.floor(opts.size ?? defaultPoolSize()));
    this.perWorker = Math.max(1, Math.floor(opts.perWorker ?? 2));
    this.workerUrl = opts.workerUrl ?? new URL('./hash-worker.js', import.meta.url);
    let mode: 'workers' | 'inline' = 'inline';
    if (!opts.inline && this.workerUrl.protocol === 'file:') {
      try {
        if (existsSync(fileURLToPath(this.workerUrl))) mode = 'workers';
      } catch {
        mode = 'inline';
      }
    }
    this.mode = mode;
  }

  stats(): { mode: 'workers' | 'inline'; threads: number; queued: number; workerFailures: number } {
    return { mode: this.mode, threads: this.slots.length, queued: this.queue.length, workerFailures: this.workerFailures };
  }

  /** Hashes one file; rejects with that file's error (other files are unaffected). */
  hash(absPath: string, opts: PoolHashOptions = {}): Promise<HashFileResult> {
    if (this.closed) return Promise.reject(new HashPoolClosedError());
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const { sizeHint, expect, algorithm } = opts;
    if (this.mode === 'inline' || this.workerFailures >= this.size) return this.hashInline(absPath, signal, sizeHint, expect, algorithm);
    return new Promise<HashFileResult>((resolve, reject) => {
      const job: Job = { id: this.nextId++, path: absPath, sizeHint, expect, algorithm, resolve, reject, signal, onAbort: undefined, slot: undefined };
      if (signal) {
        job.onAbort = () => this.cancel(job, abortReason(signal));
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.pump();
    });
  }

  /**
   * MD5 (hex) of bytes `[start, end)` of a file, in a worker (ranged downloads check their parts
   * with it, off the main thread). Same queue, limits and inline fallback as `hash`.
   */
  md5Range(absPath: string | Buffer, start: number, end: number, signal?: AbortSignal): Promise<string> {
    if (this.closed) return Promise.reject(new HashPoolClosedError());
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.mode === 'inline' || this.workerFailures >= this.size) return this.inlineRange(absPath, start, end, signal);
    return new Promise<HashFileResult>((resolve, reject) => {
      const job: Job = { id: this.nextId++, path: typeof absPath === 'string' ? absPath : '', ...(typeof absPath === 'string' ? {} : { rawPath: absPath }), sizeHint: undefined, expect: undefined, algorithm: undefined, range: { start, end }, resolve, reject, signal, onAbort: undefined, slot: undefined };
      if (signal) {
        job.onAbort = () => this.cancel(job, abortReason(signal));
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.pump();
    }).then((r) => r.hash);
  }

  /**
   * MD5 (hex) of `data`: in a worker when its memory is a SharedArrayBuffer (nothing copied;
   * the caller must not change the bytes until this settles), else on the calling thread.
   */
  md5Buffer(data: Buffer): Promise<string> {
    if (this.closed) return Promise.reject(new HashPoolClosedError());
    if (!(data.buffer instanceof SharedArrayBuffer) || this.mode === 'inline' || this.workerFailures >= this.size) {
      return Promise.resolve(createHash('md5').update(data).digest('hex'));
    }
    const shared = { buf: data.buffer, offset: data.byteOffset, length: data.byteLength };
    return new Promise<HashFileResult>((resolve, reject) => {
      const job: Job = { id: this.nextId++, path: '', sizeHint: undefined, expect: undefined, algorithm: undefined, shared, resolve, reject, signal: undefined, onAbort: undefined, slot: undefined };
      this.queue.push(job);
      this.pump();
    }).then((r) => r.hash);
  }

  private inlineRange(absPath: string | Buffer, start: number, end: number, signal: AbortSignal | undefined): Promise<string> {
    return this.inlineSlot(() => md5FileRange(absPath, start, end, signal));
  }

  /** Runs `work` on the calling thread once fewer than the workers' capacity of such runs are active. */
  private async inlineSlot<T>(work: () => Promise<T>): Promise<T> {
    const limit = this.size * this.perWorker;
    while (this.inlineActive >= limit) {
      await new Promise<void>((r) => this.inlineWaiters.push(r));
      if (this.closed) throw new HashPoolClosedError();
    }
    this.inlineActive++;
    try {
      return await work();
    } finally {
      this.inlineActive--;
      this.inlineWaiters.shift()?.();
    }
  }

  /** Runs a job on the calling thread (no worker can run it). */
  private runInline(job: Job): Promise<HashFileResult> {
    if (job.shared) {
      const { buf, offset, length } = job.shared;
      return Promise.resolve({ hash: createHash('md5').update(new Uint8Array(buf, offset, length)).digest('hex'), size: length, mtimeNs: 0n, dev: 0n, ino: 0n });
    }
    if (job.range) {
      const size = job.range.end - job.range.start;
      return this.inlineRange(job.rawPath ?? job.path, job.range.start, job.range.end, job.signal).then((hash) => ({ hash, size, mtimeNs: 0n, dev: 0n, ino: 0n }));
    }
    return this.hashInline(job.path, job.signal, job.sizeHint, job.expect, job.algorithm);
  }

  /** Rejects queued and running jobs with {@link HashPoolClosedError} and stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new HashPoolClosedError();
    for (const job of this.queue.splice(0)) this.settle(job, err, false);
    const slots = this.slots.splice(0);
    for (const s of slots) {
      s.dead = true;
      for (const job of [...s.jobs.values()]) this.settle(job, err, false);
    }
    for (const w of this.inlineWaiters.splice(0)) w();
    await Promise.all(slots.map((s) => s.worker.terminate().catch(() => undefined)));
  }

  private async hashInline(
    absPath: string,
    signal: AbortSignal | undefined,
    sizeHint: number | undefined,
    expect: FileIdentity | undefined,
    algorithm?: HashAlgorithm,
  ): Promise<HashFileResult> {
    const opts = { ...(expect ? { expect } : {}), ...(algorithm ? { algorithm } : {}) };
    if (sizeHint !== undefined && sizeHint < SYNC_HASH_MAX) {
      await (isXetAlgorithm(algorithm) ? loadXet() : defaultBackend());
      if (signal?.aborted) throw abortReason(signal);
      return hashFileSync(absPath, opts);
    }
    return this.inlineSlot(() => hashFile(absPath, { ...(signal ? { signal } : {}), ...opts }));
  }

  private spawn(): Slot | undefined {
    let worker: Worker;
    try {
      worker = new Worker(this.workerUrl);
    } catch {
      this.workerFailures = this.size; // cannot start any: go inline from now on
      return undefined;
    }
    const slot: Slot = { worker, jobs: new Map(), dead: false };
    worker.unref();
    worker.on('message', (msg: WorkerResponse) => {
      const job = slot.jobs.get(msg.id);
      if (!job) return; // cancelled
      if (msg.ok) {
        this.settle(job, undefined, true, { hash: msg.hash, size: msg.size, mtimeNs: msg.mtimeNs, dev: msg.dev, ino: msg.ino });
      } else {
        this.settle(job, deserializeError(msg.error), true);
      }
    });
    const fail = (err: Error): void => {
      if (slot.dead) return;
      slot.dead = true;
      this.workerFailures++;
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      // Jobs of a crashed worker are retried inline: the crash is not the file's fault.
      for (const job of [...slot.jobs.values()]) {
        slot.jobs.delete(job.id);
        job.slot = undefined;
        this.runInline(job).then(
          (r) => this.settle(job, undefined, false, r),
          (e: unknown) => this.settle(job, e ?? err, false),
        );
      }
      this.updateRef(slot);
      this.pump();
    };
    worker.on('error', (e) => fail(e));
    worker.on('exit', (code) => {
      if (!this.closed) fail(new Error(`hash worker exited with code ${code}`));
    });
    this.slots.push(slot);
    return slot;
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      if (this.workerFailures >= this.size) {
        // No worker can run: drain the queue inline.
        for (const job of this.queue.splice(0)) {
          this.runInline(job).then(
            (r) => this.settle(job, undefined, false, r),
            (e: unknown) => this.settle(job, e, false),
          );
        }
        return;
      }
      let slot: Slot | undefined;
      for (const s of this.slots) if (!s.dead && s.jobs.size < this.perWorker && (!slot || s.jobs.size < slot.jobs.size)) slot = s;
      if ((!slot || slot.jobs.size > 0) && this.slots.length < this.size) {
        const fresh = this.spawn();
        if (!fresh) continue; // could not start a thread: the loop drains the queue inline
        slot = fresh;
      }
      if (!slot) return; // every worker is busy; `settle` pumps again
      const job = this.queue.shift()!;
      job.slot = slot;
      slot.jobs.set(job.id, job);
      this.updateRef(slot);
      let req: WorkerRequest;
      if (job.shared) req = { type: 'md5buf', id: job.id, ...job.shared };
      else if (job.range) req = { type: 'md5range', id: job.id, path: job.rawPath ?? job.path, start: job.range.start, end: job.range.end };
      else {
        req = { type: 'hash', id: job.id, path: job.path, sizeHint: job.sizeHint, expect: job.expect };
        if (job.algorithm) req.algorithm = job.algorithm;
      }
      slot.worker.postMessage(req);
    }
  }

  private cancel(job: Job, reason: unknown): void {
    const slot = job.slot;
    if (slot) {
      if (!slot.dead) {
        const req: WorkerRequest = { type: 'cancel', id: job.id };
        slot.worker.postMessage(req);
      }
    } else {
      const i = this.queue.indexOf(job);
      if (i >= 0) this.queue.splice(i, 1);
    }
    this.settle(job, reason, true);
  }

  private settle(job: Job, err: unknown, pump: boolean, result?: HashFileResult): void {
    const slot = job.slot;
    if (slot) {
      slot.jobs.delete(job.id);
      job.slot = undefined;
      this.updateRef(slot);
    }
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    job.onAbort = undefined;
    if (result) job.resolve(result);
    else job.reject(err);
    if (pump) this.pump();
  }

  private updateRef(slot: Slot): void {
    if (slot.dead) return;
    if (slot.jobs.size > 0) slot.worker.ref();
    else slot.worker.unref();
  }
}

/**
 * Hashes many files through a pool (a temporary one unless `opts.pool` is given); one
 * settled result per path, in order.
 */
export async function hashFiles(
  absPaths: readonly string[],
  opts: { pool?: HashPool; signal?: AbortSignal } = {},
): Promise<PromiseSettledResult<HashFileResult>[]> {
  const pool = opts.pool ?? new HashPool();
  try {
    const o = opts.signal ? { signal: opts.signal } : {};
    return await Promise.allSettled(absPaths.map((p) => pool.hash(p, o)));
  } finally {
    if (!opts.pool) await pool.close();
  }
}

let transferPool: HashPool | undefined;
/**
 * The process's pool for the MD5s of big transfers (S3 upload parts, ranged download parts):
 * two threads, whose workers are unref'd while idle, so it never keeps the process alive.
 */
export function transferHashPool(): HashPool {
  transferPool ??= new HashPool({ size: 2, perWorker: 2 });
  return transferPool;
}
