/**
 * Retry behaviour of the CLI against RGW through the fault proxy's scripted answers: the
 * executor's exponential backoff and `--retries N`, `Retry-After` honoured (with the SDK's own
 * retries off, and on), a non-retryable error failing only its one operation (no retry, no
 * deletes, exit 1, the path and the reason named), and every failed path in the summary.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, jsonl, tempDir, writeTree } from '../support/cli.js';
import {
  countMultipartUploads,
  deletePrefix,
  randomBuffer,
  readObjects,
  startFaultProxy,
  writeTally,
  type FaultProxy,
  type ProxiedRequest,
  type ScriptedAnswer,
} from '../support/fault-proxy.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';
import { PutObjectCommand } from '@aws-sdk/client-s3';

const endpoint = s3TestEndpoint();
const T0 = 1_700_000_000;

describe.skipIf(!endpoint)('retries through the fault proxy', () => {
  let raw: S3Client;
  let bucket: string;
  let work: string;
  let n = 0;
  beforeAll(async () => {
    raw = s3TestClient();
    bucket = await createTestBucket('faults-retry');
    work = tempDir('bucketsync-faults-retry-');
  });
  afterAll(() => {
    raw?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** A source tree of `files` and a fresh prefix; returns the CLI runner through a proxy with `script`. */
  async function setup(files: Record<string, string>, script: (r: ProxiedRequest, n: number) => ScriptedAnswer | undefined) {
    const id = `r${n++}`;
    const src = path.join(work, id, 'src');
    writeTree(src, files, T0);
    const proxy = await startFaultProxy({ target: endpoint!, seed: 1, rate: 0, kinds: [], script, lifetimeMs: 120_000 });
    const run = (args: string[], env: Record<string, string> = {}) =>
      cli(['sync', src, `s3://${bucket}/${id}`, '--endpoint-url', proxy.url, '--no-progress', ...args], {
        env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, id, 'cache'), AWS_MAX_ATTEMPTS: '1', ...env },
        timeoutMs: 60_000,
      });
    return { id, src, proxy, run };
  }

  /** Arrival times (ms) of the PUTs of one key. */
  function puts(proxy: FaultProxy, key: string): number[] {
    return proxy.log.filter((l) => l.method === 'PUT' && l.url.split('?')[0]!.endsWith(`/${key}`)).map((l) => l.t);
  }

  const gaps = (ts: number[]): number[] => ts.slice(1).map((t, i) => t - ts[i]!);
  const failOn = (key: string, times: number, answer: ScriptedAnswer) => (r: ProxiedRequest, k: number) =>
    r.method === 'PUT' && r.url.split('?')[0]!.endsWith(`/${key}`) && k < times ? answer : undefined;

  it('--retries N: exponential backoff between attempts, N+1 attempts at most, then the path and the reason are named', async () => {
    const s500 = { status: 500, code: 'InternalError' };
    const a = await setup({ 'a.txt': 'aaa', 'b.txt': 'bbb' }, failOn('a.txt', 3, s500));
    try {
      const fail = await a.run(['--retries', '2']);
      expect(fail.code).toBe(1);
      expect(fail.stderr).toMatch(/failed: a\.txt \(upload\): PutObject .*a\.txt failed: InternalError 500/);
      expect(puts(a.proxy, 'a.txt')).toHaveLength(3);
      const ok = await a.run(['--retries', '3']);
      expect(ok.code, ok.stderr).toBe(0);
      const times = puts(a.proxy, 'a.txt');
      expect(times).toHaveLength(4); // 3 failed before, 1 now
      expect((await readObjects(raw, bucket, a.id)).get('a.txt')?.toString()).toBe('aaa');
    } finally {
      await a.proxy.close();
    }
    // The gaps of one run: 250 ms · 2^attempt with ±50 % jitter.
    const b = await setup({ 'a.txt': 'aaa' }, failOn('a.txt', 3, s500));
    try {
      const r = await b.run(['--retries', '3']);
      expect(r.code, r.stderr).toBe(0);
      const g = gaps(puts(b.proxy, 'a.txt'));
      expect(g).toHaveLength(3);
      expect(g[0]).toBeGreaterThanOrEqual(110);
      expect(g[1]).toBeGreaterThanOrEqual(240);
      expect(g[2]).toBeGreaterThanOrEqual(490);
      writeTally({ suite: 'faults', scenario: '500 on the same PUT, 3 times in a row', where: 'local→S3 (--retries)', runs: 3, injected: 6, failedRuns: 1, dataLost: 0, note: 'N+1 attempts at most, backoff ≥ 125/250/500 ms' });
    } finally {
      await b.proxy.close();
    }
  }, 120_000);

  it('Retry-After is honoured: by the executor with the SDK retries off, and by the SDK', async () => {
    const slow = { status: 503, code: 'SlowDown', headers: { 'retry-after': '2' } };
    for (const attempts of ['1', '3']) {
      const s = await setup({ 'a.txt': 'aaa', 'b.txt': 'bbb' }, failOn('b.txt', 1, slow));
      try {
        const r = await s.run(['--retries', '2'], { AWS_MAX_ATTEMPTS: attempts });
        expect(r.code, r.stderr).toBe(0);
        const g = gaps(puts(s.proxy, 'b.txt'));
        expect(g, `AWS_MAX_ATTEMPTS=${attempts}`).toHaveLength(1);
        expect(g[0], `AWS_MAX_ATTEMPTS=${attempts}`).toBeGreaterThanOrEqual(1900);
      } finally {
        await s.proxy.close();
      }
    }
    // Without the header the executor waits far less.
    const c = await setup({ 'b.txt': 'bbb' }, failOn('b.txt', 1, { status: 503, code: 'SlowDown' }));
    try {
      const r = await c.run(['--retries', '2']);
      expect(r.code, r.stderr).toBe(0);
      expect(gaps(puts(c.proxy, 'b.txt'))[0]).toBeLessThan(1500);
    } finally {
      await c.proxy.close();
    }
    writeTally({ suite: 'faults', scenario: '503 with Retry-After: 2', where: 'local→S3 (executor and SDK)', runs: 3, injected: 3, failedRuns: 0, dataLost: 0, note: 'next attempt ≥ 1.9 s later' });
  }, 120_000);

  it('a non-retryable error fails only its operation: no retry, no deletes, exit 1, path and reason named', async () => {
    const denied = { status: 403, code: 'AccessDenied' };
    const s = await setup({ 'a.txt': 'aaa', 'b.txt': 'bbb', 'c.txt': 'ccc' }, failOn('b.txt', 1000, denied));
    try {
      await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `${s.id}/old.txt`, Body: 'old' }));
      const r = await s.run(['--delete', '--retries', '3', '--json']);
      expect(r.code).toBe(1);
      expect(puts(s.proxy, 'b.txt')).toHaveLength(1);
      expect(r.stderr).toMatch(/failed: b\.txt \(upload\): .*(AccessDenied|Access denied)/);
      expect(r.stderr).toMatch(/1 delete\(s\) not run: not deleting files as 1 transfer\(s\) failed/);
      const objects = await readObjects(raw, bucket, s.id);
      expect([...objects.keys()].sort()).toEqual(['a.txt', 'c.txt', 'old.txt']);
      const failed = jsonl(r.stdout).filter((e) => e.event === 'failed');
      expect(failed.map((e) => e.path)).toEqual(['b.txt']);
      const summary = jsonl(r.stdout).find((e) => e.event === 'summary')!;
      expect(summary).toMatchObject({ failed: 1, deleted: 0, deletes_not_run: 1, exit_code: 1 });
      writeTally({ suite: 'faults', scenario: '403 AccessDenied on one PUT (non-retryable)', where: 'local→S3', runs: 1, injected: 1, failedRuns: 1, dataLost: 0, note: 'one attempt; the other files sent; the delete not run' });
    } finally {
      await s.proxy.close();
      await deletePrefix(raw, bucket, s.id);
    }
  }, 120_000);

  it('every failed path is named, with the reason: all of them with -v and in --json, the first 20 otherwise', async () => {
    const files = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`f${String(i).padStart(2, '0')}.txt`, `file ${i}`]));
    const s = await setup(files, (r) => (r.method === 'PUT' ? { status: 400, code: 'InvalidArgument' } : undefined));
    try {
      const verbose = await s.run(['-v', '--retries', '0']);
      expect(verbose.code).toBe(1);
      for (const f of Object.keys(files)) expect(verbose.stderr).toMatch(new RegExp(`failed: ${f.replace('.', '\\.')} \\(upload\\): PutObject .* failed: InvalidArgument 400`));
      const plain = await s.run(['--retries', '0', '--json']);
      expect(plain.code).toBe(1);
      expect(plain.stderr.match(/failed: f\d\d\.txt/g)).toHaveLength(20);
      expect(plain.stderr).toContain('… and 5 more failed (-v or --json lists them all)');
      expect(jsonl(plain.stdout).filter((e) => e.event === 'failed')).toHaveLength(25);
      writeTally({ suite: 'faults', scenario: '400 InvalidArgument on every PUT (25 files)', where: 'local→S3', runs: 2, injected: s.proxy.scripted, failedRuns: 2, dataLost: 0, note: 'every path named with its reason (-v, --json); the first 20 and "… and 5 more" otherwise' });
    } finally {
      await s.proxy.close();
    }
  }, 120_000);

  it('a CreateMultipartUpload whose answer is lost leaves no incomplete upload behind (SDK retry, executor retry)', async () => {
    const big = randomBuffer(7, 17 * 1024 * 1024);
    const lost = (r: ProxiedRequest, k: number) =>
      r.method === 'POST' && /[?&]uploads(=|&|$)/.test(r.url) && k === 0 ? { status: 500, code: 'InternalError', afterServer: true } : undefined;
    for (const attempts of ['3', '1']) {
      const s = await setup({}, lost);
      try {
        fs.mkdirSync(s.src, { recursive: true });
        fs.writeFileSync(path.join(s.src, 'big.bin'), big);
        const r = await s.run(['--retries', '2'], { AWS_MAX_ATTEMPTS: attempts });
        expect(r.code, r.stderr).toBe(0);
        expect(s.proxy.scripted, 'the lost answer happened').toBe(1);
        expect(s.proxy.log.filter((l) => l.method === 'POST' && /[?&]uploads(=|&|$)/.test(l.url))).toHaveLength(2);
        expect(await countMultipartUploads(raw, bucket, s.id), `AWS_MAX_ATTEMPTS=${attempts}`).toBe(0);
        expect((await readObjects(raw, bucket, s.id)).get('big.bin')?.equals(big)).toBe(true);
      } finally {
        await s.proxy.close();
        await deletePrefix(raw, bucket, s.id);
      }
    }
    writeTally({ suite: 'faults', scenario: 'CreateMultipartUpload answer lost (the server created the upload)', where: 'local→S3 (SDK and executor retry)', runs: 2, injected: 2, failedRuns: 0, dataLost: 0, note: 'the stray upload is found and aborted: none left' });
  }, 120_000);

  it('download: a local error fails that one file (a name too long for the file system), the others arrive, nothing is deleted', async () => {
    // (A file where a folder should be is no error any more: with --delete that type change
    // converges in one run, test/e2e/safety-local.test.ts.)
    const id = `r${n++}`;
    const long = `d/${'n'.repeat(300)}.txt`;
    for (const [k, v] of Object.entries({ 'a.txt': 'aaa', [long]: 'xxx', 'z.txt': 'zzz' })) {
      await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `${id}/${k}`, Body: v }));
    }
    const dst = path.join(work, id, 'dst');
    writeTree(dst, { 'extra.txt': 'only here' });
    const r = await cli(['sync', `s3://${bucket}/${id}`, dst, '--delete', '--endpoint-url', endpoint!, '--no-progress'], {
      env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, id, 'cache') },
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/failed: d\/n+\.txt \(download\): .*name too long/);
    expect(fs.readFileSync(path.join(dst, 'a.txt'), 'utf8')).toBe('aaa');
    expect(fs.readFileSync(path.join(dst, 'z.txt'), 'utf8')).toBe('zzz');
    expect(fs.readFileSync(path.join(dst, 'extra.txt'), 'utf8')).toBe('only here');
  }, 60_000);
});
