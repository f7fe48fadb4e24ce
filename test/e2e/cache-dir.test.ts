/**
 * One cache directory (src/cache/dir.ts): with a relative XDG_CACHE_HOME (invalid by the XDG
 * spec, so ignored), the S3 metadata cache, the hash cache and the lock fallback all land in
 * ~/.cache/bucketsync, and nothing is created under the current directory. Before, the S3
 * metadata cache went to ./<XDG_CACHE_HOME>/bucketsync while hashes and locks did not.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, tempDir, writeTree } from '../support/cli.js';
import { createTestBucket, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const work = tempDir('bucketsync-cachedir-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe.skipIf(!s3TestEndpoint())('one cache directory', () => {
  it('a relative XDG_CACHE_HOME: S3 metadata, hashes and locks all in ~/.cache/bucketsync, nothing under the current directory', async () => {
    const home = path.join(work, 'home');
    const cwd = path.join(work, 'cwd');
    const src = path.join(work, 'src');
    fs.mkdirSync(home);
    fs.mkdirSync(cwd);
    writeTree(src, { 'a.bin': 'a'.repeat(5000), 'b/c.bin': 'c'.repeat(7000), 'b/same.bin': 'a'.repeat(5000), 'd.txt': 'dup' }, 1_700_000_000);
    const bucket = await createTestBucket('cachedir');
    const env = {
      ...s3TestEnv(),
      HOME: home,
      XDG_CACHE_HOME: 'rel-cache',
      BUCKETSYNC_CACHE_DIR: undefined,
      // an unusable shared lock folder: the lock falls back to the cache directory
      BUCKETSYNC_LOCK_DIR: path.join(work, 'not-a-dir', 'locks'),
    };
    fs.writeFileSync(path.join(work, 'not-a-dir'), 'a file where a folder would be');
    for (const args of [['sync', '--dedup', src, `s3://${bucket}/t`], ['sync', '--dedup', `s3://${bucket}/t`, path.join(work, 'back')]]) {
      const r = await cli(args, { cwd, env, timeoutMs: 120_000 });
      expect(r.code, r.stderr).toBe(0);
    }
    const cache = path.join(home, '.cache', 'bucketsync');
    expect(fs.readdirSync(cwd)).toEqual([]);
    expect(fs.existsSync(path.join(cache, 's3-meta'))).toBe(true);
    expect(fs.readdirSync(path.join(cache, 's3-meta')).length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(cache, 'hashes-v1.log'))).toBe(true);
    expect(fs.existsSync(path.join(cache, 'locks'))).toBe(true);
  });
});
