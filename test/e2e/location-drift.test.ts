/**
 * One location parser per kind, behind one registry, for `sync` and the bucket commands
 * (issue 16, item 1): the same argument is the same location, or the same one-line refusal
 * (exit 2, nothing written), whichever command reads it. Each case here failed before the
 * registry, when `src/location/location.ts` (sync) and `src/buckets/target.ts` (ls, rm, cp…)
 * parsed on their own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cli, readTree, tempDir, writeTree, type CliOptions } from '../support/cli.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

let work: string;

function bs(args: string[], opts: CliOptions = {}) {
  return cli(args, { cwd: work, ...opts, env: { BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), HF_ENDPOINT: 'http://127.0.0.1:9', ...opts.env } });
}

/** Everything below `dir`, as relative paths (folders too), to show nothing was written. */
function entries(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => !p.startsWith('cache')).sort();
}

beforeEach(() => {
  work = tempDir('bucketsync-drift-');
  writeTree(path.join(work, 'src'), { 'a.txt': 'a' });
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

describe('the same refusal everywhere', () => {
  it("an unknown scheme: one line naming it for sync, ls, rm, cp, info and create (exit 2, nothing written)", async () => {
    const before = entries(work);
    for (const raw of ['gs://bkt/x', 'S3://bkt/x', 'gcs://container/p']) {
      const scheme = raw.slice(0, raw.indexOf('://'));
      const line = `Error: Unsupported location scheme '${scheme}://' in ${raw}\n`;
      const runs = [
        await bs(['sync', './src', raw, '--dry-run']),
        await bs(['ls', raw]),
        await bs(['rm', '-R', raw, '-y']),
        await bs(['cp', './src/a.txt', raw]),
        await bs(['cp', raw, './out.txt']),
        await bs(['buckets', 'info', raw]),
        await bs(['buckets', 'create', raw]),
      ];
      for (const r of runs) {
        expect(r.code, `${raw}: ${r.stderr}`).toBe(2);
        expect(r.stderr.startsWith(line), `${raw}: ${r.stderr}`).toBe(true);
        expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
        expect(r.stdout).toBe('');
      }
    }
    expect(entries(work)).toEqual(before);
  });

  it('an empty argument and a malformed file:// URL: the same line and hint for sync and the bucket commands', async () => {
    const empty = [await bs(['sync', '', './dst', '--dry-run']), await bs(['ls', '']), await bs(['rm', '', '-y']), await bs(['cp', '', './x'])];
    for (const r of empty) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toBe('Error: Empty location\nHint: Give a local path, file://, s3://bucket/prefix, hf://buckets/namespace/name/prefix or az://container/prefix.\n');
    }
    const bad = [await bs(['sync', 'file:///%', './dst', '--dry-run']), await bs(['ls', 'file:///%']), await bs(['rm', '-R', 'file:///%', '-y'])];
    for (const r of bad) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^Error: Invalid file URL: file:\/\/\/%\. .*\nHint: Use file:\/\/\/absolute\/path or a plain path\.\n$/);
    }
  });

  it("a plain ns/name bucket path gets the hf:// checks: no revision marker in the bucket id (refused before any request)", async () => {
    for (const args of [['ls', 'ns/b@main/x'], ['rm', 'ns/b@main/x', '-y'], ['buckets', 'info', 'ns/b@main']]) {
      const r = await bs(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/revision marker/);
      expect(r.stderr).not.toMatch(/127\.0\.0\.1:9|not found|reach/i); // never sent
    }
  });
});

describe('~ is the home folder for sync as for the bucket commands', () => {
  it("sync './src' '~/dst' writes into $HOME/dst, never into a folder named '~' (the bucket commands already did)", async () => {
    const home = path.join(work, 'home');
    fs.mkdirSync(home);
    const r = await bs(['sync', './src', '~/dst'], { env: { HOME: home } });
    expect(r.code, r.stderr).toBe(0);
    expect(readTree(path.join(home, 'dst'))).toEqual({ 'a.txt': 'a' });
    expect(fs.existsSync(path.join(work, '~'))).toBe(false);
    const ls = await bs(['ls', '~/dst', '--format', 'quiet'], { env: { HOME: home } });
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toBe('a.txt\n');
  });
});

describe('the registry loads a kind only when it is used', () => {
  it('a local sync, ls and rm load neither the S3 nor the hf store (nor the AWS SDK, nor @huggingface/hub)', async () => {
    const hook = path.join(work, 'hook.mjs');
    fs.writeFileSync(
      hook,
      `import { registerHooks } from 'node:module';
registerHooks({ resolve(s, c, next) { const r = next(s, c); if (/aws-sdk|@huggingface\\/hub|stores\\/(s3|hf)\\/(index|store|s3-store|admin)\\.js/.test(r.url)) process.stderr.write('LOADED ' + r.url + '\\n'); return r; } });
`,
    );
    const env = { NODE_OPTIONS: `--import=${hook}` };
    for (const args of [['sync', './src', './dst'], ['ls', './dst', '-R'], ['rm', '-R', './dst', '-y']]) {
      const r = await bs(args, { env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toContain('LOADED');
    }
    // The hook does see a kind that is used.
    const s3 = await bs(['ls', 's3://some-bucket/x', '--endpoint-url', 'http://127.0.0.1:9'], { env: { ...env, AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b', AWS_REGION: 'us-east-1' } });
    expect(s3.stderr).toContain('LOADED');
  });
});

const endpoint = s3TestEndpoint();

describe.skipIf(!endpoint)('S3: sync and the bucket commands refuse the same prefixes', { timeout: 120_000 }, () => {
  let raw: S3Client;
  let bucket: string;
  beforeAll(async () => {
    raw = s3TestClient();
    bucket = await createTestBucket('drift');
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'c/k.txt', Body: 'k' }));
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'k.txt', Body: 'k' }));
  });
  afterAll(() => raw?.destroy());
  const s3 = (args: string[]) => bs(args, { env: s3TestEnv() });

  it("s3://bucket/a/../c, ./c, a//c: the same one line, exit 2, for sync, ls, rm and cp; nothing listed, removed or written", async () => {
    for (const p of ['a/../c', './c', 'a//c', 'c/..']) {
      const loc = `s3://${bucket}/${p}`;
      const runs = [await s3(['sync', './src', loc, '--dry-run']), await s3(['ls', loc]), await s3(['rm', '-R', loc, '-y']), await s3(['cp', './src/a.txt', loc]), await s3(['cp', `${loc}`, './got.txt'])];
      const lines = runs.map((r) => r.stderr.split('\n')[0]);
      for (const r of runs) {
        expect(r.code, `${loc}: ${r.stderr}`).toBe(2);
        expect(r.stdout).toBe('');
      }
      expect(new Set(lines).size, lines.join('\n')).toBe(1);
      expect(lines[0]).toMatch(new RegExp(`^Error: Invalid S3 URI: ${loc.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\. Path must not contain`));
    }
    const ls = await s3(['ls', `s3://${bucket}`, '-R', '--format', 'quiet']);
    expect(ls.stdout.split('\n').filter(Boolean).sort()).toEqual(['c/k.txt', 'k.txt']);
    expect(fs.existsSync(path.join(work, 'got.txt'))).toBe(false);
  });

  it("cp from a bucket to an unknown scheme is refused, not downloaded into a local folder named 'gs:'", async () => {
    const r = await s3(['cp', `s3://${bucket}/k.txt`, 'gs://other/k.txt']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toBe("Error: Unsupported location scheme 'gs://' in gs://other/k.txt\nHint: Use a local path, file://, s3://bucket/prefix, hf://buckets/namespace/name/prefix or az://container/prefix.\n");
    expect(fs.existsSync(path.join(work, 'gs:'))).toBe(false);
  });
});
