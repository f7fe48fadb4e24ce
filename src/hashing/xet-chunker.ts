/**
 * Xet content-defined chunking, both flavours, with chunk hashes computed by native BLAKE3
 * (@napi-rs/blake-hash: the Rust `blake3` crate with its SIMD kernels, prebuilt binaries;
 * keyed BLAKE3 of 64 KiB chunks at ~0.64 CPU-s/GiB on the 2-vCPU build VM) or, where that
 * binding does not load (no binary for the platform) or `BUCKETSYNC_BLAKE3=wasm` says so,
 * hash-wasm's BLAKE3 (WebAssembly, ~2.5 CPU-s/GiB, itself ~2.5× the throughput of
 * @huggingface/blake3-jit, which @huggingface/xetchunk-wasm 0.2.0 hashes its chunks with).
 * Both give the same digests (test/unit/xet-blake3.test.ts); {@link chunkHasherBackend} says
 * which one a thread uses.
 *
 * The GEAR rolling hash (gearhash-jit) starts at 0 after each boundary, after the skip of
 * {@link SKIP} bytes no boundary can be in; a boundary is where its top 16 bits are clear, and
 * always at {@link MAX_CHUNK}. The two uploaders differ in one rule (see xet.ts):
 * - `'hub'` (@huggingface/xetchunk-wasm, what @huggingface/hub uploads with) takes the first
 *   match after the skip, even within the first 64 bytes hashed (a chunk of 8,128+ bytes);
 * - `'xet-core'` (hf_xet) passes over a match until the chunk has {@link MIN_CHUNK} bytes (the
 *   hash rolling on).
 *
 * {@link DualXetChunker} cuts both ways in one pass and hashes a chunk the two share (same
 * start, same length: 11 in 12 of them) once, which is what checking a download against an
 * unknown uploader's chunking costs.
 *
 * Loaded through `await loadChunkHasher()` (once per thread: the native binding or the
 * WebAssembly module loads asynchronously).
 */
import { createRequire } from 'node:module';
import { createBLAKE3 } from 'hash-wasm';
import { Hasher as Gear } from 'gearhash-jit';

export type XetChunking = 'hub' | 'xet-core';

export interface XetChunk {
  length: number;
  /** 32 bytes, owned by the caller. */
  hash: Uint8Array;
}

export const TARGET_CHUNK = 64 * 1024;
export const MIN_CHUNK = TARGET_CHUNK / 8;
export const MAX_CHUNK = TARGET_CHUNK * 2;
const WINDOW = 64;
/** Bytes of a chunk never scanned for a boundary (xet-core: `minimum_chunk - 64 - 1`). */
const SKIP = MIN_CHUNK - WINDOW - 1;
/** The boundary mask: the target's low bits shifted to the top of the 64-bit hash. */
const MASK = BigInt(TARGET_CHUNK - 1) << BigInt(64 - Math.log2(TARGET_CHUNK));
/** The BLAKE3 key of chunk hashes (xet-core `DATA_KEY`). */
export const DATA_KEY = Uint8Array.from([
  102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28, 157, 228, 33, 16, 155, 235, 43, 88, 180,
  208, 176, 75, 147, 173, 242, 41,
]);

/** Where chunk hashes are computed: the native binding or WebAssembly (see the module comment). */
export type Blake3Backend = 'native' | 'wasm';

/** A keyed (DATA_KEY) BLAKE3 of whole chunks. */
export interface ChunkHasher {
  readonly backend: Blake3Backend;
  /** The 32-byte keyed hash of `data` (a fresh array, owned by the caller). */
  hash(data: Uint8Array): Uint8Array;
}

/**
 * A chunk hasher on `backend`, or undefined when it cannot load here (for 'native': no binary
 * for this platform, or the binding fails its self-check against the WebAssembly one).
 */
export async function createChunkHasher(backend: Blake3Backend): Promise<ChunkHasher | undefined> {
  if (backend === 'wasm') {
    const h = await createBLAKE3(256, DATA_KEY);
    return {
      backend,
      hash(data) {
        h.init();
        h.update(data);
        return h.digest('binary');
      },
    };
  }
  try {
    const binding = loadNativeBinding();
    if (!binding) return undefined;
    const h = binding.Blake3Hasher.newKeyed(Buffer.from(DATA_KEY));
    const native: ChunkHasher = {
      backend,
      hash(data) {
        h.reset(); // keeps the key
        h.update(data);
        return h.digestBuffer();
      },
    };
    // One known answer (keyed BLAKE3 of 1,025 bytes 0..250 repeating: two BLAKE3 chunks + 1 byte),
    // so a binding that loads but hashes differently is never used.
    const probe = Uint8Array.from({ length: 1025 }, (_, i) => i % 251);
    if (Buffer.from(native.hash(probe)).toString('hex') !== PROBE_DIGEST) return undefined;
    return native;
  } catch {
    return undefined;
  }
}

/** What bucketsync uses of a @napi-rs/blake-hash binding. */
interface NativeBlake3 {
  Blake3Hasher: { newKeyed(key: Buffer): { reset(): void; update(data: Uint8Array): void; digestBuffer(): Buffer } };
}

/**
 * The prebuilt @napi-rs/blake-hash 1.3.6 bindings in package.json's optionalDependencies (npm
 * installs the one for this platform and skips the others). Only the Linux x64 ones are listed:
 * the registry these machines install from carries no others, and a lock file naming packages
 * it cannot resolve breaks `npm ci`. Elsewhere chunks are hashed with WebAssembly.
 */
const NATIVE_PACKAGES = ['@napi-rs/blake-hash-linux-x64-gnu', '@napi-rs/blake-hash-linux-x64-musl'];

function loadNativeBinding(): NativeBlake3 | undefined {
  const require = createRequire(import.meta.url);
  for (const name of NATIVE_PACKAGES) {
    try {
      return require(name) as NativeBlake3;
    } catch {
      // not installed here, or built for another libc
    }
  }
  return undefined;
}

/** hash-wasm's keyed (DATA_KEY) BLAKE3 of the probe above. */
const PROBE_DIGEST = 'fd8b36929709a1ace7d9361d1298d4089b93b648422f180d6c2932413c129eb3';

/** `BUCKETSYNC_BLAKE3=wasm`: hash chunks with the WebAssembly BLAKE3 even where the native one loads (read once per thread). */
function wantedBackend(): Blake3Backend {
  return (process.env.BUCKETSYNC_BLAKE3 ?? '').trim().toLowerCase() === 'wasm' ? 'wasm' : 'native';
}

let hasher: ChunkHasher | undefined;
let loading: Promise<void> | undefined;

/** Loads the chunk hasher once (per thread): native BLAKE3, else WebAssembly; chunkers need it. */
export function loadChunkHasher(): Promise<void> {
  loading ??= (async () => {
    hasher = (wantedBackend() === 'native' ? await createChunkHasher('native') : undefined) ?? (await createChunkHasher('wasm'));
  })();
  return loading;
}

/** Which BLAKE3 this thread hashes chunks with (after {@link loadChunkHasher}). */
export function chunkHasherBackend(): Blake3Backend | undefined {
  return hasher?.backend;
}

/** The keyed BLAKE3 chunk hash of `data` (32 bytes, a fresh array). */
export function chunkHash(data: Uint8Array): Uint8Array {
  const h = hasher;
  if (!h) throw new Error('the chunk hasher is not loaded (await loadChunkHasher() first)');
  return h.hash(data);
}

/**
 * A streaming chunker: `push` bytes, get the chunks that ended. Holds at most one chunk's
 * bytes. `onChunk` receives the chunk's bytes (a view valid during the call only) when
 * the caller needs them (the uploader copies them into a xorb).
 */
export class XetChunker {
  private buf = new Uint8Array(MAX_CHUNK);
  private len = 0;
  /** How far into `buf` the GEAR state has rolled; -1 before the skip is done. */
  private scanned = -1;
  private readonly gear = new Gear(MASK);

  constructor(
    readonly chunking: XetChunking = 'hub',
    private readonly onChunk?: (bytes: Uint8Array, hash: Uint8Array) => void,
  ) {}

  push(data: Uint8Array, out: XetChunk[]): void {
    let off = 0;
    while (off < data.length) {
      const take = Math.min(MAX_CHUNK - this.len, data.length - off);
      this.buf.set(data.subarray(off, off + take), this.len);
      this.len += take;
      off += take;
      this.cut(out);
    }
  }

  finish(out: XetChunk[]): void {
    this.cut(out);
    if (this.len > 0) this.emit(this.len, out);
  }

  private cut(out: XetChunk[]): void {
    for (;;) {
      if (this.scanned < 0) {
        if (this.len < SKIP) return;
        this.gear.resetHash();
        this.scanned = SKIP;
      }
      const m = this.scanned < this.len ? this.gear.nextMatch(this.buf.subarray(this.scanned, this.len)) : -1;
      if (m !== -1 && this.chunking === 'xet-core' && this.scanned + m < MIN_CHUNK) {
        this.scanned += m;
        continue;
      }
      if (m !== -1) this.emit(this.scanned + m, out);
      else if (this.len === MAX_CHUNK) this.emit(MAX_CHUNK, out);
      else {
        this.scanned = this.len;
        return;
      }
    }
  }

  private emit(n: number, out: XetChunk[]): void {
    const bytes = this.buf.subarray(0, n);
    const hash = chunkHash(bytes);
    this.onChunk?.(bytes, hash);
    out.push({ length: n, hash });
    this.buf.copyWithin(0, n, this.len);
    this.len -= n;
    this.scanned = -1;
  }
}

/**
 * Both chunkings over one stream: `hub` and `core` chunk lists, a chunk both share hashed
 * once. Holds at most two chunks' bytes.
 */
export class DualXetChunker {
  /** The stream bytes from `base` on (enough for the older of the two open chunks). */
  private buf = new Uint8Array(4 * MAX_CHUNK);
  private base = 0;
  private end = 0;
  private readonly sides: { start: number; scanned: number; gear: Gear; core: boolean }[];
  /** Chunks emitted by the side ahead, by start offset, until the other side passes them. */
  private readonly memo = new Map<number, { length: number; hash: Uint8Array }>();

  constructor() {
    this.sides = [
      { start: 0, scanned: -1, gear: new Gear(MASK), core: false },
      { start: 0, scanned: -1, gear: new Gear(MASK), core: true },
    ];
  }

  push(data: Uint8Array, hub: XetChunk[], core: XetChunk[]): void {
    let off = 0;
    while (off < data.length) {
      const lo = Math.min(this.sides[0]!.start, this.sides[1]!.start);
      if (lo > this.base) {
        this.buf.copyWithin(0, lo - this.base, this.end - this.base);
        this.base = lo;
      }
      const room = this.buf.length - (this.end - this.base);
      const take = Math.min(room, data.length - off);
      this.buf.set(data.subarray(off, off + take), this.end - this.base);
      this.end += take;
      off += take;
      this.cut(0, hub, false);
      this.cut(1, core, false);
    }
  }

  finish(hub: XetChunk[], core: XetChunk[]): void {
    this.cut(0, hub, true);
    this.cut(1, core, true);
  }

  private cut(i: number, out: XetChunk[], atEnd: boolean): void {
    const s = this.sides[i]!;
    for (;;) {
      const avail = this.end - s.start;
      if (avail === 0) return;
      if (s.scanned < 0) {
        if (avail < SKIP) {
          if (atEnd) this.emit(s, avail, out);
          return;
        }
        s.gear.resetHash();
        s.scanned = SKIP;
      }
      const limit = Math.min(avail, MAX_CHUNK);
      const from = s.start - this.base;
      const m = s.scanned < limit ? s.gear.nextMatch(this.buf.subarray(from + s.scanned, from + limit)) : -1;
      if (m !== -1 && s.core && s.scanned + m < MIN_CHUNK) {
        s.scanned += m;
        continue;
      }
      if (m !== -1) this.emit(s, s.scanned + m, out);
      else if (limit === MAX_CHUNK) this.emit(s, MAX_CHUNK, out);
      else {
        s.scanned = limit;
        if (atEnd) this.emit(s, avail, out);
        return;
      }
    }
  }

  private emit(s: { start: number; scanned: number }, n: number, out: XetChunk[]): void {
    const known = this.memo.get(s.start);
    let hash: Uint8Array;
    if (known && known.length === n) {
      hash = known.hash;
      this.memo.delete(s.start);
    } else {
      const from = s.start - this.base;
      hash = chunkHash(this.buf.subarray(from, from + n));
      this.memo.set(s.start, { length: n, hash });
    }
    out.push({ length: n, hash });
    s.start += n;
    s.scanned = -1;
    // Forget what the side behind can no longer cut (it is past those starts).
    const behind = Math.min(this.sides[0]!.start, this.sides[1]!.start);
    if (this.memo.size > 64) for (const k of this.memo.keys()) if (k < behind) this.memo.delete(k);
  }
}
