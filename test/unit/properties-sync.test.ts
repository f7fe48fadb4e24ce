/**
 * Property-based tests (fast-check) of planning and applying, on real temporary directories
 * through the library (`sync`, `openSides`, `planSides`: the steps the CLI runs):
 * - after a sync with random trees, options and filters, planning again yields only skips;
 * - filters never cause an excluded file to be deleted (or touched) at the destination;
 * - with default options every included source file arrives byte for byte;
 * - an empty source never empties the destination without --allow-empty-source;
 * - (pure planner, many cases) no operation ever names an excluded path, every path once, in order.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilterMatcher } from '../../src/filters/filter.js';
import { compareCodePoints } from '../../src/manifest/order.js';
import { EmptySourceError, planSync } from '../../src/planner/plan.js';
import { openSides, planSides, sync } from '../../src/sync/sync.js';
import { DEFAULT_COMPARE_OPTIONS, type CompareOptions, type FileEntry, type FilterSpec, type Operation } from '../../src/types.js';
import { tempDir } from '../support/cli.js';
import { deletePrefix, writeTally } from '../support/fault-proxy.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const RUNS = Number(process.env.BUCKETSYNC_PROPERTY_RUNS ?? 0) || undefined;
const runs = (n: number): number => RUNS ?? n;
const T0 = 1_700_000_000;

// Directory names never collide with file names: a tree never needs a file where a folder is.
const NAMES = ['f0.txt', 'f1.log', 'f2.bin', 'a b.txt', '\u00fc.txt'];
const DIRS = ['', 'd0/', 'd1/', 'd0/e/'];
const PATHS = DIRS.flatMap((d) => NAMES.map((n) => d + n));
const PATTERNS = ['*.txt', '*.log', 'd0/*', 'd1/*', '*f2*', 'd0/e/*', 'f0.txt', '*', '?.txt', '[fa]*'];

interface FileSpec {
  path: string;
  content: string;
  /** mtime offset from T0, seconds */
  dt: number;
}

const file = fc.record({
  path: fc.constantFrom(...PATHS),
  // few distinct contents: equal files (dedup copies) and equal sizes with other bytes happen
  content: fc.constantFrom('', 'a', 'b', 'hello', 'HELLO', 'hello world', 'x'.repeat(300)),
  dt: fc.constantFrom(0, 0.25, 0.9, 1.5, 60, -60, -0.5),
});
const tree = fc.uniqueArray(file, { selector: (f) => f.path, maxLength: 12 });

const compare: fc.Arbitrary<CompareOptions> = fc
  .record({ delete: fc.boolean(), ignoreTimes: fc.boolean(), ignoreSizes: fc.boolean(), existing: fc.boolean(), ignoreExisting: fc.boolean() })
  .filter((o) => !(o.ignoreTimes && o.ignoreSizes) && !(o.existing && o.ignoreExisting));

const filters: fc.Arbitrary<FilterSpec> = fc.record({
  include: fc.subarray(PATTERNS, { maxLength: 2 }),
  exclude: fc.subarray(PATTERNS, { maxLength: 2 }),
  rules: fc.array(fc.record({ sign: fc.constantFrom('+' as const, '-' as const), pattern: fc.constantFrom(...PATTERNS) }), { maxLength: 2 }),
});

let work: string;
let n = 0;
beforeAll(() => {
  work = tempDir('bucketsync-prop-sync-');
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function write(root: string, files: FileSpec[]): void {
  fs.mkdirSync(root, { recursive: true });
  for (const f of files) {
    const abs = path.join(root, ...f.path.split('/'));
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, f.content);
    fs.utimesSync(abs, T0 + f.dt, T0 + f.dt);
  }
}

/** Every file under root: content and mtime (ms). */
function snapshot(root: string): Map<string, { content: string; mtimeMs: number }> {
  const out = new Map<string, { content: string; mtimeMs: number }>();
  if (!fs.existsSync(root)) return out;
  for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const abs = path.join(e.parentPath, e.name);
    out.set(path.relative(root, abs).split(path.sep).join('/'), { content: fs.readFileSync(abs, 'utf8'), mtimeMs: fs.statSync(abs).mtimeMs });
  }
  return out;
}

async function replan(src: string, dst: string, req: Parameters<typeof planSides>[1]): Promise<Operation[]> {
  const sides = await openSides(src, dst);
  try {
    const ops: Operation[] = [];
    for await (const op of planSides(sides, req)) ops.push(op);
    return ops;
  } finally {
    await sides.close();
  }
}

describe('properties: sync on real directories', () => {
  it('plan, apply, plan again: only skips; excluded files never deleted or touched; default options copy exactly', async () => {
    let cases = 0;
    let transfers = 0;
    let deletes = 0;
    let refusals = 0;
    await fc.assert(
      fc.asyncProperty(tree, tree, compare, filters, fc.boolean(), async (srcFiles, dstFiles, o, f, allowEmptySource) => {
        cases++;
        const id = `c${n++}`;
        const src = path.join(work, id, 'src');
        const dst = path.join(work, id, 'dst');
        write(src, srcFiles);
        write(dst, dstFiles);
        const before = snapshot(dst);
        const matcher = new FilterMatcher(f);
        const req = { compare: o, filters: f, allowEmptySource };
        try {
          let result;
          try {
            result = await sync(src, dst, { ...req, transfers: 3 });
          } catch (err) {
            if (!(err instanceof EmptySourceError)) throw err;
            // refused: the source is empty, --delete, no --allow-empty-source; nothing changed
            refusals++;
            expect(srcFiles).toEqual([]);
            expect(o.delete && !allowEmptySource).toBe(true);
            expect(snapshot(dst)).toEqual(before);
            return;
          }
          const r = result.result;
          if (r) {
            transfers += r.transferred + ((r as { copies?: number }).copies ?? 0);
            deletes += r.deleted;
            expect(r.failed, JSON.stringify(r.failed)).toEqual([]);
            expect(r.stale, JSON.stringify(r.stale)).toEqual([]);
          }
          const after = snapshot(dst);
          // Excluded files at the destination: exactly as they were.
          for (const [p, v] of before) {
            if (!matcher.matches(p)) expect(after.get(p), `excluded ${p} was changed or deleted`).toEqual(v);
          }
          // Nothing excluded appeared either.
          for (const p of after.keys()) if (!before.has(p)) expect(matcher.matches(p), `excluded ${p} was written`).toBe(true);
          // Default options: every included source file that hf's rule sends is there, byte for byte.
          if (!o.existing && !o.ignoreExisting && !o.ignoreSizes && !o.ignoreTimes) {
            for (const s of srcFiles) {
              if (!matcher.matches(s.path)) continue;
              const d = dstFiles.find((x) => x.path === s.path);
              // hf's rule: same size and the source not more than 1 s newer is "identical" (no content check)
              if (d && d.content.length === s.content.length && s.dt - d.dt <= 1) continue;
              expect(after.get(s.path)?.content, s.path).toBe(s.content);
            }
          }
          // With --delete, nothing included is left that the source lacks.
          if (o.delete) {
            for (const p of after.keys()) if (matcher.matches(p)) expect(srcFiles.some((s) => s.path === p), `${p} should be deleted`).toBe(true);
          }
          // Planning again finds nothing to do.
          const ops = await replan(src, dst, req);
          expect(ops.filter((op) => op.action !== 'skip')).toEqual([]);
        } finally {
          fs.rmSync(path.join(work, id), { recursive: true, force: true });
        }
      }),
      { numRuns: runs(100) },
    );
    writeTally({
      suite: 'properties',
      scenario: 'random trees, options and filters: sync, then plan again',
      where: 'local→local (library)',
      runs: cases,
      injected: cases,
      dataLost: 0,
      note: `${transfers} transfers, ${deletes} deletes, ${refusals} empty-source refusals; re-plan only skips; excluded files untouched`,
    });
  }, 300_000);
});

describe('properties: the planner and filters (pure, many cases)', () => {
  const entry = fc.record({ path: fc.constantFrom(...PATHS), size: fc.nat({ max: 5 }), mtimeMs: fc.constantFrom(0, 500, 1500, 3000).map((d) => T0 * 1000 + d) });
  const manifest = fc.uniqueArray(entry, { selector: (e) => e.path, maxLength: 15 }).map((xs) => [...xs].sort((a, b) => compareCodePoints(a.path, b.path)));

  it('no operation names an excluded path; every path at most once, in code-point order; deletes only of destination-only files', async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(manifest, manifest, compare, filters, async (src: FileEntry[], dst: FileEntry[], o, f) => {
        cases++;
        const matcher = new FilterMatcher(f);
        const ops: Operation[] = [];
        try {
          for await (const op of planSync([src], [dst], { ...DEFAULT_COMPARE_OPTIONS, ...o, direction: 'upload', allowEmptySource: true, filter: (p) => matcher.matches(p) })) ops.push(op);
        } catch (err) {
          throw err;
        }
        const srcPaths = new Set(src.map((e) => e.path));
        const dstPaths = new Set(dst.map((e) => e.path));
        for (const op of ops) {
          expect(matcher.matches(op.path), `${op.action} of excluded ${op.path}`).toBe(true);
          if (op.action === 'delete') {
            expect(o.delete).toBe(true);
            expect(dstPaths.has(op.path) && !srcPaths.has(op.path)).toBe(true);
          }
          if (op.action === 'upload') expect(srcPaths.has(op.path)).toBe(true);
        }
        for (let i = 1; i < ops.length; i++) expect(compareCodePoints(ops[i - 1]!.path, ops[i]!.path)).toBeLessThan(0);
      }),
      { numRuns: runs(2000) },
    );
    writeTally({ suite: 'properties', scenario: 'random manifests and filters (planner only)', where: 'planner', runs: cases, injected: cases, dataLost: 0, note: 'no operation on an excluded path; deletes only of destination-only files' });
  }, 120_000);
});

const endpoint = s3TestEndpoint();

describe.skipIf(!endpoint)('properties: local → S3 → local (RGW)', () => {
  it('after an upload and a download with random trees, options and filters, planning again yields only skips both ways', async () => {
    const bucket = await createTestBucket('prop-sync');
    const raw = s3TestClient();
    const saved = { ...process.env };
    Object.assign(process.env, s3TestEnv(), { BUCKETSYNC_CACHE_DIR: path.join(work, 's3-cache') });
    let cases = 0;
    try {
      await fc.assert(
        fc.asyncProperty(tree, tree, compare, filters, async (srcFiles, remoteFiles, o, f) => {
          cases++;
          const id = `s${n++}`;
          const src = path.join(work, id, 'src');
          const back = path.join(work, id, 'back');
          const uri = `s3://${bucket}/${id}`;
          write(src, srcFiles);
          // the remote starts with its own files, written by a first sync of another tree
          if (remoteFiles.length > 0) {
            const pre = path.join(work, id, 'pre');
            write(pre, remoteFiles);
            await sync(pre, uri, {});
          }
          const req = { compare: o, filters: f, allowEmptySource: true };
          try {
            const up = await sync(src, uri, { ...req, transfers: 4 });
            expect(up.result?.failed ?? []).toEqual([]);
            expect(up.result?.stale ?? []).toEqual([]);
            expect((await replan(src, uri, req)).filter((op) => op.action !== 'skip')).toEqual([]);
            const down = await sync(uri, back, { ...req, transfers: 4 });
            expect(down.result?.failed ?? []).toEqual([]);
            expect(down.result?.stale ?? []).toEqual([]);
            expect((await replan(uri, back, req)).filter((op) => op.action !== 'skip')).toEqual([]);
          } finally {
            fs.rmSync(path.join(work, id), { recursive: true, force: true });
            await deletePrefix(raw, bucket, id);
          }
        }),
        { numRuns: runs(12) },
      );
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
      raw.destroy();
    }
    writeTally({ suite: 'properties', scenario: 'random trees, options and filters: upload, download, plan again', where: 'local→S3→local (library, RGW)', runs: cases, injected: cases, dataLost: 0, note: 're-plan only skips both ways' });
  }, 300_000);
});
