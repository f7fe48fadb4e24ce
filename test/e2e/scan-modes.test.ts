/**
 * Issue 17: a local source is scanned in a worker thread only when a core is free for it
 * (src/scanner/worker-scan.ts, scanWorkerHelps; BUCKETSYNC_SCAN_WORKER=1/0 forces the choice),
 * and the destination of a local→local sync is scanned in the main thread. Where the scan runs
 * must never change what a run decides: the same plan (skip markers, deletes they keep, byte
 * names), the same warnings, the same exit code, the same resulting tree.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, tempDir, writeTree } from '../support/cli.js';

const T0 = 1_700_000_000;
const MODES = { worker: { BUCKETSYNC_SCAN_WORKER: '1' }, thread: { BUCKETSYNC_SCAN_WORKER: '0' }, auto: { BUCKETSYNC_SCAN_WORKER: undefined } };

let work: string;
beforeEach(() => {
  work = tempDir();
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

/** A hostile source (everything a scan turns into markers) and a destination with extras. */
function hostileTree(root: string): void {
  const files: Record<string, string> = {};
  for (let d = 0; d < 12; d++) for (let f = 0; f < 150; f++) files[`d${d}/f${f}.txt`] = `${d}:${f}`;
  writeTree(root, { ...files, 'top.txt': 'T', 'z/deep/er/file': 'Z', 'back\\slash': 'B', 'é/ü.txt': 'U', '😀/x': 'E', '\uE000/y': 'P' }, T0);
  // A name that is not UTF-8, a link to a folder, a dangling link, a fifo, a temp-shaped name.
  fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.bin')]), 'raw');
  fs.symlinkSync(path.join(root, 'd1'), path.join(root, 'd1-link'));
  fs.symlinkSync(path.join(root, 'nowhere'), path.join(root, 'dangling'));
  execFileSync('mkfifo', [path.join(root, 'pipe')]);
  fs.writeFileSync(path.join(root, 'd2', '.bucketsync-tmp-0123abcd-4242-0123456789abcdef-f1.txt'), 'tmp');
}

function destTree(root: string): void {
  // Extras to delete, extras a source marker hides (under the linked folder's name), a changed file.
  writeTree(root, { 'old.txt': 'O', 'd1-link/kept.txt': 'K', 'pipe': 'was a file', 'd3/f1.txt': 'changed!', 'd9/f149.txt': '9:149' }, T0);
  fs.writeFileSync(path.join(work, 'outside.txt'), 'outside');
  fs.symlinkSync(path.join(work, 'outside.txt'), path.join(root, 'outside-link'));
}

/** Every file (and link) under `root` as {relative path in hex-escaped bytes: content}: names need not be UTF-8. */
function readTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: Buffer, rel: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' })) {
      const name = [...e.name].map((b) => (b >= 0x21 && b < 0x7f ? String.fromCharCode(b) : `%${b.toString(16)}`)).join('');
      const abs = Buffer.concat([dir, Buffer.from('/'), e.name]);
      const r = rel ? `${rel}/${name}` : name;
      if (e.isDirectory()) walk(abs, r);
      else out[r] = e.isSymbolicLink() ? `-> ${fs.readlinkSync(abs, 'utf8')}` : fs.readFileSync(abs, 'utf8');
    }
  };
  walk(Buffer.from(root), '');
  return out;
}

/** The plan without its header line (which holds the time it was made). */
const ops = (stdout: string): string => stdout.split('\n').slice(1).join('\n');
const lines = (stderr: string): string[] => stderr.split('\n').filter((l) => l !== '').sort();

describe('where the scan runs never changes the run', () => {
  it('--dry-run --delete: the same plan, warnings and exit code with the source scanned in a worker, in the main thread, or as chosen', async () => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    hostileTree(src);
    destTree(dst);
    const runs = await Promise.all(Object.values(MODES).map((env) => cli(['sync', src, dst, '--delete', '--dry-run'], { env })));
    const [first, ...rest] = runs;
    expect(first!.code).toBe(3);
    expect(ops(first!.stdout)).toContain('"action": "delete", "path": "old.txt"');
    expect(ops(first!.stdout)).toContain('"path": "d1-link/kept.txt"');
    expect(ops(first!.stdout)).not.toContain('"action": "delete", "path": "d1-link/kept.txt"');
    expect(ops(first!.stdout)).toContain('"action": "upload", "path": "bad-\\udcff\\udcfe.bin"');
    for (const r of rest) {
      expect(r.code).toBe(first!.code);
      expect(ops(r.stdout)).toBe(ops(first!.stdout));
      expect(lines(r.stderr)).toEqual(lines(first!.stderr));
    }
  });

  it('an executing sync --delete leaves the same tree in each mode, and the next run in each mode has nothing to do', async () => {
    const src = path.join(work, 'src');
    hostileTree(src);
    const trees: Record<string, string>[] = [];
    for (const [name, env] of Object.entries(MODES)) {
      const dst = path.join(work, `dst-${name}`);
      destTree(dst);
      const run = await cli(['sync', src, dst, '--delete'], { env });
      expect(run.code, run.stderr).toBe(3);
      const again = await cli(['sync', src, dst, '--delete', '--dry-run'], { env });
      expect(again.code).toBe(3);
      expect(again.stdout).not.toMatch(/"action": "(upload|delete)"/);
      trees.push(readTree(dst));
    }
    expect(trees[0]!['d3/f1.txt']).toBe('3:1');
    expect(trees[0]!['bad-%ff%fe.bin']).toBe('raw');
    expect(trees[0]!['old.txt']).toBeUndefined();
    expect(trees[0]!['outside-link']).toBeUndefined();
    expect(fs.readFileSync(path.join(work, 'outside.txt'), 'utf8')).toBe('outside');
    expect(trees[0]!['d1-link/kept.txt']).toBe('K');
    expect(trees[1]).toEqual(trees[0]);
    expect(trees[2]).toEqual(trees[0]);
  });
});
