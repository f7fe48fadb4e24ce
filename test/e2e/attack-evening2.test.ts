/**
 * Attack (evening 2): what a hostile or unlucky user meets through the real CLI.
 *
 * 1. An Azure endpoint that is not Azure Blob Storage (an S3 server's 400, TLS spoken to a
 *    plain-HTTP port): one line naming the endpoint, exit 2 — for sync, ls, cp and rm — as
 *    S3's HeadBucket does, never exit 1 with "set BUCKETSYNC_DEBUG=1".
 *    The same for an hf endpoint spoken to in TLS on a plain-HTTP port (HF_ENDPOINT=https://…).
 * 2. A stdout that cannot be written (`> /dev/full`): one line, exit 1, never a stack trace;
 *    a --json sync still finishes its transfers.
 * 3. Ctrl-C / SIGTERM while the sides are being listed: exit 130 with the "re-run" warning
 *    (and a --json summary saying so), nothing deleted, no plan file; the re-run converges.
 * 4. Blob names with "." or ".." segments (other tools make them; listings show them): Azure
 *    Storage resolves such segments in a URL, even percent-encoded (`p/../x` reaches `x`,
 *    `p/../../c2/x` another container), so `rm -R` must never put one into a request: it
 *    names them as not removed (exit 1) and removes the rest.
 * 5. Names with a segment ending in "." (`a.`, `dir./f`): Azure Storage drops the dot, so `a.`
 *    would land on `a` (two files, one blob: stale or overwritten on every run). A sync to
 *    Azure skips them with a warning (exit 3), `cp` refuses them (exit 2), a prefix with one
 *    is refused (exit 2); no request ever carries such a name.
 * 6. `cp - DST < some/folder`: Node reads a directory as an empty stdin; the object was
 *    replaced by nothing, exit 0. Now: one line, exit 2, the object untouched.
 * 7. Temporary spools in TMPDIR: `--dry-run | head -1` (EPIPE), `--dry-run > /dev/full` and
 *    Ctrl-C / SIGTERM during `cp - DST` left the whole plan or the whole stdin behind, every
 *    time. Now nothing `bucketsync-…` is left in TMPDIR (and `cp -` exits 130); a second
 *    Ctrl-C during `--plan` (quit now) leaves no `.plan.jsonl.*.tmp` beside the plan either.
 * 8. A plan line's `dest_etag` becomes `If-Match`, trusted instead of size and mtime: a hand-edited
 *    `*` deleted an Azure blob that had changed since the plan. Now refused (exit 2, naming the line).
 * 9. A listing whose continuation marker comes back again (a broken server or proxy): the
 *    listing went on forever (a hang, memory growing). Now one line, exit 1, within seconds.
 *    The same for an hf endpoint whose `Link: rel="next"` points back at a page already read.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AzureClient } from '../../src/stores/azure/client.js';
import { formatAzureMtime } from '../../src/stores/azure/mtime.js';
import { BIN, cli, jsonl, readTree, tempDir, writeTree, type CliResult } from '../support/cli.js';
import { azureTestClient, azureTestEnv, azuriteEndpoint, createTestContainer, putEncodedBlob } from '../support/azure-env.js';
import { createTestBucket, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const endpoint = azuriteEndpoint();
const work = tempDir('bucketsync-attack-ev2-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const T0 = 1_700_000_000;

const azEnv = (): Record<string, string> => ({ ...azureTestEnv(endpoint!), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') });

async function putBlobs(container: string, blobs: Record<string, string>): Promise<void> {
  const client: AzureClient = azureTestClient();
  try {
    for (const [name, body] of Object.entries(blobs)) {
      await client.request({
        op: 'PutBlob',
        method: 'PUT',
        container,
        blob: name,
        headers: { 'x-ms-blob-type': 'BlockBlob', 'x-ms-meta-mtime': formatAzureMtime(T0 * 1000) },
        body: Buffer.from(body),
      });
    }
  } finally {
    client.destroy();
  }
}

/** One `Error:` line, no stack frame, no "set BUCKETSYNC_DEBUG" (an input/set-up error). */
function expectOneCleanLine(r: CliResult, needle: string): void {
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('Error:'));
  expect(errors, r.stderr).toHaveLength(1);
  expect(errors[0], r.stderr).toContain(needle);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).not.toContain('BUCKETSYNC_DEBUG');
}

describe.skipIf(!endpoint)('attack: an Azure endpoint that is not Azure Blob Storage', () => {
  it('an S3-like server answering 400, and https spoken to the emulator\'s http port: exit 2, one line naming the endpoint, for sync, ls, cp and rm', async () => {
    const container = await createTestContainer('ev2-endpoint');
    await putBlobs(container, { 'p/a.txt': 'a' });
    // What Ceph RGW or MinIO answer to an Azure request: 400 with an S3 XML error.
    const notAzure = http.createServer((req, res) => {
      req.resume();
      res.writeHead(400, { 'content-type': 'application/xml' });
      res.end(req.method === 'HEAD' ? undefined : '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code></Error>');
    });
    await new Promise<void>((r) => notAzure.listen(0, '127.0.0.1', r));
    const s3Like = `http://127.0.0.1:${(notAzure.address() as AddressInfo).port}/devstoreaccount1`;
    const tlsToHttp = endpoint!.replace(/^http:/, 'https:');
    const src = path.join(work, 'ep-src');
    const dst = path.join(work, 'ep-dst');
    writeTree(src, { 'up.txt': 'u' }, T0);
    fs.mkdirSync(dst, { recursive: true });
    let cases = 0;
    try {
      for (const ep of [s3Like, tlsToHttp]) {
        for (const args of [
          ['sync', src, `az://${container}/p`],
          ['sync', `az://${container}/p`, dst, '--delete'],
          ['ls', `az://${container}`, '-R'],
          ['ls', 'az://'],
          ['cp', `az://${container}/p/a.txt`, '-'],
          ['rm', '-R', '-y', `az://${container}/p`],
        ]) {
          const r = await cli([...args, '--azure-endpoint', ep], { env: azEnv(), timeoutMs: 30_000 });
          expect(r.code, `${args.join(' ')} at ${ep}: ${r.stderr}`).toBe(2);
          expectOneCleanLine(r, ep);
          expect(r.stdout).toBe('');
          cases++;
        }
      }
    } finally {
      notAzure.close();
    }
    expect(cases).toBe(12);
    // Nothing was written or removed anywhere.
    expect(readTree(dst)).toEqual({});
    const ok = await cli(['ls', `az://${container}`, '-R'], { env: azEnv() });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('p/a.txt');
    expect(ok.stdout).not.toContain('up.txt');
  }, 60_000);
});

describe('attack: HF_ENDPOINT https:// on a plain-HTTP port', () => {
  it('ls, ls NAMESPACE, rm -R, cp up and down, sync both ways: exit 2, one line naming the endpoint and TLS', async () => {
    const plain = http.createServer((req, res) => {
      req.resume();
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const ep = `https://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    const src = path.join(work, 'hf-tls-src');
    writeTree(src, { 'a.txt': 'a' }, T0);
    const dst = path.join(work, 'hf-tls-dst');
    let cases = 0;
    try {
      for (const args of [
        ['ls', 'hf://buckets/someone/b'],
        ['ls', 'someone'],
        ['rm', '-R', '-y', 'hf://buckets/someone/b/p'],
        ['cp', path.join(src, 'a.txt'), 'hf://buckets/someone/b/a.txt'],
        ['cp', 'hf://buckets/someone/b/a.txt', '-'],
        ['sync', src, 'hf://buckets/someone/b/p'],
        ['sync', 'hf://buckets/someone/b/p', dst, '--delete'],
      ]) {
        const r = await cli(args, { env: { HF_ENDPOINT: ep, HF_TOKEN: 'hf_attack_not_a_token', BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') }, timeoutMs: 30_000 });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
        expectOneCleanLine(r, `Cannot reach ${ep} over TLS`);
        expect(r.stderr).not.toContain('hf_attack_not_a_token');
        cases++;
      }
    } finally {
      plain.close();
    }
    expect(cases).toBe(7);
    expect(fs.existsSync(dst) ? readTree(dst) : {}).toEqual({});
  }, 60_000);
});

/** Runs the CLI with its stdout on /dev/full (every write fails with ENOSPC). */
function toDevFull(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  const fd = fs.openSync('/dev/full', 'w');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', fd, 'pipe'], env: { ...process.env, BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), ...env } });
    fs.closeSync(fd);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe.skipIf(!fs.existsSync('/dev/full'))('attack: a stdout that cannot be written', () => {
  it('ls, --dry-run, plan show, cp to -, and a --json sync > /dev/full: one line, exit 1, no stack trace; the sync still copies everything', async () => {
    const src = path.join(work, 'full-src');
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i++) files[`d/f${i}.txt`] = `file ${i}`;
    writeTree(src, files, T0);
    const plan = path.join(work, 'full-plan.jsonl');
    const p = await cli(['sync', src, path.join(work, 'full-unused'), '--plan', plan]);
    expect(p.code, p.stderr).toBe(0);
    const runs: [string[], Record<string, string>][] = [
      [['ls', src, '-R'], {}],
      [['sync', src, path.join(work, 'full-dry'), '--dry-run'], {}],
      [['plan', 'show', plan], {}],
      [['sync', src, path.join(work, 'full-json'), '--json'], {}],
    ];
    if (endpoint) {
      const container = await createTestContainer('ev2-full');
      await putBlobs(container, { 'x.bin': 'x'.repeat(100_000) });
      runs.push([['cp', `az://${container}/x.bin`, '-'], azEnv()]);
    }
    for (const [args, env] of runs) {
      const r = await toDevFull(args, env);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toMatch(/^Error: cannot write to stdout: ENOSPC/m);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('Error:')), r.stderr).toHaveLength(1);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stderr).not.toContain('Node.js v');
    }
    // The --json sync finished its transfers although its events could not be written.
    expect(readTree(path.join(work, 'full-json'))).toEqual(files);
    expect(fs.existsSync(path.join(work, 'full-dry'))).toBe(false);
  }, 60_000);
});

/**
 * A proxy in front of the emulator that logs every request path and, with `holdListings`,
 * holds every List Blobs request (until closed) and counts them: the CLI is then provably
 * inside its listing when the test signals it.
 */
async function emulatorProxy(
  target: string,
  holdListings: boolean,
  fakeList?: (url: string) => string | undefined,
): Promise<{ url: string; listings: () => number; paths: string[]; close: () => void }> {
  const t = new URL(target);
  let listings = 0;
  const paths: string[] = [];
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    const fake = /[?&]comp=list/.test(req.url ?? '') ? fakeList?.(req.url ?? '') : undefined;
    if (fake !== undefined) {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(fake);
      return;
    }
    if (holdListings && /[?&]comp=list/.test(req.url ?? '')) {
      listings++;
      held.push(res);
      req.resume();
      return;
    }
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${t.pathname}`,
    listings: () => listings,
    paths,
    close: () => {
      for (const r of held) r.destroy();
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Starts the CLI, sends `signal` once `ready()` is true, and returns how it ended. */
function signalWhen(args: string[], env: Record<string, string>, ready: () => boolean, signal: NodeJS.Signals): Promise<{ code: number | null; sig: NodeJS.Signals | null; stdout: string; stderr: string; sent: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const poll = setInterval(() => {
      if (!sent && ready()) {
        sent = true;
        child.kill(signal);
      }
    }, 10);
    const giveUp = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code, sig) => {
      clearInterval(poll);
      clearTimeout(giveUp);
      resolve({ code, sig, stdout, stderr, sent });
    });
  });
}

describe.skipIf(!endpoint)('attack: interrupted while listing', () => {
  it('SIGINT and SIGTERM during the listing of a sync --delete, a --json sync and a --plan: exit 130, nothing deleted, no plan file; the re-run converges', async () => {
    const container = await createTestContainer('ev2-interrupt');
    await putBlobs(container, { 'p/a.txt': 'A', 'p/sub/b.txt': 'B' });
    const dst = path.join(work, 'int-dst');
    writeTree(dst, { 'extra.txt': 'mine' }, T0);
    const plan = path.join(work, 'int-plan.jsonl');
    let cases = 0;
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      for (const extra of [[], ['--json'], ['--plan', plan]]) {
        const proxy = await emulatorProxy(endpoint!, true);
        try {
          const r = await signalWhen(['sync', `az://${container}/p`, dst, '--delete', '--no-progress', '--azure-endpoint', proxy.url, ...extra], azEnv(), () => proxy.listings() > 0, signal);
          const what = `${signal} ${extra.join(' ')}: ${r.stderr}`;
          expect(r.sent, what).toBe(true);
          expect(r.code, what).toBe(130);
          expect(r.stderr, what).toContain('interrupted before the end: re-run the same command to finish');
          expect(r.stderr, what).not.toMatch(/^Error:/m);
          if (extra[0] === '--json') {
            const summary = jsonl(r.stdout).find((e) => e['event'] === 'summary')!;
            expect(summary, what).toMatchObject({ exit_code: 130, interrupted: true });
          }
          expect(fs.existsSync(plan), what).toBe(false);
          expect(readTree(dst), what).toEqual({ 'extra.txt': 'mine' });
          cases++;
        } finally {
          proxy.close();
        }
      }
    }
    expect(cases).toBe(6);
    const again = await cli(['sync', `az://${container}/p`, dst, '--delete'], { env: azEnv() });
    expect(again.code, again.stderr).toBe(0);
    expect(readTree(dst)).toEqual({ 'a.txt': 'A', 'sub/b.txt': 'B' });
    const noop = await cli(['sync', `az://${container}/p`, dst, '--delete'], { env: azEnv() });
    expect(noop.code, noop.stderr).toBe(0);
    expect(noop.stderr).toContain('Nothing to sync.');
  }, 60_000);
});

describe.skipIf(!endpoint)('attack: blob names with dot segments are never put into a URL', () => {
  it('rm -R over p/../x, p/./w, p/../../OTHER/x: those are named and kept (exit 1), p/keep is removed, no request path has a dot segment', async () => {
    const container = await createTestContainer('ev2-dots');
    const other = await createTestContainer('ev2-dots-other');
    for (const n of ['p/keep', 'p/../x', 'p/./w', `p/../../${other}/x`, 'x']) expect(await putEncodedBlob(container, n, `#${n}`), n).toBe(201);
    expect(await putEncodedBlob(other, 'x', 'theirs')).toBe(201);
    const proxy = await emulatorProxy(endpoint!, false);
    let r: CliResult;
    try {
      r = await cli(['rm', '-R', '-y', `az://${container}/p`, '--azure-endpoint', proxy.url], { env: azEnv() });
    } finally {
      proxy.close();
    }
    expect(r.code, r.stderr).toBe(1);
    for (const n of ['p/../x', 'p/./w', `p/../../${other}/x`]) expect(r.stderr).toContain(`- ${n}: `);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    const dotSegment = /\/(\.|%2e){1,2}(\/|\?|$)/i;
    expect(proxy.paths.filter((p) => dotSegment.test(p))).toEqual([]);
    expect(proxy.paths.some((p) => p.includes('/p/keep'))).toBe(true);
    const left = await cli(['ls', `az://${container}`, '-R'], { env: azEnv() });
    const names = left.stdout.split('\n').map((l) => l.trim().split(/\s+/).pop()).filter(Boolean);
    expect(names.sort()).toEqual([`p/../../${other}/x`, 'p/../x', 'p/./w', 'x'].sort());
    const theirs = await cli(['cp', `az://${other}/x`, '-'], { env: azEnv() });
    expect(theirs.stdout).toBe('theirs');
  }, 30_000);
});

describe.skipIf(!endpoint)('attack: names with a segment ending in "." never reach Azure', () => {
  it('sync of a, a., dir./f, dir/f (and --delete, and a re-run): a. and dir./f skipped (exit 3) and named, a and dir/f intact; cp and a dotted prefix refused (exit 2); no request carries such a name', async () => {
    const container = await createTestContainer('ev2-trailing-dot');
    const src = path.join(work, 'tdot-src');
    writeTree(src, { a: 'plain a', 'a.': 'dotted a', 'dir./f': 'dotted dir', 'dir/f': 'plain dir', ok: 'ok' }, T0);
    const proxy = await emulatorProxy(endpoint!, false);
    const runs: CliResult[] = [];
    try {
      for (const extra of [[], ['--delete'], ['--delete']]) {
        runs.push(await cli(['sync', src, `az://${container}/p`, '--azure-endpoint', proxy.url, ...extra], { env: azEnv() }));
      }
      runs.push(await cli(['cp', path.join(src, 'a.'), `az://${container}/p/`, '--azure-endpoint', proxy.url], { env: azEnv() }));
      runs.push(await cli(['cp', path.join(src, 'a'), `az://${container}/q./a`, '--azure-endpoint', proxy.url], { env: azEnv() }));
      runs.push(await cli(['sync', src, `az://${container}/dir.`, '--azure-endpoint', proxy.url], { env: azEnv() }));
    } finally {
      proxy.close();
    }
    for (const r of runs.slice(0, 3)) {
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/skipping a\.: cannot be stored in az:\/\/.*segment ending in "\."/);
      expect(r.stderr).toMatch(/skipping dir\.\/f: /);
    }
    expect(runs[2]!.stderr).toContain('Nothing else to sync.');
    for (const r of runs.slice(3)) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('Error:'))).toHaveLength(1);
      expect(r.stderr).toContain('segment ending in "."');
    }
    // No request path has a segment ending in a dot (raw or percent-encoded).
    expect(proxy.paths.filter((p) => /(\.|%2e)(\/|\?|$)/i.test(p.split('?')[0]!) || /(\.|%2e)\?/i.test(p))).toEqual([]);
    const back = path.join(work, 'tdot-back');
    const d = await cli(['sync', `az://${container}/p`, back], { env: azEnv() });
    expect(d.code, d.stderr).toBe(0);
    expect(readTree(back)).toEqual({ a: 'plain a', 'dir/f': 'plain dir', ok: 'ok' });
  }, 60_000);
});

describe.skipIf(!endpoint)('attack: a directory as the stdin of cp -', () => {
  it('cp - az://… < folder: exit 2, one line, the existing blob untouched; a pipe still uploads', async () => {
    const container = await createTestContainer('ev2-stdin');
    await putBlobs(container, { precious: 'precious bytes' });
    const run = (stdin: number | 'pipe', input?: string): Promise<{ code: number | null; stderr: string }> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [BIN, 'cp', '-', `az://${container}/${input === undefined ? 'precious' : 'piped'}`], { stdio: [stdin, 'ignore', 'pipe'], env: { ...process.env, ...azEnv() } });
        let stderr = '';
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        if (input !== undefined) child.stdin!.end(input);
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stderr }));
      });
    for (const dir of [work, '/']) {
      const fd = fs.openSync(dir, 'r');
      let r: { code: number | null; stderr: string };
      try {
        r = await run(fd);
      } finally {
        fs.closeSync(fd);
      }
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('Error:'))).toEqual(['Error: Standard input is a directory, not data to upload']);
    }
    const left = await cli(['cp', `az://${container}/precious`, '-'], { env: azEnv() });
    expect(left.stdout).toBe('precious bytes');
    const piped = await run('pipe', 'through a pipe');
    expect(piped.code, piped.stderr).toBe(0);
    expect((await cli(['cp', `az://${container}/piped`, '-'], { env: azEnv() })).stdout).toBe('through a pipe');
  }, 30_000);
});

/** The `bucketsync-…` entries of a folder used as the CLI's TMPDIR. */
const ours = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.startsWith('bucketsync-'));

describe('attack: temporary spools are removed however the run ends (short of SIGKILL)', () => {
  it('--dry-run | head -1 and --dry-run > /dev/full leave no plan spool in TMPDIR', async () => {
    const src = path.join(work, 'spool-src');
    const files: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) files[`some/longer/folder/name/file-${String(i).padStart(5, '0')}.txt`] = `${i}`;
    writeTree(src, files, T0);
    const tmp = path.join(work, 'spool-tmp');
    fs.mkdirSync(tmp, { recursive: true });
    // The reader takes one line and goes away (the plan is ~600 KB: far more than a pipe holds).
    const head = await new Promise<{ code: number | null; first: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'sync', src, path.join(work, 'spool-dst'), '--dry-run'], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, TMPDIR: tmp } });
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\n')) child.stdout!.destroy();
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, first: buf.split('\n')[0]! }));
    });
    expect(JSON.parse(head.first)).toMatchObject({ type: 'header' });
    expect(head.code).toBe(0);
    expect(ours(tmp)).toEqual([]);
    if (fs.existsSync('/dev/full')) {
      const full = await toDevFull(['sync', src, path.join(work, 'spool-dst'), '--dry-run'], { TMPDIR: tmp });
      expect(full.code, full.stderr).toBe(1);
      expect(ours(tmp)).toEqual([]);
    }
  }, 30_000);

  it.skipIf(!endpoint)('Ctrl-C and SIGTERM while cp - spools stdin: exit 130, the spool removed, nothing uploaded', async () => {
    const container = await createTestContainer('ev2-spool');
    const tmp = path.join(work, 'stdin-tmp');
    fs.mkdirSync(tmp, { recursive: true });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const r = await new Promise<{ code: number | null; sig: NodeJS.Signals | null; sent: boolean }>((resolve, reject) => {
        const child = spawn(process.execPath, [BIN, 'cp', '-', `az://${container}/from-stdin`], { stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, ...azEnv(), TMPDIR: tmp } });
        child.stdin!.on('error', () => {}); // the CLI goes away with our data unread
        child.stdin!.write(Buffer.alloc(4 * 1024 * 1024, 7)); // and stdin stays open: the spool is in progress
        let sent = false;
        const poll = setInterval(() => {
          try {
            const dirs = ours(tmp);
            if (!sent && dirs.length > 0 && fs.readdirSync(path.join(tmp, dirs[0]!)).length > 0) {
              sent = true;
              child.kill(signal);
            }
          } catch {
            // the spool comes and goes: not yet
          }
        }, 10);
        const giveUp = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.on('error', reject);
        child.on('close', (code, sig) => {
          clearInterval(poll);
          clearTimeout(giveUp);
          resolve({ code, sig, sent });
        });
      });
      expect(r.sent, signal).toBe(true);
      expect(r.code, `${signal} ${r.sig}`).toBe(130);
      expect(ours(tmp), signal).toEqual([]);
    }
    const ls = await cli(['ls', `az://${container}`, '-R'], { env: azEnv() });
    expect(ls.stdout).not.toContain('from-stdin');
  }, 40_000);
});

/** The plan's lines with `edit` applied to the operation on `target` (a fresh file). */
function editPlan(plan: string, target: string, edit: (op: Record<string, unknown>) => void, out: string): string {
  const lines = fs.readFileSync(plan, 'utf8').split('\n').filter(Boolean);
  const edited = lines.map((l, i) => {
    if (i === 0) return l;
    const op = JSON.parse(l) as Record<string, unknown>;
    if (op['path'] === target) edit(op);
    return JSON.stringify(op);
  });
  fs.writeFileSync(out, `${edited.join('\n')}\n`);
  return out;
}

const FORGED_ETAGS = ['*', '"*"', 'W/"*"', '"0x1", *', '"0x1",*', '"a,*"', '"0x1"\r\nx-ms-meta-evil: 1', '"'];

describe.skipIf(!endpoint)('attack: a forged dest_etag in a plan', () => {
  it('a delete whose blob changed since the plan, with dest_etag edited to * (and 7 other forgeries): refused, exit 2, the newer blob kept; the honest line, and one with an empty dest_etag (a listing without ETags), are stale', async () => {
    const container = await createTestContainer('ev2-etag');
    await putBlobs(container, { 'p/v': 'old' });
    const empty = path.join(work, 'etag-empty');
    fs.mkdirSync(empty, { recursive: true });
    const plan = path.join(work, 'etag-plan.jsonl');
    const p = await cli(['sync', empty, `az://${container}/p`, '--delete', '--allow-empty-source', '--plan', plan], { env: azEnv() });
    expect(p.code, p.stderr).toBe(0);
    await putBlobs(container, { 'p/v': 'NEWER CONTENT' });
    for (const forged of FORGED_ETAGS) {
      const edited = editPlan(plan, 'v', (op) => (op['dest_etag'] = forged), path.join(work, 'etag-forged.jsonl'));
      const r = await cli(['sync', '--apply', edited], { env: azEnv() });
      expect(r.code, `${JSON.stringify(forged)}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/etag-forged\.jsonl:2: invalid dest_etag/);
    }
    // an empty dest_etag names no version: the size and mtime decide, as without one
    const blank = editPlan(plan, 'v', (op) => (op['dest_etag'] = ''), path.join(work, 'etag-blank.jsonl'));
    for (const p of [plan, blank]) {
      const honest = await cli(['sync', '--apply', p], { env: azEnv() });
      expect(honest.code, honest.stderr).toBe(1);
      expect(honest.stderr).toMatch(/stale, left untouched: v \(delete\)/);
    }
    expect((await cli(['cp', `az://${container}/p/v`, '-'], { env: azEnv() })).stdout).toBe('NEWER CONTENT');
  }, 40_000);
});

describe.skipIf(!s3TestEndpoint())('attack: a forged dest_etag in a plan (S3)', () => {
  // Not a hole on RGW before (its answer was 412: stale, exit 1); the plan is now refused before anything runs.
  it('an upload over an object that changed since the plan, with dest_etag edited to "*": refused, exit 2, the newer object kept', async () => {
    const bucket = await createTestBucket('ev2-etag');
    const env = { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') };
    const src = path.join(work, 's3-etag-src');
    writeTree(src, { 'k.txt': 'first' }, T0);
    expect((await cli(['sync', src, `s3://${bucket}/p`], { env })).code).toBe(0);
    writeTree(src, { 'k.txt': 'second version' }, T0 + 10);
    const plan = path.join(work, 's3-etag-plan.jsonl');
    expect((await cli(['sync', src, `s3://${bucket}/p`, '--plan', plan], { env })).code).toBe(0);
    // Someone else writes a newer object meanwhile.
    const other = path.join(work, 's3-etag-other');
    writeTree(other, { 'k.txt': 'THEIRS, newer' }, T0 + 20);
    expect((await cli(['cp', path.join(other, 'k.txt'), `s3://${bucket}/p/k.txt`], { env })).code).toBe(0);
    for (const forged of ['"*"', '*', 'W/"*"']) {
      const edited = editPlan(plan, 'k.txt', (op) => (op['dest_etag'] = forged), path.join(work, 's3-etag-forged.jsonl'));
      const r = await cli(['sync', '--apply', edited], { env });
      expect(r.code, `${forged}: ${r.stderr}`).toBe(2);
      expect((await cli(['cp', `s3://${bucket}/p/k.txt`, '-'], { env })).stdout).toBe('THEIRS, newer');
    }
  }, 40_000);
});

describe.skipIf(!endpoint)('attack: a List Blobs marker that comes back', () => {
  it('the same page forever, and two markers in a cycle: sync --delete, ls -R and ls az:// stop with one line, exit 1, nothing deleted', async () => {
    const container = await createTestContainer('ev2-marker');
    const dst = path.join(work, 'marker-dst');
    writeTree(dst, { 'mine.txt': 'mine' }, T0);
    const page = (name: string, next: string, root = false): string =>
      root
        ? `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="x"><Containers><Container><Name>${name}</Name><Properties><Last-Modified>Tue, 14 Nov 2023 22:13:20 GMT</Last-Modified></Properties></Container></Containers><NextMarker>${next}</NextMarker></EnumerationResults>`
        : `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="x" ContainerName="${container}"><Blobs><Blob><Name>p/${name}</Name><Properties><Last-Modified>Tue, 14 Nov 2023 22:13:20 GMT</Last-Modified><Etag>0x1</Etag><Content-Length>1</Content-Length></Properties><Metadata /></Blob></Blobs><NextMarker>${next}</NextMarker></EnumerationResults>`;
    let cases = 0;
    for (const cycle of [['m1'], ['m1', 'm2']]) {
      const proxy = await emulatorProxy(endpoint!, false, (url) => {
        const m = /[?&]marker=([^&]*)/.exec(url)?.[1] ?? '';
        const i = (cycle.indexOf(m) + 1) % cycle.length;
        return page(`f-${i}`, cycle[i]!, !/restype=container/.test(url));
      });
      try {
        for (const args of [
          ['sync', `az://${container}/p`, dst, '--delete'],
          ['ls', `az://${container}/p`, '-R'],
          ['ls', 'az://'],
        ]) {
          const started = Date.now();
          const r = await cli([...args, '--azure-endpoint', proxy.url], { env: azEnv(), timeoutMs: 20_000 });
          expect(r.signal, `${args.join(' ')} ${cycle}: killed by the test's timeout (a hang)`).toBeNull();
          expect(r.code, `${args.join(' ')} ${cycle}: ${r.stderr}`).toBe(1);
          expect(r.stderr.split('\n').filter((l) => l.startsWith('Error:')), r.stderr).toHaveLength(1);
          expect(r.stderr).toMatch(/continuation marker 'm[12]' twice/);
          expect(Date.now() - started).toBeLessThan(15_000);
          cases++;
        }
      } finally {
        proxy.close();
      }
    }
    expect(cases).toBe(6);
    expect(readTree(dst)).toEqual({ 'mine.txt': 'mine' });
  }, 150_000);
});

describe('attack: an hf Link header that points back', () => {
  it('a tree page linking to itself, and two pages in a cycle: sync --delete, ls -R and ls NAMESPACE stop with one line, exit 1, nothing deleted', async () => {
    let cycle: string[] = [];
    const hub = http.createServer((req, res) => {
      req.resume();
      const url = new URL(req.url ?? '/', 'http://x');
      const page = url.searchParams.get('page') ?? cycle[0]!;
      const next = cycle[(cycle.indexOf(page) + 1) % cycle.length]!;
      const link = (u: URL): string => {
        u.searchParams.set('page', next);
        return `<${u.pathname}${u.search}>; rel="next"`;
      };
      if (/\/tree/.test(url.pathname)) {
        res.writeHead(200, { 'content-type': 'application/json', link: link(url) });
        res.end(JSON.stringify([{ type: 'file', path: `p/f-${page}`, size: 1, mtime: '2023-11-14T22:13:20.000Z' }]));
      } else if (url.pathname.endsWith('/paths-info')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('[]');
      } else if (/^\/api\/buckets\/[^/]+$/.test(url.pathname)) {
        res.writeHead(200, { 'content-type': 'application/json', link: link(url) });
        res.end(JSON.stringify([{ id: `someone/b-${page}`, private: false }]));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'someone/b', private: false }));
      }
    });
    await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
    const ep = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
    const dst = path.join(work, 'hf-link-dst');
    writeTree(dst, { 'mine.txt': 'mine' }, T0);
    let cases = 0;
    try {
      for (const c of [['a'], ['a', 'b']]) {
        cycle = c;
        for (const args of [
          ['sync', 'hf://buckets/someone/b/p', dst, '--delete'],
          ['ls', 'hf://buckets/someone/b/p', '-R'],
          ['ls', 'someone'],
        ]) {
          const r = await cli(args, { env: { HF_ENDPOINT: ep, HF_TOKEN: 'hf_x', BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') }, timeoutMs: 20_000 });
          expect(r.signal, `${args.join(' ')} ${c}: killed by the test's timeout (a hang)`).toBeNull();
          expect(r.code, `${args.join(' ')} ${c}: ${r.stderr}`).toBe(1);
          expect(r.stderr.split('\n').filter((l) => l.startsWith('Error:')), r.stderr).toHaveLength(1);
          // The store's order check may see the cycle first (a page's paths coming back).
          expect(r.stderr).toMatch(/sent a page it had already sent|came back out of order/);
          cases++;
        }
      }
    } finally {
      hub.close();
    }
    expect(cases).toBe(6);
    expect(readTree(dst)).toEqual({ 'mine.txt': 'mine' });
  }, 150_000);
});

describe.skipIf(!endpoint)('attack: a second Ctrl-C while --plan lists', () => {
  it('quits at once (130) and leaves no temporary plan file beside the plan', async () => {
    const container = await createTestContainer('ev2-plan-quit');
    await putBlobs(container, { 'p/a.txt': 'A' });
    const dir = path.join(work, 'plan-quit');
    fs.mkdirSync(dir, { recursive: true });
    const proxy = await emulatorProxy(endpoint!, true);
    try {
      const r = await new Promise<{ code: number | null; stderr: string; sent: number }>((resolve, reject) => {
        const child = spawn(process.execPath, [BIN, 'sync', `az://${container}/p`, path.join(dir, 'dst'), '--plan', path.join(dir, 'plan.jsonl'), '--no-progress', '--azure-endpoint', proxy.url], {
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { ...process.env, ...azEnv() },
        });
        let stderr = '';
        let sent = 0;
        child.stderr!.on('data', (d: Buffer) => {
          stderr += d.toString();
          // The second Ctrl-C once the first was seen (the listing is held: it cannot end by itself).
          if (sent === 1 && stderr.includes('Interrupted:')) {
            sent = 2;
            child.kill('SIGINT');
          }
        });
        const poll = setInterval(() => {
          if (sent === 0 && proxy.listings() > 0) {
            sent = 1;
            child.kill('SIGINT');
          }
        }, 10);
        const giveUp = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.on('error', reject);
        child.on('close', (code) => {
          clearInterval(poll);
          clearTimeout(giveUp);
          resolve({ code, stderr, sent });
        });
      });
      expect(r.sent, r.stderr).toBe(2);
      expect(r.code, r.stderr).toBe(130);
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      proxy.close();
    }
  }, 30_000);
});
