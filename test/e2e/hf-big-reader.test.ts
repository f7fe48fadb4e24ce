/**
 * The read paths of big hf files (src/stores/hf/xet-download*.ts), end to end through the CLI
 * against the Hub+Xet test server: a `sync` download written by the worker itself (fetchInto),
 * and `cp … -` streamed to stdout (the worker's buffers handed to the main thread), each with
 * the xorb ranges read by the worker's own HTTP reader (the default on plain http) and by
 * node:http (`BUCKETSYNC_XET_HTTP=node`), and with either BLAKE3 (`BUCKETSYNC_BLAKE3=wasm`):
 * byte-identical every way; a byte flipped in a stored xorb fails every way, nothing kept.
 */
import { spawn } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5, MiB } from '../support/big-files.js';
import { hostId } from '../../src/scanner/names.js';
import { BIN, cli, tempDir } from '../support/cli.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';

const SIZE = 40 * MiB + 12_345;
const TOKEN = 'hf_test_token';
const BUCKET = 'tester/reader';

let server: HfTestServer;
let work: string;
let src: string;
let env: Record<string, string>;
let want: string;
let content: Buffer;

beforeAll(async () => {
  server = await startHfServer();
  server.createBucket(BUCKET);
  work = tempDir('bucketsync-hf-reader-');
  src = path.join(work, 'src');
  fs.mkdirSync(src, { recursive: true });
  const c = createCipheriv('aes-128-ctr', Buffer.alloc(16, 3), Buffer.alloc(16, 1));
  const bytes = c.update(Buffer.alloc(SIZE));
  fs.writeFileSync(path.join(src, 'ckpt.bin'), bytes);
  content = bytes;
  fs.utimesSync(path.join(src, 'ckpt.bin'), 1_700_000_000, 1_700_000_000);
  want = md5(bytes);
  env = { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: path.join(work, 'home'), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') };
  const up = await cli(['sync', src, `hf://buckets/${BUCKET}/f`, '--no-progress'], { env });
  expect(up.code, up.stderr).toBe(0);
}, 120_000);
afterAll(async () => {
  await server?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** `cp` to stdout, the bytes kept whole (cli() decodes stdout as text). */
function cpToStdout(extra: Record<string, string>): Promise<{ code: number | null; out: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'cp', `hf://buckets/${BUCKET}/f/ckpt.bin`, '-'], { env: { ...process.env, ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000); // as cli(): a hung run must not outlive its test
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out: Buffer.concat(out), stderr });
    });
  });
}

const modes: [string, Record<string, string>][] = [
  ['own reader, native BLAKE3', {}],
  ['node:http', { BUCKETSYNC_XET_HTTP: 'node' }],
  ['own reader, WebAssembly BLAKE3', { BUCKETSYNC_BLAKE3: 'wasm' }],
];

describe('big hf downloads, every read path', () => {
  for (const [what, extra] of modes) {
    it(`${what}: sync (the worker writes the file) and cp to stdout (streamed) are byte-identical`, async () => {
      const local = path.join(work, `local-${what.replace(/\W+/g, '-')}`);
      const served = server.stats.xorbBytesServed;
      const r = await cli(['sync', `hf://buckets/${BUCKET}/f`, local, '--no-progress'], { env: { ...env, ...extra } });
      expect(r.code, r.stderr).toBe(0);
      expect(md5(fs.readFileSync(path.join(local, 'ckpt.bin')))).toBe(want);
      expect(fs.readdirSync(local)).toEqual(['ckpt.bin']);
      expect(fs.statSync(path.join(local, 'ckpt.bin')).mtimeMs).toBe(1_700_000_000_000);
      // Fetched once (no second download behind the scenes).
      expect(server.stats.xorbBytesServed - served).toBeLessThan(SIZE * 1.05);
      const c = await cpToStdout(extra);
      expect(c.code, c.stderr).toBe(0);
      expect(c.out.length).toBe(SIZE);
      expect(md5(c.out)).toBe(want);
    }, 120_000);
  }

  it('a byte flipped in a stored xorb fails every path: exit 1, the file named, nothing kept', async () => {
    const xorbDir = path.join((server as unknown as { dir: string }).dir, 'xorbs');
    const files = fs.readdirSync(xorbDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
    const biggest = files.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
    const bytes = fs.readFileSync(biggest);
    const at = Math.floor(bytes.length / 3);
    bytes[at]! ^= 0x20;
    fs.writeFileSync(biggest, bytes);
    try {
      for (const [what, extra] of modes) {
        const local = path.join(work, `flip-${what.replace(/\W+/g, '-')}`);
        const r = await cli(['sync', `hf://buckets/${BUCKET}/f`, local, '--no-progress', '--retries', '0'], { env: { ...env, ...extra } });
        expect(r.code, `${what}: ${r.stderr}`).toBe(1);
        expect(r.stderr).toMatch(/ckpt\.bin/);
        expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
        expect(fs.existsSync(path.join(local, 'ckpt.bin'))).toBe(false);
        expect(fs.existsSync(local) ? fs.readdirSync(local) : []).toEqual([]);
        const c = await cpToStdout(extra);
        expect(c.code, `${what} (cp): ${c.stderr}`).not.toBe(0);
        expect(c.stderr).toMatch(/corrupt|Xet hash/);
      }
    } finally {
      bytes[at]! ^= 0x20;
      fs.writeFileSync(biggest, bytes);
    }
  }, 300_000);

  /** A dead run's leftovers in `dest`: a temporary file of `bytes` and a record listing `done` parts of `partSize`. */
  function forge(dest: string, bytes: Buffer, partSize: number, done: number[]): void {
    fs.mkdirSync(dest, { recursive: true });
    const tmp = path.join(dest, `.bucketsync-tmp-${hostId()}-999999999-aaaaaaaa-ckpt.bin`);
    fs.writeFileSync(tmp, bytes);
    const xet = server.listBucket(BUCKET).find((f) => f.path === 'f/ckpt.bin')!.xetHash!;
    const rec = { v: 1, final: 'ckpt.bin', version: `xet:${xet.toLowerCase()}`, size: SIZE, t: Date.now(), parts: { partSize, done } };
    fs.writeFileSync(`${tmp}.resume`, `${JSON.stringify(rec)}\n`);
  }

  const resumeCases: [string, () => [Buffer, number, number[]], boolean][] = [
    ['its first 2 parts on disk (faithful): continued from 16 MiB', () => [content.subarray(0, 16 * MiB + 1000), 8 * MiB, [0, 1]], true],
    ['parts 0, 2, 3 recorded (a gap): continued from the end of part 0 only', () => [content.subarray(0, 32 * MiB), 8 * MiB, [0, 2, 3]], true],
    ['every part claimed over a file of other bytes: caught, started over', () => [Buffer.alloc(SIZE, 'L'), 8 * MiB, [0, 1, 2, 3, 4]], false],
    ['parts claimed past the bytes on disk: only what is there is kept', () => [content.subarray(0, 5 * MiB), 8 * MiB, [0, 1, 2]], true],
    ['a part size of 0: started over', () => [content.subarray(0, 16 * MiB), 0, [0, 1]], false],
  ];
  for (const [what, make, resumes] of resumeCases) {
    it(`a forged interrupted download, ${what}; byte-identical, nothing left behind`, async () => {
      const dest = path.join(work, `forged-${what.replace(/\W+/g, '-').slice(0, 40)}`);
      const [bytes, partSize, done] = make();
      forge(dest, bytes, partSize, done);
      const served = server.stats.xorbBytesServed;
      const r = await cli(['sync', `hf://buckets/${BUCKET}/f`, dest, '-v', '--no-progress'], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(md5(fs.readFileSync(path.join(dest, 'ckpt.bin')))).toBe(want);
      expect(fs.readdirSync(dest)).toEqual(['ckpt.bin']);
      if (resumes) {
        expect(r.stderr).toMatch(/Resumed: ckpt\.bin/);
        expect(server.stats.xorbBytesServed - served).toBeLessThan(SIZE * 0.9); // only the rest fetched
      }
      else expect(r.stderr).not.toMatch(/Resumed: ckpt\.bin \(/);
    }, 120_000);
  }
});
