/**
 * Every comparison flag, --max-delete and --filter-from through the real CLI against a real
 * S3 server, in both directions (the planner is shared, but the mtimes come from
 * x-amz-meta-mtime and the metadata cache, which is what this checks).
 */
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, jsonl, readTree, setMtime, tempDir, writeTree, type CliOptions } from '../support/cli.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const T0 = 1_700_000_000;
const endpoint = s3TestEndpoint();

let work: string;
let src: string;
let bucket: string;
let raw: S3Client;

function s3(args: string[], opts: CliOptions = {}) {
  return cli(args, { timeoutMs: 120_000, ...opts, env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), ...opts.env } });
}

function ops(stdout: string): [unknown, unknown, unknown][] {
  return jsonl(stdout)
    .slice(1)
    .map((o) => [o['action'], o['path'], o['reason']]);
}

describe.skipIf(!endpoint)('S3: comparison flags, --max-delete, --filter-from (real CLI, real S3)', { timeout: 240_000 }, () => {
  beforeEach(async () => {
    work = tempDir('bucketsync-s3flags-');
    src = path.join(work, 'src');
    bucket = await createTestBucket('flags');
    raw = s3TestClient();
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  it('upload direction: size differs, local newer, remote newer is identical, and each flag', async () => {
    writeTree(src, { 'a.txt': 'aa', 'b.txt': 'b', 'c.txt': 'c', 'd.txt': 'd' }, T0);
    expect((await s3(['sync', src, `s3://${bucket}/p`])).code).toBe(0);
    writeTree(src, { 'a.txt': 'aaa' }, T0); // size differs
    setMtime(path.join(src, 'b.txt'), T0 + 100); // local newer
    setMtime(path.join(src, 'c.txt'), T0 - 100); // remote newer, same size → identical
    writeTree(src, { 'new.txt': 'n' }, T0);
    // hf's labels, exactly (--no-dedup); by default bucketsync also sees that b.txt's content is unchanged.
    const hf = await s3(['sync', src, `s3://${bucket}/p`, '--dry-run', '--no-dedup']);
    expect(ops(hf.stdout)).toEqual([
      ['upload', 'a.txt', 'size differs'],
      ['upload', 'b.txt', 'local newer'],
      ['skip', 'c.txt', 'identical'],
      ['skip', 'd.txt', 'identical'],
      ['upload', 'new.txt', 'new file'],
    ]);
    const def = await s3(['sync', src, `s3://${bucket}/p`, '--dry-run']);
    expect(ops(def.stdout)[1]).toEqual(['upload', 'b.txt', 'same content, mtime differs']);
    const times = await s3(['sync', src, `s3://${bucket}/p`, '--dry-run', '--no-dedup', '--ignore-times']);
    expect(ops(times.stdout).map((o) => o[2])).toEqual(['size differs', 'same size', 'same size', 'same size', 'new file']);
    const sizes = await s3(['sync', src, `s3://${bucket}/p`, '--dry-run', '--no-dedup', '--ignore-sizes']);
    expect(ops(sizes.stdout).map((o) => o[2])).toEqual(['same mtime', 'local newer', 'remote newer', 'same mtime', 'new file']);
    const existing = await s3(['sync', src, `s3://${bucket}/p`, '--dry-run', '--no-dedup', '--existing']);
    expect(ops(existing.stdout).at(-1)).toEqual(['skip', 'new.txt', 'new file (--existing)']);
    const ignoreExisting = await s3(['sync', src, `s3://${bucket}/p`, '--dry-run', '--no-dedup', '--ignore-existing']);
    expect(ops(ignoreExisting.stdout).map((o) => o[0])).toEqual(['skip', 'skip', 'skip', 'skip', 'upload']);
  });

  it('download direction: remote newer / local newer labels, --delete and --max-delete', async () => {
    writeTree(src, { 'x.txt': 'x', 'y.txt': 'y' }, T0);
    expect((await s3(['sync', src, `s3://${bucket}/d`])).code).toBe(0);
    const local = path.join(work, 'local');
    writeTree(local, { 'x.txt': 'x', 'y.txt': 'y', 'extra1': '1', 'extra2': '2' }, T0);
    setMtime(path.join(local, 'x.txt'), T0 - 100); // remote newer → download
    setMtime(path.join(local, 'y.txt'), T0 + 100); // local newer → identical
    const r = await s3(['sync', `s3://${bucket}/d`, local, '--dry-run', '--delete']);
    expect(ops(r.stdout)).toEqual([
      ['delete', 'extra1', 'not in source (--delete)'],
      ['delete', 'extra2', 'not in source (--delete)'],
      ['download', 'x.txt', 'remote newer'],
      ['skip', 'y.txt', 'identical'],
    ]);
    const sizes = await s3(['sync', `s3://${bucket}/d`, local, '--dry-run', '--ignore-sizes']);
    expect(ops(sizes.stdout).map((o) => o[2])).toEqual(['remote newer', 'local newer']);
    const guarded = await s3(['sync', `s3://${bucket}/d`, local, '--delete', '--max-delete', '1']);
    expect(guarded.code).toBe(1);
    expect(guarded.stderr).toMatch(/more than --max-delete 1; nothing was deleted/);
    expect(Object.keys(readTree(local)).sort()).toEqual(['extra1', 'extra2', 'x.txt', 'y.txt']);
  });

  it('--filter-from rules and --max-delete on an S3 destination', async () => {
    writeTree(src, { 'keep.txt': 'k', 'skip.log': 'l', 'sub/x.txt': 'x' }, T0);
    for (const key of ['f/old1', 'f/old2', 'f/old3', 'f/guarded.log']) {
      await raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'o', ContentLength: 1 }));
    }
    const rules = path.join(work, 'rules.txt');
    fs.writeFileSync(rules, '- *.log\n');
    const guarded = await s3(['sync', src, `s3://${bucket}/f`, '--delete', '--filter-from', rules, '--max-delete', '2']);
    expect(guarded.code).toBe(1);
    expect(guarded.stderr).toMatch(/3 delete\(s\) not run/);
    const r = await s3(['sync', src, `s3://${bucket}/f`, '--delete', '--filter-from', rules, '--dry-run']);
    expect(ops(r.stdout)).toEqual([
      ['skip', 'keep.txt', 'identical'],
      ['delete', 'old1', 'not in source (--delete)'],
      ['delete', 'old2', 'not in source (--delete)'],
      ['delete', 'old3', 'not in source (--delete)'],
      ['skip', 'sub/x.txt', 'identical'],
    ]);
  });
});
