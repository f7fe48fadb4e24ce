// Skip markers in manifests (FileEntry.skipped): whatever a source listing could not show is
// never deleted at the destination, and markers never become transfers or deletes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareCodePoints } from '../../src/manifest/order.js';
import { planSync, type PlanOptions } from '../../src/planner/plan.js';
import { DEFAULT_COMPARE_OPTIONS, REASONS, skippedEntry, type FileEntry, type Operation } from '../../src/types.js';

const f = (path: string, size = 1, mtimeMs = 5000): FileEntry => ({ path, size, mtimeMs });
const opts = (o: Partial<PlanOptions> = {}): PlanOptions => ({ ...DEFAULT_COMPARE_OPTIONS, direction: 'upload', delete: true, ...o });
const sorted = (xs: FileEntry[]) => [...xs].sort((a, b) => compareCodePoints(a.path, b.path));

async function plan(src: FileEntry[], dst: FileEntry[], o: Partial<PlanOptions> = {}, batch = 2) {
  const chunks = (xs: FileEntry[]) => {
    const out: FileEntry[][] = [];
    for (let i = 0; i < xs.length; i += batch) out.push(xs.slice(i, i + batch));
    return out;
  };
  const ops: Operation[] = [];
  const seen: [string, string][] = [];
  for await (const op of planSync(chunks(sorted(src)), chunks(sorted(dst)), opts({ ...o, onSkipped: (e, side) => seen.push([side, e.path]) }))) ops.push(op);
  return { ops, seen, rows: ops.map((op) => [op.action, op.path, op.reason]) };
}

describe('planner: skip markers', () => {
  it('an unreadable source folder hides its whole subtree from --delete, and nothing else', async () => {
    const src = [f('a'), skippedEntry('d', 'cannot read directory: permission denied', true), f('e')];
    const dst = [f('a'), f('d.txt'), f('d/f'), f('d/g/h'), f('d0'), f('e'), f('z')];
    const { rows, seen } = await plan(src, dst);
    expect(rows).toEqual([
      ['skip', 'a', 'identical'],
      ['delete', 'd.txt', REASONS.notInSource],
      ['skip', 'd/f', REASONS.sourceUnreadable],
      ['skip', 'd/g/h', REASONS.sourceUnreadable],
      ['delete', 'd0', REASONS.notInSource],
      ['skip', 'e', 'identical'],
      ['delete', 'z', REASONS.notInSource],
    ]);
    expect(seen).toEqual([['source', 'd/']]);
  });

  it('a file named like the unreadable folder is not hidden by it (a folder d cannot hold a file d)', async () => {
    const { rows } = await plan([skippedEntry('d', 'x', true)], [f('d'), f('d/x')], { allowEmptySource: false });
    expect(rows).toEqual([
      ['delete', 'd', REASONS.notInSource],
      ['skip', 'd/x', REASONS.sourceUnreadable],
    ]);
  });

  it('nested markers, and a marker for the whole root (path "") that sorts first', async () => {
    const nested = await plan([skippedEntry('a', 'x', true), skippedEntry('a/b', 'y', true)], [f('a/b/c'), f('a/c'), f('b')], { allowEmptySource: true });
    expect(nested.rows.map((r) => r[0])).toEqual(['skip', 'skip', 'delete']);
    const root = await plan([skippedEntry('', 'cannot read directory .: permission denied', true)], [f('.hidden'), f('-'), f('a/b'), f('zz')]);
    expect(root.rows.every((r) => r[0] === 'skip' && r[2] === REASONS.sourceUnreadable)).toBe(true);
    expect(root.rows).toHaveLength(4);
  });

  it('a file marker (unreadable, special, vanished, unsafe name) protects that path only', async () => {
    const { rows } = await plan([skippedEntry('f', 'not a regular file'), f('g')], [f('f'), f('f2'), f('g')]);
    expect(rows).toEqual([
      ['skip', 'f', REASONS.sourceUnreadable],
      ['delete', 'f2', REASONS.notInSource],
      ['skip', 'g', 'identical'],
    ]);
    const noDelete = await plan([skippedEntry('f', 'x')], [f('f')], { delete: false });
    expect(noDelete.rows).toEqual([]);
    expect(noDelete.seen).toEqual([['source', 'f']]);
  });

  it('a file marker (a dangling link may have been a folder) also keeps what lies below its name', async () => {
    const { rows } = await plan([skippedEntry('dang', 'broken symbolic link'), f('e')], [f('dang-1'), f('dang/x'), f('dang/y/z'), f('dang0'), f('e')]);
    expect(rows).toEqual([
      ['delete', 'dang-1', REASONS.notInSource],
      ['skip', 'dang/x', REASONS.sourceUnreadable],
      ['skip', 'dang/y/z', REASONS.sourceUnreadable],
      ['delete', 'dang0', REASONS.notInSource],
      ['skip', 'e', 'identical'],
    ]);
  });

  it('a marker for an unsafe key also keeps the safe path it would name (a//b -> a/b, ./d -> d, x/ -> x/...)', async () => {
    const src = [skippedEntry('./d', 'has a "." path segment'), skippedEntry('a//b', 'empty path segment'), skippedEntry('x/', 'ends with "/"'), f('z')];
    const dst = [f('a/b'), f('a/c'), f('d'), f('x/q'), f('z')];
    const { rows } = await plan(src, dst);
    expect(rows).toEqual([
      ['skip', 'a/b', REASONS.sourceUnreadable],
      ['delete', 'a/c', REASONS.notInSource],
      ['skip', 'd', REASONS.sourceUnreadable],
      ['skip', 'x/q', REASONS.sourceUnreadable],
      ['skip', 'z', 'identical'],
    ]);
  });

  it('a destination marker is never overwritten, and is reported', async () => {
    const { rows, seen } = await plan([f('p'), f('q')], [skippedEntry('p', 'not a regular file'), skippedEntry('r', 'unsafe key')]);
    expect(rows).toEqual([
      ['skip', 'p', REASONS.destUnreadable],
      ['upload', 'q', REASONS.newFile],
    ]);
    expect(seen).toEqual([
      ['dest', 'p'],
      ['dest', 'r'],
    ]);
  });

  it('markers alone do not count as a source, so --delete still refuses to empty the destination', async () => {
    // only a marker for a file: the rest of the destination would be deleted by an "empty" source
    await expect(plan([skippedEntry('m', 'x')], [f('a'), f('z')])).rejects.toThrow(/no files/);
  });

  it('property: no delete ever names a path a source marker covers; markers never become transfers', async () => {
    const seg = fc.constantFrom('a', 'b', 'a.b', 'a-b', 'a0', 'é', '\u{1F600}', 'B');
    const relPath = fc.array(seg, { minLength: 1, maxLength: 4 }).map((s) => s.join('/'));
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(relPath, { maxLength: 25 }),
        fc.uniqueArray(relPath, { maxLength: 25 }),
        fc.uniqueArray(fc.tuple(relPath, fc.boolean()), { maxLength: 4, selector: (t) => t[0] }),
        fc.integer({ min: 1, max: 5 }),
        async (srcPaths, dstPaths, markerSpecs, batch) => {
          const markers = markerSpecs.map(([p, subtree]) => skippedEntry(p, 'test', subtree));
          const markerPaths = new Set(markers.map((m) => m.path));
          // A real listing never holds a file where it reports a marker, nor files under an unreadable folder.
          // a marker covers its path and everything below it (a file marker too: it may have been a folder)
          const hidden = (p: string) => markers.some((m) => (m.skipped.subtree ? p.startsWith(m.path) : p === m.path || p.startsWith(`${m.path}/`)));
          const isPrefixOfFile = (p: string, files: string[]) => files.some((q) => q.startsWith(`${p}/`));
          const src = srcPaths.filter((p) => !hidden(p) && !markerPaths.has(p) && !isPrefixOfFile(p, srcPaths)).map((p) => f(p));
          const dst = dstPaths.filter((p) => !isPrefixOfFile(p, dstPaths)).map((p) => f(p, 2));
          const { ops } = await plan([...src, ...markers], dst, { allowEmptySource: true }, batch);
          for (const op of ops) {
            if (op.action === 'delete') expect(hidden(op.path)).toBe(false);
            if (op.action === 'upload') expect(markerPaths.has(op.path) || op.path.endsWith('/')).toBe(false);
            if (op.action === 'skip' && op.reason === REASONS.sourceUnreadable) expect(hidden(op.path)).toBe(true);
          }
        },
      ),
      { numRuns: 400, seed: 1306 },
    );
  });
});
