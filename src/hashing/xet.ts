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
 * Speed: ~80–125 MB/s on the 2-vCPU build VM (JIT JavaScript), 15–25× slower than xxh128,
 * so it is computed only where an hf comparison needs it, off the main thread for big files
 * (the hash pool), and remembered in memory for the rest of the run (see LocalHasher.xet).
 */
import { createChunker, fileHash, finalize, hashToHex, hmac, MerkleHashSubtree, nextBlock, type Chunk } from '@huggingface/xetchunk-wasm';
import type { StreamDigest } from './xxh128.js';

export { isXetHash, XET_PREFIX, xetIdentity } from '../types.js';

const ZERO_KEY = new Uint8Array(32);

/** Chunks folded into the Merkle state at a time. */
const FOLD_EVERY = 4096;

/** A streaming Xet file hasher (same contract as the xxh128 hasher). */
export class XetHasher implements StreamDigest {
  private chunker: ReturnType<typeof createChunker> | undefined = createChunker();
  private pending: Chunk[] = [];
  private tree: MerkleHashSubtree | undefined;

  constructor(private readonly foldEvery = FOLD_EVERY) {}

  update(data: Uint8Array | string): this {
    if (!this.chunker) throw new Error('XetHasher used after digestHex()');
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    for (const c of nextBlock(this.chunker, bytes)) this.push(c);
    return this;
  }

  digestHex(): string {
    if (!this.chunker) throw new Error('XetHasher used after digestHex()');
    const last = finalize(this.chunker);
    this.chunker = undefined;
    if (last) this.pending.push(last);
    if (!this.tree) return hashToHex(fileHash(this.pending));
    this.fold(true);
    const root = this.tree.finalHash();
    if (!root) throw new Error('Xet Merkle state is not closed'); // cannot happen: fold(true) closes it
    return hashToHex(hmac(root, ZERO_KEY));
  }

  dispose(): void {
    this.chunker = undefined;
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
