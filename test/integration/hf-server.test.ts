/**
 * The test Hub/CAS server against the real @huggingface/hub client library (no mocks): the
 * protocol pieces the HF store relies on, checked one by one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import http from 'node:http';
import { commitIterBucket, downloadFile, listFiles, createRepo } from '@huggingface/hub';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';

const TOKEN = 'hf_test_token';
let server: HfTestServer;

beforeAll(async () => {
  server = await startHfServer({ pageSize: 3 });
  server.createBucket('tester/raw');
});
afterAll(async () => {
  await server.close();
});

async function upload(bucket: string, files: Record<string, Uint8Array>) {
  const events = [];
  for await (const ev of commitIterBucket({
    repo: { type: 'bucket', name: bucket },
    accessToken: TOKEN,
    hubUrl: server.url,
    title: 'x',
    operations: Object.entries(files).map(([path, data]) => ({
      operation: 'addOrUpdate' as const,
      path,
      content: new Blob([data as Uint8Array<ArrayBuffer>]),
    })),
  })) {
    events.push(ev);
  }
  return events;
}

function random(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x & 0xff;
    out[i + 1] = (x >>> 8) & 0xff;
    out[i + 2] = (x >>> 16) & 0xff;
    out[i + 3] = (x >>> 24) & 0xff;
  }
  return out;
}

describe('hf test server with @huggingface/hub', () => {
  it('creates a bucket through createRepo', async () => {
    await createRepo({ repo: { type: 'bucket', name: 'tester/created' }, accessToken: TOKEN, hubUrl: server.url });
    expect(server.buckets.has('tester/created')).toBe(true);
  });

  it('accepts xorbs and shards from commitIterBucket and stores the files', async () => {
    const big = random(3 * 1024 * 1024 + 123, 7);
    const text = new TextEncoder().encode('hello world\n'.repeat(5000)); // compressible: LZ4 path
    await upload('tester/raw', { 'a/big.bin': big, 'a/text.txt': text, 'empty.txt': new Uint8Array(0) });
    const files = server.listBucket('tester/raw');
    expect(files.map((f) => [f.path, f.size])).toEqual([
      ['a/big.bin', big.length],
      ['a/text.txt', text.length],
      ['empty.txt', 0],
    ]);
    expect(Buffer.compare(await server.readFile('tester/raw', 'a/big.bin'), Buffer.from(big))).toBe(0);
    expect(Buffer.compare(await server.readFile('tester/raw', 'a/text.txt'), Buffer.from(text))).toBe(0);
    expect(server.stats.xorbBytesReceived).toBeGreaterThan(0);
  });

  it('dedups a re-upload of the same content: no new xorb bytes', async () => {
    server.resetStats();
    const big = random(3 * 1024 * 1024 + 123, 7);
    await upload('tester/raw', { 'copy/big.bin': big });
    expect(server.stats.chunkQueryHits).toBeGreaterThan(0);
    expect(server.stats.xorbBytesReceived).toBe(0);
    expect(Buffer.compare(await server.readFile('tester/raw', 'copy/big.bin'), Buffer.from(big))).toBe(0);
  });

  it('lists with Link pagination', async () => {
    const items = [];
    for await (const it of listFiles({ repo: { type: 'bucket', name: 'tester/raw' }, recursive: true, accessToken: TOKEN, hubUrl: server.url })) {
      items.push(it);
    }
    expect(items.filter((i) => i.type === 'file').map((i) => i.path)).toEqual(['a/big.bin', 'a/text.txt', 'copy/big.bin', 'empty.txt']);
    // Recursive listings are files only, as on the Hub (docs/hf.md).
    expect(items.filter((i) => i.type === 'directory').map((i) => i.path)).toEqual([]);
    expect(server.stats.requests.tree).toBeGreaterThan(1);
  });

  it('serves downloads through resolve + reconstruction + ranged xorb reads', async () => {
    const big = random(3 * 1024 * 1024 + 123, 7);
    const blob = await downloadFile({ repo: { type: 'bucket', name: 'tester/raw' }, path: 'a/big.bin', accessToken: TOKEN, hubUrl: server.url });
    expect(blob).not.toBeNull();
    const got = new Uint8Array(await blob!.arrayBuffer());
    expect(crypto.createHash('sha256').update(got).digest('hex')).toBe(crypto.createHash('sha256').update(big).digest('hex'));
    const slice = new Uint8Array(await blob!.slice(1_000_000, 1_500_000).arrayBuffer());
    expect(Buffer.compare(Buffer.from(slice), Buffer.from(big.subarray(1_000_000, 1_500_000)))).toBe(0);
  });

  it('lists, describes, moves and deletes buckets', async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const list = async () => (await (await fetch(`${server.url}/api/buckets/me`, { headers: auth })).json()) as { id: string }[];
    expect((await list()).map((b) => b.id)).toEqual(['tester/created', 'tester/raw']);
    const info = (await (await fetch(`${server.url}/api/buckets/tester/raw`, { headers: auth })).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ id: 'tester/raw', private: false, totalFiles: 4 });
    const mv = await fetch(`${server.url}/api/repos/move`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ fromRepo: 'tester/created', toRepo: 'tester/moved', type: 'bucket' }),
    });
    expect(mv.status).toBe(200);
    expect((await fetch(`${server.url}/api/buckets/tester/moved`, { method: 'DELETE', headers: auth })).status).toBe(200);
    expect((await list()).map((b) => b.id)).toEqual(['tester/raw']);
    const dup = await fetch(`${server.url}/api/buckets/tester/raw`, { method: 'POST', headers: auth });
    expect(dup.status).toBe(409);
  });

  it('requires a token for private buckets (public ones are readable anonymously, as on the Hub)', async () => {
    expect((await fetch(`${server.url}/api/buckets/tester/raw/tree?recursive=true`)).status).toBe(200);
    server.buckets.get('tester/raw')!.private = true;
    const res = await fetch(`${server.url}/api/buckets/tester/raw/tree?recursive=true`);
    server.buckets.get('tester/raw')!.private = false;
    expect(res.status).toBe(401);
    const res2 = await fetch(`${server.url}/api/buckets/tester/nope/tree?recursive=true`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(res2.status).toBe(404);
    expect(await res2.json()).toEqual({ error: 'Bucket tester/nope not found' });
  });

  it('answers a request target no URL parser accepts ("//[") with an error, on the Hub and the CAS side, and goes on serving', async () => {
    const hostile = (base: string): Promise<{ status?: number; body: string; error?: string }> =>
      new Promise((resolve) => {
        const u = new URL(base);
        const req = http.request({ host: u.hostname, port: u.port, path: '//[', method: 'GET', agent: false }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        req.setTimeout(5000, () => req.destroy(new Error('no answer')));
        req.on('error', (e) => resolve({ body: '', error: e.message }));
        req.end();
      });
    for (const base of [server.url, server.casUrl]) {
      const r = await hostile(base);
      expect(r.error, base).toBeUndefined();
      expect(r.status, base).toBeGreaterThanOrEqual(400);
      expect(JSON.parse(r.body)).toHaveProperty('error');
    }
    expect((await fetch(`${server.url}/api/buckets/tester/raw/tree?recursive=true`)).status).toBe(200);
  });
});
