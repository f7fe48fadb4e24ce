import { createCipheriv } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** mulberry32: a small seeded PRNG, so generated test inputs are the same on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Writes `bytes` of random-looking content to `file` (the AES-CTR keystream of `seed`: nothing
 * dedups or compresses), its folders created, its mtime set to 1,700,000,000 s.
 */
export function randomFile(file: string, bytes: number, seed: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const c = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16, 1));
  const fd = fs.openSync(file, 'w');
  const zeros = Buffer.alloc(4 * 1024 * 1024);
  for (let off = 0; off < bytes; off += zeros.length) fs.writeSync(fd, c.update(zeros), 0, Math.min(zeros.length, bytes - off));
  fs.closeSync(fd);
  fs.utimesSync(file, 1_700_000_000, 1_700_000_000);
}
