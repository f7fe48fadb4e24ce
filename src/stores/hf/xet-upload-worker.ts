/**
 * Worker-thread side of the big-file Xet uploader (xet-upload.ts): reads one local file once,
 * cuts it into chunks ('hub' chunking, BLAKE3 of xet-chunker.ts), packs the chunks it has not packed
 * before into xorbs of at most {@link XORB_DATA} bytes / {@link XORB_CHUNKS} chunks, and posts
 * each finished xorb to the main thread (its buffer transferred, not copied) with its hash
 * and chunk hashes. It waits for an `ack` (the xorb is stored, or known stored) whenever
 * `window` xorbs are unacknowledged: memory is bounded by `window + 1` xorbs per file.
 * At the end it posts the file's Xet hash and its terms (chunk ranges of xorbs, each with its
 * verification hash), which is what the shard records.
 *
 * Chunks go into the xorb uncompressed (scheme 0): LZ4 in JavaScript cost more CPU than every
 * other step together (docs/hf.md), and the content of big checkpoints barely compresses.
 */
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { hashToHex, verificationHash, xorbHash } from '@huggingface/xetchunk-wasm';
import { loadChunkHasher, XetChunker, type XetChunk } from '../../hashing/xet-chunker.js';
import { MerkleState } from '../../hashing/xet.js';

/**
 * Chunk data per xorb: 16 MiB (the CAS takes up to 64 MiB). Smaller xorbs bound memory (a file
 * holds at most window + 1 of them) and make the unit an interrupted upload may lose small: a
 * kill loses at most the xorbs in flight.
 */
export const XORB_DATA = 16 * 1024 * 1024;
export const XORB_CHUNKS = 8 * 1024;
const HEADER = 8;
const READ = 8 * 1024 * 1024;

export type UploadWorkerRequest =
  | { type: 'start'; path: string; size: number; window: number }
  | { type: 'ack'; buffer?: ArrayBuffer }
  | { type: 'cancel' };

export interface XorbMessage {
  type: 'xorb';
  index: number;
  hash: string;
  /** The serialized xorb: the first `size` bytes of `data` (transferred). */
  data: ArrayBuffer;
  size: number;
  /** Chunk hashes, 32 bytes each, in order (transferred). */
  chunkHashes: ArrayBuffer;
  chunkLengths: Uint32Array;
}

export interface UploadTerm {
  xorb: number;
  start: number;
  end: number;
  length: number;
  /** Verification hash of the term's chunks (raw 32 bytes). */
  verification: Uint8Array;
}

export type UploadWorkerMessage =
  | XorbMessage
  | { type: 'done'; fileHash: string; terms: UploadTerm[]; bytes: number }
  | { type: 'error'; message: string; code?: string };

const XORB_BUFFER = XORB_DATA + XORB_CHUNKS * HEADER;
/** Xorb buffers the main thread gave back once stored. */
const free: ArrayBuffer[] = [];

class Xorb {
  readonly data = new Uint8Array(free.pop() ?? new ArrayBuffer(XORB_BUFFER));
  offset = 0;
  dataBytes = 0;
  readonly hashes: Uint8Array[] = [];
  readonly lengths: number[] = [];

  constructor(readonly index: number) {}

  fits(n: number): boolean {
    return this.hashes.length < XORB_CHUNKS && this.dataBytes + n <= XORB_DATA;
  }

  /** Appends a chunk (header + bytes, uncompressed); returns its index in the xorb. */
  add(bytes: Uint8Array, hash: Uint8Array): number {
    const n = bytes.length;
    const d = this.data;
    const o = this.offset;
    d[o] = 0; // chunk header version
    d[o + 1] = n & 0xff;
    d[o + 2] = (n >> 8) & 0xff;
    d[o + 3] = (n >> 16) & 0xff;
    d[o + 4] = 0; // compression scheme: none
    d[o + 5] = n & 0xff;
    d[o + 6] = (n >> 8) & 0xff;
    d[o + 7] = (n >> 16) & 0xff;
    d.set(bytes, o + HEADER);
    this.offset += HEADER + n;
    this.dataBytes += n;
    this.hashes.push(hash);
    this.lengths.push(n);
    return this.hashes.length - 1;
  }
}

interface FlowState {
  credits: number;
  wake: (() => void) | undefined;
  cancelled: boolean;
}

function cancelled(): Error {
  return Object.assign(new Error('cancelled'), { code: 'ECANCELED' });
}

async function upload(port: NonNullable<typeof parentPort>, req: { path: string; size: number }, state: FlowState): Promise<void> {
  await loadChunkHasher();
  const fd = await fs.promises.open(req.path, 'r');
  try {
    const st = await fd.stat();
    if (st.size !== req.size) throw Object.assign(new Error(`${req.path} changed since it was listed (size ${st.size}, expected ${req.size})`), { code: 'ESTALE' });
    const merkle = new MerkleState(4096);
    // Chunks already packed (a file that repeats itself, zeros…): referenced, not packed again.
    const seen = new Map<string, { xorb: number; index: number }>();
    const refs: { xorb: number; index: number; length: number; hash: Uint8Array }[] = [];
    let xorb = new Xorb(0);
    const ready: Xorb[] = [];
    const send = async (x: Xorb): Promise<void> => {
      while (state.credits <= 0 && !state.cancelled) await new Promise<void>((r) => (state.wake = r));
      if (state.cancelled) throw cancelled();
      state.credits--;
      const chunks = x.hashes.map((hash, i) => ({ hash, length: x.lengths[i]! }));
      const packed = new Uint8Array(32 * chunks.length);
      chunks.forEach((c, i) => packed.set(c.hash, 32 * i));
      // The whole buffer moves to the main thread (no copy); it uploads the first `offset` bytes.
      const msg: XorbMessage = {
        type: 'xorb',
        index: x.index,
        hash: hashToHex(xorbHash(chunks)),
        data: x.data.buffer as ArrayBuffer,
        size: x.offset,
        chunkHashes: packed.buffer,
        chunkLengths: Uint32Array.from(x.lengths),
      };
      port.postMessage(msg, [msg.data, packed.buffer]);
    };
    const chunker = new XetChunker('hub', (bytes, hash) => {
      merkle.push({ length: bytes.length, hash });
      const key = Buffer.from(hash.buffer, hash.byteOffset, 32).toString('hex');
      const known = seen.get(key);
      if (known) {
        refs.push({ ...known, length: bytes.length, hash });
        return;
      }
      if (!xorb.fits(bytes.length)) {
        ready.push(xorb);
        xorb = new Xorb(xorb.index + 1);
      }
      const at = { xorb: xorb.index, index: xorb.add(bytes, hash) };
      seen.set(key, at);
      refs.push({ ...at, length: bytes.length, hash });
    });
    const out: XetChunk[] = [];
    const buf = Buffer.allocUnsafe(READ);
    let total = 0;
    for (;;) {
      if (state.cancelled) throw cancelled();
      const { bytesRead } = await fd.read(buf, 0, READ, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > req.size) break;
      chunker.push(buf.subarray(0, bytesRead), out);
      out.length = 0;
      while (ready.length > 0) await send(ready.shift()!);
    }
    chunker.finish(out);
    while (ready.length > 0) await send(ready.shift()!);
    if (xorb.hashes.length > 0) await send(xorb);
    const end = await fd.stat();
    if (total !== req.size || end.size !== req.size || end.mtimeMs !== st.mtimeMs) {
      throw Object.assign(new Error(`${req.path} changed while it was read (${total} bytes read, ${req.size} expected)`), { code: 'ESTALE' });
    }
    // Terms: runs of consecutive chunks of one xorb.
    const terms: UploadTerm[] = [];
    let i = 0;
    while (i < refs.length) {
      const first = refs[i]!;
      let j = i + 1;
      let length = first.length;
      while (j < refs.length && refs[j]!.xorb === first.xorb && refs[j]!.index === refs[j - 1]!.index + 1) length += refs[j++]!.length;
      terms.push({ xorb: first.xorb, start: first.index, end: first.index + (j - i), length, verification: verificationHash(refs.slice(i, j).map((r) => r.hash)) });
      i = j;
    }
    port.postMessage({ type: 'done', fileHash: merkle.digestHex(), terms, bytes: total } satisfies UploadWorkerMessage);
  } finally {
    await fd.close();
  }
}

const port = parentPort;
if (port) {
  const state: FlowState = { credits: 0, wake: undefined, cancelled: false };
  port.on('message', (msg: UploadWorkerRequest) => {
    if (msg.type === 'ack') {
      if (msg.buffer && msg.buffer.byteLength === XORB_BUFFER) free.push(msg.buffer);
      state.credits++;
      state.wake?.();
      state.wake = undefined;
    } else if (msg.type === 'cancel') {
      state.cancelled = true;
      state.wake?.();
    } else if (msg.type === 'start') {
      state.credits = msg.window;
      upload(port, msg, state).catch((e: unknown) => {
        const err = e as NodeJS.ErrnoException;
        port.postMessage({ type: 'error', message: err?.message ?? String(e), ...(err?.code ? { code: err.code } : {}) } satisfies UploadWorkerMessage);
      });
    }
  });
}
