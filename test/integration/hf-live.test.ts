/**
 * A live round trip against the real Hugging Face Hub, through the real CLI: upload a few
 * files with `sync`, list them with `ls`, download them (with `sync` and `cp`), compare
 * bytes and mtimes, remove them with `rm -R`.
 *
 * Runs only when both are set (it is skipped otherwise, with that reason):
 *   HF_TOKEN=hf_…                          a token with write access to the bucket
 *   BUCKETSYNC_LIVE_BUCKET=ns/name          an existing bucket (or hf://buckets/ns/name)
 * Everything happens under a fresh prefix `bucketsync-live/<time>-<random>/`, removed at the end.
 * HF_ENDPOINT is honoured (a staging Hub).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, readTree, tempDir, writeTree, type CliOptions } from '../support/cli.js';

const token = process.env['HF_TOKEN']?.trim();
const liveBucket = process.env['BUCKETSYNC_LIVE_BUCKET']?.trim().replace(/^hf:\/\/buckets\//, '').replace(/\/+$/, '');
const live = Boolean(token && liveBucket);
if (!live) {
  process.stderr.write('hf live tests skipped: set HF_TOKEN and BUCKETSYNC_LIVE_BUCKET=namespace/bucket to run them against the real Hub\n');
}

const T0 = 1_736_937_000;
let work: string;
let prefix: string;

function bs(args: string[], opts: CliOptions = {}) {
  return cli(args, { cwd: work, timeoutMs: 300_000, ...opts, env: { HF_HOME: work, COLUMNS: '200', ...opts.env } });
}

describe.skipIf(!live)('live Hugging Face Hub (HF_TOKEN + BUCKETSYNC_LIVE_BUCKET)', { timeout: 600_000 }, () => {
  beforeAll(() => {
    work = tempDir('bucketsync-hf-live-');
    prefix = `bucketsync-live/${Date.now()}-${randomBytes(3).toString('hex')}`;
  });
  afterAll(async () => {
    if (!work) return;
    await bs(['rm', '-R', `${liveBucket}/${prefix}`, '-y', '-q']).catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('sync up, ls, sync down, cp, rm -R', async () => {
    const uri = `hf://buckets/${liveBucket}/${prefix}`;
    const big = randomBytes(1024 * 1024 + 13);
    const src = path.join(work, 'src');
    writeTree(src, { 'a.txt': 'hello live hub\n', 'sub/b.json': '{"x": 1}\n', 'sub/deep/c.bin': big, 'empty.txt': '' }, T0);

    const up = await bs(['sync', src, uri]);
    expect(up.stderr).toContain('Sync completed.');
    expect(up.code).toBe(0);

    const ls = await bs(['ls', `${liveBucket}/${prefix}`, '-R', '--json']);
    expect(ls.code).toBe(0);
    const files = (JSON.parse(ls.stdout) as { type: string; path: string; size?: number; mtime?: string }[]).filter((i) => i.type === 'file');
    expect(files.map((f) => [f.path, f.size])).toEqual([
      [`${prefix}/a.txt`, 15],
      [`${prefix}/empty.txt`, 0],
      [`${prefix}/sub/b.json`, 9],
      [`${prefix}/sub/deep/c.bin`, big.length],
    ]);
    for (const f of files) expect(f.mtime).toBe('2025-01-15T10:30:00+00:00');
    const flat = await bs(['ls', `${uri}/sub`, '-q']);
    expect(flat.stdout).toBe(`${prefix}/sub/b.json\n${prefix}/sub/deep/\n`);

    const dst = path.join(work, 'dst');
    const down = await bs(['sync', uri, dst]);
    expect(down.code).toBe(0);
    expect(readTree(dst)).toEqual(readTree(src));
    expect(fs.readFileSync(path.join(dst, 'sub/deep/c.bin')).equals(big)).toBe(true);
    expect((await bs(['sync', src, uri])).stderr).toContain('Nothing to sync.');

    const one = await bs(['cp', `${uri}/sub/b.json`, '-']);
    expect(one.code).toBe(0);
    expect(one.stdout).toBe('{"x": 1}\n');

    const dry = await bs(['rm', '-R', uri, '--dry-run']);
    expect(dry.stdout).toContain('(dry run) 4 file(s) totaling');
    const rm = await bs(['rm', '-R', uri, '-y', '--json']);
    expect(rm.code).toBe(0);
    expect(JSON.parse(rm.stdout)).toMatchObject({ bucket_id: liveBucket, files_deleted: 4 });
    expect((await bs(['ls', `${liveBucket}/${prefix}`, '-R'])).stdout).toBe('(empty)\n');
  });
});
