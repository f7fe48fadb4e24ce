/**
 * The dedup stage against local destinations, through the library API: in-plan dedup
 * (hash/copy_from annotations, hashing only where sizes repeat), metadata-only updates,
 * --checksum, --track-renames, plan files that carry all of it, and the inode cache key.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalHasher, type DedupRequest } from '../../src/dedup/index.js';
import { writePlanFile } from '../../src/plan/writer.js';
import { readPlanOperations } from '../../src/plan/reader.js';
import { applyPlanFile } from '../../src/sync/apply.js';
import { HeldPlan, executeOn, openSides, planHeader, planSides, sync, type PlanRequest, type SyncSides } from '../../src/sync/sync.js';
import { REASONS, type Operation } from '../../src/types.js';

const T0 = 1_600_000_000; // seconds: old enough for the hash cache's racy window
let work: string;
let src: string;
let dst: string;
let savedCacheDir: string | undefined;

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-dedup-'));
  src = path.join(work, 'src');
  dst = path.join(work, 'dst');
  fs.mkdirSync(src);
  savedCacheDir = process.env.BUCKETSYNC_CACHE_DIR;
  process.env.BUCKETSYNC_CACHE_DIR = path.join(work, 'cache');
});

afterEach(() => {
  if (savedCacheDir === undefined) delete process.env.BUCKETSYNC_CACHE_DIR;
  else process.env.BUCKETSYNC_CACHE_DIR = savedCacheDir;
  fs.rmSync(work, { recursive: true, force: true });
});

function put(root: string, rel: string, content: Buffer | string, mtimeSec = T0): void {
  const abs = path.join(root, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, content);
  fs.utimesSync(abs, mtimeSec, mtimeSec);
}

function read(root: string, rel: string): Buffer {
  return fs.readFileSync(path.join(root, rel));
}

function mtimeSec(root: string, rel: string): number {
  return fs.statSync(path.join(root, rel)).mtimeMs / 1000;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** The plan as --dry-run / --plan see it (both passes in the plan stream). */
async function plan(dedup: DedupRequest = {}, compare: PlanRequest['compare'] = {}): Promise<{ ops: Operation[]; hashes: ReturnType<LocalHasher['stats']> | undefined }> {
  const sides = await openSides(src, dst);
  try {
    const ops = await collect(planSides(sides, { dedup, compare }));
    const hashes = sides.hasher ? (await sides.hasher()).stats() : undefined;
    return { ops, hashes };
  } finally {
    await sides.close();
  }
}

const byPath = (ops: Operation[]) => Object.fromEntries(ops.map((o) => [o.path, o]));

describe('in-plan dedup', () => {
  it('annotates identical uploads: the first in plan order is the primary, the others copy it', async () => {
    const w = randomBytes(200_000);
    put(src, 'c1/weights.bin', w);
    put(src, 'c2/weights.bin', w);
    put(src, 'c2/weights-copy.bin', w);
    put(src, 'c1/config.json', '{"a": 1}');
    put(src, 'c2/config.json', '{"a": 1}');
    put(src, 'c3/config.json', '{"a": 2}'); // same size, other content
    put(src, 'unique.bin', randomBytes(1234));
    put(src, 'e1', '');
    put(src, 'e2', '');
    const { ops, hashes } = await plan({ dedup: true });
    const p = byPath(ops);
    expect(ops.every((o) => o.action === 'upload' && o.reason === REASONS.newFile)).toBe(true);
    expect(p['c1/weights.bin']!.copyFrom).toBeUndefined();
    expect(p['c1/weights.bin']!.hash).toMatch(/^xxh128:[0-9a-f]{32}$/);
    expect(p['c2/weights-copy.bin']).toMatchObject({ copyFrom: 'c1/weights.bin', hash: p['c1/weights.bin']!.hash });
    expect(p['c2/weights.bin']).toMatchObject({ copyFrom: 'c1/weights.bin', hash: p['c1/weights.bin']!.hash });
    expect(p['c2/config.json']).toMatchObject({ copyFrom: 'c1/config.json' });
    expect(p['c3/config.json']!.copyFrom).toBeUndefined();
    expect(p['c3/config.json']!.hash).not.toBe(p['c1/config.json']!.hash);
    // Hashing only where a decision needs it: no hash for a unique size, none for empty files.
    expect(p['unique.bin']!.hash).toBeUndefined();
    expect(p['e1']!.copyFrom).toBeUndefined();
    expect(p['e2']!.copyFrom).toBeUndefined();
    expect(hashes!.requests).toBe(6);
  });

  it('executes copies from the file already written; the bytes are read once; without dedup each is sent', async () => {
    const w = randomBytes(300_000);
    for (const d of ['a', 'b', 'c', 'd']) put(src, `${d}/w.bin`, w);
    put(src, 'x.txt', 'x');
    const r = await sync(src, dst, { dedup: { dedup: true } });
    expect(r.summary.uploads).toBe(5);
    expect(r.result).toMatchObject({ transferred: 2, transferredBytes: 300_001, copies: 3, copiedBytes: 900_000, failed: [], stale: [] });
    for (const d of ['a', 'b', 'c', 'd']) {
      expect(read(dst, `${d}/w.bin`).equals(w)).toBe(true);
      expect(mtimeSec(dst, `${d}/w.bin`)).toBe(T0);
    }
    const dst2 = path.join(work, 'dst2');
    const r2 = await sync(src, dst2, {});
    expect(r2.result).toMatchObject({ transferred: 5, copies: 0 });
  });

  it('a plan file carries hash and copy_from (hf ignores them), and --apply performs the copies', async () => {
    const w = randomBytes(50_000);
    put(src, 'a/w.bin', w);
    put(src, 'b/w.bin', w);
    const planFile = path.join(work, 'plan.jsonl');
    const sides = await openSides(src, dst);
    const req: PlanRequest = { dedup: { dedup: true } };
    try {
      await writePlanFile(planFile, planHeader(sides, { source: src, dest: dst }, req, { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 }), planSides(sides, req));
    } finally {
      await sides.close();
    }
    const lines = fs.readFileSync(planFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[2]).toMatchObject({ action: 'upload', path: 'b/w.bin', reason: 'new file', copy_from: 'a/w.bin' });
    expect(lines[2]!['hash']).toBe(lines[1]!['hash']);
    const ops = await collect(readPlanOperations(planFile));
    expect(ops[1]).toMatchObject({ copyFrom: 'a/w.bin' });
    const applied = await applyPlanFile(planFile, { lock: false });
    expect(applied.result).toMatchObject({ transferred: 1, copies: 1, failed: [], stale: [] });
    expect(read(dst, 'b/w.bin').equals(w)).toBe(true);
  });

  it('holds the plan only from the first upload that could be deduplicated (no-op runs hash nothing)', async () => {
    for (let i = 0; i < 50; i++) put(src, `f${String(i).padStart(2, '0')}`, `content ${i}`);
    await sync(src, dst);
    const { ops, hashes } = await plan({ dedup: true });
    expect(ops.every((o) => o.action === 'skip')).toBe(true);
    expect(hashes?.requests ?? 0).toBe(0);
  });
});

describe('metadata-only updates', () => {
  it('same content with a newer source mtime only updates the mtime; a real change is uploaded', async () => {
    const w = randomBytes(100_000);
    put(src, 'same.bin', w);
    put(src, 'changed.bin', Buffer.alloc(100_000, 1));
    put(src, 'empty', '');
    await sync(src, dst);
    const ino = fs.statSync(path.join(dst, 'same.bin')).ino;
    fs.utimesSync(path.join(src, 'same.bin'), T0 + 100, T0 + 100);
    fs.utimesSync(path.join(src, 'empty'), T0 + 100, T0 + 100);
    put(src, 'changed.bin', Buffer.alloc(100_000, 2), T0 + 100);
    const { ops } = await plan({ dedup: true });
    const p = byPath(ops);
    expect(p['same.bin']).toMatchObject({ action: 'upload', reason: 'same content, mtime differs', mtimeOnly: true });
    expect(p['same.bin']!.hash).toMatch(/^xxh128:/);
    expect(p['empty']).toMatchObject({ action: 'upload', reason: 'same content, mtime differs' });
    expect(p['changed.bin']).toMatchObject({ action: 'upload', reason: REASONS.localNewer });
    const r = await sync(src, dst, { dedup: { dedup: true } });
    expect(r.result).toMatchObject({ transferred: 1, metadataUpdates: 2, failed: [], stale: [] });
    expect(fs.statSync(path.join(dst, 'same.bin')).ino).toBe(ino); // not rewritten
    expect(mtimeSec(dst, 'same.bin')).toBe(T0 + 100);
    expect(read(dst, 'changed.bin')[0]).toBe(2);
    const again = await plan({ dedup: true });
    expect(again.ops.every((o) => o.action === 'skip')).toBe(true);
  });

  it('a metadata-only operation in a plan file is recognised by its reason and hash', async () => {
    put(src, 'f.bin', randomBytes(10_000));
    await sync(src, dst);
    fs.utimesSync(path.join(src, 'f.bin'), T0 + 50, T0 + 50);
    expect(byPath((await plan()).ops)['f.bin']).toMatchObject({ reason: REASONS.localNewer }); // hf's plan without --dedup
    const planFile = path.join(work, 'plan.jsonl');
    const sides = await openSides(src, dst);
    try {
      const req: PlanRequest = { dedup: { dedup: true } };
      await writePlanFile(planFile, planHeader(sides, { source: src, dest: dst }, req, { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 }), planSides(sides, req));
    } finally {
      await sides.close();
    }
    const ino = fs.statSync(path.join(dst, 'f.bin')).ino;
    const applied = await applyPlanFile(planFile, { lock: false });
    expect(applied.result).toMatchObject({ transferred: 0, metadataUpdates: 1 });
    expect(fs.statSync(path.join(dst, 'f.bin')).ino).toBe(ino);
    expect(mtimeSec(dst, 'f.bin')).toBe(T0 + 50);
  });
});

describe('--checksum', () => {
  it('decides equal sizes by content: same checksum / checksum differs / mtime-only', async () => {
    put(src, 'same-older.txt', 'aaaa', T0);
    put(dst, 'same-older.txt', 'aaaa', T0 + 500); // destination newer, same content
    put(src, 'diff-same-mtime.txt', 'bbbb', T0);
    put(dst, 'diff-same-mtime.txt', 'cccc', T0); // hf would say "identical"
    put(src, 'diff-dest-newer.txt', 'dddd', T0);
    put(dst, 'diff-dest-newer.txt', 'eeee', T0 + 500); // hf would say "remote newer"
    put(src, 'same-newer.txt', 'ffff', T0 + 500);
    put(dst, 'same-newer.txt', 'ffff', T0);
    put(src, 'size.txt', 'gg', T0);
    put(dst, 'size.txt', 'ggg', T0);
    const without = byPath((await plan({ dedup: false })).ops);
    expect(without['diff-same-mtime.txt']).toMatchObject({ action: 'skip', reason: REASONS.identical });
    const p = byPath((await plan({ checksum: true })).ops);
    expect(p['same-older.txt']).toMatchObject({ action: 'skip', reason: 'same checksum' });
    expect(p['diff-same-mtime.txt']).toMatchObject({ action: 'upload', reason: 'checksum differs' });
    expect(p['diff-dest-newer.txt']).toMatchObject({ action: 'upload', reason: 'checksum differs' });
    expect(p['same-newer.txt']).toMatchObject({ action: 'upload', reason: 'same content, mtime differs' });
    expect(p['size.txt']).toMatchObject({ action: 'upload', reason: REASONS.sizeDiffers });
    const r = await sync(src, dst, { dedup: { checksum: true } });
    expect(r.summary).toMatchObject({ uploads: 4, skips: 1 });
    expect(r.result).toMatchObject({ transferred: 3, metadataUpdates: 1, failed: [], stale: [] });
    expect(read(dst, 'diff-same-mtime.txt').toString()).toBe('bbbb');
    expect(read(dst, 'diff-dest-newer.txt').toString()).toBe('dddd');
    const again = byPath((await plan({ checksum: true })).ops);
    expect(Object.values(again).every((o) => o.action === 'skip')).toBe(true);
  });
});

describe('--checksum reads the files', () => {
  it('a file rewritten in place with its mtime set back is found (the hash cache would not see it)', async () => {
    put(src, 'f.bin', Buffer.alloc(4096, 1));
    await sync(src, dst);
    await plan({ checksum: true }); // both sides now in the hash cache
    const ino = fs.statSync(path.join(src, 'f.bin')).ino;
    fs.writeFileSync(path.join(src, 'f.bin'), Buffer.alloc(4096, 2)); // same inode, same size
    fs.utimesSync(path.join(src, 'f.bin'), T0, T0);
    expect(fs.statSync(path.join(src, 'f.bin')).ino).toBe(ino);
    expect(byPath((await plan()).ops)['f.bin']).toMatchObject({ action: 'skip', reason: REASONS.identical });
    expect(byPath((await plan({ checksum: true })).ops)['f.bin']).toMatchObject({ action: 'upload', reason: 'checksum differs' });
  });
});

describe('--track-renames', () => {
  it('a renamed directory is copied from its old paths at the destination; --delete then removes them', async () => {
    const w = randomBytes(150_000);
    put(src, 'ckpt-1/model.bin', w);
    put(src, 'ckpt-1/config.json', '{"step": 1}');
    put(src, 'keep.txt', 'keep');
    await sync(src, dst);
    fs.renameSync(path.join(src, 'ckpt-1'), path.join(src, 'best'));
    const without = byPath((await plan({}, { delete: true })).ops);
    expect(without['best/model.bin']!.copyFrom).toBeUndefined();
    const { ops, hashes } = await plan({ trackRenames: true }, { delete: true });
    const p = byPath(ops);
    expect(p['best/model.bin']).toMatchObject({ action: 'upload', reason: 'new file', copyFrom: 'ckpt-1/model.bin' });
    expect(p['best/config.json']).toMatchObject({ copyFrom: 'ckpt-1/config.json' });
    expect(p['ckpt-1/model.bin']).toMatchObject({ action: 'delete' });
    expect(hashes!.filesRead).toBe(4); // the two new paths and the two candidates of their sizes
    // The next plan reads nothing: every hash is in the persistent cache.
    expect((await plan({ trackRenames: true }, { delete: true })).hashes).toMatchObject({ requests: 4, filesRead: 0 });
    const r = await sync(src, dst, { compare: { delete: true }, dedup: { trackRenames: true } });
    expect(r.result).toMatchObject({ transferred: 0, transferredBytes: 0, copies: 2, deleted: 2, failed: [], stale: [] });
    expect(read(dst, 'best/model.bin').equals(w)).toBe(true);
    expect(fs.existsSync(path.join(dst, 'ckpt-1'))).toBe(false);
  });

  it('never copies from a destination file this plan overwrites', async () => {
    const a = Buffer.alloc(1000, 7);
    put(src, 'a.bin', a);
    await sync(src, dst);
    put(src, 'a.bin', Buffer.alloc(1000, 8), T0 + 100); // overwritten by this plan
    put(src, 'z.bin', a); // the old content of a.bin, under a new name
    const p = byPath((await plan({ trackRenames: true })).ops);
    expect(p['z.bin']!.copyFrom).toBeUndefined();
    await sync(src, dst, { dedup: { trackRenames: true } });
    expect(read(dst, 'z.bin').equals(a)).toBe(true);
    expect(read(dst, 'a.bin')[0]).toBe(8);
  });
});

describe('LocalHasher', () => {
  it('a file created in a reused inode, with the same size and mtime, is not mistaken for the old one', async () => {
    const cache = { dir: path.join(work, 'hc') };
    const h = await LocalHasher.open({ cache });
    const seen = new Map<bigint, string>();
    for (let i = 0; i < 20; i++) {
      const abs = path.join(src, `f${i}`);
      const content = Buffer.alloc(64, i);
      fs.writeFileSync(abs, content);
      fs.utimesSync(abs, T0, T0);
      const ino = fs.statSync(abs, { bigint: true }).ino;
      const got = await h.hash(abs, { size: 64, mtimeMs: T0 * 1000 });
      if (seen.has(ino)) expect(got).not.toBe(seen.get(ino)); // ext4 reuses the inode at once
      seen.set(ino, got);
      fs.rmSync(abs);
    }
    expect(h.stats().filesRead).toBe(20);
    await h.close();
  });

  it('finds a renamed file in the cache by inode and birth time; a copy is read again', async () => {
    put(src, 'a', randomBytes(5000));
    const cache = { dir: path.join(work, 'hc') };
    let h = await LocalHasher.open({ cache });
    const first = await h.hash(path.join(src, 'a'), { size: 5000, mtimeMs: T0 * 1000 });
    await h.close();
    fs.renameSync(path.join(src, 'a'), path.join(src, 'b'));
    fs.copyFileSync(path.join(src, 'b'), path.join(src, 'c'));
    fs.utimesSync(path.join(src, 'c'), T0, T0);
    h = await LocalHasher.open({ cache });
    expect(await h.hash(path.join(src, 'b'), { size: 5000, mtimeMs: T0 * 1000 })).toBe(first);
    expect(h.stats()).toMatchObject({ requests: 1, cacheHits: 1, filesRead: 0 });
    expect(await h.hash(path.join(src, 'c'), { size: 5000 })).toBe(first);
    expect(h.stats()).toMatchObject({ requests: 2, cacheHits: 1, filesRead: 1 });
    await expect(h.hash(path.join(src, 'c'), { size: 4999 })).rejects.toThrow(/changed since the plan/);
    await h.close();
  });
});

describe('executing mode', () => {
  it('HeldPlan + executeOn on the same sides annotates the held operations as they run', async () => {
    const w = randomBytes(20_000);
    put(src, 'a', w);
    put(src, 'b', w);
    const sides: SyncSides = await openSides(src, dst);
    try {
      const { planSidesBatches } = await import('../../src/sync/sync.js');
      const held = await HeldPlan.collect(planSidesBatches(sides, { executing: true, dedup: { dedup: true } }));
      const seen: Operation[] = [];
      const result = await executeOn(sides, held.actions.drain(), { onEvent: (e) => e.type === 'done' && seen.push(e.op) });
      await held.dispose();
      expect(result).toMatchObject({ transferred: 1, copies: 1 });
      expect(seen.find((o) => o.path === 'b')).toMatchObject({ copyFrom: 'a' });
    } finally {
      await sides.close();
    }
  });
});
