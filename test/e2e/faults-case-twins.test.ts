/**
 * Case twins through the real CLI (local→local): names that differ only by case (or Unicode
 * normalisation) are one file on a case-insensitive destination (macOS, Windows). This
 * machine's file systems are case-sensitive, so the destination is declared case-insensitive
 * with the test hook BUCKETSYNC_ASSUME_CASE_INSENSITIVE=1; without it, everything is copied.
 *
 * With the hook, the first spelling in plan order (code-point order: upper case first) is
 * written, each later twin is refused with one line naming both spellings, the rest of the
 * sync goes on, no delete runs, exit 1 — and a second run refuses the same twins again.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, jsonl, readTree, tempDir, writeTree } from '../support/cli.js';
import { writeTally } from '../support/fault-proxy.js';

const T0 = 1_700_000_000;
const HOOK = { BUCKETSYNC_ASSUME_CASE_INSENSITIVE: '1' };

let work: string;
let src: string;
let dst: string;
beforeEach(() => {
  work = tempDir('bucketsync-case-twins-');
  src = path.join(work, 'src');
  dst = path.join(work, 'dst');
  fs.mkdirSync(src);
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function sync(extra: string[], env: Record<string, string | undefined> = {}) {
  return cli(['sync', src, dst, '--no-progress', ...extra], {
    env: { BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), BUCKETSYNC_ASSUME_CASE_INSENSITIVE: undefined, ...env },
  });
}

const TREE: Record<string, string> = {
  'A/keep.bin': 'upper folder, no twin',
  'A/x.bin': 'upper A',
  'Model.bin': 'upper M',
  'a/x.bin': 'lower a',
  'a/y.bin': 'lower folder, other file',
  'cafe\u0301.txt': 'decomposed',
  'caf\u00e9.txt': 'precomposed',
  'model.bin': 'lower m',
  'ok.txt': 'fine',
};
/** What a case-insensitive destination can hold: the first spelling of each name, in plan order. */
const WRITTEN = ['A/keep.bin', 'A/x.bin', 'Model.bin', 'cafe\u0301.txt', 'ok.txt'];
const REFUSED: Record<string, RegExp> = {
  'a/x.bin': /refusing to upload a\/x\.bin: it differs only by case from A\/x\.bin, and .* is on a case-insensitive file system$/,
  'a/y.bin': /refusing to upload a\/y\.bin: its folder a differs only by case from A, and .* is on a case-insensitive file system$/,
  'caf\u00e9.txt': /refusing to upload caf\u00e9\.txt: it differs only in Unicode normalisation from cafe\u0301\.txt, and .* is on a case-insensitive file system$/,
  'model.bin': /refusing to upload model\.bin: it differs only by case from Model\.bin, and .* is on a case-insensitive file system$/,
};

function failedLines(stderr: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stderr.split('\n')) {
    const m = /^(?:Warning: )?failed: (.+?) \(upload\): (.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

describe('case twins on a case-insensitive destination', () => {
  it('without the hook (case-sensitive, as here) every twin is copied', async () => {
    writeTree(src, TREE, T0);
    const r = await sync([]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('refusing');
    expect(readTree(dst)).toEqual(Object.fromEntries(Object.entries(TREE).sort(([a], [b]) => (a < b ? -1 : 1))));
  });

  it('with the hook: the first spelling is written, each later twin refused naming both spellings; exit 1; the same on a re-run', async () => {
    writeTree(src, TREE, T0);
    const r = await sync(['-v'], HOOK);
    expect(r.code, r.stderr).toBe(1);
    const failed = failedLines(r.stderr);
    expect([...failed.keys()].sort()).toEqual(Object.keys(REFUSED).sort());
    for (const [p, re] of Object.entries(REFUSED)) expect(failed.get(p), p).toMatch(re);
    expect(failed.get('a/x.bin')).toContain(dst);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    // Nothing overwritten, nothing lost: each written name holds the first twin's bytes.
    const tree = readTree(dst);
    expect(Object.keys(tree).sort()).toEqual([...WRITTEN].sort());
    for (const p of WRITTEN) expect(tree[p], p).toBe(TREE[p]);
    expect(Object.entries(readTree(src))).toEqual(Object.entries(TREE).sort(([a], [b]) => (a < b ? -1 : 1))); // source untouched

    // --json: one failed event per refused path, the others done; the summary counts them.
    const again = await sync(['--json'], HOOK);
    expect(again.code).toBe(1);
    const events = jsonl(again.stdout);
    const failedEvents = events.filter((e) => e['event'] === 'failed');
    expect(failedEvents.map((e) => e['path']).sort()).toEqual(Object.keys(REFUSED).sort());
    for (const e of failedEvents) expect(e['error'] as string, e['path'] as string).toMatch(REFUSED[e['path'] as string]!);
    const summary = events.find((e) => e['event'] === 'summary')!;
    expect(summary['failed']).toBe(Object.keys(REFUSED).length);
    expect(summary['exit_code']).toBe(1);
    expect(Object.keys(readTree(dst)).sort()).toEqual([...WRITTEN].sort());

    writeTally({
      suite: 'hostile-names',
      scenario: 'names differing only by case or Unicode normalisation ("A/x.bin" and "a/x.bin", "Model.bin" and "model.bin", folder "A/" and "a/y.bin", "café" NFC and NFD) onto a case-insensitive destination (test hook)',
      where: 'local→local',
      runs: 2,
      injected: Object.keys(REFUSED).length,
      failedRuns: [r, again].filter((x) => x.code !== 0).length,
      dataLost: WRITTEN.filter((p) => tree[p] !== TREE[p]).length,
      note: 'the first spelling in plan order written, each later twin refused naming both spellings (exit 1, failed events); nothing overwritten; a re-run refuses the same',
    });
  });

  it('with the hook: a file already at the destination under another spelling is not overwritten, and no delete runs', async () => {
    writeTree(src, { 'readme.md': 'new lower', 'Data/part.bin': 'p', 'ok.txt': 'fine' }, T0);
    writeTree(dst, { 'README.md': 'local upper', 'data/old.bin': 'o', 'stale.txt': 's' }, T0);
    const r = await sync(['--delete'], HOOK);
    expect(r.code, r.stderr).toBe(1);
    const failed = failedLines(r.stderr);
    expect(failed.get('readme.md')).toMatch(/^refusing to upload readme\.md: it differs only by case from README\.md, and .* is on a case-insensitive file system$/);
    expect(failed.get('Data/part.bin')).toMatch(/^refusing to upload Data\/part\.bin: its folder Data differs only by case from data, and /);
    expect(failed.size).toBe(2);
    expect(r.stderr).toMatch(/not deleting files as 2 transfer\(s\) failed/);
    // README.md kept, the deletes of README.md, data/old.bin and stale.txt not run, ok.txt copied.
    expect(readTree(dst)).toEqual({ 'README.md': 'local upper', 'data/old.bin': 'o', 'ok.txt': 'fine', 'stale.txt': 's' });
    writeTally({
      suite: 'hostile-names',
      scenario: 'a name differing only by case from a file or folder already at a case-insensitive destination (test hook), with --delete',
      where: 'local→local',
      runs: 1,
      injected: 2,
      failedRuns: r.code === 0 ? 0 : 1,
      dataLost: ['README.md', 'data/old.bin'].filter((p) => !fs.existsSync(path.join(dst, p))).length,
      note: 'refused naming both spellings; the local file kept; no delete run after the refusal',
    });
  });
});
