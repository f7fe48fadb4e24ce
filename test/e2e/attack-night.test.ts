/**
 * Outside attack pass (night) on the code merged this evening: pinned downloads, Azure resumes,
 * pinned cp, temporary spools, Azure names and plan `dest_etag` validation, the launcher.
 *
 * 1. SIGHUP (the terminal or the ssh session goes away) killed `cp - DST` by the signal's default
 *    action: no exit handler ran, so the whole stdin stayed in TMPDIR (the spool promised to be
 *    "removed at any exit short of SIGKILL"). Now a hangup is an interruption like SIGTERM:
 *    exit 130, nothing left, nothing uploaded. (`nohup` was no way around it: Node resets an
 *    ignored SIGHUP at start, so a hangup ended a `nohup` run too.)
 * 2. The same for `sync` (a hangup while --plan lists): `.PLAN.PID.HEX.ops.tmp` stayed beside the
 *    plan for good, the lock and the TMPDIR spools too. Now a hangup quits at once like a
 *    second Ctrl-C: exit 130, nothing left beside the plan nor in TMPDIR.
 * 3. A stray BUCKETSYNC_LAUNCHER_PID naming a process that is gone (an environment copied from
 *    a running bucketsync, whose /proc/PID/environ keeps it) killed every run with SIGKILL
 *    before it did anything, without a word: exit 137 and an empty stderr. Still stopped (a
 *    launcher that died while its run started looks the same), now with one line naming the
 *    variable and how to get rid of it.
 * 4. A deduplicated upload (`copy_from`: b.txt a server-side copy of a.txt, same content) copied
 *    whatever a.txt held when the copy's own HEAD ran: a.txt replaced by another writer (other
 *    bytes, same size) after this run uploaded it made b.txt that writer's bytes under the local
 *    b.txt's size and mtime, exit 0 — and every later run called it identical. Now the copy
 *    source must still prove the planned content (its hash) and the copy is pinned to the
 *    version so checked; otherwise b.txt is uploaded from its own bytes (or stale, exit 1).
 *    S3 (dedup on by default) and Azure (--dedup): both copied the other writer's bytes.
 */
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, cli, tempDir, type CliResult } from '../support/cli.js';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { formatAzureMtime } from '../../src/stores/azure/mtime.js';
import { azureTestClient, azureTestEnv, azuriteEndpoint, createTestContainer } from '../support/azure-env.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const work = tempDir('bucketsync-attack-night-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** The temporary spools and spills a run makes in TMPDIR. */
const spools = (tmp: string): string[] => fs.readdirSync(tmp).filter((n) => /^bucketsync-(scan|plan|deletes|dedup|stdin)-/.test(n));

/**
 * `bucketsync cp - DST` with a private TMPDIR, fed 64 KiB and kept open; once the spool holds
 * it, SIGHUP; stdin closes 1.5 s later (a run that ignored the signal would then upload).
 */
async function hangupDuringStdin(dst: string, env: Record<string, string>, tmp: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; spooled: boolean }> {
  const args = [BIN, 'cp', '-', dst];
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env, TMPDIR: tmp }, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.on('error', () => undefined);
  const closed = new Promise<[number | null, NodeJS.Signals | null]>((r, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => r([c, s]));
  });
  child.stdin!.write(Buffer.alloc(64 * 1024, 7));
  let spooled = false;
  const timer = setInterval(() => {
    if (spooled) return;
    try {
      const dir = spools(tmp)[0];
      if (dir === undefined) return;
      const files = fs.readdirSync(path.join(tmp, dir));
      if (files.length === 0 || fs.statSync(path.join(tmp, dir, files[0]!)).size < 64 * 1024) return;
      spooled = true;
      child.kill('SIGHUP');
      setTimeout(() => child.stdin!.end(), 1500);
    } catch {
      // the spool is being created: not yet
    }
  }, 20);
  const giveUp = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    const [code, signal] = await closed;
    return { code, signal, stderr, spooled };
  } finally {
    clearInterval(timer);
    clearTimeout(giveUp);
  }
}

describe.skipIf(!s3TestEndpoint())('attack night: SIGHUP during cp - DST', () => {
  it('a hangup while stdin is spooled: exit 130, no spool left in TMPDIR, nothing uploaded', async () => {
    const bucket = await createTestBucket('night-hup');
    const env = { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache-hup') };
    const tmp = path.join(work, 'tmp-hup');
    fs.mkdirSync(tmp, { recursive: true });
    const r = await hangupDuringStdin(`s3://${bucket}/x.bin`, env, tmp);
    expect(r.spooled, r.stderr).toBe(true);
    expect(spools(tmp)).toEqual([]);
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 130, signal: null });
    expect((await cli(['ls', `s3://${bucket}/`], { env })).stdout).not.toMatch(/x\.bin/);
    expect((await cli(['cp', '-', `s3://${bucket}/x.bin`], { env, input: 'after' })).code).toBe(0);
  }, 30_000);
});

/** A proxy to `target` that never answers listings (GET with list-type/prefix/delimiter): counts them. */
async function listingHoldingProxy(target: string): Promise<{ url: string; listings: () => number; close(): Promise<void> }> {
  const up = new URL(target);
  let listings = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && /[?&](list-type=2|prefix=|delimiter=)/.test(req.url ?? '')) {
      listings++;
      return; // held until the client goes away
    }
    const out = http.request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
      r.on('error', () => res.destroy());
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    listings: () => listings,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe.skipIf(!s3TestEndpoint())('attack night: SIGHUP during sync --plan', () => {
  it('a hangup while the destination is listed: exit 130, no temporary plan file beside the plan, no spool in TMPDIR; the re-run works', async () => {
    const bucket = await createTestBucket('night-hup-plan');
    const env = { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache-hup-plan') };
    const src = path.join(work, 'hup-src');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'a.txt'), 'A');
    const dir = path.join(work, 'hup-plan');
    const tmp = path.join(work, 'tmp-hup-plan');
    fs.mkdirSync(dir, { recursive: true });
    fs.mkdirSync(tmp, { recursive: true });
    const plan = path.join(dir, 'plan.jsonl');
    const proxy = await listingHoldingProxy(s3TestEndpoint()!);
    let r: { code: number | null; signal: NodeJS.Signals | null; stderr: string; sent: boolean };
    try {
      r = await new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [BIN, 'sync', src, `s3://${bucket}/p`, '--delete', '--plan', plan, '--no-progress'], {
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { ...process.env, ...env, AWS_ENDPOINT_URL: proxy.url, TMPDIR: tmp },
        });
        let stderr = '';
        let sent = false;
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        const poll = setInterval(() => {
          if (!sent && proxy.listings() > 0) {
            sent = true;
            child.kill('SIGHUP');
          }
        }, 10);
        const giveUp = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.on('error', reject);
        child.on('close', (code, signal) => {
          clearInterval(poll);
          clearTimeout(giveUp);
          resolve({ code, signal, stderr, sent });
        });
      });
    } finally {
      await proxy.close();
    }
    expect(r.sent, r.stderr).toBe(true);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(spools(tmp)).toEqual([]);
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 130, signal: null });
    const again = await cli(['sync', src, `s3://${bucket}/p`, '--delete', '--plan', plan], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(fs.readdirSync(dir)).toEqual(['plan.jsonl']);
  }, 30_000);
});

describe('attack night: a stray BUCKETSYNC_LAUNCHER_PID naming a dead process', () => {
  it('the run stops before doing anything, and says why in one line naming the variable', async () => {
    const src = path.join(work, 'stray-src');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'a.txt'), 'A');
    const dst = path.join(work, 'stray-dst');
    // 999,999,999: above any Linux pid_max, so no process can hold it
    const r = await cli(['sync', src, dst, '--no-progress'], { env: { BUCKETSYNC_LAUNCHER_PID: '999999999' } });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    expect(fs.existsSync(dst)).toBe(false);
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('Error:')), r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/BUCKETSYNC_LAUNCHER_PID=999999999.*is gone/);
    expect(r.stderr).toMatch(/unset it/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 20_000);
});

/**
 * The dedup race of item 4, against one store: a.txt and b.txt hold the same 1.5 MiB (over the
 * 1 MiB default dedup size, mtime T0) in `work/<name>`. `run(src, proxyUrl)` syncs them through
 * a proxy in front of `target`: once a.txt is uploaded (its PUT, `isA` matching the request path
 * without query), the next request about it (a HEAD) waits while another writer `replaceA`s it
 * (other bytes, the same size, the same mtime metadata). b.txt (read by `catB`) then holds its own
 * bytes, or the run is stale (exit 1); and the re-run (`run(src)`, no proxy) converges on them.
 */
async function dedupCopyRace(o: {
  name: string;
  target: string;
  isA: (pathname: string) => boolean;
  replaceA: (theirs: Buffer) => Promise<unknown>;
  run: (src: string, proxyUrl?: string) => Promise<CliResult>;
  catB: () => Promise<CliResult>;
}): Promise<void> {
  const src = path.join(work, o.name);
  fs.mkdirSync(src, { recursive: true });
  const mine = Buffer.alloc(1536 * 1024, 0x61); // over the 1 MiB default dedup size
  const theirs = Buffer.alloc(mine.length, 0x7a);
  for (const n of ['a.txt', 'b.txt']) {
    fs.writeFileSync(path.join(src, n), mine);
    fs.utimesSync(path.join(src, n), 1_700_000_000, 1_700_000_000);
  }
  let putDone = false;
  let replaced = false;
  const proxy = await startFaultProxy({
    target: o.target,
    seed: 1,
    rate: 0,
    kinds: ['stall'],
    hold: (r) => {
      if (!o.isA(r.url.split('?')[0]!)) return undefined;
      if (r.method === 'PUT') {
        putDone = true;
        return undefined;
      }
      if (r.method !== 'HEAD' || !putDone || replaced) return undefined;
      replaced = true;
      return o.replaceA(theirs).then(() => undefined, () => undefined);
    },
  });
  let r: CliResult;
  try {
    r = await o.run(src, proxy.url);
  } finally {
    await proxy.close();
  }
  expect(replaced, r.stderr).toBe(true);
  const b = await o.catB();
  if (r.code === 0) {
    expect(b.stdout === mine.toString('latin1') ? 'mine' : b.stdout.slice(0, 8), r.stderr).toBe('mine');
  } else {
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/stale/i);
    expect(b.code).not.toBe(0);
  }
  // the re-run converges: b.txt its own bytes
  const again = await o.run(src);
  expect(again.code, again.stderr).toBe(0);
  const b2 = await o.catB();
  expect(b2.stdout === mine.toString('latin1') ? 'mine' : b2.stdout.slice(0, 8)).toBe('mine');
}

describe.skipIf(!s3TestEndpoint())('attack night: the source of a deduplicated copy replaced before the copy', () => {
  it('a.txt uploaded, then replaced by another writer (same size) before b.txt is copied from it: b.txt holds its own bytes (or is stale, exit 1), never the other writer\'s', async () => {
    const bucket = await createTestBucket('night-dedup');
    const env = { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache-dedup') };
    const raw = s3TestClient();
    await dedupCopyRace({
      name: 'dedup-src',
      target: s3TestEndpoint()!,
      isA: (p) => p.endsWith('/p/a.txt'),
      replaceA: (theirs) => raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'p/a.txt', Body: theirs, Metadata: { mtime: '1700000000' } })),
      run: (src, via) =>
        via
          ? cli(['sync', src, `s3://${bucket}/p`, '--no-progress', '-v'], { env: { ...env, AWS_ENDPOINT_URL: via } })
          : cli(['sync', src, `s3://${bucket}/p`, '--no-progress'], { env }),
      catB: () => cli(['cp', `s3://${bucket}/p/b.txt`, '-'], { env }),
    });
    raw.destroy();
  }, 30_000);
});

describe.skipIf(!azuriteEndpoint())('attack night: the source of a deduplicated copy replaced before the copy (Azure)', () => {
  it('the same race to Azure (--dedup): b.txt holds its own bytes or is stale (exit 1), never the other writer\'s; the re-run converges', async () => {
    const container = await createTestContainer('night-dedup');
    const env = { ...azureTestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache-az-dedup') };
    const client = azureTestClient();
    const account = new URL(azuriteEndpoint()!).pathname.replace(/\/+$/, '');
    await dedupCopyRace({
      name: 'az-dedup-src',
      target: new URL(azuriteEndpoint()!).origin,
      isA: (p) => p.endsWith(`/${container}/p/a.txt`),
      replaceA: (theirs) =>
        client.request({ op: 'PutBlob', method: 'PUT', container, blob: 'p/a.txt', headers: { 'x-ms-blob-type': 'BlockBlob', 'x-ms-meta-mtime': formatAzureMtime(1_700_000_000_000) }, body: theirs }),
      run: (src, via) => cli(['sync', src, `az://${container}/p`, '--dedup', '--no-progress'], { env: via ? { ...env, ...azureTestEnv(`${via}${account}`) } : env }),
      catB: () => cli(['cp', `az://${container}/p/b.txt`, '-'], { env }),
    });
    client.destroy();
  }, 30_000);
});
