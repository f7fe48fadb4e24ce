/**
 * Big files to hf://buckets through bucketsync's own Xet uploader (src/stores/hf/xet-upload.ts),
 * end to end through the CLI against the Hub+Xet test server:
 * - an upload SIGKILLed at about half of a 256 MiB file resumes on the next run: the xorb bytes
 *   the server received over both runs are at most 1.1× the file, the run says what it skipped,
 *   and the bucket's file is byte-identical;
 * - a source changed between the runs sends what changed and converges to the new content;
 * - a journal that names xorbs the CAS has since dropped costs a full re-send, not a failure;
 * - a corrupt journal (garbage, torn lines, wrong hashes) is ignored;
 * - a download SIGKILLed at about half continues from its temporary file on the next run (the
 *   xorb bytes the server serves the second time are about the rest), byte-identical; if the
 *   bucket's file changed in between, it starts over and gets the new content.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5, MiB } from '../support/big-files.js';
import { bytesUnder, cli, runPolling, tempDir } from '../support/cli.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { randomFile } from '../support/random.js';

const SIZE = 256 * MiB;
const TOKEN = 'hf_test_token';
const BUCKET = 'tester/big';

let server: HfTestServer;
let work: string;

beforeAll(async () => {
  server = await startHfServer();
  server.createBucket(BUCKET);
  work = tempDir('bucketsync-hf-big-');
});
afterAll(async () => {
  await server?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function setup(name: string) {
  const dir = path.join(work, name);
  const src = path.join(dir, 'src');
  const cache = path.join(dir, 'cache');
  const env = { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: path.join(dir, 'home'), BUCKETSYNC_CACHE_DIR: cache };
  return { dir, src, cache, env, dest: `hf://buckets/${BUCKET}/${name}` };
}

/** Runs the sync and SIGKILLs it once the server has received `atBytes` of xorbs; resolves with whether the kill ended it. */
async function killAt(args: string[], env: Record<string, string>, atBytes: number): Promise<boolean> {
  const start = server.stats.xorbBytesReceived;
  return (await runPolling([...args, '--no-progress'], () => server.stats.xorbBytesReceived - start >= atBytes, { env, giveUpMs: 200_000 })).killed;
}

describe('big hf uploads', () => {
  it('an upload SIGKILLed at ~50 % resumes: ≤ 1.1× the file sent in total, byte-identical, the skip reported', async () => {
    const s = setup('resume');
    randomFile(path.join(s.src, 'ckpt.bin'), SIZE, 1);
    const before = server.stats.xorbBytesReceived;
    expect(await killAt(['sync', s.src, s.dest], s.env, SIZE / 2)).toBe(true);
    const first = server.stats.xorbBytesReceived - before;
    expect(first).toBeGreaterThanOrEqual(SIZE / 2);
    expect(first).toBeLessThan(SIZE);
    expect(server.listBucket(BUCKET).some((f) => f.path === 'resume/ckpt.bin')).toBe(false);

    const r = await cli(['sync', s.src, s.dest, '-v', '--no-progress'], { env: s.env });
    expect(r.code, r.stderr).toBe(0);
    const total = server.stats.xorbBytesReceived - before;
    expect(total / SIZE).toBeLessThanOrEqual(1.1);
    expect(r.stderr).toMatch(/Resumed: ckpt\.bin \(\d+(\.\d+)? MiB of 256(\.0)? MiB were already there/);
    expect(md5(await server.readFile(BUCKET, 'resume/ckpt.bin'))).toBe(md5(fs.readFileSync(path.join(s.src, 'ckpt.bin'))));
  }, 300_000);

  it('a source changed between the runs is sent as it is now (its changed xorbs), byte-identical', async () => {
    const s = setup('changed');
    const file = path.join(s.src, 'ckpt.bin');
    randomFile(file, 96 * MiB, 2);
    expect(await killAt(['sync', s.src, s.dest], s.env, 64 * MiB)).toBe(true);
    // Rewrite the second half (same size, new mtime).
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(48 * MiB, 7), 0, 48 * MiB, 48 * MiB);
    fs.closeSync(fd);
    fs.utimesSync(file, 1_700_000_100, 1_700_000_100);
    const r = await cli(['sync', s.src, s.dest, '--no-progress'], { env: s.env });
    expect(r.code, r.stderr).toBe(0);
    expect(md5(await server.readFile(BUCKET, 'changed/ckpt.bin'))).toBe(md5(fs.readFileSync(file)));
  }, 300_000);

  it('xorbs the journal names but the CAS dropped since are sent again (the run still succeeds)', async () => {
    const s = setup('collected');
    randomFile(path.join(s.src, 'ckpt.bin'), 160 * MiB, 3);
    expect(await killAt(['sync', s.src, s.dest], s.env, 70 * MiB)).toBe(true);
    expect(server.collectUnreferencedXorbs()).toBeGreaterThan(0);
    const before = server.stats.xorbBytesReceived;
    const r = await cli(['sync', s.src, s.dest, '--no-progress'], { env: s.env });
    expect(r.code, r.stderr).toBe(0);
    expect(server.stats.xorbBytesReceived - before).toBeGreaterThanOrEqual(160 * MiB);
    expect(md5(await server.readFile(BUCKET, 'collected/ckpt.bin'))).toBe(md5(fs.readFileSync(path.join(s.src, 'ckpt.bin'))));
  }, 300_000);

  it('a corrupt or truncated journal is ignored', async () => {
    const s = setup('corrupt');
    randomFile(path.join(s.src, 'ckpt.bin'), 80 * MiB, 4);
    fs.mkdirSync(s.cache, { recursive: true });
    const journal = path.join(s.cache, 'hf-xorbs-v1.log');
    fs.writeFileSync(journal, `garbage\n\0\0\0\n${Math.floor(Date.now() / 1000)} 0123456789abcdef ${'e'.repeat(64)}\n9999999999999 zz ${'1'.repeat(64)}\n${Math.floor(Date.now() / 1000)} 01234`);
    const before = server.stats.xorbBytesReceived;
    const r = await cli(['sync', s.src, s.dest, '--no-progress'], { env: s.env });
    expect(r.code, r.stderr).toBe(0);
    expect(server.stats.xorbBytesReceived - before).toBeGreaterThanOrEqual(80 * MiB);
    expect(md5(await server.readFile(BUCKET, 'corrupt/ckpt.bin'))).toBe(md5(fs.readFileSync(path.join(s.src, 'ckpt.bin'))));
    // And what it stored is journaled for the next time (one line per xorb).
    expect(fs.readFileSync(journal, 'utf8').trim().split('\n').filter((l) => /^\d+ [0-9a-f]{16} [0-9a-f]{64}$/.test(l)).length).toBeGreaterThanOrEqual(3);
  }, 300_000);

  async function killDownloadAt(args: string[], env: Record<string, string>, dir: string, atBytes: number): Promise<boolean> {
    return (await runPolling([...args, '--no-progress'], () => bytesUnder(dir) >= atBytes, { env, giveUpMs: 200_000 })).killed;
  }

  it('a download SIGKILLed at ~50 % continues from its temporary file, byte-identical; a changed file starts over', async () => {
    const s = setup('down');
    const size = 128 * MiB;
    randomFile(path.join(s.src, 'ckpt.bin'), size, 5);
    const up = await cli(['sync', s.src, s.dest, '--no-progress'], { env: s.env });
    expect(up.code, up.stderr).toBe(0);
    const local = path.join(s.dir, 'local');
    const served0 = server.stats.xorbBytesServed;
    expect(await killDownloadAt(['sync', s.dest, local], s.env, local, size / 2)).toBe(true);
    const first = server.stats.xorbBytesServed - served0;
    expect(first).toBeLessThan(size);
    expect(fs.existsSync(path.join(local, 'ckpt.bin'))).toBe(false);
    const r = await cli(['sync', s.dest, local, '-v', '--no-progress'], { env: s.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Resumed: ckpt\.bin/);
    // The second run fetched about the rest (the xorb ranges around the cut overlap a little).
    const second = server.stats.xorbBytesServed - served0 - first;
    expect(second).toBeLessThanOrEqual(size * 0.6);
    expect(md5(fs.readFileSync(path.join(local, 'ckpt.bin')))).toBe(md5(fs.readFileSync(path.join(s.src, 'ckpt.bin'))));
    expect(fs.readdirSync(local)).toEqual(['ckpt.bin']);

    // Interrupted again, then the bucket's file is replaced: the partial file is not used.
    fs.rmSync(path.join(local, 'ckpt.bin'));
    expect(await killDownloadAt(['sync', s.dest, local], s.env, local, size / 2)).toBe(true);
    randomFile(path.join(s.src, 'ckpt.bin'), size, 6);
    fs.utimesSync(path.join(s.src, 'ckpt.bin'), 1_700_000_500, 1_700_000_500);
    const up2 = await cli(['sync', s.src, s.dest, '--no-progress'], { env: s.env });
    expect(up2.code, up2.stderr).toBe(0);
    const r2 = await cli(['sync', s.dest, local, '-v', '--no-progress'], { env: s.env });
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).not.toMatch(/Resumed: ckpt\.bin/);
    expect(md5(fs.readFileSync(path.join(local, 'ckpt.bin')))).toBe(md5(fs.readFileSync(path.join(s.src, 'ckpt.bin'))));
    expect(fs.readdirSync(local)).toEqual(['ckpt.bin']);
  }, 300_000);
  it('a byte flipped in a stored xorb (chunk payload or record header) is caught: exit 1, nothing kept under the name', async () => {
    const s = setup('flip');
    const size = 24 * MiB;
    randomFile(path.join(s.src, 'ckpt.bin'), size, 9);
    const up = await cli(['sync', s.src, s.dest, '--no-progress'], { env: s.env });
    expect(up.code, up.stderr).toBe(0);
    const xorbDir = path.join((server as unknown as { dir: string }).dir, 'xorbs');
    const files = fs.readdirSync(xorbDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
    const newest = files.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0]!;
    const bytes = fs.readFileSync(newest);
    for (const [what, at] of [['payload', Math.floor(bytes.length / 2)], ['header', 1]] as const) {
      const local = path.join(s.dir, `local-${what}`);
      bytes[at]! ^= 0x01;
      fs.writeFileSync(newest, bytes);
      const r = await cli(['sync', s.dest, local, '--no-progress'], { env: s.env });
      bytes[at]! ^= 0x01;
      fs.writeFileSync(newest, bytes);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/ckpt\.bin/);
      expect(fs.existsSync(path.join(local, 'ckpt.bin'))).toBe(false);
    }
    // Restored: the same download now succeeds, byte-identical.
    const local = path.join(s.dir, 'local-ok');
    const r = await cli(['sync', s.dest, local, '--no-progress'], { env: s.env });
    expect(r.code, r.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(local, 'ckpt.bin')))).toBe(md5(fs.readFileSync(path.join(s.src, 'ckpt.bin'))));
  }, 300_000);
});
