/**
 * Worker-thread side of the big-file Xet downloader (xet-download.ts): asks the CAS for the
 * file's reconstruction, fetches the xorb ranges it names (up to {@link PREFETCH} at once),
 * decodes the chunks, hashes each chunk once (keyed BLAKE3) into the file's Merkle hash, and
 * posts the file's bytes to the main thread in order: the fetched ranges themselves
 * (transferred, not copied) with the parts of them that are raw chunks, and compressed chunks
 * decoded into buffers of their own, waiting for an `ack` while `window` of them are unconsumed. At the end it
 * posts the Xet hash of what it delivered, which the main thread compares with the file's.
 *
 * Hashing the chunks as the uploader cut them (the xorbs say where) verifies the content
 * whatever chunking the uploader used, without chunking it again.
 */
import http from 'node:http';
import https from 'node:https';
import { parentPort } from 'node:worker_threads';
import { chunkHash, loadChunkHasher } from '../../hashing/xet-chunker.js';
import { MerkleState } from '../../hashing/xet.js';
import { decodeChunk } from './xet-codec.js';

const PREFETCH = 2;

export type DownloadWorkerRequest =
  | { type: 'start'; casUrl: string; accessToken: string; fileHash: string; size: number; window: number }
  | { type: 'ack' }
  | { type: 'cancel' };

export type DownloadWorkerMessage =
  /** The file's next bytes: `parts` ([offset, length] pairs) of `buf`, in order. */
  | { type: 'data'; buf: ArrayBuffer; parts: number[] }
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

/** Decoded chunks in one new buffer: [buffer, parts]. */
function packed(chunks: Uint8Array[]): [ArrayBuffer, number[]] {
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return [out.buffer, [0, n]];
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
  const fetchTerm = (t: Term): Promise<Buffer> => {
    const fi = infoFor(t);
    return getRetrying(fi.url, { Range: `bytes=${fi.url_range.start}-${fi.url_range.end}` }).then((b) => {
      fetched += b.length;
      return b;
    });
  };
  const merkle = new MerkleState(4096);
  let total = 0;
  /** Posts a buffer and the parts of it that are the file's next bytes; waits while `window` are unconsumed. */
  const post = async (buf: ArrayBuffer, parts: number[]): Promise<void> => {
    if (parts.length === 0) return;
    while (flow.credits <= 0 && !flow.cancelled) await new Promise<void>((r) => (flow.wake = r));
    if (flow.cancelled) throw new Error('cancelled');
    flow.credits--;
    port.postMessage({ type: 'data', buf, parts } satisfies DownloadWorkerMessage, [buf]);
  };
  const pending: Promise<Buffer>[] = [];
  let next = 0;
  const pump = () => {
    while (pending.length < PREFETCH && next < terms.length) {
      const p = fetchTerm(terms[next++]!);
      p.catch(() => undefined);
      pending.push(p);
    }
  };
  for (let k = 0; k < terms.length; k++) {
    pump();
    const t = terms[k]!;
    const body = await pending.shift()!;
    const fi = infoFor(t);
    let off = 0;
    let index = fi.range.start;
    let termBytes = 0;
    // Raw chunks go out as views of the fetched range (no copy); decoded ones in a buffer of their own.
    const parts: number[] = [];
    const decoded: Uint8Array[] = [];
    while (index < t.range.end) {
      if (off + 8 > body.length) throw new Error(`xorb ${t.hash}: the fetched range ends inside a chunk header`);
      const clen = body[off + 1]! | (body[off + 2]! << 8) | (body[off + 3]! << 16);
      const scheme = body[off + 4]!;
      const ulen = body[off + 5]! | (body[off + 6]! << 8) | (body[off + 7]! << 16);
      if (body[off] !== 0) throw new Error(`xorb ${t.hash}: unsupported chunk header version ${body[off]}`);
      const end = off + 8 + clen;
      if (end > body.length) throw new Error(`xorb ${t.hash}: the fetched range ends inside a chunk`);
      if (index >= t.range.start) {
        const data = decodeChunk(scheme, body.subarray(off + 8, end), ulen);
        if (data.length !== ulen) throw new Error(`xorb ${t.hash}: a chunk decodes to ${data.length} bytes, its header says ${ulen}`);
        merkle.push({ length: data.length, hash: chunkHash(data) });
        termBytes += data.length;
        if (scheme === 0) {
          if (decoded.length > 0) {
            // Keep the order: what was decoded so far goes first.
            await post(...packed(decoded));
            decoded.length = 0;
          }
          const last = parts.length - 2;
          if (last >= 0 && parts[last]! + parts[last + 1]! === off + 8) parts[last + 1]! += ulen;
          else parts.push(off + 8, ulen);
        } else {
          if (parts.length > 0) {
            // Raw parts before a decoded chunk: the fetched range goes first (a copy of it, as it stays in use).
            const copy = body.buffer.slice(body.byteOffset, body.byteOffset + body.length) as ArrayBuffer;
            await post(copy, parts.splice(0));
          }
          decoded.push(data);
        }
      }
      off = end;
      index++;
    }
    if (termBytes !== t.unpacked_length) throw new Error(`xorb ${t.hash}: a term holds ${termBytes} bytes, the reconstruction says ${t.unpacked_length}`);
    total += termBytes;
    if (total > req.size) throw new Error(`the reconstruction holds more than the file's ${req.size} bytes`);
    if (decoded.length > 0) await post(...packed(decoded));
    if (parts.length > 0) await post(body.buffer as ArrayBuffer, parts);
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
