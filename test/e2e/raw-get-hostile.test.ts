/**
 * The lean reader of big S3 downloads over plain http (src/stores/common/range-reader.ts) against a
 * hostile server, end to end through the CLI. A tiny node:net HTTP server stands in front of
 * RGW: it forwards every request (HEAD, listings, whole-object GETs) to RGW, and answers the
 * ranged GETs of the object itself, from the object's bytes, correctly — except for one part,
 * where it misbehaves in one way per case. Every case must end in a fallback to the regular
 * transport (node:http) or a clear retryable error; never in a wrong file.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5, MiB, PART, putMultipart } from '../support/big-files.js';
import { cli, tempDir } from '../support/cli.js';
import { randomBuffer } from '../support/fault-proxy.js';
import { createTestBucket, removeTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const endpoint = s3TestEndpoint();
const SIZE = 3 * PART + MiB + 123; // 4 parts
/** The part the server misbehaves on. */
const VICTIM = 1;
const VICTIM_RANGE = `bytes=${VICTIM * PART}-${(VICTIM + 1) * PART - 1}`;

let s3: S3Client;
let bucket: string;
let work: string;
let data: Buffer;
let etag: string;
const servers: net.Server[] = [];

beforeAll(async () => {
  if (!endpoint) return;
  s3 = s3TestClient();
  bucket = await createTestBucket('raw-hostile');
  work = tempDir('bucketsync-raw-hostile-');
  data = randomBuffer(77, SIZE);
  await putMultipart(s3, bucket, 'o/big.bin', data);
  etag = (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'o/big.bin' }))).ETag!;
}, 60_000);
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  if (s3 && bucket) await removeTestBucket(s3, bucket);
  s3?.destroy();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

interface Req {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** Sent by node:http (the regular transport: `Connection: keep-alive`), not by the raw reader. */
  regular: boolean;
}

/**
 * What to do with a ranged GET of the object: `undefined` answers it correctly; else a function
 * that writes whatever it likes on the socket (`body` is the range's bytes, `head` the
 * correct header lines); it returns 'valid' when its answer was well-formed HTTP, so the next
 * request on the connection is served.
 */
type Misbehave = (sock: net.Socket, range: { start: number; end: number; body: Buffer; head: string[] }, req: Req) => void | 'valid';

interface Hostile {
  url: string;
  /** Every ranged GET of the object: its Range, and whether the regular transport sent it. */
  ranged: { range: string; regular: boolean }[];
}

/** The hostile server; `pick` chooses the misbehaviour of a ranged GET (n: how many of its Range came before). */
async function hostile(pick: (req: Req, n: number) => Misbehave | undefined): Promise<Hostile> {
  const target = new URL(endpoint!);
  const agent = new http.Agent({ keepAlive: true });
  const ranged: Hostile['ranged'] = [];
  const seen = new Map<string, number>();
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    let busy = false;
    sock.on('error', () => undefined);
    const pump = (): void => {
      if (busy || sock.destroyed) return;
      const at = buf.indexOf('\r\n\r\n');
      if (at < 0) return;
      const lines = buf.subarray(0, at).toString('latin1').split('\r\n');
      buf = buf.subarray(at + 4);
      const [method, url] = lines[0]!.split(' ') as [string, string];
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      const req: Req = { method, url, headers, regular: /keep-alive/i.test(headers.connection ?? '') };
      busy = true;
      const done = (): void => {
        busy = false;
        pump();
      };
      const m = /^bytes=(\d+)-(\d+)$/.exec(headers.range ?? '');
      if (method === 'GET' && url.includes('/big.bin') && m) {
        const start = Number(m[1]);
        const end = Number(m[2]);
        ranged.push({ range: headers.range!, regular: req.regular });
        const n = seen.get(headers.range!) ?? 0;
        seen.set(headers.range!, n + 1);
        const body = data.subarray(start, end + 1);
        const head = ['HTTP/1.1 206 Partial Content', `Content-Length: ${body.length}`, `Content-Range: bytes ${start}-${end}/${SIZE}`, `ETag: ${etag}`, 'Accept-Ranges: bytes', 'Content-Type: application/octet-stream'];
        const bad = pick(req, n);
        if (bad) {
          if (bad(sock, { start, end, body, head }, req) === 'valid') done();
        } else {
          sock.write(`${head.join('\r\n')}\r\n\r\n`);
          sock.write(body);
          done();
        }
        return;
      }
      // everything else: forwarded to RGW as it is, its answer relayed with a Content-Length
      const fwd = http.request({ agent, host: target.hostname, port: target.port, method, path: url, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('error', () => sock.destroy()); // RGW cut the answer short: so does this server
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const out = Buffer.concat(chunks);
          const hl = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage}`];
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            const k = res.rawHeaders[i]!;
            if (/^(transfer-encoding|connection|content-length|keep-alive)$/i.test(k)) continue;
            hl.push(`${k}: ${res.rawHeaders[i + 1]}`);
          }
          hl.push(`Content-Length: ${method === 'HEAD' ? (res.headers['content-length'] ?? '0') : out.length}`);
          sock.write(`${hl.join('\r\n')}\r\n\r\n`);
          if (method !== 'HEAD') sock.write(out);
          done();
        });
      });
      fwd.on('error', () => sock.destroy());
      fwd.end();
    };
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      pump();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, ranged };
}

/** The victim part's ranged GET from the raw reader (not the regular transport). */
const rawVictim = (req: Req): boolean => !req.regular && req.headers.range === VICTIM_RANGE;
const victim = (req: Req): boolean => req.headers.range === VICTIM_RANGE;

async function download(h: Hostile, name: string, extra: string[] = [], env: Record<string, string> = {}): Promise<{ code: number; stderr: string; dest: string }> {
  const dest = path.join(work, name);
  const r = await cli(['sync', `s3://${bucket}/o`, dest, '--endpoint-url', h.url, '--no-progress', ...extra], {
    env: { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(work, `${name}-cache`), BUCKETSYNC_S3_DOWNLOAD_CONCURRENCY: '2', ...env },
    timeoutMs: 60_000,
  });
  return { code: r.code ?? -1, stderr: r.stderr, dest };
}

/** Exit 0, the object's bytes, nothing else in the folder. */
function expectIdentical(r: { code: number; stderr: string; dest: string }): void {
  expect(r.code, r.stderr).toBe(0);
  expect(md5(fs.readFileSync(path.join(r.dest, 'big.bin')))).toBe(md5(data));
  expect(fs.readdirSync(r.dest)).toEqual(['big.bin']);
}

/** Exit 1 naming the cause, nothing under the final name. */
function expectFailed(r: { code: number; stderr: string; dest: string }, cause: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toMatch(cause);
  expect(fs.existsSync(path.join(r.dest, 'big.bin'))).toBe(false);
}

describe.skipIf(!endpoint)('raw ranged GETs against a hostile server', () => {
  it('a well-behaved server: every part by the raw reader (no request from the regular transport), byte-identical', async () => {
    const h = await hostile(() => undefined);
    expectIdentical(await download(h, 'ok'));
    expect(h.ranged).toHaveLength(4);
    expect(h.ranged.every((x) => !x.regular)).toBe(true);
  });

  it('a server that closes each kept connection after its answer (no Connection: close): the next range goes on a fresh connection, still raw, byte-identical', async () => {
    const closing: Misbehave = (s, { head, body }) => {
      s.write(`${head.join('\r\n')}\r\n\r\n`);
      s.write(body);
      setTimeout(() => s.destroy(), 20);
    };
    const h = await hostile((req) => (req.regular ? undefined : closing));
    expectIdentical(await download(h, 'closing'));
    expect(h.ranged.every((x) => !x.regular)).toBe(true);
  });

  it('another status than 206 (a 500, and a 200 with the whole object) falls back to the regular transport for that part and the rest: byte-identical', async () => {
    for (const [name, bad] of [
      ['500', (s: net.Socket): void => void s.end('HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: 57\r\n\r\n<Error><Code>InternalError</Code><Message/></Error>\n\n\n\n\n\n')],
      ['200', (s: net.Socket): void => void (s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${SIZE}\r\nETag: ${etag}\r\n\r\n`), s.write(data))],
    ] as const) {
      const h = await hostile((req) => (rawVictim(req) ? bad : undefined));
      const r = await download(h, `status-${name}`);
      expectIdentical(r);
      const v = h.ranged.filter((x) => x.range === VICTIM_RANGE);
      expect(v.map((x) => x.regular), name).toEqual([false, true]);
    }
  });

  it('a chunked 206 (Transfer-Encoding) is not the raw reader\'s: the regular transport decodes it, byte-identical', async () => {
    const chunked: Misbehave = (s, { head, body }) => {
      s.write(`${head.filter((l) => !/^content-length/i.test(l)).join('\r\n')}\r\nTransfer-Encoding: chunked\r\n\r\n`);
      for (let at = 0; at < body.length; at += 1000_000) {
        const c = body.subarray(at, at + 1000_000);
        s.write(`${c.length.toString(16)}\r\n`);
        s.write(c);
        s.write('\r\n');
      }
      s.write('0\r\n\r\n');
      return 'valid';
    };
    const h = await hostile((req) => (victim(req) ? chunked : undefined));
    expectIdentical(await download(h, 'chunked'));
    expect(h.ranged.filter((x) => x.range === VICTIM_RANGE).map((x) => x.regular)).toEqual([false, true]);
  });

  it('a body cut short (half, then the connection closed): a retryable error naming how much came; the retry completes the file, byte-identical', async () => {
    const short: Misbehave = (s, { head, body }) => {
      s.write(`${head.join('\r\n')}\r\n\r\n`);
      s.end(body.subarray(0, body.length >> 1));
    };
    // every time: the one attempt fails, clearly, and nothing is left under the final name
    const always = await hostile((req) => (victim(req) ? short : undefined));
    expectFailed(await download(always, 'short-always', ['--retries', '0']), /cut short after 2621440 of 5242880 bytes/);
    // once: the next attempt of the same run fetches the part again
    const once = await hostile((req, n) => (victim(req) && n === 0 ? short : undefined));
    expectIdentical(await download(once, 'short-once'));
  });

  it('a Content-Range of another range (its bytes, the right length): refused before a byte is written', async () => {
    const other: Misbehave = (s, { head, start, end }) => {
      const o = start + PART; // the next part's bytes
      const body = data.subarray(o, o + (end - start + 1));
      s.write(`${head.map((l) => (/^content-range/i.test(l) ? `Content-Range: bytes ${o}-${o + body.length - 1}/${SIZE}` : l)).join('\r\n')}\r\n\r\n`);
      s.write(body);
    };
    const h = await hostile((req) => (victim(req) ? other : undefined));
    expectFailed(await download(h, 'crange', ['--retries', '0']), /answered Content-Range bytes 10485760-15728639\/16777339 for bytes 5242880-10485759\/16777339/);
  });

  it('a Content-Length bigger or smaller than the range: refused', async () => {
    const bigger: Misbehave = (s, { head, body }) => {
      s.write(`${head.map((l) => (/^content-length/i.test(l) ? `Content-Length: ${body.length + 10}` : l)).join('\r\n')}\r\n\r\n`);
      s.write(Buffer.concat([body, Buffer.alloc(10, 7)]));
    };
    const smaller: Misbehave = (s, { head, body }) => {
      s.write(`${head.map((l) => (/^content-length/i.test(l) ? `Content-Length: ${body.length - 10}` : l)).join('\r\n')}\r\n\r\n`);
      s.write(body.subarray(0, body.length - 10));
    };
    for (const [name, bad, n] of [
      ['bigger', bigger, PART + 10],
      ['smaller', smaller, PART - 10],
    ] as const) {
      const h = await hostile((req) => (victim(req) ? bad : undefined));
      expectFailed(await download(h, `clen-${name}`, ['--retries', '0']), new RegExp(`answered Content-Length ${n} for a range of ${PART} bytes`));
    }
  });

  it('70 KiB of headers: refused (the header block may not exceed 64 KiB)', async () => {
    const fat: Misbehave = (s, { head, body }) => {
      const junk = Array.from({ length: 70 }, (_, i) => `X-Junk-${i}: ${'j'.repeat(1010)}`);
      s.write(`${[...head, ...junk].join('\r\n')}\r\n\r\n`);
      s.write(body);
    };
    const h = await hostile((req) => (rawVictim(req) ? fat : undefined));
    expectFailed(await download(h, 'fat', ['--retries', '0']), /header block exceeds 64 KiB/);
    // and header lines without end, the connection held open: refused once 64 KiB came, not at a timeout
    const endless: Misbehave = (s, { head }) => void s.write(`${head.join('\r\n')}\r\n${'X-Junk: j\r\n'.repeat(7000)}`);
    const h2 = await hostile((req) => (rawVictim(req) ? endless : undefined));
    const t0 = Date.now();
    expectFailed(await download(h2, 'endless', ['--retries', '0']), /header block exceeds 64 KiB/);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('bytes after the body: the range fails and its connection is dropped', async () => {
    const extra: Misbehave = (s, { head, body }) => {
      s.write(`${head.join('\r\n')}\r\n\r\n`);
      s.write(body.subarray(0, body.length - 1000));
      // the body's last bytes and the surplus in one small segment: one read for the client
      setTimeout(() => s.write(Buffer.concat([body.subarray(body.length - 1000), Buffer.from('HTTP/1.1 200 OK\r\n\r\n')])), 50);
    };
    const h = await hostile((req) => (victim(req) ? extra : undefined));
    expectFailed(await download(h, 'extra', ['--retries', '0']), /sent more than the 5242880 bytes of the range 5242880-10485759/);
  });

  it('a slow loris (headers and part of the body, then silence; or no answer at all): fails after the socket timeout', async () => {
    const env = { BUCKETSYNC_S3_SOCKET_TIMEOUT_MS: '1500' };
    const stall: Misbehave = (s, { head, body }) => {
      s.write(`${head.join('\r\n')}\r\n\r\n`);
      s.write(body.subarray(0, 300_000));
    };
    const h = await hostile((req) => (victim(req) ? stall : undefined));
    const t0 = Date.now();
    expectFailed(await download(h, 'loris', ['--retries', '0'], env), /no data from 127\.0\.0\.1:\d+ for 1500 ms/);
    expect(Date.now() - t0).toBeLessThan(30_000);
    const mute: Misbehave = () => undefined;
    const h2 = await hostile((req) => (victim(req) ? mute : undefined));
    expectFailed(await download(h2, 'loris-head', ['--retries', '0'], env), /no data from 127\.0\.0\.1:\d+ for 1500 ms \(no answer to the GET of bytes 5242880-10485759\)/);
  });

  it('a byte changed in the raw reader\'s part (a complete, well-formed answer): the ETag check catches it and the object is fetched again whole, byte-identical', async () => {
    const flip: Misbehave = (s, { head, body }) => {
      const b = Buffer.from(body);
      b[12345] = b[12345]! ^ 0xff;
      s.write(`${head.join('\r\n')}\r\n\r\n`);
      s.write(b);
      return 'valid';
    };
    const h = await hostile((req) => (victim(req) && !req.regular ? flip : undefined));
    expectIdentical(await download(h, 'flip'));
  });
});
