/**
 * hf 2.0's bucket commands in bucketsync, through the real CLI (issue 15, item 4): `buckets sync`
 * is `sync`, `--no-truncate` is accepted, `buckets settings` (hf; S3 refused), `cp` of folders
 * between any two buckets (hf → hf on the server, S3 → S3 by CopyObject, hf ↔ S3 streamed) with
 * hf's trailing-slash rules and the source mtimes kept, and the refusals: local folders, model /
 * dataset / space repositories, a source folder holding a key the destination cannot take
 * (refused before anything is written), partial failures (the others applied, exit 1).
 * hf's own behaviour for the same commands is checked in test/conformance/hf-parity.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir, writeTree, type CliOptions } from '../support/cli.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';

const TOKEN = 'hf_test_token';
const T0 = 1_736_937_000; // 2025-01-15 10:30:00 UTC
const endpoint = s3TestEndpoint();

let server: HfTestServer;
let work: string;
let raw: S3Client | undefined;

beforeAll(async () => {
  server = await startHfServer({ pageSize: 3, tokens: { hf_test_token: { user: 'tester' }, hf_read_only: { user: 'tester', readOnly: true } } });
  work = tempDir('bucketsync-buckets-parity-');
  if (endpoint) raw = s3TestClient();
});
afterAll(async () => {
  await server?.close();
  raw?.destroy();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function bs(args: string[], opts: CliOptions = {}) {
  return cli(args, {
    cwd: work,
    timeoutMs: 120_000,
    ...opts,
    env: {
      ...(endpoint ? s3TestEnv() : {}),
      HF_ENDPOINT: server.url,
      HF_TOKEN: TOKEN,
      HF_HOME: work,
      BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'),
      COLUMNS: '200',
      NO_COLOR: '1',
      ...opts.env,
    },
  });
}

let seq = 0;
function dir(files: Record<string, string>): string {
  const d = path.join(work, `tree-${++seq}`);
  writeTree(d, files, T0);
  return d;
}

function hfState(id: string): [string, number, number][] {
  return server.listBucket(id).map((f) => [f.path, f.size, f.mtime]);
}

async function s3Keys(bucket: string): Promise<string[]> {
  const res = await raw!.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

/** One line on stderr (plus at most a hint), nothing on stdout, exit 2. */
function refused(r: { code: number | null; stdout: string; stderr: string }, what: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(what);
  expect(r.stderr.trim().split('\n').length, r.stderr).toBeLessThanOrEqual(2);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('hf 2.0 bucket commands in bucketsync', { timeout: 120_000 }, () => {
  it('buckets sync is sync: same options, same plan, same run', async () => {
    const help = async (args: string[]) =>
      (await bs([...args, '--help'])).stdout
        .split('\n')
        .filter((l) => /^\s+-/.test(l))
        .map((l) => l.trim().split(/\s{2,}/)[0]);
    expect(await help(['buckets', 'sync'])).toEqual(await help(['sync']));
    expect(await help(['sync'])).toContain('--no-truncate');

    server.createBucket('tester/alias');
    const src = dir({ 'a.txt': 'alpha', 'sub/b.txt': 'beta' });
    const a = await bs(['buckets', 'sync', src, 'hf://buckets/tester/alias', '--dry-run', '--no-truncate']);
    const b = await bs(['sync', src, 'hf://buckets/tester/alias', '--dry-run']);
    expect(a.code, a.stderr).toBe(0);
    const ops = (s: string) => s.trim().split('\n').slice(1);
    expect(ops(a.stdout)).toEqual(ops(b.stdout));
    expect(ops(a.stdout)).toHaveLength(2);
    const run = await bs(['buckets', 'sync', src, 'hf://buckets/tester/alias', '--json', '--no-truncate']);
    expect(run.code, run.stderr).toBe(0);
    expect(hfState('tester/alias')).toEqual([
      ['a.txt', 5, T0 * 1000],
      ['sub/b.txt', 4, T0 * 1000],
    ]);
    // Same exit codes for bad input: --apply with a source is refused by both spellings.
    expect((await bs(['buckets', 'sync', src, '--apply', 'x.jsonl'])).code).toBe(2);
  });

  it('buckets settings: flips visibility; S3, missing flags, read-only tokens and prefixes are refused in one line', async () => {
    server.createBucket('tester/vis');
    const r = await bs(['buckets', 'settings', 'tester/vis', '--private']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('✓ Bucket settings updated\n  bucket_id: tester/vis\n  private: True\n');
    expect(r.stderr).toBe('Hint: Run `bucketsync buckets info tester/vis` to view bucket details.\n');
    expect(server.buckets.get('tester/vis')!.private).toBe(true);
    const j = await bs(['buckets', 'settings', 'hf://buckets/tester/vis', '--public', '--json']);
    expect(JSON.parse(j.stdout)).toEqual({ bucket_id: 'tester/vis', private: false });
    expect(server.buckets.get('tester/vis')!.private).toBe(false);

    refused(await bs(['buckets', 'settings', 's3://some-bucket', '--private']), /^Error: Bucket settings apply to Hugging Face buckets only: s3:\/\/some-bucket\n/);
    refused(await bs(['buckets', 'settings', 'tester/vis']), /^Error: Specify exactly one of --private or --public\./);
    refused(await bs(['buckets', 'settings', 'tester/vis', '--private', '--public']), /^Error: Specify exactly one/);
    refused(await bs(['buckets', 'settings', 'hf://buckets/tester/vis/sub', '--private']), /^Error: Cannot specify a prefix for bucket settings/);
    refused(await bs(['buckets', 'settings', 'tester/vis', '--private'], { env: { HF_TOKEN: 'hf_read_only' } }), /^Error: .*\nHint: .*(token|HF_TOKEN)/);
    expect(server.buckets.get('tester/vis')!.private).toBe(false);
  });

  it('cp refuses repositories, local folders and folder downloads in one line, writing nothing', async () => {
    server.createBucket('tester/norepo');
    const f = path.join(dir({ 'x.bin': 'x' }), 'x.bin');
    for (const [s, d] of [
      ['hf://user/model/weights.bin', 'hf://buckets/tester/norepo/'],
      ['hf://datasets/user/ds/data/', 'hf://buckets/tester/norepo/data/'],
      ['hf://spaces/user/app/app.py', 'hf://buckets/tester/norepo/'],
      [f, 'hf://models/user/model/x.bin'],
      ['https://huggingface.co/user/model/resolve/main/x.bin', 'hf://buckets/tester/norepo/'],
    ] as const) {
      refused(await bs(['buckets', 'cp', s, d]), /^Error: Copying from or to model, dataset and space repositories is not supported yet: /);
    }
    refused(await bs(['cp', path.dirname(f), 'hf://buckets/tester/norepo/']), /^Error: Source must be a file, not a directory\./);
    expect(hfState('tester/norepo')).toEqual([]);
    const up = await bs(['cp', f, 'hf://buckets/tester/norepo/d/']);
    expect(up.code, up.stderr).toBe(0);
    const down = path.join(work, 'down-refused');
    refused(await bs(['cp', 'hf://buckets/tester/norepo/d', down]), /^Error: Source path must include a file name/);
    refused(await bs(['cp', 'hf://buckets/tester/norepo/d/', down]), /^Error: Source path must include a file name/);
    expect(fs.existsSync(down)).toBe(false);
  });

  it('cp of a folder between hf buckets keeps the source mtimes; a partial failure applies the rest and exits 1', async () => {
    server.createBucket('tester/fsrc');
    server.createBucket('tester/fdst');
    const src = dir({ 'logs/a.txt': 'a', 'logs/deep/b.txt': 'bb', 'logs.json': '{}', 'other/c.txt': 'c' });
    expect((await bs(['sync', src, 'hf://buckets/tester/fsrc'])).code).toBe(0);
    const r = await bs(['cp', 'hf://buckets/tester/fsrc/logs', 'hf://buckets/tester/fdst']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('✓ Copied\n  src: hf://buckets/tester/fsrc/logs\n  dst: hf://buckets/tester/fdst\n');
    expect(hfState('tester/fdst')).toEqual([
      ['logs/a.txt', 1, T0 * 1000],
      ['logs/deep/b.txt', 2, T0 * 1000],
    ]);
    // Server-side: nothing uploaded.
    expect(server.stats.requests['batch']).toBeGreaterThan(0);

    server.failPaths.set('all/logs/a.txt', 'Injected failure');
    try {
      const p = await bs(['buckets', 'cp', 'hf://buckets/tester/fsrc', 'hf://buckets/tester/fdst/all/']);
      expect(p.code).toBe(1);
      expect(p.stdout).toBe('');
      expect(p.stderr).toMatch(/^ {2}- all\/logs\/a\.txt: Injected failure\nError: Failed to apply 1 out of 4 operation\(s\) on bucket 'tester\/fdst'\n/);
    } finally {
      server.failPaths.clear();
    }
    expect(hfState('tester/fdst').map(([p]) => p)).toEqual(['all/logs.json', 'all/logs/deep/b.txt', 'all/other/c.txt', 'logs/a.txt', 'logs/deep/b.txt']);
  });

  describe.skipIf(!endpoint)('with S3', () => {
    it('cp of folders S3 → S3, S3 → hf and hf → S3: hf layout rules, mtimes kept, path boundary', async () => {
      const s3src = await createTestBucket('cpsrc');
      const s3dst = await createTestBucket('cpdst');
      const src = dir({ 'logs/a.txt': 'a', 'logs/deep/b.txt': 'bb', 'logs.json': '{}', 'logs_backup/x.txt': 'x' });
      expect((await bs(['sync', src, `s3://${s3src}`])).code).toBe(0);

      // S3 → S3: folder contents into a new prefix (CopyObject keeps x-amz-meta-mtime).
      const a = await bs(['cp', `s3://${s3src}/logs/`, `s3://${s3dst}/flat/`]);
      expect(a.code, a.stderr).toBe(0);
      expect(await s3Keys(s3dst)).toEqual(['flat/a.txt', 'flat/deep/b.txt']);
      const head = await raw!.send(new HeadObjectCommand({ Bucket: s3dst, Key: 'flat/deep/b.txt' }));
      expect(Number(head.Metadata?.['mtime'])).toBe(T0);
      // … and the folder nested into the bucket root.
      expect((await bs(['cp', `s3://${s3src}/logs`, `s3://${s3dst}`])).code).toBe(0);
      expect(await s3Keys(s3dst)).toEqual(['flat/a.txt', 'flat/deep/b.txt', 'logs/a.txt', 'logs/deep/b.txt']);

      // S3 → hf (streamed): the S3 mtimes arrive on the Hub.
      server.createBucket('tester/from-s3');
      const b = await bs(['cp', `s3://${s3src}/logs`, 'hf://buckets/tester/from-s3/in/']);
      expect(b.code, b.stderr).toBe(0);
      expect(hfState('tester/from-s3')).toEqual([
        ['in/a.txt', 1, T0 * 1000],
        ['in/deep/b.txt', 2, T0 * 1000],
      ]);
      // hf → S3 (streamed), a whole bucket into a prefix that does not exist: a rename.
      const c = await bs(['cp', 'hf://buckets/tester/from-s3/', `s3://${s3dst}/back`]);
      expect(c.code, c.stderr).toBe(0);
      expect((await s3Keys(s3dst)).filter((k) => k.startsWith('back/'))).toEqual(['back/in/a.txt', 'back/in/deep/b.txt']);
      const h2 = await raw!.send(new HeadObjectCommand({ Bucket: s3dst, Key: 'back/in/a.txt' }));
      expect(Number(h2.Metadata?.['mtime'])).toBe(T0);

      // S3 → hf streamed with one file refused by the Hub: the rest land, the refused path is listed, exit 1.
      server.createBucket('tester/from-s3-pf');
      server.failPaths.set('p/deep/b.txt', 'Injected failure');
      try {
        const d = await bs(['cp', `s3://${s3src}/logs/`, 'hf://buckets/tester/from-s3-pf/p/']);
        expect(d.code).toBe(1);
        expect(d.stdout).toBe('');
        expect(d.stderr).toMatch(/^ {2}- p\/deep\/b\.txt: .*Injected failure.*\nError: Failed to apply 1 out of 2 operation\(s\) on bucket 'tester\/from-s3-pf'\nHint: The other 1 operation\(s\) were applied\.\n$/);
      } finally {
        server.failPaths.clear();
      }
      expect(hfState('tester/from-s3-pf')).toEqual([['p/a.txt', 1, T0 * 1000]]);
    });

    it('a source folder with a key the destination cannot take is refused before anything is written', async () => {
      const s3src = await createTestBucket('cpbad');
      await raw!.send(new PutObjectCommand({ Bucket: s3src, Key: 'logs/ok.txt', Body: 'ok' }));
      await raw!.send(new PutObjectCommand({ Bucket: s3src, Key: 'logs/dot/../escape.txt', Body: 'bad' }));
      server.createBucket('tester/cpbad');
      const r = await bs(['cp', `s3://${s3src}/logs/`, 'hf://buckets/tester/cpbad/']);
      refused(r, /^Error: Refusing unsafe path 'dot\/\.\.\/escape\.txt' in hf:\/\/buckets\/tester\/cpbad\/: /);
      expect(hfState('tester/cpbad')).toEqual([]);
      const s3dst = await createTestBucket('cpbad-dst');
      refused(await bs(['cp', `s3://${s3src}/logs`, `s3://${s3dst}/x/`]), /^Error: Refusing unsafe path 'x\/dot\/\.\.\/escape\.txt'/);
      expect(await s3Keys(s3dst)).toEqual([]);
    });
  });
});
