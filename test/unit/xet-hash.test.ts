// The Xet file hash of local files (src/hashing/xet.ts), checked against the reference
// one-shot computation of @huggingface/xetchunk-wasm (what the Hub's uploader uses).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileHash, getChunks, hashToHex } from '@huggingface/xetchunk-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool, hashFile, hashFileSync, loadXet } from '../../src/hashing/index.js';
import { isXetHash, XetHasher, xetIdentity } from '../../src/hashing/xet.js';
import { seededRandom } from '../support/random.js';

function randomBytes(n: number, seed: number): Buffer {
  const r = seededRandom(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

const reference = (data: Uint8Array): string => 'xet:' + hashToHex(fileHash(getChunks(data)));

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-xet-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('Xet file hash', () => {
  it('streams in any piece sizes to the reference hash, folding the Merkle state as it goes', () => {
    const data = randomBytes(3 * 1024 * 1024 + 17, 1);
    const want = reference(data);
    // ~48 chunks: fold every 3 chunks exercises many merges of the streaming tree.
    for (const [foldEvery, piece] of [
      [3, 1000],
      [5, 65_536],
      [4096, 1 << 20],
      [2, 7_777],
    ] as const) {
      const h = new XetHasher(foldEvery);
      for (let off = 0; off < data.length; off += piece) h.update(data.subarray(off, off + piece));
      expect('xet:' + h.digestHex(), `fold ${foldEvery}, pieces of ${piece}`).toBe(want);
    }
  });

  it('differs when one byte differs, and handles empty and tiny inputs', () => {
    const data = randomBytes(200_000, 2);
    const other = Buffer.from(data);
    other[123_456] = other[123_456]! ^ 1;
    expect(reference(other)).not.toBe(reference(data));
    const h = new XetHasher(2);
    h.update(other);
    expect('xet:' + h.digestHex()).toBe(reference(other));
    expect('xet:' + new XetHasher().digestHex()).toBe(reference(new Uint8Array(0)));
    expect('xet:' + new XetHasher().update('a').digestHex()).toBe(reference(Buffer.from('a')));
  });

  it('hashes files the same way through hashFile, hashFileSync and the worker pool', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 5, 3);
    const small = randomBytes(70_000, 4);
    fs.writeFileSync(path.join(dir, 'big.bin'), data);
    fs.writeFileSync(path.join(dir, 'small.bin'), small);
    const want = reference(data);
    expect((await hashFile(path.join(dir, 'big.bin'), { algorithm: 'xet' })).hash).toBe(want);
    await loadXet();
    expect(hashFileSync(path.join(dir, 'small.bin'), { algorithm: 'xet' }).hash).toBe(reference(small));
    const pool = new HashPool({ size: 1 });
    try {
      expect((await pool.hash(path.join(dir, 'big.bin'), { algorithm: 'xet', sizeHint: data.length })).hash).toBe(want);
      expect((await pool.hash(path.join(dir, 'small.bin'), { algorithm: 'xet', sizeHint: small.length })).hash).toBe(reference(small));
      // the default is still xxh128
      expect((await pool.hash(path.join(dir, 'small.bin'), { sizeHint: small.length })).hash).toMatch(/^xxh128:[0-9a-f]{32}$/);
    } finally {
      await pool.close();
    }
  });

  it('reads hf listing hashes as identities and refuses malformed ones', () => {
    const hex = 'AB'.repeat(32);
    expect(xetIdentity(hex)).toBe('xet:' + hex.toLowerCase());
    expect(isXetHash(xetIdentity(hex)!)).toBe(true);
    expect(xetIdentity('abc')).toBeUndefined();
    expect(xetIdentity(undefined)).toBeUndefined();
  });
});

describe("Xet file hash with xet-core's chunking (what hf / hf_xet uploads)", () => {
  // Expected hashes computed by the real hf_xet 1.6.0 (`hf_xet.hash_files`) on these seeded
  // inputs; @huggingface/xetchunk-wasm 0.2.0's chunking gives a different hash for every one
  // (it can cut a chunk within 64 bytes after the minimum-size skip, xet-core never does).
  const HF_XET: [number, number, string][] = [
    [200_004, 15, '1fcb3cb898801bb08e51ca8018e8b2fe87b27cb7ffcf97c94b391d2329dbe84c'],
    [422_000, 11, 'e2be5de14626f85930cf6dbab4b1d60765b7d471f56d772fd6cae64d16d7bcb2'],
    [866_000, 12, 'c6477923d5b5c0b703b743021ca8b89066455d41d1bee1854c86584eab7acb0b'],
    [1_236_000, 13, '4784cddb1a1f18abf00973ce634c69ce64c65f66b27a1702cbb5b0b6c0d9f341'],
    [3_000_017, 14, '9850f2038c1a9d7103115e751aaad0a8ffc973aa1edcb001254e03647f18cd7b'],
  ];
  it.each(HF_XET)('%i seeded bytes (seed %i) hash as hf_xet does, in any piece sizes', (n, seed, want) => {
    const data = randomBytes(n, seed);
    for (const [foldEvery, piece] of [
      [4096, n],
      [3, 65_536],
      [2, 7_777],
      [5, 1000],
    ] as const) {
      const h = new XetHasher(foldEvery, 'xet-core');
      for (let off = 0; off < data.length; off += piece) h.update(data.subarray(off, off + piece));
      expect(h.digestHex(), `fold ${foldEvery}, pieces of ${piece}`).toBe(want);
    }
    expect(new XetHasher().update(data).digestHex()).not.toBe(want);
  });

  it('matches the hub chunking where no boundary falls in the disputed 64 bytes, and on tiny inputs', () => {
    for (const d of [new Uint8Array(0), Buffer.from('a'), randomBytes(8_200, 5), randomBytes(70_000, 4)]) {
      expect(new XetHasher(4096, 'xet-core').update(d).digestHex()).toBe(new XetHasher().update(d).digestHex());
    }
  });
});
