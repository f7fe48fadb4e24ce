/**
 * Worker-thread side of the big-file Xet downloader (xet-download.ts): asks the CAS for the
 * file's reconstruction, opens the xorb ranges it names ({@link PREFETCH} ahead, held back by
 * TCP until their turn), parses each range's chunk records as they stream in, decodes them,
 * hashes each chunk once (keyed BLAKE3) into the file's Merkle hash, and posts the file's bytes
 * to the main thread in order in buffers of {@link OUT} bytes (transferred), waiting for an
 * `ack` while `window` of them are unconsumed; or, given an open file (`fd`, fetchInto), writes
 * them into it by position from one buffer it fills again, and reports how far it wrote. At the end it
 * posts the Xet hash of what it delivered, which the main thread compares with the file's.
 *
 * Hashing the chunks as the uploader cut them (the xorbs say where) verifies the content
 * whatever chunking the uploader used, without chunking it again.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { parentPort } from 'node:worker_threads';
import { chunkHash, loadChunkHasher } from '../../hashing/xet-chunker.js';
import { MerkleState } from '../../hashing/xet.js';
import { decodeChunk } from './xet-codec.js';
import { openRange, type RangeBody } from './xet-range-reader.js';

/**
 * Xorb ranges over plain http are read by xet-range-reader.ts (one reused buffer per
 * connection) unless `BUCKETSYNC_XET_HTTP=node` (read once): then, like https, by node:http.
 */
const OWN_READER = (process.env.BUCKETSYNC_XET_HTTP ?? '').trim().toLowerCase() !== 'node';


const OUT = 8 * 1024 * 1024;
const PREFETCH = 2;
/** The initial buffer of a compressed chunk's payload (chunks are at most 128 KiB). */
const MAX_CARRY = 256 * 1024;

export type DownloadWorkerRequest =
  /**
   * `fd`: write the file's bytes into this open file (of this process) from offset 0 instead
   * of posting them, reporting `written` as they land; `window` is then unused.
   */
  | { type: 'start'; casUrl: string; accessToken: string; fileHash: string; size: number; window: number; fd?: number }
  | { type: 'ack' }
  | { type: 'cancel' };

export type DownloadWorkerMessage =
  /** The file's next bytes: `parts` ([offset, length] pairs) of `buf`, in order. */
  | { type: 'data'; buf: ArrayBuffer; parts: number[] }
  /** File mode: the first `bytes` bytes of the file are written (positional writes done). */
  | { type: 'written'; bytes: number }
  | { type: 'done'; fileHash: string; bytes: number; fetched: number }
  | { type: 'error'; message: string; retryable: boolean };

interface Term {
  hash: string;
  unpacked_length: number;
  range: { start: number; end: number };
}

interface FetchInfo {
  range: { start: number; end: number };
  url: string;
  url_range: { start: number; end: number };
}

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

function get(url: string, headers: Record<string, string>): Promise<Buffer> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(u, { headers, agent: u.protocol === 'https:' ? agents.https : agents.http }, (res) => {
      // Copied as it arrives into a buffer of its own (transferable to the main thread whole,
      // and the socket's pieces freed at once): sized from Content-Length when there is one.
      const declared = Number(res.headers['content-length']);
      let body = Buffer.allocUnsafeSlow(Number.isSafeInteger(declared) && declared >= 0 && declared <= 256 * 1024 * 1024 ? declared : 1024 * 1024);
      let at = 0;
      res.on('data', (d: Buffer) => {
        if (at + d.length > body.length) {
          const bigger = Buffer.allocUnsafeSlow(Math.max(body.length * 2, at + d.length));
          body.copy(bigger, 0, 0, at);
          body = bigger;
        }
        d.copy(body, at);
        at += d.length;
      });
      res.on('error', reject);
      res.on('end', () => {
        if (at < body.length) {
          const exact = Buffer.allocUnsafeSlow(at);
          body.copy(exact, 0, 0, at);
          body = exact;
        }
        const status = res.statusCode ?? 500;
        if (status >= 200 && status < 300) resolve(body);
        else reject(new HttpStatusError(status, `HTTP ${status} from ${u.origin}${u.pathname}: ${body.toString('utf8', 0, 300)}`));
      });
    });
    req.on('error', reject);
  });
}

/**
 * A GET whose response is handed over paused once its headers are in (2xx), so a range
 * fetched ahead waits in the socket (TCP holds it back) instead of in memory; 3 retries on
 * 5xx / 429 / dropped connections before the headers.
 */
async function openRetrying(url: string, headers: Record<string, string>): Promise<http.IncomingMessage> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = mod.get(u, { headers, agent: u.protocol === 'https:' ? agents.https : agents.http }, (res) => {
          const status = res.statusCode ?? 500;
          if (status >= 200 && status < 300) {
            res.pause();
            resolve(res);
            return;
          }
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('error', reject);
          res.on('end', () => reject(new HttpStatusError(status, `HTTP ${status} from ${u.origin}${u.pathname}: ${Buffer.concat(parts).toString('utf8', 0, 300)}`)));
        });
        req.on('error', reject);
      });
    } catch (e) {
      const status = e instanceof HttpStatusError ? e.status : undefined;
      const retry = status === undefined ? true : status === 429 || status >= 500;
      if (!retry || attempt >= 3) throw e;
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
  }
}

/** GET with 3 retries on 5xx / 429 / dropped connections. */
async function getRetrying(url: string, headers: Record<string, string>): Promise<Buffer> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await get(url, headers);
    } catch (e) {
      const status = e instanceof HttpStatusError ? e.status : undefined;
      const retry = status === undefined ? true : status === 429 || status >= 500;
      if (!retry || attempt >= 3) throw e;
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
  }
}

interface Flow {
  credits: number;
  wake: (() => void) | undefined;
  cancelled: boolean;
}

async function download(port: NonNullable<typeof parentPort>, req: Extract<DownloadWorkerRequest, { type: 'start' }>, flow: Flow): Promise<void> {
  await loadChunkHasher();
  const auth = { Authorization: `Bearer ${req.accessToken}` };
  const recon = JSON.parse((await getRetrying(`${req.casUrl}/v1/reconstructions/${req.fileHash}`, auth)).toString('utf8')) as {
    offset_into_first_range?: number;
    terms?: Term[];
    fetch_info?: Record<string, FetchInfo[]>;
  };
  const terms = recon.terms ?? [];
  if ((recon.offset_into_first_range ?? 0) !== 0) throw new Error('the reconstruction of a whole file starts inside a chunk');
  const infoFor = (t: Term): FetchInfo => {
    const fi = (recon.fetch_info?.[t.hash] ?? []).find((f) => f.range.start <= t.range.start && f.range.end >= t.range.end);
    if (!fi) throw new Error(`the reconstruction names no fetch range for xorb ${t.hash} chunks ${t.range.start}-${t.range.end}`);
    return fi;
  };
  let fetched = 0;
  const openTerm = async (t: Term): Promise<RangeBody> => {
    const fi = infoFor(t);
    if (OWN_READER) {
      const own = await openRange(new URL(fi.url), fi.url_range.start, fi.url_range.end);
      if (own) return own;
    }
    const res = await openRetrying(fi.url, { Range: `bytes=${fi.url_range.start}-${fi.url_range.end}` });
    return {
      async consume(feed) {
        for await (const d of res as AsyncIterable<Buffer>) {
          const r = feed(d);
          if (r) await r;
        }
      },
      destroy: () => res.destroy(),
    };
  };
  const merkle = new MerkleState(4096);
  let total = 0;
  // The file's bytes go out in buffers of OUT bytes: transferred to the main thread (allocated
  // with malloc and below its mmap threshold, so freed ones are reused rather than faulted in
  // afresh), or in file mode written and filled again.
  let out = Buffer.allocUnsafeSlow(OUT);
  let fill = 0;
  let written = 0;
  const fd = req.fd;
  const post = (): void => {
    const buf = out.buffer as ArrayBuffer;
    port.postMessage({ type: 'data', buf, parts: [out.byteOffset, fill] } satisfies DownloadWorkerMessage, [buf]);
    out = Buffer.allocUnsafeSlow(OUT);
    fill = 0;
  };
  /** Hands `out` on: synchronously when it can (file mode, or a credit left), else a promise. */
  const flush = (): void | Promise<void> => {
    if (fill === 0) return;
    if (flow.cancelled) throw new Error('cancelled');
    if (fd !== undefined) {
      // File mode: one positional write of the whole buffer, which is then filled again (no
      // allocation, no transfer, no copy on another thread).
      for (let at = 0; at < fill; ) {
        const n = fs.writeSync(fd, out, at, fill - at, written + at);
        if (n <= 0) throw new Error('a write to the temporary file made no progress');
        at += n;
      }
      written += fill;
      fill = 0;
      port.postMessage({ type: 'written', bytes: written } satisfies DownloadWorkerMessage);
      return;
    }
    if (flow.credits > 0) {
      flow.credits--;
      post();
      return;
    }
    return (async () => {
      while (flow.credits <= 0 && !flow.cancelled) await new Promise<void>((r) => (flow.wake = r));
      if (flow.cancelled) throw new Error('cancelled');
      flow.credits--;
      post();
    })();
  };
  /** Copies decoded bytes into `out` from `from` on, flushing it when full. */
  const emit = (data: Uint8Array, from = 0): void | Promise<void> => {
    for (let at = from; at < data.length; ) {
      const n = Math.min(OUT - fill, data.length - at);
      out.set(data.subarray(at, at + n), fill);
      fill += n;
      at += n;
      if (fill === OUT) {
        const r = flush();
        if (r) return r.then(() => emit(data, at));
      }
    }
  };
  const pending: Promise<RangeBody>[] = [];
  let next = 0;
  const pump = () => {
    while (pending.length < PREFETCH && next < terms.length) {
      const p = openTerm(terms[next++]!);
      p.catch(() => undefined);
      pending.push(p);
    }
  };
  // A chunk record's header (8 bytes) as it arrives, and the payload of a compressed chunk
  // (grown to the largest one seen); a stored (scheme 0) chunk goes straight from the socket's
  // read buffer into the output buffer and is hashed there: one copy of each byte in the worker.
  const header = Buffer.allocUnsafeSlow(8);
  let carry = Buffer.allocUnsafeSlow(MAX_CARRY);
  try {
    for (let k = 0; k < terms.length; k++) {
      pump();
      const t = terms[k]!;
      const res = await pending.shift()!;
      const fi = infoFor(t);
      let index = fi.range.start;
      let termBytes = 0;
      let have = 0; // header bytes held, or payload bytes taken once the header is complete
      let clen = -1; // the current record's payload length; -1 while its header is incomplete
      let scheme = 0;
      let ulen = 0;
      let mode: 'skip' | 'direct' | 'carry' = 'skip';
      let at = 0; // where a direct chunk starts in `out`
      const endRecord = (): void | Promise<void> => {
        let r: void | Promise<void> = undefined;
        if (mode !== 'skip') {
          const data = mode === 'direct' ? out.subarray(at, at + clen) : decodeChunk(scheme, carry.subarray(0, clen), ulen);
          if (data.length !== ulen) throw new Error(`xorb ${t.hash}: a chunk decodes to ${data.length} bytes, its header says ${ulen}`);
          merkle.push({ length: data.length, hash: chunkHash(data) });
          termBytes += data.length;
          if (mode === 'direct') {
            fill += ulen;
            if (fill === OUT) r = flush();
          } else r = emit(data);
        }
        index++;
        clen = -1;
        have = 0;
        return r;
      };
      /** Parses `d` from `p` on; returns a promise only when it has to wait (then it goes on by itself). */
      const parse = (d: Uint8Array, p: number): void | Promise<void> => {
        while (p < d.length && index < fi.range.end) {
          if (clen < 0) {
            const n = Math.min(8 - have, d.length - p);
            header.set(d.subarray(p, p + n), have);
            have += n;
            p += n;
            if (have < 8) break;
            if (header[0] !== 0) throw new Error(`xorb ${t.hash}: unsupported chunk header version ${header[0]}`);
            clen = header[1]! | (header[2]! << 8) | (header[3]! << 16);
            scheme = header[4]!;
            ulen = header[5]! | (header[6]! << 8) | (header[7]! << 16);
            have = 0;
            if (index < t.range.start || index >= t.range.end) mode = 'skip';
            else if (scheme === 0 && clen === ulen && clen <= OUT) {
              mode = 'direct';
              if (OUT - fill < clen) {
                const r = flush();
                if (r) {
                  const q = p;
                  // (clen > 0 here: the rest of this record's payload goes to the new buffer)
                  return r.then(() => {
                    at = fill;
                    return parse(d, q);
                  });
                }
              }
              at = fill;
            } else {
              mode = 'carry';
              if (clen > carry.length) carry = Buffer.allocUnsafeSlow(clen);
            }
            if (clen === 0) {
              const r = endRecord();
              if (r) {
                const q = p;
                return r.then(() => parse(d, q));
              }
            }
            continue;
          }
          const n = Math.min(clen - have, d.length - p);
          if (mode === 'direct') out.set(d.subarray(p, p + n), at + have);
          else if (mode === 'carry') carry.set(d.subarray(p, p + n), have);
          have += n;
          p += n;
          if (have === clen) {
            const r = endRecord();
            if (r) {
              const q = p;
              return r.then(() => parse(d, q));
            }
          }
        }
      };
      await res.consume((d) => {
        fetched += d.length;
        return parse(d, 0);
      });
      if (index < t.range.end) throw new Error(`xorb ${t.hash}: the fetched range ends inside chunk ${index}`);
      if (termBytes !== t.unpacked_length) throw new Error(`xorb ${t.hash}: a term holds ${termBytes} bytes, the reconstruction says ${t.unpacked_length}`);
      total += termBytes;
      if (total > req.size) throw new Error(`the reconstruction holds more than the file's ${req.size} bytes`);
    }
    const r = flush();
    if (r) await r;
  } finally {
    // Ranges opened ahead and never read: close their connections.
    for (const p of pending) void p.then((r) => r.destroy(), () => undefined);
  }
  port.postMessage({ type: 'done', fileHash: merkle.digestHex(), bytes: total, fetched } satisfies DownloadWorkerMessage);
}

const port = parentPort;
if (port) {
  const flow: Flow = { credits: 0, wake: undefined, cancelled: false };
  port.on('message', (m: DownloadWorkerRequest) => {
    if (m.type === 'ack') {
      flow.credits++;
      flow.wake?.();
      flow.wake = undefined;
    } else if (m.type === 'cancel') {
      flow.cancelled = true;
      flow.wake?.();
    } else {
      flow.credits = m.window;
      download(port, m, flow).catch((e: unknown) => {
        const status = e instanceof HttpStatusError ? e.status : undefined;
        // A dropped connection, a busy server, an expired signed URL, bytes that do not decode: worth another attempt.
        const retryable = status === undefined || status === 429 || status >= 500 || status === 403;
        port.postMessage({ type: 'error', message: e instanceof Error ? e.message : String(e), retryable } satisfies DownloadWorkerMessage);
      });
    }
  });
}
