// The floor of a big download on Node: a bare script that fetches one S3 object with
// `concurrency` ranged GETs of `partSize` bytes each (SigV4-signed, path style) into a
// pre-allocated file, writing each response by position in batches of 256 KiB — and does nothing
// else (no hashing, no verification, no resume record). bench/big.mjs runs it beside
// bucketsync so the gap between bucketsync and what Node itself can do on the machine is a number.
//
//   node bench/floor-download.mjs <endpoint> <bucket> <key> <out> <size> <partSize> <concurrency> <transport> [highWaterMark]
//
// transport: `http` (node:http, keep-alive agent; `highWaterMark` sets the response stream's
// buffer, default Node's 16 KiB), `fetch` (Node's built-in fetch, i.e. undici), or `raw`: one
// plain `net.connect` socket per stream with the `onread` option (the kernel's bytes land in ONE
// reused buffer per socket: no Buffer per read, no stream machinery) and a minimal HTTP/1.1
// client (request written by hand, status line and headers parsed up to CRLF CRLF, then exactly
// Content-Length body bytes, the socket kept for the next part). Its body bytes are copied into
// a batch buffer per socket and written with one synchronous pwrite (fs.writeSync at a
// position) per batch. Variants, to see where raw's CPU goes: `raw-direct` (pwrite straight from the read
// buffer, no copy), `raw-null` (bytes discarded: the transport alone). For raw, the 9th
// argument is the read buffer's size (default 256 KiB).
// Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default test / testtest).
import { createHash, createHmac } from 'node:crypto';
import fs from 'node:fs/promises';
import fsSync from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const [endpoint, bucket, key, out, sizeArg, partArg, concArg, transport = 'http', hwmArg] = process.argv.slice(2);
const size = Number(sizeArg);
const partSize = Number(partArg);
const concurrency = Number(concArg);
const hwm = hwmArg ? Number(hwmArg) : undefined;
const base = new URL(endpoint);
const id = process.env.AWS_ACCESS_KEY_ID ?? 'test';
const secret = process.env.AWS_SECRET_ACCESS_KEY ?? 'testtest';
const region = process.env.AWS_REGION ?? 'us-east-1';
// Bytes per positional write (FLOOR_BATCH overrides). 256 KiB: on the measuring machine
// (Linux 6.18, ext4, a KVM guest) page-cache writes of 1 MiB and up cost 3–4× the kernel CPU of
// 256 KiB ones for the same bytes (1 GiB: 2.2–2.9 s of sys against 0.6) — see the raw variants.
const BATCH = Number(process.env.FLOOR_BATCH ?? 256 * 1024);
const EMPTY = createHash('sha256').digest('hex');

const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const path = `/${enc(bucket)}/${key.split('/').map(enc).join('/')}`;

function signed(range) {
  const stamp = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = stamp.slice(0, 8);
  const headers = { host: base.host, range, 'x-amz-content-sha256': EMPTY, 'x-amz-date': stamp };
  const names = Object.keys(headers).sort();
  const canon = `GET\n${path}\n\n${names.map((n) => `${n}:${headers[n]}\n`).join('')}\n${names.join(';')}\n${EMPTY}`;
  const scope = `${day}/${region}/s3/aws4_request`;
  const sts = `AWS4-HMAC-SHA256\n${stamp}\n${scope}\n${createHash('sha256').update(canon).digest('hex')}`;
  const h = (k, d) => createHmac('sha256', k).update(d).digest();
  const skey = h(h(h(h(`AWS4${secret}`, day), region), 's3'), 'aws4_request');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${id}/${scope}, SignedHeaders=${names.join(';')}, Signature=${createHmac('sha256', skey).update(sts).digest('hex')}`;
  return headers;
}

const fh = await fs.open(out, 'w');
await fh.truncate(size);

async function writeAll(bufs, n, at) {
  for (let off = 0; off < n; ) {
    let skip = off;
    const rest = [];
    for (const b of bufs) {
      if (skip >= b.length) skip -= b.length;
      else (rest.push(skip ? b.subarray(skip) : b), (skip = 0));
    }
    off += (await fh.writev(rest, at + off)).bytesWritten;
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

function getHttp(start, end) {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...(hwm ? { highWaterMark: hwm } : {}), agent, hostname: base.hostname, port: base.port, path, headers: signed(`bytes=${start}-${end}`) });
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 206) return reject(new Error(`HTTP ${res.statusCode}`));
      if (hwm) res._readableState.highWaterMark = hwm; // a larger response buffer: fewer, larger 'data' events
      let batch = [];
      let n = 0;
      let pos = start;
      res.on('data', (c) => {
        batch.push(c);
        n += c.length;
        if (n >= BATCH) {
          const [bufs, len, at] = [batch, n, pos];
          batch = [];
          pos += n;
          n = 0;
          res.pause();
          writeAll(bufs, len, at).then(() => res.resume(), reject);
        }
      });
      res.on('end', () => writeAll(batch, n, pos).then(() => resolve(pos + n - start), reject));
      res.on('error', reject);
    });
    req.end();
  });
}

async function getFetch(start, end) {
  const res = await fetch(`${base.origin}${path}`, { headers: signed(`bytes=${start}-${end}`) });
  if (res.status !== 206) throw new Error(`HTTP ${res.status}`);
  let batch = [];
  let n = 0;
  let pos = start;
  for await (const c of res.body) {
    batch.push(c);
    n += c.length;
    if (n >= BATCH) {
      await writeAll(batch, n, pos);
      pos += n;
      batch = [];
      n = 0;
    }
  }
  await writeAll(batch, n, pos);
  return pos + n - start;
}

/**
 * One keep-alive connection, read with `onread` into one reused buffer; `get` sends one ranged
 * GET and resolves when exactly Content-Length body bytes have been written at their position.
 */
class RawConn {
  constructor(mode) {
    this.mode = mode; // 'copy' | 'direct' | 'null'
    this.readBuf = Buffer.allocUnsafe(hwm ?? 256 * 1024);
    this.batch = mode === 'copy' ? Buffer.allocUnsafe(BATCH) : undefined;
    this.sock = undefined;
    this.cur = undefined;
  }
  open() {
    const sock = net.connect({ host: base.hostname, port: Number(base.port || 80), noDelay: true, onread: { buffer: this.readBuf, callback: (n, buf) => this.onRead(n, buf) } });
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => {
      if (this.sock === sock) this.sock = undefined;
      this.fail(new Error('connection closed'));
    });
    this.sock = sock;
  }
  get(start, end) {
    if (!this.sock) this.open();
    const headers = signed(`bytes=${start}-${end}`);
    let req = `GET ${path} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`;
    req += '\r\n';
    return new Promise((resolve, reject) => {
      this.cur = { resolve, reject, head: undefined, left: -1, pos: start, start, fill: 0 };
      this.sock.write(req);
    });
  }
  fail(e) {
    const c = this.cur;
    this.cur = undefined;
    c?.reject(e);
  }
  onRead(n, buf) {
    const c = this.cur;
    if (!c) return this.sock?.destroy(), false;
    let off = 0;
    if (c.left < 0) {
      c.head = c.head ? Buffer.concat([c.head, buf.subarray(0, n)]) : Buffer.from(buf.subarray(0, n));
      const at = c.head.indexOf('\r\n\r\n');
      if (at < 0) return true;
      const lines = c.head.subarray(0, at).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      if (status !== 206) return this.fail(new Error(`HTTP ${status}`)), this.sock.destroy(), false;
      const len = lines.find((l) => /^content-length:/i.test(l));
      c.left = Number(len.slice(len.indexOf(':') + 1).trim());
      // what followed the header block in this read is body: its offset in `buf`
      off = n - (c.head.length - at - 4);
      c.head = undefined;
    }
    const m = Math.min(c.left, n - off);
    if (m > 0) {
      if (this.mode === 'copy') {
        let o = off;
        let rest = m;
        while (rest > 0) {
          const k = Math.min(rest, BATCH - c.fill);
          buf.copy(this.batch, c.fill, o, o + k);
          c.fill += k;
          o += k;
          rest -= k;
          if (c.fill === BATCH) this.flush(c);
        }
      } else if (this.mode === 'direct') {
        for (let w = 0; w < m; ) w += fsSync.writeSync(fh.fd, buf, off + w, m - w, c.pos + w);
        c.pos += m;
      } else c.pos += m;
      c.left -= m;
    }
    if (off + m < n) return this.fail(new Error('bytes after the body')), this.sock.destroy(), false;
    if (c.left === 0) {
      if (c.fill) this.flush(c);
      this.cur = undefined;
      c.resolve(c.pos - c.start);
    }
    return true;
  }
  flush(c) {
    for (let w = 0; w < c.fill; ) w += fsSync.writeSync(fh.fd, this.batch, w, c.fill - w, c.pos + w);
    c.pos += c.fill;
    c.fill = 0;
  }
}
const rawMode = { raw: 'copy', 'raw-direct': 'direct', 'raw-null': 'null' }[transport];
const conns = [];

const get = transport === 'fetch' ? getFetch : getHttp;
const parts = Math.ceil(size / partSize);
let next = 0;
let total = 0;
await Promise.all(
  Array.from({ length: Math.min(concurrency, parts) }, async () => {
    const conn = rawMode ? new RawConn(rawMode) : undefined;
    if (conn) conns.push(conn);
    while (next < parts) {
      const i = next++;
      const start = i * partSize;
      const end = Math.min(size, start + partSize) - 1;
      const got = await (conn ? conn.get(start, end) : get(start, end));
      if (got !== end - start + 1) throw new Error(`part ${i}: ${got} bytes`);
      total += got;
    }
  }),
);
for (const c of conns) (c.cur = undefined), c.sock?.destroy();
await fh.close();
agent.destroy();
if (total !== size) throw new Error(`${total} of ${size} bytes`);
