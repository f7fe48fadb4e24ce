/**
 * A flat directory listed through the scanner's spill path: the real CLI with a tiny
 * BUCKETSYNC_SCAN_SPILL_ENTRIES, so both sides (the worker-scanned source and the
 * destination) sort their listings in runs on disk. Correctness only, never timing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareCodePoints } from '../../src/manifest/order.js';
import { cli, jsonl, tempDir } from '../support/cli.js';

const FILES = 20_000;
const T0 = 1_700_000_000;

let work: string;
let src: string;
let dst: string;
let tmp: string;
let env: Record<string, string>;

/** name → size of every file of a flat directory (and of its subdirectories, as a/b). */
function listing(root: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (dir: string, rel: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(dir, e.name), r);
      else out.set(r, fs.statSync(path.join(dir, e.name)).size);
    }
  };
  walk(root, '');
  return out;
}

function scanDirsLeft(): string[] {
  return fs.readdirSync(tmp).filter((n) => n.startsWith('bucketsync-'));
}

beforeAll(() => {
  work = tempDir('bucketsync-scale-');
  src = path.join(work, 'src');
  dst = path.join(work, 'dst');
  tmp = path.join(work, 'tmp');
  fs.mkdirSync(src);
  fs.mkdirSync(tmp);
  // Tricky names among the plain ones: astral vs high-BMP characters, "a-b" vs "a/b".
  const names = ['a-b', 'a0', '\u{1F600}', '\uFF5E', 'é', 'e\u0301', 'new\nline'];
  const plain = FILES - names.length;
  for (let i = 0; i < plain; i++) names.push(`f${String((i * 7919) % FILES).padStart(5, '0')}-${i}.dat`);
  for (const [i, name] of names.entries()) {
    const file = path.join(src, name);
    fs.writeFileSync(file, 'x'.repeat(i % 17));
    fs.utimesSync(file, T0 + (i % 1000), T0 + (i % 1000));
  }
  fs.mkdirSync(path.join(src, 'a'));
  fs.writeFileSync(path.join(src, 'a', 'b'), 'ab');
  env = { BUCKETSYNC_SCAN_SPILL_ENTRIES: '1000', TMPDIR: tmp };
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

describe('a flat directory of 20,000 files through the spill path', () => {
  it('syncs, then finds nothing to do', async () => {
    const first = await cli(['sync', src, dst, '--delete'], { env, timeoutMs: 120_000 });
    expect(first.stderr).toContain(`  Uploads: ${FILES + 1}`);
    expect(first.code).toBe(0);
    expect(listing(dst)).toEqual(listing(src));
    expect(fs.statSync(path.join(dst, '\u{1F600}')).mtimeMs).toBe(fs.statSync(path.join(src, '\u{1F600}')).mtimeMs);
    expect(scanDirsLeft()).toEqual([]);

    const again = await cli(['sync', src, dst, '--delete'], { env, timeoutMs: 120_000 });
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`  Skips: ${FILES + 1}`);
    expect(again.stderr).toContain('Nothing to sync.');
    expect(scanDirsLeft()).toEqual([]);
  }, 240_000);

  it('plans in code-point order, and applies changes and deletes', async () => {
    fs.rmSync(path.join(src, 'a-b'));
    fs.rmSync(path.join(src, 'f00000-0.dat'));
    fs.writeFileSync(path.join(src, 'a0'), 'changed size');
    fs.writeFileSync(path.join(src, 'zz-new'), 'new');

    const dry = await cli(['sync', src, dst, '--delete', '--dry-run'], { env, timeoutMs: 120_000 });
    expect(dry.code).toBe(0);
    const ops = jsonl(dry.stdout).slice(1);
    const paths = ops.map((o) => String(o['path']));
    expect(paths).toHaveLength(FILES + 2);
    expect([...paths].sort(compareCodePoints)).toEqual(paths);
    const acting = ops.filter((o) => o['action'] !== 'skip').map((o) => [o['action'], o['path']]);
    expect(acting).toEqual([
      ['delete', 'a-b'],
      ['upload', 'a0'],
      ['delete', 'f00000-0.dat'],
      ['upload', 'zz-new'],
    ]);

    const run = await cli(['sync', src, dst, '--delete'], { env, timeoutMs: 120_000 });
    expect(run.code).toBe(0);
    expect(listing(dst)).toEqual(listing(src));
    const noop = await cli(['sync', src, dst, '--delete'], { env, timeoutMs: 120_000 });
    expect(noop.stderr).toContain('Nothing to sync.');
    expect(scanDirsLeft()).toEqual([]);
  }, 240_000);
});
