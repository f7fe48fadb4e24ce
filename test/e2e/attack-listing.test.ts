/**
 * Attack: a listing page cut short but well-formed on the wire (HTTP 200, a Content-Length that
 * matches the shortened body: a misbehaving proxy or server). Read as "the last page", the
 * missing names would look deleted at the source, and `sync --delete` would remove their
 * copies at the destination. A listing document without its closing root element must fail the
 * run (exit 1) and delete nothing. Through the CLI, against Azurite and RGW behind a proxy that
 * keeps only the first entry of every listing page.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../support/cli.js';
import { azureTestClient, azureTestEnv, azuriteEndpoint, createTestContainer } from '../support/azure-env.js';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const azEndpoint = azuriteEndpoint();
const s3Endpoint = s3TestEndpoint();
const servers: http.Server[] = [];
const work = tempDir('bucketsync-attack-listing-');

afterAll(() => {
  for (const s of servers) s.close();
  fs.rmSync(work, { recursive: true, force: true });
});

/**
 * A proxy to `target` that answers listing requests (`isList`) with the upstream body cut after
 * the first `</entry>` and closed with `</wrapper>` when given (no closing root element), with a
 * matching Content-Length. Everything else passes through.
 */
async function truncatingProxy(target: string, isList: (url: string) => boolean, entry: string, wrapper?: string): Promise<{ url: string; cut: () => number }> {
  const t = new URL(target);
  let cuts = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        if (!isList(req.url ?? '') || ur.statusCode !== 200) {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
          return;
        }
        const body: Buffer[] = [];
        ur.on('data', (c: Buffer) => body.push(c));
        ur.on('end', () => {
          let xml = Buffer.concat(body).toString('utf8');
          const close = `</${entry}>`;
          const at = xml.indexOf(close);
          if (at !== -1) {
            xml = xml.slice(0, at + close.length) + (wrapper ? `</${wrapper}>` : '');
            cuts++;
          }
          const headers = { ...ur.headers };
          delete headers['transfer-encoding'];
          headers['content-length'] = String(Buffer.byteLength(xml));
          res.writeHead(200, headers);
          res.end(xml);
        });
      });
      up.on('error', () => res.destroy());
      up.end(Buffer.concat(chunks));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}${t.pathname.replace(/\/$/, '')}`, cut: () => cuts };
}

function localCopy(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const n of ['a.txt', 'b.txt', 'c.txt']) fs.writeFileSync(path.join(dir, n), n);
}

describe.skipIf(!azEndpoint)('attack: a cut Azure listing page (Azurite)', () => {
  it('sync --delete from az:// fails and deletes nothing when a List Blobs page has no closing </EnumerationResults>', async () => {
    const container = await createTestContainer('attack-list');
    const client = azureTestClient();
    try {
      for (const n of ['a.txt', 'b.txt', 'c.txt']) {
        await client.request({ op: 'PutBlob', method: 'PUT', container, blob: `p/${n}`, headers: { 'x-ms-blob-type': 'BlockBlob' }, body: Buffer.from(n) });
      }
    } finally {
      client.destroy();
    }
    const proxy = await truncatingProxy(azEndpoint!, (u) => u.includes('comp=list'), 'Blob', 'Blobs');
    const dest = path.join(work, 'az-dest');
    localCopy(dest);
    const r = await cli(['sync', `az://${container}/p`, dest, '--delete', '--azure-endpoint', proxy.url], {
      env: { ...azureTestEnv(azEndpoint!), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') },
      timeoutMs: 60_000,
    });
    expect(proxy.cut()).toBeGreaterThan(0);
    expect(fs.readdirSync(dest).sort(), r.stderr).toEqual(['a.txt', 'b.txt', 'c.txt']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/incomplete/);
  }, 60_000);
});

describe.skipIf(!s3Endpoint)('attack: a cut S3 listing page (RGW)', () => {
  it('sync --delete from s3:// fails and deletes nothing when a ListObjectsV2 page has no closing </ListBucketResult>', async () => {
    const bucket = await createTestBucket('attack-list');
    const raw = s3TestClient();
    try {
      for (const n of ['a.txt', 'b.txt', 'c.txt']) await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `p/${n}`, Body: n }));
    } finally {
      raw.destroy();
    }
    const proxy = await truncatingProxy(s3Endpoint!, (u) => u.includes('list-type=2'), 'Contents');
    const dest = path.join(work, 's3-dest');
    localCopy(dest);
    const r = await cli(['sync', `s3://${bucket}/p`, dest, '--delete', '--endpoint-url', proxy.url], {
      env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') },
      timeoutMs: 60_000,
    });
    expect(proxy.cut()).toBeGreaterThan(0);
    expect(fs.readdirSync(dest).sort(), r.stderr).toEqual(['a.txt', 'b.txt', 'c.txt']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/incomplete/);
  }, 60_000);
});
