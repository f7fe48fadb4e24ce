/**
 * `--checksum` against files the reference `hf` (hf_xet) uploaded: their Xet hashes come from
 * xet-core's chunking, which differs from @huggingface/hub's (bucketsync's default), so a
 * comparison under one chunking alone took every such file for changed and sent it again.
 * bucketsync now hashes the local file under hf_xet's chunking too when the first does not
 * match: an unchanged tree plans nothing, a changed file is still found, both ways (upload and
 * download), and the second hash is kept in the hash cache. Skipped with a reason when no `hf`
 * is installed; fails under CI=true (hf-bin.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { getChunks, fileHash, hashToHex } from '@huggingface/xetchunk-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, jsonl, planByPath, tempDir } from '../support/cli.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { requireHf, runHf } from './hf-bin.js';
import { seededRandom } from '../support/random.js';

const HF = requireHf('hf --checksum conformance');
const TOKEN = 'hf_test_token';
const T0 = 1_700_000_000;

let server: HfTestServer;
let home: string;

beforeAll(async () => {
  if (!HF) return;
  server = await startHfServer();
  server.createBucket('tester/sums');
  home = tempDir('bucketsync-hfsum-');
});
afterAll(async () => {
  await server?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

function random(n: number, seed: number): Buffer {
  const r = seededRandom(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

const hubHash = (b: Buffer) => hashToHex(fileHash(getChunks(b)));

/** A dry-run's operations that would do something: path → action. */
function actions(stdout: string): Record<string, string> {
  return Object.fromEntries(Object.entries(planByPath(stdout)).filter(([, o]) => o['action'] !== 'skip').map(([p, o]) => [p, String(o['action'])]));
}

describe.skipIf(!HF)('--checksum against files hf uploaded', () => {
  it('an unchanged tree plans nothing, a same-size same-mtime edit is found, both directions', async () => {
    const src = path.join(home, 'src');
    fs.mkdirSync(src, { recursive: true });
    // Sizes from empty to a few MiB; the big ones cut differently under the two chunkings.
    const files: Record<string, Buffer> = {
      'empty.bin': Buffer.alloc(0),
      'small.txt': Buffer.from('hello\n'),
      'a.bin': random(3 * 1024 * 1024 + 11, 1),
      'b.bin': random(5 * 1024 * 1024, 2),
      'dir/c.bin': Buffer.concat([random(1024 * 1024, 3), Buffer.alloc(200_000, 1), random(700_000, 4)]),
    };
    for (const [rel, data] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
      fs.writeFileSync(path.join(src, rel), data);
      fs.utimesSync(path.join(src, rel), T0, T0);
    }
    const env = { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: path.join(home, 'bs-home'), BUCKETSYNC_CACHE_DIR: path.join(home, 'cache') };
    const dest = 'hf://buckets/tester/sums/up';
    const up = await runHf(HF!, ['buckets', 'sync', src, dest], { endpoint: server.url, token: TOKEN, home });
    expect(up.code, up.stderr).toBe(0);

    // Precondition: hf's hashes differ from @huggingface/hub's for the multi-chunk files.
    const listed = new Map(server.listBucket('tester/sums').map((f) => [f.path, f.xetHash]));
    const differing = Object.entries(files).filter(([rel, data]) => listed.get(`up/${rel}`) !== hubHash(data));
    expect(differing.length).toBeGreaterThanOrEqual(2);

    // Upload direction: nothing to do.
    const r1 = await cli(['sync', src, dest, '--checksum', '--dry-run'], { env });
    expect(r1.code, r1.stderr).toBe(0);
    expect(actions(r1.stdout)).toEqual({});
    expect(Object.values(planByPath(r1.stdout)).filter((o) => o['reason'] === 'same checksum')).toHaveLength(5);

    // Download direction, into a copy of the tree: nothing to do either.
    const copy = path.join(home, 'copy');
    fs.cpSync(src, copy, { recursive: true, preserveTimestamps: true });
    const r2 = await cli(['sync', dest, copy, '--checksum', '--dry-run'], { env });
    expect(r2.code, r2.stderr).toBe(0);
    expect(actions(r2.stdout)).toEqual({});

    // A same-size edit with the mtime put back is still found, in both directions.
    const edited = Buffer.from(files['b.bin']!);
    edited[4 * 1024 * 1024] = edited[4 * 1024 * 1024]! ^ 0xff;
    fs.writeFileSync(path.join(src, 'b.bin'), edited);
    fs.utimesSync(path.join(src, 'b.bin'), T0, T0);
    fs.writeFileSync(path.join(copy, 'b.bin'), edited);
    fs.utimesSync(path.join(copy, 'b.bin'), T0, T0);
    const r3 = await cli(['sync', src, dest, '--checksum', '--dry-run'], { env });
    expect(r3.code, r3.stderr).toBe(0);
    expect(actions(r3.stdout)).toEqual({ 'b.bin': 'upload' });
    const r4 = await cli(['sync', dest, copy, '--checksum', '--dry-run'], { env });
    expect(r4.code, r4.stderr).toBe(0);
    expect(actions(r4.stdout)).toEqual({ 'b.bin': 'download' });

    // And applying it converges: hf-uploaded unchanged files are not re-sent.
    server.resetStats();
    const r5 = await cli(['sync', src, dest, '--checksum', '--json', '--no-progress'], { env });
    expect(r5.code, r5.stderr).toBe(0);
    const done = jsonl(r5.stdout).filter((e) => e['event'] === 'done' || e['event'] === 'transfer');
    expect(done.map((e) => e['path'])).toEqual(['b.bin']);
    expect(server.stats.batchLines['addFile'] ?? 0).toBe(1);
  });
});
