// The two BLAKE3 backends of the Xet chunk hashes (src/hashing/xet-chunker.ts): native
// (@napi-rs/blake-hash) and WebAssembly (hash-wasm, the fallback). They must give the same chunk
// and file hashes, equal to the reference (@huggingface/xetchunk-wasm), and
// BUCKETSYNC_BLAKE3=wasm must really switch a thread to the fallback.
import { fileHash, getChunks, hashToHex } from '@huggingface/xetchunk-wasm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createChunkHasher } from '../../src/hashing/xet-chunker.js';
import { seededRandom } from '../support/random.js';

function randomBytes(n: number, seed: number): Buffer {
  const r = seededRandom(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

// Low-entropy stretches make short chunks (where the two chunkings differ) frequent.
const data = Buffer.concat([randomBytes(2 << 20, 11), Buffer.alloc(200_000, 0), randomBytes(1 << 20, 12).map((b) => b & 3), randomBytes(54_321, 13)]);
const referenceFile = hashToHex(fileHash(getChunks(data)));
const referenceChunks = getChunks(data).map((c) => `${c.length}:${hashToHex(c.hash)}`);

afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
});

/** Fresh copies of the Xet modules (the backend is chosen once per module instance) under `env`. */
async function freshModules(env: string | undefined) {
  vi.resetModules();
  if (env === undefined) vi.stubEnv('BUCKETSYNC_BLAKE3', undefined as unknown as string);
  else vi.stubEnv('BUCKETSYNC_BLAKE3', env);
  const chunker = await import('../../src/hashing/xet-chunker.js');
  const xet = await import('../../src/hashing/xet.js');
  await chunker.loadChunkHasher();
  return { chunker, xet };
}

describe('BLAKE3 backends of the Xet chunk hashes', () => {
  it('native and WebAssembly give the same keyed digests on every length and on views at odd offsets', async () => {
    const native = await createChunkHasher('native');
    const wasm = await createChunkHasher('wasm');
    expect(native, 'the native binding loads on this platform').toBeDefined();
    expect(wasm).toBeDefined();
    const big = randomBytes(300_000, 5);
    const lengths = [0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 8128, 8192, 65_535, 65_536, 65_537, 131_072, 299_999];
    for (const n of lengths) {
      for (const off of [0, 1, 7]) {
        if (off + n > big.length) continue;
        const view = big.subarray(off, off + n);
        const a = Buffer.from(native!.hash(view)).toString('hex');
        const b = Buffer.from(wasm!.hash(view)).toString('hex');
        expect(a, `${n} bytes at offset ${off}`).toBe(b);
        expect(a).toHaveLength(64);
      }
    }
    // Each call starts afresh (the key kept, nothing carried over from the previous chunk).
    const x = native!.hash(big.subarray(0, 5000));
    native!.hash(big.subarray(5000, 90_000));
    expect(Buffer.from(native!.hash(big.subarray(0, 5000)))).toEqual(Buffer.from(x));
    // The chunk hashes of the reference chunker are what both compute for the same bytes.
    let at = 0;
    for (const c of getChunks(data).slice(0, 20)) {
      const bytes = data.subarray(at, at + c.length);
      at += c.length;
      expect(hashToHex(native!.hash(bytes))).toBe(hashToHex(c.hash));
      expect(hashToHex(wasm!.hash(bytes))).toBe(hashToHex(c.hash));
    }
  });

  for (const env of [undefined, 'wasm', 'WASM', 'native', 'something-else'] as const) {
    const want = env?.toLowerCase() === 'wasm' ? 'wasm' : 'native';
    it(`BUCKETSYNC_BLAKE3=${env ?? '(unset)'}: chunks hashed with ${want}, chunk and file hashes equal the reference under both chunkings`, async () => {
      const { chunker, xet } = await freshModules(env);
      expect(chunker.chunkHasherBackend()).toBe(want);
      const c = new chunker.XetChunker('hub');
      const out: { length: number; hash: Uint8Array }[] = [];
      for (let off = 0; off < data.length; off += 100_003) c.push(data.subarray(off, off + 100_003), out);
      c.finish(out);
      expect(out.map((k) => `${k.length}:${hashToHex(k.hash)}`)).toEqual(referenceChunks);
      expect(new xet.XetHasher().update(data).digestHex()).toBe(referenceFile);
      const [hub, core] = new xet.DualXetHasher().update(data).digestHex();
      expect(hub).toBe(referenceFile);
      expect(core).toBe(new xet.XetHasher(4096, 'xet-core').update(data).digestHex());
      expect(core).not.toBe(hub);
    });
  }

  it('the backends agree on the xet-core file hash of the same random data', async () => {
    const a = await freshModules('wasm');
    const wasmCore = new a.xet.XetHasher(4096, 'xet-core').update(data).digestHex();
    const b = await freshModules(undefined);
    expect(b.chunker.chunkHasherBackend()).toBe('native');
    expect(new b.xet.XetHasher(4096, 'xet-core').update(data).digestHex()).toBe(wasmCore);
  });
});
