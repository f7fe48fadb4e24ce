/**
 * Manifests are streams of FileEntry batches sorted by Unicode code point (Python's
 * `sorted()` order, which hf uses). JavaScript's `<` compares UTF-16 code units, which
 * differs only when a surrogate (astral character) meets a char in U+E000–U+FFFF.
 */
import type { FileEntry } from '../types.js';

/** A UTF-16 unit at or above U+D800: only where one occurs can `<` disagree with code-point order. */
const HIGH_UNIT = /[\ud800-\uffff]/;

/**
 * Compares two strings by code point (= UTF-8 byte order = S3 listing order): negative, zero
 * or positive. Paths without units at or above U+D800 (nearly all) use the engine's native
 * comparison, about 5× faster than the loop below (measured on 100,000 typical paths).
 */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  if (!HIGH_UNIT.test(a) || !HIGH_UNIT.test(b)) return a < b ? -1 : 1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    let z = y;
    // Surrogates (D800–DFFF) encode code points above FFFF: lift them above E000–FFFF.
    if (x >= 0xd800 && z >= 0xd800) {
      if (x < 0xe000) x += 0x2000;
      else if (x <= 0xffff) x -= 0x800;
      if (z < 0xe000) z += 0x2000;
      else if (z <= 0xffff) z -= 0x800;
    }
    return x - z;
  }
  return a.length - b.length;
}

/** A manifest: batches of entries, sorted by path across batches. */
export type Manifest = AsyncIterable<FileEntry[]> | Iterable<FileEntry[]>;

/**
 * Reads a manifest one entry at a time without an `await` per entry: the cursor only
 * awaits when a batch is used up. Checks the sort order, because the planner's merge
 * is only correct on sorted input.
 */
export class ManifestCursor {
  private batch: FileEntry[] = [];
  private index = 0;
  private done = false;
  private last: string | undefined;
  private readonly iterator: AsyncIterator<FileEntry[]> | Iterator<FileEntry[]>;

  constructor(
    manifest: Manifest,
    private readonly side: string,
  ) {
    this.iterator =
      Symbol.asyncIterator in manifest
        ? (manifest as AsyncIterable<FileEntry[]>)[Symbol.asyncIterator]()
        : (manifest as Iterable<FileEntry[]>)[Symbol.iterator]();
  }

  /** The current entry, or undefined at the end. Call `fill()` first when `needsFill`. */
  get current(): FileEntry | undefined {
    return this.batch[this.index];
  }

  get needsFill(): boolean {
    return this.index >= this.batch.length && !this.done;
  }

  async fill(): Promise<void> {
    while (this.index >= this.batch.length && !this.done) {
      const r = await this.iterator.next();
      if (r.done) {
        this.done = true;
        this.batch = [];
      } else {
        this.batch = r.value;
      }
      this.index = 0;
    }
  }

  advance(): void {
    const e = this.batch[this.index];
    if (e !== undefined) {
      if (this.last !== undefined && compareCodePoints(this.last, e.path) >= 0) {
        throw new Error(`${this.side} listing is not sorted: '${e.path}' came after '${this.last}'`);
      }
      this.last = e.path;
    }
    this.index++;
  }

  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.iterator.return?.();
    }
  }
}

/** Collects a whole manifest (tests and small listings only). */
export async function collectManifest(manifest: Manifest): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  for await (const batch of manifest as AsyncIterable<FileEntry[]>) out.push(...batch);
  return out;
}
