/**
 * `bucketsync ls` / `rm` on local directories through the real CLI: hf's listing formats
 * (with Python's rounding of sizes), the path boundary of `rm -R`, filters, dry runs,
 * confirmations and the errors that keep local paths and bucket paths apart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, readTree, tempDir, writeTree, type CliOptions } from '../support/cli.js';

const T0 = 1_736_937_000; // 2025-01-15 10:30:00 UTC
const D = '2025-01-15 10:30:00';
const BLANK = `${''.padStart(12)}  ${''.padStart(19)}  `;

let work: string;

beforeEach(() => {
  work = tempDir('bucketsync-buckets-local-');
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function bs(args: string[], opts: CliOptions = {}) {
  return cli(args, { cwd: work, ...opts, env: { COLUMNS: '200', ...opts.env } });
}

describe('ls on a local directory', { timeout: 180_000 }, () => {
  it('prints hf\'s flat, recursive, human-readable, tree, quiet and json listings', async () => {
    writeTree(path.join(work, 'data'), { 'file.txt': 'hello', 'a1250.bin': 'x'.repeat(1250), 'a1350.bin': 'y'.repeat(1350), 'sub/deep/f.txt': 'deep', 'sub/n.txt': 'nested content' }, T0);
    const flat = await bs(['ls', './data']);
    expect(flat.code).toBe(0);
    expect(flat.stdout).toBe([`        1250  ${D}  a1250.bin`, `        1350  ${D}  a1350.bin`, `           5  ${D}  file.txt`, `${BLANK}sub/`, ''].join('\n'));
    expect(flat.stderr).toBe('Hint: Use -R to list files recursively.\n');

    // Python's "{:.1f}" rounds the exact binary value half to even: 1.25 → 1.2, 1.35 → 1.4.
    const hr = await bs(['buckets', 'ls', './data', '-R', '-h']);
    expect(hr.stdout).toBe(
      [
        '      1.2 KB         Jan 15 10:30  a1250.bin',
        '      1.4 KB         Jan 15 10:30  a1350.bin',
        '         5 B         Jan 15 10:30  file.txt',
        '         4 B         Jan 15 10:30  sub/deep/f.txt',
        '        14 B         Jan 15 10:30  sub/n.txt',
        '',
      ].join('\n'),
    );
    expect(hr.stderr).toBe('');
    expect((await bs(['ls', `${work}/data/`, '--tree', '-R'])).stdout).toBe(
      [
        `1250  ${D}  ├── a1250.bin`,
        `1350  ${D}  ├── a1350.bin`,
        `   5  ${D}  ├── file.txt`,
        `      ${' '.repeat(19)}  └── sub/`,
        `      ${' '.repeat(19)}      ├── deep/`,
        `   4  ${D}      │   └── f.txt`,
        `  14  ${D}      └── n.txt`,
        '',
      ].join('\n'),
    );
    expect((await bs(['ls', './data', '-q'])).stdout).toBe('a1250.bin\na1350.bin\nfile.txt\nsub/\n');
    expect(JSON.parse((await bs(['ls', './data/sub', '--format', 'json'])).stdout)).toEqual([
      { type: 'directory', path: 'deep' },
      { type: 'file', path: 'n.txt', size: 14, mtime: '2025-01-15T10:30:00+00:00' },
    ]);
    expect((await bs(['ls', './data/file.txt', '-q'])).stdout).toBe('file.txt\n');
    fs.mkdirSync(path.join(work, 'empty'));
    expect((await bs(['ls', './empty'])).stdout).toBe('(empty)\n');
  });

  it('keeps local paths and bucket paths apart', async () => {
    const missing = await bs(['ls', './nope']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^Error: No such file or directory: \.\/nope\n/);
    writeTree(work, { 'ns/name/x.txt': 'x', 'solo/y.txt': 'y' }, T0);
    const amb = await bs(['ls', 'ns/name']);
    expect(amb.code).toBe(2);
    expect(amb.stderr).toBe(
      "Error: 'ns/name' is both a local path and a bucket path\nHint: Write ./ns/name for the local path, or hf://buckets/ns/name for the Hugging Face bucket path.\n",
    );
    const ambNs = await bs(['ls', 'solo']);
    expect(ambNs.code).toBe(2);
    expect(ambNs.stderr).toContain("'solo' is both a local path and a namespace");
    expect((await bs(['ls', './ns/name', '-q'])).stdout).toBe('x.txt\n');
    expect((await bs(['ls', `file://${work}/solo`, '-q'])).stdout).toBe('y.txt\n');
  });
});

describe('rm on a local directory', { timeout: 180_000 }, () => {
  it('rm -R removes the directory and what is below, never look-alike siblings; empties are pruned', async () => {
    writeTree(work, { 'd/logs/a.txt': 'a', 'd/logs/sub/b.txt': 'bb', 'd/logs.json': '{}', 'd/logs_backup/c.txt': 'c', 'd/keep.txt': 'k' }, T0);
    const dry = await bs(['rm', '-R', './d/logs/', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toBe('delete: ./d/logs/a.txt\ndelete: ./d/logs/sub/b.txt\n(dry run) 2 file(s) totaling 3 B would be removed.\n');
    const refused = await bs(['rm', '-R', './d/logs']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(`Error: Not asking "Remove 2 file(s) totaling 3 B from './d/logs'?": stdin is not a terminal.\nHint: Use --yes to skip confirmation.\n`);
    expect(Object.keys(readTree(path.join(work, 'd')))).toHaveLength(5);

    const r = await bs(['rm', '-R', './d/logs', '-y']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("✓ Removed 2 file(s) totaling 3 B from './d/logs'\n  bucket_id: ./d/logs\n  files_deleted: 2\n  size: 3 B\n");
    expect(readTree(path.join(work, 'd'))).toEqual({ 'keep.txt': 'k', 'logs.json': '{}', 'logs_backup/c.txt': 'c' });
    expect(fs.existsSync(path.join(work, 'd/logs'))).toBe(false);
  });

  it('filters match paths below the directory and need -R; a single file; a directory needs -R', async () => {
    writeTree(work, { 'd/a.tmp': '1', 'd/sub/b.tmp': '22', 'd/sub/keep.bin': 'k', 'd/top.txt': 't' }, T0);
    const noR = await bs(['rm', './d', '--exclude', '*.bin']);
    expect(noR.code).toBe(2);
    expect(noR.stderr).toBe('Error: --include and --exclude require --recursive.\n');
    const r = await bs(['rm', '-R', './d', '--include', '*.tmp', '-y', '--json']);
    expect(r.stdout).toBe('{"bucket_id": "./d", "files_deleted": 2, "size": "3 B"}\n');
    expect(readTree(path.join(work, 'd'))).toEqual({ 'sub/keep.bin': 'k', 'top.txt': 't' });

    const dir = await bs(['rm', './d/sub', '-y']);
    expect(dir.code).toBe(1);
    expect(dir.stderr).toBe("Error: 'sub' is a directory in './d'\nHint: Use -R to remove it and everything below it: bucketsync rm -R ./d/sub\n");
    const one = await bs(['rm', './d/top.txt', '-y']);
    expect(one.code).toBe(0);
    expect(one.stdout).toBe("✓ File removed\n  path: top.txt\n  bucket_id: ./d\n");
    const gone = await bs(['rm', './d/top.txt', '-y']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("Error: 'top.txt' not found in './d'");
    expect(readTree(path.join(work, 'd'))).toEqual({ 'sub/keep.bin': 'k' });

    const cpLocal = await bs(['cp', './d/sub/keep.bin', './elsewhere.bin']);
    expect(cpLocal.code).toBe(2);
    expect(cpLocal.stderr).toContain('One of SRC or DST must be a bucket URI');
  });
});
