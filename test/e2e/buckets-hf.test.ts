/**
 * `bucketsync buckets …` against the local Hub test server, through the real CLI: create,
 * info, list (buckets and files, every format, byte for byte as hf prints them), rm with the
 * path boundary, filters and --dry-run, cp up / down / stdin / stdout / bucket to bucket,
 * delete, move, confirmations and errors.
 *
 * With BUCKETSYNC_HF_CLI=/path/to/hf (a Python huggingface_hub ≥ 1.33 `hf`), the listings are
 * also compared with what the real `hf` prints against the same server.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BIN, cli, tempDir, writeTree, type CliOptions } from '../support/cli.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';

const TOKEN = 'hf_test_token';
const T0 = 1_736_937_000; // 2025-01-15 10:30:00 UTC, the files' mtime
const U0 = 1_771_255_712_123; // 2026-02-16T15:28:32.123Z, their upload time
const D = '2025-01-15 10:30:00';
const DH = 'Jan 15 10:30';
const UD = '2026-02-16 15:28:32';

let server: HfTestServer;
let work: string;
let src: string;
let bucket: string;
let seq = 0;

beforeAll(async () => {
  server = await startHfServer({
    pageSize: 3,
    tokens: { hf_test_token: { user: 'tester' }, hf_read_only: { user: 'tester', readOnly: true } },
  });
});
afterAll(async () => {
  await server?.close();
});
beforeEach(() => {
  work = tempDir('bucketsync-buckets-hf-');
  src = path.join(work, 'src');
  fs.mkdirSync(src);
  bucket = `tester/bk-${++seq}`;
  server.createBucket(bucket);
  server.faults.length = 0;
  server.failPaths.clear();
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function bs(args: string[], opts: CliOptions = {}) {
  return cli(args, { cwd: work, ...opts, env: { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: work, COLUMNS: '200', NO_COLOR: '', ...opts.env } });
}

/**
 * Runs a program without blocking this process (the Hub test server lives in it), keeping
 * stdout as bytes.
 */
function run(cmd: string, args: string[], opts: { input?: string; env?: Record<string, string> } = {}) {
  return new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: work, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin.on('error', () => undefined); // EPIPE when it exits before reading its input: its exit code says what happened
    child.stdin.end(opts.input ?? '');
  });
}

function remotePaths(id = bucket): string[] {
  return server.listBucket(id).map((f) => f.path);
}

/** Uploads `files` with mtime T0, then pins every upload time to U0 (for exact dates). */
async function seed(files: Record<string, string | Buffer>, id = bucket): Promise<void> {
  const dir = path.join(work, `seed-${Math.random().toString(36).slice(2)}`);
  writeTree(dir, files, T0);
  const r = await bs(['sync', dir, `hf://buckets/${id}`, '-q']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  for (const f of server.buckets.get(id)!.files.values()) f.uploadedAt = U0;
}

/** hf's own test fixture (test_buckets_cli.py) plus look-alike siblings of `logs`. */
const TREE = {
  'file.txt': 'hello',
  'big.bin': 'x'.repeat(2048),
  'sub/nested.txt': 'nested content',
  'sub/deep/file.txt': 'deep',
};
const LOOKALIKES = { 'logs/a.txt': 'a', 'logs/sub/b.txt': 'bb', 'logs.json': '{}', 'logs_backup/c.txt': 'ccc' };

describe('buckets create / info / delete / move', { timeout: 240_000 }, () => {
  it('create prints hf\'s result in every format; --exist-ok; a 409 is one line with a hint', async () => {
    const r = await bs(['buckets', 'create', 'tester/made']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`✓ Bucket created\n  uri: hf://buckets/tester/made\n  url: ${server.url}/buckets/tester/made\n`);
    expect(r.stderr).toBe('');
    expect(server.buckets.has('tester/made')).toBe(true);

    const again = await bs(['buckets', 'create', 'tester/made']);
    expect(again.code).toBe(2);
    expect(again.stdout).toBe('');
    expect(again.stderr).toBe("Error: Bucket 'tester/made' already exists\nHint: Pass --exist-ok to accept an existing bucket.\n");

    const ok = await bs(['buckets', 'create', 'hf://buckets/tester/made', '--exist-ok', '-q']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('hf://buckets/tester/made\n');

    const json = await bs(['buckets', 'create', 'tester/made2', '--private', '--format', 'json']);
    expect(json.stdout).toBe(`{"uri": "hf://buckets/tester/made2", "url": "${server.url}/buckets/tester/made2"}\n`);
    expect(server.buckets.get('tester/made2')!.private).toBe(true);

    const agent = await bs(['buckets', 'create', 'tester/made3', '--format', 'agent']);
    expect(agent.stdout).toBe(`uri=hf://buckets/tester/made3 url=${server.url}/buckets/tester/made3\n`);

    // A bare name goes to the token's own namespace ("me").
    const me = await bs(['buckets', 'create', 'mine', '--json']);
    expect(me.code).toBe(0);
    expect(JSON.parse(me.stdout).uri).toBe('hf://buckets/tester/mine');

    const prefix = await bs(['buckets', 'create', 'hf://buckets/tester/x/sub']);
    expect(prefix.code).toBe(2);
    expect(prefix.stderr).toContain('Cannot specify a prefix for bucket creation: hf://buckets/tester/x/sub.');
    const region = await bs(['buckets', 'create', 'tester/x', '--region', 'mars']);
    expect(region.code).toBe(2);
    expect(region.stderr).toContain("'mars' is not one of 'us', 'eu'");
  });

  it('info is hf\'s JSON dict (indented for humans, compact otherwise, the id when quiet)', async () => {
    await seed(TREE);
    server.buckets.get(bucket)!.createdAt = U0;
    const human = await bs(['buckets', 'info', bucket]);
    expect(human.code).toBe(0);
    expect(human.stdout).toBe(
      `{\n  "id": "${bucket}",\n  "private": false,\n  "created_at": "2026-02-16T15:28:32.123000+00:00",\n  "size": 2071,\n  "total_files": 4\n}\n`,
    );
    const json = await bs(['buckets', 'info', `hf://buckets/${bucket}`, '--json']);
    expect(json.stdout).toBe(`{"id": "${bucket}", "private": false, "created_at": "2026-02-16T15:28:32.123000+00:00", "size": 2071, "total_files": 4}\n`);
    const quiet = await bs(['buckets', 'info', `https://huggingface.co/buckets/${bucket}`, '-q']);
    expect(quiet.stdout).toBe(`${bucket}\n`);

    const missing = await bs(['buckets', 'info', 'tester/nope']);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toBe(
      "Error: Bucket 'tester/nope' not found on the Hugging Face Hub\n" +
        'Hint: Create it with `bucketsync buckets create tester/nope`, or check the name and that your token can access it.\n',
    );
  });

  it('delete asks (refusing without a terminal), deletes with --yes, --missing-ok; move renames', async () => {
    server.createBucket('tester/doomed');
    const refused = await bs(['buckets', 'delete', 'tester/doomed']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      `Error: Not asking "Are you sure you want to delete bucket 'tester/doomed'?": stdin is not a terminal.\nHint: Use --yes to skip confirmation.\n`,
    );
    expect(server.buckets.has('tester/doomed')).toBe(true);
    const jsonRefused = await bs(['buckets', 'delete', 'tester/doomed', '--json']);
    expect(jsonRefused.code).toBe(2);
    expect(jsonRefused.stderr).toContain('--format json never prompts');

    const del = await bs(['buckets', 'delete', 'tester/doomed', '-y']);
    expect(del.code).toBe(0);
    expect(del.stdout).toBe('✓ Bucket deleted\n  bucket_id: tester/doomed\n');
    expect(server.buckets.has('tester/doomed')).toBe(false);

    const gone = await bs(['buckets', 'delete', 'tester/doomed', '-y']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain("Error: Bucket 'tester/doomed' not found on the Hugging Face Hub");
    const ok = await bs(['buckets', 'delete', 'tester/doomed', '-y', '--missing-ok', '--json']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('{"bucket_id": "tester/doomed"}\n');

    const noNs = await bs(['buckets', 'delete', 'doomed', '-y']);
    expect(noNs.code).toBe(2);
    expect(noNs.stderr).toContain('Error: Invalid bucket ID: doomed. Must be in format namespace/bucket_name or hf://buckets/namespace/bucket_name.');
    const withPrefix = await bs(['buckets', 'delete', `hf://buckets/${bucket}/sub`, '-y']);
    expect(withPrefix.code).toBe(2);
    expect(withPrefix.stderr).toContain('Cannot specify a prefix for bucket deletion');

    await seed({ 'a.txt': 'a' });
    const mv = await bs(['buckets', 'move', bucket, 'hf://buckets/tester/renamed']);
    expect(mv.code).toBe(0);
    expect(mv.stdout).toBe(`✓ Bucket moved\n  from_id: ${bucket}\n  to_id: tester/renamed\n`);
    expect(remotePaths('tester/renamed')).toEqual(['a.txt']);
    expect(server.buckets.has(bucket)).toBe(false);
    server.createBucket('tester/taken');
    const clash = await bs(['buckets', 'move', 'tester/renamed', 'tester/taken']);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain("'tester/taken' already exists");
    const mvPrefix = await bs(['buckets', 'move', 'tester/renamed/x', 'tester/other']);
    expect(mvPrefix.code).toBe(2);
    expect(mvPrefix.stderr).toContain('Cannot specify a prefix for bucket move: tester/renamed/x.');
  });

  it('asks on a terminal: "n" keeps the bucket (exit 1), "y" deletes it', async () => {
    const hasScript = spawnSync('script', ['--version']).status === 0;
    if (!hasScript) return; // util-linux `script` gives the CLI a terminal
    server.createBucket('tester/asked');
    const env = `HF_ENDPOINT=${server.url} HF_TOKEN=${TOKEN} HF_HOME=${work}`;
    const ask = (answer: string) =>
      run('script', ['-qec', `env ${env} ${process.execPath} ${BIN} buckets delete tester/asked`, '/dev/null'], { input: `${answer}\n` });
    const no = await ask('n');
    expect(no.stdout.toString()).toContain("Are you sure you want to delete bucket 'tester/asked'? [y/N]: ");
    expect(no.stdout.toString()).toContain('Aborted.');
    expect(no.code).toBe(1);
    expect(server.buckets.has('tester/asked')).toBe(true);
    const yes = await ask('y');
    expect(yes.stdout.toString()).toContain('✓ Bucket deleted');
    expect(yes.code).toBe(0);
    expect(server.buckets.has('tester/asked')).toBe(false);
  });
});

describe('buckets list', { timeout: 240_000 }, () => {
  it('lists buckets as hf\'s table, TSV, JSON and ids; --search; -h; errors', async () => {
    server.createBucket('listns/alpha');
    server.createBucket('listns/beta-private', { private: true });
    for (const b of ['listns/alpha', 'listns/beta-private']) server.buckets.get(b)!.createdAt = U0;
    await seed({ 'f.bin': 'y'.repeat(1250) }, 'listns/alpha');

    const human = await bs(['buckets', 'list', 'listns']);
    expect(human.code).toBe(0);
    expect(human.stdout).toBe(
      [
        'ID                  PRIVATE SIZE TOTAL_FILES CREATED_AT',
        '------------------- ------- ---- ----------- ----------',
        'listns/alpha                1250           1 2026-02-16',
        'listns/beta-private ✔          0           0 2026-02-16',
        '',
      ].join('\n'),
    );
    const hr = await bs(['buckets', 'ls', 'hf://buckets/listns', '-h']);
    expect(hr.stdout.split('\n')[2]).toBe('listns/alpha                1.2 KB           1 2026-02-16');
    const json = await bs(['buckets', 'list', 'listns', '--format', 'json']);
    expect(json.stdout).toBe(
      '[{"id": "listns/alpha", "private": false, "size": 1250, "total_files": 1, "created_at": "2026-02-16 15:28:32.123000+00:00"}, ' +
        '{"id": "listns/beta-private", "private": true, "size": 0, "total_files": 0, "created_at": "2026-02-16 15:28:32.123000+00:00"}]\n',
    );
    const agent = await bs(['buckets', 'list', 'listns', '--format', 'agent']);
    expect(agent.stdout).toBe(
      'id\tprivate\tsize\ttotal_files\tcreated_at\n' +
        'listns/alpha\tFalse\t1250\t1\t2026-02-16T15:28:32.123000+00:00\n' +
        'listns/beta-private\tTrue\t0\t0\t2026-02-16T15:28:32.123000+00:00\n',
    );
    const quiet = await bs(['ls', 'listns', '-q', '--search', 'beta']);
    expect(quiet.stdout).toBe('listns/beta-private\n');
    const none = await bs(['buckets', 'ls', 'listns', '--search', 'zzz']);
    expect(none.stdout).toBe('No results found.\n');
    const noneJson = await bs(['buckets', 'ls', 'listns', '--search', 'zzz', '--json']);
    expect(noneJson.stderr).toBe('');
    expect(noneJson.stdout).toBe('[]\n');

    // The token's own namespace when no argument is given (paginated: page size 3).
    const mine = await bs(['buckets', 'ls', '-q']);
    expect(mine.stdout.split('\n').filter(Boolean)).toEqual([...server.buckets.keys()].filter((k) => k.startsWith('tester/')).sort());

    // Truncated to the terminal width, with hf's hint.
    const narrow = await bs(['buckets', 'list', 'listns'], { env: { COLUMNS: '40' } });
    expect(narrow.stdout.split('\n')[2]).toBe('l...         1250           1 2026-02-16');
    expect(narrow.stderr).toBe('Hint: Use `--no-truncate` or `--format json` to display full values.\n');
    const wide = await bs(['buckets', 'list', 'listns', '--no-truncate'], { env: { COLUMNS: '40' } });
    expect(wide.stdout).toContain('listns/beta-private');

    for (const [args, msg] of [
      [['listns', '--tree'], 'Cannot use --tree when listing buckets.'],
      [['listns', '-R'], 'Cannot use --recursive when listing buckets.'],
      [[bucket, '--search', 'x'], 'Cannot use --search when listing files.'],
      [[bucket, '--tree', '--format', 'json'], 'Cannot use --tree with --format json.'],
    ] as const) {
      const r = await bs(['buckets', 'ls', ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`Error: ${msg}\n`);
    }
  });

  it('lists files exactly as hf does: flat, -R, -h, --tree, quiet, json (hf\'s own expected lines)', async () => {
    await seed(TREE);
    const ls = async (...args: string[]) => {
      const r = await bs(['buckets', 'list', ...args]);
      expect(r.code).toBe(0);
      return r;
    };
    const flat = await ls(bucket);
    expect(flat.stdout).toBe(
      [`        2048  ${D}  big.bin`, `           5  ${D}  file.txt`, `              ${UD}  sub/`, ''].join('\n'),
    );
    expect(flat.stderr).toBe('Hint: Use -R to list files recursively.\n');
    // The test server lists directories in recursive listings too (the Hub does not): printed as given.
    const files = (s: string) => s.split('\n').filter((l) => l && !l.endsWith('/'));
    const rec = await ls(bucket, '-R');
    expect(files(rec.stdout)).toEqual([
      `        2048  ${D}  big.bin`,
      `           5  ${D}  file.txt`,
      `           4  ${D}  sub/deep/file.txt`,
      `          14  ${D}  sub/nested.txt`,
    ]);
    expect(rec.stderr).toBe('');
    expect(files((await ls(bucket, '-h', '-R')).stdout)).toEqual([
      `      2.0 KB         ${DH}  big.bin`,
      `         5 B         ${DH}  file.txt`,
      `         4 B         ${DH}  sub/deep/file.txt`,
      `        14 B         ${DH}  sub/nested.txt`,
    ]);
    const gap = ' '.repeat(D.length);
    expect((await ls(bucket, '--tree', '-R')).stdout).toBe(
      [
        `2048  ${D}  ├── big.bin`,
        `   5  ${D}  ├── file.txt`,
        `      ${gap}  └── sub/`,
        `      ${gap}      ├── deep/`,
        `   4  ${D}      │   └── file.txt`,
        `  14  ${D}      └── nested.txt`,
        '',
      ].join('\n'),
    );
    expect((await ls(bucket, '--tree')).stdout).toBe([`2048  ${D}  ├── big.bin`, `   5  ${D}  ├── file.txt`, `      ${gap}  └── sub/`, ''].join('\n'));
    const gapH = ' '.repeat(DH.length);
    expect((await ls(`hf://buckets/${bucket}`, '--tree', '-R', '-h')).stdout).toBe(
      [
        `2.0 KB  ${DH}  ├── big.bin`,
        `   5 B  ${DH}  ├── file.txt`,
        `        ${gapH}  └── sub/`,
        `        ${gapH}      ├── deep/`,
        `   4 B  ${DH}      │   └── file.txt`,
        `  14 B  ${DH}      └── nested.txt`,
        '',
      ].join('\n'),
    );
    expect((await ls(bucket, '--tree', '-R', '--quiet')).stdout).toBe(
      ['├── big.bin', '├── file.txt', '└── sub/', '    ├── deep/', '    │   └── file.txt', '    └── nested.txt', ''].join('\n'),
    );
    expect((await ls(bucket, '-q')).stdout).toBe('big.bin\nfile.txt\nsub/\n');
    expect((await ls(`${bucket}/sub`, '-R', '-q')).stdout.split('\n').filter((l) => l && !l.endsWith('/'))).toEqual([
      'sub/deep/file.txt',
      'sub/nested.txt',
    ]);
    expect((await ls(`https://huggingface.co/buckets/${bucket}/tree/sub/deep`, '-q')).stdout).toBe('sub/deep/file.txt\n');

    const json = await ls(bucket, '--format', 'json');
    const hash = server.listBucket(bucket).find((f) => f.path === 'big.bin')!.xetHash;
    expect(json.stdout.startsWith(
      `[\n  {\n    "type": "file",\n    "path": "big.bin",\n    "size": 2048,\n    "xet_hash": "${hash}",\n    "mtime": "2025-01-15T10:30:00+00:00",\n    "uploaded_at": "2026-02-16T15:28:32.123000+00:00"\n  },\n`,
    )).toBe(true);
    expect(json.stdout.endsWith(`  {\n    "type": "directory",\n    "path": "sub",\n    "uploaded_at": "2026-02-16T15:28:32.123000+00:00"\n  }\n]\n`)).toBe(true);

    // Empty: hf's "(empty)"; in json mode an empty array (hf prints nothing).
    server.createBucket('tester/empty');
    expect((await ls('tester/empty')).stdout).toBe('(empty)\n');
    expect((await ls('tester/empty', '--json')).stdout).toBe('[]\n');
    expect((await ls('tester/empty', '-q')).stdout).toBe('');

    const missing = await bs(['ls', 'tester/nope/sub']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("Bucket 'tester/nope' not found");
  });

  it('a prefix lists what is at and below it, never look-alike siblings; a trailing / is the same prefix', async () => {
    await seed({ ...LOOKALIKES, 'other.txt': 'o' });
    const q = async (...args: string[]) => (await bs(['ls', ...args, '-q'])).stdout.split('\n').filter((l) => l && !l.endsWith('/'));
    expect(await q(`${bucket}/logs`, '-R')).toEqual(['logs/a.txt', 'logs/sub/b.txt']);
    expect(await q(`${bucket}/logs/`, '-R')).toEqual(['logs/a.txt', 'logs/sub/b.txt']);
    expect(await q(`hf://buckets/${bucket}/logs/`, '-R')).toEqual(['logs/a.txt', 'logs/sub/b.txt']);
    expect((await bs(['ls', `${bucket}/logs/`, '-q'])).stdout).toBe('logs/a.txt\nlogs/sub/\n');
    expect(await q(`${bucket}/logs.json`)).toEqual(['logs.json']);
    expect((await bs(['ls', `${bucket}/log`, '-R'])).stdout).toBe('(empty)\n');
  });
});

describe('buckets rm', { timeout: 240_000 }, () => {
  it('rm -R removes the path and below, never logs.json or logs_backup/ (#4749), trailing / normalised', async () => {
    await seed({ ...LOOKALIKES, 'keep.txt': 'k' });
    const dry = await bs(['buckets', 'rm', `${bucket}/logs`, '-R', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toBe(
      `delete: hf://buckets/${bucket}/logs/a.txt\ndelete: hf://buckets/${bucket}/logs/sub/b.txt\n(dry run) 2 file(s) totaling 3 B would be removed.\n`,
    );
    expect(remotePaths()).toHaveLength(5);

    const r = await bs(['rm', '-R', `hf://buckets/${bucket}/logs/`, '-y']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`✓ Removed 2 file(s) totaling 3 B from '${bucket}'\n  bucket_id: ${bucket}\n  files_deleted: 2\n  size: 3 B\n`);
    expect(remotePaths()).toEqual(['keep.txt', 'logs.json', 'logs_backup/c.txt']);

    const nothing = await bs(['buckets', 'remove', `${bucket}/logs`, '-R', '-y']);
    expect(nothing.stdout).toBe('No files to remove.\n');
    expect(remotePaths()).toHaveLength(3);
  });

  it('--include / --exclude (need -R) match full bucket paths; json and quiet results', async () => {
    await seed({ 'data/a.tmp': '1', 'data/b.tmp': '22', 'data/keep.safetensors': 'm', 'top.tmp': 't', 'data/sub/c.tmp': 'c' });
    const noR = await bs(['rm', `${bucket}/data`, '--include', '*.tmp']);
    expect(noR.code).toBe(2);
    expect(noR.stderr).toBe('Error: --include and --exclude require --recursive.\n');

    const dry = await bs(['rm', '-R', bucket, '--include', '*.tmp', '--exclude', 'data/sub/*', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toEqual({
      bucket_id: bucket,
      files_to_delete: 3,
      size: '4 B',
      paths: ['data/a.tmp', 'data/b.tmp', 'top.tmp'],
      dry_run: true,
    });
    const r = await bs(['rm', '-R', `${bucket}/data`, '--include', '*.tmp', '-y', '--format', 'json']);
    expect(r.stdout).toBe(`{"bucket_id": "${bucket}", "files_deleted": 3, "size": "4 B"}\n`);
    expect(remotePaths()).toEqual(['data/keep.safetensors', 'top.tmp']);
    const q = await bs(['rm', '-R', bucket, '--exclude', '*.safetensors', '-y', '-q']);
    expect(q.stdout).toBe(`${bucket}\n`);
    expect(remotePaths()).toEqual(['data/keep.safetensors']);
  });

  it('a single file: dry run, confirmation refused without a terminal, --yes; a directory needs -R; errors', async () => {
    await seed({ 'a.txt': 'a', 'dir/b.txt': 'b' });
    const dry = await bs(['rm', `${bucket}/a.txt`, '--dry-run']);
    expect(dry.stdout).toBe(`delete: hf://buckets/${bucket}/a.txt\n(dry run) 1 file would be removed.\n`);
    const refused = await bs(['rm', `${bucket}/a.txt`]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(`Error: Not asking "Remove 'a.txt' from '${bucket}'?": stdin is not a terminal.\nHint: Use --yes to skip confirmation.\n`);
    const refusedR = await bs(['rm', '-R', `${bucket}/dir`]);
    expect(refusedR.code).toBe(2);
    expect(refusedR.stderr).toContain(`Not asking "Remove 1 file(s) totaling 1 B from '${bucket}'?"`);
    expect(remotePaths()).toEqual(['a.txt', 'dir/b.txt']);

    const r = await bs(['rm', `hf://buckets/${bucket}/a.txt`, '-y']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`✓ File removed\n  path: a.txt\n  bucket_id: ${bucket}\n`);
    const dir = await bs(['rm', `${bucket}/dir`, '-y']);
    expect(dir.code).toBe(1);
    expect(dir.stderr).toBe(`Error: 'dir' is a directory in '${bucket}'\nHint: Use -R to remove it and everything below it: bucketsync rm -R ${bucket}/dir\n`);
    const missing = await bs(['rm', `${bucket}/nope.txt`, '-y']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`Error: 'nope.txt' not found in '${bucket}'`);
    const whole = await bs(['rm', bucket]);
    expect(whole.code).toBe(2);
    expect(whole.stderr).toBe(
      `Error: No file path specified. To remove files, provide a path (e.g. '${bucket}/FILE') or use --recursive to remove all files. To delete the entire bucket, use \`bucketsync buckets delete ${bucket}\`.\n`,
    );
    expect(remotePaths()).toEqual(['dir/b.txt']);
  });

  it('a Hub refusal of some deletes is reported per file (hf 2.0 BucketBatchError lines), exit 1', async () => {
    await seed({ 'a.txt': 'a', 'b.txt': 'b' });
    server.failPaths.set('b.txt', 'Injected failure');
    const r = await bs(['rm', '-R', bucket, '-y']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`  - b.txt: Injected failure\nError: Failed to remove 1 of 2 file(s) from '${bucket}'\nHint: The other 1 operation(s) were applied.\n`);
    expect(r.stdout).toBe('');
    expect(remotePaths()).toEqual(['b.txt']);
  });

  it('a read-only token and a bad token get the token hint', async () => {
    await seed({ 'a.txt': 'a' });
    const ro = await bs(['rm', '-R', bucket, '-y'], { env: { HF_TOKEN: 'hf_read_only' } });
    expect(ro.code).toBe(2);
    expect(ro.stderr).toMatch(/^Error: Not authorized .*HTTP 403/m);
    expect(ro.stderr).toMatch(/^Hint: .*HF_TOKEN/m);
    const bad = await bs(['ls', bucket, '--token', 'hf_wrong']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/HTTP 401/);
    expect(bad.stderr).toMatch(/^Hint: Check your Hugging Face token/m);
    const invalid = await bs(['ls', bucket, '--token', 'nope']);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain("is not a valid token (tokens start with 'hf_')");
    expect(remotePaths()).toEqual(['a.txt']);
  });
});

describe('buckets cp', { timeout: 240_000 }, () => {
  it('uploads a file (bucket root, into a folder with /, to a full path) and from stdin', async () => {
    writeTree(work, { 'local/model.bin': 'weights', 'local/config.json': '{"a":1}' }, T0);
    const root = await bs(['cp', 'local/model.bin', `hf://buckets/${bucket}`]);
    expect(root.code).toBe(0);
    expect(root.stdout).toBe(`✓ Uploaded\n  src: local/model.bin\n  dst: hf://buckets/${bucket}/model.bin\n`);
    const into = await bs(['buckets', 'cp', 'local/config.json', `hf://buckets/${bucket}/ckpt/`, '--json']);
    expect(into.stdout).toBe(`{"src": "local/config.json", "dst": "hf://buckets/${bucket}/ckpt/config.json"}\n`);
    const full = await bs(['cp', 'local/config.json', `https://huggingface.co/buckets/${bucket}/tree/renamed.json`, '-q']);
    expect(full.stdout).toBe('local/config.json\n');
    const stdin = await bs(['cp', '-', `hf://buckets/${bucket}/logs/today.txt`], { input: 'from stdin\n' });
    expect(stdin.code).toBe(0);
    expect(stdin.stdout).toBe(`✓ Uploaded\n  src: stdin\n  dst: hf://buckets/${bucket}/logs/today.txt\n`);

    const files = Object.fromEntries(server.listBucket(bucket).map((f) => [f.path, f]));
    expect(Object.keys(files)).toEqual(['ckpt/config.json', 'logs/today.txt', 'model.bin', 'renamed.json']);
    expect(files['model.bin']!.mtime).toBe(T0 * 1000);
    expect(files['ckpt/config.json']!.contentType).toBe('application/json');
    expect((await server.readFile(bucket, 'logs/today.txt')).toString()).toBe('from stdin\n');

    const stdinDir = await bs(['cp', '-', `hf://buckets/${bucket}/logs/`], { input: 'x' });
    expect(stdinDir.code).toBe(2);
    expect(stdinDir.stderr).toBe('Error: Stdin upload requires a full destination path including filename.\n');
  });

  it('downloads to a folder (keeping the name and the mtime), to a file, to the current directory and to stdout', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 7);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 253;
    await seed({ 'data/big.bin': big, 'data/small.txt': 'small', 'empty.txt': '' });
    const into = await bs(['cp', `hf://buckets/${bucket}/data/big.bin`, 'out/']);
    expect(into.code).toBe(0);
    expect(into.stdout).toBe(`✓ Downloaded\n  src: hf://buckets/${bucket}/data/big.bin\n  dst: out/big.bin\n`);
    expect(fs.readFileSync(path.join(work, 'out/big.bin')).equals(big)).toBe(true);
    expect(fs.statSync(path.join(work, 'out/big.bin')).mtimeMs).toBe(T0 * 1000);

    fs.mkdirSync(path.join(work, 'existing'));
    expect((await bs(['cp', `hf://buckets/${bucket}/data/small.txt`, 'existing'])).code).toBe(0);
    expect(fs.readFileSync(path.join(work, 'existing/small.txt'), 'utf8')).toBe('small');
    expect((await bs(['cp', `hf://buckets/${bucket}/data/small.txt`, 'renamed.txt'])).code).toBe(0);
    expect(fs.readFileSync(path.join(work, 'renamed.txt'), 'utf8')).toBe('small');
    const here = await bs(['cp', `hf://buckets/${bucket}/empty.txt`]);
    expect(here.code).toBe(0);
    expect(fs.readFileSync(path.join(work, 'empty.txt'), 'utf8')).toBe('');

    const out = await run(process.execPath, [BIN, 'cp', `hf://buckets/${bucket}/data/big.bin`, '-'], {
      env: { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: work },
    });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(Buffer.compare(out.stdout, big)).toBe(0);
  });

  it('copies bucket to bucket on the server (copyFile, no bytes moved), keeping the mtime', async () => {
    await seed({ 'src/a.bin': 'a'.repeat(100_000) });
    server.createBucket('tester/cp-dest');
    server.resetStats();
    const r = await bs(['cp', `hf://buckets/${bucket}/src/a.bin`, 'hf://buckets/tester/cp-dest/copies/']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`✓ Copied\n  src: hf://buckets/${bucket}/src/a.bin\n  dst: hf://buckets/tester/cp-dest/copies/\n`);
    expect(server.stats.batchLines['copyFile']).toBe(1);
    expect(server.stats.xorbsReceived).toBe(0);
    expect(server.stats.xorbBytesServed).toBe(0);
    const [copied] = server.listBucket('tester/cp-dest');
    expect(copied!.path).toBe('copies/a.bin');
    expect(copied!.mtime).toBe(T0 * 1000);
    expect((await server.readFile('tester/cp-dest', 'copies/a.bin')).toString()).toBe('a'.repeat(100_000));
  });

  it('refuses directories (pointing at sync), local-to-local copies and missing sources', async () => {
    await seed({ 'dir/a.txt': 'a' });
    fs.mkdirSync(path.join(work, 'localdir'));
    const cases: [string[], number, string][] = [
      [['cp', `hf://buckets/${bucket}/dir`, 'x/'], 2, 'Error: Source path must include a file name, not just a bucket or directory path.'],
      [['cp', `hf://buckets/${bucket}/dir/`, 'x/'], 2, `Hint: Use \`bucketsync sync hf://buckets/${bucket}/dir/ DEST\` to copy directories.`],
      [['cp', `hf://buckets/${bucket}`, 'x/'], 2, 'Error: Source path must include a file name'],
      [['cp', 'localdir', `hf://buckets/${bucket}/`], 2, `Error: Source must be a file, not a directory.\nHint: Use \`bucketsync sync localdir hf://buckets/${bucket}/\` for directories.`],
      [['cp', 'nofile', `hf://buckets/${bucket}/`], 2, 'Error: Source file not found: nofile'],
      [['cp', 'a', 'b'], 2, 'Error: One of SRC or DST must be a bucket URI (s3://bucket/prefix, hf://buckets/namespace/name/prefix or az://container/prefix).'],
      [['cp', 'a'], 2, 'Error: Missing destination.'],
      [['cp', `hf://buckets/${bucket}/dir/nope.txt`, 'x'], 1, `Error: 'dir/nope.txt' not found in bucket '${bucket}'`],
      [['cp', 'hf://models/x/y', 'x'], 2, 'Error: Copying from or to model, dataset and space repositories is not supported yet: hf://models/x/y'],
    ];
    for (const [args, code, msg] of cases) {
      const r = await bs(args);
      expect(r.stderr).toContain(msg);
      expect(r.code).toBe(code);
    }
    expect(fs.existsSync(path.join(work, 'x'))).toBe(false);
  });
});

// ---- differential check against the real hf CLI (opt-in) --------------------------------------

const HF_CLI = process.env['BUCKETSYNC_HF_CLI'];
describe.skipIf(!HF_CLI)('the same listings as the real `hf` (BUCKETSYNC_HF_CLI)', { timeout: 300_000 }, () => {
  it('prints byte-identical stdout and hints for list/info/rm --dry-run in every format', async () => {
    await seed({ ...TREE, ...LOOKALIKES });
    const env = { HF_ENDPOINT: server.url, HF_TOKEN: TOKEN, HF_HOME: work, NO_COLOR: '1', COLUMNS: '200' };
    const variants = [
      ['buckets', 'list', bucket],
      ['buckets', 'list', bucket, '-R'],
      ['buckets', 'list', bucket, '-R', '-h'],
      ['buckets', 'list', bucket, '--tree', '-R'],
      ['buckets', 'list', bucket, '--tree', '-R', '-h', '--quiet'],
      ['buckets', 'list', bucket, '-R', '--format', 'json'],
      ['buckets', 'list', bucket, '--format', 'agent'],
      ['buckets', 'list', `hf://buckets/${bucket}/logs`, '-R'],
      ['buckets', 'list', `${bucket}/sub`],
      ['buckets', 'list'],
      ['buckets', 'list', '--format', 'json'],
      ['buckets', 'list', '-h', '--format', 'agent'],
      ['buckets', 'info', bucket],
      ['buckets', 'info', bucket, '--format', 'json'],
      ['buckets', 'rm', `${bucket}/logs`, '-R', '--dry-run'],
      ['buckets', 'rm', bucket, '-R', '--include', '*.txt', '--dry-run'],
    ];
    for (const args of variants) {
      const theirs = await run(HF_CLI!, args, { env });
      const ours = await run(process.execPath, [BIN, ...args], { env });
      expect({ args, out: ours.stdout.toString(), code: ours.code, err: ours.code ? ours.stderr : '' }).toEqual({
        args,
        out: theirs.stdout.toString(),
        code: theirs.code,
        err: '',
      });
      const hints = (s: string) => s.split('\n').filter((l) => l.startsWith('Hint: Use'));
      expect(hints(ours.stderr)).toEqual(hints(theirs.stderr));
    }
  });
});
