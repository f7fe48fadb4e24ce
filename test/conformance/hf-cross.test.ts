/**
 * Cross-checks between bucketsync and the reference `hf` 2.0 on one test server: what one client
 * writes, the other reads byte-identical; a plan written by either is applied by the other and
 * converges; hf's plan lines are byte prefixes of bucketsync's `--no-dedup` lines. This is the
 * proof that the Xet objects and bucket rows bucketsync writes are valid for the reference
 * implementation (and the reverse). Skipped with a reason when no `hf` is installed; fails under
 * CI=true (hf-bin.ts).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir, writeTree } from '../support/cli.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { requireHf, runHf } from './hf-bin.js';
import { seededRandom } from '../support/random.js';

const HF = requireHf('hf cross-checks');
const TOKEN = 'hf_test_token';
const T0 = 1_700_000_000; // seconds

let server: HfTestServer;
let home: string;
let seq = 0;

beforeAll(async () => {
  server = await startHfServer({ pageSize: 3 });
  home = tempDir('bucketsync-hfcross-');
});
afterAll(async () => {
  await server?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

const env = () => ({ HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: path.join(home, 'bs-home') });

async function bs(args: string[]) {
  const r = await cli(args, { env: env() });
  expect(r.code, `bucketsync ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
}

async function hf(args: string[]) {
  const r = await runHf(HF!, args, { endpoint: server.url, token: TOKEN, home });
  expect(r.code, `hf ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
}

/**
 * Writes hf's plan for every job with hf's own `HfApi.sync_bucket(plan=…)` in one Python process
 * (the interpreter of the `hf` script, read from its shebang).
 */
async function hfPlans(jobs: { from: string; to: string; flags: string[]; hfPlan: string }[]): Promise<void> {
  const shebang = /^#!(\S*python\S*)/.exec(fs.readFileSync(HF!.path, 'utf8').split('\n', 1)[0] ?? '');
  if (!shebang) {
    for (const j of jobs) await hf(['buckets', 'sync', j.from, j.to, ...j.flags, '--plan', j.hfPlan]);
    return;
  }
  const kw = (flags: string[]) => {
    const o: Record<string, unknown> = { include: [], exclude: [] };
    for (let i = 0; i < flags.length; i++) {
      const f = flags[i]!;
      if (f === '--include' || f === '--exclude') (o[f.slice(2)] as string[]).push(flags[++i]!);
      else if (f === '--filter-from') o.filter_from = flags[++i];
      else o[f.slice(2).replace(/-/g, '_')] = true;
    }
    return o;
  };
  const jobFile = path.join(home, 'hf-plan-jobs.json');
  fs.writeFileSync(jobFile, JSON.stringify(jobs.map((j) => ({ source: j.from, dest: j.to, plan: j.hfPlan, ...kw(j.flags) }))));
  const script = [
    'import json, sys',
    'from huggingface_hub import HfApi',
    'api = HfApi()',
    'for job in json.load(open(sys.argv[1])):',
    '    job["include"] = job["include"] or None',
    '    job["exclude"] = job["exclude"] or None',
    '    api.sync_bucket(quiet=True, **job)',
  ].join('\n');
  const r = await runHf({ path: shebang[1]! }, ['-c', script, jobFile], { endpoint: server.url, token: TOKEN, home });
  expect(r.code, r.stderr).toBe(0);
}

function newBucket(): string {
  const id = `tester/x${++seq}`;
  server.createBucket(id);
  return id;
}

function dir(name: string): string {
  return path.join(home, `${name}-${seq}`);
}

/** Every file under root: {rel: [bytes sha256, mtime seconds]}. */
function snapshot(root: string): Record<string, [string, number]> {
  const out: Record<string, [string, number]> = {};
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else {
        const p = path.join(d, e.name);
        out[r] = [crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'), Math.round(fs.statSync(p).mtimeMs / 1000)];
      }
    }
  };
  if (fs.existsSync(root)) walk(root, '');
  return out;
}

/** mulberry32 bytes (the generator of test/support/random.ts), as in test/unit/xet-hash.test.ts. */
function seeded(n: number, seed: number): Buffer {
  const r = seededRandom(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

const hashes = (snap: Record<string, [string, number]>) => Object.fromEntries(Object.entries(snap).map(([k, v]) => [k, v[0]]));

async function remoteHashes(id: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of server.listBucket(id)) out[f.path] = crypto.createHash('sha256').update(await server.readFile(id, f.path)).digest('hex');
  return out;
}

/** A tree with several Xet chunks, an empty file, a nested folder and distinct mtimes. */
function tree(root: string, salt: string): Record<string, Buffer> {
  const files: Record<string, Buffer> = {
    'a.txt': Buffer.from(`alpha ${salt}\n`),
    'empty.txt': Buffer.alloc(0),
    'sub/big.bin': Buffer.concat([crypto.randomBytes(200_000), Buffer.from(salt)]),
    'sub/deep/c.json': Buffer.from(`{"salt": "${salt}"}`),
  };
  Object.entries(files).forEach(([rel, data], i) => writeTree(root, { [rel]: data }, T0 + i * 10));
  return files;
}

function planOps(file: string): { action: string; path: string }[] {
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; action: string; path: string })
    .filter((o) => o.type === 'operation');
}

describe.skipIf(!HF)('bucketsync and the real hf 2.0 on one server', { timeout: 180_000 }, () => {
  it('what bucketsync uploads, hf downloads byte-identical and lists with the mtimes bucketsync wrote', async () => {
    const id = newBucket();
    const src = dir('bs-src');
    tree(src, 'one');
    await bs(['sync', src, `hf://buckets/${id}`, '-q']);
    const local = snapshot(src);

    const rows = JSON.parse((await hf(['buckets', 'ls', id, '-R', '--format', 'json'])).stdout) as { path: string; mtime: string }[];
    expect(Object.fromEntries(rows.map((r) => [r.path, Date.parse(r.mtime) / 1000]))).toEqual(
      Object.fromEntries(Object.entries(local).map(([k, v]) => [k, v[1]])),
    );
    const dst = dir('hf-dst');
    await hf(['buckets', 'sync', `hf://buckets/${id}`, dst]);
    expect(hashes(snapshot(dst))).toEqual(hashes(local));
    // hf sees the tree bucketsync uploaded as up to date (sizes and mtimes agree).
    const plan = path.join(home, `again-${seq}.jsonl`);
    await hf(['buckets', 'sync', src, `hf://buckets/${id}`, '--plan', plan]);
    expect(planOps(plan).map((o) => o.action)).toEqual(['skip', 'skip', 'skip', 'skip']);
  });

  it('what hf uploads, bucketsync downloads byte-identical (with hf\'s mtimes) and then sees as a no-op both ways', async () => {
    const id = newBucket();
    const src = dir('hf-src');
    tree(src, 'two');
    await hf(['buckets', 'sync', src, `hf://buckets/${id}`]);
    const dst = dir('bs-dst');
    await bs(['sync', `hf://buckets/${id}`, dst, '-q']);
    expect(snapshot(dst)).toEqual(snapshot(src));
    for (const [from, to] of [
      [`hf://buckets/${id}`, dst],
      [src, `hf://buckets/${id}`],
    ] as const) {
      const dry = await bs(['sync', from, to, '--dry-run']);
      const ops = dry.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type?: string; action?: string });
      expect(ops.filter((o) => o.type === 'operation').map((o) => o.action), `${from} -> ${to}`).toEqual(['skip', 'skip', 'skip', 'skip']);
    }
  });

  it('multi-chunk files hf_xet chunked differently from @huggingface/hub download verified (regression: "arrived corrupted")', async () => {
    // Seeded bytes whose xet-core chunking differs from @huggingface/xetchunk-wasm 0.2.0's
    // (test/unit/xet-hash.test.ts pins their hf_xet hashes), several in one hf upload (files
    // sharing a xorb), one random, and one larger than a xorb (64 MiB: reconstructed from
    // terms in two xorbs).
    const id = newBucket();
    const src = dir('hf-multi');
    const files: Record<string, Buffer> = {};
    for (const [n, s] of [
      [200_004, 15],
      [422_000, 11],
      [866_000, 12],
      [1_236_000, 13],
      [3_000_017, 14],
    ] as const) {
      files[`m/seed${s}.bin`] = seeded(n, s);
    }
    files['m/random.bin'] = crypto.randomBytes(1_500_000);
    files['m/huge.bin'] = crypto.randomBytes(70 * 1024 * 1024);
    Object.entries(files).forEach(([rel, data], i) => writeTree(src, { [rel]: data }, T0 + i * 10));
    const xorbsBefore = server.xorbCount;
    await hf(['buckets', 'sync', src, `hf://buckets/${id}`]);
    const rows = server.listBucket(id);
    expect(rows.map((r) => r.path).sort()).toEqual(Object.keys(files).sort());
    expect(server.xorbCount - xorbsBefore).toBeGreaterThanOrEqual(2);
    const dst = dir('bs-multi');
    await bs(['sync', `hf://buckets/${id}`, dst, '-q']);
    expect(snapshot(dst)).toEqual(snapshot(src));
    // A single-file download goes through the same check.
    const one = path.join(dir('bs-one'), 'seed13.bin');
    await bs(['buckets', 'cp', `hf://buckets/${id}/m/seed13.bin`, one]);
    expect(fs.readFileSync(one).equals(files['m/seed13.bin']!)).toBe(true);
  });

  it('a plan written by either client is applied by the other and converges (upload and download)', async () => {
    const id = newBucket();
    const src = dir('plan-src');
    tree(src, 'three');
    // hf plans the upload, bucketsync applies it.
    const p1 = path.join(home, 'p1.jsonl');
    await hf(['buckets', 'sync', src, `hf://buckets/${id}`, '--plan', p1]);
    await bs(['sync', '--apply', p1, '-q']);
    expect(await remoteHashes(id)).toEqual(hashes(snapshot(src)));

    // The tree changes; bucketsync plans (--no-dedup, with deletes), hf applies.
    fs.rmSync(path.join(src, 'sub/deep/c.json'));
    writeTree(src, { 'a.txt': 'alpha changed, longer\n', 'new/n.txt': 'new' }, T0 + 500);
    const p2 = path.join(home, 'p2.jsonl');
    await bs(['sync', src, `hf://buckets/${id}`, '--delete', '--no-dedup', '--plan', p2]);
    await hf(['buckets', 'sync', '--apply', p2]);
    expect(await remoteHashes(id)).toEqual(hashes(snapshot(src)));

    // Download: hf plans into an empty folder, bucketsync applies; then bucketsync plans a
    // download with deletes into a folder with a stray file, hf applies.
    const d1 = dir('plan-d1');
    const p3 = path.join(home, 'p3.jsonl');
    await hf(['buckets', 'sync', `hf://buckets/${id}`, d1, '--plan', p3]);
    await bs(['sync', '--apply', p3, '-q']);
    expect(hashes(snapshot(d1))).toEqual(hashes(snapshot(src)));
    const d2 = dir('plan-d2');
    writeTree(d2, { 'stray.txt': 'stray', 'a.txt': 'stale' }, T0);
    const p4 = path.join(home, 'p4.jsonl');
    await bs(['sync', `hf://buckets/${id}`, d2, '--delete', '--no-dedup', '--plan', p4]);
    await hf(['buckets', 'sync', '--apply', p4]);
    expect(hashes(snapshot(d2))).toEqual(hashes(snapshot(src)));

    // Both clients now agree there is nothing to do.
    const p5 = path.join(home, 'p5.jsonl');
    await hf(['buckets', 'sync', src, `hf://buckets/${id}`, '--delete', '--plan', p5]);
    expect(planOps(p5).every((o) => o.action === 'skip')).toBe(true);
  });

  it("hf's plan lines are byte prefixes of bucketsync's --no-dedup lines (20 flag sets each direction, 3 prefix cases)", async () => {
    const id = newBucket();
    const src = dir('cmp-src');
    tree(src, 'four');
    await bs(['sync', src, `hf://buckets/${id}`, '-q']);
    // Every comparison case on each side: same, source newer, destination newer, size change,
    // source-only and destination-only files.
    writeTree(src, { 'a.txt': 'alpha four-changed size\n' }, T0 + 1000);
    writeTree(src, { 'sub/deep/c.json': '{"salt": "four"}' }, T0 + 1000);
    writeTree(src, { 'empty.txt': '' }, T0 - 1000);
    writeTree(src, { 'only-local.txt': 'l', 'dir with space/é ü #1.txt': 'unicode' }, T0);
    writeTree(dir('cmp-extra'), { 'r.txt': 'remote only' }, T0);
    await bs(['sync', dir('cmp-extra'), `hf://buckets/${id}/only-remote`, '-q']);
    const filterFile = path.join(home, 'filter.txt');
    fs.writeFileSync(filterFile, '- *.bin\n+ *\n');
    const flagSets: string[][] = [
      [],
      ['--delete'],
      ['--ignore-times'],
      ['--ignore-sizes'],
      ['--existing'],
      ['--ignore-existing'],
      ['--delete', '--ignore-times'],
      ['--delete', '--ignore-sizes'],
      ['--delete', '--existing'],
      ['--delete', '--ignore-existing'],
      ['--include', '*.txt'],
      ['--exclude', '*.bin'],
      ['--include', 'sub/*', '--exclude', '*.json'],
      ['--delete', '--exclude', '*.bin'],
      ['--delete', '--include', '*.txt'],
      ['--filter-from', filterFile],
      ['--existing', '--ignore-times'],
      ['--ignore-existing', '--ignore-sizes'],
      ['--delete', '--filter-from', filterFile],
      ['--delete', '--ignore-times', '--exclude', 'only-*'],
    ];
    const jobs: { from: string; to: string; flags: string[]; hfPlan: string; bsPlan: string }[] = [];
    for (const [from, to] of [
      [src, `hf://buckets/${id}`],
      [`hf://buckets/${id}`, src],
    ] as const) {
      for (const flags of flagSets) {
        const n = jobs.length;
        jobs.push({ from, to, flags, hfPlan: path.join(home, `cmp-hf-${n}.jsonl`), bsPlan: path.join(home, `cmp-bs-${n}.jsonl`) });
      }
    }
    // Edge cases: a prefix inside the bucket (both directions), a prefix that names nothing yet.
    for (const [from, to] of [
      [path.join(src, 'sub'), `hf://buckets/${id}/sub`],
      [`hf://buckets/${id}/sub`, path.join(src, 'sub')],
      [path.join(src, 'sub'), `hf://buckets/${id}/not-yet/sub`],
    ] as const) {
      const n = jobs.length;
      jobs.push({ from, to, flags: ['--delete'], hfPlan: path.join(home, `cmp-hf-${n}.jsonl`), bsPlan: path.join(home, `cmp-bs-${n}.jsonl`) });
    }
    // hf's plans: the CLI for two jobs, hf's own sync_bucket() (what `hf buckets sync` calls)
    // for all of them in one Python process (one hf start instead of 40).
    for (const j of [jobs[1]!, jobs[21]!]) await hf(['buckets', 'sync', j.from, j.to, ...j.flags, '--plan', `${j.hfPlan}.cli`]);
    await hfPlans(jobs);
    for (let k = 0; k < jobs.length; k += 4) {
      await Promise.all(jobs.slice(k, k + 4).map((j) => bs(['sync', j.from, j.to, ...j.flags, '--no-dedup', '--plan', j.bsPlan])));
    }
    const actions = new Set<string>();
    let lines = 0;
    const ops = (file: string) => fs.readFileSync(file, 'utf8').trim().split('\n').slice(1);
    for (const j of [jobs[1]!, jobs[21]!]) expect(ops(`${j.hfPlan}.cli`)).toEqual(ops(j.hfPlan));
    for (const j of jobs) {
      const hl = fs.readFileSync(j.hfPlan, 'utf8').trim().split('\n');
      const bl = fs.readFileSync(j.bsPlan, 'utf8').trim().split('\n');
      const label = `${j.from} -> ${j.to} ${j.flags.join(' ')}`;
      expect(bl.length, label).toBe(hl.length);
      const [hh, bh] = [JSON.parse(hl[0]!) as Record<string, unknown>, JSON.parse(bl[0]!) as Record<string, unknown>];
      for (const k of ['type', 'source', 'dest', 'summary']) expect(bh[k], `${label}: header ${k}`).toEqual(hh[k]);
      for (const l of hl.slice(1)) actions.add((JSON.parse(l) as { action: string }).action);
      for (let i = 1; i < hl.length; i++) expect(bl[i]!.startsWith(hl[i]!.slice(0, -1)), `${label}\nhf: ${hl[i]}\nbs: ${bl[i]}`).toBe(true);
      lines += hl.length - 1;
    }
    expect(jobs).toHaveLength(43);
    expect(lines).toBeGreaterThan(150);
    expect([...actions].sort()).toEqual(['delete', 'download', 'skip', 'upload']);
  });

  it('bucket listings, info and rm --dry-run print byte-identical output from both clients', async () => {
    const id = newBucket();
    const src = dir('ls-src');
    tree(src, 'five');
    writeTree(src, { 'logs/x.txt': 'x', 'logs.json': '{}', 'logs_backup/y.txt': 'y' }, T0 + 7);
    await bs(['sync', src, `hf://buckets/${id}`, '-q']);
    for (const f of server.buckets.get(id)!.files.values()) f.uploadedAt = T0 * 1000 + 123;
    server.buckets.get(id)!.createdAt = T0 * 1000 + 456;
    const cases: string[][] = [
      ['ls', id],
      ['ls', id, '-R'],
      ['ls', id, '-R', '-h'],
      ['ls', id, '--tree', '-R'],
      ['ls', id, '-R', '--format', 'json'],
      ['info', id],
      ['list', 'tester', '--format', 'json'],
      ['rm', `${id}/logs`, '-R', '--dry-run'],
    ];
    const hfOut: string[] = [];
    for (let k = 0; k < cases.length; k += 4) {
      hfOut.push(...(await Promise.all(cases.slice(k, k + 4).map(async (c) => (await hf(['buckets', ...c])).stdout))));
    }
    const bsOut: string[] = [];
    for (let k = 0; k < cases.length; k += 4) {
      bsOut.push(...(await Promise.all(cases.slice(k, k + 4).map(async (c) => (await bs(['buckets', ...c])).stdout))));
    }
    cases.forEach((c, n) => expect(bsOut[n], c.join(' ')).toBe(hfOut[n]));
    expect(hfOut.at(-1)).toContain('logs/x.txt');
    expect(hfOut.at(-1)).not.toContain('logs.json');
    expect(server.listBucket(id)).toHaveLength(7);
  });
});
