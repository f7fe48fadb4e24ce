/**
 * The Azure store's quirks, against Azurite (the contract suite, test/contract/azure.test.ts,
 * proves the rest): credential forms (connection strings, account + key, SAS), listing order and
 * hostile blob names, staged-block resume, Content-MD5-verified downloads, and mtimes that
 * interoperate with the real rclone's azureblob backend in both directions.
 */
import { spawnSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { compareCodePoints } from '../../src/manifest/order.js';
import { DEV_ACCOUNT, DEV_KEY, resolveAzureConfig } from '../../src/stores/azure/credentials.js';
import { openAzureStore, parseAzureUri, type AzureStore, type AzureStoreOptions } from '../../src/stores/azure/index.js';
import { formatAzureMtime, parseAzureMtime } from '../../src/stores/azure/mtime.js';
import type { TransferSource } from '../../src/stores/store.js';
import type { FileEntry } from '../../src/types.js';
import { cli, tempDir } from '../support/cli.js';
import { azureTestClient, azureTestEnv, azuriteEndpoint, createTestContainer, putEncodedBlob } from '../support/azure-env.js';

const endpoint = azuriteEndpoint();
const hasRclone = spawnSync('rclone', ['version'], { stdio: 'ignore' }).status === 0;
const work = tempDir('bucketsync-azure-store-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const open = (uri: string, env: NodeJS.ProcessEnv, o: AzureStoreOptions = {}) => openAzureStore(parseAzureUri(uri), { env, onWarning: () => {}, ...o });
const keyEnv = (): NodeJS.ProcessEnv => azureTestEnv(endpoint!);

async function listAll(s: AzureStore, warnings: string[] = []): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  for await (const b of s.list({ onWarning: (m) => warnings.push(m) })) out.push(...b);
  return out;
}

async function readAll(s: AzureStore, p: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await s.read(p)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A source of `buf`; `failAtBlock`: a ranged read starting at or after that offset fails (the connection died). */
function source(buf: Buffer, mtimeMs: number, failFrom?: number): TransferSource {
  return {
    size: buf.length,
    mtimeMs,
    open: async (range) => {
      if (failFrom !== undefined && (range?.start ?? 0) >= failFrom) throw new Error('the source went away');
      if (failFrom !== undefined && !range) {
        // one stream of the whole: its first `failFrom` bytes, then it fails
        return Readable.from(
          (function* () {
            yield buf.subarray(0, failFrom);
            throw new Error('the source went away');
          })(),
        );
      }
      return Readable.from([range ? buf.subarray(range.start, range.end + 1) : buf]);
    },
  };
}

/** An account SAS (version 2021-12-02) for the emulator's account, signed with its key. */
function accountSas(permissions: string, key = DEV_KEY): string {
  const se = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const sv = '2021-12-02';
  const sts = [DEV_ACCOUNT, permissions, 'b', 'sco', '', se, '', 'http,https', sv, '', ''].join('\n');
  const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(sts, 'utf8').digest('base64');
  return new URLSearchParams({ sv, ss: 'b', srt: 'sco', sp: permissions, se, spr: 'http,https', sig }).toString();
}

describe('azure credentials (pure)', () => {
  it('reads every connection-string form and the separate variables, and refuses bad ones with one line', () => {
    const dev = resolveAzureConfig({ AZURE_STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true' });
    expect([dev.account, dev.endpoint.href]).toEqual([DEV_ACCOUNT, 'http://127.0.0.1:10000/devstoreaccount1']);
    const proxy = resolveAzureConfig({ AZURE_STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://127.0.0.1:4444' });
    expect(proxy.endpoint.href).toBe('http://127.0.0.1:4444/devstoreaccount1');
    const prod = resolveAzureConfig({ AZURE_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=${DEV_KEY};EndpointSuffix=core.chinacloudapi.cn` });
    expect([prod.account, prod.endpoint.href, prod.auth.kind]).toEqual(['acct1', 'https://acct1.blob.core.chinacloudapi.cn/', 'key']);
    const sas = resolveAzureConfig({ AZURE_STORAGE_CONNECTION_STRING: 'BlobEndpoint=https://acct2.blob.core.windows.net;SharedAccessSignature=sv=1&sig=x' });
    expect([sas.account, sas.auth]).toEqual(['acct2', { kind: 'sas', token: 'sv=1&sig=x' }]);
    const sep = resolveAzureConfig({ AZURE_STORAGE_ACCOUNT: 'acct3', AZURE_STORAGE_KEY: DEV_KEY, AZURE_STORAGE_SERVICE_ENDPOINT: 'http://127.0.0.1:9/acct3' });
    expect([sep.account, sep.endpoint.href]).toEqual(['acct3', 'http://127.0.0.1:9/acct3']);
    const adlfs = resolveAzureConfig({ AZURE_STORAGE_ACCOUNT_NAME: 'acct4', AZURE_STORAGE_SAS_TOKEN: '?sv=1&sig=y' });
    expect([adlfs.endpoint.href, adlfs.auth]).toEqual(['https://acct4.blob.core.windows.net/', { kind: 'sas', token: 'sv=1&sig=y' }]);
    // the --endpoint option beats the variables and the connection string's endpoint
    expect(resolveAzureConfig({ AZURE_STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true' }, { endpoint: 'http://127.0.0.1:5/devstoreaccount1' }).endpoint.port).toBe('5');
    const bad: [NodeJS.ProcessEnv, RegExp][] = [
      [{}, /No Azure Storage account/],
      [{ AZURE_STORAGE_ACCOUNT: 'a1' }, /has no credentials/],
      [{ AZURE_STORAGE_ACCOUNT: 'a1', AZURE_STORAGE_KEY: 'not base64!' }, /not a base64 account key/],
      [{ AZURE_STORAGE_CONNECTION_STRING: 'garbage' }, /not a connection string/],
      [{ AZURE_STORAGE_CONNECTION_STRING: 'AccountKey=abcd' }, /neither AccountName nor BlobEndpoint/],
      [{ AZURE_STORAGE_CONNECTION_STRING: 'BlobEndpoint=ftp://x/y;AccountName=a' }, /http:\/\/ or https:\/\//],
      [{ AZURE_STORAGE_ACCOUNT: 'a1', AZURE_STORAGE_KEY: DEV_KEY, AZURE_STORAGE_SERVICE_ENDPOINT: 'http://h/a?sig=1' }, /must not hold a query/],
    ];
    for (const [env, re] of bad) expect(() => resolveAzureConfig(env)).toThrow(re);
  });

  it('parses az:// and abfs:// and refuses bad container names and paths', () => {
    expect(parseAzureUri('az://data/a/b/')).toMatchObject({ container: 'data', prefix: 'a/b', trailingSlash: true });
    expect(parseAzureUri('abfs://data')).toMatchObject({ container: 'data', prefix: '' });
    for (const bad of ['az://', 'az://Data/x', 'az://a/x', 'az://da--ta/x', 'az://data/a/../b', 'az://data//x', 'az://c@acct.dfs.core.windows.net/x', 'az://-data/x']) {
      expect(() => parseAzureUri(bad), bad).toThrow(/Invalid Azure URI/);
    }
  });

  it('writes rclone azureblob mtimes (nine digits, UTC) and reads any RFC 3339 form', () => {
    expect(formatAzureMtime(1_600_000_000_123.456)).toBe('2020-09-13T12:26:40.123456000Z');
    expect(formatAzureMtime(-1500.5)).toBe('1969-12-31T23:59:58.499500000Z');
    expect(parseAzureMtime('2020-09-13T12:26:40.123456000Z')).toBe(1_600_000_000_123.456);
    expect(parseAzureMtime('2020-09-13T14:26:40.5+02:00')).toBe(1_600_000_000_500);
    expect(parseAzureMtime('1969-12-31T23:59:58.4995Z')).toBe(-1500.5);
    for (const bad of ['', 'yesterday', '2020-13-01T00:00:00Z', '2020-02-30T00:00:00Z', '1600000000.5', '0099-01-01T00:00:00Z']) expect(parseAzureMtime(bad), bad).toBeUndefined();
  });
});

describe.skipIf(!endpoint)('azure store against Azurite', () => {
  it('authenticates with account + key, with a SAS (variable and connection string), and refuses a bad key or SAS as a set-up error', async () => {
    const c = await createTestContainer('creds');
    const variants: NodeJS.ProcessEnv[] = [
      { AZURE_STORAGE_ACCOUNT: DEV_ACCOUNT, AZURE_STORAGE_KEY: DEV_KEY, AZURE_STORAGE_SERVICE_ENDPOINT: endpoint },
      { AZURE_STORAGE_ACCOUNT: DEV_ACCOUNT, AZURE_STORAGE_SAS_TOKEN: `?${accountSas('rwdlac')}`, AZURE_STORAGE_SERVICE_ENDPOINT: endpoint },
      { AZURE_STORAGE_CONNECTION_STRING: `BlobEndpoint=${endpoint};SharedAccessSignature=${accountSas('rwdlac')}` },
      { AZURE_STORAGE_CONNECTION_STRING: `UseDevelopmentStorage=true;DevelopmentStorageProxyUri=${new URL(endpoint!).origin}` },
    ];
    for (const [i, env] of variants.entries()) {
      const s = await open(`az://${c}/v${i}`, env);
      try {
        await s.write('f.txt', source(Buffer.from(`v${i}`), 1e12), { mtimeMs: 1e12, expect: { kind: 'absent' } });
        expect((await readAll(s, 'f.txt')).toString()).toBe(`v${i}`);
        expect((await listAll(s)).map((e) => e.path)).toEqual(['f.txt']);
      } finally {
        await s.close();
      }
    }
    const wrongKey = randomBytes(64).toString('base64');
    for (const env of [
      { AZURE_STORAGE_ACCOUNT: DEV_ACCOUNT, AZURE_STORAGE_KEY: wrongKey, AZURE_STORAGE_SERVICE_ENDPOINT: endpoint },
      { AZURE_STORAGE_ACCOUNT: DEV_ACCOUNT, AZURE_STORAGE_SAS_TOKEN: accountSas('rl', wrongKey), AZURE_STORAGE_SERVICE_ENDPOINT: endpoint },
    ]) {
      await expect(open(`az://${c}/x`, env)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/refused the credentials/) });
    }
    // a read-only SAS lists and reads, but a write fails (and nothing appears)
    const ro = await open(`az://${c}/v0`, { AZURE_STORAGE_ACCOUNT: DEV_ACCOUNT, AZURE_STORAGE_SAS_TOKEN: accountSas('rl'), AZURE_STORAGE_SERVICE_ENDPOINT: endpoint });
    try {
      expect((await listAll(ro)).map((e) => e.path)).toEqual(['f.txt']);
      await expect(ro.write('g.txt', source(Buffer.from('no'), 1e12), { mtimeMs: 1e12, expect: { kind: 'any' } })).rejects.toMatchObject({
        exitCode: 2,
        message: expect.stringMatching(/refused the credentials.*AuthorizationPermissionMismatch/),
      });
      expect(await ro.stat('g.txt')).toBeUndefined();
    } finally {
      await ro.close();
    }
  });

  it('lists in code-point order across pages although Azurite sorts by UTF-16 unit, with a skip marker and a warning per hostile name', async () => {
    const c = await createTestContainer('order');
    const client = azureTestClient();
    // Raw and fully encoded: the client refuses the names Azure would resolve (`a/../b`, `ok/./c`).
    const put = async (name: string) => expect(await putEncodedBlob(c, name, name), name).toBe(201);
    const good = ['\u{1F600}.txt', '\u{1F600}/a', '\uE000', '\uFFFD.txt', '\uFFFC', 'z', 'a', 'A', 'é', 'e\u0301', '\u{10FFFF}', '\u{1F600}\uE000', '\u{1F600}\u{1F601}', 'x.bucketsync-tmp-lookalike'];
    const hostile = ['a/../b', 'a//b', 'ok/./c', 'trail/', '.bucketsync-tmp-0123abcd-1234-89abcdef-x', 'p/.bucketsync-tmp-0123abcd-1-89abcdef-y'];
    try {
      for (const n of [...good, ...hostile]) await put(`root/${n}`);
      await put('root-sibling');
      await put('rootfile');
      for (const pageSize of [1, 2, 3, 5000]) {
        const s = await open(`az://${c}/root`, keyEnv(), { listPageSize: pageSize });
        try {
          const warnings: string[] = [];
          const listed = await listAll(s, warnings);
          const paths = listed.map((e) => e.path);
          for (let i = 1; i < paths.length; i++) expect(compareCodePoints(paths[i - 1]!, paths[i]!), `${paths[i - 1]} < ${paths[i]} (page ${pageSize})`).toBeLessThan(0);
          expect(listed.filter((e) => !e.skipped).map((e) => e.path)).toEqual([...good].sort(compareCodePoints));
          const skipped = listed.filter((e) => e.skipped).map((e) => e.path);
          expect(skipped.length).toBe(hostile.length); // 'trail/' has content: not a folder marker
          expect(warnings.length).toBe(skipped.length);
        } finally {
          await s.close();
        }
      }
    } finally {
      client.destroy();
    }
  });

  it('stages big files as blocks: an interrupted upload leaves nothing visible and the next attempt sends only the missing blocks', async () => {
    const c = await createTestContainer('blocks');
    const opts = { blockThreshold: 1024 * 1024, blockSize: 256 * 1024, blockConcurrency: 2 };
    const s = await open(`az://${c}/big`, keyEnv(), opts);
    try {
      const data = randomBytes(2 * 1024 * 1024 + 12345); // 9 blocks
      const failAt = 5 * 256 * 1024;
      await expect(s.write('f.bin', source(data, 1e12, failAt), { mtimeMs: 1e12, expect: { kind: 'absent' } })).rejects.toThrow(/went away/);
      expect(await s.stat('f.bin')).toBeUndefined();
      expect(await listAll(s)).toEqual([]);
      const before = s.client.counts.PutBlock ?? 0;
      let resumed = 0;
      await s.write('f.bin', source(data, 1e12), { mtimeMs: 1e12, expect: { kind: 'absent' }, onResumed: (b) => (resumed = b) });
      expect(resumed).toBe(5 * 256 * 1024);
      expect((s.client.counts.PutBlock ?? 0) - before).toBe(4);
      const back = await readAll(s, 'f.bin');
      expect(back.equals(data)).toBe(true);
      const st = (await s.stat('f.bin'))!;
      expect([st.size, st.mtimeMs]).toEqual([data.length, 1e12]);
      // the blob carries the whole content's MD5 (rclone and our reads verify it)
      const head = await s.client.request({ op: 'h', method: 'HEAD', container: c, blob: 'big/f.bin' });
      expect(head.headers['content-md5']).toBe(createHash('md5').update(data).digest('base64'));

      // same size and mtime, other bytes: staged blocks of the old content are not taken for the new
      const other = randomBytes(data.length);
      await expect(s.write('g.bin', source(data, 1e12, failAt), { mtimeMs: 1e12, expect: { kind: 'absent' } })).rejects.toThrow();
      await s.write('g.bin', source(other, 1e12), { mtimeMs: 1e12, expect: { kind: 'absent' } });
      expect((await readAll(s, 'g.bin')).equals(other)).toBe(true);

      // a stale commit is refused: the blob changed between plan and Put Block List
      await expect(s.write('f.bin', source(other, 2e12), { mtimeMs: 2e12, expect: { kind: 'version', size: data.length, mtimeMs: 1e12, etag: '"0xDEAD"' } })).rejects.toMatchObject({ name: 'StaleError' });
      expect((await readAll(s, 'f.bin')).equals(data)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('verifies a whole download against the Content-MD5: a blob whose bytes do not match fails the read and the CLI leaves no file', async () => {
    const c = await createTestContainer('md5');
    const s = await open(`az://${c}/d`, keyEnv());
    try {
      await s.write('f.txt', source(Buffer.from('the real bytes'), 1e12), { mtimeMs: 1e12, expect: { kind: 'absent' } });
      // Set Blob Properties: a Content-MD5 that is not the content's (a corrupted store, or bytes changed in transit)
      await s.client.request({ op: 'SetBlobProperties', method: 'PUT', container: c, blob: 'd/f.txt', query: { comp: 'properties' }, headers: { 'x-ms-blob-content-md5': createHash('md5').update('other').digest('base64') } });
      await expect(readAll(s, 'f.txt')).rejects.toThrow(/differs from the blob's Content-MD5/);
    } finally {
      await s.close();
    }
    const dest = path.join(work, 'md5-dest');
    const r = await cli(['sync', `az://${c}/d`, dest], { env: azureTestEnv(endpoint!) });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/Content-MD5/);
    expect(fs.existsSync(path.join(dest, 'f.txt'))).toBe(false);
  });

  describe.skipIf(!hasRclone)('interoperates with rclone azureblob', () => {
    const remote = (c: string, p: string) => `:azureblob,use_emulator=true,endpoint='${endpoint}':${c}/${p}`;
    const rclone = (...args: string[]) => {
      const env = { ...process.env };
      delete env.AWS_CA_BUNDLE;
      const r = spawnSync('rclone', ['--config', '/dev/null', ...args], { env, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`rclone ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };

    it('reads the mtimes rclone wrote, to the microsecond, and finds the tree in sync', async () => {
      const c = await createTestContainer('rclone-up');
      const dir = path.join(work, 'rclone-src');
      fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
      const times = ['2001-02-03T04:05:06.123456789Z', '1960-01-01T00:00:00.5Z', '2030-12-31T23:59:59.000001Z'];
      for (const [i, t] of times.entries()) {
        const f = path.join(dir, i === 0 ? 'sub/a.txt' : `f${i}.txt`);
        fs.writeFileSync(f, `file ${i}`);
        spawnSync('touch', ['-d', t, f]);
      }
      rclone('copy', dir, remote(c, 'tree'));
      const s = await open(`az://${c}/tree`, keyEnv());
      try {
        const listed = await listAll(s);
        for (const e of listed) {
          const local = fs.statSync(path.join(dir, e.path), { bigint: true });
          expect(Math.abs(e.mtimeMs - Number(local.mtimeNs) / 1e6), e.path).toBeLessThan(0.001);
        }
        expect(listed.length).toBe(3);
      } finally {
        await s.close();
      }
      const r = await cli(['sync', '--dry-run', dir, `az://${c}/tree`], { env: azureTestEnv(endpoint!) });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).not.toMatch(/"action": "upload"/);
    });

    it('writes mtimes rclone reads as its own: rclone lsjson shows them and rclone sync has nothing to do', async () => {
      const c = await createTestContainer('rclone-down');
      const dir = path.join(work, 'ours-src');
      fs.mkdirSync(path.join(dir, 'd'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'd/x.txt'), 'x');
      fs.writeFileSync(path.join(dir, 'y.txt'), 'yy');
      // microseconds: what a float-millisecond mtime carries exactly (see below for nanoseconds)
      spawnSync('touch', ['-d', '2011-11-11T11:11:11.987654Z', path.join(dir, 'd/x.txt')]);
      spawnSync('touch', ['-d', '1950-05-05T05:05:05Z', path.join(dir, 'y.txt')]);
      const up = await cli(['sync', dir, `az://${c}/t`], { env: azureTestEnv(endpoint!) });
      expect(up.code, up.stderr).toBe(0);
      const ls = JSON.parse(rclone('lsjson', '-R', '--files-only', remote(c, 't'))) as { Path: string; ModTime: string; Size: number }[];
      for (const e of ls) {
        const local = fs.statSync(path.join(dir, e.Path), { bigint: true });
        expect(Math.abs(parseAzureMtime(e.ModTime)! - Number(local.mtimeNs) / 1e6), e.Path).toBeLessThan(0.001);
      }
      expect(ls.map((e) => e.Path).sort()).toEqual(['d/x.txt', 'y.txt']);
      const check = spawnSync('rclone', ['--config', '/dev/null', 'sync', '--dry-run', '-v', dir, remote(c, 't')], { env: { ...process.env, AWS_CA_BUNDLE: undefined } as NodeJS.ProcessEnv, encoding: 'utf8' });
      expect(check.status, check.stderr).toBe(0);
      expect(check.stderr).not.toMatch(/Skipped (copy|update)|Not copying|Modification times differ/);
      expect(check.stderr).toMatch(/There was nothing to transfer/);
      // nanosecond digits beyond the microsecond: kept to the microsecond (our mtimes are float
      // milliseconds), so rclone, whose azureblob precision is 1 ns, would fix the mtime, not the content
      spawnSync('touch', ['-d', '2011-11-11T11:11:11.987654321Z', path.join(dir, 'y.txt')]);
      expect((await cli(['sync', dir, `az://${c}/t`], { env: azureTestEnv(endpoint!) })).code).toBe(0);
      const ns = spawnSync('rclone', ['--config', '/dev/null', 'sync', '--dry-run', '-v', dir, remote(c, 't')], { env: { ...process.env, AWS_CA_BUNDLE: undefined } as NodeJS.ProcessEnv, encoding: 'utf8' });
      expect(ns.stderr).toMatch(/There was nothing to transfer/);
      const win = spawnSync('rclone', ['--config', '/dev/null', 'sync', '--dry-run', '-v', '--modify-window', '1us', dir, remote(c, 't')], { env: { ...process.env, AWS_CA_BUNDLE: undefined } as NodeJS.ProcessEnv, encoding: 'utf8' });
      expect(win.stderr).not.toMatch(/Skipped (copy|update)/);
      // rclone's own md5 check agrees with the Content-MD5 we stored
      const md5 = spawnSync('rclone', ['--config', '/dev/null', 'check', dir, remote(c, 't')], { env: { ...process.env, AWS_CA_BUNDLE: undefined } as NodeJS.ProcessEnv, encoding: 'utf8' });
      expect(md5.status, md5.stderr).toBe(0);
    });
  });
});
