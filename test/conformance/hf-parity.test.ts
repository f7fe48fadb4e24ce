/**
 * hf 2.0's bucket commands as the judge of bucketsync's (issue 15, item 4): the real `hf` and
 * bucketsync run the same command against the same test server and must agree on the exit
 * code, the stdout bytes and the server state they leave — `buckets settings` (both flags, each
 * error), `cp` of folders (hf's `copy_files` rules: trailing `/` copies contents, no slash
 * nests into an existing folder, a missing destination is a rename, the whole bucket, a file
 * into an existing folder), an empty folder, `BucketBatchError`-style partial failures,
 * `buckets sync` and `--no-truncate`. Where bucketsync differs on purpose (the mtime a copy
 * gets), the difference itself is asserted, so it cannot change unnoticed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir, writeTree } from '../support/cli.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { requireHf, runHf } from './hf-bin.js';

const HF = requireHf('hf parity conformance');
const TOKEN = 'hf_test_token';
const T0 = 1_700_000_000; // seconds

let server: HfTestServer;
let home: string;

beforeAll(async () => {
  server = await startHfServer({ pageSize: 2 });
  home = tempDir('bucketsync-hfparity-');
});
afterAll(async () => {
  await server?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

function hf(args: string[]) {
  return runHf(HF!, args, { endpoint: server.url, token: TOKEN, home });
}
function bs(args: string[]) {
  return cli(args, { cwd: home, env: { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: home, COLUMNS: '200', NO_COLOR: '1' } });
}

/** The bucket's files as [path, xetHash]. */
function state(id: string): [string, string][] {
  return server.listBucket(id).map((f) => [f.path, f.xetHash]);
}

describe.skipIf(!HF)('bucketsync and real hf 2.0: same command, same result', { timeout: 120_000 }, () => {
  it('buckets settings: stdout byte-identical (human, json, quiet), same server state, same refusals', async () => {
    server.createBucket('tester/set-hf');
    server.createBucket('tester/set-bs');
    for (const [flag, priv] of [['--private', true], ['--public', false]] as const) {
      for (const fmt of priv ? [[], ['--format', 'json'], ['-q']] : [[]]) {
        const h = await hf(['buckets', 'settings', 'tester/set-hf', flag, ...fmt]);
        const b = await bs(['buckets', 'settings', 'tester/set-bs', flag, ...fmt]);
        expect(h.code, h.stderr).toBe(0);
        expect(b.code, b.stderr).toBe(0);
        expect(b.stdout, `${flag} ${fmt.join(' ')}`).toBe(h.stdout.replaceAll('set-hf', 'set-bs'));
        expect(server.buckets.get('tester/set-hf')!.private).toBe(priv);
        expect(server.buckets.get('tester/set-bs')!.private).toBe(priv);
      }
    }
    // hf:// form; then the refusals: neither flag, both, a prefix, no namespace (exit 2 both, nothing changed).
    expect((await bs(['buckets', 'settings', 'hf://buckets/tester/set-bs', '--private'])).code).toBe(0);
    expect(server.buckets.get('tester/set-bs')!.private).toBe(true);
    for (const bad of [
      ['tester/set-X'],
      ['tester/set-X', '--private', '--public'],
      ['hf://buckets/tester/set-X/sub', '--public'],
      ['set-X', '--public'],
    ]) {
      const h = await hf(['buckets', 'settings', ...bad.map((a) => a.replace('set-X', 'set-hf'))]);
      const b = await bs(['buckets', 'settings', ...bad.map((a) => a.replace('set-X', 'set-bs'))]);
      expect(h.code, `hf ${bad.join(' ')}: ${h.stderr}`).toBe(2);
      expect(b.code, `bucketsync ${bad.join(' ')}: ${b.stderr}`).toBe(2);
      expect(b.stdout).toBe('');
      expect(b.stderr.trim().split('\n').length, b.stderr).toBeLessThanOrEqual(2);
    }
    expect(server.buckets.get('tester/set-hf')!.private).toBe(false);
    expect(server.buckets.get('tester/set-bs')!.private).toBe(true);
    // A missing bucket: both fail, nothing created.
    const h = await hf(['buckets', 'settings', 'tester/nope', '--public']);
    const b = await bs(['buckets', 'settings', 'tester/nope', '--public']);
    expect(h.code).not.toBe(0);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/^Error: Bucket 'tester\/nope' not found/);
    expect(server.buckets.has('tester/nope')).toBe(false);
  });

  it('cp of folders between buckets: the same files land where hf puts them, and stdout is identical', async () => {
    server.createBucket('tester/cpsrc');
    const src = path.join(home, 'cpsrc');
    writeTree(
      src,
      { 'top.txt': 'top', 'logs/a.txt': 'a', 'logs/deep/b.txt': 'bb', 'logs.json': '{}', 'logs_backup/x.txt': 'x', 'data/d.bin': 'ddd' },
      T0,
    );
    expect((await bs(['sync', src, 'hf://buckets/tester/cpsrc'])).code).toBe(0);

    // Each case runs on a fresh destination bucket per client, pre-filled the same way.
    const cases: { name: string; pre?: string[]; src: string; dst: string }[] = [
      { name: 'folder into the bucket root nests it', src: 'logs', dst: '' },
      { name: 'folder/ copies its contents', src: 'logs/', dst: 'into/' },
      { name: 'folder into a missing path is a rename', src: 'logs', dst: 'renamed' },
      { name: 'folder into an existing folder (no slash) nests', pre: ['have/keep.txt'], src: 'logs', dst: 'have' },
      { name: 'folder/ into an existing folder merges', pre: ['have/keep.txt'], src: 'logs/', dst: 'have' },
      { name: 'the whole bucket', src: '', dst: 'all/' },
      { name: 'a file into an existing folder (no slash)', pre: ['have/keep.txt'], src: 'top.txt', dst: 'have' },
      { name: 'a file onto a path that names nothing', src: 'data/d.bin', dst: 'new/name.bin' },
      { name: 'a file written with a trailing slash is still a file', src: 'top.txt/', dst: 'f/' },
    ];
    let n = 0;
    for (const c of cases) {
      n++;
      const ids = { hf: `tester/cph-${n}`, bs: `tester/cpb-${n}` };
      for (const id of Object.values(ids)) {
        server.createBucket(id);
        if (c.pre) {
          const pre = path.join(home, `pre-${id.replace('/', '_')}`);
          writeTree(pre, Object.fromEntries(c.pre.map((p) => [p, 'pre'])), T0);
          expect((await bs(['sync', pre, `hf://buckets/${id}`])).code).toBe(0);
        }
      }
      const s = `hf://buckets/tester/cpsrc${c.src ? `/${c.src}` : '/'}`;
      const h = await hf(['buckets', 'cp', s, `hf://buckets/${ids.hf}/${c.dst}`]);
      const b = await bs(['buckets', 'cp', s, `hf://buckets/${ids.bs}/${c.dst}`]);
      expect(h.code, `hf: ${c.name}\n${h.stderr}`).toBe(0);
      expect(b.code, `bucketsync: ${c.name}\n${b.stderr}`).toBe(0);
      expect(state(ids.bs), c.name).toEqual(state(ids.hf));
      expect(state(ids.bs).length, c.name).toBeGreaterThan(c.pre?.length ?? 0);
      expect(b.stdout, c.name).toBe(h.stdout.replaceAll(ids.hf, ids.bs));
    }
    // Path boundary: copying `logs` never takes logs.json or logs_backup/ (both clients).
    expect(state('tester/cpb-1').map(([p]) => p)).toEqual(['logs/a.txt', 'logs/deep/b.txt']);

    // The mtime a copy gets: hf 2.0 stamps the copy time; bucketsync keeps the source's (README "Compared with hf").
    const hfMtimes = server.listBucket('tester/cph-1').map((f) => f.mtime);
    const bsMtimes = server.listBucket('tester/cpb-1').map((f) => f.mtime);
    expect(bsMtimes.every((m) => m === T0 * 1000)).toBe(true);
    expect(hfMtimes.every((m) => m > Date.now() - 600_000)).toBe(true);

    // A folder with no files: both refuse, nothing written.
    server.createBucket('tester/cp-empty');
    const h = await hf(['buckets', 'cp', 'hf://buckets/tester/cpsrc/nothing/', 'hf://buckets/tester/cp-empty/']);
    const b = await bs(['buckets', 'cp', 'hf://buckets/tester/cpsrc/nothing/', 'hf://buckets/tester/cp-empty/']);
    expect(h.code).not.toBe(0);
    expect(b.code).toBe(1);
    expect(h.stderr).toMatch(/No files found at 'hf:\/\/buckets\/tester\/cpsrc\/nothing\/'/);
    expect(b.stderr).toMatch(/^Error: No files found at 'hf:\/\/buckets\/tester\/cpsrc\/nothing\/' in bucket 'tester\/cpsrc'/);
    expect(state('tester/cp-empty')).toEqual([]);
  });

  it('a partial batch failure: both apply the rest and report the refused paths the same way', async () => {
    server.createBucket('tester/pf-hf');
    server.createBucket('tester/pf-bs');
    server.failPaths.set('logs/deep/b.txt', 'Injected failure');
    try {
      const h = await hf(['buckets', 'cp', 'hf://buckets/tester/cpsrc/logs/', 'hf://buckets/tester/pf-hf/logs/']);
      const b = await bs(['buckets', 'cp', 'hf://buckets/tester/cpsrc/logs/', 'hf://buckets/tester/pf-bs/logs/']);
      expect(h.code).toBe(1);
      expect(b.code).toBe(1);
      expect(state('tester/pf-bs')).toEqual(state('tester/pf-hf'));
      expect(state('tester/pf-bs').map(([p]) => p)).toEqual(['logs/a.txt']);
      const line = "Failed to apply 1 out of 2 operation(s) on bucket 'tester/pf-";
      expect(h.stderr).toContain(`${line}hf'`);
      expect(b.stderr).toContain(`Error: ${line}bs'`);
      expect(h.stderr).toContain('  - logs/deep/b.txt: Injected failure');
      expect(b.stderr).toContain('  - logs/deep/b.txt: Injected failure');
      expect(b.stdout).toBe('');
      // rm -R with one delete refused: both remove the rest and list the refused path the same way.
      server.failPaths.set('logs/a.txt', 'Injected failure');
      const hr = await hf(['buckets', 'rm', 'tester/pf-hf/logs', '-R', '-y']);
      const br = await bs(['buckets', 'rm', 'tester/pf-bs/logs', '-R', '-y']);
      expect(hr.code).toBe(1);
      expect(br.code).toBe(1);
      expect(hr.stderr).toContain('  - logs/a.txt: Injected failure');
      expect(br.stderr).toMatch(/^ {2}- logs\/a\.txt: Injected failure\nError: Failed to remove 1 of 1 file\(s\) from 'tester\/pf-bs'\n/);
      expect(state('tester/pf-bs')).toEqual(state('tester/pf-hf'));
    } finally {
      server.failPaths.clear();
    }
  });

  it('buckets sync and --no-truncate: accepted by both, same plan', async () => {
    const dir = path.join(home, 'nt');
    writeTree(dir, { 'one.txt': '1', 'two/three.txt': '33' }, T0);
    const h = await hf(['buckets', 'sync', dir, 'hf://buckets/tester/cpsrc/nt', '--dry-run', '--no-truncate']);
    const b = await bs(['buckets', 'sync', dir, 'hf://buckets/tester/cpsrc/nt', '--dry-run', '--no-truncate', '--no-dedup']);
    expect(h.code, h.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const ops = (s: string) => s.trim().split('\n').slice(1).map((l) => JSON.parse(l) as Record<string, unknown>);
    const hOps = ops(h.stdout);
    const bOps = ops(b.stdout);
    expect(bOps.map((o) => [o.action, o.path, o.size])).toEqual(hOps.map((o) => [o.action, o.path, o.size]));
    expect(hOps.map((o) => o.action)).toEqual(['upload', 'upload']);
  });
});
