/**
 * Decoding Xet chunk records (the client side of what test/hf-server/lz4.ts does for the test
 * CAS): xorb chunks are stored raw (scheme 0), as LZ4 frames (1), or as LZ4 frames of the
 * "byte grouping 4" transform (2), which is what hf_xet writes. Written from the public LZ4
 * frame/block format descriptions; @huggingface/hub does not export its decoder.
 */
const FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

class Output {
  buf: Uint8Array;
  len = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }
  ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

function readU32(src: Uint8Array, i: number): number {
  if (i + 4 > src.length) throw new Error('lz4: truncated input');
  return ((src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16)) >>> 0) + src[i + 3]! * 0x1000000;
}

/** Decodes one LZ4 block (sequences of literals + matches) into `out`, which keeps the history. */
function decodeBlock(src: Uint8Array, start: number, end: number, out: Output): void {
  let i = start;
  while (i < end) {
    const token = src[i++]!;
    let litLen = token >>> 4;
    if (litLen === 15) {
      let b: number;
      do {
        if (i >= end) throw new Error('lz4: truncated literal length');
        b = src[i++]!;
        litLen += b;
      } while (b === 255);
    }
    if (i + litLen > end) throw new Error('lz4: literals overrun the block');
    out.ensure(litLen);
    out.buf.set(src.subarray(i, i + litLen), out.len);
    out.len += litLen;
    i += litLen;
    if (i >= end) break; // the last sequence has literals only
    if (i + 2 > end) throw new Error('lz4: truncated match offset');
    const offset = src[i]! | (src[i + 1]! << 8);
    i += 2;
    if (offset === 0 || offset > out.len) throw new Error('lz4: invalid match offset');
    let matchLen = (token & 0x0f) + 4;
    if ((token & 0x0f) === 15) {
      let b: number;
      do {
        if (i >= end) throw new Error('lz4: truncated match length');
        b = src[i++]!;
        matchLen += b;
      } while (b === 255);
    }
    out.ensure(matchLen);
    const buf = out.buf;
    let from = out.len - offset;
    let to = out.len;
    if (offset >= matchLen) {
      buf.copyWithin(to, from, from + matchLen);
    } else {
      for (let k = 0; k < matchLen; k++) buf[to++] = buf[from++]!;
    }
    out.len += matchLen;
  }
}

/** Decodes one or more concatenated LZ4 frames. */
export function lz4DecompressFrames(src: Uint8Array, expectedSize = 0): Uint8Array {
  const out = new Output(expectedSize || src.length * 3);
  let i = 0;
  while (i < src.length) {
    const magic = readU32(src, i);
    i += 4;
    if (((magic & SKIPPABLE_MASK) >>> 0) === SKIPPABLE_MAGIC) {
      i += 4 + readU32(src, i);
      continue;
    }
    if (magic !== FRAME_MAGIC) throw new Error(`lz4: bad frame magic 0x${magic.toString(16)}`);
    const flg = src[i++];
    i++; // BD (block maximum size): not needed to decode
    if (flg === undefined || flg >>> 6 !== 1) throw new Error('lz4: unsupported frame version');
    const blockChecksum = (flg & 0x10) !== 0;
    const contentSize = (flg & 0x08) !== 0;
    const contentChecksum = (flg & 0x04) !== 0;
    const dictId = (flg & 0x01) !== 0;
    if (contentSize) i += 8;
    if (dictId) i += 4;
    i++; // header checksum
    for (;;) {
      const word = readU32(src, i);
      i += 4;
      if (word === 0) break; // end mark
      const size = word & 0x7fffffff;
      const raw = word >= 0x80000000;
      if (i + size > src.length) throw new Error('lz4: truncated block');
      if (raw) {
        out.ensure(size);
        out.buf.set(src.subarray(i, i + size), out.len);
        out.len += size;
      } else {
        decodeBlock(src, i, i + size, out);
      }
      i += size;
      if (blockChecksum) i += 4;
    }
    if (contentChecksum) i += 4;
  }
  return out.result();
}

/** Inverse of BG4's byte grouping: the four byte groups are interleaved back. */
export function bg4Regroup(grouped: Uint8Array): Uint8Array {
  const n = grouped.length;
  const split = Math.floor(n / 4);
  const rem = n % 4;
  const starts = [0, 0, 0, 0];
  starts[1] = split + (rem >= 1 ? 1 : 0);
  starts[2] = starts[1]! + split + (rem >= 2 ? 1 : 0);
  starts[3] = starts[2]! + split + (rem >= 3 ? 1 : 0);
  const out = new Uint8Array(n);
  for (let g = 0; g < 4; g++) {
    let src = starts[g]!;
    for (let k = g; k < n; k += 4) out[k] = grouped[src++]!;
  }
  return out;
}

/** One chunk record's payload, decoded. */
export function decodeChunk(scheme: number, payload: Uint8Array, uncompressedLength: number): Uint8Array {
  switch (scheme) {
    case 0:
      return payload;
    case 1:
      return lz4DecompressFrames(payload, uncompressedLength);
    case 2:
      return bg4Regroup(lz4DecompressFrames(payload, uncompressedLength));
    default:
      throw new Error(`unknown chunk compression scheme ${scheme}`);
  }
}
