/**
 * The real CLI against Azurite (Microsoft's Azure Storage emulator, started by
 * test/support/azurite-setup.ts): uploads with rclone-format mtimes, no-op re-runs, downloads,
 * --delete inside the prefix only, --plan/--apply with stale changes refused, container to
 * container, bad credentials and a missing container (exit 2, one line).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AzureClient } from '../../src/stores/azure/client.js';
import { formatAzureMtime, parseAzureMtime } from '../../src/stores/azure/mtime.js';
import { parseBlobList } from '../../src/stores/azure/store.js';
import { cli, readTree, tempDir, writeTree, type CliOptions } from '../support/cli.js';
import { DEV_ACCOUNT, azureTestClient, azureTestEnv, azuriteEndpoint, createTestContainer } from '../support/azure-env.js';

const T0 = 1_700_000_000; // a fixed past mtime (seconds)
const endpoint = azuriteEndpoint();

let work: string;
let src: string;
let dst: string;
let container: string;
let client: AzureClient;

function az(args: string[], opts: CliOptions = {}) {
  return cli(args, { timeoutMs: 120_000, ...opts, env: { ...azureTestEnv(endpoint!), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), ...opts.env } });
}

const uri = (sub = 'data', c = container) => `az://${c}${sub ? `/${sub}` : ''}`;

async function put(name: string, body: string, mtimeSec: number, c = container): Promise<void> {
  await client.request({
    op: 'PutBlob',
    method: 'PUT',
    container: c,
    blob: name,
    headers: { 'x-ms-blob-type': 'BlockBlob', 'x-ms-meta-mtime': formatAzureMtime(mtimeSec * 1000) },
    body: Buffer.from(body),
  });
}

async function remote(c = container): Promise<Record<string, { size: number; mtime: number | undefined }>> {
  const res = await client.request({ op: 'ListBlobs', method: 'GET', container: c, query: { restype: 'container', comp: 'list', include: 'metadata' } });
  return Object.fromEntries(parseBlobList(res.body).blobs.map((b) => [b.name, { size: b.size, mtime: parseAzureMtime(b.metadata.mtime) }]));
}

async function getText(name: string, c = container): Promise<string> {
  const r = await client.request({ op: 'GetBlob', method: 'GET', container: c, blob: name });
  return r.body;
}

describe.skipIf(!endpoint)('bucketsync CLI against Azure Blob Storage (Azurite)', () => {
  beforeEach(async () => {
    work = tempDir('bucketsync-azure-e2e-');
    src = path.join(work, 'src');
    dst = path.join(work, 'dst');
    fs.mkdirSync(src);
    container = await createTestContainer('e2e');
    client = azureTestClient();
  });
  afterEach(() => {
    client.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('uploads with rclone-format mtimes, then has nothing to do; downloads keep mtimes so both directions are no-ops', async () => {
    writeTree(src, { 'a.txt': 'alpha', 'dir/b.txt': 'beta', 'dir/sp ace+é.txt': 'gamma', 'big.bin': randomBytes(40_000) }, T0);
    const up = await az(['sync', src, uri()]);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toContain('Sync completed.');
    const r = await remote();
    expect(Object.keys(r).sort()).toEqual(['data/a.txt', 'data/big.bin', 'data/dir/b.txt', 'data/dir/sp ace+é.txt']);
    expect(r['data/a.txt']).toEqual({ size: 5, mtime: T0 * 1000 });
    const raw = await client.request({ op: 'GetBlobProperties', method: 'HEAD', container, blob: 'data/a.txt' });
    expect(raw.headers['x-ms-meta-mtime']).toBe('2023-11-14T22:13:20.000000000Z');
    const again = await az(['sync', src, uri()]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('Nothing to sync.');

    const down = await az(['sync', uri(), dst]);
    expect(down.code, down.stderr).toBe(0);
    expect(readTree(dst)).toEqual(readTree(src));
    expect(fs.statSync(path.join(dst, 'dir/b.txt')).mtimeMs).toBe(T0 * 1000);
    expect((await az(['sync', uri(), dst])).stderr).toContain('Nothing to sync.');

    // a touched file (same bytes, new mtime) gets its mtime updated, not its bytes sent again
    fs.utimesSync(path.join(src, 'dir/b.txt'), T0 + 3600, T0 + 3600);
    const touched = await az(['sync', src, uri()]);
    expect(touched.code, touched.stderr).toBe(0);
    expect(touched.stderr).toMatch(/Metadata updates:\s+1 file\b/);
    expect(touched.stderr).toMatch(/Transferred:\s+0 files/);
    expect((await remote())['data/dir/b.txt']!.mtime).toBe((T0 + 3600) * 1000);

    // another tool rewrote a blob keeping our metadata (hash and its Content-MD5 tie): the stale
    // hash is not trusted, so a touch re-sends the file instead of only re-stamping it
    const head = await client.request({ op: 'GetBlobProperties', method: 'HEAD', container, blob: 'data/a.txt' });
    await client.request({
      op: 'PutBlob',
      method: 'PUT',
      container,
      blob: 'data/a.txt',
      headers: { 'x-ms-blob-type': 'BlockBlob', 'x-ms-meta-mtime': String(head.headers['x-ms-meta-mtime']), 'x-ms-meta-xxh128': String(head.headers['x-ms-meta-xxh128']), 'x-ms-meta-xxh128md5': String(head.headers['x-ms-meta-xxh128md5']) },
      body: Buffer.from('ALPHA'),
    });
    fs.utimesSync(path.join(src, 'a.txt'), T0 + 7200, T0 + 7200);
    const resent = await az(['sync', src, uri()]);
    expect(resent.code, resent.stderr).toBe(0);
    expect(resent.stderr).toMatch(/Transferred:\s+1 file\b/);
    expect(await getText('data/a.txt')).toBe('alpha');
  });

  it('--delete removes only inside the prefix: siblings sharing a name prefix stay', async () => {
    writeTree(src, { 'keep.txt': 'k' }, T0);
    await put('data/gone.txt', 'g', T0);
    await put('data2/sibling.txt', 's', T0);
    await put('data-x', 's', T0);
    await put('data', 'an object named like the folder', T0);
    const r = await az(['sync', src, uri(), '--delete']);
    expect(r.code, r.stderr).toBe(0);
    expect(Object.keys(await remote()).sort()).toEqual(['data', 'data-x', 'data/keep.txt', 'data2/sibling.txt']);
  });

  it('a source naming one blob syncs that file, and --delete then deletes nothing', async () => {
    await put('data/one.txt', 'just me', T0);
    await put('data/one.txt.bak', 'a sibling', T0);
    fs.mkdirSync(dst);
    fs.writeFileSync(path.join(dst, 'keep.txt'), 'local');
    const r = await az(['sync', uri('data/one.txt'), dst, '--delete']);
    expect(r.code, r.stderr).toBe(0);
    expect(readTree(dst)).toEqual({ 'keep.txt': 'local', 'one.txt': 'just me' });
    expect(fs.statSync(path.join(dst, 'one.txt')).mtimeMs).toBe(T0 * 1000);
    // with a trailing '/' it is a folder (empty here): nothing to download
    const folder = await az(['sync', `${uri('data/one.txt')}/`, dst]);
    expect(folder.code, folder.stderr).toBe(0);
    expect(readTree(dst)).toEqual({ 'keep.txt': 'local', 'one.txt': 'just me' });
  });

  it('--plan changes nothing; --apply executes it; a plan gone stale leaves those blobs untouched, exit 1', async () => {
    writeTree(src, { 'a.txt': 'a', 'b.txt': 'b' }, T0);
    await put('data/old.txt', 'o', T0 - 100);
    await put('data/b.txt', 'old b', T0 - 100);
    const planFile = path.join(work, 'plan.jsonl');
    const p = await az(['sync', src, uri(), '--delete', '--plan', planFile]);
    expect(p.code, p.stderr).toBe(0);
    expect(Object.keys(await remote()).sort()).toEqual(['data/b.txt', 'data/old.txt']);
    const a = await az(['sync', '--apply', planFile], { cwd: '/' });
    expect(a.code, a.stderr).toBe(0);
    expect(Object.keys(await remote()).sort()).toEqual(['data/a.txt', 'data/b.txt']);
    expect(await getText('data/b.txt')).toBe('b');

    writeTree(src, { 'b.txt': 'b2!' }, T0 + 100);
    fs.rmSync(path.join(src, 'a.txt'));
    writeTree(src, { 'c.txt': 'c' }, T0);
    const plan2 = path.join(work, 'plan2.jsonl');
    expect((await az(['sync', src, uri(), '--delete', '--plan', plan2])).code).toBe(0);
    await put('data/a.txt', 'A changed', T0 + 500); // the blob to delete changed
    await put('data/b.txt', 'someone else', T0 + 600); // the blob to overwrite changed
    await put('data/c.txt', 'appeared', T0 + 700); // the blob to create appeared
    const stale = await az(['sync', '--apply', plan2]);
    expect(stale.code, stale.stderr).toBe(1);
    expect(stale.stderr).toMatch(/stale, left untouched: a\.txt/);
    expect(stale.stderr).toMatch(/stale, left untouched: b\.txt/);
    expect(stale.stderr).toMatch(/stale, left untouched: c\.txt/);
    expect(await getText('data/a.txt')).toBe('A changed');
    expect(await getText('data/b.txt')).toBe('someone else');
    expect(await getText('data/c.txt')).toBe('appeared');
  });

  it('syncs container to container, then has nothing to do; --delete prunes the destination', async () => {
    writeTree(src, { 'x/1.txt': 'one', 'y.txt': 'why' }, T0);
    expect((await az(['sync', src, uri('from')])).code).toBe(0);
    const other = await createTestContainer('e2e-dest');
    await put('to/stale.txt', 'stale', T0, other);
    const r = await az(['sync', uri('from'), uri('to', other), '--delete']);
    expect(r.code, r.stderr).toBe(0);
    const dest = await remote(other);
    expect(Object.keys(dest).sort()).toEqual(['to/x/1.txt', 'to/y.txt']);
    expect(dest['to/y.txt']!.mtime).toBe(T0 * 1000);
    expect((await az(['sync', uri('from'), uri('to', other), '--delete'])).stderr).toContain('Nothing to sync.');
  });

  it('set-up errors are one line with a hint, exit 2, and nothing is written', async () => {
    writeTree(src, { 'a.txt': 'a' }, T0);
    const oneLine = (stderr: string) => {
      expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(stderr.split('\n').filter((l) => l.startsWith('Error:')).length).toBe(1);
    };
    const badKey = await az(['sync', src, uri()], {
      env: { AZURE_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${randomBytes(64).toString('base64')};BlobEndpoint=${endpoint};` },
    });
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toMatch(/refused the credentials from AZURE_STORAGE_CONNECTION_STRING \(AuthorizationFailure|AuthenticationFailed/);
    oneLine(badKey.stderr);
    const none = await az(['sync', src, uri()], { env: { AZURE_STORAGE_CONNECTION_STRING: undefined } });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/No Azure Storage account/);
    expect(none.stderr).toMatch(/Hint: Set AZURE_STORAGE_CONNECTION_STRING/);
    oneLine(none.stderr);
    const unreachable = await az(['sync', src, uri()], { env: { AZURE_STORAGE_SERVICE_ENDPOINT: 'http://127.0.0.1:9/devstoreaccount1', AZURE_STORAGE_MAX_ATTEMPTS: '1' } });
    // the connection string's BlobEndpoint loses to the explicit endpoint variable
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toContain('Cannot reach Azure Storage at http://127.0.0.1:9/devstoreaccount1 (ECONNREFUSED)');
    const missing = await az(['sync', src, `az://no-such-${container}`.slice(0, 68)]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/Container 'no-such-.*' does not exist/);
    oneLine(missing.stderr);
    const badUri = await az(['sync', src, 'az://Bad_Name/x']);
    expect(badUri.code).toBe(2);
    expect(badUri.stderr).toMatch(/Invalid Azure URI: az:\/\/Bad_Name\/x\. 'Bad_Name' is not a valid container name/);
    expect(Object.keys(await remote())).toEqual([]);
    // --create-bucket creates the missing container; --dry-run with it creates nothing
    const name = `new-${container}`.slice(0, 63).replace(/-+$/, '');
    const dry = await az(['sync', src, `az://${name}/p`, '--create-bucket', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect((await client.request({ op: 'h', method: 'HEAD', container: name, query: { restype: 'container' } }).catch((e: { status: number }) => e.status))).toBe(404);
    const made = await az(['sync', src, `az://${name}/p`, '--create-bucket']);
    expect(made.code, made.stderr).toBe(0);
    expect(Object.keys(await remote(name))).toEqual(['p/a.txt']);
  });

  it('bucket commands on az:// through the CLI: create (exist-ok), ls (flat, -R, json), rm -R at the path boundary, cp up/down/across, delete, the container list', async () => {
    const name = `bk-${container}`.slice(0, 63).replace(/-+$/, '');
    const made = await az(['buckets', 'create', `az://${name}`]);
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    expect(made.stdout).toBe(`✓ Bucket created\n  uri: az://${name}\n  url: ${endpoint}/${name}\n`);
    const again = await az(['buckets', 'create', `az://${name}`]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
    expect(again.stderr).not.toMatch(/\n\s+at /);
    expect((await az(['buckets', 'create', `az://${name}`, '--exist-ok', '-q'])).stdout).toBe(`az://${name}\n`);
    expect((await az(['buckets', 'create', `az://${name}/sub`])).stderr).toContain('Cannot specify a prefix for container creation');

    for (const [n, t] of [['p/a.txt', 'a'], ['p/sub/b.txt', 'bb'], ['p2/x', 'x'], ['p.txt', 'pt'], ['keep.txt', 'k']] as const) await put(n, t, T0, name);
    const flat = await az(['ls', `az://${name}/p`, '-q']);
    expect(flat.code, flat.stderr).toBe(0);
    expect(flat.stdout).toBe('p/a.txt\np/sub/\n');
    const rec = await az(['ls', `az://${name}/p`, '-R', '-q']);
    expect(rec.stdout).toBe('p/a.txt\np/sub/b.txt\n');
    const json = JSON.parse((await az(['ls', `az://${name}/p`, '-R', '--format', 'json'])).stdout) as { type: string; path: string; size: number; mtime: string }[];
    expect(json.map((e) => [e.type, e.path, e.size])).toEqual([
      ['file', 'p/a.txt', 1],
      ['file', 'p/sub/b.txt', 2],
    ]);
    expect(Date.parse(json[0]!.mtime)).toBe(T0 * 1000);

    const rm = await az(['rm', '-R', `az://${name}/p`, '-y']);
    expect(rm.code, rm.stderr).toBe(0);
    expect(Object.keys(await remote(name)).sort()).toEqual(['keep.txt', 'p.txt', 'p2/x']);

    writeTree(work, { 'local/model.bin': 'weights' }, T0);
    const up = await az(['cp', path.join(work, 'local/model.bin'), `az://${name}/m/`]);
    expect(up.code, up.stderr).toBe(0);
    expect((await remote(name))['m/model.bin']).toEqual({ size: 7, mtime: T0 * 1000 });
    const out = path.join(work, 'out') + '/';
    const down = await az(['cp', `az://${name}/m/model.bin`, out]);
    expect(down.code, down.stderr).toBe(0);
    expect(fs.readFileSync(path.join(out, 'model.bin'), 'utf8')).toBe('weights');
    expect(fs.statSync(path.join(out, 'model.bin')).mtimeMs).toBe(T0 * 1000);
    const across = await az(['cp', `az://${name}/m/model.bin`, `az://${container}/copies/`]);
    expect(across.code, across.stderr).toBe(0);
    expect((await remote())['copies/model.bin']).toEqual({ size: 7, mtime: T0 * 1000 });
    expect(await getText('copies/model.bin')).toBe('weights');

    const info = await az(['buckets', 'info', `az://${name}`, '--json']);
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ id: `az://${name}`, size: 11, total_files: 4 }); // keep.txt, p.txt, p2/x, m/model.bin

    const containers = await az(['ls', 'az://', '-q']);
    expect(containers.code, containers.stderr).toBe(0);
    expect(containers.stdout.split('\n')).toContain(`az://${name}`);
    const refused = await az(['buckets', 'delete', `az://${name}`]);
    expect(refused.code).toBe(2);
    const del = await az(['buckets', 'delete', `az://${name}`, '-y']);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toBe(`✓ Bucket deleted\n  bucket_id: az://${name}\n`);
    expect((await az(['ls', 'az://', '-q'])).stdout.split('\n')).not.toContain(`az://${name}`);
    const gone = await az(['buckets', 'delete', `az://${name}`, '-y']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/does not exist/);
    expect((await az(['buckets', 'delete', `az://${name}`, '-y', '--missing-ok'])).code).toBe(0);
  });

  it('a hostile location is refused identically by sync, ls, rm and cp: one line, exit 2, nothing sent', async () => {
    writeTree(src, { 'a.txt': 'a' }, T0);
    await put('b/keep.txt', 'k', T0);
    for (const bad of [`az://${container}/a/../b`, `az://${container}/a//b`, `az://${container}/./b`]) {
      const runs = [await az(['sync', src, bad]), await az(['ls', bad]), await az(['ls', bad, '-R']), await az(['rm', '-R', bad, '-y']), await az(['cp', path.join(src, 'a.txt'), bad])];
      for (const r of runs) {
        expect(r.code, r.stderr).toBe(2);
        expect(r.stdout).toBe('');
        expect(r.stderr.split('\n').filter((l) => l.startsWith('Error:'))).toEqual([runs[0]!.stderr.split('\n')[0]]);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
      expect(runs[0]!.stderr).toMatch(/^Error: Invalid Azure URI: az:\/\/.*(segments)/);
    }
    expect(Object.keys(await remote())).toEqual(['b/keep.txt']);
    // overlapping sides in one container (the registry's where(): endpoint, container, prefix) are refused too
    const overlap = await az(['sync', uri('b'), uri('b/sub'), '--delete']);
    expect(overlap.code, overlap.stderr).toBe(2);
    expect(overlap.stderr.split('\n').filter((l) => l.startsWith('Error:')).length).toBe(1);
    expect(Object.keys(await remote())).toEqual(['b/keep.txt']);
  });

  it('--azure-endpoint is the Azure endpoint; S3\'s --endpoint-url does not reach an az:// side', async () => {
    writeTree(src, { 'a.txt': 'a' }, T0);
    const flag = await az(['sync', src, uri(), '--azure-endpoint', 'http://127.0.0.1:9/devstoreaccount1'], { env: { AZURE_STORAGE_MAX_ATTEMPTS: '1' } });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('Cannot reach Azure Storage at http://127.0.0.1:9/devstoreaccount1 (ECONNREFUSED)');
    const s3flag = await az(['sync', src, uri(), '--endpoint-url', 'http://127.0.0.1:9/']);
    expect(s3flag.code, s3flag.stderr).toBe(0);
    expect(Object.keys(await remote())).toEqual(['data/a.txt']);
  });
});
