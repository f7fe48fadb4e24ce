// The Xet download worker's own HTTP reader (src/stores/hf/xet-range-reader.ts) against a raw
// TCP server that answers each request as a test case says: the exact 206 it accepts is read
// byte for byte (through a reused buffer, bodies several times its size, a consumer that makes
// it wait); every other answer before the body is declined (undefined: the worker asks again
// through node:http); a body cut short or too long fails the read; connections are reused
// unless the server says `Connection: close`.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRange, READ_BUFFER } from '../../src/stores/hf/xet-range-reader.js';

type Answer = (range: { start: number; end: number }, socket: net.Socket) => void;

const data = Buffer.alloc(3 * READ_BUFFER + 12_345);
for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 9)) & 0xff;

let server: net.Server;
let port = 0;
let connections = 0;
let answer: Answer;
const sockets = new Set<net.Socket>();

function head(status: string, headers: Record<string, string | number>): string {
  return `HTTP/1.1 ${status}\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

/** The good answer: 206, exact Content-Range and Content-Length, keep-alive. */
const good: Answer = ({ start, end }, s) => {
  s.write(head('206 Partial Content', { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${data.length}` }));
  s.write(data.subarray(start, end + 1));
};

beforeAll(async () => {
  server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const at = buf.indexOf('\r\n\r\n');
        if (at < 0) return;
        const req = buf.slice(0, at);
        buf = buf.slice(at + 4);
        const m = /\r\nRange: bytes=(\d+)-(\d+)\r?\n?/i.exec(`${req}\r\n`);
        answer({ start: Number(m?.[1] ?? 0), end: Number(m?.[2] ?? data.length - 1) }, s);
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(async () => {
  // The reader keeps its idle connections open (keep-alive): closed from this side.
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

const url = () => new URL(`http://127.0.0.1:${port}/xorbs/default/abc?sig=1`);

async function readAll(start: number, end: number, slow = false): Promise<Buffer | undefined> {
  const body = await openRange(url(), start, end);
  if (!body) return undefined;
  const parts: Buffer[] = [];
  let calls = 0;
  await body.consume((b) => {
    parts.push(Buffer.from(b)); // a view of the reused buffer: copied
    if (slow && calls++ % 3 === 0) return new Promise((r) => setTimeout(r, 5));
  });
  return Buffer.concat(parts);
}

describe('Xet range reader', () => {
  it('reads the exact 206 byte for byte, bodies larger than its buffer, with a consumer that makes it wait; reuses the connection', async () => {
    answer = good;
    const before = connections;
    expect(await readAll(0, data.length - 1)).toEqual(data);
    expect(await readAll(1000, 1000 + 2 * READ_BUFFER, true)).toEqual(data.subarray(1000, 1001 + 2 * READ_BUFFER));
    expect(await readAll(5, 5)).toEqual(data.subarray(5, 6));
    expect(connections - before).toBe(1);
  });

  it('two ranges opened ahead wait in their sockets and read right in turn', async () => {
    answer = good;
    const a = await openRange(url(), 0, 2 * READ_BUFFER);
    const b = await openRange(url(), 100, 100 + READ_BUFFER);
    expect(a && b).toBeTruthy();
    await new Promise((r) => setTimeout(r, 50)); // let the bodies arrive in the sockets
    const take = async (body: NonNullable<typeof a>) => {
      const parts: Buffer[] = [];
      await body.consume((x) => void parts.push(Buffer.from(x)));
      return Buffer.concat(parts);
    };
    expect(await take(a!)).toEqual(data.subarray(0, 2 * READ_BUFFER + 1));
    expect(await take(b!)).toEqual(data.subarray(100, 101 + READ_BUFFER));
  });

  const declined: [string, Answer][] = [
    ['a 200 with the whole object', (_r, s) => s.write(Buffer.concat([Buffer.from(head('200 OK', { 'Content-Length': data.length })), data]))],
    ['a 206 of another range', ({ start, end }, s) => s.write(head('206 Partial Content', { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start + 1}-${end + 1}/${data.length}` }))],
    ['a Content-Length that is not the range\'s', ({ start, end }, s) => s.write(head('206 Partial Content', { 'Content-Length': end - start, 'Content-Range': `bytes ${start}-${end}/${data.length}` }))],
    ['no Content-Length', ({ start, end }, s) => s.write(head('206 Partial Content', { 'Content-Range': `bytes ${start}-${end}/${data.length}` }))],
    ['two Content-Lengths', ({ start, end }, s) => s.write(head('206 Partial Content', { 'Content-Length': end - start + 1, 'content-length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${data.length}` }))],
    ['chunked', ({ start, end }, s) => s.write(head('206 Partial Content', { 'Transfer-Encoding': 'chunked', 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${data.length}` }))],
    ['gzip', ({ start, end }, s) => s.write(head('206 Partial Content', { 'Content-Encoding': 'gzip', 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${data.length}` }))],
    ['a 403', (_r, s) => s.write(head('403 Forbidden', { 'Content-Length': 6 }) + 'denied')],
    ['a 503', (_r, s) => s.write(head('503 Slow Down', { 'Content-Length': 0 }))],
    ['a redirect', (_r, s) => s.write(head('307 Temporary Redirect', { Location: 'http://127.0.0.1:1/x', 'Content-Length': 0 }))],
    ['not HTTP', (_r, s) => s.write('SSH-2.0-OpenSSH\r\n\r\n')],
    ['a head that never ends', (_r, s) => s.write(`HTTP/1.1 206 Partial Content\r\nX-Pad: ${'a'.repeat(40_000)}`)],
    ['a closed connection before any answer', (_r, s) => s.destroy()],
  ];
  for (const [what, a] of declined) {
    it(`declines ${what} (undefined: node:http asks again)`, async () => {
      answer = a;
      expect(await openRange(url(), 10, 20_000)).toBeUndefined();
    });
  }

  it('an HTTP/1.0 answer is read, and its connection is not reused', async () => {
    answer = ({ start, end }, s) => {
      s.write(`HTTP/1.0 206 Partial Content\r\nContent-Length: ${end - start + 1}\r\nContent-Range: bytes ${start}-${end}/${data.length}\r\n\r\n`);
      s.write(data.subarray(start, end + 1));
    };
    const before = connections;
    expect(await readAll(0, 999)).toEqual(data.subarray(0, 1000));
    expect(await readAll(7, 99)).toEqual(data.subarray(7, 100));
    expect(connections - before).toBe(2);
  });

  it('a kept connection the server dropped meanwhile: the range is asked again on a fresh one, not declined', async () => {
    answer = good;
    for (const s of sockets) s.destroy(); // start from no kept connection
    await new Promise((r) => setTimeout(r, 20));
    expect(await readAll(0, 999)).toEqual(data.subarray(0, 1000)); // one connection, now kept
    const old = new Set(sockets);
    const before = connections;
    // the kept connection is closed by the server when the next request arrives on it, unanswered
    answer = (r, s) => (old.has(s) ? s.destroy() : good(r, s));
    expect(await readAll(10, 5000)).toEqual(data.subarray(10, 5001));
    expect(connections - before).toBe(1);
  });

  it('declines https, credentials in the URL, and a refused connection', async () => {
    expect(await openRange(new URL(`https://127.0.0.1:${port}/x`), 0, 10)).toBeUndefined();
    expect(await openRange(new URL(`http://u:p@127.0.0.1:${port}/x`), 0, 10)).toBeUndefined();
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const dead = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    expect(await openRange(new URL(`http://127.0.0.1:${dead}/x`), 0, 10)).toBeUndefined();
  });

  it('a body cut short fails the read (after the bytes that came)', async () => {
    answer = ({ start, end }, s) => {
      s.write(head('206 Partial Content', { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${data.length}` }));
      s.end(data.subarray(start, start + 2 * READ_BUFFER));
    };
    await expect(readAll(0, data.length - 1)).rejects.toThrow(/connection ended after \d+ of \d+ bytes/);
    // Cut within the first read (the head and a few body bytes, then the end).
    answer = ({ start, end }, s) => s.end(head('206 Partial Content', { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${data.length}` }) + 'abc');
    await expect(readAll(0, 99)).rejects.toThrow(/connection ended after/);
  });

  it('bytes past the announced length fail the read', async () => {
    answer = ({ start, end }, s) => {
      s.write(Buffer.concat([Buffer.from(head('206 Partial Content', { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${data.length}` })), data.subarray(start, end + 1), Buffer.from('EXTRA')]));
    };
    await expect(readAll(0, 999)).rejects.toThrow(/more than the 1000 bytes/);
  });

  it('Connection: close is honoured: the next range opens a new connection', async () => {
    answer = ({ start, end }, s) => {
      s.end(Buffer.concat([Buffer.from(head('206 Partial Content', { Connection: 'close', 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/*` })), data.subarray(start, end + 1)]));
    };
    const before = connections;
    expect(await readAll(0, 50_000)).toEqual(data.subarray(0, 50_001));
    expect(await readAll(7, 70)).toEqual(data.subarray(7, 71));
    expect(connections - before).toBe(2);
  });

  it('a consumer that throws fails the read and drops the connection', async () => {
    answer = good;
    const body = await openRange(url(), 0, data.length - 1);
    await expect(
      body!.consume(() => {
        throw new Error('bad chunk');
      }),
    ).rejects.toThrow('bad chunk');
    // The next range still works (a fresh connection).
    expect(await readAll(0, 10)).toEqual(data.subarray(0, 11));
  });
});
