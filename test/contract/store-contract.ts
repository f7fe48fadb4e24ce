/**
 * The store contract: one set of tests every store must pass (issue 16, item 5), run against
 * a real instance of each kind by the *.test.ts files beside this one. A store's own test file
 * holds only its quirks. Everything goes through the `Store` interface, opened the way the CLI
 * opens it (`openStore(parseLocation(uri), role, options)`).
 */
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseLocation } from '../../src/stores/registry.js';
import { defaultBackend, xxh128HexSync } from '../../src/hashing/xxh128.js';
import { compareCodePoints } from '../../src/manifest/order.js';
import { openStore, type StoreOptions } from '../../src/stores/registry.js';
import { StaleError, type Store, type TransferSource } from '../../src/stores/store.js';
import type { FileEntry } from '../../src/types.js';

export interface ContractTarget {
  /** The kind, for test names. */
  kind: string;
  /** A fresh, empty location (URI or local path) for one test; `sub` names a sibling inside it. */
  fresh(): Promise<string>;
  /** Joins a location and a sub-path. */
  join(base: string, sub: string): string;
  /** Options for openStore (endpoint, token…). */
  options?: StoreOptions;
  /** How close a kept mtime must be (ms): the store's precision. */
  mtimePrecisionMs: number;
  /** Whether a file `p` and files under `p/` can exist side by side (buckets: yes). */
  fileAndFolder: boolean;
  /** Skip the whole suite, with the reason. */
  skip?: string;
}

const T = 1_600_000_000_123.456; // 2020-09-13, with sub-millisecond digits

export function source(data: Buffer | string, mtimeMs: number, failAfter?: number): TransferSource {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  return {
    size: buf.length,
    mtimeMs,
    open: async (range) => {
      const body = range ? buf.subarray(range.start, range.end + 1) : buf;
      if (failAfter === undefined) return Readable.from(body.length ? [body] : []);
      // the first bytes, then an error: a connection that dies in the middle of a transfer
      return new Readable({
        read() {
          this.push(body.subarray(0, failAfter));
          this.destroy(new Error('the source went away in the middle'));
        },
      });
    },
  };
}

async function listAll(store: Store, warnings: string[] = []): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  for await (const batch of store.list({ onWarning: (m) => warnings.push(m) })) out.push(...batch);
  return out;
}

const files = (entries: FileEntry[]) => entries.filter((e) => !e.skipped);

async function readAll(store: Store, p: string, range?: { start: number; end: number }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await store.read(p, range)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function storeContract(t: ContractTarget): void {
  describe.skipIf(t.skip !== undefined)(`store contract: ${t.kind}`, () => {
    const open = async (loc: string, role: 'source' | 'dest' = 'dest') => openStore(parseLocation(loc), role, t.options ?? {});
    const within = (a: number, b: number) => Math.abs(a - b) <= t.mtimePrecisionMs;
    const put = (s: Store, p: string, data: string | Buffer, mtimeMs = T) => s.write(p, source(data, mtimeMs), { mtimeMs, expect: { kind: 'any' } });

    it('lists every file it holds, in code-point order, with sizes and mtimes to its precision', async () => {
      const loc = await t.fresh();
      const s = await open(loc);
      try {
        const names = ['B', 'a b', 'a-b', 'a/b', 'a0', 'a.b/c', 'é', 'e\u0301', '\uFFFD.txt', '\u{1F600}.txt', 'z/y/x/w.txt', 'sp ace'];
        for (const [i, n] of names.entries()) await put(s, n, `content of ${n}`, T + i * 1000);
        const listed = files(await listAll(s));
        expect(listed.map((e) => e.path)).toEqual([...names].sort(compareCodePoints));
        for (let i = 1; i < listed.length; i++) expect(compareCodePoints(listed[i - 1]!.path, listed[i]!.path)).toBeLessThan(0);
        for (const e of listed) {
          const i = names.indexOf(e.path);
          expect(e.size).toBe(Buffer.byteLength(`content of ${e.path}`));
          expect(within(e.mtimeMs, T + i * 1000), `${e.path}: ${e.mtimeMs} vs ${T + i * 1000}`).toBe(true);
        }
      } finally {
        await s.close();
      }
    });

    it('stays inside its path boundary: siblings sharing a name prefix are not listed, read or deleted', async () => {
      const base = await t.fresh();
      const parent = await open(base);
      const inner = await open(t.join(base, 'p'));
      try {
        await put(parent, 'p2/x', 'sibling');
        await put(parent, 'p-x', 'sibling');
        await put(parent, 'p.txt', 'sibling');
        if (t.fileAndFolder) await put(parent, 'p', 'an object named like the folder');
        await put(inner, 'in.txt', 'inside');
        expect(files(await listAll(inner)).map((e) => e.path)).toEqual(['in.txt']);
        expect(await inner.stat('../p2/x').catch(() => undefined)).toBeUndefined();
        const all = files(await listAll(parent)).map((e) => e.path);
        expect(all).toEqual(expect.arrayContaining(['p-x', 'p.txt', 'p/in.txt', 'p2/x']));
      } finally {
        await inner.close();
        await parent.close();
      }
    });

    it('writes atomically: a source that dies mid-way leaves nothing under the final name, and no leftover', async () => {
      const s = await open(await t.fresh());
      try {
        await put(s, 'old.bin', 'old content');
        const big = crypto.randomBytes(200_000);
        await expect(s.write('new.bin', source(big, T, 50_000), { mtimeMs: T, expect: { kind: 'absent' } })).rejects.toThrow();
        await expect(s.write('old.bin', source(big, T, 50_000), { mtimeMs: T, expect: { kind: 'any' } })).rejects.toThrow();
        expect(await s.stat('new.bin')).toBeUndefined();
        expect((await readAll(s, 'old.bin')).toString()).toBe('old content');
        expect(files(await listAll(s)).map((e) => e.path)).toEqual(['old.bin']);
      } finally {
        await s.close();
      }
    });

    it('honours expectations: a stale write and a stale delete are refused and change nothing', async () => {
      const s = await open(await t.fresh());
      try {
        await put(s, 'f.txt', 'v1');
        const cur = (await s.stat('f.txt'))!;
        await expect(s.write('f.txt', source('v2!', T + 5000), { mtimeMs: T + 5000, expect: { kind: 'absent' } })).rejects.toBeInstanceOf(StaleError);
        await expect(
          s.write('f.txt', source('v2!', T + 5000), { mtimeMs: T + 5000, expect: { kind: 'version', size: cur.size + 1, mtimeMs: cur.mtimeMs } }),
        ).rejects.toBeInstanceOf(StaleError);
        await expect(s.write('g.txt', source('x', T), { mtimeMs: T, expect: { kind: 'version', size: 1, mtimeMs: T } })).rejects.toBeInstanceOf(StaleError);
        expect((await readAll(s, 'f.txt')).toString()).toBe('v1');
        const [stale] = await s.remove([{ path: 'f.txt', expect: { kind: 'version', size: cur.size, mtimeMs: cur.mtimeMs + 60_000 } }]);
        expect(stale).toMatchObject({ ok: false, stale: true });
        expect((await readAll(s, 'f.txt')).toString()).toBe('v1');
        const [gone] = await s.remove([{ path: 'nope.txt', expect: { kind: 'version', size: 1, mtimeMs: T } }]);
        expect(gone!.ok).toBe(false);
        await s.write('f.txt', source('v2!', T + 5000), { mtimeMs: T + 5000, expect: { kind: 'version', size: cur.size, mtimeMs: cur.mtimeMs } });
        expect((await readAll(s, 'f.txt')).toString()).toBe('v2!');
        const now = (await s.stat('f.txt'))!;
        const [ok] = await s.remove([{ path: 'f.txt', expect: { kind: 'version', size: now.size, mtimeMs: now.mtimeMs } }]);
        expect(ok).toMatchObject({ ok: true });
        expect(await s.stat('f.txt')).toBeUndefined();
      } finally {
        await s.close();
      }
    });

    it('keeps mtimes before 1970 and with fractions, to its precision', async () => {
      const s = await open(await t.fresh());
      try {
        const times = [-1_000_000_000_000.25, -1500.5, 0, 1_000.75, T];
        for (const [i, m] of times.entries()) await put(s, `t${i}`, `time ${i}`, m);
        for (const e of files(await listAll(s))) {
          const m = times[Number(e.path.slice(1))]!;
          expect(within(e.mtimeMs, m), `${e.path}: listed ${e.mtimeMs}, written ${m}`).toBe(true);
          expect(within((await s.stat(e.path))!.mtimeMs, m)).toBe(true);
        }
      } finally {
        await s.close();
      }
    });

    it('reads whole files, byte ranges and empty files', async () => {
      const s = await open(await t.fresh());
      try {
        const data = crypto.randomBytes(70_000);
        await put(s, 'r.bin', data);
        await put(s, 'empty', '');
        expect((await readAll(s, 'r.bin')).equals(data)).toBe(true);
        expect((await readAll(s, 'r.bin', { start: 1000, end: 60_999 })).equals(data.subarray(1000, 61_000))).toBe(true);
        expect((await readAll(s, 'empty')).length).toBe(0);
        expect((await s.stat('empty'))!.size).toBe(0);
      } finally {
        await s.close();
      }
    });

    it('lists the content hashes it declares, keeps a written hash when it says so, and its mtime precision is declared', async () => {
      const s = await open(await t.fresh());
      try {
        const data = 'hash me';
        await defaultBackend();
        const xxh = `xxh128:${xxh128HexSync(Buffer.from(data))}`;
        await put(s, 'h.txt', data);
        await s.write('w.txt', { ...source(data, T), hash: xxh }, { mtimeMs: T, expect: { kind: 'any' } });
        const [e, w] = files(await listAll(s));
        const md5 = crypto.createHash('md5').update(data).digest('hex');
        const hashes = s.features.hashes;
        if (hashes.has('md5-etag')) expect(e!.etag?.replace(/"/g, '')).toBe(md5);
        if (hashes.has('xet')) expect(e!.xetHash).toMatch(/^[0-9a-f]{64}$/);
        else expect(e!.xetHash).toBeUndefined();
        if (s.features.keepsWrittenHash) expect(w!.hash).toBe(xxh);
        if (hashes.has('xxh128')) expect(e!.hash).toBe(xxh);
        else expect(e!.hash).toBeUndefined();
        expect(s.features.mtimePrecisionMs).toBe(t.mtimePrecisionMs);
      } finally {
        await s.close();
      }
    });

    it('copies server-side and sets mtimes where it can, honouring expectations', async () => {
      const s = await open(await t.fresh());
      try {
        await put(s, 'a.txt', 'copy me');
        if (s.copy) {
          await s.copy('a.txt', 'sub/b.txt', { mtimeMs: T + 7000, expect: { kind: 'absent' } });
          expect((await readAll(s, 'sub/b.txt')).toString()).toBe('copy me');
          expect(within((await s.stat('sub/b.txt'))!.mtimeMs, T + 7000)).toBe(true);
          await expect(s.copy('a.txt', 'sub/b.txt', { mtimeMs: T, expect: { kind: 'absent' } })).rejects.toBeInstanceOf(StaleError);
        }
        if (s.setMtime) {
          const cur = (await s.stat('a.txt'))!;
          await expect(s.setMtime('a.txt', T + 9000, { kind: 'version', size: cur.size + 1 })).rejects.toBeInstanceOf(StaleError);
          await s.setMtime('a.txt', T + 9000, { kind: 'version', size: cur.size, mtimeMs: cur.mtimeMs });
          expect(within((await s.stat('a.txt'))!.mtimeMs, T + 9000)).toBe(true);
          expect((await readAll(s, 'a.txt')).toString()).toBe('copy me');
        }
      } finally {
        await s.close();
      }
    });
  });
}
