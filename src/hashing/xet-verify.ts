/**
 * Checks a stream of bytes against a Xet file hash under both chunkings (a download from an hf
 * bucket, whose uploader may have been @huggingface/hub or hf_xet) on a worker thread, so the
 * main thread only copies the bytes into 4 MiB buffers and hands them over (transferred, not
 * copied again). At most {@link BUDGET} bytes wait to be hashed: `update` resolves when the
 * worker has caught up, which holds the download back (bounded memory).
 *
 * Where the compiled worker script is missing (the sources run under vitest), or the worker
 * cannot start, it hashes on the calling thread instead: same results.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DualXetHasher } from './xet.js';
import type { VerifyWorkerRequest, VerifyWorkerResponse } from './xet-verify-worker.js';

const BUFFER = 4 * 1024 * 1024;
/** Bytes handed to the worker and not yet hashed. */
export const BUDGET = 32 * 1024 * 1024;

const WORKER_URL = new URL('./xet-verify-worker.js', import.meta.url);
let workerScript: boolean | undefined;

export class XetStreamVerifier {
  private worker: Worker | undefined;
  private inline: DualXetHasher | undefined;
  private buf = new Uint8Array(BUFFER);
  private fill = 0;
  private inFlight = 0;
  private waiting: (() => void) | undefined;
  private failure: Error | undefined;
  private digests: ((d: [string, string]) => void) | undefined;

  /** `inline`: hash on this thread (small files, where starting a thread costs more). */
  constructor(opts: { inline?: boolean } = {}) {
    workerScript ??= WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
    if (workerScript && !opts.inline) {
      try {
        this.worker = new Worker(WORKER_URL);
        this.worker.on('message', (m: VerifyWorkerResponse) => {
          if (m.type === 'ack') {
            this.inFlight -= m.size;
            this.wake();
          } else this.digests?.(m.digests);
        });
        this.worker.on('error', (e) => this.fail(e));
        this.worker.on('exit', (code) => this.fail(new Error(`the Xet hash worker exited (${code})`)));
      } catch {
        this.worker = undefined;
      }
    }
    if (!this.worker) this.inline = new DualXetHasher();
  }

  /** Hashes `chunk` (copied: the caller may reuse it); resolves when the budget allows more. */
  async update(chunk: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.inline) {
      this.inline.update(chunk);
      return;
    }
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(BUFFER - this.fill, chunk.length - at);
      this.buf.set(chunk.subarray(at, at + n), this.fill);
      this.fill += n;
      at += n;
      if (this.fill === BUFFER) this.send();
    }
    while (this.inFlight > BUDGET && !this.failure) await new Promise<void>((r) => (this.waiting = r));
    if (this.failure) throw this.failure;
  }

  /** `[hub, xet-core]` file hashes of everything updated. */
  async digestHex(): Promise<[string, string]> {
    if (this.inline) return this.inline.digestHex();
    if (this.failure) throw this.failure;
    if (this.fill > 0) this.send();
    const p = new Promise<[string, string]>((resolve, reject) => {
      this.digests = resolve;
      this.waiting = () => {
        if (this.failure) reject(this.failure);
      };
    });
    this.worker!.postMessage({ type: 'end' } satisfies VerifyWorkerRequest);
    try {
      return await p;
    } finally {
      this.dispose();
    }
  }

  dispose(): void {
    this.inline?.dispose();
    const w = this.worker;
    this.worker = undefined;
    if (w) {
      w.removeAllListeners('exit');
      void w.terminate().catch(() => undefined);
    }
  }

  private send(): void {
    const buf = this.buf.buffer;
    const size = this.fill;
    this.inFlight += size;
    this.worker!.postMessage({ type: 'data', buf, size } satisfies VerifyWorkerRequest, [buf]);
    this.buf = new Uint8Array(BUFFER);
    this.fill = 0;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.wake();
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
}
