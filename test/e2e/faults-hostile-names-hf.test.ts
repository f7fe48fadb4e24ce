/**
 * Hostile remote names on download from an hf bucket (the local Hub/Xet test server): a path
 * named like bucketsync's temporary files would be taken, once downloaded, for a leftover of
 * a dead run — hidden from the next plan and deleted by the next listing, then downloaded
 * again on every run. It is skipped with a warning naming it; the other files arrive.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { cli, readTree, tempDir, type CliOptions } from '../support/cli.js';
import { writeTally } from '../support/fault-proxy.js';

const TOKEN = 'hf_test_token';
let server: HfTestServer;
let work: string;

beforeAll(async () => {
  server = await startHfServer();
  work = tempDir('bucketsync-hostile-hf-');
});
afterAll(async () => {
  await server?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function bs(args: string[], opts: CliOptions = {}) {
  return cli(args, { ...opts, env: { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: work, BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), ...opts.env } });
}

describe('hostile remote names on download from hf', () => {
  it('skips paths named like bucketsync temporary files with a warning naming them, downloads the rest, and the next run agrees', async () => {
    const bucket = 'tester/hostile';
    server.createBucket(bucket);
    // exactly the shape of bucketsync's temporary names: skipped; names that only look alike are data
    const hostile = ['.bucketsync-tmp-0123abcd-999999-89abcdef-x.txt', 'd/.bucketsync-tmp-0123abcd-1-89abcdef-dir/y.txt'];
    const good = { 'good.txt': 'good', 'd/ok.txt': 'ok', '.bucketsync-tmp-999999-abcd-x.txt': 'look-alike', 'd/.bucketsync-tmp-dir/y.txt': 'look-alike 2' };
    for (const [p, body] of [...hostile.map((p) => [p, `hostile ${p}`]), ...Object.entries(good)]) {
      const put = await bs(['buckets', 'cp', '-', `hf://buckets/${bucket}/p/${p}`], { input: body });
      expect(put.code, put.stderr).toBe(0);
    }
    expect(server.listBucket(bucket).map((f) => f.path).sort()).toEqual([...hostile, ...Object.keys(good)].map((p) => `p/${p}`).sort());

    const dst = path.join(work, 'dst');
    const r = await bs(['sync', `hf://buckets/${bucket}/p`, dst, '--delete', '--no-progress']);
    expect(r.code, r.stderr).toBe(3); // skipped entries count (issue 13, class 16)
    for (const p of hostile) {
      const line = r.stderr.split('\n').find((l) => l.includes(`hf://buckets/${bucket}/p/${p}`));
      expect(line, `no warning names ${p}:\n${r.stderr}`).toBeDefined();
      expect(line).toMatch(/temporary file name/);
    }
    expect(readTree(dst)).toEqual(good);

    const again = await bs(['sync', `hf://buckets/${bucket}/p`, dst, '--delete', '--no-progress']);
    expect(again.code, again.stderr).toBe(3);
    expect(again.stderr).toContain('Nothing else to sync.');
    expect(readTree(dst)).toEqual(good);
    writeTally({
      suite: 'hostile-names',
      scenario: 'paths of the exact shape of bucketsync temporary names, and look-alikes, in an hf bucket',
      where: 'hf→local',
      runs: 2,
      injected: hostile.length,
      failedRuns: [r, again].filter((x) => x.code !== 3).length,
      dataLost: Object.entries(good).filter(([p, b]) => readTree(dst)[p] !== b).length,
      note: 'skipped with a warning naming the path; the rest downloaded; the next run has nothing to do',
    });
  }, 60_000);
});
