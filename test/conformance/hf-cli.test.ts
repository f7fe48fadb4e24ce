/**
 * The reference client as the judge of the test Hub/Xet server: the real `hf` 2.0.0 (with hf_xet
 * 1.6.0) runs every bucket command against it. If the server drifted from what hf sends and reads,
 * these fail. Skipped with a reason when no `hf` is installed; fails instead under CI=true
 * (see hf-bin.ts). One server for the file, small files, few hf processes (about 1 s each).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, writeTree } from '../support/cli.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { requireHf, runHf } from './hf-bin.js';

const HF = requireHf('hf CLI conformance');
const TOKEN = 'hf_test_token';
const T0 = 1_700_000_000; // seconds

let server: HfTestServer;
let home: string;

beforeAll(async () => {
  // Page size 2: hf's paginate() must follow our Link headers for bucket lists and trees.
  server = await startHfServer({ pageSize: 2 });
  home = tempDir('bucketsync-hfconf-');
});
afterAll(async () => {
  await server?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

function hf(args: string[], env: Record<string, string | undefined> = {}) {
  return runHf(HF!, args, { endpoint: server.url, token: TOKEN, home, env });
}

async function ok(args: string[]) {
  const r = await hf(args);
  expect(r.code, `hf ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
}

describe.skipIf(!HF)('real hf 2.0 against the test server', { timeout: 120_000 }, () => {
  it('create (twice, --exist-ok, --private) / list / info / settings / move / delete', async () => {
    const c = await ok(['buckets', 'create', 'tester/conf']);
    expect(c.stdout).toContain('hf://buckets/tester/conf');
    expect(server.buckets.get('tester/conf')!.private).toBe(false);

    const again = await hf(['buckets', 'create', 'tester/conf']);
    expect(again.code).toBe(1);
    expect(again.stderr).not.toMatch(/Traceback|KeyError/);
    expect(again.stderr).toMatch(/409/);
    const exist = await ok(['buckets', 'create', 'tester/conf', '--exist-ok']);
    expect(exist.stdout).toContain(`${server.url}/buckets/tester/conf`);

    await ok(['buckets', 'create', 'tester/conf-priv', '--private']);
    expect(server.buckets.get('tester/conf-priv')!.private).toBe(true);
    server.createBucket('tester/conf-third');

    // Three buckets on pages of two: hf follows the Link header.
    const list = JSON.parse((await ok(['buckets', 'list', '--format', 'json'])).stdout) as { id: string; private: boolean }[];
    expect(list.map((b) => b.id)).toEqual([...server.buckets.keys()].filter((k) => k.startsWith('tester/')).sort());
    expect(list.find((b) => b.id === 'tester/conf-priv')!.private).toBe(true);

    const info = JSON.parse((await ok(['buckets', 'info', 'tester/conf-priv'])).stdout) as Record<string, unknown>;
    expect(info).toMatchObject({ id: 'tester/conf-priv', private: true, size: 0, total_files: 0 });

    await ok(['buckets', 'settings', 'tester/conf-priv', '--public']);
    expect(server.buckets.get('tester/conf-priv')!.private).toBe(false);
    await ok(['buckets', 'settings', 'tester/conf-priv', '--private']);
    expect(server.buckets.get('tester/conf-priv')!.private).toBe(true);

    await ok(['buckets', 'move', 'tester/conf-priv', 'tester/conf-moved']);
    expect(server.buckets.has('tester/conf-priv')).toBe(false);
    expect(server.buckets.get('tester/conf-moved')!.private).toBe(true);

    await ok(['buckets', 'delete', 'tester/conf-moved', '--yes']);
    expect(server.buckets.has('tester/conf-moved')).toBe(false);
    await ok(['buckets', 'delete', 'tester/conf-moved', '--yes', '--missing-ok']);
    const missing = await hf(['buckets', 'info', 'tester/conf-moved']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^Error: Bucket 'tester\/conf-moved' not found\./m);
  });

  it('sync up with hf_xet (v2 shards, footer-less), ls in every format, cp (file, folder, folder/), rm, sync down', async () => {
    server.createBucket('tester/data');
    server.createBucket('tester/cpdst');
    const src = path.join(home, 'up');
    const big = crypto.randomBytes(300_000); // several chunks
    const files: Record<string, Buffer> = {
      'a.txt': Buffer.from('alpha\n'),
      'empty.txt': Buffer.alloc(0),
      'sub/b.bin': big,
      'sub/deep/c.txt': Buffer.from('gamma'),
    };
    writeTree(src, files, T0);
    server.resetStats();
    const up = await ok(['buckets', 'sync', src, 'hf://buckets/tester/data']);
    expect(up.stdout + up.stderr).toMatch(/Sync completed/);
    expect(server.stats.shardUploads.v2).toBeGreaterThanOrEqual(1);
    expect(server.stats.shardUploads.v1).toBe(0);
    expect(server.stats.footerlessShards).toBe(server.stats.shardsReceived);
    expect(server.stats.xorbsInserted).toBeGreaterThanOrEqual(1);
    const remote = server.listBucket('tester/data');
    expect(remote.map((f) => f.path)).toEqual(Object.keys(files).sort());
    for (const f of remote) {
      expect(f.mtime, f.path).toBe(T0 * 1000);
      expect((await server.readFile('tester/data', f.path)).equals(files[f.path]!), f.path).toBe(true);
    }

    // ls: JSON (recursive, paged by 2) is the server's state; quiet, human, tree agree with it.
    const json = JSON.parse((await ok(['buckets', 'ls', 'tester/data', '-R', '--format', 'json'])).stdout) as Record<string, unknown>[];
    expect(json.map((r) => [r.type, r.path, r.size, r.xet_hash])).toEqual(remote.map((f) => ['file', f.path, f.size, f.xetHash]));
    expect(json.every((r) => r.mtime === '2023-11-14T22:13:20+00:00')).toBe(true);
    const quiet = (await ok(['buckets', 'ls', 'tester/data', '-R', '-q'])).stdout;
    expect(quiet).toBe(`${remote.map((f) => f.path).join('\n')}\n`);
    const human = (await ok(['buckets', 'ls', 'tester/data'])).stdout.split('\n').filter(Boolean);
    expect(human.map((l) => l.trim().split(/\s+/).at(-1))).toEqual(['a.txt', 'empty.txt', 'sub/']);
    const tree = (await ok(['buckets', 'ls', 'tester/data', '--tree', '-R', '-h'])).stdout;
    expect(tree).toMatch(/├── a\.txt[\s\S]*└── sub\/[\s\S]*deep\/[\s\S]*c\.txt/);

    // cp: a file, a folder (nests, like cp -r) and a folder's contents (trailing slash).
    await ok(['buckets', 'cp', 'hf://buckets/tester/data/a.txt', 'hf://buckets/tester/cpdst/single.txt']);
    await ok(['buckets', 'cp', 'hf://buckets/tester/data/sub', 'hf://buckets/tester/cpdst']);
    await ok(['buckets', 'cp', 'hf://buckets/tester/data/sub/', 'hf://buckets/tester/cpdst/flat/']);
    const byHash = new Map(remote.map((f) => [f.path, f.xetHash]));
    expect(server.listBucket('tester/cpdst').map((f) => [f.path, f.xetHash])).toEqual([
      ['flat/b.bin', byHash.get('sub/b.bin')],
      ['flat/deep/c.txt', byHash.get('sub/deep/c.txt')],
      ['single.txt', byHash.get('a.txt')],
      ['sub/b.bin', byHash.get('sub/b.bin')],
      ['sub/deep/c.txt', byHash.get('sub/deep/c.txt')],
    ]);

    // rm: --dry-run lists and removes nothing; then one file.
    const dry = await ok(['buckets', 'rm', 'tester/cpdst/sub', '-R', '--dry-run']);
    expect(dry.stdout).toContain('delete: hf://buckets/tester/cpdst/sub/b.bin');
    expect(dry.stdout).toContain('delete: hf://buckets/tester/cpdst/sub/deep/c.txt');
    expect(server.listBucket('tester/cpdst')).toHaveLength(5);
    await ok(['buckets', 'rm', 'tester/cpdst/sub', '-R', '-y']);
    expect(server.listBucket('tester/cpdst').map((f) => f.path)).toEqual(['flat/b.bin', 'flat/deep/c.txt', 'single.txt']);

    // sync down with hf_xet's reconstruction + ranged xorb reads: byte-identical.
    const dst = path.join(home, 'down');
    server.resetStats();
    await ok(['buckets', 'sync', 'hf://buckets/tester/data', dst]);
    expect(server.stats.requests.reconstruction).toBeGreaterThanOrEqual(1);
    expect(server.stats.xorbBytesServed).toBeGreaterThan(0);
    for (const [rel, data] of Object.entries(files)) expect(fs.readFileSync(path.join(dst, rel)).equals(data), rel).toBe(true);

    // A second upload of the same tree is a no-op (hf compares sizes and the mtimes we stored).
    const plan = path.join(home, 'again.jsonl');
    await ok(['buckets', 'sync', src, 'hf://buckets/tester/data', '--plan', plan]);
    const actions = fs.readFileSync(plan, 'utf8').trim().split('\n').slice(1).map((l) => (JSON.parse(l) as { action: string }).action);
    expect(actions).toEqual(['skip', 'skip', 'skip', 'skip']);
  });
});
