/**
 * Issue 13, class 5 (and the plan side of class 9): a plan cannot make `--apply` do what the
 * planner never would. Hostile plans go through the real CLI (`bucketsync sync --apply`):
 * deletes without the version they expect, a path twice, unsafe paths, resolved locations
 * pointing elsewhere, hand-edited types, special files. Each must be refused (exit 2, one
 * line naming the plan line) with nothing changed anywhere. Second pass: relative spellings
 * (`..`-only ones too) must resolve from one folder; one name spelled twice (surrogateescape);
 * operations the header's options or filters rule out; temporary names; forged hashes
 * (metadata-only updates and copies are sent in full unless proven); --max-delete counts
 * every delete before any runs.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, readTree, summaryEvent, tempDir, writeTree } from '../support/cli.js';

const T0 = 1_700_000_000;
const ISO0 = new Date(T0 * 1000).toISOString().replace('Z', '+00:00');

let work: string;
let src: string;
let dst: string;
let outside: string;

beforeEach(() => {
  work = tempDir('bucketsync-plans-');
  src = path.join(work, 'src');
  dst = path.join(work, 'dst');
  outside = path.join(work, 'outside');
  writeTree(src, { 'a.txt': 'new-a', 'b.txt': 'new-b' }, T0 + 100);
  writeTree(dst, { 'a.txt': 'old-a', 'keep.txt': 'keep', 'victim.txt': 'victim' }, T0);
  writeTree(outside, { 'a.txt': 'outside-a', 'secret.txt': 'secret' }, T0);
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

type Line = Record<string, unknown>;

function header(extra: Line = {}): Line {
  return {
    type: 'header',
    source: src,
    dest: dst,
    timestamp: ISO0,
    summary: { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 },
    ...extra,
  };
}

function writePlan(lines: (Line | string)[], name = 'plan.jsonl'): string {
  const file = path.join(work, name);
  fs.writeFileSync(file, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return file;
}

const up = (p: string, extra: Line = {}): Line => ({ type: 'operation', action: 'upload', path: p, reason: 'new file', size: 5, local_mtime: ISO0, ...extra });
const del = (p: string, extra: Line = {}): Line => ({ type: 'operation', action: 'delete', path: p, reason: 'not in source (--delete)', ...extra });

/** Both trees and the outside folder, to prove that nothing changed. */
function snapshot(): unknown {
  return { src: readTree(src), dst: readTree(dst), outside: readTree(outside) };
}

async function expectRefused(file: string, pattern: RegExp, args: string[] = [], cwd?: string): Promise<string> {
  const before = snapshot();
  const r = await cli(['sync', '--apply', file, ...args], cwd ? { cwd } : {});
  expect(r.stderr).toMatch(pattern);
  expect(r.code).toBe(2);
  expect(r.stderr).not.toContain('BUCKETSYNC_DEBUG');
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(snapshot()).toEqual(before);
  return r.stderr;
}

describe('--apply: destructive operations carry the version they expect', () => {
  it('refuses deletes without size, without mtime, or with only the source-side mtime, naming the line', async () => {
    await expectRefused(writePlan([header(), del('victim.txt')]), /plan\.jsonl:2: delete of 'victim\.txt' has no 'size'/);
    await expectRefused(writePlan([header(), del('victim.txt', { size: 6 })]), /plan\.jsonl:2: delete of 'victim\.txt' has no 'local_mtime' or 'remote_mtime'/);
    await expectRefused(writePlan([header(), del('victim.txt', { size: 6, remote_mtime: null })]), /plan\.jsonl:2: .*has no 'local_mtime'/);
    // Upload direction: the destination's mtime is remote_mtime; local_mtime says nothing about it.
    await expectRefused(writePlan([header(), up('a.txt', { remote_mtime: ISO0, dest_size: 5 }), del('victim.txt', { size: 6, local_mtime: ISO0 })]), /plan\.jsonl:3: delete of 'victim\.txt' has no 'remote_mtime'/);
  });

  it('a delete with the right version runs; one whose version no longer matches is stale and leaves the file', async () => {
    const ok = await cli(['sync', '--apply', writePlan([header(), del('victim.txt', { size: 6, remote_mtime: ISO0 })])]);
    expect(ok.code).toBe(0);
    expect(fs.existsSync(path.join(dst, 'victim.txt'))).toBe(false);
    const stale = await cli(['sync', '--apply', writePlan([header(), del('keep.txt', { size: 999, remote_mtime: ISO0 })])]);
    expect(stale.code).toBe(1);
    expect(readTree(dst)['keep.txt']).toBe('keep');
  });

  it('an upload whose destination version was edited out does not overwrite the existing file', async () => {
    const r = await cli(['sync', '--apply', writePlan([header(), up('a.txt')])]);
    expect(r.code).toBe(1);
    expect(readTree(dst)['a.txt']).toBe('old-a');
  });
});

describe('--apply: a path appears at most once, in the order plans are written', () => {
  it('refuses an upload plus a delete of one path, two uploads, and out-of-order paths', async () => {
    const d = { size: 5, remote_mtime: ISO0 };
    await expectRefused(writePlan([header(), up('b.txt'), del('b.txt', d)]), /plan\.jsonl:3: path 'b\.txt' appears twice \(also on line 2\)/);
    await expectRefused(writePlan([header(), up('b.txt'), up('b.txt')]), /plan\.jsonl:3: path 'b\.txt' appears twice/);
    await expectRefused(writePlan([header(), up('b.txt'), { type: 'operation', action: 'skip', path: 'b.txt', reason: 'identical' }]), /:3: path 'b\.txt' appears twice/);
    await expectRefused(writePlan([header(), up('b.txt'), del('a.txt', d)]), /plan\.jsonl:3: path 'a\.txt' is out of order/);
    // a duplicate far apart is still found (sorted order makes it adjacent or out of order)
    await expectRefused(writePlan([header(), up('b.txt'), up('c.txt', { size: 1 }), up('b.txt')]), /plan\.jsonl:4: path 'b\.txt' is out of order/);
  });
});

describe('--apply: plan paths are safe relative paths', () => {
  const bad: [string, RegExp][] = [
    ['../outside/secret.txt', /'\.\.' segment/],
    ['sub/../../outside/secret.txt', /'\.\.' segment/],
    ['/etc/hostname', /is absolute/],
    ['./a.txt', /'\.' segment/],
    ['a//b.txt', /empty segment/],
    ['', /is empty/],
    ['a\\..\\b.txt', /backslash/],
    ['a\u0000b', /NUL/],
  ];
  it.each(bad)('refuses %j as an upload and as a delete', async (p, why) => {
    await expectRefused(writePlan([header(), up(p)]), why);
    await expectRefused(writePlan([header(), del(p, { size: 6, remote_mtime: ISO0 })]), why);
  });
});

describe('--apply: the plan is what it says, or it is refused', () => {
  it('refuses hand-edited types, naming the line', async () => {
    await expectRefused(writePlan([header(), up('b.txt', { size: '5' })]), /plan\.jsonl:2: operation 'size' must be a non-negative integer/);
    await expectRefused(writePlan([header(), up('b.txt', { size: -1 })]), /:2: operation 'size'/);
    await expectRefused(writePlan([header(), { type: 'operation', action: 'upload', path: 7, reason: '' }]), /:2: operation 'path' must be a string/);
    await expectRefused(writePlan([header(), { type: 'operation', action: 'remove', path: 'b.txt' }]), /:2: unknown action 'remove'/);
    await expectRefused(writePlan([header(), del('victim.txt', { size: 6, remote_mtime: 1700000000 })]), /:2: operation 'remote_mtime' must be a string/);
    await expectRefused(writePlan([header(), del('victim.txt', { size: 6, remote_mtime: 'yesterday' })]), /:2: invalid remote_mtime/);
    await expectRefused(writePlan([header({ source_resolved: 5 }), up('b.txt')]), /:1: header 'source_resolved' must be a string/);
    await expectRefused(writePlan([header(), '[1,2]']), /:2: expected a plan line/);
  });

  it('refuses resolved locations that are not where source/dest resolve, and names --trust-resolved', async () => {
    // The seen attack: source_resolved=/etc reads /etc/hostname into the destination.
    const etc = await expectRefused(
      writePlan([header({ source_resolved: '/etc', dest_resolved: dst }), up('hostname', { size: 1 })]),
      /source_resolved '\/etc' is not where source .* resolves to.*--trust-resolved/,
    );
    expect(etc.split('\n').filter((l) => l.startsWith('Error:'))).toHaveLength(1);
    expect(fs.existsSync(path.join(dst, 'hostname'))).toBe(false);
    // dest_resolved elsewhere: the delete would hit outside/secret.txt.
    await expectRefused(
      writePlan([header({ source_resolved: src, dest_resolved: outside }), del('secret.txt', { size: 6, remote_mtime: ISO0 })]),
      /dest_resolved '.*outside' is not where dest .* resolves to/,
    );
    // Relative spellings resolved from two different folders cannot come from one planner run.
    await expectRefused(
      writePlan([header({ source: 'src', dest: 'dst', source_resolved: src, dest_resolved: path.join(outside, 'dst') }), up('b.txt')]),
      /not resolved from one directory/,
      [],
      work,
    );
    await expectRefused(
      writePlan([header({ source: '.', dest: 'dst', source_resolved: '/etc', dest_resolved: dst }), up('hostname', { size: 1 })]),
      /not resolved from one directory/,
      [],
      work,
    );
  });

  it('--trust-resolved without --apply is bad input', async () => {
    const r = await cli(['sync', src, dst, '--trust-resolved']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--trust-resolved only applies to --apply');
  });

  it('with --trust-resolved the resolved locations are applied, and named before anything runs', async () => {
    const file = writePlan([header({ source_resolved: outside, dest_resolved: dst }), up('secret.txt', { size: 6 })]);
    const r = await cli(['sync', '--apply', file, '--trust-resolved', '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`reading ${outside}, writing ${dst}`);
    expect(readTree(dst)['secret.txt']).toBe('secret');
    const s = summaryEvent(r.stdout);
    expect(s['source_resolved']).toBe(outside);
    expect(s['dest_resolved']).toBe(dst);
  });

  it('a plan made with relative paths applies from another directory and names the resolved locations', async () => {
    const plan = path.join(work, 'p.jsonl');
    const made = await cli(['sync', 'src', 'dst', '--delete', '--plan', plan], { cwd: work });
    expect(made.code).toBe(0);
    const r = await cli(['sync', '--apply', plan, '--json'], { cwd: '/' });
    expect(r.stderr).toContain(`Applying ${plan}: reading ${src}, writing ${dst}`);
    expect(r.stderr).toContain('Sync plan: src -> dst'); // hf's line, the header's words, after the resolved ones
    expect(r.code).toBe(0);
    const s = summaryEvent(r.stdout);
    expect([s['source'], s['dest'], s['source_resolved'], s['dest_resolved']]).toEqual(['src', 'dst', src, dst]);
    expect(readTree(dst)).toEqual({ 'a.txt': 'new-a', 'b.txt': 'new-b' });
  });

  it("an hf-written plan (no bucketsync extras) still applies, relative to the current directory", async () => {
    const hfPlan = [
      { type: 'header', source: 'src', dest: 'dst', timestamp: ISO0, summary: { uploads: 1, downloads: 0, deletes: 1, skips: 1, total_size: 5 } },
      { type: 'operation', action: 'upload', path: 'a.txt', reason: 'local newer', size: 5, local_mtime: new Date((T0 + 100) * 1000).toISOString().replace('Z', '+00:00'), remote_mtime: ISO0 },
      { type: 'operation', action: 'skip', path: 'b.txt', reason: 'identical', size: 5, local_mtime: ISO0, remote_mtime: ISO0 },
      { type: 'operation', action: 'delete', path: 'victim.txt', reason: 'not in source (--delete)', size: 6, remote_mtime: ISO0 },
    ];
    const file = writePlan(hfPlan, 'hf.jsonl');
    const r = await cli(['sync', '--apply', 'hf.jsonl'], { cwd: work });
    expect(r.stderr).toContain(`reading ${src}, writing ${dst}`);
    expect(r.code).toBe(0);
    expect(readTree(dst)).toEqual({ 'a.txt': 'new-a', 'keep.txt': 'keep' });
    expect(fs.existsSync(file)).toBe(true);
  });
});

describe('--apply and plan show: special files are refused by name, without hanging', () => {
  it('a fifo, /dev/zero, a directory', async () => {
    const fifo = path.join(work, 'plan.fifo');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    await expectRefused(fifo, /Plan file is a named pipe \(fifo\), not a regular file: .*plan\.fifo/);
    await expectRefused('/dev/zero', /Plan file is a character device, not a regular file: \/dev\/zero/);
    await expectRefused(work, /Plan file is a directory/);
    const show = await cli(['plan', 'show', fifo]);
    expect(show.code).toBe(2);
    expect(show.stderr).toMatch(/named pipe/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('a line longer than 1 MiB is refused, naming the line', async () => {
    await expectRefused(writePlan([header(), up('b.txt', { reason: 'x'.repeat(1024 * 1024 + 10) })]), /plan\.jsonl:2: line is longer than 1048576 bytes/);
  });
});

describe('--apply: a hostile plan cannot reach past what the planner would do (second pass)', () => {
  const ISO1 = new Date((T0 + 100) * 1000).toISOString().replace('Z', '+00:00');

  it('resolved locations: every relative spelling, `..`-only ones included, resolves from ONE folder', async () => {
    const loot = path.join(work, 'loot');
    const cases: [Line, string][] = [
      // The seen attack: `..` and `../..` took part in nothing, so any two folders passed.
      [{ source: '..', dest: '../..', source_resolved: outside, dest_resolved: loot }, dst],
      // `..` (parent of D = outside) and `dst` (D = work) cannot both hold.
      [{ source: '..', dest: 'dst', source_resolved: outside, dest_resolved: path.join(work, 'dst') }, work],
      [{ source: 'src', dest: '..', source_resolved: src, dest_resolved: loot }, work],
      // `.` says D is the resolved folder itself: its parent is not the loot folder.
      [{ source: '.', dest: '..', source_resolved: outside, dest_resolved: loot }, '/'],
      // '../x/..' is '..': its parent-of-D (outside) is not '../loot''s (work).
      [{ source: '../x/..', dest: '../loot', source_resolved: outside, dest_resolved: loot }, '/'],
    ];
    for (const [h, cwd] of cases) {
      const err = await expectRefused(writePlan([header(h), up('secret.txt', { size: 6, local_mtime: ISO0 })]), /not (where|resolved from one directory).*--trust-resolved/, [], cwd);
      expect(err.split('\n').filter((l) => l.startsWith('Error:'))).toHaveLength(1);
      expect(fs.existsSync(loot)).toBe(false);
    }
  });

  it('resolved locations: a plan made with `.` and `..` spellings still applies from anywhere', async () => {
    const plan = path.join(work, 'rel.jsonl');
    const made = await cli(['sync', '.', '../dst', '--plan', plan], { cwd: src });
    expect(made.code).toBe(0);
    const h = JSON.parse(fs.readFileSync(plan, 'utf8').split('\n')[0]!) as Line;
    expect([h['source'], h['dest'], h['source_resolved'], h['dest_resolved']]).toEqual(['.', '../dst', src, dst]);
    const r = await cli(['sync', '--apply', plan], { cwd: '/' });
    expect(r.stderr).toContain(`reading ${src}, writing ${dst}`);
    expect(r.code).toBe(0);
    expect(readTree(dst)['b.txt']).toBe('new-b');
  });

  it('one path spelled twice (escaped bytes that are valid UTF-8) is refused, naming the line', async () => {
    writeTree(src, { 'aé': 'new-e' }, T0 + 100);
    // An upload of 'aé' and a delete of the same bytes escaped would delete what it uploaded.
    const err = await expectRefused(
      writePlan([header({ options: { delete: true } }), up('aé', { local_mtime: ISO1 }), del('a\udcc3\udca9', { size: 5, remote_mtime: ISO1 })]),
      /plan\.jsonl:3: path 'a\\udcc3\\udca9' is not spelled canonically: its bytes read as 'aé'/,
    );
    expect(err).not.toMatch(/[\ud800-\udfff]/);
    // Also alone, and as a copy source; a name that really is not UTF-8 stays accepted (plan show).
    await expectRefused(writePlan([header(), del('d\udcc3\udca9/x', { size: 6, remote_mtime: ISO0 })]), /plan\.jsonl:2: path 'd\\udcc3\\udca9\/x' is not spelled canonically/);
    await expectRefused(writePlan([header(), up('b.txt', { hash: 'xxh128:00', copy_from: 'k\udce2\udc82\udcac' })]), /plan\.jsonl:2: copy_from 'k\\udce2\\udc82\\udcac' is not spelled canonically: its bytes read as 'k€'/);
    await expectRefused(writePlan([header(), up('lone\ud800')]), /plan\.jsonl:2: path 'lone\\ud800' is not spelled canonically/);
    const ok = await cli(['plan', 'show', writePlan([header(), up('raw\udcff.txt')], 'ok.jsonl')]);
    expect(ok.code).toBe(0);
  });

  it('deletes in a plan whose header says "delete": false are refused', async () => {
    await expectRefused(
      writePlan([header({ options: { delete: false } }), del('victim.txt', { size: 6, remote_mtime: ISO0 })]),
      /plan\.jsonl:2: delete of 'victim\.txt', but the header says "delete": false/,
    );
    // The same delete with "delete": true (or no options, as hf writes) runs.
    const r = await cli(['sync', '--apply', writePlan([header({ options: { delete: true } }), del('victim.txt', { size: 6, remote_mtime: ISO0 })])]);
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(dst, 'victim.txt'))).toBe(false);
  });

  it('--existing plans create nothing, --ignore-existing plans replace nothing', async () => {
    await expectRefused(writePlan([header({ options: { existing: true } }), up('b.txt')]), /plan\.jsonl:2: upload of 'b\.txt' creates a file, but the header says "existing": true/);
    await expectRefused(
      writePlan([header({ options: { ignore_existing: true } }), up('a.txt', { local_mtime: ISO1, dest_size: 5, remote_mtime: ISO0 })]),
      /plan\.jsonl:2: upload of 'a\.txt' replaces a file \('dest_size'\), but the header says "ignore_existing": true/,
    );
  });

  it("bucketsync's temporary names (another run's transfer in progress) are never deleted or written", async () => {
    const tmp = '.bucketsync-tmp-0123abcd-4242-89abcdef-victim.txt';
    writeTree(dst, { [tmp]: 'half' }, T0);
    await expectRefused(writePlan([header(), del(tmp, { size: 4, remote_mtime: ISO0 })]), /plan\.jsonl:2: delete of '\.bucketsync-tmp-0123abcd-4242-89abcdef-victim\.txt': bucketsync's temporary files are never planned/);
    await expectRefused(writePlan([header(), up(`sub/${tmp}`, { size: 4 })]), /temporary files are never planned/);
    expect(readTree(dst)[tmp]).toBe('half');
  });

  it("paths the plan's own filters exclude are refused (they would let a plan reach past the overlap check)", async () => {
    // The source lives inside the destination; the filters exclude it, so the overlap is allowed.
    const inner = path.join(dst, 'sub');
    writeTree(inner, { 'f.txt': 'source' }, T0);
    const h = header({ source: inner, dest: dst, filters: { include: [], exclude: ['sub/*'], filter_from: null, rules: [] } });
    // A delete of sub/f.txt would remove the source's own file.
    await expectRefused(writePlan([h, del('sub/f.txt', { size: 6, remote_mtime: ISO0 })]), /plan\.jsonl:2: delete of 'sub\/f\.txt' is excluded by the plan's own filters/);
    await expectRefused(writePlan([h, up('sub/f.txt', { size: 6, local_mtime: ISO0 })]), /plan\.jsonl:2: upload of 'sub\/f\.txt' is excluded/);
    expect(readTree(inner)).toEqual({ 'f.txt': 'source' });
  });

  it('--max-delete counts every delete of the plan, a delete in the way of a transfer included', async () => {
    // dst/a.txt is a file where the source now has a folder a.txt/: its delete runs early
    // (type changes converge in one run), but not when the plan's 3 deletes exceed the limit.
    fs.rmSync(path.join(src, 'a.txt'));
    writeTree(src, { 'a.txt/x': 'x' }, T0 + 100);
    const plan = path.join(work, 'md.jsonl');
    expect((await cli(['sync', src, dst, '--delete', '--plan', plan])).code).toBe(0);
    for (const run of [['sync', '--apply', plan, '--max-delete', '2'], ['sync', src, dst, '--delete', '--max-delete', '2']]) {
      const r = await cli(run);
      // The upload into a.txt/ then fails (a file is in the way), so the deletes are not run.
      expect(r.stderr).toMatch(/3 delete\(s\) not run/);
      expect(r.code).toBe(1);
      expect(fs.statSync(path.join(dst, 'a.txt')).isFile()).toBe(true);
      expect(readTree(dst)).toMatchObject({ 'a.txt': 'old-a', 'keep.txt': 'keep', 'victim.txt': 'victim' });
    }
    // Within the limit the type change converges in one run.
    const ok = await cli(['sync', '--apply', plan, '--max-delete', '3']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readTree(dst)).toEqual({ 'a.txt/x': 'x', 'b.txt': 'new-b' });
  });

  it('skips name nothing outside the destination either; a header summary that lies is not what is shown', async () => {
    const skip = (p: string): Line => ({ type: 'operation', action: 'skip', path: p, reason: 'source unreadable (not deleted)' });
    await expectRefused(writePlan([header(), skip('../outside/')]), /plan\.jsonl:2: unsafe path '\.\.\/outside\/': has a '\.\.' segment/);
    await expectRefused(writePlan([header(), skip('/etc/')]), /plan\.jsonl:2: unsafe path '\/etc\/': is absolute/);
    await expectRefused(writePlan([header(), skip('a/../../')]), /'\.\.' segment/);
    // The header claims nothing to do; the run shows (and does) what the lines say.
    const r = await cli(['sync', '--apply', writePlan([header(), up('b.txt', { local_mtime: ISO1 })]), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Uploads: 1\n/);
    expect(summaryEvent(r.stdout)['plan']).toMatchObject({ uploads: 1, total_size: 5 });
  });

  it('--max-delete counts the real deletes, not the header summary', async () => {
    const lying = header({ summary: { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 } });
    const plan = [lying, del('keep.txt', { size: 4, remote_mtime: ISO0 }), del('victim.txt', { size: 6, remote_mtime: ISO0 })];
    for (const env of [{}, { BUCKETSYNC_APPLY_PREVALIDATE_BYTES: '1' }]) {
      const before = readTree(dst);
      const r = await cli(['sync', '--apply', writePlan(plan), '--max-delete', '1'], { env });
      expect(r.stderr).toMatch(/more than --max-delete 1/);
      expect(r.code).not.toBe(0);
      expect(readTree(dst)).toEqual(before);
    }
  });
});

describe('--apply: a metadata-only update runs only where both sides provably hold the same bytes', () => {
  const ISO1 = new Date((T0 + 100) * 1000).toISOString().replace('Z', '+00:00');
  const mtimeOnly = (hash: string): Line =>
    up('a.txt', { reason: 'same content, mtime differs', mtime_only: true, hash, local_mtime: ISO1, dest_size: 5, remote_mtime: ISO0 });

  /** The real xxh128 of `content`, as a plan made by `sync --dedup` spells it. */
  async function realHash(content: string): Promise<string> {
    const x = path.join(work, 'hx');
    const y = path.join(work, 'hy');
    writeTree(x, { 'a.txt': content }, T0 + 100);
    writeTree(y, { 'a.txt': content }, T0);
    const plan = path.join(work, 'h.jsonl');
    expect((await cli(['sync', x, y, '--dedup', '--plan', plan])).code).toBe(0);
    const op = fs.readFileSync(plan, 'utf8').split('\n').map((l) => (l ? (JSON.parse(l) as Line) : {})).find((l) => l['path'] === 'a.txt')!;
    expect(op['mtime_only']).toBe(true);
    return op['hash'] as string;
  }

  it('a forged hash does not re-stamp different bytes as identical: the file is sent', async () => {
    // dst/a.txt holds 'old-a'; a re-stamp would make every later run call it identical to 'new-a'.
    for (const hash of ['xxh128:' + '0'.repeat(32), await realHash('old-a'), await realHash('new-a')]) {
      writeTree(dst, { 'a.txt': 'old-a' }, T0);
      const r = await cli(['sync', '--apply', writePlan([header(), mtimeOnly(hash)]), '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(readTree(dst)['a.txt']).toBe('new-a');
      expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 1, metadata_updated: 0 });
    }
  });

  it('a copy whose hash the source does not hold copies nothing: the source file is sent', async () => {
    // pub.txt in the source is 'PUBLIC'; a copy of the destination's victim.txt (same size)
    // under the hash of 'victim' would publish the victim's bytes as pub.txt.
    writeTree(src, { 'pub.txt': 'PUBLIC' }, T0 + 100);
    const hash = await realHash('victim');
    const forged = up('pub.txt', { size: 6, local_mtime: ISO1, hash, copy_from: 'victim.txt' });
    const r = await cli(['sync', '--apply', writePlan([header(), forged]), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(readTree(dst)['pub.txt']).toBe('PUBLIC');
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 1, copied: 0 });
    // Without a hash a copy proves nothing: refused as the planner never writes one.
    await expectRefused(writePlan([header(), up('pub2.txt', { size: 6, copy_from: 'victim.txt' })]), /plan\.jsonl:2: upload of 'pub2\.txt' has a 'copy_from' but is not an upload with a 'hash'/);
  });

  it('a real copy (the source holds the hash) is still a copy', async () => {
    writeTree(src, { 'v2.txt': 'victim' }, T0 + 100);
    const r = await cli(['sync', '--apply', writePlan([header(), up('v2.txt', { size: 6, local_mtime: ISO1, hash: await realHash('victim'), copy_from: 'victim.txt' })]), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(readTree(dst)['v2.txt']).toBe('victim');
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 0, copied: 1 });
  });

  it('a real metadata-only update still sends no bytes', async () => {
    writeTree(dst, { 'a.txt': 'new-a' }, T0);
    const r = await cli(['sync', '--apply', writePlan([header(), mtimeOnly(await realHash('new-a'))]), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 0, metadata_updated: 1 });
    expect(fs.statSync(path.join(dst, 'a.txt')).mtimeMs).toBe((T0 + 100) * 1000);
  });
});
