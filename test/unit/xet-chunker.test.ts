// The Xet chunkers of src/hashing/xet-chunker.ts against the references: @huggingface/xetchunk-wasm
// (the 'hub' chunking) and the xet-core chunker of src/hashing/xet.ts (checked against hf_xet).
import { getChunks, hashToHex } from '@huggingface/xetchunk-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { DualXetChunker, loadChunkHasher, XetChunker, type XetChunk } from '../../src/hashing/xet-chunker.js';
import { seededRandom } from '../support/random.js';

function randomBytes(n: number, seed: number): Buffer {
  const r = seededRandom(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

const show = (cs: XetChunk[]) => cs.map((c) => `${c.length}:${hashToHex(c.hash)}`);

function chunk(chunking: 'hub' | 'xet-core', data: Uint8Array, piece: number): XetChunk[] {
  const c = new XetChunker(chunking);
  const out: XetChunk[] = [];
  for (let off = 0; off < data.length; off += piece) c.push(data.subarray(off, off + piece), out);
  c.finish(out);
  return out;
}

beforeAll(() => loadChunkHasher());

describe('Xet chunkers', () => {
  // Low-entropy stretches make short chunks (the rule the two chunkings differ on) frequent.
  const data = Buffer.concat([randomBytes(3 << 20, 7), Buffer.alloc(300_000, 0), randomBytes(1 << 20, 8).map((b) => b & 3), randomBytes(77_777, 9)]);

  it("'hub' cuts and hashes exactly like @huggingface/xetchunk-wasm, in any piece sizes", () => {
    const want = show(getChunks(data).map((c) => ({ length: c.length, hash: c.hash })));
    for (const piece of [1000, 65_536, 1 << 20, 7_777]) expect(show(chunk('hub', data, piece)), `pieces of ${piece}`).toEqual(want);
  });

  it("'xet-core' differs from 'hub', and the dual chunker yields both lists exactly", async () => {
    const { XetHasher } = await import('../../src/hashing/xet.js');
    const hub = show(chunk('hub', data, 65_536));
    const core = show(chunk('xet-core', data, 65_536));
    expect(core).not.toEqual(hub);
    // The file hash of the 'xet-core' chunks is XetHasher's (checked against hf_xet elsewhere).
    const h = new XetHasher(4096, 'xet-core');
    h.update(data);
    const { fileHash } = await import('@huggingface/xetchunk-wasm');
    expect(hashToHex(fileHash(chunk('xet-core', data, 999_999)))).toBe(h.digestHex());
    for (const piece of [1000, 65_536, 1 << 20, 5_000_001]) {
      const d = new DualXetChunker();
      const a: XetChunk[] = [];
      const b: XetChunk[] = [];
      for (let off = 0; off < data.length; off += piece) d.push(data.subarray(off, off + piece), a, b);
      d.finish(a, b);
      expect(show(a), `hub, pieces of ${piece}`).toEqual(hub);
      expect(show(b), `xet-core, pieces of ${piece}`).toEqual(core);
    }
  });

  it('handles empty and tiny inputs', () => {
    expect(chunk('hub', new Uint8Array(0), 10)).toEqual([]);
    expect(show(chunk('hub', Buffer.from('abc'), 1))).toEqual(show(getChunks(Buffer.from('abc')).map((c) => ({ length: c.length, hash: c.hash }))));
    const d = new DualXetChunker();
    const a: XetChunk[] = [];
    const b: XetChunk[] = [];
    d.push(Buffer.from('abc'), a, b);
    d.finish(a, b);
    expect(show(a)).toEqual(show(b));
    expect(a).toHaveLength(1);
  });
});
