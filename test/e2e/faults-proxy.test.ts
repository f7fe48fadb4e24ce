/**
 * The fault proxy itself (test/support/fault-proxy.ts), against a small local HTTP server:
 * every fault kind does what it says, decisions depend on the seed only, it listens on
 * loopback only, and it stops by itself.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAULT_KINDS, randomBuffer, startFaultProxy, type FaultKind, type FaultProxy } from '../support/fault-proxy.js';

const BODY = randomBuffer(42, 200_000);
let upstream: http.Server;
let target: string;
const received: { method: string; url: string; bytes: number }[] = [];

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, bytes });
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-length': BODY.length });
        res.end();
        return;
      }
      if (req.url?.startsWith('/small')) {
        // the whole body in one write: it has ended by the time a fault is decided
        res.writeHead(200, { 'content-length': 5000 });
        res.end(BODY.subarray(0, 5000));
        return;
      }
      if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'application/xml' });
        // several chunks, some time apart
        let i = 0;
        const next = (): void => {
          if (i >= 4) return void res.end();
          res.write(BODY.subarray(i * 10_000, (i + 1) * 10_000));
          i++;
          setTimeout(next, 5);
        };
        next();
        return;
      }
      res.writeHead(200, { 'content-length': BODY.length, 'x-upstream': 'yes' });
      // in pieces, so that faults land between chunks too
      let off = 0;
      const next = (): void => {
        if (off >= BODY.length) return void res.end();
        res.write(BODY.subarray(off, off + 16_384));
        off += 16_384;
        setImmediate(next);
      };
      next();
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => upstream.close(() => r())));

interface Got {
  status?: number;
  headers?: http.IncomingHttpHeaders;
  body: Buffer;
  error?: string;
  ms: number;
}

function request(url: string, method = 'GET', body?: Buffer, timeoutMs = 10_000, agent: http.Agent | false = false): Promise<Got> {
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const req = http.request(url, { method, agent, headers: body ? { 'content-length': body.length } : {} }, (res) => {
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), ms: Date.now() - started }));
      res.on('error', (e) => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), error: e.message, ms: Date.now() - started }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => resolve({ body: Buffer.concat(chunks), error: e.message, ms: Date.now() - started }));
    req.end(body);
  });
}

async function withProxy(kind: FaultKind, fn: (p: FaultProxy) => Promise<void>, extra: { stallMs?: number; hangMs?: number } = {}): Promise<void> {
  const p = await startFaultProxy({ target, seed: 1, rate: 1, kinds: [kind], stallMs: 300, hangMs: 600, ...extra });
  try {
    await fn(p);
  } finally {
    await p.close();
  }
}

describe('fault proxy', () => {
  it('listens on 127.0.0.1 and forwards untouched at rate 0', async () => {
    const p = await startFaultProxy({ target, seed: 1, rate: 0, kinds: FAULT_KINDS });
    try {
      expect(p.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const got = await request(`${p.url}/obj`);
      expect(got.status).toBe(200);
      expect(got.headers?.['x-upstream']).toBe('yes');
      expect(got.body.equals(BODY)).toBe(true);
      const chunked = await request(`${p.url}/chunked`);
      expect(chunked.body.equals(BODY.subarray(0, 40_000))).toBe(true);
      const put = await request(`${p.url}/up`, 'PUT', BODY.subarray(0, 50_000));
      expect(put.status).toBe(200);
      expect(received.at(-1)).toEqual({ method: 'PUT', url: '/up', bytes: 50_000 });
      expect(p.total).toBe(0);
      expect(p.requests).toBe(3);
    } finally {
      await p.close();
    }
  });

  it('reset-response and truncate cut the body: the client sees an error, never a complete-looking short body', async () => {
    for (const kind of ['reset-response', 'truncate'] as const) {
      await withProxy(kind, async (p) => {
        for (const url of ['/obj', '/chunked']) {
          const got = await request(`${p.url}${url}`);
          expect(got.error, `${kind} ${url}`).toBeDefined();
          expect(got.body.length).toBeLessThan(url === '/obj' ? BODY.length : 40_000);
        }
        expect(p.counts[kind]).toBe(2);
      });
    }
  });

  it('short-body sends a well-formed response with a shorter Content-Length', async () => {
    await withProxy('short-body', async (p) => {
      const got = await request(`${p.url}/obj`);
      expect(got.error).toBeUndefined();
      expect(got.status).toBe(200);
      expect(Number(got.headers?.['content-length'])).toBe(got.body.length);
      expect(got.body.length).toBeLessThan(BODY.length);
      expect(got.body.equals(BODY.subarray(0, got.body.length))).toBe(true);
      expect(p.injected[0]!.at).toBe(got.body.length);
    });
  });

  it('stall pauses and then delivers everything (headers or mid-body)', async () => {
    await withProxy('stall', async (p) => {
      for (const url of ['/obj', '/chunked', '/obj?again']) {
        const got = await request(`${p.url}${url}`);
        expect(got.error, url).toBeUndefined();
        expect(got.body.equals(url === '/chunked' ? BODY.subarray(0, 40_000) : BODY), url).toBe(true);
        expect(got.ms).toBeGreaterThanOrEqual(280);
      }
      const head = await request(`${p.url}/obj`, 'HEAD');
      expect(head.status).toBe(200);
      expect(head.ms).toBeGreaterThanOrEqual(280);
      // a body that ended before the stall, then the same keep-alive connection again
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (const url of ['/small1', '/small2', '/small3']) {
          const got = await request(`${p.url}${url}`, 'GET', undefined, 3000, agent);
          expect(got.error, url).toBeUndefined();
          expect(got.body.equals(BODY.subarray(0, 5000)), url).toBe(true);
        }
        const head2 = await request(`${p.url}/obj`, 'HEAD', undefined, 3000, agent);
        expect(head2.status).toBe(200);
      } finally {
        agent.destroy();
      }
      expect(p.counts.stall).toBe(8);
    });
  });

  it('hang goes silent, then drops the connection (a client timeout fires first when shorter)', async () => {
    await withProxy('hang', async (p) => {
      const dropped = await request(`${p.url}/obj`);
      expect(dropped.error).toBeDefined();
      expect(dropped.ms).toBeGreaterThanOrEqual(580);
      const timedOut = await request(`${p.url}/obj?2`, 'GET', undefined, 200);
      expect(timedOut.error).toBe('client timeout');
    });
  });

  it('status faults answer with an S3 error (Retry-After when asked), without reaching the server', async () => {
    for (const [kind, status, code] of [
      ['status-500', 500, 'InternalError'],
      ['status-503', 503, 'SlowDown'],
      ['status-503-retry-after', 503, 'SlowDown'],
    ] as const) {
      const before = received.length;
      await withProxy(kind, async (p) => {
        const got = await request(`${p.url}/up`, 'PUT', BODY.subarray(0, 1000));
        expect(got.status).toBe(status);
        expect(got.body.toString()).toContain(`<Code>${code}</Code>`);
        expect(got.headers?.['retry-after']).toBe(kind === 'status-503-retry-after' ? '1' : undefined);
      });
      expect(received.length).toBe(before);
    }
  });

  it('lost-response lets the server do the work, then answers 500', async () => {
    await withProxy('lost-response', async (p) => {
      const before = received.length;
      const got = await request(`${p.url}/up`, 'PUT', BODY.subarray(0, 1234));
      expect(got.status).toBe(500);
      expect(received.length).toBe(before + 1);
      expect(received.at(-1)!.bytes).toBe(1234);
    });
  });

  it('reset-request forwards part of the body, then drops both connections', async () => {
    await withProxy('reset-request', async (p) => {
      const got = await request(`${p.url}/up`, 'PUT', BODY);
      expect(got.error).toBeDefined();
      expect(p.counts['reset-request']).toBe(1);
      // a body-less request is not eligible
      const plain = await request(`${p.url}/obj`);
      expect(plain.body.equals(BODY)).toBe(true);
    });
  });

  it('decisions depend on the seed and the request only, not on arrival order or the bucket name', async () => {
    const urls = Array.from({ length: 60 }, (_, i) => `/bucket-${i % 2 ? 'a' : 'b'}/k${i % 30}`);
    const run = async (order: string[]): Promise<string[]> => {
      const p = await startFaultProxy({ target, seed: 99, rate: 0.3, kinds: ['status-500', 'status-503'] });
      try {
        const hits: string[] = [];
        for (const u of order) {
          const got = await request(`${p.url}${u}`, 'HEAD');
          if (got.status !== 200) hits.push(`${u.replace(/^\/[^/]+/, '')} ${got.status}`);
        }
        return hits.sort();
      } finally {
        await p.close();
      }
    };
    const a = await run(urls);
    const b = await run([...urls].reverse());
    expect(a.length).toBeGreaterThan(5);
    expect(b).toEqual(a);
  });

  it('a match or script callback that throws (a poll racing the CLI\'s files) is no fault for that request, not an uncaught error', async () => {
    const raced = (): never => {
      throw Object.assign(new Error("ENOENT: no such file or directory, stat '.bucketsync-tmp-…-case-probe'"), { code: 'ENOENT' });
    };
    // every request would get a 500 if `match` said yes; none is answered by `script`
    for (const opts of [{ rate: 1, match: raced }, { rate: 0, script: raced }]) {
      const p = await startFaultProxy({ target, seed: 1, kinds: ['status-500'], ...opts });
      try {
        const got = await request(`${p.url}/obj`);
        expect(got.status).toBe(200);
        expect(got.body.equals(BODY)).toBe(true);
        expect([p.total, p.scripted]).toEqual([0, 0]);
      } finally {
        await p.close();
      }
    }
  });

  it('stops by itself after its lifetime', async () => {
    const p = await startFaultProxy({ target, seed: 1, rate: 0, kinds: [], lifetimeMs: 200 });
    await new Promise((r) => setTimeout(r, 400));
    const got = await request(`${p.url}/obj`);
    expect(got.error).toMatch(/ECONNREFUSED/);
  });
});
