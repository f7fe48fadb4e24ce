/**
 * Safety of the sync pipeline through the real CLI (issue 13):
 * - class 1: whatever a source listing could not show never leads to a delete, is counted
 *   (human summary, --json summary, events) and makes the exit code 3 — never a clean-looking run;
 * - class 6: overlapping source and destination are refused (exit 2, one line, nothing touched),
 *   however spelled (symlinks, S3 prefixes of one bucket), unless the filters exclude the overlap.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, jsonl, nobodyIds, readTree, summaryEvent, tempDir, writeTree, type CliOptions } from '../support/cli.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const T0 = 1_700_000_000;
const NOBODY = nobodyIds() ?? { uid: 65534, gid: 65534 };
const isRoot = process.getuid?.() === 0;

let work: string;
beforeEach(() => {
  work = tempDir('bucketsync-safety-sync-');
});
afterEach(() => {
  // folders made unreadable by a test must be readable again to be removed
  const walk = (d: string): void => {
    try {
      fs.chmodSync(d, 0o755);
      for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory() && !e.isSymbolicLink()) walk(path.join(d, e.name));
    } catch {
      /* gone */
    }
  };
  walk(work);
  fs.rmSync(work, { recursive: true, force: true });
});

/** The CLI as an unprivileged user (root reads every folder), with its caches in the work folder. */
function asUser(args: string[], opts: CliOptions = {}) {
  const home = path.join(work, 'home');
  fs.mkdirSync(home, { recursive: true, mode: 0o777 });
  fs.chmodSync(home, 0o777);
  return cli(args, {
    ...opts,
    ...(isRoot ? { uid: NOBODY.uid, gid: NOBODY.gid } : {}),
    env: { HOME: home, XDG_CACHE_HOME: path.join(home, '.cache'), BUCKETSYNC_CACHE_DIR: path.join(home, 'bscache'), ...opts.env },
  });
}

/** A filter file with these rules, in the work folder. */
function writeFilter(lines: string[]): string {
  const f = path.join(work, `filter-${lines.length}-${Math.random().toString(36).slice(2)}.txt`);
  fs.writeFileSync(f, `${lines.join('\n')}\n`);
  return f;
}

/** Makes the work tree usable by the unprivileged user. */
function openUp(): void {
  fs.chmodSync(work, 0o777);
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isSymbolicLink()) continue;
      fs.chmodSync(p, e.isDirectory() ? 0o777 : 0o666);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(work);
}

describe('class 1: a listing error never leads to a delete', () => {
  it('an unreadable source folder: its destination files are kept, counted, exit 3 (sync, --dry-run, --plan, --json)', async () => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    writeTree(src, { 'a.txt': 'a', 'd/f': 'f', 'd/g/h': 'h', 'e.txt': 'e' }, T0);
    writeTree(dst, { 'a.txt': 'a', 'd/f': 'f', 'd/g/h': 'h', 'e.txt': 'e', 'gone.txt': 'x' }, T0);
    openUp();
    fs.chmodSync(path.join(src, 'd'), 0o000);

    const dry = await asUser(['sync', src, dst, '--delete', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(3);
    const ops = jsonl(dry.stdout).slice(1);
    expect(ops.filter((o) => o['action'] === 'delete').map((o) => o['path'])).toEqual(['gone.txt']);
    expect(ops.filter((o) => o['reason'] === 'source unreadable (not deleted)').map((o) => o['path'])).toEqual(['d/f', 'd/g/h']);
    expect(dry.stderr).toMatch(/cannot read directory d/);
    expect(dry.stderr).toMatch(/1 entry could not be listed, read or represented.*2 deletes they could hide were not planned; exit code 3/);

    const planFile = path.join(work, 'plan.jsonl');
    const planned = await asUser(['sync', src, dst, '--delete', '--plan', planFile]);
    expect(planned.code, planned.stderr).toBe(3);
    expect(fs.readFileSync(planFile, 'utf8')).not.toMatch(/"action": ?"delete", ?"path": ?"d\//);

    const run = await asUser(['sync', src, dst, '--delete', '--json']);
    expect(run.code, run.stderr).toBe(3);
    expect(run.stderr).not.toMatch(/^Sync completed\.$/m);
    const summary = summaryEvent(run.stdout);
    expect(summary).toMatchObject({ exit_code: 3, entries_skipped: 1, deletes_suppressed: 2, deleted: 1 });
    expect(jsonl(run.stdout).filter((e) => e['event'] === 'skip' && String(e['reason']).startsWith('source entry skipped')).map((e) => e['path'])).toEqual(['d/']);
    fs.chmodSync(path.join(src, 'd'), 0o777);
    expect(readTree(dst)).toEqual({ 'a.txt': 'a', 'd/f': 'f', 'd/g/h': 'h', 'e.txt': 'e' });
  });

  it('an unreadable nested folder and an unreadable file: only what they could hide is kept', async () => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    writeTree(src, { 'x/keep.txt': 'k', 'x/y/z.txt': 'z', 'secret.bin': 's' }, T0);
    writeTree(dst, { 'x/keep.txt': 'k', 'x/y/z.txt': 'z', 'x/y/old.txt': 'o', 'x/old.txt': 'o', 'secret.bin': 's' }, T0);
    openUp();
    fs.chmodSync(path.join(src, 'x', 'y'), 0o000);
    fs.chmodSync(path.join(src, 'secret.bin'), 0o000);
    const run = await asUser(['sync', src, dst, '--delete']);
    expect(run.code, run.stderr).toBe(3);
    fs.chmodSync(path.join(src, 'x', 'y'), 0o777);
    // x/old.txt is really gone from the source: deleted; what the unreadable parts could hide stays
    expect(Object.keys(readTree(dst))).toEqual(['secret.bin', 'x/keep.txt', 'x/y/old.txt', 'x/y/z.txt']);
  });

  it('a source with only an unreadable root deletes nothing', async () => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    writeTree(src, { 'a.txt': 'a' }, T0);
    writeTree(dst, { 'a.txt': 'a', 'b.txt': 'b' }, T0);
    openUp();
    fs.chmodSync(src, 0o000);
    const run = await asUser(['sync', src, dst, '--delete', '--allow-empty-source']);
    expect([2, 3]).toContain(run.code);
    fs.chmodSync(src, 0o777);
    expect(readTree(dst)).toEqual({ 'a.txt': 'a', 'b.txt': 'b' });
  });

  it('special files and symlinked folders in the source are skipped, counted, and hide their deletes', async () => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    const outside = path.join(work, 'outside');
    writeTree(src, { 'a.txt': 'a' }, T0);
    writeTree(outside, { 'o.txt': 'o' }, T0);
    fs.symlinkSync(outside, path.join(src, 'linked'));
    const fifo = path.join(src, 'pipe');
    const mk = await import('node:child_process').then((cp) => cp.spawnSync('mkfifo', [fifo]));
    expect(mk.status).toBe(0);
    writeTree(dst, { 'a.txt': 'a', 'linked/o.txt': 'o', pipe: 'was a file' }, T0);
    const run = await cli(['sync', src, dst, '--delete', '--json']);
    expect(run.code, run.stderr).toBe(3);
    expect(summaryEvent(run.stdout)).toMatchObject({ entries_skipped: 2, deletes_suppressed: 2, deleted: 0 });
    expect(readTree(dst)).toEqual({ 'a.txt': 'a', 'linked/o.txt': 'o', pipe: 'was a file' });
  });

  it('a clean run still exits 0 and says "Sync completed."', async () => {
    const src = path.join(work, 'src');
    writeTree(src, { 'a.txt': 'a' }, T0);
    const run = await cli(['sync', src, path.join(work, 'dst'), '--delete']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/^Sync completed\.$/m);
  });
});

describe('class 4 under the delete rules: a type change never deletes ahead of the rules', () => {
  it('--max-delete counts the delete a type change needs: nothing is deleted past it', async () => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    writeTree(src, { 'a/x': 'new' }, T0);
    writeTree(dst, { a: 'old a', z1: '1', z2: '2', z3: '3', z4: '4', z5: '5' }, T0);
    const r = await cli(['sync', src, dst, '--delete', '--max-delete', '2']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/the plan deletes 6 files, more than --max-delete 2; nothing was deleted/);
    expect(readTree(dst)).toEqual({ a: 'old a', z1: '1', z2: '2', z3: '3', z4: '4', z5: '5' });
  });

  it('a type change whose source cannot be read deletes nothing (the old file stays)', async () => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    writeTree(src, { 'a/x': 'new', 'b.txt': 'b' }, T0);
    writeTree(dst, { a: 'precious' }, T0);
    openUp();
    fs.chmodSync(path.join(src, 'a', 'x'), 0o000);
    const r = await asUser(['sync', src, dst, '--delete']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/a\/x/);
    expect(fs.readFileSync(path.join(dst, 'a'), 'utf8')).toBe('precious');
    expect(fs.readFileSync(path.join(dst, 'b.txt'), 'utf8')).toBe('b');
  });
});

describe('class 6: overlapping source and destination are refused', () => {
  const refused = (r: { code: number | null; stderr: string; stdout: string }) => {
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/overlap|same place/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  };

  it('destination inside the source, source inside the destination, the same folder — however spelled', async () => {
    const parent = path.join(work, 'parent');
    writeTree(parent, { 'src/a.txt': 'a', 'src/sub/b.txt': 'b', 'other.txt': 'o' }, T0);
    const before = readTree(parent);
    fs.symlinkSync(parent, path.join(work, 'alias'));
    const cases: string[][] = [
      [path.join(parent, 'src'), parent, '--delete'],
      [path.join(work, 'alias', 'src'), parent, '--delete'],
      [path.join(parent, 'src'), path.join(work, 'alias'), '--delete'],
      [parent, path.join(parent, 'src', 'sub')],
      [parent, path.join(parent, 'new', 'deeper')],
      [parent, path.join(work, 'alias', 'new')],
      [parent, `file://${parent}`],
      [parent, path.join(work, 'alias')],
      [`${parent}/./src/..`, parent],
    ];
    for (const args of cases) {
      for (const mode of [[], ['--dry-run'], ['--plan', path.join(work, 'p.jsonl')]]) {
        const r = await cli(['sync', ...args, ...mode]);
        refused(r);
        expect(r.stdout).toBe('');
      }
    }
    expect(readTree(parent)).toEqual(before);
    expect(fs.existsSync(path.join(parent, 'new'))).toBe(false);
    expect(fs.existsSync(path.join(work, 'p.jsonl'))).toBe(false);
  });

  it('--apply of a plan whose locations overlap is refused too (a plan edited or made elsewhere)', async () => {
    const parent = path.join(work, 'parent');
    writeTree(parent, { 'src/a.txt': 'a', 'keep.txt': 'k' }, T0);
    const planFile = path.join(work, 'p.jsonl');
    const ok = await cli(['sync', path.join(parent, 'src'), path.join(work, 'elsewhere'), '--delete', '--plan', planFile]);
    expect(ok.code, ok.stderr).toBe(0);
    // point the destination at the source's parent, as a hostile or careless edit would
    const lines = fs.readFileSync(planFile, 'utf8').split('\n');
    const header = JSON.parse(lines[0]!) as Record<string, unknown>;
    header['dest'] = parent;
    header['dest_resolved'] = parent;
    lines[0] = JSON.stringify(header);
    fs.writeFileSync(planFile, lines.join('\n'));
    const r = await cli(['sync', '--apply', planFile, '--trust-resolved']);
    refused(r);
    expect(readTree(parent)).toEqual({ 'keep.txt': 'k', 'src/a.txt': 'a' });
  });

  it('allowed when the filters exclude the overlap, and for siblings that only share a name prefix', async () => {
    const parent = path.join(work, 'parent');
    writeTree(parent, { 'a.txt': 'a', 'backup/old.txt': 'o' }, T0);
    const ok = await cli(['sync', parent, path.join(parent, 'backup'), '--exclude', 'backup/*']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readTree(path.join(parent, 'backup'))).toEqual({ 'a.txt': 'a', 'old.txt': 'o' });
    const partial = await cli(['sync', parent, path.join(parent, 'backup'), '--exclude', 'backup/x*']);
    refused(partial);
    // filters that let part of the overlap through are no proof: src/model.bin would be deleted
    writeTree(parent, { 'src/model.bin': 'm' }, T0);
    for (const f of [['--include', '*.bin'], ['--exclude', 'src/[!i]*'], ['--filter-from', writeFilter(['+ *.bin', '- src/*'])]]) {
      refused(await cli(['sync', path.join(parent, 'src'), parent, '--delete', ...f]));
    }
    expect(fs.readFileSync(path.join(parent, 'src', 'model.bin'), 'utf8')).toBe('m');
    // a filter-file rule that excludes the overlap before any + rule: allowed
    const ruled = await cli(['sync', parent, path.join(parent, 'backup'), '--filter-from', writeFilter(['- backup/*', '+ *'])]);
    expect(ruled.code, ruled.stderr).toBe(0);
    writeTree(work, { 'data/x.txt': 'x' }, T0);
    const siblings = await cli(['sync', path.join(work, 'data'), path.join(work, 'data2')]);
    expect(siblings.code, siblings.stderr).toBe(0);
  });

  it('a bind mount of the source (another real path, the same folder) is seen by identity', async () => {
    const parent = path.join(work, 'p');
    writeTree(parent, { 'src/sub/f': 'f' }, T0);
    const bind = path.join(work, 'bind');
    fs.mkdirSync(bind);
    const { spawnSync } = await import('node:child_process');
    const mounted = spawnSync('mount', ['--bind', path.join(parent, 'src'), bind]).status === 0;
    if (!mounted) return; // needs root and mount(8): nothing to check here
    try {
      refused(await cli(['sync', path.join(bind, 'sub'), path.join(parent, 'src'), '--delete']));
      expect(readTree(path.join(parent, 'src'))).toEqual({ 'sub/f': 'f' });
    } finally {
      spawnSync('umount', [bind]);
    }
  });

  describe.skipIf(!s3TestEndpoint())('S3 prefixes of one bucket', () => {
    it('refuses nested and equal prefixes, allows siblings that share a name prefix', async () => {
      const bucket = await createTestBucket('overlap');
      const env = { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') };
      const src = path.join(work, 'up');
      writeTree(src, { 'a.txt': 'a' }, T0);
      expect((await cli(['sync', src, `s3://${bucket}/a`], { env })).code).toBe(0);
      for (const [s, d] of [
        [`s3://${bucket}/a`, `s3://${bucket}/a/b`],
        [`s3://${bucket}/a/b`, `s3://${bucket}/a`],
        [`s3://${bucket}`, `s3://${bucket}/a`],
        [`s3://${bucket}/a`, `s3://${bucket}/a/`],
      ]) {
        const r = await cli(['sync', s!, d!, '--delete'], { env });
        refused(r);
      }
      const sib = await cli(['sync', `s3://${bucket}/a`, `s3://${bucket}/ab`], { env });
      expect(sib.code, sib.stderr).toBe(0);
    });

    it('--dry-run and --plan with --create-bucket create nothing: the missing bucket is planned as empty', async () => {
      const env = { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') };
      const src = path.join(work, 'src');
      writeTree(src, { 'a.txt': 'a' }, T0);
      const name = `nb-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
      const dry = await cli(['sync', src, `s3://${name}/x`, '--create-bucket', '--dry-run'], { env });
      expect(dry.code, dry.stderr).toBe(0);
      expect(jsonl(dry.stdout).slice(1).map((o) => [o['action'], o['path']])).toEqual([['upload', 'a.txt']]);
      const plan = await cli(['sync', src, `s3://${name}/x`, '--create-bucket', '--plan', path.join(work, 'p.jsonl')], { env });
      expect(plan.code, plan.stderr).toBe(0);
      const { HeadBucketCommand } = await import('@aws-sdk/client-s3');
      const client = s3TestClient();
      try {
        await expect(client.send(new HeadBucketCommand({ Bucket: name }))).rejects.toThrow();
      } finally {
        client.destroy();
      }
    });

    it('buckets cp never replaces a device, a fifo or a folder with the object', async () => {
      const bucket = await createTestBucket('cp-special');
      const env = { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') };
      const up = path.join(work, 'k.txt');
      fs.writeFileSync(up, 'object body');
      expect((await cli(['buckets', 'cp', up, `s3://${bucket}/k.txt`], { env })).code).toBe(0);
      const { spawnSync } = await import('node:child_process');
      const fifo = path.join(work, 'ff');
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
      const dev = path.join(work, 'nulldev');
      const targets = [fifo, ...(spawnSync('mknod', [dev, 'c', '1', '3']).status === 0 ? [dev] : [])];
      for (const t of targets) {
        const r = await cli(['buckets', 'cp', `s3://${bucket}/k.txt`, t], { env });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(/not a regular file/);
        expect(fs.lstatSync(t).isFile()).toBe(false);
      }
      // a regular file is replaced as before
      const ok = path.join(work, 'plain.txt');
      fs.writeFileSync(ok, 'old');
      expect((await cli(['buckets', 'cp', `s3://${bucket}/k.txt`, ok], { env })).code).toBe(0);
      expect(fs.readFileSync(ok, 'utf8')).toBe('object body');
    });
  });
});
