// The S3 metadata cache file (no server needed): lookups, compaction, damage, concurrent use.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MetaCache, type MetaRecord } from '../../src/stores/s3/meta-cache.js';
import { writeWindow } from '../../src/stores/s3/s3-store.js';

let dir: string;
let n = 0;

function fresh(warnings: string[] = []): MetaCache {
  return MetaCache.open(dir, `http://127.0.0.1:9/${n++}`, 'bucket', (m) => warnings.push(m));
}

function rec(k: string, extra: Partial<MetaRecord> = {}): MetaRecord {
  return { k, e: `"${k.length.toString(16).padStart(32, '0')}"`, s: k.length, m: 1700000000000.5, ...extra };
}

async function lookupAll(c: MetaCache, keys: string[], lm?: number): Promise<(MetaRecord | undefined)[]> {
  const scan = await c.openScan();
  const out: (MetaRecord | undefined)[] = [];
  for (const k of keys) out.push((await scan.lookup(k, rec(k).e, rec(k).s, lm))?.rec);
  await scan.close();
  return out;
}

describe('S3 metadata cache file', () => {
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-meta-'));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('remembers records across instances; matches only the same ETag, size and LastModified', async () => {
    const ep = 'http://example:1';
    const a = MetaCache.open(dir, ep, 'b1', () => {});
    a.put(rec('x/1', { m: 1.5 }));
    a.put(rec('x/2', { l: 1000 }));
    a.put(rec('x/3', { h: 'xxh128:0123456789abcdef0123456789abcdef' }));
    await a.close();

    const b = MetaCache.open(dir, ep, 'b1', () => {});
    const scan = await b.openScan();
    expect((await scan.lookup('x/1', rec('x/1').e, 3, 5000))).toEqual({ rec: rec('x/1', { m: 1.5 }), needsLastModified: true });
    expect(await scan.lookup('x/2', rec('x/2').e, 3, 1001)).toBeUndefined(); // LastModified differs
    expect(await scan.lookup('x/3', '"other"', 3, undefined)).toBeUndefined(); // ETag differs
    await scan.close();
    const s2 = await b.openScan();
    expect((await s2.lookup('x/2', rec('x/2').e, 3, 1000))?.needsLastModified).toBe(false);
    expect((await s2.lookup('x/3', rec('x/3').e, 3, undefined))?.rec.h).toBe('xxh128:0123456789abcdef0123456789abcdef');
    expect(await s2.lookup('x/4', rec('x/4').e, 3, undefined)).toBeUndefined();
    await s2.close();
    // another bucket / endpoint: another file
    expect(MetaCache.open(dir, ep, 'b2', () => {}).file).not.toBe(b.file);
    expect(MetaCache.open(dir, 'http://example:2', 'b1', () => {}).file).not.toBe(b.file);
    expect(MetaCache.open(null, ep, 'b1', () => {}).enabled).toBe(false);
  });

  it("a record of our write proves a listing's LastModified only inside its server-time window; outside, it needs a HEAD", async () => {
    const ep = 'http://example:window';
    const a = MetaCache.open(dir, ep, 'b1', () => {});
    const w: [number, number] = [1_000_000, 1_003_000];
    a.put(rec('w/1', { w }));
    a.put(rec('w/2', { w, l: 1_002_000 })); // a verified LastModified supersedes the window
    await a.close();
    const lines = fs.readFileSync(a.file!, 'utf8').split('\n').filter((l) => l.startsWith('{"k"'));
    expect(lines.map((l) => JSON.parse(l) as MetaRecord)).toEqual([rec('w/1', { w }), rec('w/2', { l: 1_002_000 })]);

    const cases: [number | undefined, { needsLastModified: boolean; provenLastModified?: number }][] = [
      [1_000_000, { needsLastModified: false, provenLastModified: 1_000_000 }], // first ms of the window
      [1_002_999, { needsLastModified: false, provenLastModified: 1_002_999 }], // last ms
      [1_003_000, { needsLastModified: true }], // written after our write's response: another tool's
      [1_090_000, { needsLastModified: true }], // `rclone touch` a minute later
      [999_999, { needsLastModified: true }], // before our request reached the server
      [undefined, { needsLastModified: false }], // no LastModified to compare (as before)
    ];
    for (const [lm, want] of cases) {
      const scan = await MetaCache.open(dir, ep, 'b1', () => {}).openScan();
      const hit = await scan.lookup('w/1', rec('w/1').e, rec('w/1').s, lm);
      await scan.close();
      expect({ needsLastModified: hit!.needsLastModified, provenLastModified: hit!.provenLastModified }, String(lm)).toEqual({
        provenLastModified: undefined,
        ...want,
      });
    }
    // the window never stands in for ETag and size
    const scan = await MetaCache.open(dir, ep, 'b1', () => {}).openScan();
    expect(await scan.lookup('w/1', '"other"', rec('w/1').s, 1_001_000)).toBeUndefined();
    expect(await scan.lookup('w/2', rec('w/2').e, rec('w/2').s, 1_001_000)).toBeUndefined(); // l recorded: l decides
    await scan.close();

    // damaged windows are ignored (the record stays, unproven): reversed, not numbers, wrong length
    const c = fresh();
    c.put(rec('d/1'));
    await c.close();
    const bad = [[5, 1], ['1', '9'], [1], [1, 2, 3], { 0: 1, 1: 9 }, [null, 9]];
    fs.appendFileSync(c.file!, bad.map((v, i) => `\n${JSON.stringify({ ...rec(`d/${i + 2}`), w: v })}`).join('') + '\n');
    const s2 = await c.openScan();
    for (let i = 0; i < bad.length; i++) {
      const hit = await s2.lookup(`d/${i + 2}`, rec(`d/${i + 2}`).e, rec(`d/${i + 2}`).s, 3);
      expect(hit, JSON.stringify(bad[i])).toMatchObject({ needsLastModified: true });
      expect(hit!.rec.w).toBeUndefined();
    }
    await s2.close();
  });

  it("a write's window spans its requests in the server's clock: Date headers, their 1 s resolution and the requests' durations", () => {
    const D = Date.parse('Sun, 06 Dec 2026 09:49:58 GMT');
    // single PUT, 40 ms: from Date - 40 ms - 1 s (truncated listings) to Date + 1 s + 40 ms
    expect(writeWindow(D, 39.2, D, 39.2)).toEqual([D - 40 - 1000, D + 1000 + 40]);
    // multipart: Create's Date to Complete's Date (AWS stamps the initiation, RGW the completion)
    expect(writeWindow(D, 10, D + 7000, 20)).toEqual([D - 1010, D + 8020]);
    // no Date header on either response, or dates out of order: no window (the listing HEADs)
    expect(writeWindow(undefined, 10, D, 10)).toBeUndefined();
    expect(writeWindow(D, 10, undefined, 10)).toBeUndefined();
    expect(writeWindow(D, 10, D - 1000, 10)).toBeUndefined();
    // longer than 30 s: not recorded (one HEAD is nothing next to such a transfer)
    expect(writeWindow(D, 10, D + 27_000, 10)).toBeDefined();
    expect(writeWindow(D, 10, D + 29_000, 10)).toBeUndefined();
  });

  it('compacts into a sorted base; later records and tombstones win', async () => {
    const c = fresh();
    const keys = Array.from({ length: 5000 }, (_, i) => `k/${String((i * 7919) % 5000).padStart(5, '0')}`);
    for (const k of keys) c.put(rec(k));
    c.put(rec('\u{1F600}'));
    c.put(rec('\uFF5E'));
    await c.compact();
    const text = fs.readFileSync(c.file!, 'utf8');
    const lines = text.split('\n');
    expect(lines[0]!.length).toBe(255);
    expect(JSON.parse(lines[0]!)).toMatchObject({ bucketsync: 's3-meta', v: 1 });
    const baseKeys = lines.slice(1).filter(Boolean).map((l) => (JSON.parse(l) as MetaRecord).k);
    expect(baseKeys).toHaveLength(5002);
    expect(baseKeys.at(-2)).toBe('\uFF5E'); // code-point order, not UTF-16 order
    expect(baseKeys.at(-1)).toBe('\u{1F600}');

    c.put(rec('k/00010', { m: 42 }));
    c.forget('k/00011');
    await c.flush();
    const sorted = [...keys].sort();
    const found = await lookupAll(c, sorted);
    expect(found.filter(Boolean)).toHaveLength(4999);
    expect(found[10]!.m).toBe(42);
    expect(found[11]).toBeUndefined();
    await c.compact();
    const again = await lookupAll(c, sorted);
    expect(again[10]!.m).toBe(42);
    expect(again[11]).toBeUndefined();
    expect(fs.readFileSync(c.file!, 'utf8').split('\n').filter(Boolean)).toHaveLength(1 + 5001);
  });

  it('survives damaged files: garbage, torn lines, a foreign header, keys out of order', async () => {
    const warnings: string[] = [];
    const c = fresh(warnings);
    for (const k of ['a', 'b', 'c']) c.put(rec(k));
    await c.compact();
    const good = fs.readFileSync(c.file!, 'utf8');

    // torn last line and binary garbage in the journal
    fs.appendFileSync(c.file!, '\n{"k":"d","e":"\\"x');
    fs.appendFileSync(c.file!, Buffer.from([0, 255, 10, 123, 10]));
    c.put(rec('e'));
    await c.flush();
    expect((await lookupAll(c, ['a', 'b', 'c', 'd', 'e'])).map((r) => r?.k)).toEqual(['a', 'b', 'c', undefined, 'e']);

    // base out of order: trusted up to the damage, then rebuilt by compaction
    const lines = good.split('\n');
    fs.writeFileSync(c.file!, [lines[0], lines[1], lines[3], lines[2], ''].join('\n'));
    expect((await lookupAll(c, ['a', 'b', 'c'])).map((r) => r?.k)).toEqual(['a', undefined, 'c']);
    await c.compact();
    expect((await lookupAll(c, ['a', 'b', 'c'])).map((r) => r?.k)).toEqual(['a', undefined, 'c']);

    // a header that belongs to another endpoint/bucket: ignored entirely
    const other = fresh();
    other.put(rec('zzz'));
    await other.compact();
    fs.copyFileSync(other.file!, c.file!);
    expect((await lookupAll(c, ['a', 'zzz'])).map((r) => r?.k)).toEqual([undefined, undefined]);

    // pure garbage
    fs.writeFileSync(c.file!, Buffer.alloc(10_000, 0xab));
    expect(await lookupAll(c, ['a'])).toEqual([undefined]);
    c.put(rec('a'));
    await c.compact();
    expect((await lookupAll(c, ['a'])).map((r) => r?.k)).toEqual(['a']);
    // header claims more base bytes than the file has
    const text = fs.readFileSync(c.file!, 'utf8');
    fs.writeFileSync(c.file!, text.replace(/"base":\d+/, (m) => `"base":${Number(m.slice(7)) + 99999}`.padEnd(m.length, ' ')).slice(0, -2));
    expect(await lookupAll(c, ['a'])).toEqual([undefined]);
    expect(warnings).toEqual([]);
  });

  it('stays valid under concurrent appends and compactions from several instances', async () => {
    const ep = 'http://concurrent:1';
    const caches = Array.from({ length: 6 }, () => MetaCache.open(dir, ep, 'cc', () => {}));
    const jobs: Promise<void>[] = [];
    for (let round = 0; round < 20; round++) {
      caches.forEach((c, ci) => {
        for (let i = 0; i < 50; i++) c.put(rec(`r${round}/c${ci}/${i}`));
        jobs.push(ci % 3 === 0 ? c.compact() : c.flush());
      });
    }
    await Promise.all(jobs);
    await Promise.all(caches.map((c) => c.close()));
    // Every line of the file parses or is blank; every base key is in order.
    const reader = MetaCache.open(dir, ep, 'cc', () => {});
    const text = fs.readFileSync(reader.file!, 'utf8');
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      expect(() => JSON.parse(line)).not.toThrow();
    }
    // Records may be lost to a racing compaction (a cache miss), never garbled: most survive.
    const keys: string[] = [];
    for (let round = 0; round < 20; round++) for (let ci = 0; ci < 6; ci++) for (let i = 0; i < 50; i++) keys.push(`r${round}/c${ci}/${i}`);
    keys.sort();
    const found = await lookupAll(reader, keys);
    for (const [i, r] of found.entries()) if (r) expect(r.k).toBe(keys[i]);
    expect(found.filter(Boolean).length).toBeGreaterThan(keys.length / 2);
    await reader.compact();
    const after = await lookupAll(reader, keys);
    expect(after.filter(Boolean).length).toBe(found.filter(Boolean).length);
  });

  it('an unwritable cache directory disables the cache with one warning, never an error', async () => {
    const warnings: string[] = [];
    const blocker = path.join(dir, 'not-a-dir');
    fs.writeFileSync(blocker, 'x');
    const c = MetaCache.open(path.join(blocker, 'sub'), 'http://x:1', 'b', (m) => warnings.push(m));
    c.put(rec('a'));
    await c.flush();
    c.put(rec('b'));
    await c.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/metadata cache .* disabled/);
    expect(c.enabled).toBe(false);
    expect(await lookupAll(c, ['a'])).toEqual([undefined]);
  });

  it('a file that is all journal (no header, as after a crash) is merged in passes of bounded memory, and nothing is lost', async () => {
    const ep = 'http://example:3';
    const open = () => MetaCache.open(dir, ep, 'huge', () => {}, { journalReadMax: 16 * 1024 });
    const writer = open();
    // ~600 KiB of journal in arbitrary order, with overrides and tombstones later in the file
    const N = 3000;
    const lines: string[] = [];
    for (let i = 0; i < N; i++) lines.push(JSON.stringify(rec(`k/${String((i * 7919) % N).padStart(5, '0')}`, { m: 1 })));
    for (let i = 0; i < N; i += 10) lines.push(JSON.stringify(rec(`k/${String(i).padStart(5, '0')}`, { m: 2 })));
    for (let i = 5; i < N; i += 10) lines.push(JSON.stringify({ k: `k/${String(i).padStart(5, '0')}`, x: 1 }));
    fs.writeFileSync(writer.file!, `${lines.join('\n')}\n`);
    expect(fs.statSync(writer.file!).size).toBeGreaterThan(8 * 16 * 1024);

    const keys = Array.from({ length: N }, (_, i) => `k/${String(i).padStart(5, '0')}`);
    const reader = open();
    const scan = await reader.openScan(); // the journal is over the limit: merged first, pass by pass
    const found: (number | undefined)[] = [];
    for (const k of keys) found.push((await scan.lookup(k, rec(k).e, rec(k).s, undefined))?.rec.m);
    await scan.close();
    for (let i = 0; i < N; i++) {
      const want = i % 10 === 0 ? 2 : i % 10 === 5 ? undefined : 1;
      expect(found[i], keys[i]).toBe(want);
    }
    // The file is now a sorted base with a header and no journal.
    const text = fs.readFileSync(reader.file!, 'utf8');
    expect(text.slice(0, 256)).toContain('"bucketsync":"s3-meta"');
    const base = text.slice(256).trim().split('\n');
    expect(base.length).toBe(N - N / 10);
    expect(JSON.parse(base[0]!).k).toBe('k/00000');
  });

  it('refining records are dropped while writing is behind; records that carry new facts never are', async () => {
    const c = fresh();
    const N = 40_000;
    // A synchronous burst: no flush can run in between, as when compactions hold the writer up.
    for (let i = 0; i < N; i++) c.refine(rec(`r/${String(i).padStart(6, '0')}`, { l: 5 }));
    for (let i = 0; i < 100; i++) c.put(rec(`p/${String(i).padStart(6, '0')}`));
    expect(c.dropped).toBe(N - 16_384);
    await c.close();
    const kept = await lookupAll(c, ['p/000099', 'r/000000', `r/${String(16_383).padStart(6, '0')}`, `r/${String(16_384).padStart(6, '0')}`], 5);
    expect(kept.map((r) => r !== undefined)).toEqual([true, true, true, false]);
  });

  it("a compaction removes temp files that dead compactions left more than a day ago, not a running one's", async () => {
    const c = fresh();
    c.put(rec('t/1'));
    await c.close();
    const old = `${c.file}.424242.deadbeef.tmp`;
    const recent = `${c.file}.434343.cafebabe.tmp`;
    const other = path.join(path.dirname(c.file!), 'unrelated.tmp');
    for (const f of [old, recent, other]) fs.writeFileSync(f, 'partial');
    const twoDaysAgo = Date.now() / 1000 - 2 * 86_400;
    fs.utimesSync(old, twoDaysAgo, twoDaysAgo);
    fs.utimesSync(other, twoDaysAgo, twoDaysAgo);
    c.put(rec('t/2'));
    await c.compact();
    expect([fs.existsSync(old), fs.existsSync(recent), fs.existsSync(other)]).toEqual([false, true, true]);
    expect((await lookupAll(c, ['t/1', 't/2'])).every((r) => r !== undefined)).toBe(true);
  });

  it('streams a large base with bounded lookups', async () => {
    const c = fresh();
    const N = 50_000;
    for (let i = 0; i < N; i++) c.put(rec(`big/${String(i).padStart(6, '0')}`));
    await c.compact();
    const t = Date.now();
    const scan = await c.openScan();
    let hits = 0;
    for (let i = 0; i < N; i += 3) {
      const k = `big/${String(i).padStart(6, '0')}`;
      if (await scan.lookup(k, rec(k).e, rec(k).s, undefined)) hits++;
    }
    await scan.close();
    expect(hits).toBe(Math.ceil(N / 3));
    expect(Date.now() - t).toBeLessThan(20_000);
  });
});
