/**
 * Xet file hashes: the content identity Hugging Face Storage Buckets report for every file
 * (`xetHash` in listings, 64 hex digits). Comparing a local file with an hf file by content
 * (`--checksum`, metadata-only updates, `--track-renames` onto hf) needs this hash of the
 * local bytes: xxh128 cannot be compared with it.
 *
 * The file is cut into content-defined chunks (GEAR rolling hash, 64 KiB target) and each
 * chunk hashed with keyed BLAKE3, exactly as the Hub's uploader does (the same package,
 * @huggingface/xetchunk-wasm, a dependency of @huggingface/hub); the file hash is the keyed
 * hash of the Merkle tree over the chunks. The tree is folded as the chunks come
 * ({@link MerkleHashSubtree}: O(log n) state) instead of keeping every chunk hash, so
 * memory stays bounded for files of any size.
 *
 * Two chunkings exist, and a file's Xet hash depends on which one its uploader used:
 * - `'hub'` (the default): @huggingface/xetchunk-wasm 0.2.0, which is what @huggingface/hub
 *   (and so bucketsync) uploads with. It resets the GEAR rolling hash to 0 at every chunk
 *   boundary, so a chunk can end on the first byte scanned after the minimum-size skip (an
 *   8,128-byte chunk) wherever that byte's GEAR table entry has its top 16 bits clear
 *   (20 of the 256 entries), or within the next 63 bytes: about one boundary in 12 differs
 *   from xet-core's.
 * - `'xet-core'`: the reference chunker (hf_xet 1.6, what `hf` uploads with) passes over a
 *   match until the chunk has its 8,192-byte minimum (64 bytes hashed after the skip), so it
 *   never cuts those short chunks. Checked against `hf_xet.hash_files` and hf's uploads
 *   (test/unit/xet-hash.test.ts, test/conformance/hf-cross.test.ts).
 * Both are valid on the Hub (the CAS only checks that the chunks hash to the file hash), so a
 * bucket holds files of either kind; {@link xetHashers} checks a stream against both.
 *
 * Speed: ~80–125 MB/s on the 2-vCPU build VM (JIT JavaScript), 15–25× slower than xxh128,
 * so it is computed only where an hf comparison needs it, off the main thread for big files
 * (the hash pool), and remembered in memory for the rest of the run (see LocalHasher.xet).
 */
import { createChunker, fileHash, finalize, hashToHex, hmac, MerkleHashSubtree, nextBlock, type Chunk } from '@huggingface/xetchunk-wasm';
import { Hasher as Blake3 } from '@huggingface/blake3-jit';
import { Hasher as Gear } from 'gearhash-jit';
import type { StreamDigest } from './xxh128.js';

export { isXetHash, XET_PREFIX, xetIdentity } from '../types.js';

const ZERO_KEY = new Uint8Array(32);

/** Chunks folded into the Merkle state at a time. */
const FOLD_EVERY = 4096;

/** Which uploader's chunk boundaries a {@link XetHasher} follows (see the module comment). */
export type XetChunking = 'hub' | 'xet-core';

const TARGET_CHUNK = 64 * 1024;
const MIN_CHUNK = TARGET_CHUNK / 8;
const MAX_CHUNK = TARGET_CHUNK * 2;
const WINDOW = 64;
/** Bytes of a chunk never scanned for a boundary (xet-core: `minimum_chunk - 64 - 1`). */
const SKIP = MIN_CHUNK - WINDOW - 1;
/** The boundary mask: the target's low bits shifted to the top of the 64-bit hash. */
const MASK = BigInt(TARGET_CHUNK - 1) << BigInt(64 - Math.log2(TARGET_CHUNK));
const DATA_KEY = Uint8Array.from([
  102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28, 157, 228, 33, 16, 155, 235, 43, 88, 180,
  208, 176, 75, 147, 173, 242, 41,
]);

/**
 * xet-core's content-defined chunker (xet-core `deduplication/src/chunking.rs`
 * `next_boundary`), streaming: the GEAR hash starts at 0 after each boundary and after the
 * skip of {@link SKIP} bytes; a boundary is where its top 16 bits are clear, but only once the
 * chunk has {@link MIN_CHUNK} bytes (an earlier match is passed over, the hash rolling on), and
 * always at {@link MAX_CHUNK}. Holds at most one chunk's bytes.
 */
class XetCoreChunker {
  private buf = new Uint8Array(MAX_CHUNK);
  private len = 0;
  /** How far into `buf` the GEAR state has rolled; -1 before the window is primed. */
  private scanned = -1;
  private readonly gear = new Gear(MASK);
  private readonly blake3 = Blake3.newKeyed(DATA_KEY);

  push(data: Uint8Array, out: Chunk[]): void {
    let off = 0;
    while (off < data.length) {
      const take = Math.min(MAX_CHUNK - this.len, data.length - off);
      this.buf.set(data.subarray(off, off + take), this.len);
      this.len += take;
      off += take;
      this.cut(out);
    }
  }

  finish(out: Chunk[]): void {
    this.cut(out);
    if (this.len > 0) this.emit(this.len, out);
  }

  private cut(out: Chunk[]): void {
    for (;;) {
      if (this.scanned < 0) {
        if (this.len < SKIP) return;
        this.gear.resetHash();
        this.scanned = SKIP;
      }
      const m = this.scanned < this.len ? this.gear.nextMatch(this.buf.subarray(this.scanned, this.len)) : -1;
      if (m !== -1 && this.scanned + m < MIN_CHUNK) {
        // A match within the first 64 bytes scanned comes from the hash's state, not from this
        // chunk's window: not a boundary (xet-core); the hash rolls on.
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

  private emit(n: number, out: Chunk[]): void {
    const hash = this.blake3.reset().update(this.buf.subarray(0, n)).finalize(32);
    out.push({ length: n, hash });
    this.buf.copyWithin(0, n, this.len);
    this.len -= n;
    this.scanned = -1;
  }
}

/** A streaming Xet file hasher (same contract as the xxh128 hasher). */
export class XetHasher implements StreamDigest {
  private chunker: ReturnType<typeof createChunker> | undefined;
  private core: XetCoreChunker | undefined;
  private pending: Chunk[] = [];
  private tree: MerkleHashSubtree | undefined;

  constructor(
    private readonly foldEvery = FOLD_EVERY,
    readonly chunking: XetChunking = 'hub',
  ) {
    if (chunking === 'xet-core') this.core = new XetCoreChunker();
    else this.chunker = createChunker();
  }

  update(data: Uint8Array | string): this {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (this.core) {
      const out: Chunk[] = [];
      this.core.push(bytes, out);
      for (const c of out) this.push(c);
    } else if (this.chunker) {
      for (const c of nextBlock(this.chunker, bytes)) this.push(c);
    } else throw new Error('XetHasher used after digestHex()');
    return this;
  }

  digestHex(): string {
    if (this.core) {
      const out: Chunk[] = [];
      this.core.finish(out);
      this.core = undefined;
      for (const c of out) this.pending.push(c);
    } else if (this.chunker) {
      const last = finalize(this.chunker);
      this.chunker = undefined;
      if (last) this.pending.push(last);
    } else throw new Error('XetHasher used after digestHex()');
    if (!this.tree) return hashToHex(fileHash(this.pending));
    this.fold(true);
    const root = this.tree.finalHash();
    if (!root) throw new Error('Xet Merkle state is not closed'); // cannot happen: fold(true) closes it
    return hashToHex(hmac(root, ZERO_KEY));
  }

  dispose(): void {
    this.chunker = undefined;
    this.core = undefined;
    this.pending = [];
    this.tree = undefined;
  }

  private push(c: Chunk): void {
    // Copy the hash: the chunker may reuse its output buffers.
    this.pending.push({ length: c.length, hash: c.hash.slice() });
    if (this.pending.length >= this.foldEvery) this.fold(false);
  }

  private fold(atEnd: boolean): void {
    const part = MerkleHashSubtree.fromChunks(this.tree === undefined, this.pending, atEnd);
    this.pending = [];
    if (this.tree) this.tree.mergeInto(part);
    else this.tree = part;
  }
}

/**
 * Hashers for checking downloaded bytes against a listing's Xet hash: one per chunking, since
 * the file may have been uploaded by @huggingface/hub (bucketsync, huggingface.js) or by
 * xet-core (`hf`, huggingface_hub). The bytes are right when either digest matches.
 */
export function xetHashers(foldEvery = FOLD_EVERY): XetHasher[] {
  return [new XetHasher(foldEvery, 'hub'), new XetHasher(foldEvery, 'xet-core')];
}
