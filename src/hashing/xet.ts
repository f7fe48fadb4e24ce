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
 * Speed: ~270 MB/s of CPU on the 2-vCPU build VM with hash-wasm's BLAKE3, more with the native
 * one (gearhash-jit boundaries + BLAKE3, src/hashing/xet-chunker.ts), several times slower than xxh128, so it is computed only where
 * an hf comparison needs it, off the main thread for big files (the hash pool), and kept in
 * the hash cache (see LocalHasher.xet).
 */
import { fileHash, hashToHex, hmac, MerkleHashSubtree, type Chunk } from '@huggingface/xetchunk-wasm';
import { DualXetChunker, loadChunkHasher, XetChunker, type XetChunking } from './xet-chunker.js';
import type { StreamDigest } from './xxh128.js';

export { isXetHash, XET_PREFIX, xetIdentity } from '../types.js';

const ZERO_KEY = new Uint8Array(32);

/** Chunks folded into the Merkle state at a time. */
const FOLD_EVERY = 4096;

/** Which uploader's chunk boundaries a {@link XetHasher} follows (see the module comment). */
export type { XetChunking };

// Chunking and chunk hashes: ./xet-chunker.ts (native or WebAssembly BLAKE3, loaded here once per thread).
await loadChunkHasher();

/** A streaming Xet file hasher (same contract as the xxh128 hasher). */
export class XetHasher implements StreamDigest {
  private chunker: XetChunker | undefined;
  private readonly merkle: MerkleState;

  constructor(
    foldEvery = FOLD_EVERY,
    readonly chunking: XetChunking = 'hub',
  ) {
    this.chunker = new XetChunker(chunking);
    this.merkle = new MerkleState(foldEvery);
  }

  update(data: Uint8Array | string): this {
    if (!this.chunker) throw new Error('XetHasher used after digestHex()');
    const out: Chunk[] = [];
    this.chunker.push(typeof data === 'string' ? Buffer.from(data) : data, out);
    for (const c of out) this.merkle.push(c);
    return this;
  }

  digestHex(): string {
    if (!this.chunker) throw new Error('XetHasher used after digestHex()');
    const out: Chunk[] = [];
    this.chunker.finish(out);
    this.chunker = undefined;
    for (const c of out) this.merkle.push(c);
    return this.merkle.digestHex();
  }

  dispose(): void {
    this.chunker = undefined;
    this.merkle.dispose();
  }
}

/** The file hash's Merkle tree, folded as chunks come (O(log n) state). */
export class MerkleState {
  private pending: Chunk[] = [];
  private tree: MerkleHashSubtree | undefined;

  constructor(private readonly foldEvery: number) {}

  push(c: Chunk): void {
    this.pending.push(c);
    if (this.pending.length >= this.foldEvery) this.fold(false);
  }

  digestHex(): string {
    if (!this.tree) return hashToHex(fileHash(this.pending));
    this.fold(true);
    const root = this.tree.finalHash();
    if (!root) throw new Error('Xet Merkle state is not closed'); // cannot happen: fold(true) closes it
    return hashToHex(hmac(root, ZERO_KEY));
  }

  dispose(): void {
    this.pending = [];
    this.tree = undefined;
  }

  private fold(atEnd: boolean): void {
    const part = MerkleHashSubtree.fromChunks(this.tree === undefined, this.pending, atEnd);
    this.pending = [];
    if (this.tree) this.tree.mergeInto(part);
    else this.tree = part;
  }
}

/**
 * The file hash under both chunkings in one pass (a chunk both cut alike is hashed once):
 * what checking a download costs when its uploader is unknown. `digestHex()`: `[hub, xet-core]`.
 */
export class DualXetHasher {
  private chunker: DualXetChunker | undefined = new DualXetChunker();
  private readonly hub: MerkleState;
  private readonly core: MerkleState;

  constructor(foldEvery = FOLD_EVERY) {
    this.hub = new MerkleState(foldEvery);
    this.core = new MerkleState(foldEvery);
  }

  update(data: Uint8Array): this {
    if (!this.chunker) throw new Error('DualXetHasher used after digestHex()');
    const a: Chunk[] = [];
    const b: Chunk[] = [];
    this.chunker.push(data, a, b);
    for (const c of a) this.hub.push(c);
    for (const c of b) this.core.push(c);
    return this;
  }

  digestHex(): [string, string] {
    if (!this.chunker) throw new Error('DualXetHasher used after digestHex()');
    const a: Chunk[] = [];
    const b: Chunk[] = [];
    this.chunker.finish(a, b);
    this.chunker = undefined;
    for (const c of a) this.hub.push(c);
    for (const c of b) this.core.push(c);
    return [this.hub.digestHex(), this.core.digestHex()];
  }

  dispose(): void {
    this.chunker = undefined;
    this.hub.dispose();
    this.core.dispose();
  }
}

/**
 * A hasher for checking downloaded bytes against a listing's Xet hash: both chunkings in one
 * pass, since the file may have been uploaded by @huggingface/hub (bucketsync, huggingface.js)
 * or by xet-core (`hf`, huggingface_hub). The bytes are right when either digest matches.
 */
export function xetHashers(foldEvery = FOLD_EVERY): DualXetHasher {
  return new DualXetHasher(foldEvery);
}
