/**
 * Issue 13 through the real CLI: one writer per destination however it is spelled (class 8),
 * no input that hangs or eats memory (9), secrets and terminals (15, 22), bucket command exit
 * codes (19) and locations validated before anything is sent (21), for local, S3 (RGW) and hf
 * (the local Hub test server).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BIN, cli, readTree, summaryEvent, tempDir, writeTree } from '../support/cli.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';

const T0 = 1_700_000_000;
const ESC_TITLE = '\u001b]0;pwned\u0007'; // sets the terminal title when printed raw
const FORGED = 'x\nSync completed.'; // forges a completion line when printed raw
const BIDI = 'invoice\u202egpj.exe';

let work: string;
let src: string;
let dst: string;

beforeEach(() => {
  work = tempDir('bucketsync-safety-cli-');
  src = path.join(work, 'src');
  dst = path.join(work, 'dst');
  fs.mkdirSync(src);
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

/**
 * A HOME that cannot exist, even for root (who could create /nonexistent): below a regular file.
 * Made in beforeEach.
 */
let noHome: string;
beforeEach(() => {
  fs.writeFileSync(path.join(work, 'plain-file'), 'x');
  noHome = path.join(work, 'plain-file', 'home');
});

/** No raw control character (other than line ends) and no bidi override in `text`. */
function expectInert(text: string): void {
  // eslint-disable-next-line no-control-regex
  expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
}

/**
 * Files of a slow run: once executing it holds its lock for SLOW_FILES × 400 ms (6.4 s), room
 * for the one to three CLI runs each case starts meanwhile even on a loaded machine (8 files,
 * 3.2 s, left little for two Node start-ups on a busy 2-core CI runner).
 */
const SLOW_FILES = 16;

/** Starts a CLI that holds its destination's lock for a while; resolves once it is executing. */
async function startSlowRun(args: string[], env: Record<string, string> = {}): Promise<{ pid: number; done: Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, BUCKETSYNC_TEST_DELAY_MS: '400', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const done = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/Syncing\.\.\.|Executing plan/.test(err)) resolve();
    });
    void done.then(() => reject(new Error(`slow run ended early: ${err}`)));
  });
  return { pid: child.pid!, done };
}

describe('class 8: one writer per destination, however it is spelled', () => {
  it('a second run through a symlinked spelling, under another HOME, is refused naming the holder PID', async () => {
    writeTree(src, Object.fromEntries(Array.from({ length: SLOW_FILES }, (_, i) => [`f${i}.txt`, `file ${i}`])), T0);
    fs.mkdirSync(dst);
    const link = path.join(work, 'link-to-dst');
    fs.symlinkSync(dst, link);
    const other = path.join(work, 'src2');
    writeTree(other, { 'z.txt': 'z' }, T0);
    const first = await startSlowRun(['sync', src, dst], { HOME: path.join(work, 'home1') });
    try {
      const second = await cli(['sync', other, link + '/'], { env: { HOME: noHome, XDG_CACHE_HOME: undefined, BUCKETSYNC_CACHE_DIR: undefined } });
      expect(second.code).toBe(2);
      const errors = second.stderr.split('\n').filter((l) => l.startsWith('Error:'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(`PID ${first.pid}`);
      expect(fs.existsSync(path.join(dst, 'z.txt'))).toBe(false);
      // A destination that does not exist yet, below the symlink: keyed by its real parent.
      const third = await cli(['sync', other, path.join(link, '.')], { env: { HOME: path.join(work, 'home3') } });
      expect(third.code).toBe(2);
      expect(third.stderr).toContain(`PID ${first.pid}`);
    } finally {
      expect(await first.done).toBe(0);
    }
    // Once the holder is gone, the same command runs.
    const after = await cli(['sync', other, link], { env: { HOME: noHome, XDG_CACHE_HOME: undefined, BUCKETSYNC_CACHE_DIR: undefined } });
    expect(after.code).toBe(0);
    expect(readTree(dst)['z.txt']).toBe('z');
  });

  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  it.skipIf(!asRoot)('another user is refused too, and takes over a dead holder\'s lock in the sticky folder', async () => {
    writeTree(src, Object.fromEntries(Array.from({ length: SLOW_FILES }, (_, i) => [`f${i}.txt`, `file ${i}`])), T0);
    fs.mkdirSync(dst);
    for (const d of [work, src, dst]) fs.chmodSync(d, 0o777);
    for (const f of fs.readdirSync(src)) fs.chmodSync(path.join(src, f), 0o644);
    const asNobody = (args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, ...args], {
          uid: 65534,
          gid: 65534,
          cwd: '/',
          env: { PATH: process.env['PATH'] ?? '', HOME: noHome },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code) => resolve({ code, stderr }));
      });
    const first = await startSlowRun(['sync', src, dst]);
    try {
      const r = await asNobody(['sync', src, dst]);
      expect(r.stderr).toContain(`PID ${first.pid}`);
      expect(r.code).toBe(2);
    } finally {
      process.kill(first.pid, 'SIGKILL'); // dies holding the lock: its file stays, owned by root
      await first.done;
    }
    const after = await asNobody(['sync', src, dst]);
    expect(after.stderr).not.toContain('another bucketsync run');
    expect(after.code).toBe(0);
    expect(Object.keys(readTree(dst)).filter((n) => !n.startsWith('.')).sort()).toEqual(Object.keys(readTree(src)).sort());
    expect((await cli(['sync', src, dst])).code).toBe(0);
  });

  it('--apply takes the same lock as sync', async () => {
    writeTree(src, Object.fromEntries(Array.from({ length: SLOW_FILES }, (_, i) => [`f${i}.txt`, `file ${i}`])), T0);
    const plan = path.join(work, 'p.jsonl');
    expect((await cli(['sync', src, dst, '--plan', plan])).code).toBe(0);
    fs.mkdirSync(dst);
    const first = await startSlowRun(['sync', src, fs.realpathSync(dst)]);
    try {
      const r = await cli(['sync', '--apply', plan]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`PID ${first.pid}`);
    } finally {
      await first.done;
    }
  });

  it('an unusable HOME, cache and lock folder never fail a run: one warning, exit 0', async () => {
    writeTree(src, { 'a.txt': 'a' }, T0);
    const notADir = path.join(work, 'plain-file');
    const env = { HOME: noHome, XDG_CACHE_HOME: undefined, BUCKETSYNC_CACHE_DIR: undefined, BUCKETSYNC_LOCK_DIR: path.join(notADir, 'locks') };
    const r = await cli(['sync', src, dst], { env });
    expect(r.stderr).toMatch(/Warning: .*running without the one-writer lock/);
    expect(r.code).toBe(0);
    expect(readTree(dst)).toEqual({ 'a.txt': 'a' });
    // With the shared folder usable, HOME does not matter at all.
    const r2 = await cli(['sync', src, path.join(work, 'dst2')], { env: { HOME: noHome, XDG_CACHE_HOME: undefined, BUCKETSYNC_CACHE_DIR: undefined } });
    expect(r2.code).toBe(0);
    expect(r2.stderr).not.toContain('Warning');
  });
});

describe('class 9: no input makes it hang or eat memory', () => {
  it('--filter-from refuses /dev/zero, a fifo, a directory, a 2 MiB file and 100,001 rules by name, quickly', async () => {
    writeTree(src, { 'a.txt': 'a' }, T0);
    const fifo = path.join(work, 'rules.fifo');
    execFileSync('mkfifo', [fifo]);
    const big = path.join(work, 'big.rules');
    fs.writeFileSync(big, `- ${'x'.repeat(2 * 1024 * 1024)}\n`);
    const many = path.join(work, 'many.rules');
    fs.writeFileSync(many, Array.from({ length: 100_001 }, (_, i) => `- f${i}`).join('\n'));
    const cases: [string, RegExp][] = [
      ['/dev/zero', /Filter file is a character device: \/dev\/zero/],
      [fifo, /Filter file is a named pipe \(fifo\): .*rules\.fifo/],
      [work, /Filter file is a directory/],
      [big, /Filter file .*big\.rules is larger than 1048576 bytes/],
      [many, /Filter file .*many\.rules has 100001 rules, more than the 100000 accepted/],
    ];
    for (const [file, why] of cases) {
      const started = Date.now();
      const r = await cli(['sync', src, dst, '--filter-from', file], { timeoutMs: 20_000 });
      expect(r.stderr).toMatch(why);
      expect(r.code).toBe(2);
      expect(r.stderr).not.toContain('BUCKETSYNC_DEBUG');
      expect(Date.now() - started).toBeLessThan(15_000);
    }
    expect(fs.existsSync(dst)).toBe(false);
  });
});

describe('class 15: names reach the terminal escaped, one line each (local)', () => {
  it('sync -v, --dry-run stays raw JSONL, ls and rm print escaped names', async () => {
    writeTree(src, { [ESC_TITLE]: 'a', [FORGED]: 'b', [BIDI]: 'c' }, T0);
    const r = await cli(['sync', src, dst, '-v']);
    expect(r.code).toBe(0);
    expectInert(r.stderr);
    expect(r.stderr).toContain('Uploading: \\x1b]0;pwned\\x07 (new file)');
    expect(r.stderr).toContain('Uploading: x\\nSync completed. (new file)');
    expect(r.stderr).toContain('invoice\\u202egpj.exe');
    expect(r.stderr.split('\n').filter((l) => l === 'Sync completed.')).toHaveLength(1);
    // JSON output keeps the exact names
    const dry = await cli(['sync', src, path.join(work, 'd2'), '--dry-run']);
    expect(dry.stdout).toContain(JSON.stringify(FORGED).slice(1, -1));
    const ls = await cli(['ls', dst]);
    expect(ls.code).toBe(0);
    expectInert(ls.stdout);
    expect(ls.stdout).toContain('\\x1b]0;pwned\\x07');
    const lsq = await cli(['ls', dst, '-q']);
    expectInert(lsq.stdout);
    const lsj = await cli(['ls', dst, '--format', 'json']);
    expect(JSON.parse(lsj.stdout).map((i: { path: string }) => i.path)).toContain(FORGED);
    const rm = await cli(['rm', '-R', dst, '-y', '--dry-run']);
    expect(rm.code).toBe(0);
    expectInert(rm.stdout + rm.stderr);
    expect(rm.stdout).toContain('x\\nSync completed.');
    const missing = await cli(['rm', path.join(dst, `${ESC_TITLE}-missing`)]);
    expect(missing.code).not.toBe(0);
    expectInert(missing.stderr);
  });

  it('plan show and --apply errors print plan paths escaped', async () => {
    writeTree(src, { [ESC_TITLE]: 'a', [FORGED]: 'b' }, T0);
    const plan = path.join(work, 'p.jsonl');
    expect((await cli(['sync', src, dst, '--plan', plan])).code).toBe(0);
    const show = await cli(['plan', 'show', plan]);
    expect(show.code).toBe(0);
    expectInert(show.stdout);
    expect(show.stdout).toContain('\\x1b]0;pwned\\x07');
    // A hand-edited plan whose bad path holds controls: the error line is inert too.
    const bad = path.join(work, 'bad.jsonl');
    fs.writeFileSync(bad, fs.readFileSync(plan, 'utf8').split('\n')[0] + '\n' + JSON.stringify({ type: 'operation', action: 'upload', path: `../${ESC_TITLE}`, reason: FORGED, size: 1 }) + '\n');
    const r = await cli(['sync', '--apply', bad]);
    expect(r.code).toBe(2);
    expectInert(r.stderr);
  });
});

describe('class 22: --token is not readable in /proc/PID/cmdline', () => {
  it.skipIf(process.platform !== 'linux')('the value is replaced by *** while the run goes on', async () => {
    writeTree(src, Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`f${i}.txt`, `file ${i}`])), T0);
    const secret = 'hf_SECRETVALUE0123456789abcdef';
    const run = await startSlowRun(['sync', src, dst, '--token', secret]);
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${run.pid}/cmdline`, 'utf8');
    } finally {
      expect(await run.done).toBe(0);
    }
    expect(cmdline).not.toContain(secret);
    expect(cmdline).toContain('--token');
    expect(cmdline).toContain('***');
    expect(cmdline).toContain('sync');
  });
});

const endpoint = s3TestEndpoint();

describe.skipIf(!endpoint)('S3: locations, secrets, hostile keys, exit codes', () => {
  let bucket: string;
  let raw: S3Client;
  const env = () => s3TestEnv();

  beforeAll(async () => {
    bucket = await createTestBucket('safety-cli');
    raw = s3TestClient();
    const put = (Key: string, Body: string) => raw.send(new PutObjectCommand({ Bucket: bucket, Key, Body }));
    await put('keep/a.txt', 'a');
    await put('keep/c/d.txt', 'd');
    await put(`t/${ESC_TITLE}`, 'title');
    await put(`t/${FORGED}`, 'forged');
    await put('h/a\\b.txt', 'backslash');
  });
  afterAll(() => raw?.destroy());

  it('ls, rm, cp and sync refuse ".." segments and empty segments before sending anything (exit 2)', async () => {
    const cases: string[][] = [
      ['ls', `s3://${bucket}/keep/../t`],
      ['rm', '-R', '-y', `s3://${bucket}/keep/../t`],
      ['rm', '-R', '-y', `s3://${bucket}//`],
      ['rm', '-R', '-y', `s3://${bucket}/keep//`],
      ['cp', path.join(work, 'f.txt'), `s3://${bucket}/keep/x/../../y.txt`],
      ['cp', `s3://${bucket}/keep/./a.txt`, path.join(work, 'out.txt')],
      ['sync', src, `s3://${bucket}//`],
      ['sync', src, `s3://${bucket}/a/../c`, '--delete'],
    ];
    fs.writeFileSync(path.join(work, 'f.txt'), 'f');
    for (const args of cases) {
      const r = await cli(args, { env: env() });
      expect(r.stderr, args.join(' ')).toMatch(/Invalid S3 URI: .*(empty segments|'\.' or '\.\.' segments)/);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).not.toContain('BUCKETSYNC_DEBUG');
    }
    const ls = await cli(['ls', `s3://${bucket}`, '-R', '-q'], { env: env() });
    expect(ls.stdout).toContain('keep/a.txt');
    expect(ls.stdout).toContain('keep/c/d.txt');
  });

  it('cp of a key the stores refuse is exit 2 with no debug hint, and writes nothing', async () => {
    for (const key of ['h/a\\b.txt']) {
      const out = path.join(work, 'got');
      const r = await cli(['cp', `s3://${bucket}/${key}`, out], { env: env() });
      expect(r.stderr).toMatch(/Refusing unsafe path/);
      expect(r.code).toBe(2);
      expect(r.stderr).not.toContain('BUCKETSYNC_DEBUG');
      expect(fs.existsSync(out)).toBe(false);
    }
    // A local name the bucket side cannot take as a safe key: refused before the upload.
    fs.writeFileSync(path.join(work, 'a\\b.txt'), 'x');
    const up = await cli(['cp', path.join(work, 'a\\b.txt'), `s3://${bucket}/up/`], { env: env() });
    expect(up.stderr).toMatch(/Refusing unsafe path 'up\/a\\b\.txt'/);
    expect(up.code).toBe(2);
    expect(up.stderr).not.toContain('BUCKETSYNC_DEBUG');
  });

  it('keys with controls are escaped in ls and sync -v; JSON keeps them', async () => {
    const ls = await cli(['ls', `s3://${bucket}/t`, '-R'], { env: env() });
    expect(ls.code).toBe(0);
    expectInert(ls.stdout + ls.stderr);
    expect(ls.stdout).toContain('\\x1b]0;pwned\\x07');
    const dl = await cli(['sync', `s3://${bucket}/t`, path.join(work, 'dl'), '-v', '--json'], { env: env() });
    expect(dl.code).toBe(0);
    expectInert(dl.stderr);
    expect(dl.stderr.split('\n').filter((l) => l === 'Sync completed.')).toHaveLength(1);
    expect(dl.stdout).toContain(JSON.stringify(FORGED).slice(1, -1));
    expect(fs.readFileSync(path.join(work, 'dl', FORGED), 'utf8')).toBe('forged');
  });

  it('a password in --endpoint-url or AWS_ENDPOINT_URL is never printed, in errors or the --json summary', async () => {
    writeTree(src, { 'a.txt': 'a' }, T0);
    const bad = 'http://test:Sup3rSecret@127.0.0.1:9/';
    const viaFlag = await cli(['sync', src, `s3://${bucket}/x`, '--endpoint-url', bad, '--json', '--retries', '0'], { env: env() });
    expect(viaFlag.code).not.toBe(0);
    expect(viaFlag.stderr + viaFlag.stdout).not.toContain('Sup3rSecret');
    expect(viaFlag.stderr).toContain('test:***@127.0.0.1');
    const s = summaryEvent(viaFlag.stdout);
    expect(String(s['error'])).toContain('test:***@');
    const viaEnv = await cli(['ls', `s3://${bucket}`], { env: { ...env(), AWS_ENDPOINT_URL: bad } });
    expect(viaEnv.code).not.toBe(0);
    expect(viaEnv.stderr).not.toContain('Sup3rSecret');
    const withPath = await cli(['ls', `s3://${bucket}`, '--endpoint-url', 'http://test:Sup3rSecret@127.0.0.1:9/s3/'], { env: env() });
    expect(withPath.stderr).toMatch(/it has a path \('\/s3\/'\)/);
    expect(withPath.stderr).not.toContain('Sup3rSecret');
    expect(withPath.code).toBe(2);
  });
});

describe('hf: locations validated before anything is sent, HF_ENDPOINT password redacted', () => {
  let server: HfTestServer;
  const TOKEN = 'hf_test_token';
  beforeAll(async () => {
    server = await startHfServer({ tokens: { [TOKEN]: { user: 'tester' } } });
    server.createBucket('tester/safe');
  });
  afterAll(async () => {
    await server?.close();
  });
  const hfEnv = () => ({ HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: work });

  it('"..", "." and empty segments are refused (exit 2) and the bucket keeps every file', async () => {
    writeTree(src, { 'a.txt': 'a', 'sub/b.txt': 'b' }, T0);
    expect((await cli(['sync', src, 'hf://buckets/tester/safe/keep'], { env: hfEnv() })).code).toBe(0);
    fs.writeFileSync(path.join(work, 'f.txt'), 'f');
    const before = server.listBucket('tester/safe').map((f) => f.path).sort();
    expect(before).toEqual(['keep/a.txt', 'keep/sub/b.txt']);
    const cases: string[][] = [
      ['sync', src, 'hf://buckets/tester/safe/../x'],
      ['sync', src, 'hf://buckets/tester/safe/keep/./x', '--delete'],
      ['cp', path.join(work, 'f.txt'), 'hf://buckets/tester/safe/x/../../y.txt'],
      ['buckets', 'rm', 'hf://buckets/tester/safe//', '-R', '-y'],
      ['rm', 'hf://buckets/tester/safe/keep//', '-R', '-y'],
      ['rm', 'tester/safe/keep/../keep', '-R', '-y'],
      ['ls', 'hf://buckets/tester/safe/keep/..'],
      ['cp', 'https://huggingface.co/buckets/tester/safe/resolve/keep/%2e%2e/x', path.join(work, 'o')],
    ];
    for (const args of cases) {
      const r = await cli(args, { env: hfEnv() });
      expect(r.stderr, args.join(' ')).toMatch(/Invalid (HF URI|bucket path): .*(empty segments|'\.' or '\.\.' segments)/);
      expect(r.code, args.join(' ')).toBe(2);
    }
    expect(server.listBucket('tester/safe').map((f) => f.path).sort()).toEqual(before);
  });

  it('a password in HF_ENDPOINT is not printed', async () => {
    const r = await cli(['ls', 'hf://buckets/tester/safe', '-R'], { env: { ...hfEnv(), HF_ENDPOINT: 'http://u:HfSecret99@127.0.0.1:9' } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toContain('HfSecret99');
    writeTree(src, { 'a.txt': 'a' }, T0);
    const s = await cli(['sync', src, 'hf://buckets/tester/safe/x', '--json'], { env: { ...hfEnv(), HF_ENDPOINT: 'http://u:HfSecret99@127.0.0.1:9' } });
    expect(s.code).not.toBe(0);
    expect(s.stderr + s.stdout).not.toContain('HfSecret99');
  });
});
