import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareCodePoints } from '../../src/manifest/order.js';
import { compareEntries, planSync, type PlanOptions } from '../../src/planner/plan.js';
import { DEFAULT_COMPARE_OPTIONS, UsageError, type FileEntry, type Operation } from '../../src/types.js';
import { seededRandom } from '../support/random.js';

const f = (path: string, size: number, mtimeMs: number): FileEntry => ({ path, size, mtimeMs });
const opts = (o: Partial<PlanOptions> = {}): PlanOptions => ({ ...DEFAULT_COMPARE_OPTIONS, direction: 'upload', ...o });

async function plan(src: FileEntry[], dst: FileEntry[], o: Partial<PlanOptions> = {}, batch = 2): Promise<Operation[]> {
  const chunks = (xs: FileEntry[]) => {
    const out: FileEntry[][] = [];
    for (let i = 0; i < xs.length; i += batch) out.push(xs.slice(i, i + batch));
    return out;
  };
  const out: Operation[] = [];
  for await (const op of planSync(chunks(src), chunks(dst), opts(o))) out.push(op);
  return out;
}

describe('compareCodePoints', () => {
  it('orders like Python sorted(): astral characters after U+E000–U+FFFF', () => {
    const xs = ['\u{1F600}.txt', '\uFFFD.txt', 'a/b', 'a-b', 'a0', 'B', 'a'];
    expect([...xs].sort(compareCodePoints)).toEqual(['B', 'a', 'a-b', 'a/b', 'a0', '\uFFFD.txt', '\u{1F600}.txt']);
  });
});

describe('planSync: hf decision table', () => {
  it('new, deleted, identical, size differs, source newer, destination newer', async () => {
    const src = [f('a', 1, 5000), f('b', 2, 5000), f('c', 3, 9000), f('d', 4, 1000), f('new', 9, 1)];
    const dst = [f('a', 1, 5000), f('b', 3, 5000), f('c', 3, 5000), f('d', 4, 9000), f('old', 7, 2)];
    expect((await plan(src, dst)).map((o) => [o.action, o.path, o.reason])).toEqual([
      ['skip', 'a', 'identical'],
      ['upload', 'b', 'size differs'],
      ['upload', 'c', 'local newer'],
      ['skip', 'd', 'identical'],
      ['upload', 'new', 'new file'],
    ]);
    const withDelete = await plan(src, dst, { delete: true });
    expect(withDelete.at(-1)).toEqual({ action: 'delete', path: 'old', reason: 'not in source (--delete)', size: 7, remoteMtime: 2 });
  });

  it('download direction swaps the labels and the mtime fields', async () => {
    const ops = await plan([f('x', 1, 9000), f('y', 1, 1)], [f('x', 1, 1000), f('z', 5, 3)], { direction: 'download', delete: true });
    expect(ops).toEqual([
      { action: 'download', path: 'x', reason: 'remote newer', size: 1, localMtime: 1000, remoteMtime: 9000, destSize: 1 },
      { action: 'download', path: 'y', reason: 'new file', size: 1, remoteMtime: 1 },
      { action: 'delete', path: 'z', reason: 'not in source (--delete)', size: 5, localMtime: 3 },
    ]);
  });

  it('the window is 1000 ms, one-sided and strict', () => {
    const o = DEFAULT_COMPARE_OPTIONS;
    expect(compareEntries(f('a', 1, 2000), f('a', 1, 1000), o, 'upload').reason).toBe('identical');
    expect(compareEntries(f('a', 1, 2000.001), f('a', 1, 1000), o, 'upload').reason).toBe('local newer');
  });

  it('--ignore-sizes, --ignore-times, --existing, --ignore-existing', async () => {
    const src = [f('a', 1, 9000), f('b', 1, 1000), f('c', 2, 1000), f('n', 1, 1)];
    const dst = [f('a', 2, 1000), f('b', 2, 9000), f('c', 2, 1500)];
    expect((await plan(src, dst, { ignoreSizes: true })).map((o) => o.reason)).toEqual(['local newer', 'remote newer', 'same mtime', 'new file']);
    expect((await plan(src, dst, { ignoreTimes: true })).map((o) => o.reason)).toEqual(['size differs', 'size differs', 'same size', 'new file']);
    expect((await plan(src, dst, { existing: true })).map((o) => o.reason)).toEqual(['size differs', 'size differs', 'identical', 'new file (--existing)']);
    expect((await plan(src, dst, { ignoreExisting: true })).map((o) => o.action)).toEqual(['skip', 'skip', 'skip', 'upload']);
  });

  it('mutually exclusive options are refused with hf messages', async () => {
    await expect(plan([], [], { ignoreTimes: true, ignoreSizes: true })).rejects.toThrow('Cannot specify both ignore_times and ignore_sizes.');
    await expect(plan([], [], { existing: true, ignoreExisting: true })).rejects.toThrow(UsageError);
  });

  it('filtered paths are invisible on both sides: never uploaded, never deleted', async () => {
    const ops = await plan([f('a.txt', 1, 1), f('b.tmp', 1, 1)], [f('c.tmp', 1, 1), f('d.txt', 1, 1)], {
      delete: true,
      filter: (p) => !p.endsWith('.tmp'),
    });
    expect(ops.map((o) => [o.action, o.path])).toEqual([
      ['upload', 'a.txt'],
      ['delete', 'd.txt'],
    ]);
  });

  it('refuses to delete everything when the source is empty, unless allowed', async () => {
    await expect(plan([], [f('x', 1, 1)], { delete: true })).rejects.toThrow(/source has no files/);
    expect(await plan([], [f('x', 1, 1)], { delete: true, allowEmptySource: true })).toHaveLength(1);
    expect(await plan([], [f('x', 1, 1)])).toHaveLength(0);
  });

  it('rejects an unsorted manifest instead of producing a wrong plan', async () => {
    await expect(plan([f('b', 1, 1), f('a', 1, 1)], [])).rejects.toThrow(/not sorted/);
  });
});

describe('planSync properties', () => {
  const name = fc.stringMatching(/^[a-c\u00e9\u{1F600}]{1,3}(\/[a-c]{1,2})?$/u);
  const tree = fc
    .uniqueArray(fc.record({ path: name, size: fc.nat(5), mtimeMs: fc.integer({ min: 0, max: 10_000 }) }), { selector: (e) => e.path, maxLength: 25 })
    .map((xs) => xs.sort((a, b) => compareCodePoints(a.path, b.path)));

  it('applying the plan then planning again gives only skips; every path appears once, in order', async () => {
    await fc.assert(
      fc.asyncProperty(tree, tree, fc.boolean(), async (src, dst, del) => {
        const ops = await plan(src, dst, { delete: del, allowEmptySource: true }, 3);
        const paths = ops.map((o) => o.path);
        expect([...paths].sort(compareCodePoints)).toEqual(paths);
        expect(new Set(paths).size).toBe(paths.length);
        // Apply in memory: transfers copy the source entry, deletes remove.
        const state = new Map(dst.map((e) => [e.path, e]));
        const bySrc = new Map(src.map((e) => [e.path, e]));
        for (const op of ops) {
          if (op.action === 'upload') state.set(op.path, { ...bySrc.get(op.path)! });
          if (op.action === 'delete') state.delete(op.path);
        }
        const after = [...state.values()].sort((a, b) => compareCodePoints(a.path, b.path));
        const again = await plan(src, after, { delete: del, allowEmptySource: true }, 4);
        expect(again.every((o) => o.action === 'skip')).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('compareCodePoints', () => {
  it('orders like UTF-8 bytes (Python sorted(), S3 listings), including astral and U+E000–U+FFFF characters', () => {
    const alphabet = ['a', 'b', 'z', '/', '.', 'é', '中', '\ue000', '\uffff', '😀', '𝄞', '\ud7ff', '-'];
    const rand = seededRandom(11);
    const words: string[] = [];
    for (let i = 0; i < 400; i++) {
      let w = '';
      const len = Math.floor(rand() * 6);
      for (let j = 0; j < len; j++) w += alphabet[Math.floor(rand() * alphabet.length)];
      words.push(w);
    }
    const utf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
    for (const a of words) {
      for (const b of words.slice(0, 60)) expect(Math.sign(compareCodePoints(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(utf8(a, b));
    }
    expect(compareCodePoints('a\uffff', 'a😀')).toBeLessThan(0); // UTF-16 `<` says the opposite
    expect('a\uffff' < 'a😀').toBe(false);
  });
});
