import { Volume, createFsFromVolume } from 'memfs';
import { describe, expect, it } from 'vitest';
import { mtimeMsFromNs, scanLocal, type ScanFs } from '../../src/scanner/scan.js';

function fakeFs(files: Record<string, string>): ScanFs & ReturnType<typeof createFsFromVolume> {
  const vol = Volume.fromJSON(files);
  return createFsFromVolume(vol) as unknown as ScanFs & ReturnType<typeof createFsFromVolume>;
}

function scanAll(root: string, fs: ScanFs, warnings: string[] = [], batchSize = 3) {
  const out = [];
  for (const b of scanLocal(root, { fs, batchSize, onWarning: (w) => warnings.push(w) })) out.push(...b);
  return out;
}

describe('scanLocal', () => {
  it('yields relative paths in code-point order across directories, with sizes', () => {
    const fs = fakeFs({
      '/r/a-b': '1',
      '/r/a/x': '22',
      '/r/a0': '333',
      '/r/B': '4444',
      '/r/.hidden/h': 'h',
      '/r/a/sub/deep.txt': 'deep',
    });
    const entries = scanAll('/r', fs);
    expect(entries.map((e) => [e.path, e.size])).toEqual([
      ['.hidden/h', 1],
      ['B', 4],
      ['a-b', 1],
      ['a/sub/deep.txt', 4],
      ['a/x', 2],
      ['a0', 3],
    ]);
  });

  it('skips its own temporary files and reports them; names that only look like them are data', () => {
    const fs = fakeFs({
      '/r/a.txt': 'a',
      '/r/.bucketsync-tmp-0123abcd-123-89abcdef-a.txt': 'partial',
      '/r/.bucketsync-tmp-123-ab-a.txt': 'user',
      '/r/.bucketsync-tmp-notes.txt': 'user',
    });
    // A destination (links listed as themselves): the temporary file is a leftover candidate.
    const temps: string[] = [];
    const entries = [...scanLocal('/r', { fs, followLinks: false, onTempFile: (p) => temps.push(p) })].flat();
    expect(entries.map((e) => e.path)).toEqual(['.bucketsync-tmp-123-ab-a.txt', '.bucketsync-tmp-notes.txt', 'a.txt']);
    expect(temps).toEqual(['/r/.bucketsync-tmp-0123abcd-123-89abcdef-a.txt']);
    // A source: not synced, but never silently: a marker with a warning (counted, exit 3).
    const warnings: string[] = [];
    const sourceTemps: string[] = [];
    const src = [...scanLocal('/r', { fs, onTempFile: (p) => sourceTemps.push(p), onWarning: (m) => warnings.push(m) })].flat();
    expect(src.map((e) => [e.path, e.skipped !== undefined])).toEqual([
      ['.bucketsync-tmp-0123abcd-123-89abcdef-a.txt', true],
      ['.bucketsync-tmp-123-ab-a.txt', false],
      ['.bucketsync-tmp-notes.txt', false],
      ['a.txt', false],
    ]);
    expect(sourceTemps).toEqual([]);
    expect(warnings.join('\n')).toMatch(/named exactly like a temporary file of a bucketsync run/);
  });

  it('warns about an unreadable directory and keeps going', () => {
    const fs = fakeFs({ '/r/ok/a': 'a', '/r/secret/b': 'b', '/r/z': 'z' });
    const real = fs.readdirSync.bind(fs);
    (fs as unknown as ScanFs).readdirSync = ((p: string, o: { withFileTypes: true }) => {
      if (p === '/r/secret') throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
      return real(p, o);
    }) as ScanFs['readdirSync'];
    const warnings: string[] = [];
    const entries = scanAll('/r', fs, warnings);
    expect(entries.map((e) => e.path)).toEqual(['ok/a', 'secret/', 'z']);
    expect(entries[1]!.skipped).toEqual({ reason: 'cannot read directory: permission denied', subtree: true });
    expect(warnings).toEqual(['cannot read directory secret: permission denied (skipped)']);
  });

  it('reports names with a backslash instead of producing an unsafe plan path', () => {
    const fs = fakeFs({ '/r/a\\b.txt': 'x', '/r/ok': 'y' });
    const warnings: string[] = [];
    const entries = scanAll('/r', fs, warnings);
    expect(entries.map((e) => [e.path, e.skipped?.reason])).toEqual([
      ['a\\b.txt', 'a backslash in a name cannot be a portable plan path'],
      ['ok', undefined],
    ]);
    expect(warnings[0]).toContain('a\\b.txt');
  });

  it('computes mtimes the way Python does (sec + nsec * 1e-9) * 1000', () => {
    expect(mtimeMsFromNs(1_700_000_000_500_000_000n)).toBe(1_700_000_000_500);
    expect(mtimeMsFromNs(1_700_000_000_123_456_789n)).toBe((1_700_000_000 + 123_456_789 * 1e-9) * 1000);
    expect(mtimeMsFromNs(-1_500_000_000n)).toBe((-2 + 0.5) * 1000);
  });
});
