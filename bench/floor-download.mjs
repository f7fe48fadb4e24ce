// The floor of a big download on Node: a bare script that fetches one S3 object with
// `concurrency` ranged GETs of `partSize` bytes each (SigV4-signed, path style) into a
// pre-allocated file, writing each response by position in batches of 1 MiB — and does nothing
// else (no hashing, no verification, no resume record). bench/big.mjs runs it beside
// bucketsync so the gap between bucketsync and what Node itself can do on the machine is a number.
//
//   node bench/floor-download.mjs <endpoint> <bucket> <key> <out> <size> <partSize> <concurrency> <transport> [highWaterMark]
//
// transport: `http` (node:http, keep-alive agent; `highWaterMark` sets the response stream's
// buffer, default Node's 16 KiB) or `fetch` (Node's built-in fetch, i.e. undici).
// Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default test / testtest).
import { createHash, createHmac } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';

const [endpoint, bucket, key, out, sizeArg, partArg, concArg, transport = 'http', hwmArg] = process.argv.slice(2);
const size = Number(sizeArg);
const partSize = Number(partArg);
const concurrency = Number(concArg);
const hwm = hwmArg ? Number(hwmArg) : undefined;
const base = new URL(endpoint);
const id = process.env.AWS_ACCESS_KEY_ID ?? 'test';
const secret = process.env.AWS_SECRET_ACCESS_KEY ?? 'testtest';
const region = process.env.AWS_REGION ?? 'us-east-1';
const BATCH = 1024 * 1024;
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

const get = transport === 'fetch' ? getFetch : getHttp;
const parts = Math.ceil(size / partSize);
let next = 0;
let total = 0;
await Promise.all(
  Array.from({ length: Math.min(concurrency, parts) }, async () => {
    while (next < parts) {
      const i = next++;
      const start = i * partSize;
      const end = Math.min(size, start + partSize) - 1;
      const got = await get(start, end);
      if (got !== end - start + 1) throw new Error(`part ${i}: ${got} bytes`);
      total += got;
    }
  }),
);
await fh.close();
agent.destroy();
if (total !== size) throw new Error(`${total} of ${size} bytes`);
