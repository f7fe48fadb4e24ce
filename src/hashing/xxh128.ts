/**
 * xxh128 content hashing: the streaming hasher and `hashFile`.
 *
 * Which implementation (measured on this project's 2-vCPU build VM, Node 20, best of 3–5):
 *
 * - **hash-wasm `createXXHash128`** is the streaming xxh128 we use: ~2–3 GB/s in memory
 *   (256 KiB–1 MiB updates). A reused instance costs < 1 µs per tiny input; creating one
 *   costs ~260 µs, so instances are recycled through a small free list.
 * - **@node-rs/xxhash 1.7.8 has no streaming xxh128.** Its `xxh3.Xxh3` class is streaming
 *   but `digest()` returns the 64-bit XXH3 only (see its index.d.ts); the only xxh128 is the
 *   one-shot `xxh3.xxh128(buf)`, which measured 0.6–1.1 GB/s here (3× slower than wasm) and
 *   needs the whole input in memory. It is kept as the fallback for runtimes without
 *   WebAssembly (`node --jitless`), where the hasher has to buffer the input (capped at
 *   {@link NATIVE_FALLBACK_MAX_BYTES}), and as an independent cross-check in the tests.
 *   Both produce the standard XXH3-128 digest (seed 0), e.g. `""` →
 *   `99aa06d3014798d86001c324468d497f`.
 *
 * Reading: `FileHandle.read` into reused 1 MiB buffers, double-buffered (the next read is
 * in flight in the libuv pool while the current chunk is hashed), measured 1.3–1.7 GB/s
 * end to end on a warm 1 GiB file against 0.8–1.0 GB/s single-buffered and 1.1–1.5 GB/s
 * with `createReadStream`; hashing (~2–3 GB/s) is the CPU-bound part. Small files go
 * through {@link hashFileSync} instead (see {@link SYNC_HASH_MAX}). All numbers are from a
 * shared 2-vCPU VM under load and vary ±30 % between runs.
 */
import { createRequire } from 'node:module';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';

/** The prefix of a content identity: `xxh128:<32 lowercase hex>`. */
export const HASH_PREFIX = 'xxh128:';
const HASH_RE = /^xxh128:[0-9a-f]{32}$/;

/** True for a well-formed content identity (`xxh128:` + 32 lowercase hex digits). */
export function isContentHash(s: string): boolean {
  return HASH_RE.test(s);
}

/** A streaming digest. Finished by `digestHex()` (or abandoned with `dispose()`). */
export interface StreamDigest {
  update(data: Uint8Array | string): this;
  /** The hex digest (no prefix). The hasher cannot be used afterwards. */
  digestHex(): string;
  /** Gives the hasher up without a digest (idempotent; a no-op after `digestHex()`). */
  dispose(): void;
}

/** A streaming xxh128 hasher (32-hex-digit digests). */
export interface Hasher extends StreamDigest {
  /** Which implementation computes this digest. */
  readonly backend: HashBackend;
}

/**
 * Which content identity `hashFile` computes: `xxh128` (bucketsync's own, the default) or
 * `xet` (Hugging Face's Xet file hash, for comparing with hf files; see xet.ts), under the
 * chunking @huggingface/hub uploads with; `xet-core`: the same under hf_xet's chunking (a
 * file `hf` uploaded). Both give `xet:<64 hex>`.
 */
export type HashAlgorithm = 'xxh128' | 'xet' | 'xet-core';

/** Whether `algorithm` is a Xet file hash (the Xet module must be loaded: {@link loadXet}). */
export function isXetAlgorithm(algorithm: HashAlgorithm | undefined): algorithm is 'xet' | 'xet-core' {
  return algorithm === 'xet' || algorithm === 'xet-core';
}

export type HashBackend = 'wasm' | 'native';

/** The native fallback buffers its input; larger inputs fail with a clear error. */
export const NATIVE_FALLBACK_MAX_BYTES = 512 * 1024 * 1024;

// --- backend loading (once, lazily) -------------------------------------------------------

interface WasmHasher {
  init(): unknown;
  update(data: Uint8Array | string): unknown;
  digest(outputType: 'hex'): string;
}
interface NativeModule {
  xxh3: { xxh128(input: Uint8Array | string, seed?: bigint | null): bigint };
}

let wasmFactory: Promise<(() => Promise<WasmHasher>) | undefined> | undefined;
let nativeModule: NativeModule | null | undefined;
/** Wasm instances reserved for {@link xxh128HexSync} and for {@link hashFileSync} (two, so that an `onProgress` callback may compute key digests). */
let syncWasm: WasmHasher | undefined;
let fileSyncWasm: WasmHasher | undefined;
const wasmFree: WasmHasher[] = [];
const WASM_FREE_MAX = 16;

function loadWasm(): Promise<(() => Promise<WasmHasher>) | undefined> {
  wasmFactory ??= (async () => {
    try {
      if (typeof WebAssembly === 'undefined') return undefined;
      const mod = await import('hash-wasm');
      const create = mod.createXXHash128 as () => Promise<WasmHasher>;
      // Instantiate once now, so a failure shows here rather than mid-file.
      syncWasm = await create();
      fileSyncWasm = await create();
      return create;
    } catch {
      return undefined;
    }
  })();
  return wasmFactory;
}

function loadNative(): NativeModule | undefined {
  if (nativeModule === undefined) {
    try {
      nativeModule = createRequire(import.meta.url)('@node-rs/xxhash') as NativeModule;
    } catch {
      nativeModule = null;
    }
  }
  return nativeModule ?? undefined;
}

/**
 * The backend `createHasher()` picks by default: `'wasm'` when WebAssembly works, else
 * `'native'`; throws when neither loads.
 */
export async function defaultBackend(): Promise<HashBackend> {
  if (await loadWasm()) return 'wasm';
  if (loadNative()) return 'native';
  throw new Error('no xxh128 implementation available: neither hash-wasm (WebAssembly) nor @node-rs/xxhash loads');
}

/**
 * Synchronous xxh128 (32 hex digits, no prefix) of a small in-memory value, e.g. a cache
 * key. Needs a backend loaded first: `await defaultBackend()`.
 */
export function xxh128HexSync(data: Uint8Array | string): string {
  if (syncWasm) {
    syncWasm.init();
    syncWasm.update(data);
    return syncWasm.digest('hex');
  }
  const mod = nativeModule ?? undefined;
  if (mod) return toHex128(mod.xxh3.xxh128(data));
  throw new Error('xxh128HexSync: no xxh128 implementation loaded yet (await defaultBackend() first)');
}

/** Whether a backend can be used in this process. */
export async function backendAvailable(backend: HashBackend): Promise<boolean> {
  return backend === 'wasm' ? (await loadWasm()) !== undefined : loadNative() !== undefined;
}

function toHex128(v: bigint): string {
  return v.toString(16).padStart(32, '0');
}

class WasmStreamHasher implements Hasher {
  readonly backend = 'wasm' as const;
  private h: WasmHasher | undefined;
  /** `shared`: the instance reserved for synchronous use, never put on the free list. */
  constructor(
    h: WasmHasher,
    private readonly shared = false,
  ) {
    this.h = h;
    h.init();
  }
  update(data: Uint8Array | string): this {
    if (!this.h) throw new Error('hasher already finished');
    this.h.update(data);
    return this;
  }
  digestHex(): string {
    if (!this.h) throw new Error('hasher already finished');
    const hex = this.h.digest('hex');
    this.release();
    return hex;
  }
  dispose(): void {
    if (this.h) this.release();
  }
  private release(): void {
    const h = this.h!;
    this.h = undefined;
    if (!this.shared && wasmFree.length < WASM_FREE_MAX) wasmFree.push(h);
  }
}

/** One-shot native xxh128 over buffered input (only when WebAssembly is unavailable). */
class NativeBufferingHasher implements Hasher {
  readonly backend = 'native' as const;
  private chunks: Buffer[] | undefined = [];
  private total = 0;
  constructor(private readonly mod: NativeModule) {}
  update(data: Uint8Array | string): this {
    if (!this.chunks) throw new Error('hasher already finished');
    const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data); // copy: callers reuse buffers
    this.total += b.length;
    if (this.total > NATIVE_FALLBACK_MAX_BYTES) {
      this.chunks = undefined;
      throw new Error(
        `xxh128 without WebAssembly is limited to ${NATIVE_FALLBACK_MAX_BYTES} bytes (@node-rs/xxhash has no streaming xxh128)`,
      );
    }
    this.chunks.push(b);
    return this;
  }
  digestHex(): string {
    if (!this.chunks) throw new Error('hasher already finished');
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.total);
    this.chunks = undefined;
    return toHex128(this.mod.xxh3.xxh128(all));
  }
  dispose(): void {
    this.chunks = undefined;
  }
}

/**
 * A new streaming xxh128 hasher. The implementation is loaded once, on first use; pass
 * `backend` to force one (tests compare both).
 */
export async function createHasher(opts: { backend?: HashBackend } = {}): Promise<Hasher> {
  const backend = opts.backend ?? (await defaultBackend());
  if (backend === 'wasm') {
    const create = await loadWasm();
    if (!create) throw new Error('hash-wasm xxh128 is not available (no WebAssembly?)');
    return new WasmStreamHasher(wasmFree.pop() ?? (await create()));
  }
  const mod = loadNative();
  if (!mod) throw new Error('@node-rs/xxhash failed to load');
  return new NativeBufferingHasher(mod);
}

/**
 * A hasher for use within one synchronous stretch of code only (it shares one instance
 * with every other synchronous caller). Needs a backend loaded: `await defaultBackend()`.
 */
function createHasherSync(backend?: HashBackend): Hasher {
  if (backend !== 'native' && fileSyncWasm) return new WasmStreamHasher(fileSyncWasm, true);
  if (backend === 'wasm') throw new Error('hash-wasm xxh128 is not loaded (await defaultBackend() first)');
  const mod = nativeModule ?? undefined;
  if (!mod) {
    if (backend === 'native') throw new Error('@node-rs/xxhash failed to load');
    throw new Error('no xxh128 implementation loaded yet (await defaultBackend() first)');
  }
  return new NativeBufferingHasher(mod);
}

/** xxh128 of an in-memory value, as a content identity (`xxh128:<hex>`). */
export async function hashBytes(data: Uint8Array | string, opts: { backend?: HashBackend } = {}): Promise<string> {
  const h = await createHasher(opts);
  return HASH_PREFIX + h.update(data).digestHex();
}

// --- files --------------------------------------------------------------------------------

/**
 * Files below this size are best hashed with synchronous reads (see {@link hashFileSync}).
 * Measured on the 2-vCPU VM (warm page cache, best of 5, per file): 4 KiB 16 µs sync vs
 * 101 µs promise-based (8 in flight) vs 41 µs on the worker pool; 64 KiB 40 / 119 / 93 µs;
 * 256 KiB 130–210 / 230–390 / 340–575 µs; 512 KiB–1 MiB about even; from 2 MiB on the
 * pool is as fast or faster and keeps the event loop free. Each async step (open, fstat,
 * read, fstat, close) is a round trip through the libuv pool, which dominates small files.
 * A sync hash of a file below 1 MiB blocks the thread for under ~0.7 ms.
 */
export const SYNC_HASH_MAX = 1024 * 1024;

/** Read size of one chunk. */
export const READ_CHUNK = 1024 * 1024;
const bufferFree: Buffer[] = [];
const BUFFER_FREE_MAX = 8;

function takeBuffer(): Buffer {
  return bufferFree.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK);
}
function giveBuffer(b: Buffer): void {
  if (bufferFree.length < BUFFER_FREE_MAX) bufferFree.push(b);
}

export interface FileIdentity {
  dev: number | bigint;
  ino: number | bigint;
  size: number | bigint;
  mtimeNs: bigint;
}

export interface HashFileOptions {
  signal?: AbortSignal;
  /** What the caller believes the file is (from its scan): a mismatch is a {@link FileChangedError}. */
  expect?: FileIdentity;
  /** Called after each chunk is hashed with the bytes hashed so far (progress bars; tests). */
  onProgress?: (bytesHashed: number) => void;
  backend?: HashBackend;
  /** Default `xxh128`. */
  algorithm?: HashAlgorithm;
}

export interface HashFileResult {
  /** `xxh128:<32 hex>` (or `xet:<64 hex>` with `algorithm: 'xet'`) */
  hash: string;
  size: number;
  mtimeNs: bigint;
  dev: bigint;
  ino: bigint;
}

/** The file is not the one the caller expected, or it changed while it was being read. */
export class FileChangedError extends Error {
  override readonly name = 'FileChangedError';
  readonly code = 'EFILECHANGED';
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path} changed while it was being hashed (${detail}); its content identity is unknown, retry once it is no longer written to`);
  }
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

function describeChange(before: BigIntStats, after: BigIntStats, bytesRead: number): string | undefined {
  if (before.dev !== after.dev || before.ino !== after.ino) return 'replaced by another file';
  if (before.size !== after.size) return `size ${before.size} → ${after.size} bytes`;
  if (BigInt(bytesRead) !== after.size) return `read ${bytesRead} of ${after.size} bytes`;
  if (before.mtimeNs !== after.mtimeNs) return 'modification time changed';
  if (before.ctimeNs !== after.ctimeNs) return 'status change time changed';
  return undefined;
}

/**
 * Whether a device or inode number from a scan matches an fstat's. Scanners often keep
 * them as JS numbers, which round 64-bit values above 2^53: compare in that precision.
 */
export function sameStatId(scanned: number | bigint, actual: bigint): boolean {
  return typeof scanned === 'bigint' ? scanned === actual : scanned === Number(actual);
}

/** Why the file `st` is not the one `expect` describes, or undefined when it is. */
export function describeMismatch(expect: FileIdentity, st: { size: bigint; mtimeNs: bigint; ino: bigint; dev: bigint }): string | undefined {
  if (BigInt(expect.size) !== st.size) return `size ${expect.size} when scanned, ${st.size} now`;
  if (expect.mtimeNs !== st.mtimeNs) return 'modification time differs from the scan';
  if (!sameStatId(expect.ino, st.ino) || !sameStatId(expect.dev, st.dev)) return 'replaced by another file since the scan';
  return undefined;
}

/**
 * Streams a file through xxh128 (1 MiB reads into reused buffers; never the whole file in
 * memory) and returns its content identity with the size and mtime it had. The file is
 * `fstat`ed before and after reading: if it changed in between (or differs from
 * `opts.expect`), a {@link FileChangedError} is thrown instead of a digest of a mix.
 */
export async function hashFile(absPath: string, opts: HashFileOptions = {}): Promise<HashFileResult> {
  const { signal } = opts;
  if (signal?.aborted) throw abortError(signal);
  const fh = await fsp.open(absPath, 'r');
  const bufs: Buffer[] = [];
  let pending: Promise<{ bytesRead: number; buffer: Buffer }> | undefined;
  let hasher: StreamDigest | undefined;
  try {
    const before = await fh.stat({ bigint: true });
    if (!before.isFile()) throw new Error(`${absPath}: not a regular file`);
    if (opts.expect) {
      const why = describeMismatch(opts.expect, before);
      if (why) throw new FileChangedError(absPath, why);
    }
    hasher = isXetAlgorithm(opts.algorithm) ? await createXetHasher(opts.algorithm) : await createHasher(opts.backend ? { backend: opts.backend } : {});
    bufs.push(takeBuffer());
    let total = 0;
    let which = 0;
    pending = fh.read(bufs[0]!, 0, READ_CHUNK, 0);
    for (;;) {
      const { bytesRead, buffer }: { bytesRead: number; buffer: Buffer } = await pending;
      pending = undefined;
      if (bytesRead === 0) break;
      total += bytesRead;
      // A short read of a regular file means end of file; growth after it shows in the
      // second fstat. Otherwise start the next read before hashing this chunk.
      if (bytesRead === READ_CHUNK) {
        which ^= 1;
        if (bufs.length < 2) bufs.push(takeBuffer());
        pending = fh.read(bufs[which]!, 0, READ_CHUNK, total);
      }
      hasher.update(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
      opts.onProgress?.(total);
      if (signal?.aborted) throw abortError(signal);
      if (!pending) break;
    }
    const after = await fh.stat({ bigint: true });
    const why = describeChange(before, after, total);
    if (why) throw new FileChangedError(absPath, why);
    const hex = hasher.digestHex();
    return { hash: prefixOf(opts.algorithm) + hex, size: total, mtimeNs: before.mtimeNs, dev: before.dev, ino: before.ino };
  } finally {
    hasher?.dispose();
    // Never recycle a buffer a read may still be writing into.
    if (pending) await pending.catch(() => undefined);
    for (const b of bufs) giveBuffer(b);
    await fh.close();
  }
}

/**
 * {@link hashFile} with synchronous reads, for small files (below {@link SYNC_HASH_MAX};
 * it works for any size but blocks the thread while it reads). Needs a backend loaded:
 * `await defaultBackend()` once before.
 */
export function hashFileSync(absPath: string, opts: Omit<HashFileOptions, 'signal'> = {}): HashFileResult {
  if (isXetAlgorithm(opts.algorithm) && !xetModule) throw new Error('the Xet hasher is not loaded (await loadXet() first)');
  const fd = fs.openSync(absPath, 'r');
  let hasher: StreamDigest | undefined;
  let buf: Buffer | undefined;
  try {
    const before = fs.fstatSync(fd, { bigint: true });
    if (!before.isFile()) throw new Error(`${absPath}: not a regular file`);
    if (opts.expect) {
      const why = describeMismatch(opts.expect, before);
      if (why) throw new FileChangedError(absPath, why);
    }
    hasher = isXetAlgorithm(opts.algorithm) ? xetHasherFor(opts.algorithm) : createHasherSync(opts.backend);
    buf = takeBuffer();
    let total = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, READ_CHUNK, total);
      if (n === 0) break;
      total += n;
      hasher.update(n === READ_CHUNK ? buf : buf.subarray(0, n));
      opts.onProgress?.(total);
      if (n < READ_CHUNK) break; // short read of a regular file: end of file (see hashFile)
    }
    const after = fs.fstatSync(fd, { bigint: true });
    const why = describeChange(before, after, total);
    if (why) throw new FileChangedError(absPath, why);
    const hex = hasher.digestHex();
    return { hash: prefixOf(opts.algorithm) + hex, size: total, mtimeNs: before.mtimeNs, dev: before.dev, ino: before.ino };
  } finally {
    hasher?.dispose();
    if (buf) giveBuffer(buf);
    fs.closeSync(fd);
  }
}

// --- Xet (loaded on first use: most runs never compare with hf) ---------------------------

let xetModule: typeof import('./xet.js') | undefined;

/** Loads the Xet hasher (once); `hashFileSync` with `algorithm: 'xet'` needs it loaded. */
export async function loadXet(): Promise<void> {
  xetModule ??= await import('./xet.js');
}

async function createXetHasher(algorithm: 'xet' | 'xet-core'): Promise<StreamDigest> {
  await loadXet();
  return xetHasherFor(algorithm);
}

function xetHasherFor(algorithm: 'xet' | 'xet-core'): StreamDigest {
  return new xetModule!.XetHasher(undefined, algorithm === 'xet-core' ? 'xet-core' : 'hub');
}

function prefixOf(algorithm: HashAlgorithm | undefined): string {
  return isXetAlgorithm(algorithm) ? 'xet:' : HASH_PREFIX;
}
