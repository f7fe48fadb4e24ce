/**
 * Unit checks of issue 13's pure functions (the end-to-end tests are safety-plans and
 * safety-cli): terminal escaping and URL redaction, the one location parser, the lock key, and
 * the check of a plan's resolved locations.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeControl, redactUrl, safeText } from '../../src/cli/text.js';
import { parseLocation, parseTarget } from '../../src/stores/registry.js';
import { parseBucketPath } from '../../src/stores/hf/location.js';
import { identityPath, lockKey } from '../../src/lock/lock.js';
import { resolvedProblem } from '../../src/sync/apply.js';

describe('escapeControl', () => {
  it('escapes C0, DEL, C1, line separators and bidi controls; leaves other text alone', () => {
    expect(escapeControl('plain/ü/😀 name.txt')).toBe('plain/ü/😀 name.txt');
    expect(escapeControl('\u001b]0;t\u0007')).toBe('\\x1b]0;t\\x07');
    expect(escapeControl('a\nb\rc\td')).toBe('a\\nb\\rc\\td');
    expect(escapeControl('\u007f\u0085\u009b')).toBe('\\x7f\\x85\\x9b');
    expect(escapeControl('a\u2028b\u2029c')).toBe('a\\u2028b\\u2029c');
    expect(escapeControl('x\u202ey\u2066z\u200f')).toBe('x\\u202ey\\u2066z\\u200f');
    expect(escapeControl('\u0000')).toBe('\\x00');
    for (let c = 0; c < 0x20; c++) expect(escapeControl(String.fromCharCode(c))).toMatch(/^\\/);
  });
});

describe('redactUrl', () => {
  it('hides the password of every URL, keeps the user name, and keeps JSON valid', () => {
    expect(redactUrl('Cannot reach http://user:pass@host:9000/x (ECONNREFUSED)')).toBe('Cannot reach http://user:***@host:9000/x (ECONNREFUSED)');
    expect(redactUrl("'https://a:p@ss@h' and s3://k:s@b")).toBe("'https://a:***@h' and s3://k:***@b");
    expect(redactUrl('http://host:9000/ and user@example.com')).toBe('http://host:9000/ and user@example.com');
    const json = JSON.stringify({ error: 'http://u:secret@h/', other: 'x@y' });
    expect(JSON.parse(redactUrl(json))).toEqual({ error: 'http://u:***@h/', other: 'x@y' });
    expect(safeText('http://u:s@h/\u001b')).toBe('http://u:***@h/\\x1b');
    // a user name alone is often the token itself; secret query values go too
    expect(redactUrl('Cannot reach http://tok3nSECRET@127.0.0.1:1 (ECONNREFUSED)')).toBe('Cannot reach http://***@127.0.0.1:1 (ECONNREFUSED)');
    expect(redactUrl("Invalid S3 endpoint URL 'http://127.0.0.1:7497/?token=s3cr3t&x=1'")).toBe("Invalid S3 endpoint URL 'http://127.0.0.1:7497/?token=***&x=1'");
    expect(redactUrl('https://h/o?X-Amz-Signature=abc&X-Amz-Credential=AKIA%2F')).toBe('https://h/o?X-Amz-Signature=***&X-Amz-Credential=***');
    expect(redactUrl('mail me at a@b.c, see s3://bucket/key')).toBe('mail me at a@b.c, see s3://bucket/key');
  });
});

describe('one location parser', () => {
  it("refuses '.', '..' and empty segments in s3:// and hf:// for sync and bucket commands alike", () => {
    for (const raw of ['s3://bkt/a/../c', 's3://bkt/./c', 's3://bkt//', 's3://bkt/a//', 's3://bkt//x', 'hf://buckets/ns/b/../x', 'hf://buckets/ns/b//', 'hf://buckets/ns/b/x//', 'hf://buckets/ns/../b', 'hf://buckets/ns/b/x/../../y.txt']) {
      expect(() => parseLocation(raw), raw).toThrow(/segments/);
      expect(() => parseTarget(raw, { bare: true }), raw).toThrow(/segments/);
    }
    expect(() => parseBucketPath('ns/b/x/../y')).toThrow(/segments/);
    expect(() => parseBucketPath('https://huggingface.co/buckets/ns/b/resolve/%2e%2e/x')).toThrow(/segments/);
    expect(parseLocation('s3://bkt/a/').toString()).toBeDefined();
    expect(parseLocation('s3://bkt/a/')).toMatchObject({ bucket: 'bkt', prefix: 'a' });
    expect(parseLocation('hf://buckets/ns/b/')).toMatchObject({ bucketId: 'ns/b', prefix: '' });
    expect(parseTarget('s3://bkt/a/')).toMatchObject({ bucket: 'bkt', prefix: 'a', trailingSlash: true });
    expect(parseTarget('hf://buckets/ns/b/p/')).toMatchObject({ bucketId: 'ns/b', prefix: 'p', trailingSlash: true });
  });
});

describe('one parser per kind, one registry for sync and the bucket commands', () => {
  it('an unknown scheme, an empty argument and a bad file:// URL get the same line everywhere', () => {
    for (const raw of ['gs://b/x', 'az2://c/p', 'S3://bkt/x', 'HF://buckets/ns/b']) {
      const scheme = raw.slice(0, raw.indexOf('://'));
      const line = `Unsupported location scheme '${scheme}://' in ${raw}`;
      expect(() => parseLocation(raw), raw).toThrow(line);
      expect(() => parseTarget(raw, { bare: true, lists: true }), raw).toThrow(line);
      expect(() => parseTarget(raw, { stdio: true }), raw).toThrow(line);
    }
    expect(() => parseLocation('')).toThrow('Empty location');
    expect(() => parseTarget('', { bare: true })).toThrow('Empty location');
    expect(() => parseLocation('file:///%')).toThrow('Invalid file URL: file:///%.');
    expect(() => parseTarget('file:///%', { stdio: true })).toThrow('Invalid file URL: file:///%.');
  });

  it('the same location parses to the same fields for sync and the bucket commands', () => {
    for (const raw of ['s3://bkt/a/b', 's3://bkt', 'hf://buckets/ns/b/p/q', 'hf://buckets/ns/b', '/tmp/x', './rel', '~/x']) {
      const a = parseLocation(raw);
      const b = parseTarget(raw, { bare: true });
      expect(b, raw).toMatchObject({ ...a, trailingSlash: a.trailingSlash ?? false });
    }
    // `~` is the home folder for both (sync used to create a folder named '~').
    expect(parseLocation('~/x')).toMatchObject({ kind: 'local', path: path.join(os.homedir(), 'x') });
    // hf's plain form gets the hf:// checks: no revision marker in the bucket id.
    expect(() => parseTarget('ns/b@main/x', { bare: true })).toThrow(/revision marker/);
  });
});

describe('lock key: the destination, not its spelling', () => {
  it('a symlinked spelling and a not-yet-existing folder below it give the real path', () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-lockkey-')));
    try {
      fs.mkdirSync(path.join(dir, 'real'));
      fs.symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
      expect(identityPath(path.join(dir, 'link'))).toBe(path.join(dir, 'real'));
      expect(identityPath(path.join(dir, 'link', 'new', 'deeper'))).toBe(path.join(dir, 'real', 'new', 'deeper'));
      expect(lockKey(parseLocation(path.join(dir, 'link') + '/'))).toBe(lockKey(parseLocation(path.join(dir, 'real'))));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const env = { AWS_ENDPOINT_URL: 'http://HOST:9000/' };
    expect(lockKey(parseLocation('s3://bkt/p/'), { env })).toBe(lockKey(parseLocation('s3://bkt/p'), { endpoint: 'http://host:9000', env: {} }));
    expect(lockKey(parseLocation('s3://bkt/p'), { env: {} })).not.toBe(lockKey(parseLocation('s3://bkt/p'), { env }));
    expect(lockKey(parseLocation('hf://buckets/ns/b/x/'), { env: {} })).toBe('hf https://huggingface.co ns/b/x');
  });
});

describe('resolvedProblem', () => {
  const h = (source: string, dest: string, sourceResolved?: string, destResolved?: string) => ({
    source,
    dest,
    timestamp: 't',
    summary: { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 },
    ...(sourceResolved !== undefined ? { sourceResolved } : {}),
    ...(destResolved !== undefined ? { destResolved } : {}),
  });
  it('accepts what a planner run could have written, from any directory', () => {
    expect(resolvedProblem(h('src', 'dst'), '/w')).toBeUndefined();
    expect(resolvedProblem(h('src', 'dst', '/w/src', '/w/dst'), '/w')).toBeUndefined();
    expect(resolvedProblem(h('src', 'dst', '/elsewhere/src', '/elsewhere/dst'), '/w')).toBeUndefined();
    expect(resolvedProblem(h('../a/src', 'dst', '/p/a/src', '/p/q/dst'), '/w')).toBeUndefined();
    expect(resolvedProblem(h('/abs/src', 's3://bkt/p/', '/abs/src', 's3://bkt/p'), '/w')).toBeUndefined();
  });
  it('refuses what no planner run could have written', () => {
    expect(resolvedProblem(h('src', 'dst', '/etc', '/w/dst'), '/w')).toMatch(/source_resolved '\/etc'/);
    expect(resolvedProblem(h('/abs/src', 'dst', '/etc', '/w/dst'), '/w')).toMatch(/source_resolved/);
    expect(resolvedProblem(h('src', 's3://bkt/a', '/w/src', 's3://bkt/b'), '/w')).toMatch(/dest_resolved 's3:\/\/bkt\/b'/);
    expect(resolvedProblem(h('.', 'dst', '/etc', '/w/dst'), '/w')).toMatch(/not resolved from one directory/);
    expect(resolvedProblem(h('src', 'dst', '/a/src', '/b/dst'), '/w')).toMatch(/not resolved from one directory/);
    expect(resolvedProblem(h('src', 'dst', 'relative/src', '/w/dst'), '/w')).toMatch(/source_resolved/);
  });
});
