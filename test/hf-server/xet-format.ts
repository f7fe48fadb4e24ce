/**
 * Xet binary formats the test CAS server needs, written from the public Xet protocol
 * documentation (huggingface.co/docs/xet: xorb, shard, hashing, api):
 * - xorb upload bodies: chunk records [8-byte header + (compressed) data];
 * - shards (MDB v2): file-info section, CAS-info section, 200-byte footer;
 * - hashes: chunk hash = keyed BLAKE3 (DATA_KEY); xorb/file/verification hashes via xetchunk-wasm;
 *   hex strings use Xet's "little-endian u64 groups" convention (hashToHex/hexToBytes).
 */
import { createBLAKE3, type IHasher } from 'hash-wasm';
import { fileHash, hashToHex, hexToBytes, hmac, verificationHash, xorbHash } from '@huggingface/xetchunk-wasm';
import { decodeChunk } from './lz4.js';

export { hashToHex, hexToBytes };

const DATA_KEY = Uint8Array.from([
  102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28, 157, 228, 33, 16, 155, 235, 43, 88, 180,
  208, 176, 75, 147, 173, 242, 41,
]);

export const SHARD_MAGIC = Uint8Array.from([
  72, 70, 82, 101, 112, 111, 77, 101, 116, 97, 68, 97, 116, 97, 0, 85, 105, 103, 69, 106, 123, 129, 87, 131, 165, 189,
  217, 92, 205, 209, 74, 169,
]);
const SHARD_HEADER_SIZE = 48;
const SHARD_FOOTER_SIZE = 200;
const FLAG_WITH_VERIFICATION = 0x80000000;
const FLAG_WITH_METADATA_EXT = 0x40000000;
const XORB_FOOTER_IDENT = Buffer.from('XETBLOB');
export const ZERO_HASH = '0'.repeat(64);

let chunkHasher: IHasher | undefined;

/** Xet chunk hash: BLAKE3 keyed with DATA_KEY over the uncompressed chunk bytes. */
export async function chunkHash(data: Uint8Array): Promise<string> {
  chunkHasher ??= await createBLAKE3(256, DATA_KEY);
  chunkHasher.init();
  chunkHasher.update(data);
  return hashToHex(chunkHasher.digest('binary'));
}

export interface ParsedChunk {
  /** Byte offset of the chunk record (header) in the serialized xorb. */
  offset: number;
  /** Byte offset just past the record. */
  end: number;
  /** Uncompressed length. */
  length: number;
  hash: string;
}

export { decodeChunk };

/**
 * Walks the chunk records of a serialized xorb, calling `visit` with each decoded chunk.
 * Stops at the end of the body or at a complete `XETBLOB` storage footer (tolerated, like the reference server).
 */
export function walkXorb(
  body: Uint8Array,
  visit: (rec: { offset: number; end: number; data: Uint8Array }) => void,
  opts: { from?: number; to?: number } = {},
): number {
  let off = opts.from ?? 0;
  const limit = opts.to ?? body.length;
  let count = 0;
  while (off < limit) {
    if (limit - off >= XORB_FOOTER_IDENT.length && XORB_FOOTER_IDENT.equals(body.subarray(off, off + 7))) break;
    if (limit - off < 8) throw new Error(`truncated chunk header at byte ${off}`);
    const version = body[off]!;
    if (version !== 0) throw new Error(`unsupported chunk header version ${version} at byte ${off}`);
    const clen = body[off + 1]! | (body[off + 2]! << 8) | (body[off + 3]! << 16);
    const scheme = body[off + 4]!;
    const ulen = body[off + 5]! | (body[off + 6]! << 8) | (body[off + 7]! << 16);
    const end = off + 8 + clen;
    if (end > limit) throw new Error(`truncated chunk data at byte ${off}`);
    const data = decodeChunk(scheme, body.subarray(off + 8, end), ulen);
    if (data.length !== ulen) {
      throw new Error(`chunk at byte ${off} decodes to ${data.length} bytes, header says ${ulen}`);
    }
    visit({ offset: off, end, data });
    off = end;
    count++;
  }
  return count;
}

/** Parses and hashes every chunk of an uploaded xorb. */
export async function parseXorb(body: Uint8Array): Promise<ParsedChunk[]> {
  const recs: { offset: number; end: number; data: Uint8Array }[] = [];
  walkXorb(body, (r) => recs.push(r));
  const out: ParsedChunk[] = [];
  for (const r of recs) out.push({ offset: r.offset, end: r.end, length: r.data.length, hash: await chunkHash(r.data) });
  return out;
}

export function computeXorbHash(chunks: { hash: string; length: number }[]): string {
  return hashToHex(xorbHash(chunks.map((c) => ({ hash: hexToBytes(c.hash), length: c.length }))));
}

export function computeFileHash(chunks: { hash: string; length: number }[]): string {
  return hashToHex(fileHash(chunks.map((c) => ({ hash: hexToBytes(c.hash), length: c.length }))));
}

export function computeVerificationHash(chunkHashes: string[]): string {
  return hashToHex(verificationHash(chunkHashes.map(hexToBytes)));
}

export function keyedChunkHash(hash: string, key: Uint8Array): string {
  return hashToHex(hmac(hexToBytes(hash), key));
}

// ---------------------------------------------------------------------------------------------
// Shards

export interface ShardFileTerm {
  xorb: string;
  length: number;
  start: number;
  end: number;
  verification?: string;
}

export interface ShardFile {
  hash: string;
  terms: ShardFileTerm[];
  sha256?: string;
}

export interface ShardXorb {
  hash: string;
  unpackedBytes: number;
  packedBytes: number;
  chunks: { hash: string; offset: number; length: number }[];
}

export interface ParsedShard {
  files: ShardFile[];
  xorbs: ShardXorb[];
}

function readHash(buf: Uint8Array, off: number): string {
  if (off + 32 > buf.length) throw new Error('truncated shard');
  return hashToHex(buf.subarray(off, off + 32));
}

function isBookend(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < 32; i++) if (buf[off + i] !== 0xff) return false;
  return true;
}

/**
 * Parses an uploaded shard. Two layouts are accepted, as the Xet protocol allows:
 * - with a footer (header `footer_size` = 200): section offsets are read from the footer
 *   (what @huggingface/hub sends);
 * - without a footer (header `footer_size` = 0): the file-info section starts right after the
 *   48-byte header and the CAS-info section right after the file-info bookend (what hf_xet
 *   sends: xet-core `read_shard_to_bytes_remove_footer`).
 * Every read is bounds-checked: a truncated or malformed shard throws, never reads past the body.
 */
export function parseShard(buf: Uint8Array): ParsedShard {
  if (buf.length < SHARD_HEADER_SIZE) throw new Error('shard too small');
  for (let i = 0; i < SHARD_MAGIC.length; i++) {
    if (buf[i] !== SHARD_MAGIC[i]) throw new Error('bad shard magic');
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = view.getBigUint64(32, true);
  if (version !== 2n) throw new Error(`unsupported shard header version ${version}`);
  const footerSize = view.getBigUint64(40, true);
  let fileInfoOffset: number;
  let casInfoOffset: number | undefined;
  if (footerSize === 0n) {
    fileInfoOffset = SHARD_HEADER_SIZE;
  } else {
    if (footerSize !== BigInt(SHARD_FOOTER_SIZE)) throw new Error(`bad shard footer size ${footerSize}`);
    const footerStart = buf.length - SHARD_FOOTER_SIZE;
    if (footerStart < SHARD_HEADER_SIZE) throw new Error('shard too small for its footer');
    if (view.getBigUint64(footerStart, true) !== 1n) throw new Error('unsupported shard footer version');
    fileInfoOffset = Number(view.getBigUint64(footerStart + 8, true));
    casInfoOffset = Number(view.getBigUint64(footerStart + 16, true));
    if (fileInfoOffset < SHARD_HEADER_SIZE || fileInfoOffset > footerStart) throw new Error('bad file-info offset');
    if (casInfoOffset < SHARD_HEADER_SIZE || casInfoOffset > footerStart) throw new Error('bad CAS-info offset');
  }
  const need = (off: number, n: number) => {
    if (off + n > buf.length) throw new Error('truncated shard');
  };

  const files: ShardFile[] = [];
  let off = fileInfoOffset;
  for (;;) {
    need(off, 48);
    if (isBookend(buf, off)) break;
    const hash = readHash(buf, off);
    const flags = view.getUint32(off + 32, true);
    const n = view.getUint32(off + 36, true);
    off += 48;
    need(off, 48 * n);
    const terms: ShardFileTerm[] = [];
    for (let i = 0; i < n; i++) {
      terms.push({
        xorb: readHash(buf, off),
        length: view.getUint32(off + 36, true),
        start: view.getUint32(off + 40, true),
        end: view.getUint32(off + 44, true),
      });
      off += 48;
    }
    if (flags & FLAG_WITH_VERIFICATION) {
      need(off, 48 * n);
      for (const t of terms) {
        t.verification = readHash(buf, off);
        off += 48;
      }
    }
    let sha256: string | undefined;
    if (flags & FLAG_WITH_METADATA_EXT) {
      need(off, 48);
      sha256 = readHash(buf, off);
      off += 48;
    }
    files.push({ hash, terms, ...(sha256 ? { sha256 } : {}) });
  }

  const xorbs: ShardXorb[] = [];
  off = casInfoOffset ?? off + 48; // footer-less: right after the file-info bookend
  for (;;) {
    need(off, 48);
    if (isBookend(buf, off)) break;
    const hash = readHash(buf, off);
    const n = view.getUint32(off + 36, true);
    const unpackedBytes = view.getUint32(off + 40, true);
    const packedBytes = view.getUint32(off + 44, true);
    off += 48;
    need(off, 48 * n);
    const chunks: ShardXorb['chunks'] = [];
    for (let i = 0; i < n; i++) {
      chunks.push({ hash: readHash(buf, off), offset: view.getUint32(off + 32, true), length: view.getUint32(off + 36, true) });
      off += 48;
    }
    xorbs.push({ hash, unpackedBytes, packedBytes, chunks });
  }
  return { files, xorbs };
}

/**
 * Builds the shard the global-dedup endpoint answers with: no file info, the CAS info of the
 * given xorbs with every chunk hash keyed by `hmacKey` (which goes in the footer), and the full
 * footer layout (lookup-table offsets pointing at the footer: the tables are empty).
 */
export function buildDedupShard(xorbs: ShardXorb[], hmacKey: Uint8Array): Uint8Array {
  const casSize = xorbs.reduce((n, x) => n + 48 + 48 * x.chunks.length, 0);
  const fileInfoOffset = SHARD_HEADER_SIZE;
  const casInfoOffset = fileInfoOffset + 48; // empty file-info section + its bookend
  const footerStart = casInfoOffset + casSize + 48;
  const buf = new Uint8Array(footerStart + SHARD_FOOTER_SIZE);
  const view = new DataView(buf.buffer);
  buf.set(SHARD_MAGIC, 0);
  view.setBigUint64(32, 2n, true);
  view.setBigUint64(40, BigInt(SHARD_FOOTER_SIZE), true);
  buf.fill(0xff, fileInfoOffset, fileInfoOffset + 32);
  let off = casInfoOffset;
  let packed = 0n;
  let unpacked = 0n;
  for (const x of xorbs) {
    buf.set(hexToBytes(x.hash), off);
    view.setUint32(off + 32, 0, true);
    view.setUint32(off + 36, x.chunks.length, true);
    view.setUint32(off + 40, x.unpackedBytes, true);
    view.setUint32(off + 44, x.packedBytes, true);
    packed += BigInt(x.packedBytes);
    unpacked += BigInt(x.unpackedBytes);
    off += 48;
    for (const c of x.chunks) {
      buf.set(hexToBytes(keyedChunkHash(c.hash, hmacKey)), off);
      view.setUint32(off + 32, c.offset, true);
      view.setUint32(off + 36, c.length, true);
      off += 48;
    }
  }
  buf.fill(0xff, off, off + 32);
  const f = footerStart;
  view.setBigUint64(f, 1n, true);
  view.setBigUint64(f + 8, BigInt(fileInfoOffset), true);
  view.setBigUint64(f + 16, BigInt(casInfoOffset), true);
  for (const o of [24, 40, 56]) view.setBigUint64(f + o, BigInt(footerStart), true); // lookup tables: empty
  buf.set(hmacKey, f + 72);
  view.setBigUint64(f + 104, BigInt(Math.floor(Date.now() / 1000)), true);
  view.setBigUint64(f + 112, BigInt(Math.floor(Date.now() / 1000) + 3600), true);
  view.setBigUint64(f + 168, packed, true);
  view.setBigUint64(f + 176, unpacked, true);
  view.setBigUint64(f + 184, unpacked, true);
  view.setBigUint64(f + 192, BigInt(footerStart), true);
  return buf;
}
