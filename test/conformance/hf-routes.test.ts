/**
 * The test Hub/Xet server answers as huggingface_hub 2.0 / hf_xet 1.6 expect (docs/hf.md lists
 * each route with its source). Raw HTTP, no client: each case here failed on the server before
 * issue 15 (footer-less shards, /v2/shards, 409 `url`, files-only listings, settings, access).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { SHARD_MAGIC } from '../hf-server/xet-format.js';
import { commitIterBucket } from '@huggingface/hub';

const TOKEN = 'hf_test_token';
const auth = { Authorization: `Bearer ${TOKEN}` };
let server: HfTestServer;

beforeAll(async () => {
  server = await startHfServer({
    pageSize: 2,
    tokens: { [TOKEN]: { user: 'tester' }, hf_outsider: { user: 'outsider', orgs: [] } },
  });
});
afterAll(async () => {
  await server?.close();
});

async function casToken(bucket: string): Promise<{ accessToken: string; casUrl: string }> {
  const r = await fetch(`${server.url}/api/buckets/${bucket}/xet-write-token`, { headers: auth });
  expect(r.status).toBe(200);
  return (await r.json()) as { accessToken: string; casUrl: string };
}

/** A footer-less shard: header with footer_size 0, then `sections` (already bookended by the caller). */
function footerless(...sections: Buffer[]): Uint8Array<ArrayBuffer> {
  const header = Buffer.alloc(48);
  header.set(SHARD_MAGIC, 0);
  header.writeBigUInt64LE(2n, 32);
  header.writeBigUInt64LE(0n, 40);
  return new Uint8Array(Buffer.concat([header, ...sections]));
}
const bookend = () => Buffer.alloc(48, 0).fill(0xff, 0, 32);

describe('CAS shard uploads as hf_xet sends them', () => {
  it('accepts an empty footer-less shard on /v1/shards and /v2/shards (NDJSON frames ending in result)', async () => {
    server.createBucket('tester/shards');
    const { accessToken, casUrl } = await casToken('tester/shards');
    const shard = footerless(bookend(), bookend());
    const v1 = await fetch(`${casUrl}/v1/shards`, { method: 'POST', headers: { Authorization: `Bearer ${accessToken}` }, body: shard });
    expect(v1.status).toBe(200);
    expect(await v1.json()).toEqual({ result: 1 });
    const v2 = await fetch(`${casUrl}/v2/shards`, { method: 'POST', headers: { Authorization: `Bearer ${accessToken}` }, body: shard });
    expect(v2.status).toBe(200);
    expect(v2.headers.get('content-type')).toBe('application/x-ndjson');
    const frames = (await v2.text()).trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    expect(frames.map((f) => f.type)).toEqual(['validating', 'validating', 'committing', 'committing', 'result']);
    expect(server.stats.footerlessShards).toBe(2);
    expect(server.stats.shardUploads).toEqual({ v1: 1, v2: 1 });
  });

  it('rejects hostile shards: v1 with a 400, v2 with a terminal error frame (retryable false); nothing registered', async () => {
    const { accessToken, casUrl } = await casToken('tester/shards');
    const h = { Authorization: `Bearer ${accessToken}` };
    const fileEntry = Buffer.alloc(48);
    fileEntry.fill(7, 0, 32);
    fileEntry.writeUInt32LE(0xffffffff, 36); // 4 billion terms: must not allocate or read past the body
    const hostile: [string, Uint8Array<ArrayBuffer>][] = [
      ['truncated before the file-info bookend', footerless(Buffer.alloc(20))],
      ['no CAS-info section', footerless(bookend())],
      ['term count beyond the body', footerless(fileEntry, bookend(), bookend())],
      ['bad magic', new Uint8Array(96)],
      ['footer size neither 0 nor 200', (() => { const b = footerless(bookend(), bookend()); new DataView(b.buffer).setBigUint64(40, 77n, true); return b; })()],
    ];
    for (const [name, body] of hostile) {
      const v1 = await fetch(`${casUrl}/v1/shards`, { method: 'POST', headers: h, body });
      expect(v1.status, name).toBe(400);
      expect(((await v1.json()) as { error: string }).error, name).toMatch(/^Invalid shard: /);
      const v2 = await fetch(`${casUrl}/v2/shards`, { method: 'POST', headers: h, body });
      expect(v2.status, name).toBe(200);
      const frames = (await v2.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(frames.at(-1), name).toMatchObject({ type: 'error', retryable: false });
      expect(frames.some((f) => f.type === 'result'), name).toBe(false);
    }
    const anon = await fetch(`${casUrl}/v2/shards`, { method: 'POST', body: footerless(bookend(), bookend()) });
    expect(anon.status).toBe(401);
  });
});

describe('Hub routes as huggingface_hub 2.0 reads them', () => {
  it('409 on an existing bucket carries `url` (hf create_bucket exist_ok reads it)', async () => {
    server.createBucket('tester/dup');
    const r = await fetch(`${server.url}/api/buckets/tester/dup`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: '{}' });
    expect(r.status).toBe(409);
    expect(await r.json()).toEqual({ error: 'You already created this bucket', url: `${server.url}/buckets/tester/dup` });
    const bad = await fetch(`${server.url}/api/buckets/tester/newb`, { method: 'POST', headers: auth, body: '{"private": "yes"}' });
    expect(bad.status).toBe(400);
    const notJson = await fetch(`${server.url}/api/buckets/tester/newb`, { method: 'POST', headers: auth, body: '{' });
    expect(notJson.status).toBe(400);
    expect(server.buckets.has('tester/newb')).toBe(false);
  });

  it('recursive tree and paths-info are files only; the non-recursive tree has directory rows; Link pagination', async () => {
    server.createBucket('tester/tree');
    for await (const _ of commitIterBucket({
      repo: { type: 'bucket', name: 'tester/tree' },
      accessToken: TOKEN,
      hubUrl: server.url,
      title: 'seed',
      operations: ['a.txt', 'd/b.txt', 'd/e/c.txt', 'z.txt'].map((p) => ({ operation: 'addOrUpdate' as const, path: p, content: new Blob([p]) })),
    })) void _;
    const all = async (first: string) => {
      const rows: { type: string; path: string }[] = [];
      let next: string | undefined = first;
      let pages = 0;
      while (next) {
        const r: Response = await fetch(next, { headers: auth });
        expect(r.status).toBe(200);
        rows.push(...((await r.json()) as { type: string; path: string }[]));
        next = /<([^>]+)>;\s*rel="next"/.exec(r.headers.get('link') ?? '')?.[1];
        pages++;
      }
      return { rows, pages };
    };
    const rec = await all(`${server.url}/api/buckets/tester/tree/tree?recursive=true`);
    expect(rec.rows.map((r) => `${r.type}:${r.path}`)).toEqual(['file:a.txt', 'file:d/b.txt', 'file:d/e/c.txt', 'file:z.txt']);
    expect(rec.pages).toBe(2);
    const noParam = await all(`${server.url}/api/buckets/tester/tree/tree/d`);
    expect(noParam.rows.map((r) => r.path)).toEqual(['d/b.txt', 'd/e/c.txt']);
    const flat = await all(`${server.url}/api/buckets/tester/tree/tree?recursive=false`);
    expect(flat.rows.map((r) => `${r.type}:${r.path}`)).toEqual(['file:a.txt', 'directory:d', 'file:z.txt']);
    const pi = await fetch(`${server.url}/api/buckets/tester/tree/paths-info`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ paths: ['d', 'd/e', 'a.txt', 'missing', 'd/e/c.txt'] }),
    });
    expect(((await pi.json()) as { path: string; type: string }[]).map((r) => `${r.type}:${r.path}`)).toEqual(['file:a.txt', 'file:d/e/c.txt']);
  });

  it('reconstructions: v2 and v1 each in their own shape; ranges past the end are 416, ends are clamped', async () => {
    const f = server.listBucket('tester/tree').find((x) => x.path === 'd/e/c.txt')!;
    const tok = (await (await fetch(`${server.url}/api/buckets/tester/tree/xet-read-token`)).json()) as { accessToken: string; casUrl: string };
    const get = (v: number, range?: string) =>
      fetch(`${tok.casUrl}/v${v}/reconstructions/${f.xetHash}`, { headers: { Authorization: `Bearer ${tok.accessToken}`, ...(range ? { Range: range } : {}) } });
    // hf_xet asks for 256 MB segments in parallel: bytes=0-255999999 (clamped), then later ones (416).
    const v2 = await get(2, 'bytes=0-255999999');
    expect(v2.status).toBe(200);
    const b2 = (await v2.json()) as Record<string, unknown>;
    expect(Object.keys(b2).sort()).toEqual(['offset_into_first_range', 'terms', 'xorbs']);
    const v1 = (await (await get(1)).json()) as { fetch_info: Record<string, { range: unknown; url: string; url_range: unknown }[]> };
    expect(Object.keys(v1).sort()).toEqual(['fetch_info', 'offset_into_first_range', 'terms']);
    const [info] = Object.values(v1.fetch_info)[0]!;
    expect(info).toMatchObject({ range: { start: 0 }, url_range: { start: expect.any(Number), end: expect.any(Number) } });
    const data = await fetch(info!.url, { headers: { Range: `bytes=${(info!.url_range as { start: number }).start}-${(info!.url_range as { end: number }).end}` } });
    expect(data.status).toBe(206);
    expect((await get(2, 'bytes=256000000-767999999')).status).toBe(416);
  });

  it('PUT /api/buckets/{id}/settings flips visibility; bad bodies are 400; read-only or foreign tokens cannot', async () => {
    server.createBucket('tester/vis');
    const put = (body: string, headers: Record<string, string> = auth) =>
      fetch(`${server.url}/api/buckets/tester/vis/settings`, { method: 'PUT', headers: { ...headers, 'Content-Type': 'application/json' }, body });
    expect((await put('{"private": true}')).status).toBe(200);
    expect(server.buckets.get('tester/vis')!.private).toBe(true);
    expect((await put('{"private": false}')).status).toBe(200);
    expect(server.buckets.get('tester/vis')!.private).toBe(false);
    for (const bad of ['{}', '{"private": 1}', 'null', '[', '']) expect((await put(bad)).status, bad).toBe(400);
    expect((await put('{"private": true}', {})).status).toBe(401);
    expect((await put('{"private": true}', { Authorization: 'Bearer hf_outsider' })).status).toBe(403);
    expect(server.buckets.get('tester/vis')!.private).toBe(false);
  });

  it('anonymous callers read public buckets; private ones are 401 to them and 404 to outsiders; bad tokens are 401', async () => {
    server.createBucket('tester/pub');
    server.createBucket('tester/priv', { private: true });
    expect((await fetch(`${server.url}/api/buckets/tester/pub`)).status).toBe(200);
    expect((await fetch(`${server.url}/api/buckets/tester/pub/tree?recursive=true`)).status).toBe(200);
    const anonPriv = await fetch(`${server.url}/api/buckets/tester/priv/tree?recursive=true`);
    expect(anonPriv.status).toBe(401);
    expect(anonPriv.headers.get('x-error-code')).toBe('RepoNotFound');
    const outsider = await fetch(`${server.url}/api/buckets/tester/priv`, { headers: { Authorization: 'Bearer hf_outsider' } });
    expect(outsider.status).toBe(404);
    expect(outsider.headers.get('x-error-code')).toBe('RepoNotFound');
    const listed = await fetch(`${server.url}/api/buckets/tester`, { headers: { Authorization: 'Bearer hf_outsider' } });
    const ids: string[] = [];
    let next: string | undefined;
    let r = listed;
    for (;;) {
      ids.push(...((await r.json()) as { id: string }[]).map((b) => b.id));
      next = /<([^>]+)>;\s*rel="next"/.exec(r.headers.get('link') ?? '')?.[1];
      if (!next) break;
      r = await fetch(next, { headers: { Authorization: 'Bearer hf_outsider' } });
    }
    expect(ids).toContain('tester/pub');
    expect(ids).not.toContain('tester/priv');
    const bad = await fetch(`${server.url}/api/buckets/tester/pub`, { headers: { Authorization: 'Bearer hf_nope' } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('x-error-message')).toBe('Invalid credentials in Authorization header');
    expect((await fetch(`${server.url}/api/buckets/me`)).status).toBe(401);
    const anonWrite = await fetch(`${server.url}/api/buckets/tester/pub`, { method: 'DELETE' });
    expect(anonWrite.status).toBe(401);
    const foreignWrite = await fetch(`${server.url}/api/buckets/tester/pub`, { method: 'DELETE', headers: { Authorization: 'Bearer hf_outsider' } });
    expect(foreignWrite.status).toBe(403);
    expect(server.buckets.has('tester/pub')).toBe(true);
  });
});
