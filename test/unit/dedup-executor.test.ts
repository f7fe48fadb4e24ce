/**
 * The executor's side of dedup, with a destination that records (and can delay or fail)
 * every write and copy: a copy never starts before its source exists, only one operation
 * sends a given content at a time, a failed primary is taken over by one of its copies,
 * a copy source that is gone or different falls back to an upload, and plans without
 * copy_from (hf's) run as before.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executePlan, type ExecEvent } from '../../src/executor/execute.js';
import { hashFile } from '../../src/hashing/index.js';
import { LocalStore } from '../../src/stores/local/store.js';
import type { TransferSource, WriteOptions } from '../../src/stores/store.js';
import type { Operation } from '../../src/types.js';

const T0 = 1_600_000_000;
let work: string;
let src: string;
let dst: string;

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-dedup-exec-'));
  src = path.join(work, 'src');
  dst = path.join(work, 'dst');
  fs.mkdirSync(src);
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

interface Call {
  kind: 'write' | 'copy';
  path: string;
  from?: string;
  start: number;
  end?: number;
}

/** A LocalStore that logs writes and copies, delays some and fails others. */
class Recording extends LocalStore {
  calls: Call[] = [];
  delayMs = new Map<string, number>();
  failWrites = new Set<string>();
  private clock = 0;
  constructor(root: string, copy = true) {
    super(root);
    if (!copy) (this as { copy?: unknown }).copy = undefined;
  }

  private tick(): number {
    return ++this.clock;
  }

  /** LocalStore.copy writes through write(): those writes are part of the copy. */
  private readonly copying = new Set<string>();

  override async write(rel: string, source: TransferSource, opts: WriteOptions): Promise<void> {
    if (this.copying.has(rel)) return super.write(rel, source, opts);
    const call: Call = { kind: 'write', path: rel, start: this.tick() };
    this.calls.push(call);
    await new Promise((r) => setTimeout(r, this.delayMs.get(rel) ?? 5));
    try {
      if (this.failWrites.has(rel)) throw new Error(`injected failure writing ${rel}`);
      await super.write(rel, source, opts);
    } finally {
      call.end = this.tick();
    }
  }

  override async copy(from: string, to: string, opts: WriteOptions): Promise<void> {
    const call: Call = { kind: 'copy', path: to, from, start: this.tick() };
    this.calls.push(call);
    this.copying.add(to);
    try {
      await super.copy(from, to, opts);
    } finally {
      this.copying.delete(to);
      call.end = this.tick();
    }
  }
}

function put(rel: string, content: Buffer | string): void {
  const abs = path.join(src, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, content);
  fs.utimesSync(abs, T0, T0);
}

function upload(p: string, size: number, extra: Partial<Operation> = {}): Operation {
  return { action: 'upload', path: p, reason: 'new file', size, localMtime: T0 * 1000, ...extra };
}

const H = 'xxh128:0123456789abcdef0123456789abcdef';

async function run(ops: Operation[], dest: Recording, transfers = 8) {
  const events: ExecEvent[] = [];
  const result = await executePlan(ops, {
    source: new LocalStore(src),
    dest,
    direction: 'upload',
    transfers,
    retries: 0,
    onEvent: (e) => events.push(e),
    hashLocal: async (abs) => (await hashFile(abs)).hash,
  });
  return { result, events };
}

describe('executor ordering for copies', () => {
  it('copies wait for the primary upload to finish, then copy from it', async () => {
    const w = randomBytes(10_000);
    for (const p of ['a', 'b', 'c']) put(p, w);
    const dest = new Recording(dst);
    dest.delayMs.set('a', 150);
    const { result, events } = await run([upload('a', w.length, { hash: H }), upload('b', w.length, { hash: H, copyFrom: 'a' }), upload('c', w.length, { hash: H, copyFrom: 'a' })], dest);
    expect(result).toMatchObject({ transferred: 1, copies: 2, copiedBytes: 20_000, failed: [], stale: [] });
    const primary = dest.calls.find((c) => c.path === 'a')!;
    const copies = dest.calls.filter((c) => c.kind === 'copy');
    expect(copies.map((c) => [c.path, c.from])).toEqual([
      ['b', 'a'],
      ['c', 'a'],
    ]);
    for (const c of copies) expect(c.start).toBeGreaterThan(primary.end!);
    expect(dest.calls.filter((c) => c.kind === 'write')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'done' && e.via === 'copy').map((e) => e.op.path).sort()).toEqual(['b', 'c']);
    for (const p of ['a', 'b', 'c']) expect(fs.readFileSync(path.join(dst, p)).equals(w)).toBe(true);
  });

  it('a failed primary is reported; one of its copies uploads the content and the others copy from that one', async () => {
    const w = randomBytes(5000);
    for (const p of ['a', 'b', 'c', 'd']) put(p, w);
    const dest = new Recording(dst);
    dest.failWrites.add('a');
    dest.delayMs.set('a', 50);
    dest.delayMs.set('b', 100);
    const ops = ['a', 'b', 'c', 'd'].map((p, i) => upload(p, w.length, i === 0 ? { hash: H } : { hash: H, copyFrom: 'a' }));
    const { result } = await run(ops, dest);
    expect(result.failed.map((f) => f.path)).toEqual(['a']);
    expect(result).toMatchObject({ transferred: 1, copies: 2, stale: [] });
    const writes = dest.calls.filter((c) => c.kind === 'write');
    expect(writes.map((c) => c.path)).toEqual(['a', 'b']);
    // never two uploads of the same content at once
    expect(writes[1]!.start).toBeGreaterThan(writes[0]!.end!);
    const copies = dest.calls.filter((c) => c.kind === 'copy');
    expect(copies.map((c) => [c.path, c.from])).toEqual([
      ['c', 'b'],
      ['d', 'b'],
    ]);
    for (const c of copies) expect(c.start).toBeGreaterThan(writes[1]!.end!);
    expect(fs.existsSync(path.join(dst, 'a'))).toBe(false);
    for (const p of ['b', 'c', 'd']) expect(fs.readFileSync(path.join(dst, p)).equals(w)).toBe(true);
  });

  it('a copy source that is gone or holds other bytes is not copied: the content is uploaded instead', async () => {
    const w = randomBytes(3000);
    put('new1', w);
    put('new2', w);
    fs.mkdirSync(dst);
    fs.writeFileSync(path.join(dst, 'old-different'), randomBytes(3000)); // same size, other content
    const dest = new Recording(dst);
    const { result } = await run(
      [upload('new1', 3000, { hash: 'xxh128:' + 'f'.repeat(32), copyFrom: 'vanished' }), upload('new2', 3000, { copyFrom: 'old-different', hash: 'xxh128:' + 'e'.repeat(32) })],
      dest,
    );
    expect(result).toMatchObject({ transferred: 2, copies: 0, failed: [], stale: [] });
    expect(dest.calls.filter((c) => c.kind === 'copy')).toEqual([]);
    expect(fs.readFileSync(path.join(dst, 'new2')).equals(w)).toBe(true);
  });

  it('without server-side copy the copies upload, one after the other', async () => {
    const w = randomBytes(2000);
    for (const p of ['a', 'b']) put(p, w);
    const dest = new Recording(dst, false);
    dest.delayMs.set('a', 80);
    const { result } = await run([upload('a', 2000, { hash: H }), upload('b', 2000, { hash: H, copyFrom: 'a' })], dest);
    expect(result).toMatchObject({ transferred: 2, copies: 0 });
    const [a, b] = dest.calls;
    expect(b!.start).toBeGreaterThan(a!.end!);
  });

  it("a plan without copy_from (hf's) runs every upload as before, concurrently", async () => {
    const w = randomBytes(2000);
    for (const p of ['a', 'b', 'c']) put(p, w);
    const dest = new Recording(dst);
    for (const p of ['a', 'b', 'c']) dest.delayMs.set(p, 50);
    const { result } = await run(['a', 'b', 'c'].map((p) => upload(p, 2000)), dest);
    expect(result).toMatchObject({ transferred: 3, copies: 0, metadataUpdates: 0 });
    const writes = dest.calls;
    expect(writes.every((c) => c.kind === 'write')).toBe(true);
    expect(writes[2]!.start).toBeLessThan(writes[0]!.end!); // they overlapped
  });

  it('a metadata-only operation sets the mtime through the store; a store without setMtime uploads', async () => {
    const w = randomBytes(1000);
    put('m', w);
    fs.mkdirSync(dst);
    fs.writeFileSync(path.join(dst, 'm'), w);
    fs.utimesSync(path.join(dst, 'm'), T0 - 100, T0 - 100);
    const op = upload('m', 1000, { reason: 'same content, mtime differs', hash: H, remoteMtime: (T0 - 100) * 1000, destSize: 1000 });
    const dest = new Recording(dst);
    const { result, events } = await run([op], dest);
    expect(result).toMatchObject({ transferred: 0, metadataUpdates: 1 });
    expect(dest.calls).toEqual([]);
    expect(events.find((e) => e.type === 'done')).toMatchObject({ via: 'mtime' });
    expect(fs.statSync(path.join(dst, 'm')).mtimeMs).toBe(T0 * 1000);

    fs.utimesSync(path.join(dst, 'm'), T0 - 100, T0 - 100);
    const noMtime = new Recording(dst);
    (noMtime as { setMtime?: unknown }).setMtime = undefined;
    const r2 = await run([op], noMtime);
    expect(r2.result).toMatchObject({ transferred: 1, metadataUpdates: 0 });
  });
});
