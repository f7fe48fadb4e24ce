/**
 * Deduplicated uploads against a real S3 server (Ceph RGW): identical files sent once and
 * copied server-side, x-amz-meta-xxh128 on every upload, metadata-only updates, renames with
 * --track-renames, --checksum through stored hashes and MD5 ETags. Request counts come
 * from BUCKETSYNC_REQUEST_STATS.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cli, jsonl, planByPath, summaryEvent, tempDir, writeTree, type CliOptions } from '../support/cli.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const T0 = 1_700_000_000;
const MiB = 1024 * 1024;
const endpoint = s3TestEndpoint();

let raw: S3Client;
let work: string;
let src: string;
let bucket: string;
let statsFile: string;

function s3(args: string[], opts: CliOptions = {}) {
  fs.rmSync(statsFile, { force: true });
  return cli(args, {
    timeoutMs: 180_000,
    ...opts,
    env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), BUCKETSYNC_REQUEST_STATS: statsFile, ...opts.env },
  });
}

/** The S3 request counts of the last run (summed over its S3 stores). */
function requests(): Record<string, number> {
  const out: Record<string, number> = {};
  if (!fs.existsSync(statsFile)) return out;
  for (const line of jsonl(fs.readFileSync(statsFile, 'utf8'))) {
    for (const [k, v] of Object.entries((line['requests'] as Record<string, number> | undefined) ?? {})) out[k] = (out[k] ?? 0) + v;
  }
  return out;
}

const put = (rel: string, content: Buffer | string, mtimeSec = T0) => writeTree(src, { [rel]: content }, mtimeSec);

async function head(key: string) {
  return raw.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
}

async function body(key: string): Promise<Buffer> {
  const r = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

async function keys(): Promise<string[]> {
  const r = await raw.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

const xxh = (h: string | undefined) => (h === undefined ? undefined : `xxh128:${h}`);

describe.skipIf(!endpoint)('dedup against S3 (real CLI, real RGW)', { timeout: 300_000 }, () => {
  beforeAll(() => {
    raw = s3TestClient();
  });
  afterAll(() => {
    raw?.destroy();
  });
  beforeEach(async () => {
    work = tempDir('bucketsync-dedup-s3-');
    src = path.join(work, 'src');
    statsFile = path.join(work, 'stats.jsonl');
    fs.mkdirSync(src);
    bucket = await createTestBucket('dedup');
  });
  afterEach(() => {
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('identical files go up once, the others are server-side copies (multipart too), each with x-amz-meta-xxh128', async () => {
    const big = randomBytes(17 * MiB + 3); // multipart upload (16 MiB threshold)
    const cfg = '{"hidden": 512, "layers": 4}';
    for (const d of ['c1', 'c2', 'c3']) {
      put(`${d}/weights.bin`, big);
      put(`${d}/config.json`, cfg);
    }
    put('c1/unique.txt', 'only once');
    const dry = await s3(['sync', src, `s3://${bucket}/run`, '--dry-run', '--dedup']);
    expect(dry.code).toBe(0);
    const plan = jsonl(dry.stdout).slice(1);
    expect(plan.filter((o) => o['copy_from'] !== undefined).map((o) => [o['path'], o['copy_from'], o['action']])).toEqual([
      ['c2/config.json', 'c1/config.json', 'upload'],
      ['c2/weights.bin', 'c1/weights.bin', 'upload'],
      ['c3/config.json', 'c1/config.json', 'upload'],
      ['c3/weights.bin', 'c1/weights.bin', 'upload'],
    ]);

    const r = await s3(['sync', src, `s3://${bucket}/run`, '--json', '--dedup']);
    expect(r.code, r.stderr).toBe(0);
    const s = summaryEvent(r.stdout);
    expect(s).toMatchObject({ transferred: 3, copied: 4, copied_bytes: 2 * (big.length + cfg.length), failed: 0, stale: 0 });
    expect(s['transferred_bytes']).toBe(big.length + cfg.length + 'only once'.length);
    const req = requests();
    expect(req['PutObject']).toBe(2); // config.json and unique.txt
    expect(req['UploadPart']).toBe(2); // one 17 MiB file in two parts: the bytes went up once
    expect(req['CopyObject']).toBe(4);

    const want = createHash('md5').update(big).digest('hex');
    const hashes = new Set<string | undefined>();
    for (const d of ['c1', 'c2', 'c3']) {
      expect(createHash('md5').update(await body(`run/${d}/weights.bin`)).digest('hex')).toBe(want);
      const h = await head(`run/${d}/weights.bin`);
      expect(h.Metadata?.['mtime']).toBe(`${T0}`);
      hashes.add(xxh(h.Metadata?.['xxh128']));
      expect((await body(`run/${d}/config.json`)).toString()).toBe(cfg);
    }
    expect(hashes.size).toBe(1);
    expect([...hashes][0]).toBe(plan.find((o) => o['path'] === 'c2/weights.bin')!['hash']);
    expect((await head('run/c1/unique.txt')).Metadata?.['xxh128']).toMatch(/^[0-9a-f]{32}$/);
    expect((await s3(['sync', src, `s3://${bucket}/run`, '--dedup'])).stderr).toContain('Nothing to sync.');
  });

  it('same content with a newer mtime updates only the metadata (no upload); a real change is uploaded', async () => {
    put('a.bin', randomBytes(300_000));
    put('b.bin', Buffer.alloc(300_000, 1));
    expect((await s3(['sync', src, `s3://${bucket}`])).code).toBe(0);
    const etag = (await head('a.bin')).ETag;
    fs.utimesSync(path.join(src, 'a.bin'), T0 + 3600, T0 + 3600);
    put('b.bin', Buffer.alloc(300_000, 2), T0 + 3600);
    const dry = await s3(['sync', src, `s3://${bucket}`, '--dry-run', '--dedup']);
    const ops = planByPath(dry.stdout);
    expect(ops['a.bin']).toMatchObject({ action: 'upload', reason: 'same content, mtime differs' });
    expect(ops['a.bin']!['hash']).toMatch(/^xxh128:/);
    expect(ops['b.bin']).toMatchObject({ action: 'upload', reason: 'local newer' });
    const r = await s3(['sync', src, `s3://${bucket}`, '--json', '--dedup']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 1, transferred_bytes: 300_000, metadata_updated: 1 });
    const req = requests();
    expect(req['UploadPart'] ?? 0).toBe(0);
    expect(req['CopyObject']).toBe(1); // a.bin's self-copy with the new mtime
    const h = await head('a.bin');
    expect(h.Metadata?.['mtime']).toBe(`${T0 + 3600}`);
    expect(h.Metadata?.['xxh128']).toBe((ops['a.bin']!['hash'] as string).slice('xxh128:'.length));
    expect(h.ETag).toBe(etag);
    expect((await body('b.bin'))[0]).toBe(2);
    expect((await s3(['sync', src, `s3://${bucket}`])).stderr).toContain('Nothing to sync.');

    // Only a touch: no request sends file content.
    fs.utimesSync(path.join(src, 'a.bin'), T0 + 7200, T0 + 7200);
    const touched = await s3(['sync', src, `s3://${bucket}`, '--json', '--dedup']);
    expect(summaryEvent(touched.stdout)).toMatchObject({ transferred: 0, metadata_updated: 1 });
    expect(requests()['PutObject'] ?? 0).toBe(0);
  });

  it('--track-renames: a renamed checkpoint directory costs zero uploaded bytes; --delete removes the old paths', async () => {
    for (const d of ['ckpt-1', 'ckpt-2']) {
      put(`${d}/weights.bin`, randomBytes(2 * MiB + (d === 'ckpt-1' ? 1 : 2)));
      put(`${d}/tokenizer.json`, '{"vocab": 32000}');
    }
    expect((await s3(['sync', src, `s3://${bucket}/ckpts`])).code).toBe(0);
    fs.renameSync(path.join(src, 'ckpt-2'), path.join(src, 'best'));

    const plain = await s3(['sync', src, `s3://${bucket}/ckpts`, '--delete', '--dry-run']);
    expect(jsonl(plain.stdout).find((o) => o['path'] === 'best/weights.bin')!['copy_from']).toBeUndefined();

    const r = await s3(['sync', src, `s3://${bucket}/ckpts`, '--delete', '--track-renames', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = summaryEvent(r.stdout);
    expect(s).toMatchObject({ transferred: 0, transferred_bytes: 0, copied: 2, deleted: 2, failed: 0 });
    const req = requests();
    expect(req['PutObject'] ?? 0).toBe(0);
    expect(req['UploadPart'] ?? 0).toBe(0);
    expect(await keys()).toEqual(['ckpts/best/tokenizer.json', 'ckpts/best/weights.bin', 'ckpts/ckpt-1/tokenizer.json', 'ckpts/ckpt-1/weights.bin']);
    const events = jsonl(r.stdout).filter((e) => e['event'] === 'done' && e['action'] === 'upload');
    expect(events.map((e) => [e['path'], e['copy_from']])).toEqual(
      expect.arrayContaining([
        ['best/tokenizer.json', expect.stringMatching(/tokenizer\.json$/)],
        ['best/weights.bin', 'ckpt-2/weights.bin'],
      ]),
    );
    expect((await s3(['sync', src, `s3://${bucket}/ckpts`, '--delete'])).stderr).toContain('Nothing to sync.');
  });

  it('--checksum compares equal sizes by content: stored xxh128, or the MD5 ETag of objects other tools uploaded', async () => {
    put('ours.txt', 'abcd');
    expect((await s3(['sync', src, `s3://${bucket}`])).code).toBe(0);
    // Objects written by another tool: no xxh128 metadata, single-part MD5 ETags.
    const foreign = async (key: string, content: string, mtime: number) =>
      raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(content), Metadata: { mtime: `${mtime}` } }));
    await foreign('same.txt', 'wxyz', T0 + 500); // destination newer, same bytes
    await foreign('differs.txt', 'zzzz', T0); // same size and mtime, other bytes
    put('same.txt', 'wxyz');
    put('differs.txt', 'abcd');
    put('ours.txt', 'dcba'); // same size and mtime as what we uploaded, other bytes
    fs.utimesSync(path.join(src, 'ours.txt'), T0, T0);

    const plain = planByPath((await s3(['sync', src, `s3://${bucket}`, '--dry-run'])).stdout);
    expect(plain['differs.txt']).toMatchObject({ action: 'skip', reason: 'identical' });
    expect(plain['ours.txt']).toMatchObject({ action: 'skip', reason: 'identical' });

    const dry = await s3(['sync', src, `s3://${bucket}`, '--checksum', '--dry-run']);
    const ops = planByPath(dry.stdout);
    expect(ops['same.txt']).toMatchObject({ action: 'skip', reason: 'same checksum' });
    expect(ops['differs.txt']).toMatchObject({ action: 'upload', reason: 'checksum differs' });
    expect(ops['ours.txt']).toMatchObject({ action: 'upload', reason: 'checksum differs' });

    const r = await s3(['sync', src, `s3://${bucket}`, '--checksum']);
    expect(r.code, r.stderr).toBe(0);
    expect((await body('differs.txt')).toString()).toBe('abcd');
    expect((await body('ours.txt')).toString(), r.stdout + r.stderr).toBe('dcba');
    expect((await body('same.txt')).toString()).toBe('wxyz');
    const again = await s3(['sync', src, `s3://${bucket}`, '--checksum', '--dry-run']);
    expect(jsonl(again.stdout).slice(1).every((o) => o['action'] === 'skip')).toBe(true);
  });

  it('in-plan dedup is on by default for S3 destinations (files of 1 MiB and more); --no-dedup plans exactly as hf', async () => {
    const w = randomBytes(MiB + 7);
    put('a/w.bin', w);
    put('b/w.bin', w);
    put('a/config.json', '{"n": 1}'); // small duplicates: a copy would save nothing worth a hash
    put('b/config.json', '{"n": 1}');
    put('c.txt', 'once');
    const dflt = jsonl((await s3(['sync', src, `s3://${bucket}/d`, '--dry-run'])).stdout);
    expect(dflt[0]!['content_options']).toEqual({ dedup: true, checksum: false, track_renames: false });
    const byPath = Object.fromEntries(dflt.slice(1).map((o) => [o['path'], o]));
    expect(byPath['b/w.bin']).toMatchObject({ action: 'upload', reason: 'new file', copy_from: 'a/w.bin' });
    expect(byPath['b/config.json']!['copy_from']).toBeUndefined();
    expect(byPath['c.txt']!['hash']).toBeUndefined(); // never hashed for the plan
    const explicit = jsonl((await s3(['sync', src, `s3://${bucket}/d`, '--dry-run', '--dedup'])).stdout);
    expect(explicit.find((o) => o['path'] === 'b/config.json')!['copy_from']).toBe('a/config.json');
    const off = jsonl((await s3(['sync', src, `s3://${bucket}/d`, '--dry-run', '--no-dedup'])).stdout);
    expect(off[0]!['content_options']).toBeUndefined();
    expect(off.slice(1).some((o) => o['copy_from'] !== undefined || o['hash'] !== undefined)).toBe(false);
    expect(off.slice(1).map((o) => [o['path'], o['action'], o['reason']])).toEqual(dflt.slice(1).map((o) => [o['path'], o['action'], o['reason']]));
    const r = await s3(['sync', src, `s3://${bucket}/d`, '--json']);
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 4, copied: 1, failed: 0 });
    expect((await body('d/b/w.bin')).equals(w)).toBe(true);
    // A local destination keeps hf's plan unless --dedup is given.
    const local = jsonl((await s3(['sync', src, path.join(work, 'copy'), '--dry-run'])).stdout);
    expect(local[0]!['content_options']).toBeUndefined();
    expect(local.slice(1).some((o) => o['copy_from'] !== undefined)).toBe(false);
  });

  it('downloads: --checksum and metadata-only updates compare local files with the stored xxh128 or the MD5 ETag', async () => {
    put('ours.bin', randomBytes(50_000));
    put('touched.bin', randomBytes(60_000));
    expect((await s3(['sync', src, `s3://${bucket}`])).code).toBe(0);
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'foreign.txt', Body: Buffer.from('wxyz'), Metadata: { mtime: `${T0}` } }));
    const dst = path.join(work, 'dst');
    expect((await s3(['sync', `s3://${bucket}`, dst])).code).toBe(0);
    const at = (rel: string) => path.join(dst, rel);
    // ours.bin: rewritten in place, same size, mtime set back (only content shows it)
    const orig = fs.readFileSync(at('ours.bin'));
    const changed = Buffer.from(orig);
    changed[10] = changed[10]! ^ 0xff;
    fs.writeFileSync(at('ours.bin'), changed);
    fs.utimesSync(at('ours.bin'), T0, T0);
    // touched.bin and foreign.txt: same bytes, local copy older than the bucket's
    fs.utimesSync(at('touched.bin'), T0 - 3600, T0 - 3600);
    fs.utimesSync(at('foreign.txt'), T0 - 3600, T0 - 3600);

    const plain = planByPath((await s3(['sync', `s3://${bucket}`, dst, '--dry-run'])).stdout);
    expect(plain['ours.bin']).toMatchObject({ action: 'skip', reason: 'identical' });
    expect(plain['touched.bin']).toMatchObject({ action: 'download', reason: 'remote newer' });

    const dedup = planByPath((await s3(['sync', `s3://${bucket}`, dst, '--dry-run', '--dedup'])).stdout);
    expect(dedup['touched.bin']).toMatchObject({ action: 'download', reason: 'same content, mtime differs', mtime_only: true });
    expect(dedup['touched.bin']!['hash']).toMatch(/^xxh128:[0-9a-f]{32}$/);
    expect(dedup['foreign.txt']).toMatchObject({ action: 'download', reason: 'remote newer' }); // no stored hash: --checksum only

    const dry = await s3(['sync', `s3://${bucket}`, dst, '--dry-run', '--checksum']);
    const ops = planByPath(dry.stdout);
    expect(ops['ours.bin']).toMatchObject({ action: 'download', reason: 'checksum differs' });
    expect(ops['touched.bin']).toMatchObject({ action: 'download', reason: 'same content, mtime differs' });
    expect(ops['foreign.txt']).toMatchObject({ action: 'download', reason: 'same content, mtime differs', hash: `md5:${createHash('md5').update('wxyz').digest('hex')}` });

    const r = await s3(['sync', `s3://${bucket}`, dst, '--checksum', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 1, transferred_bytes: 50_000, metadata_updated: 2, failed: 0, stale: 0 });
    expect(requests()['GetObject']).toBe(1); // only ours.bin's bytes came down
    expect(fs.readFileSync(at('ours.bin')).equals(orig)).toBe(true);
    expect(fs.statSync(at('touched.bin')).mtimeMs).toBe(T0 * 1000);
    expect(fs.statSync(at('foreign.txt')).mtimeMs).toBe(T0 * 1000);
    const again = await s3(['sync', `s3://${bucket}`, dst, '--checksum', '--dry-run']);
    expect(jsonl(again.stdout).slice(1).every((o) => o['action'] === 'skip')).toBe(true);
  });

  it('a plan with copy_from applies with --apply; plan-time flags are refused with --apply', async () => {
    const w = randomBytes(100_000);
    put('x/w.bin', w);
    put('y/w.bin', w);
    const planFile = path.join(work, 'plan.jsonl');
    expect((await s3(['sync', src, `s3://${bucket}`, '--dedup', '--plan', planFile])).code).toBe(0);
    expect(fs.readFileSync(planFile, 'utf8')).toContain('"copy_from": "x/w.bin"');
    const bad = await s3(['sync', '--apply', planFile, '--track-renames']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Cannot specify track_renames when using apply.');
    const r = await s3(['sync', '--apply', planFile, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 1, copied: 1 });
    expect((await body('y/w.bin')).equals(w)).toBe(true);
  });
});
