/**
 * The real CLI on real temporary directories: every sync flag, message and error of the
 * local store, as a user meets them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, jsonl, readTree, setMtime, tempDir, writeTree } from '../support/cli.js';

const T0 = 1_700_000_000; // a fixed past mtime (seconds)

let work: string;
let src: string;
let dst: string;

beforeEach(() => {
  work = tempDir();
  src = path.join(work, 'src');
  dst = path.join(work, 'dst');
  fs.mkdirSync(src);
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function ops(stdout: string): { action: unknown; path: unknown; reason: unknown }[] {
  return jsonl(stdout)
    .slice(1)
    .map((o) => ({ action: o['action'], path: o['path'], reason: o['reason'] }));
}

describe('sync local to local', () => {
  it('copies a tree, keeps mtimes, and the next run in either direction has nothing to do', async () => {
    writeTree(src, { 'a.txt': 'A', 'sub/b.txt': 'BB', 'sub/deep/c.bin': 'CCC', '.hidden': 'H' }, T0);
    const first = await cli(['sync', src, dst]);
    expect(first.code).toBe(0);
    expect(first.stdout).toBe('');
    expect(first.stderr).toContain(`Sync plan: ${src} -> ${dst}`);
    expect(first.stderr).toContain('  Uploads: 4');
    expect(first.stderr).toContain('Sync completed.');
    expect(readTree(dst)).toEqual(readTree(src));
    expect(fs.statSync(path.join(dst, 'sub/deep/c.bin')).mtimeMs).toBe(T0 * 1000);

    const again = await cli(['sync', src, dst]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('  Skips: 4');
    expect(again.stderr).toContain('Nothing to sync.');

    const back = await cli(['sync', dst, src]);
    expect(back.stderr).toContain('Nothing to sync.');
    const third = path.join(work, 'third');
    expect((await cli(['sync', dst, third])).code).toBe(0);
    expect((await cli(['sync', third, src])).stderr).toContain('Nothing to sync.');
  });

  it('accepts file:// URLs and relative paths', async () => {
    writeTree(src, { 'x.txt': 'x' });
    const r = await cli(['sync', 'src', `file://${dst}`], { cwd: work });
    expect(r.code).toBe(0);
    expect(readTree(dst)).toEqual({ 'x.txt': 'x' });
  });

  it('decides like hf: size differs, source newer, destination newer is "identical"', async () => {
    writeTree(src, { 'size.txt': 'longer', 'newer.txt': 'same', 'older.txt': 'same', 'same.txt': 'same' }, T0 + 100);
    writeTree(dst, { 'size.txt': 'short', 'newer.txt': 'same', 'older.txt': 'same', 'same.txt': 'same' }, T0 + 100);
    setMtime(path.join(dst, 'newer.txt'), T0); // source is 100 s newer
    setMtime(path.join(dst, 'older.txt'), T0 + 200); // destination newer, same size
    setMtime(path.join(dst, 'same.txt'), T0 + 100.9); // within the 1 s window
    const r = await cli(['sync', src, dst, '--dry-run']);
    expect(r.code).toBe(0);
    expect(ops(r.stdout)).toEqual([
      { action: 'upload', path: 'newer.txt', reason: 'local newer' },
      { action: 'skip', path: 'older.txt', reason: 'identical' },
      { action: 'skip', path: 'same.txt', reason: 'identical' },
      { action: 'upload', path: 'size.txt', reason: 'size differs' },
    ]);
  });

  it('the 1000 ms window is strict', async () => {
    writeTree(src, { 'a.txt': 'a', 'b.txt': 'b' }, T0 + 1);
    writeTree(dst, { 'a.txt': 'a', 'b.txt': 'b' }, T0);
    setMtime(path.join(src, 'b.txt'), T0 + 1.002);
    const r = await cli(['sync', src, dst, '--dry-run']);
    expect(ops(r.stdout)).toEqual([
      { action: 'skip', path: 'a.txt', reason: 'identical' },
      { action: 'upload', path: 'b.txt', reason: 'local newer' },
    ]);
  });

  it('--ignore-times compares sizes only; --ignore-sizes compares mtimes only', async () => {
    writeTree(src, { 'a.txt': 'aa', 'b.txt': 'b', 'c.txt': 'c' }, T0 + 100);
    writeTree(dst, { 'a.txt': 'a', 'b.txt': 'x', 'c.txt': 'cc' }, T0);
    setMtime(path.join(dst, 'c.txt'), T0 + 500);
    const times = await cli(['sync', src, dst, '--dry-run', '--ignore-times']);
    expect(ops(times.stdout)).toEqual([
      { action: 'upload', path: 'a.txt', reason: 'size differs' },
      { action: 'skip', path: 'b.txt', reason: 'same size' },
      { action: 'upload', path: 'c.txt', reason: 'size differs' },
    ]);
    setMtime(path.join(dst, 'b.txt'), T0 + 100);
    const sizes = await cli(['sync', src, dst, '--dry-run', '--ignore-sizes']);
    expect(ops(sizes.stdout)).toEqual([
      { action: 'upload', path: 'a.txt', reason: 'local newer' },
      { action: 'skip', path: 'b.txt', reason: 'same mtime' },
      { action: 'skip', path: 'c.txt', reason: 'remote newer' },
    ]);
  });

  it('--existing and --ignore-existing', async () => {
    writeTree(src, { 'both.txt': 'new content', 'only-src.txt': 's' }, T0 + 100);
    writeTree(dst, { 'both.txt': 'old' }, T0);
    const existing = await cli(['sync', src, dst, '--dry-run', '--existing']);
    expect(ops(existing.stdout)).toEqual([
      { action: 'upload', path: 'both.txt', reason: 'size differs' },
      { action: 'skip', path: 'only-src.txt', reason: 'new file (--existing)' },
    ]);
    const ignore = await cli(['sync', src, dst, '--dry-run', '--ignore-existing']);
    expect(ops(ignore.stdout)).toEqual([
      { action: 'skip', path: 'both.txt', reason: 'exists on receiver (--ignore-existing)' },
      { action: 'upload', path: 'only-src.txt', reason: 'new file' },
    ]);
    await cli(['sync', src, dst, '--ignore-existing']);
    expect(readTree(dst)).toEqual({ 'both.txt': 'old', 'only-src.txt': 's' });
  });

  it('--delete removes destination-only files and prunes the folders it empties; --no-delete keeps them', async () => {
    writeTree(src, { 'keep.txt': 'k' }, T0);
    writeTree(dst, { 'keep.txt': 'k', 'gone/deep/old.txt': 'o', 'extra.txt': 'e' }, T0);
    const plain = await cli(['sync', src, dst, '--delete', '--no-delete']);
    expect(plain.stderr).toContain('Nothing to sync.');
    const r = await cli(['sync', src, dst, '--delete', '-v']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('  Deleting: extra.txt (not in source (--delete))');
    expect(r.stderr).toContain('  Deleting: gone/deep/old.txt (not in source (--delete))');
    expect(readTree(dst)).toEqual({ 'keep.txt': 'k' });
    expect(fs.existsSync(path.join(dst, 'gone'))).toBe(false);
  });

  it('--max-delete refuses every delete when the plan has more', async () => {
    writeTree(src, { 'a.txt': 'a' }, T0);
    writeTree(dst, { 'x1': '1', 'x2': '2', 'x3': '3' }, T0);
    const r = await cli(['sync', src, dst, '--delete', '--max-delete', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/3 delete\(s\) not run: .*more than --max-delete 2; nothing was deleted/);
    expect(Object.keys(readTree(dst)).sort()).toEqual(['a.txt', 'x1', 'x2', 'x3']);
  });

  it('filters: include/exclude/filter-from with hf precedence, and excluded files are never deleted', async () => {
    writeTree(src, { 'a.txt': 'a', 'b.log': 'b', 'sub/c.txt': 'c', 'also.csv': 'z' }, T0);
    writeTree(dst, { 'keep.tmp': 't', 'old.txt': 'o' }, T0);
    const r1 = await cli(['sync', src, dst, '--dry-run', '--delete', '--include', '*.txt', '--exclude', 'sub/*', '--exclude', '*.tmp']);
    expect(ops(r1.stdout)).toEqual([
      { action: 'upload', path: 'a.txt', reason: 'new file' },
      { action: 'delete', path: 'old.txt', reason: 'not in source (--delete)' },
    ]);
    const rules = path.join(work, 'rules.txt');
    fs.writeFileSync(rules, '# hf filter file\n- *.log\n+ *.txt\n\n- *.tmp\n');
    const r2 = await cli(['sync', src, dst, '--delete', '--filter-from', rules]);
    expect(r2.code).toBe(0);
    // A '+'-only rule does not restrict: also.csv is still synced; keep.tmp is excluded, so kept.
    expect(readTree(dst)).toEqual({ 'a.txt': 'a', 'also.csv': 'z', 'keep.tmp': 't', 'sub/c.txt': 'c' });
  });

  it('a missing filter file is one clear error, exit 2, nothing done', async () => {
    writeTree(src, { 'a.txt': 'a' });
    const r = await cli(['sync', src, dst, '--filter-from', path.join(work, 'nope.txt')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')[0]).toMatch(/^Error: .*nope\.txt/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(dst)).toBe(false);
  });

  it('--dry-run prints only the JSONL plan on stdout and changes nothing', async () => {
    writeTree(src, { 'é/ü.txt': 'u', 'a.txt': 'a' }, T0 + 0.5);
    const r = await cli(['sync', src, dst, '--dry-run', '-v']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^\{"type": "header", "source": "[^"]+", "dest": "[^"]+", "timestamp": "\d{4}-\d\d-\d\dT[\d:.]+\+00:00", "summary": \{"uploads": 2, "downloads": 0, "deletes": 0, "skips": 0, "total_size": 2\}/);
    expect(lines[2]).toBe(
      '{"type": "operation", "action": "upload", "path": "\\u00e9/\\u00fc.txt", "reason": "new file", "size": 1, "local_mtime": "2023-11-14T22:13:20.500000+00:00"}',
    );
    expect(fs.existsSync(dst)).toBe(false);
  });

  it('--dry-run and --plan together is an error', async () => {
    const r = await cli(['sync', src, dst, '--dry-run', '--plan', 'p.jsonl']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Cannot specify both dry_run and plan.');
  });

  it('mutually exclusive flags are refused with hf messages', async () => {
    const a = await cli(['sync', src, dst, '--ignore-times', '--ignore-sizes']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('Error: Cannot specify both ignore_times and ignore_sizes.');
    const b = await cli(['sync', src, dst, '--existing', '--ignore-existing']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('Error: Cannot specify both existing and ignore_existing.');
    const c = await cli(['sync', src]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('Both source and dest are required (unless using apply).');
  });

  it('a missing source or a file as destination is an error naming it', async () => {
    const r = await cli(['sync', path.join(work, 'missing'), dst]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`Source must be an existing directory: ${path.join(work, 'missing')}`);
    fs.writeFileSync(path.join(work, 'file'), 'x');
    const r2 = await cli(['sync', src, path.join(work, 'file')]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`Destination ${path.join(work, 'file')} is a file, not a folder`);
  });

  it("hf's --format quiet|json|human is accepted", async () => {
    writeTree(src, { 'a.txt': 'a' });
    const q = await cli(['sync', src, dst, '--format', 'quiet']);
    expect(q.code).toBe(0);
    expect(q.stdout + q.stderr).toBe('');
    const j = await cli(['sync', src, path.join(work, 'd2'), '--format', 'json']);
    expect(jsonl(j.stdout).at(-1)!['event']).toBe('summary');
    const bad = await cli(['sync', src, dst, '--format', 'yaml']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--format must be auto, human, agent, json or quiet, got 'yaml'");
  });

  it('-q prints nothing on success; unknown flags exit 2; --help shows examples', async () => {
    writeTree(src, { 'a.txt': 'a' });
    const q = await cli(['sync', src, dst, '-q']);
    expect(q.code).toBe(0);
    expect(q.stdout + q.stderr).toBe('');
    const bad = await cli(['sync', src, dst, '--frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown option '--frobnicate'");
    const help = await cli(['sync', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('bucketsync sync --apply plan.jsonl');
    const badNum = await cli(['sync', src, dst, '--transfers', 'many']);
    expect(badNum.code).toBe(2);
    expect(badNum.stderr).toContain("--transfers must be a whole number of at least 1, got 'many'");
  });

  it('symlinks to files are followed; symlinked directories are not; broken links are warned about', async () => {
    writeTree(src, { 'real/f.txt': 'f' });
    const outside = path.join(work, 'outside');
    writeTree(outside, { 'o.txt': 'o' });
    fs.symlinkSync(path.join(src, 'real/f.txt'), path.join(src, 'link.txt'));
    fs.symlinkSync(outside, path.join(src, 'linkdir'));
    fs.symlinkSync(path.join(work, 'nowhere'), path.join(src, 'broken'));
    const r = await cli(['sync', src, dst]);
    // Both skips are markers (issue 13 class 1): counted, and the exit code says so (3).
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('Warning: skipping broken: broken symbolic link');
    expect(r.stderr).toContain('Warning: skipping linkdir: symbolic link to a folder (not followed)');
    expect(readTree(dst)).toEqual({ 'link.txt': 'f', 'real/f.txt': 'f' });
  });

  it('unsupported and malformed locations are one clear line, exit 2', async () => {
    const hf = await cli(['sync', src, 'hf://bucket/ns/name']);
    expect(hf.code).toBe(2);
    expect(hf.stderr).toContain('Invalid HF URI: hf://bucket/ns/name. Type prefix must be plural');
    const id = await cli(['sync', src, 'hf://buckets/onlyns']);
    expect(id.stderr).toContain("Bucket id must be 'namespace/name', got 'onlyns'");
    const rev = await cli(['sync', src, 'hf://buckets/ns/name@main']);
    expect(rev.stderr).toContain("Bucket URIs do not support a revision marker ('@').");
    const empty = await cli(['sync', src, 'hf://buckets/ns/name//x']);
    expect(empty.stderr).toContain('Path must not contain empty segments');
    const ftp = await cli(['sync', src, 'ftp://host/x']);
    expect(ftp.code).toBe(2);
    expect(ftp.stderr).toContain("Unsupported location scheme 'ftp://'");
  });
});

describe('plan and apply', () => {
  it('--plan writes the plan and changes nothing; --apply executes it from any directory', async () => {
    writeTree(src, { 'a.txt': 'a', 'sub/b.txt': 'b' }, T0);
    writeTree(dst, { 'old.txt': 'o' }, T0);
    const planFile = path.join(work, 'plan.jsonl');
    const p = await cli(['sync', 'src', 'dst', '--delete', '--plan', planFile], { cwd: work });
    expect(p.code).toBe(0);
    expect(p.stderr).toContain('Sync plan: src -> dst');
    expect(p.stderr).toContain('  Uploads: 2');
    expect(p.stderr).toContain('  Deletes: 1');
    expect(p.stderr).toContain(`Plan saved to: ${planFile}`);
    expect(readTree(dst)).toEqual({ 'old.txt': 'o' });
    const header = jsonl(fs.readFileSync(planFile, 'utf8'))[0]!;
    expect(header['source']).toBe('src');
    expect(header['source_resolved']).toBe(src);
    expect(header['dest_resolved']).toBe(dst);

    const a = await cli(['sync', '--apply', planFile, '-v'], { cwd: '/' });
    expect(a.code).toBe(0);
    expect(a.stderr).toContain('Executing plan...');
    expect(a.stderr).toContain('  Uploading: sub/b.txt (new file)');
    expect(a.stderr).toContain('Sync completed.');
    expect(readTree(dst)).toEqual({ 'a.txt': 'a', 'sub/b.txt': 'b' });
  });

  it('apply-mode conflicts are refused in hf order with hf messages', async () => {
    const planFile = path.join(work, 'plan.jsonl');
    fs.writeFileSync(planFile, '');
    const cases: [string[], string][] = [
      [[src, dst], 'Cannot specify source/dest when using apply.'],
      [['--plan', 'x'], 'Cannot specify both plan and apply.'],
      [['--delete'], 'Cannot specify delete when using apply.'],
      [['--ignore-times'], 'Cannot specify ignore_times when using apply.'],
      [['--include', '*'], 'Cannot specify include when using apply.'],
      [['--filter-from', 'f'], 'Cannot specify filter_from when using apply.'],
      [['--dry-run'], 'Cannot specify dry_run when using apply.'],
    ];
    for (const [extra, msg] of cases) {
      const r = await cli(['sync', '--apply', planFile, ...extra]);
      expect(r.code, msg).toBe(2);
      expect(r.stderr).toContain(msg);
    }
  });

  it('a hand-edited plan with ../ is rejected with its line number, and nothing is executed', async () => {
    writeTree(src, { 'a.txt': 'a', 'b.txt': 'b' }, T0);
    const planFile = path.join(work, 'plan.jsonl');
    await cli(['sync', src, dst, '--plan', planFile]);
    const lines = fs.readFileSync(planFile, 'utf8').split('\n');
    lines[2] = lines[2]!.replace('"b.txt"', '"../escaped.txt"');
    fs.writeFileSync(planFile, lines.join('\n'));
    const r = await cli(['sync', '--apply', planFile]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/plan\.jsonl:3: .*\.\./);
    expect(fs.existsSync(dst)).toBe(false);
    expect(fs.existsSync(path.join(work, 'escaped.txt'))).toBe(false);
  });

  it('garbage, empty and wrong-direction plans are refused before anything runs', async () => {
    const planFile = path.join(work, 'plan.jsonl');
    fs.writeFileSync(planFile, '');
    const empty = await cli(['sync', '--apply', planFile]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('Empty plan file');
    fs.writeFileSync(planFile, 'not json\n');
    const garbage = await cli(['sync', '--apply', planFile]);
    expect(garbage.code).toBe(2);
    expect(garbage.stderr).toMatch(/plan\.jsonl:1: /);
    writeTree(src, { 'a.txt': 'a' }, T0);
    fs.writeFileSync(
      planFile,
      `{"type": "header", "source": "${src}", "dest": "${dst}", "timestamp": "2026-01-01T00:00:00+00:00", "summary": {}}\n` +
        '{"type": "operation", "action": "download", "path": "a.txt", "reason": "new file", "size": 1}\n',
    );
    const wrong = await cli(['sync', '--apply', planFile]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/plan\.jsonl:2: action 'download' does not fit this plan/);
    expect(fs.existsSync(dst)).toBe(false);
  });

  it('a plan too big to pre-validate starts at once, but a bad line stops it before any delete', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 50; i++) files[`f${String(i).padStart(2, '0')}.txt`] = `${i}`;
    writeTree(src, files, T0);
    writeTree(dst, { 'zz-delete-me.txt': 'keep me' }, T0);
    const planFile = path.join(work, 'plan.jsonl');
    await cli(['sync', src, dst, '--delete', '--plan', planFile]);
    const lines = fs.readFileSync(planFile, 'utf8').split('\n');
    lines[45] = lines[45]!.replace('"upload"', '"uplaod"');
    fs.writeFileSync(planFile, lines.join('\n'));
    const r = await cli(['sync', '--apply', planFile], { env: { BUCKETSYNC_APPLY_PREVALIDATE_BYTES: '100' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("plan.jsonl:46: unknown action 'uplaod'");
    const after = readTree(dst);
    expect(after['zz-delete-me.txt']).toBe('keep me');
    expect(Object.keys(after).length).toBeGreaterThan(1); // transfers had started
    expect(Object.keys(after).length).toBeLessThanOrEqual(45);
  });

  it('stale apply: a file changed after planning is left untouched and reported, exit 1', async () => {
    writeTree(src, { 'a.txt': 'new a', 'b.txt': 'new b', 'c.txt': 'c' }, T0 + 100);
    writeTree(dst, { 'a.txt': 'old a', 'b.txt': 'old b', 'x.txt': 'delete me' }, T0);
    const planFile = path.join(work, 'plan.jsonl');
    await cli(['sync', src, dst, '--delete', '--plan', planFile]);
    // Someone edits the destination copy of a.txt, the source b.txt, and x.txt after planning.
    writeTree(dst, { 'a.txt': 'edited at the destination' }, T0 + 50);
    writeTree(src, { 'b.txt': 'edited at the source!' }, T0 + 300);
    writeTree(dst, { 'x.txt': 'someone still needs this' }, T0 + 60);
    const r = await cli(['sync', '--apply', planFile]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/stale, left untouched: a\.txt/);
    expect(r.stderr).toMatch(/stale, left untouched: b\.txt/);
    expect(r.stderr).toMatch(/stale, left untouched: x\.txt/);
    expect(readTree(dst)).toEqual({
      'a.txt': 'edited at the destination',
      'b.txt': 'old b',
      'c.txt': 'c',
      'x.txt': 'someone still needs this',
    });
  });

  it('applies a plan written in hf format (relative paths resolve against the current directory)', async () => {
    writeTree(src, { 'a.txt': 'hello', 'sub/é.txt': 'x' }, T0 + 0.25);
    writeTree(dst, { 'gone.txt': 'bye' }, T0);
    const plan =
      '{"type": "header", "source": "./src", "dest": "./dst", "timestamp": "2026-11-22T16:30:59.204322+00:00", "summary": {"uploads": 2, "downloads": 0, "deletes": 1, "skips": 0, "total_size": 6}}\n' +
      '{"type": "operation", "action": "upload", "path": "a.txt", "reason": "new file", "size": 5, "local_mtime": "2023-11-14T22:13:20.250000+00:00"}\n' +
      '{"type": "operation", "action": "delete", "path": "gone.txt", "reason": "not in source (--delete)", "size": 3, "remote_mtime": "2023-11-14T22:13:20+00:00"}\n' +
      '{"type": "operation", "action": "upload", "path": "sub/\\u00e9.txt", "reason": "new file", "size": 1, "local_mtime": "2023-11-14T22:13:20.250000+00:00"}\n';
    fs.writeFileSync(path.join(work, 'hf-plan.jsonl'), plan);
    const r = await cli(['sync', '--apply', 'hf-plan.jsonl'], { cwd: work });
    expect(r.stderr).toContain('Sync plan: ./src -> ./dst');
    expect(r.code).toBe(0);
    expect(readTree(dst)).toEqual({ 'a.txt': 'hello', 'sub/é.txt': 'x' });
  });

  it('our plan is readable by hf: header and operation keys in hf order first', async () => {
    writeTree(src, { 'a.txt': 'a' }, T0);
    writeTree(dst, { 'a.txt': 'b' }, T0);
    const r = await cli(['sync', src, dst, '--dry-run']);
    const [header, op] = r.stdout.split('\n');
    expect(Object.keys(JSON.parse(header!)).slice(0, 5)).toEqual(['type', 'source', 'dest', 'timestamp', 'summary']);
    expect(Object.keys(JSON.parse(op!)).slice(0, 7)).toEqual(['type', 'action', 'path', 'reason', 'size', 'local_mtime', 'remote_mtime']);
  });
});

describe('interruption', () => {
  it('Ctrl-C stops cleanly: exit 130, no partial file under a final name, and a re-run finishes', async () => {
    const files: Record<string, Buffer> = {};
    const big = Buffer.alloc(4 * 1024 * 1024, 7);
    for (let i = 0; i < 40; i++) files[`f${String(i).padStart(2, '0')}.bin`] = big;
    writeTree(src, files, T0);
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('../support/cli.js');
    const child = spawn(process.execPath, [BIN, 'sync', src, dst, '--transfers', '1', '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const started = new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('Uploading: f02')) resolve();
      });
    });
    await started;
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(130);
    // The first Ctrl-C finishes the file in flight (f02) and starts nothing new.
    const names = fs.readdirSync(dst);
    expect(names.filter((n) => n.startsWith('.bucketsync-tmp-'))).toEqual([]);
    expect(names).toContain('f02.bin');
    expect(names.length).toBeLessThan(40);
    for (const name of names) expect(fs.statSync(path.join(dst, name)).size, name).toBe(big.length);
    expect(stderr).not.toMatch(/abort/i);
    const rerun = await cli(['sync', src, dst]);
    expect(rerun.code).toBe(0);
    expect(fs.readdirSync(dst).sort()).toEqual(Object.keys(files).sort());
  });
});

describe('guard rails', () => {
  it('--delete with an empty source refuses to wipe a non-empty destination unless --allow-empty-source', async () => {
    writeTree(dst, { 'precious.txt': 'p', 'sub/more.txt': 'm' }, T0);
    const r = await cli(['sync', src, dst, '--delete']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('the source has no files, and --delete would delete everything at the destination');
    expect(r.stderr).toContain('--allow-empty-source');
    expect(readTree(dst)).toEqual({ 'precious.txt': 'p', 'sub/more.txt': 'm' });
    const plan = await cli(['sync', src, dst, '--delete', '--plan', path.join(work, 'p.jsonl')]);
    expect(plan.code).toBe(2);
    expect(fs.existsSync(path.join(work, 'p.jsonl'))).toBe(false);
    const allowed = await cli(['sync', src, dst, '--delete', '--allow-empty-source']);
    expect(allowed.code).toBe(0);
    expect(readTree(dst)).toEqual({});
  });

  it('a second run writing into the same destination is refused with the holder PID; a stale lock is taken over', async () => {
    const cacheDir = path.join(work, 'cache');
    const env = { BUCKETSYNC_CACHE_DIR: cacheDir };
    writeTree(src, { 'a.txt': 'a' }, T0);
    const { lockDestination } = await import('../../src/lock/lock.js');
    const { parseLocation } = await import('../../src/stores/registry.js');
    const held = lockDestination(parseLocation(dst));
    try {
      const r = await cli(['sync', src, dst], { env });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`another bucketsync run (PID ${process.pid}`);
      expect(fs.existsSync(dst)).toBe(false);
    } finally {
      held.release();
    }
    // A lock left by a process that no longer exists is taken over.
    fs.writeFileSync(held.file!, JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), dest: dst, started: 'x' }));
    const r2 = await cli(['sync', src, dst], { env });
    expect(r2.code).toBe(0);
    expect(fs.existsSync(held.file!)).toBe(false);
  });
});

describe('re-applying a plan', () => {
  it('an interrupted apply converges when the same plan is applied again (done work is not "stale")', async () => {
    writeTree(src, { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c' }, T0);
    writeTree(dst, { 'old1.txt': 'o', 'old2.txt': 'o' }, T0);
    const planFile = path.join(work, 'plan.jsonl');
    await cli(['sync', src, dst, '--delete', '--plan', planFile]);
    // Simulate an earlier, interrupted apply: a.txt copied (with its mtime), old1.txt deleted.
    fs.copyFileSync(path.join(src, 'a.txt'), path.join(dst, 'a.txt'));
    setMtime(path.join(dst, 'a.txt'), T0);
    fs.rmSync(path.join(dst, 'old1.txt'));
    const r = await cli(['sync', '--apply', planFile, '--json']);
    expect(r.code).toBe(0);
    const summary = jsonl(r.stdout).at(-1)!;
    expect(summary['already_done']).toBe(2);
    expect(summary['stale']).toBe(0);
    expect(r.stderr).toContain('(+2 already done by an earlier run)');
    expect(readTree(dst)).toEqual({ 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c' });
  });
});
