/**
 * Big files across the two clients: what bucketsync's own Xet uploader writes (uncompressed
 * 16 MiB xorbs, its own shard; src/stores/hf/xet-upload.ts) the reference `hf` (hf_xet) reads
 * byte-identical, and what `hf` uploads (its chunking, LZ4/BG4 xorbs of up to 64 MiB)
 * bucketsync's own Xet reader (src/stores/hf/xet-download.ts) reads byte-identical and
 * verified. Skipped with a reason when no `hf` is installed; fails under CI=true (hf-bin.ts).
 */
import { createCipheriv, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../support/cli.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { requireHf, runHf } from './hf-bin.js';

const HF = requireHf('hf big-file cross-checks');
const TOKEN = 'hf_test_token';
const MiB = 1024 * 1024;

let server: HfTestServer;
let home: string;

beforeAll(async () => {
  if (!HF) return;
  server = await startHfServer();
  server.createBucket('tester/bigx');
  home = tempDir('bucketsync-hfbigx-');
});
afterAll(async () => {
  await server?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

/** Random-looking bytes with a compressible stretch in the middle (so hf's xorbs hold LZ4/BG4 chunks too). */
function content(bytes: number, seed: number): Buffer {
  const c = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16, 3));
  const b = c.update(Buffer.alloc(bytes));
  for (let i = 20 * MiB; i < 30 * MiB; i++) b[i] = (i >> 3) & 0x0f;
  return b;
}
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe.skipIf(!HF)('big files between bucketsync and hf', () => {
  it('hf reads what bucketsync uploads, bucketsync reads what hf uploads, byte-identical', async () => {
    const env = { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: path.join(home, 'bs-home'), BUCKETSYNC_CACHE_DIR: path.join(home, 'cache') };
    const a = path.join(home, 'a');
    const b = path.join(home, 'b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    const one = content(80 * MiB + 12345, 1);
    const two = content(72 * MiB + 7, 2);
    fs.writeFileSync(path.join(a, 'one.bin'), one);
    fs.writeFileSync(path.join(b, 'two.bin'), two);
    server.resetStats();
    const up = await cli(['sync', a, 'hf://buckets/tester/bigx/bs', '--no-progress'], { env });
    expect(up.code, up.stderr).toBe(0);
    // Our own uploader ran: 16 MiB xorbs, no @huggingface/hub 64 MiB ones.
    expect(server.stats.xorbsReceived).toBeGreaterThanOrEqual(5);
    const hfUp = await runHf(HF!, ['buckets', 'sync', b, 'hf://buckets/tester/bigx/hf'], { endpoint: server.url, token: TOKEN, home });
    expect(hfUp.code, hfUp.stderr).toBe(0);

    const hfDown = path.join(home, 'hf-down');
    const r1 = await runHf(HF!, ['buckets', 'sync', 'hf://buckets/tester/bigx/bs', hfDown], { endpoint: server.url, token: TOKEN, home });
    expect(r1.code, r1.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(hfDown, 'one.bin')))).toBe(md5(one));

    const bsDown = path.join(home, 'bs-down');
    const r2 = await cli(['sync', 'hf://buckets/tester/bigx/hf', bsDown, '--no-progress'], { env });
    expect(r2.code, r2.stderr).toBe(0);
    expect(md5(fs.readFileSync(path.join(bsDown, 'two.bin')))).toBe(md5(two));
    expect(fs.readdirSync(bsDown)).toEqual(['two.bin']);
  }, 300_000);
});
