/**
 * `bucketsync buckets …` against a real S3 server (Ceph RGW from the vitest globalSetup, or
 * BUCKETSYNC_TEST_S3_ENDPOINT): create / info / list buckets, file listings in hf's formats,
 * rm with the path boundary and filters, cp up / down / stdin / stdout / bucket to bucket
 * (CopyObject, keeping the mtime), delete of a bucket with objects, errors.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BIN, cli, tempDir, writeTree, type CliOptions } from '../support/cli.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const endpoint = s3TestEndpoint();
const T0 = 1_736_937_000; // 2025-01-15 10:30:00 UTC
const D = '2025-01-15 10:30:00';
const BLANK = `${''.padStart(12)}  ${''.padStart(19)}  `;

let raw: S3Client;
let work: string;
let bucket: string;
let seq = 0;

function bs(args: string[], opts: CliOptions = {}) {
  return cli(args, {
    cwd: work,
    timeoutMs: 120_000,
    ...opts,
    env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), COLUMNS: '200', ...opts.env },
  });
}

async function keys(b = bucket): Promise<string[]> {
  const res = await raw.send(new ListObjectsV2Command({ Bucket: b }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

async function seed(files: Record<string, string | Buffer>): Promise<void> {
  const dir = path.join(work, `seed-${++seq}`);
  writeTree(dir, files, T0);
  const r = await bs(['sync', dir, `s3://${bucket}`, '-q']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

describe.skipIf(!endpoint)('buckets commands on S3', { timeout: 300_000 }, () => {
  beforeAll(() => {
    raw = s3TestClient();
  });
  afterAll(() => {
    raw?.destroy();
  });
  beforeEach(async () => {
    work = tempDir('bucketsync-buckets-s3-');
    bucket = await createTestBucket('bk');
  });
  afterEach(() => {
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('create, info, list buckets, delete (with its objects) and their errors', async () => {
    const name = `made-${process.pid}-${Date.now().toString(36)}`;
    const r = await bs(['buckets', 'create', `s3://${name}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`✓ Bucket created\n  uri: s3://${name}\n  url: ${endpoint!.replace(/\/+$/, '')}/${name}\n`);
    const again = await bs(['buckets', 'create', `s3://${name}`]);
    expect(again.code).toBe(2);
    expect(again.stderr).toBe(`Error: Bucket 's3://${name}' already exists\nHint: Pass --exist-ok to accept an existing bucket.\n`);
    expect((await bs(['buckets', 'create', `s3://${name}`, '--exist-ok', '-q'])).stdout).toBe(`s3://${name}\n`);
    expect((await bs(['buckets', 'create', `s3://${name}/sub`])).stderr).toContain('Cannot specify a prefix for bucket creation');

    const list = await bs(['buckets', 'ls', 's3://', '--json']);
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout) as { id: string; created_at: string }[];
    expect(listed.map((b) => b.id)).toContain(`s3://${name}`);
    expect(Object.keys(listed[0]!)).toEqual(['id', 'private', 'size', 'total_files', 'created_at']);
    const table = await bs(['buckets', 'ls', 's3://', '--search', name]);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+CREATED_AT$/);
    expect(table.stdout.split('\n')[2]).toMatch(new RegExp(`^s3://${name} \\d{4}-\\d{2}-\\d{2}$`));
    expect((await bs(['buckets', 'ls', 's3://', '-R'])).stderr).toBe('Error: Cannot use --recursive when listing buckets.\n');

    writeTree(path.join(work, 'up'), { 'a.txt': 'aaa', 'dir/b.txt': 'bb' }, T0);
    expect((await bs(['sync', './up', `s3://${name}`, '-q'])).code).toBe(0);
    const info = await bs(['buckets', 'info', `s3://${name}`, '--json']);
    expect(info.code).toBe(0);
    const d = JSON.parse(info.stdout) as Record<string, unknown>;
    expect(d).toMatchObject({ id: `s3://${name}`, size: 5, total_files: 2 });
    expect(Object.keys(d)).toEqual(['id', 'created_at', 'size', 'total_files', 'endpoint', 'region']);
    expect((await bs(['buckets', 'info', `s3://${name}`, '-q'])).stdout).toBe(`s3://${name}\n`);

    const refused = await bs(['buckets', 'delete', `s3://${name}`]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`Not asking "Are you sure you want to delete bucket 's3://${name}' and all its objects?"`);
    const del = await bs(['buckets', 'delete', `s3://${name}`, '-y']);
    expect(del.stderr).toBe('');
    expect(del.stdout).toBe(`✓ Bucket deleted\n  bucket_id: s3://${name}\n`);
    await expect(raw.send(new HeadBucketCommand({ Bucket: name }))).rejects.toThrow();
    const gone = await bs(['buckets', 'delete', `s3://${name}`, '-y']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(new RegExp(`^Error: Bucket '${name}' does not exist at .*\\nHint: Create it with \`bucketsync buckets create s3://${name}\``));
    expect((await bs(['buckets', 'delete', `s3://${name}`, '-y', '--missing-ok'])).code).toBe(0);
    const missingLs = await bs(['ls', `s3://${name}/x`]);
    expect(missingLs.code).toBe(2);
    expect(missingLs.stderr).toContain(`Error: Bucket '${name}' does not exist`);
    const mv = await bs(['buckets', 'move', `s3://${bucket}`, 's3://other']);
    expect(mv.code).toBe(2);
    expect(mv.stderr).toContain('move works with Hugging Face buckets only');
  });

  it('lists files in hf\'s formats, with the stored mtimes and the path boundary', async () => {
    await seed({ 'file.txt': 'hello', 'big.bin': 'x'.repeat(2048), 'sub/nested.txt': 'nested content', 'sub/deep/file.txt': 'deep', 'logs/a.txt': 'a', 'logs.json': '{}' });
    const flat = await bs(['ls', `s3://${bucket}`]);
    expect(flat.code).toBe(0);
    expect(flat.stdout).toBe(
      [`        2048  ${D}  big.bin`, `           5  ${D}  file.txt`, `${BLANK}logs/`, `           2  ${D}  logs.json`, `${BLANK}sub/`, ''].join('\n'),
    );
    expect(flat.stderr).toBe('Hint: Use -R to list files recursively.\n');
    expect((await bs(['buckets', 'ls', `s3://${bucket}/sub`, '-R', '-h'])).stdout).toBe(
      ['         4 B         Jan 15 10:30  sub/deep/file.txt', '        14 B         Jan 15 10:30  sub/nested.txt', ''].join('\n'),
    );
    expect((await bs(['ls', `s3://${bucket}/sub/`, '--tree', '-R', '-q'])).stdout).toBe('└── sub/\n    ├── deep/\n    │   └── file.txt\n    └── nested.txt\n');
    expect((await bs(['ls', `s3://${bucket}/logs`, '-R', '-q'])).stdout).toBe('logs/a.txt\n');
    expect((await bs(['ls', `s3://${bucket}/logs`, '-q'])).stdout).toBe('logs/a.txt\n');
    expect((await bs(['ls', `s3://${bucket}/logs.json`, '-q'])).stdout).toBe('logs.json\n');
    expect((await bs(['ls', `s3://${bucket}/log`, '-R'])).stdout).toBe('(empty)\n');
    const json = JSON.parse((await bs(['ls', `s3://${bucket}/file.txt`, '--json'])).stdout) as Record<string, unknown>[];
    expect(json).toEqual([{ type: 'file', path: 'file.txt', size: 5, etag: expect.stringMatching(/^[0-9a-f]{32}$/), mtime: '2025-01-15T10:30:00+00:00' }]);
  });

  it('rm -R never touches look-alike siblings; filters; dry run; a single file; a directory needs -R', async () => {
    await seed({ 'logs/a.txt': 'a', 'logs/sub/b.txt': 'bb', 'logs.json': '{}', 'logs_backup/c.txt': 'c', 'x.tmp': 't', 'keep.txt': 'k' });
    const dry = await bs(['rm', '-R', `s3://${bucket}/logs/`, '--dry-run']);
    expect(dry.stdout).toBe(`delete: s3://${bucket}/logs/a.txt\ndelete: s3://${bucket}/logs/sub/b.txt\n(dry run) 2 file(s) totaling 3 B would be removed.\n`);
    const r = await bs(['buckets', 'rm', '-R', `s3://${bucket}/logs`, '-y']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`✓ Removed 2 file(s) totaling 3 B from 's3://${bucket}'\n  bucket_id: s3://${bucket}\n  files_deleted: 2\n  size: 3 B\n`);
    expect(await keys()).toEqual(['keep.txt', 'logs.json', 'logs_backup/c.txt', 'x.tmp']);

    const filtered = await bs(['rm', '-R', `s3://${bucket}`, '--include', '*.tmp', '--include', 'logs*', '--exclude', 'logs_backup/*', '-y', '-q']);
    expect(filtered.stdout).toBe(`s3://${bucket}\n`);
    expect(await keys()).toEqual(['keep.txt', 'logs_backup/c.txt']);

    const dir = await bs(['rm', `s3://${bucket}/logs_backup`, '-y']);
    expect(dir.code).toBe(1);
    expect(dir.stderr).toContain(`Error: 'logs_backup' is a directory in 's3://${bucket}'`);
    const one = await bs(['rm', `s3://${bucket}/keep.txt`, '-y', '--format', 'agent']);
    expect(one.stdout).toBe(`path=keep.txt bucket_id=s3://${bucket}\n`);
    const missing = await bs(['rm', `s3://${bucket}/keep.txt`, '-y']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`Error: 'keep.txt' not found in 's3://${bucket}'`);
    const whole = await bs(['rm', `s3://${bucket}`]);
    expect(whole.code).toBe(2);
    expect(whole.stderr).toContain(`To delete the entire bucket, use \`bucketsync buckets delete s3://${bucket}\`.`);
    expect(await keys()).toEqual(['logs_backup/c.txt']);
  });

  it('cp: up (root, folder, full path, stdin), down (folder with mtime, stdout), S3 to S3 keeping the mtime', async () => {
    writeTree(work, { 'local/model.bin': 'weights', 'local/sub/readme.md': '# hi' }, T0);
    const up = await bs(['cp', 'local/model.bin', `s3://${bucket}`]);
    expect(up.code).toBe(0);
    expect(up.stdout).toBe(`✓ Uploaded\n  src: local/model.bin\n  dst: s3://${bucket}/model.bin\n`);
    expect((await bs(['cp', 'local/sub/readme.md', `s3://${bucket}/docs/`, '-q'])).stdout).toBe('local/sub/readme.md\n');
    expect((await bs(['cp', '-', `s3://${bucket}/in/stdin.txt`], { input: 'piped' })).code).toBe(0);
    expect(await keys()).toEqual(['docs/readme.md', 'in/stdin.txt', 'model.bin']);
    const head = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: 'model.bin' }));
    expect(head.Metadata?.['mtime']).toBe(String(T0));

    const down = await bs(['cp', `s3://${bucket}/docs/readme.md`, 'out/']);
    expect(down.stdout).toBe(`✓ Downloaded\n  src: s3://${bucket}/docs/readme.md\n  dst: out/readme.md\n`);
    expect(fs.readFileSync(path.join(work, 'out/readme.md'), 'utf8')).toBe('# hi');
    expect(fs.statSync(path.join(work, 'out/readme.md')).mtimeMs).toBe(T0 * 1000);
    const stdout = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, [BIN, 'cp', `s3://${bucket}/in/stdin.txt`, '-'], {
        cwd: work,
        env: { ...process.env, ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') },
      });
      let s = '';
      child.stdout.on('data', (d: Buffer) => (s += d.toString()));
      child.on('close', () => resolve(s));
    });
    expect(stdout).toBe('piped');

    const other = await createTestBucket('bk-dest');
    const copy = await bs(['cp', `s3://${bucket}/model.bin`, `s3://${other}/copies/`]);
    expect(copy.code).toBe(0);
    expect(copy.stdout).toBe(`✓ Copied\n  src: s3://${bucket}/model.bin\n  dst: s3://${other}/copies/\n`);
    const copied = await raw.send(new HeadObjectCommand({ Bucket: other, Key: 'copies/model.bin' }));
    expect(copied.Metadata?.['mtime']).toBe(String(T0));
    expect(copied.ContentLength).toBe(7);

    const dir = await bs(['cp', `s3://${bucket}/docs`, 'out/']);
    expect(dir.code).toBe(2);
    expect(dir.stderr).toContain('Source path must include a file name');
    const missing = await bs(['cp', 'local/model.bin', 's3://no-such-bucket-here/']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("Error: Bucket 'no-such-bucket-here' does not exist");
    expect(missing.stderr).toContain('Hint: Create it with `bucketsync buckets create s3://no-such-bucket-here`');
  });
});
