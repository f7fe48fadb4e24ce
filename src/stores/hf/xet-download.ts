/**
 * Big hf files read through Xet without @huggingface/hub's XetBlob (which decodes on the main
 * thread, copies each range several times, and leaves bucketsync to check the bytes by chunking
 * them again under both chunkings): a worker thread (xet-download-worker.ts) fetches the
 * reconstruction and the xorb ranges, decodes the chunks and hashes each once, and hands the
 * bytes over in 8 MiB buffers (transferred). The stream ends with an error, never with `end`,
 * unless the bytes are the file's: their count is its size and their Xet hash is its hash.
 *
 * Memory: at most {@link WINDOW} buffers (32 MiB) wait for the reader; the worker parses each
 * xorb range as it streams in (one chunk record held), and the 2 ranges it opens ahead wait in
 * their sockets (TCP holds them back), not in memory.
 */
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { RetryableError } from '../store.js';
import { hubHttpError } from './http.js';
import type { DownloadWorkerMessage, DownloadWorkerRequest } from './xet-download-worker.js';

/** Buffers of 8 MiB handed to the reader before the worker waits. */
export const WINDOW = 4;

const WORKER_URL = new URL('./xet-download-worker.js', import.meta.url);
let workerScript: boolean | undefined;

/** Whether the compiled worker script is there (not when the sources run under vitest). */
export function bigDownloadAvailable(): boolean {
  workerScript ??= WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
  return workerScript;
}

export interface XetDownloadContext {
  /** The Hub's `xet-read-token` URL of the bucket. */
  tokenUrl: string;
  authHeaders: Record<string, string>;
  fetch: typeof fetch;
  /** For messages: the file as the user names it. */
  what: string;
}

function corrupt(message: string): RetryableError {
  return Object.assign(new RetryableError(message), { corrupt: true });
}

class XetDownloadStream extends Readable {
  private worker: Worker | undefined;
  private started = false;
  private owed = 0;
  private finished = false;

  constructor(
    private readonly ctx: XetDownloadContext,
    private readonly fileHash: string,
    private readonly size: number,
  ) {
    super({ highWaterMark: 16 * 1024 * 1024 });
  }

  override _read(): void {
    if (!this.started) {
      this.started = true;
      this.start().catch((e: unknown) => this.destroy(e instanceof Error ? e : new Error(String(e))));
      return;
    }
    while (this.owed > 0 && this.worker) {
      this.owed--;
      this.worker.postMessage({ type: 'ack' } satisfies DownloadWorkerRequest);
    }
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    const w = this.worker;
    this.worker = undefined;
    if (w) {
      w.removeAllListeners();
      w.postMessage({ type: 'cancel' } satisfies DownloadWorkerRequest);
      void w.terminate().catch(() => undefined);
    }
    cb(err);
  }

  private async start(): Promise<void> {
    const res = await this.ctx.fetch(this.ctx.tokenUrl, { headers: this.ctx.authHeaders });
    if (!res.ok) throw await hubHttpError(res);
    const t = (await res.json()) as { casUrl?: string; accessToken?: string };
    if (typeof t.casUrl !== 'string' || typeof t.accessToken !== 'string') throw new Error('the Hub sent no Xet read token');
    if (this.destroyed) return;
    // A larger young generation: the HTTP parser's many 64 KiB buffers otherwise cost a scavenge every few MiB.
    const w = new Worker(WORKER_URL, { resourceLimits: { maxYoungGenerationSizeMb: 64 } });
    this.worker = w;
    w.on('message', (m: DownloadWorkerMessage) => {
      if (m.type === 'data') {
        let more = true;
        for (let i = 0; i < m.parts.length; i += 2) more = this.push(Buffer.from(m.buf, m.parts[i]!, m.parts[i + 1]!));
        if (more) w.postMessage({ type: 'ack' } satisfies DownloadWorkerRequest);
        else this.owed++;
      } else if (m.type === 'done') {
        this.finished = true;
        if (m.bytes !== this.size) this.destroy(new RetryableError(`${this.ctx.what} arrived with ${m.bytes} bytes, the Hub says it has ${this.size}; not kept`));
        else if (m.fileHash !== this.fileHash.toLowerCase()) this.destroy(corrupt(`${this.ctx.what} arrived corrupted: its content has Xet hash ${m.fileHash}, the file's is ${this.fileHash}; not kept`));
        else {
          this.push(null);
          this.worker = undefined;
          w.removeAllListeners();
          void w.terminate().catch(() => undefined);
        }
      } else if (m.type === 'error') {
        const msg = `${this.ctx.what}: ${m.message}`;
        this.destroy(m.retryable ? new RetryableError(msg) : new Error(msg));
      }
    });
    w.on('error', (e) => this.destroy(e));
    w.on('exit', (code) => {
      if (!this.finished) this.destroy(new RetryableError(`${this.ctx.what}: the Xet download worker exited (${code})`));
    });
    w.postMessage({ type: 'start', casUrl: t.casUrl.replace(/\/+$/, ''), accessToken: t.accessToken, fileHash: this.fileHash, size: this.size, window: WINDOW } satisfies DownloadWorkerRequest);
  }
}

/** The bytes of a whole hf file (`size` bytes, Xet hash `fileHash`), verified; see the module comment. */
export function downloadBigFile(ctx: XetDownloadContext, fileHash: string, size: number): Readable {
  return new XetDownloadStream(ctx, fileHash, size);
}

/** Where {@link fetchBigFileInto} reports. */
export interface FetchIntoHooks {
  /** The first `bytes` bytes of the file are written (called in order, growing). */
  onWritten?: (bytes: number) => void;
  signal?: AbortSignal;
}

/**
 * The bytes of a whole hf file (`size` bytes, Xet hash `fileHash`) written into `fd` (an open
 * file of this process, written from offset 0 by position) by the download worker itself: no
 * buffer crosses to this thread, and the worker fills the same output buffer again after each
 * write. Resolves once every byte is written and their count and Xet hash are the file's;
 * rejects otherwise (`corrupt` set on a hash mismatch). Settles only after the worker has
 * stopped, so the caller may close `fd` then.
 */
export async function fetchBigFileInto(ctx: XetDownloadContext, fileHash: string, size: number, fd: number, hooks: FetchIntoHooks = {}): Promise<void> {
  hooks.signal?.throwIfAborted();
  const res = await ctx.fetch(ctx.tokenUrl, { headers: ctx.authHeaders, ...(hooks.signal ? { signal: hooks.signal } : {}) });
  if (!res.ok) throw await hubHttpError(res);
  const t = (await res.json()) as { casUrl?: string; accessToken?: string };
  if (typeof t.casUrl !== 'string' || typeof t.accessToken !== 'string') throw new Error('the Hub sent no Xet read token');
  hooks.signal?.throwIfAborted();
  const w = new Worker(WORKER_URL, { resourceLimits: { maxYoungGenerationSizeMb: 64 } });
  let failure: Error | undefined;
  let ok = false;
  await new Promise<void>((resolve) => {
    const stop = (e?: Error) => {
      if (e && !failure && !ok) failure = e;
      w.removeAllListeners('message');
      hooks.signal?.removeEventListener('abort', onAbort);
      w.postMessage({ type: 'cancel' } satisfies DownloadWorkerRequest);
      // Settled once the worker is gone: it writes into `fd` until then.
      void w.terminate().then(() => resolve(), () => resolve());
    };
    const onAbort = () => stop(hooks.signal!.reason instanceof Error ? hooks.signal!.reason : Object.assign(new Error('aborted'), { name: 'AbortError' }));
    hooks.signal?.addEventListener('abort', onAbort, { once: true });
    w.on('message', (m: DownloadWorkerMessage) => {
      if (m.type === 'written') hooks.onWritten?.(m.bytes);
      else if (m.type === 'done') {
        if (m.bytes !== size) stop(new RetryableError(`${ctx.what} arrived with ${m.bytes} bytes, the Hub says it has ${size}; not kept`));
        else if (m.fileHash !== fileHash.toLowerCase()) stop(corrupt(`${ctx.what} arrived corrupted: its content has Xet hash ${m.fileHash}, the file's is ${fileHash}; not kept`));
        else {
          ok = true;
          stop();
        }
      } else if (m.type === 'error') stop(m.retryable ? new RetryableError(`${ctx.what}: ${m.message}`) : new Error(`${ctx.what}: ${m.message}`));
    });
    w.on('error', (e) => stop(e));
    w.on('exit', (code) => {
      if (!ok) failure ??= new RetryableError(`${ctx.what}: the Xet download worker exited (${code})`);
      resolve();
    });
    w.postMessage({ type: 'start', casUrl: t.casUrl!.replace(/\/+$/, ''), accessToken: t.accessToken!, fileHash, size, window: WINDOW, fd } satisfies DownloadWorkerRequest);
  });
  if (!ok) throw failure ?? new RetryableError(`${ctx.what}: the Xet download stopped`);
}

/** The part size of a download's resume record: 8 MiB, larger for files of more than 1,024 of those (≤ 1,024 parts). */
export function partSizeFor(size: number): number {
  const unit = 8 * 1024 * 1024;
  return unit * Math.max(1, Math.ceil(size / 1024 / unit));
}

/**
 * The bytes an interrupted download can keep: its recorded parts from the first on, without
 * a gap, as far as the file on disk holds them, and always less than the whole (0: start over).
 */
export function resumablePrefix(progress: { partSize: number; done: number[] } | undefined, onDisk: number, size: number): number {
  if (!progress || !Number.isSafeInteger(progress.partSize) || progress.partSize < 1) return 0;
  const done = new Set(progress.done);
  let parts = 0;
  while (done.has(parts)) parts++;
  return Math.max(0, Math.min(parts * progress.partSize, onDisk, size - 1));
}
