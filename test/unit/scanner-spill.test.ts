/**
 * Huge directories: past the spill limit the scanner sorts a directory's entries in runs on
 * disk and merges them. With a tiny limit, real directories must come out exactly as the
 * in-memory path lists them, and no spill file may outlive the scan.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compareCodePoints } from '../../src/manifest/order.js';
import { scanLocal, type ScanFs, type ScanOptions } from '../../src/scanner/scan.js';
import { DIR, EntryCollector, FAN_IN, FILE, LINK, SpillDir, nameOf } from '../../src/scanner/spill.js';

let work: string;
let root: string;
/** One of bucketsync's own temporary names (host hash, pid, random). */
const TEMP = '.bucketsync-tmp-0123abcd-123-89abcdef-leftover';

/** Names that sort differently by UTF-16 code unit and by code point, and other traps. */
const TRICKY = [
  'a-b',
  'a0',
  'a.txt',
  'A',
  'é', // NFC
  'e\u0301', // NFD: a different name
  '中文.txt',
  '\u{1F600}.png', // astral: a surrogate pair (D83D DE00) in UTF-16
  '\u{10FFFF}z',
  '\uFF5E', // BMP above the surrogates: after the emoji in UTF-16, before it by code point
  '\uE000private',
  '\uFFFD',
  'new\nline',
  'tab\there',
  ' space',
  'zz',
  '~tilde',
];

function writeFile(rel: string, content: string): void {
  const abs = path.join(root, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, content);
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-spill-test-'));
  root = path.join(work, 'flat');
  fs.mkdirSync(root);
  // A flat directory of a few thousand files …
  for (let i = 0; i < 3000; i++) writeFile(`f${(i * 7919) % 3001}-${i}.bin`, 'x'.repeat(i % 13));
  for (const name of TRICKY) writeFile(name, name);
  // … with subdirectories whose keys interleave with files ("a/" sorts after "a-b", before "a0").
  writeFile('a/b', 'ab');
  writeFile('a/c/deep.txt', 'deep');
  writeFile('\u{1F600}d/inside', 'astral dir');
  writeFile('\uFF5Ed/inside', 'bmp dir');
  for (let i = 0; i < 500; i++) writeFile(`sub/s${i}`, String(i));
  writeFile('sub/nested/n', 'n');
  fs.mkdirSync(path.join(root, 'empty'));
  // Things the scanner reports or skips, the same on both paths.
  writeFile(TEMP, 'partial');
  // A user's file that only looks like a temporary name is data.
  writeFile('.bucketsync-tmp-notes.txt', 'data');
  // Names that are not UTF-8 (kept byte-exact, as lone surrogates U+DC80..U+DCFF).
  fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/bad`), Buffer.of(0xff, 0xfe), Buffer.from('.bin')]), 'bad');
  fs.mkdirSync(Buffer.concat([Buffer.from(`${root}/dir`), Buffer.of(0xe9)]));
  fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/dir`), Buffer.of(0xe9), Buffer.from('/in')]), 'in');
  fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/sub/s`), Buffer.of(0x80)]), 'sub-bad');
  writeFile('back\\slash', 'b');
  fs.symlinkSync('a.txt', path.join(root, 'link-to-file'));
  fs.symlinkSync('sub', path.join(root, 'link-to-dir'));
  fs.symlinkSync('missing', path.join(root, 'broken-link'));
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

let spillDir: string;
afterEach(() => {
  expect(fs.existsSync(spillDir)).toBe(false);
});

function scan(opts: ScanOptions) {
  spillDir = path.join(work, `spill-${Math.random().toString(36).slice(2)}`);
  const warnings: string[] = [];
  const temps: string[] = [];
  const entries = [];
  for (const b of scanLocal(root, { ...opts, spillDir, batchSize: 100, onWarning: (w) => warnings.push(w), onTempFile: (t) => temps.push(t) })) {
    entries.push(...b.map((e) => [e.path, e.size, e.mtimeNs, e.skipped?.reason, e.skipped?.subtree]));
  }
  return { entries, warnings, temps };
}

/** The in-memory path: a huge spill limit, every directory read whole. */
const inMemory = () => scan({ spillEntries: 1e9, streamDirBytes: Number.MAX_SAFE_INTEGER });

describe('scanner spill to sorted runs', () => {
  it('lists in code-point order (which differs from UTF-16 order here)', () => {
    const { entries } = inMemory();
    const paths = entries.map((e) => e[0] as string);
    expect(paths.length).toBeGreaterThan(3500);
    expect([...paths].sort(compareCodePoints)).toEqual(paths);
    expect([...paths].sort()).not.toEqual(paths);
    const i = paths.indexOf('a-b');
    expect(paths.slice(i, i + 4)).toEqual(['a-b', 'a/b', 'a/c/deep.txt', 'a.txt'].sort(compareCodePoints));
    expect(paths.indexOf('\uFF5Ed/inside')).toBeLessThan(paths.indexOf('\u{1F600}.png'));
    expect(paths).toContain('link-to-file');
    expect(paths).not.toContain('link-to-dir');
    // Skip markers in their sorted places: a link to a folder stands for a subtree.
    expect(paths).toContain('link-to-dir/');
    expect(paths).toContain('broken-link');
    expect(paths).toContain('back\\slash');
    expect(paths).toContain('.bucketsync-tmp-notes.txt');
    // a source entry in bucketsync's exact temporary shape: a marker, never left out silently
    expect(paths).toContain(TEMP);
    // Bytes that are not UTF-8, escaped one-to-one.
    expect(paths).toContain('bad\uDCFF\uDCFE.bin');
    expect(paths).toContain('dir\uDCE9/in');
    expect(paths).toContain('sub/s\uDC80');
  });

  const variants: [string, ScanOptions][] = [
    ['read incrementally, spilled in runs of 7 (multi-level merges)', { spillEntries: 7, streamDirBytes: 1 }],
    ['read incrementally, spilled in runs of 1000', { spillEntries: 1000, streamDirBytes: 1 }],
    ['read incrementally, not spilled', { spillEntries: 1e9, streamDirBytes: 1 }],
    ['read whole, spilled in runs of 64', { spillEntries: 64, streamDirBytes: Number.MAX_SAFE_INTEGER }],
    ['the defaults for a small limit', { spillEntries: 50 }],
  ];
  for (const [label, opts] of variants) {
    it(`yields exactly the in-memory sequence, warnings and temp files: ${label}`, () => {
      const expected = inMemory();
      const got = scan(opts);
      expect(got.entries).toEqual(expected.entries);
      expect(got.warnings).toEqual(expected.warnings);
      expect(got.temps).toEqual(expected.temps);
    });
  }

  it('keeps the existing warnings', () => {
    const { warnings, temps } = scan({ spillEntries: 7, streamDirBytes: 1 });
    expect(warnings).toEqual([
      `skipping ${TEMP}: named exactly like a temporary file of a bucketsync run (a transfer in progress here?): not synced`,
      'skipping back\\slash: a backslash in a name cannot be a portable plan path',
      'skipping broken-link: broken symbolic link',
      'skipping link-to-dir: symbolic link to a folder (not followed)',
    ]);
    // a source reports no leftovers: only a destination's listing removes its own dead ones
    expect(temps).toEqual([]);
  });

  it('takes the limit from BUCKETSYNC_SCAN_SPILL_ENTRIES', () => {
    const before = process.env['BUCKETSYNC_SCAN_SPILL_ENTRIES'];
    process.env['BUCKETSYNC_SCAN_SPILL_ENTRIES'] = '5';
    try {
      spillDir = path.join(work, 'spill-env');
      const gen = scanLocal(root, { spillDir, batchSize: 10 });
      gen.next();
      expect(fs.readdirSync(spillDir).length).toBeGreaterThan(0);
      gen.return(undefined);
    } finally {
      if (before === undefined) delete process.env['BUCKETSYNC_SCAN_SPILL_ENTRIES'];
      else process.env['BUCKETSYNC_SCAN_SPILL_ENTRIES'] = before;
    }
  });

  it('removes its runs when the consumer stops early', () => {
    spillDir = path.join(work, 'spill-early');
    let batches = 0;
    for (const _ of scanLocal(root, { spillDir, spillEntries: 11, streamDirBytes: 1, batchSize: 10 })) {
      expect(fs.readdirSync(spillDir).length).toBeGreaterThan(0);
      if (++batches === 3) break;
    }
    expect(batches).toBe(3);
  });

  it('removes its runs when the consumer throws into it', () => {
    spillDir = path.join(work, 'spill-throw');
    const gen = scanLocal(root, { spillDir, spillEntries: 11, streamDirBytes: 1 });
    gen.next();
    expect(fs.existsSync(spillDir)).toBe(true);
    expect(() => gen.throw(new Error('consumer failed'))).toThrow('consumer failed');
  });

  it('removes its runs when a directory cannot be read, and warns as before', () => {
    const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const failing = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
    const fsWith = (failAfter: number | undefined): ScanFs => ({
      statSync: fs.statSync as ScanFs['statSync'],
      readdirSync: (p, o) => {
        if (p === path.join(root, 'sub')) throw denied;
        return fs.readdirSync(p, o);
      },
      opendirSync: (p, o) => {
        if (p === path.join(root, 'sub')) throw denied;
        const dir = fs.opendirSync(p, o);
        if (p !== root || failAfter === undefined) return dir;
        let n = 0;
        return {
          readSync: () => {
            if (++n > failAfter) throw failing;
            return dir.readSync();
          },
          closeSync: () => dir.closeSync(),
        };
      },
    });
    const expected = scan({ fs: fsWith(undefined), spillEntries: 1e9, streamDirBytes: Number.MAX_SAFE_INTEGER });
    expect(expected.warnings).toContain('cannot read directory sub: permission denied (skipped)');
    expect(expected.entries.some((e) => String(e[0]).startsWith('sub/') && e[0] !== 'sub/')).toBe(false);
    // The unreadable folder is a subtree marker in its sorted place.
    expect(expected.entries.find((e) => e[0] === 'sub/')).toEqual(['sub/', 0, 0n, 'cannot read directory: permission denied', true]);
    expect(scan({ fs: fsWith(undefined), spillEntries: 7, streamDirBytes: 1 })).toEqual(expected);
    // The top directory fails after 1000 entries, with runs already on disk: the scan fails
    // (nothing could be listed: nothing may be compared), and its runs are cleaned.
    expect(() => scan({ fs: fsWith(1000), spillEntries: 7, streamDirBytes: 1 })).toThrow(`cannot read directory ${root}: I/O error`);
  });

  it('uses a fresh directory under the system temp dir by default, and removes it', () => {
    const tmp = path.join(work, 'tmpdir');
    fs.mkdirSync(tmp);
    const before = process.env['TMPDIR'];
    process.env['TMPDIR'] = tmp;
    try {
      spillDir = path.join(tmp, 'never');
      const gen = scanLocal(root, { spillEntries: 13, streamDirBytes: 1 });
      gen.next();
      expect(fs.readdirSync(tmp).filter((n) => n.startsWith('bucketsync-scan-'))).toHaveLength(1);
      gen.return(undefined);
      expect(fs.readdirSync(tmp)).toEqual([]);
    } finally {
      if (before === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = before;
    }
  });
});

describe('spill directories of killed scans', () => {
  it('are removed at the next spill when a day old and their process is gone', () => {
    const tmp = path.join(work, 'sweep');
    fs.mkdirSync(tmp);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const old = Date.now() / 1000 - 2 * 86400;
    const make = (name: string, mtime?: number): string => {
      const dir = path.join(tmp, name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'run-0'), 'x\0');
      if (mtime !== undefined) fs.utimesSync(dir, mtime, mtime);
      return name;
    };
    const stale = make(`bucketsync-scan-${dead}-old-x`, old);
    const recent = make(`bucketsync-scan-${dead}-new-x`);
    const alive = make(`bucketsync-scan-${process.ppid}-old-x`, old);
    const other = make('something-else', old);
    spillDir = path.join(tmp, 'mine');
    const gen = scanLocal(root, { spillDir, spillEntries: 13, streamDirBytes: 1 });
    gen.next();
    gen.return(undefined);
    const left = fs.readdirSync(tmp).sort();
    expect(left).toEqual([recent, alive, other].sort());
    expect(left).not.toContain(stale);
  });
});

describe('EntryCollector', () => {
  for (const withWide of [false, true]) {
    it(`merges many runs and records longer than the read buffer (${withWide ? 'some names wide' : 'narrow names'})`, () => {
      spillDir = path.join(work, `spill-collector-${withWide}`);
      const dir = new SpillDir(spillDir);
      const c = new EntryCollector(3, () => dir);
      const input: [string, number][] = [];
      for (let i = 0; i < FAN_IN * 3 * 3 + 5; i++) {
        // Only some runs get wide names: merges mix wide and narrow runs.
        const wide = withWide && i % 40 < 3 ? (i % 2 ? '\u{1F600}' : '\uFF5E') : '';
        const name = `n${(i * 7) % 301}${wide}-${i}${i % 50 === 0 ? 'L'.repeat(150_000) : ''}`;
        input.push([name, i % 3 === 0 ? DIR : i % 3 === 1 ? FILE : LINK]);
      }
      for (const [name, kind] of input) c.add(name, kind);
      const source = c.finish();
      const out: [string, number][] = [];
      while (source.advance()) out.push([nameOf(source), source.kind]);
      source.close();
      const key = ([name, kind]: [string, number]) => (kind === DIR ? `${name}/` : name);
      expect(out).toEqual([...input].sort((a, b) => compareCodePoints(key(a), key(b))));
      expect(fs.readdirSync(spillDir)).toEqual([]);
      dir.remove();
    });
  }
});
