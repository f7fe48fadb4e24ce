/**
 * Names as bytes (src/scanner/names.ts): any byte string round-trips through its escaped
 * string form; temporary names are ours only in their exact shape; and the manifest filters
 * for buckets (src/scanner/type-clash.ts) keep order while turning clashes into markers.
 */
import { describe, expect, it } from 'vitest';
import { compareCodePoints } from '../../src/manifest/order.js';
import { decodeName, encodeName, fsPath, hasEscapedBytes, invalidUtf8Reason, isTempName, parseTempName, tempNameFor } from '../../src/scanner/names.js';
import { folderWins, markNonUtf8 } from '../../src/scanner/type-clash.js';
import type { FileEntry } from '../../src/types.js';

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('names that are not UTF-8', () => {
  it('every byte string round-trips exactly (random bytes, and valid UTF-8 stays as it decodes)', () => {
    const rand = rng(13);
    const pieces = [[0xff], [0xfe], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98, 0x80], [0xef, 0xbf, 0xbd], [0x61], [0xc3, 0xa9], [0x80]];
    for (let i = 0; i < 3000; i++) {
      const parts: number[] = [];
      const len = 1 + Math.floor(rand() * 8);
      for (let k = 0; k < len; k++) {
        if (rand() < 0.5) parts.push(...pieces[Math.floor(rand() * pieces.length)]!);
        else parts.push(Math.floor(rand() * 256) || 1);
      }
      const b = Buffer.from(parts);
      const s = decodeName(b);
      expect(encodeName(s).equals(b), b.toString('hex')).toBe(true);
      const valid = Buffer.from(b.toString('utf8'), 'utf8').equals(b);
      expect(hasEscapedBytes(s), b.toString('hex')).toBe(!valid);
      if (valid) expect(s).toBe(b.toString('utf8'));
    }
  });

  it('astral characters are not escapes; escapes become Buffer paths for fs calls', () => {
    expect(hasEscapedBytes('\u{10080}')).toBe(false); // D800 DC80: a pair
    expect(fsPath('a/\u{1F600}')).toBe('a/\u{1F600}');
    expect(fsPath('a/\uDCFF')).toEqual(Buffer.from([0x61, 0x2f, 0xff]));
    expect(invalidUtf8Reason('x\uDCFF', 'S3')).toBe('name is not valid UTF-8; S3 keys must be UTF-8');
    expect(invalidUtf8Reason('ok', 'S3')).toBeUndefined();
  });
});

describe('temporary names', () => {
  it('only the exact shape is ours; look-alikes are data', () => {
    const t = tempNameFor('file.bin', '0badc0de');
    expect(isTempName(t)).toBe(true);
    expect(parseTempName(t)?.pid).toBe(process.pid);
    for (const name of ['.bucketsync-tmp-notes.txt', '.bucketsync-tmp-123-abcd-x', '.bucketsync-tmp-999999-abcdef01-x', '.bucketsync-tmp-0123abcd-0-89abcdef-x', '.bucketsync-tmp-0123ABCD-1-89abcdef-x']) {
      expect(isTempName(name), name).toBe(false);
    }
    expect(Buffer.byteLength(tempNameFor('\u00e9'.repeat(127), 'abcdef01'))).toBeLessThan(255);
  });
});

async function collect(it: AsyncIterable<FileEntry[]>): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  for await (const b of it) out.push(...b);
  return out;
}
async function* batches(entries: FileEntry[], size: number): AsyncGenerator<FileEntry[]> {
  for (let i = 0; i < entries.length; i += size) yield entries.slice(i, i + size);
}
const file = (p: string): FileEntry => ({ path: p, size: 1, mtimeMs: 0 });

describe('folderWins (a bucket object a next to objects under a/, for a local destination)', () => {
  it('turns exactly the clashing files into markers, keeps order, whatever the batch size', async () => {
    const paths = ['a', 'a-b', 'a.b', 'a.b/c', 'a/x', 'a/y', 'b', 'b0', 'c', 'c/d', 'c/d/e', 'd'].sort(compareCodePoints);
    for (const size of [1, 2, 3, 100]) {
      const warnings: string[] = [];
      const out = await collect(folderWins(batches(paths.map(file), size), (w) => warnings.push(w)));
      expect(out.map((e) => e.path)).toEqual(paths);
      expect(out.filter((e) => e.skipped).map((e) => e.path)).toEqual(['a', 'a.b', 'c', 'c/d']);
      expect(warnings).toHaveLength(4);
      expect(warnings.find((w) => w.startsWith('skipping a: '))).toMatch(/folder a\/, .*the folder wins/);
    }
  });

  it('markNonUtf8 marks names a bucket cannot hold', async () => {
    const out = await collect(markNonUtf8(batches([file('ok'), file('x\uDCFF')], 1), 'hf'));
    expect(out.map((e) => e.skipped?.reason)).toEqual([undefined, 'name is not valid UTF-8; hf keys must be UTF-8']);
  });
});
