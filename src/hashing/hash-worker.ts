/**
 * Worker-thread side of {@link HashPool}: hashes the files it is sent with `hashFile` and
 * posts back one result or error per job. Loaded from the compiled `dist/hashing/hash-worker.js`.
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { md5FileRange } from './md5-range.js';
import { defaultBackend, hashFile, hashFileSync, isXetAlgorithm, loadXet, SYNC_HASH_MAX, type FileIdentity, type HashAlgorithm, type HashFileResult } from './xxh128.js';

export type WorkerRequest =
  | { type: 'hash'; id: number; path: string; sizeHint: number | undefined; expect: FileIdentity | undefined; algorithm?: HashAlgorithm }
  /** MD5 (hex) of bytes `[start, end)` of a file (a ranged download's part). */
  | { type: 'md5range'; id: number; path: string | Uint8Array; start: number; end: number }
  /** MD5 (hex) of bytes in shared memory (an upload's part, read once by the main thread). */
  | { type: 'md5buf'; id: number; buf: SharedArrayBuffer; offset: number; length: number }
  | { type: 'cancel'; id: number };

export type WorkerResponse =
  | { id: number; ok: true; hash: string; size: number; mtimeNs: bigint; dev: bigint; ino: bigint }
  | { id: number; ok: false; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  path?: string;
  detail?: string;
  stack?: string;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const e = err as Error & { code?: unknown; path?: unknown; detail?: unknown };
    const out: SerializedError = { name: e.name, message: e.message };
    if (typeof e.code === 'string') out.code = e.code;
    if (typeof e.path === 'string') out.path = e.path;
    if (typeof e.detail === 'string') out.detail = e.detail;
    if (e.stack) out.stack = e.stack;
    return out;
  }
  return { name: 'Error', message: String(err) };
}

const port = parentPort;
if (port) {
  const running = new Map<number, AbortController>();
  port.on('message', (msg: WorkerRequest) => {
    if (msg.type === 'cancel') {
      running.get(msg.id)?.abort();
      return;
    }
    if (msg.type === 'md5buf') {
      let res: WorkerResponse;
      try {
        const hash = createHash('md5').update(new Uint8Array(msg.buf, msg.offset, msg.length)).digest('hex');
        res = { id: msg.id, ok: true, hash, size: msg.length, mtimeNs: 0n, dev: 0n, ino: 0n };
      } catch (err) {
        res = { id: msg.id, ok: false, error: serializeError(err) };
      }
      port.postMessage(res);
      return;
    }
    const ac = new AbortController();
    running.set(msg.id, ac);
    if (msg.type === 'md5range') {
      md5FileRange(typeof msg.path === 'string' ? msg.path : Buffer.from(msg.path.buffer, msg.path.byteOffset, msg.path.byteLength), msg.start, msg.end, ac.signal).then(
        (hash) => {
          running.delete(msg.id);
          const res: WorkerResponse = { id: msg.id, ok: true, hash, size: msg.end - msg.start, mtimeNs: 0n, dev: 0n, ino: 0n };
          port.postMessage(res);
        },
        (err: unknown) => {
          running.delete(msg.id);
          const res: WorkerResponse = { id: msg.id, ok: false, error: serializeError(err) };
          port.postMessage(res);
        },
      );
      return;
    }
    const small = msg.sizeHint !== undefined && msg.sizeHint < SYNC_HASH_MAX;
    const opts = { ...(msg.expect ? { expect: msg.expect } : {}), ...(msg.algorithm ? { algorithm: msg.algorithm } : {}) };
    const work: Promise<HashFileResult> = small
      ? (isXetAlgorithm(msg.algorithm) ? loadXet() : defaultBackend()).then(() => hashFileSync(msg.path, opts))
      : hashFile(msg.path, { signal: ac.signal, ...opts });
    work.then(
      (r) => {
        running.delete(msg.id);
        const res: WorkerResponse = { id: msg.id, ok: true, hash: r.hash, size: r.size, mtimeNs: r.mtimeNs, dev: r.dev, ino: r.ino };
        port.postMessage(res);
      },
      (err: unknown) => {
        running.delete(msg.id);
        const res: WorkerResponse = { id: msg.id, ok: false, error: serializeError(err) };
        port.postMessage(res);
      },
    );
  });
}
