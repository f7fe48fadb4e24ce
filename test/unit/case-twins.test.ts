/**
 * Case twins on case-insensitive destinations, below the CLI: the probe on a real folder, the
 * executor's claims (first spelling in plan order wins), and the local store's look-up of a
 * file or folder already there under another spelling.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CaseTwins, caseClashMessage } from '../../src/executor/case-twins.js';
import { foldCase, isCaseInsensitiveDir, probeCaseInsensitive } from '../../src/stores/local/case-fold.js';
import { LocalStore } from '../../src/stores/local/store.js';
import { tempDir, writeTree } from '../support/cli.js';

const dirs: string[] = [];
function scratch(): string {
  const d = tempDir('bucketsync-case-');
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  delete process.env.BUCKETSYNC_ASSUME_CASE_INSENSITIVE;
});

describe('probeCaseInsensitive', () => {
  it('says false on this machine’s case-sensitive temp folder and leaves nothing behind', async () => {
    const d = scratch();
    writeTree(d, { 'keep.txt': 'k' });
    expect(await probeCaseInsensitive(d)).toBe(false);
    expect(fs.readdirSync(d)).toEqual(['keep.txt']);
  });

  it('a destination that does not exist yet is not probed: nothing is created, in it or above it', async () => {
    const d = scratch();
    expect(await probeCaseInsensitive(path.join(d, 'not', 'yet'))).toBe(false);
    expect(fs.readdirSync(d)).toEqual([]);
  });

  it('sees a case-insensitive folder as one: the upper-case spelling of the probe file exists', async () => {
    // No case-insensitive file system here: check the probe against one by making the
    // upper-case spelling appear whenever the lower-case probe file is created.
    const d = scratch();
    const watcher = fs.watch(d, (_event, name) => {
      if (typeof name === 'string' && name.includes('case-probe') && name === name.toLowerCase()) {
        try {
          fs.writeFileSync(path.join(d, name.toUpperCase()), '');
        } catch {
          // already there
        }
      }
    });
    try {
      // The probe only looks once, right after creating its file: give the watcher a chance
      // (until the spelling it looks for is there, at most 5 s: a fixed pause can be too short
      // on a loaded machine).
      const realLstat = fs.promises.lstat;
      fs.promises.lstat = (async (p: fs.PathLike) => {
        for (let i = 0; i < 500 && !fs.existsSync(p); i++) await new Promise((r) => setTimeout(r, 10));
        return realLstat(p);
      }) as typeof fs.promises.lstat;
      try {
        expect(await probeCaseInsensitive(d)).toBe(true);
      } finally {
        fs.promises.lstat = realLstat;
      }
    } finally {
      watcher.close();
    }
  });

  it('BUCKETSYNC_ASSUME_CASE_INSENSITIVE=1 is the test hook; without it the answer is probed', async () => {
    const d = scratch();
    expect(await isCaseInsensitiveDir(d)).toBe(false);
    process.env.BUCKETSYNC_ASSUME_CASE_INSENSITIVE = '1';
    expect(await isCaseInsensitiveDir(d)).toBe(true);
    expect(await new LocalStore(d).caseInsensitive()).toBe(true);
  });
});

describe('CaseTwins (the executor’s claims)', () => {
  it('the first spelling in plan order wins; later twins, of files or of folders, are refused', () => {
    const t = new CaseTwins();
    expect(t.claim('A/keep.bin')).toBeUndefined();
    expect(t.claim('A/x.bin')).toBeUndefined();
    expect(t.claim('Model.bin')).toBeUndefined();
    expect(t.claim('a/x.bin')).toEqual({ other: 'A/x.bin' });
    expect(t.claim('a/y.bin')).toEqual({ other: 'A', folder: 'a' });
    expect(t.claim('model.bin')).toEqual({ other: 'Model.bin' });
    expect(t.claim('MODEL.BIN')).toEqual({ other: 'Model.bin' });
    // a file and a folder of one name that differ by case
    expect(t.claim('ok')).toBeUndefined();
    expect(t.claim('OK/z')).toEqual({ other: 'ok', folder: 'OK' });
    // the same path twice, and paths that only share a same-case folder, are fine
    expect(t.claim('A/x.bin')).toBeUndefined();
    expect(t.claim('A/sub/x.bin')).toBeUndefined();
    // refused paths claimed nothing: the folder is still A's
    expect(t.claim('a/new.bin')).toEqual({ other: 'A', folder: 'a' });
  });

  it('folds NFC and NFD spellings together (toLowerCase of NFC)', () => {
    expect(foldCase('Cafe\u0301.TXT')).toBe(foldCase('caf\u00e9.txt'));
    const t = new CaseTwins();
    expect(t.claim('cafe\u0301.txt')).toBeUndefined();
    const clash = t.claim('caf\u00e9.txt')!;
    expect(clash).toEqual({ other: 'cafe\u0301.txt' });
    expect(caseClashMessage('download', 'caf\u00e9.txt', clash, '/d')).toBe(
      'refusing to download caf\u00e9.txt: it differs only in Unicode normalisation from cafe\u0301.txt, and /d is on a case-insensitive file system',
    );
    expect(caseClashMessage('download', 'a/y.bin', { other: 'A', folder: 'a' }, '/d')).toBe(
      'refusing to download a/y.bin: its folder a differs only by case from A, and /d is on a case-insensitive file system',
    );
  });
});

describe('LocalStore.caseTwin (what is already at the destination)', () => {
  it('names the existing file or folder a path would land on under another spelling', async () => {
    const d = scratch();
    writeTree(d, { 'A/x.bin': '1', 'README.md': '2', 'deep/B/c.txt': '3', 'same.txt': '4' });
    const store = new LocalStore(d);
    expect(await store.caseTwin('a/x.bin')).toBe('A/x.bin');
    expect(await store.caseTwin('readme.md')).toBe('README.md');
    expect(await store.caseTwin('a/new.bin')).toBe('A');
    expect(await store.caseTwin('deep/b/c.txt')).toBe('deep/B/c.txt');
    expect(await store.caseTwin('deep/b/other.txt')).toBe('deep/B');
    // exact spellings and new names are not twins
    expect(await store.caseTwin('A/x.bin')).toBeUndefined();
    expect(await store.caseTwin('same.txt')).toBeUndefined();
    expect(await store.caseTwin('new/file.txt')).toBeUndefined();
    expect(await new LocalStore(path.join(d, 'missing')).caseTwin('a/x.bin')).toBeUndefined();
  });
});
